import { arch, platform } from 'node:os';
import { describeError } from '@berth/errors';
import type { SystemDataUsage, SystemInfo } from '@berth/engine';
import { maxApiVersion } from '@berth/engine/engine';
import type { Cli } from '../../cli/cli.js';
import type { CommandSpec } from '../../cli/command-spec.js';
import { shortId } from '../../format/container-view.js';
import { formatList, formatObject, type View } from '../../format/list-format.js';
import { bytesSize, humanSize } from '../../format/units.js';
import { filtersOf } from '../../cli/filter-flags.js';
import { confirm } from '../each-argument.js';

const goArch: Readonly<Record<string, string>> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', s390x: 's390x', ppc64: 'ppc64le', riscv64: 'riscv64' };

function clientInfo(cli: Cli) {
  return {
    Version: cli.version,
    ApiVersion: maxApiVersion,
    DefaultAPIVersion: maxApiVersion,
    GoVersion: `node ${process.version}`,
    Os: platform(),
    Arch: goArch[arch()] ?? arch(),
    Context: cli.remote ? cli.settings.remoteHost! : 'local (daemonless)',
    Debug: cli.settings.logLevel === 'debug',
  };
}

function serverText(info: SystemInfo): string {
  const lines: string[] = [];
  const add = (indent: number, text: string) => lines.push(' '.repeat(indent) + text);
  add(1, `Containers: ${info.Containers}`);
  add(2, `Running: ${info.ContainersRunning}`);
  add(2, `Paused: ${info.ContainersPaused}`);
  add(2, `Stopped: ${info.ContainersStopped}`);
  add(1, `Images: ${info.Images}`);
  add(1, `Server Version: ${info.ServerVersion}`);
  add(1, `Storage Driver: ${info.Driver}`);
  for (const [k, v] of info.DriverStatus ?? []) add(2, `${k}: ${v}`);
  add(1, `Logging Driver: ${info.LoggingDriver}`);
  add(1, `Cgroup Driver: ${info.CgroupDriver}`);
  add(1, `Cgroup Version: ${info.CgroupVersion}`);
  add(1, 'Plugins:');
  add(2, `Volume: ${(info.Plugins?.Volume ?? []).join(' ')}`);
  add(2, `Network: ${(info.Plugins?.Network ?? []).join(' ')}`);
  add(2, `Log: ${(info.Plugins?.Log ?? []).join(' ')}`);
  add(1, `Swarm: ${info.Swarm?.LocalNodeState ?? 'inactive'}`);
  add(1, `Runtimes: ${Object.keys(info.Runtimes ?? {}).sort().join(' ')}`);
  add(1, `Default Runtime: ${info.DefaultRuntime}`);
  if (info.InitBinary) add(1, `Init Binary: ${info.InitBinary}`);
  if (info.SecurityOptions?.length) {
    add(1, 'Security Options:');
    for (const opt of info.SecurityOptions) {
      const fields = Object.fromEntries(opt.split(',').map((kv) => kv.split('=') as [string, string]));
      add(2, fields['name'] ?? opt);
      for (const [k, v] of Object.entries(fields)) if (k !== 'name') add(3, `${k[0]!.toUpperCase()}${k.slice(1)}: ${v}`);
    }
  }
  add(1, `Kernel Version: ${info.KernelVersion}`);
  add(1, `Operating System: ${info.OperatingSystem}`);
  add(1, `OSType: ${info.OSType}`);
  add(1, `Architecture: ${info.Architecture}`);
  add(1, `CPUs: ${info.NCPU}`);
  add(1, `Total Memory: ${bytesSize(info.MemTotal)}`);
  add(1, `Name: ${info.Name}`);
  add(1, `ID: ${info.ID}`);
  add(1, `Docker Root Dir: ${info.DockerRootDir}`);
  add(1, `Debug Mode: ${info.Debug}`);
  if (info.Labels?.length) {
    add(1, 'Labels:');
    for (const l of info.Labels) add(2, l);
  }
  add(1, `Experimental: ${info.ExperimentalBuild}`);
  add(1, 'Insecure Registries:');
  for (const r of Object.values(info.RegistryConfig?.IndexConfigs ?? {})) if (!r.Secure) add(2, r.Name);
  for (const c of info.RegistryConfig?.InsecureRegistryCIDRs ?? []) add(2, c);
  add(1, `Live Restore Enabled: ${info.LiveRestoreEnabled}`);
  return lines.join('\n') + '\n';
}

/** `engine info`. */
export const infoCommand: CommandSpec = {
  usage: '[OPTIONS]',
  describe: 'Display system-wide information',
  args: [0, 0],
  options: { format: { type: 'string', alias: 'f', requiresArg: true, describe: "Format output using a custom template: 'json' or a Go template" } },
  async run(args, cli) {
    const client = clientInfo(cli);
    let info: SystemInfo | undefined;
    let failure: string | undefined;
    try {
      info = await (await cli.engine()).info({ signal: cli.signal });
    } catch (err) {
      failure = describeError(err);
    }
    if (typeof args['format'] === 'string') {
      if (!info) throw new Error(failure);
      cli.out(formatObject({ ...info, ClientInfo: client }, args['format']));
      return;
    }
    cli.out(`Client:\n Version:    ${client.Version}\n Context:    ${client.Context}\n Debug Mode: ${client.Debug}\n\nServer:\n`);
    if (!info) {
      cli.out(`ERROR: ${failure}\nerrors pretty printing info\n`);
      return 1;
    }
    cli.out(serverText(info));
    for (const w of info.Warnings ?? []) cli.err(`${w}\n`);
  },
};

/** `engine version`. */
export const versionCommand: CommandSpec = {
  usage: '[OPTIONS]',
  describe: 'Show the engine version information',
  args: [0, 0],
  options: { format: { type: 'string', alias: 'f', requiresArg: true, describe: "Format output using a custom template: 'json' or a Go template" } },
  async run(args, cli) {
    const client = clientInfo(cli);
    let server: Awaited<ReturnType<Awaited<ReturnType<Cli['engine']>>['version']>> | undefined;
    let failure: string | undefined;
    try {
      server = await (await cli.engine()).version({ signal: cli.signal });
    } catch (err) {
      failure = describeError(err);
    }
    const clientBlock = { Platform: { Name: 'Berth' }, Version: client.Version, ApiVersion: client.ApiVersion, DefaultAPIVersion: client.DefaultAPIVersion, GoVersion: client.GoVersion, Os: client.Os, Arch: client.Arch, Context: client.Context };
    if (typeof args['format'] === 'string') {
      cli.out(formatObject({ Client: clientBlock, Server: server ?? null }, args['format']));
      if (!server) throw new Error(failure);
      return;
    }
    const pad = (label: string) => `${label}:`.padEnd(19);
    cli.out(
      [
        'Client:',
        ` ${pad('Version')}${client.Version}`,
        ` ${pad('API version')}${client.ApiVersion}`,
        ` ${pad('Go version')}${client.GoVersion}`,
        ` ${pad('Git commit')}${cli.build.commit}`,
        ` ${pad('Built')}${cli.build.time}`,
        ` ${pad('OS/Arch')}${client.Os}/${client.Arch}`,
        ` ${pad('Context')}${client.Context}`,
        '',
      ].join('\n') + '\n',
    );
    if (!server) {
      cli.err(`engine: ${failure}\n`);
      return 1;
    }
    const engine = server.Components?.find((c) => c.Name === 'Engine');
    const lines = [`Server: ${server.Platform?.Name ?? ''}`, ' Engine:'];
    const d = engine?.Details ?? {};
    lines.push(`  ${pad('Version')}${server.Version}`);
    lines.push(`  ${pad('API version')}${server.ApiVersion} (minimum version ${server.MinAPIVersion})`);
    lines.push(`  ${pad('Go version')}${server.GoVersion}`);
    lines.push(`  ${pad('Git commit')}${server.GitCommit}`);
    lines.push(`  ${pad('Built')}${server.BuildTime}`);
    lines.push(`  ${pad('OS/Arch')}${server.Os}/${server.Arch}`);
    lines.push(`  ${pad('Experimental')}${server.Experimental ?? d['Experimental'] ?? false}`);
    for (const c of server.Components ?? []) {
      if (c.Name === 'Engine') continue;
      lines.push(` ${c.Name}:`, `  ${pad('Version')}${c.Version}`);
      for (const [k, v] of Object.entries(c.Details ?? {})) lines.push(`  ${pad(k)}${v}`);
    }
    cli.out(lines.join('\n') + '\n');
  },
};

interface DfRow {
  readonly Type: string;
  readonly TotalCount: string;
  readonly Active: string;
  readonly Size: string;
  readonly Reclaimable: string;
}

function percentOf(part: number, total: number): string {
  return total > 0 ? `${humanSize(part)} (${Math.floor((part * 100) / total)}%)` : humanSize(part);
}

/** docker's `system df` summary rows. */
export function dataUsageRows(du: SystemDataUsage): DfRow[] {
  const images = du.Images ?? [];
  let usedImages = 0;
  for (const i of images) if (i.Containers > 0 && i.Size >= 0 && i.SharedSize >= 0) usedImages += i.Size - i.SharedSize;
  const containers = du.Containers ?? [];
  const activeStates = new Set(['running', 'paused', 'restarting']);
  const containerSize = containers.reduce((a, c) => a + (c.SizeRw ?? 0), 0);
  const containerReclaim = containers.filter((c) => !activeStates.has(c.State)).reduce((a, c) => a + (c.SizeRw ?? 0), 0);
  const volumes = du.Volumes ?? [];
  const volumeSize = volumes.reduce((a, v) => a + Math.max(0, v.UsageData?.Size ?? 0), 0);
  const volumeReclaim = volumes.filter((v) => (v.UsageData?.RefCount ?? 0) === 0).reduce((a, v) => a + Math.max(0, v.UsageData?.Size ?? 0), 0);
  const cache = du.BuildCache ?? [];
  const cacheSize = cache.reduce((a, c) => a + c.Size, 0);
  const cacheReclaim = cache.filter((c) => !c.InUse && !c.Shared).reduce((a, c) => a + c.Size, 0);
  return [
    { Type: 'Images', TotalCount: String(images.length), Active: String(images.filter((i) => i.Containers > 0).length), Size: humanSize(du.LayersSize), Reclaimable: percentOf(du.LayersSize - usedImages, du.LayersSize) },
    { Type: 'Containers', TotalCount: String(containers.length), Active: String(containers.filter((c) => activeStates.has(c.State)).length), Size: humanSize(containerSize), Reclaimable: percentOf(containerReclaim, containerSize) },
    { Type: 'Local Volumes', TotalCount: String(volumes.length), Active: String(volumes.filter((v) => (v.UsageData?.RefCount ?? 0) > 0).length), Size: humanSize(volumeSize), Reclaimable: percentOf(volumeReclaim, volumeSize) },
    { Type: 'Build Cache', TotalCount: String(cache.length), Active: String(cache.filter((c) => c.InUse).length), Size: humanSize(cacheSize), Reclaimable: humanSize(cacheReclaim) },
  ];
}

const dfView: View<DfRow> = {
  Type: { header: 'TYPE', value: (r) => r.Type },
  TotalCount: { header: 'TOTAL', value: (r) => r.TotalCount },
  Active: { header: 'ACTIVE', value: (r) => r.Active },
  Size: { header: 'SIZE', value: (r) => r.Size },
  Reclaimable: { header: 'RECLAIMABLE', value: (r) => r.Reclaimable },
};

/** `engine system df`. */
export const dfCommand: CommandSpec = {
  usage: '[OPTIONS]',
  describe: 'Show engine disk usage',
  args: [0, 0],
  options: {
    format: { type: 'string', requiresArg: true, describe: "Format output using a custom template: 'table', 'table TEMPLATE', 'json', or a Go template" },
    verbose: { type: 'boolean', alias: 'v', describe: 'Show detailed information on space usage' },
  },
  async run(args, cli) {
    const du = await (await cli.engine()).dataUsage({ signal: cli.signal });
    cli.out(formatList(dataUsageRows(du), dfView, args['format'] as string | undefined, 'table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}'));
    if (args['verbose'] !== true) return;
    cli.out('\nImages space usage:\n\n');
    cli.out(
      formatList(
        (du.Images ?? []).map((i) => ({ i })),
        {
          Repository: { header: 'REPOSITORY', value: ({ i }) => (i.RepoTags[0] ?? '<none>:<none>').replace(/:[^:/]*$/, '') },
          Tag: { header: 'TAG', value: ({ i }) => (i.RepoTags[0] ?? '<none>:<none>').replace(/^.*:/, '') },
          ID: { header: 'IMAGE ID', value: ({ i }) => shortId(i.Id) },
          Size: { header: 'SIZE', value: ({ i }) => humanSize(i.Size) },
          Containers: { header: 'CONTAINERS', value: ({ i }) => String(Math.max(0, i.Containers)) },
        },
        undefined,
        'table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.Size}}\t{{.Containers}}',
      ),
    );
    cli.out('\nContainers space usage:\n\n');
    cli.out(
      formatList(
        du.Containers ?? [],
        {
          ID: { header: 'CONTAINER ID', value: (c) => shortId(c.Id) },
          Image: { header: 'IMAGE', value: (c) => c.Image },
          Size: { header: 'SIZE', value: (c) => humanSize(c.SizeRw ?? 0) },
          Status: { header: 'STATUS', value: (c) => c.Status },
          Names: { header: 'NAMES', value: (c) => c.Names.map((n) => n.replace(/^\//, '')).join(',') },
        },
        undefined,
        'table {{.ID}}\t{{.Image}}\t{{.Size}}\t{{.Status}}\t{{.Names}}',
      ),
    );
    cli.out('\nLocal Volumes space usage:\n\n');
    cli.out(
      formatList(
        du.Volumes ?? [],
        {
          Name: { header: 'VOLUME NAME', value: (v) => v.Name },
          Links: { header: 'LINKS', value: (v) => String(v.UsageData?.RefCount ?? 0) },
          Size: { header: 'SIZE', value: (v) => humanSize(Math.max(0, v.UsageData?.Size ?? 0)) },
        },
        undefined,
        'table {{.Name}}\t{{.Links}}\t{{.Size}}',
      ),
    );
  },
};

/** `engine system prune`. */
export const systemPruneCommand: CommandSpec = {
  usage: '[OPTIONS]',
  describe: 'Remove unused data',
  args: [0, 0],
  options: {
    all: { type: 'boolean', alias: 'a', describe: 'Remove all unused images not just dangling ones' },
    filter: { type: 'string', array: true, requiresArg: true, describe: 'Provide filter values (e.g. "label=<key>=<value>")' },
    force: { type: 'boolean', alias: 'f', describe: 'Do not prompt for confirmation' },
    volumes: { type: 'boolean', describe: 'Prune anonymous volumes' },
  },
  async run(args, cli) {
    const all = args['all'] === true;
    const volumes = args['volumes'] === true;
    const warning = [
      'WARNING! This will remove:',
      '  - all stopped containers',
      '  - all networks not used by at least one container',
      ...(volumes ? ['  - all anonymous volumes not used by at least one container'] : []),
      all ? '  - all images without at least one container associated to them' : '  - all dangling images',
      all ? '  - all build cache' : '  - unused build cache',
      '',
      'Are you sure you want to continue?',
    ].join('\n');
    if (!(await confirm(cli, warning, args['force'] === true))) return;
    const engine = await cli.engine();
    const filters = filtersOf(args['filter']);
    let reclaimed = 0;
    const containers = await engine.pruneContainers({ signal: cli.signal, filters });
    reclaimed += containers.SpaceReclaimed;
    if (containers.ContainersDeleted?.length) cli.out(`Deleted Containers:\n${containers.ContainersDeleted.join('\n')}\n\n`);
    const networks = await engine.pruneNetworks({ signal: cli.signal, filters });
    if (networks.NetworksDeleted?.length) cli.out(`Deleted Networks:\n${networks.NetworksDeleted.join('\n')}\n\n`);
    if (volumes) {
      const v = await engine.pruneVolumes({ signal: cli.signal, filters });
      reclaimed += v.SpaceReclaimed;
      if (v.VolumesDeleted?.length) cli.out(`Deleted Volumes:\n${v.VolumesDeleted.join('\n')}\n\n`);
    }
    const images = await engine.pruneImages({ signal: cli.signal, filters: { ...filters, dangling: [all ? 'false' : 'true'] } });
    reclaimed += images.SpaceReclaimed;
    if (images.ImagesDeleted?.length) {
      cli.out('Deleted Images:\n');
      for (const d of images.ImagesDeleted) cli.out(d.Untagged ? `untagged: ${d.Untagged}\n` : `deleted: ${d.Deleted}\n`);
      cli.out('\n');
    }
    const cache = await engine.pruneBuildCache({ signal: cli.signal, all, filters });
    reclaimed += cache.SpaceReclaimed;
    if (cache.CachesDeleted?.length) cli.out(`Deleted build cache objects:\n${cache.CachesDeleted.join('\n')}\n\n`);
    cli.out(`Total reclaimed space: ${humanSize(reclaimed)}\n`);
  },
};
