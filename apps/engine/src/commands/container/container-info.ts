import { describeError, hasKind } from '@berth/errors';
import type { ContainerStatsResponse, ContainerSummary, Engine } from '@berth/engine';
import { EngineErrorCode, engineError } from '@berth/engine/engine';
import type { Cli } from '../../cli/cli.js';
import { StatusError, UsageError } from '../../cli/cli-errors.js';
import type { CommandSpec } from '../../cli/command-spec.js';
import { containerView, shortId } from '../../format/container-view.js';
import { formatList, formatObject, type View } from '../../format/list-format.js';
import { alignColumns } from '../../format/tab-writer.js';
import { bytesSize, humanSize } from '../../format/units.js';
import { filtersOf } from '../../cli/filter-flags.js';

const formatOption = { type: 'string', requiresArg: true, describe: "Format output using a custom template: 'table', 'table TEMPLATE', 'json', or a Go template" } as const;
const noTrunc = { type: 'boolean', describe: "Don't truncate output" } as const;

/** `engine ps`. */
export const psCommand: CommandSpec = {
  usage: '[OPTIONS]',
  describe: 'List containers',
  args: [0, 0],
  options: {
    all: { type: 'boolean', alias: 'a', describe: 'Show all containers (default shows just running)' },
    filter: { type: 'string', array: true, alias: 'f', requiresArg: true, describe: 'Filter output based on conditions provided' },
    format: formatOption,
    last: { type: 'string', alias: 'n', requiresArg: true, describe: 'Show n last created containers (includes all states)' },
    latest: { type: 'boolean', alias: 'l', describe: 'Show the latest created container (includes all states)' },
    'no-trunc': noTrunc,
    quiet: { type: 'boolean', alias: 'q', describe: 'Only display container IDs' },
    size: { type: 'boolean', alias: 's', describe: 'Display total file sizes' },
  },
  async run(args, cli) {
    const last = args['latest'] === true ? 1 : args['last'] === undefined ? undefined : Number(args['last']);
    const size = args['size'] === true || (typeof args['format'] === 'string' && args['format'].includes('.Size'));
    const list = await (await cli.engine()).listContainers({
      signal: cli.signal,
      all: args['all'] === true || (last !== undefined && last > 0),
      size,
      filters: filtersOf(args['filter']),
      ...(last !== undefined && last > 0 ? { limit: last } : {}),
    });
    const view = containerView({ truncate: args['no-trunc'] !== true });
    const format = args['quiet'] === true ? '{{.ID}}' : (args['format'] as string | undefined);
    const table = `table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}${args['size'] === true ? '\t{{.Size}}' : ''}`;
    cli.out(formatList(list, view, format, table));
  },
};

type InspectKind = 'container' | 'image' | 'volume' | 'network';

async function inspectAny(engine: Engine, name: string, kinds: readonly InspectKind[], size: boolean, signal: AbortSignal): Promise<unknown> {
  for (const kind of kinds) {
    try {
      switch (kind) {
        case 'container':
          return await engine.inspectContainer(name, { signal, size });
        case 'image':
          return await engine.inspectImage(name, { signal });
        case 'volume':
          return await engine.inspectVolume(name, { signal });
        case 'network':
          return await engine.inspectNetwork(name, { signal });
      }
    } catch (err) {
      if (!hasKind(err, 'NotFound') && !hasKind(err, 'InvalidArgument')) throw err;
    }
  }
  return undefined;
}

/** Prints inspect results as docker does: a JSON array indented by four spaces, or the template per object. */
export async function printInspect(cli: Cli, names: readonly string[], kinds: readonly InspectKind[], format: string | undefined, size: boolean): Promise<void> {
  const engine = await cli.engine();
  const found: unknown[] = [];
  let missing = 0;
  for (const name of names) {
    const value = await inspectAny(engine, name, kinds, size, cli.signal);
    if (value === undefined) {
      missing++;
      cli.err(`Error: No such ${kinds.length === 1 ? kinds[0] : 'object'}: ${name}\n`);
      continue;
    }
    found.push(value);
  }
  if (format) {
    for (const value of found) cli.out(formatObject(value, format));
  } else {
    cli.out(`${JSON.stringify(found, null, 4)}\n`);
  }
  if (missing) throw new StatusError(1);
}

const inspectOptions = {
  format: { type: 'string', alias: 'f', requiresArg: true, describe: "Format output using a custom template: 'json' or a Go template" },
  size: { type: 'boolean', alias: 's', describe: 'Display total file sizes' },
} as const;

/** `engine inspect`. */
export const inspectCommand: CommandSpec = {
  usage: '[OPTIONS] NAME|ID [NAME|ID...]',
  describe: 'Return low-level information on engine objects',
  args: [1, Infinity],
  options: { ...inspectOptions, type: { type: 'string', requiresArg: true, choices: ['container', 'image', 'volume', 'network'], describe: 'Return JSON for specified type' } },
  async run(args, cli) {
    const kinds: InspectKind[] = typeof args['type'] === 'string' ? [args['type'] as InspectKind] : ['container', 'image', 'volume', 'network'];
    await printInspect(cli, args._args, kinds, args['format'] as string | undefined, args['size'] === true);
  },
};

/** `engine container inspect`. */
export const containerInspectCommand: CommandSpec = {
  usage: '[OPTIONS] CONTAINER [CONTAINER...]',
  describe: 'Display detailed information on one or more containers',
  args: [1, Infinity],
  options: inspectOptions,
  async run(args, cli) {
    await printInspect(cli, args._args, ['container'], args['format'] as string | undefined, args['size'] === true);
  },
};

/** `engine top`. */
export const topCommand: CommandSpec = {
  usage: 'CONTAINER [ps OPTIONS]',
  describe: 'Display the running processes of a container',
  args: [1, Infinity],
  interspersed: false,
  async run(args, cli) {
    const [name, ...psArgs] = args._args;
    const top = await (await cli.engine()).topContainer(name!, { signal: cli.signal, ...(psArgs.length ? { psArgs: psArgs.join(' ') } : {}) });
    const lines = [top.Titles.join('\t'), ...top.Processes.map((p) => p.join('\t'))];
    cli.out(alignColumns(lines.join('\n') + '\n', 20, 3));
  },
};

/** One container's numbers as `stats` shows them. */
interface StatsRow {
  readonly container: string;
  readonly sample: ContainerStatsResponse | undefined;
  readonly error?: string;
}

function cpuPercent(s: ContainerStatsResponse): number {
  const cpuDelta = s.cpu_stats.cpu_usage.total_usage - (s.precpu_stats.cpu_usage?.total_usage ?? 0);
  const systemDelta = (s.cpu_stats.system_cpu_usage ?? 0) - (s.precpu_stats.system_cpu_usage ?? 0);
  const cpus = s.cpu_stats.online_cpus || s.cpu_stats.cpu_usage.percpu_usage?.length || 1;
  return systemDelta > 0 && cpuDelta > 0 ? (cpuDelta / systemDelta) * cpus * 100 : 0;
}

function memoryUsed(s: ContainerStatsResponse): number {
  const usage = s.memory_stats.usage ?? 0;
  const stats = s.memory_stats.stats ?? {};
  // docker subtracts the page cache that can be reclaimed: total_inactive_file on cgroup v1, inactive_file on v2.
  const cache = stats['total_inactive_file'] ?? stats['inactive_file'] ?? 0;
  return cache < usage ? usage - cache : usage;
}

function statsView(truncate: boolean): View<StatsRow> {
  const s = (r: StatsRow) => r.sample;
  return {
    Container: { header: 'CONTAINER', value: (r) => r.container },
    Name: { header: 'NAME', value: (r) => (s(r)?.name ?? '--').replace(/^\//, '') },
    ID: { header: 'CONTAINER ID', value: (r) => (s(r) ? (truncate ? shortId(s(r)!.id) : s(r)!.id) : r.container) },
    CPUPerc: { header: 'CPU %', value: (r) => (s(r) ? `${cpuPercent(s(r)!).toFixed(2)}%` : '--') },
    MemUsage: { header: 'MEM USAGE / LIMIT', value: (r) => (s(r) ? `${bytesSize(memoryUsed(s(r)!))} / ${bytesSize(s(r)!.memory_stats.limit ?? 0)}` : '-- / --') },
    MemPerc: {
      header: 'MEM %',
      value: (r) => {
        const limit = s(r)?.memory_stats.limit ?? 0;
        return s(r) ? `${(limit ? (memoryUsed(s(r)!) / limit) * 100 : 0).toFixed(2)}%` : '--';
      },
    },
    NetIO: {
      header: 'NET I/O',
      value: (r) => {
        const nets = Object.values(s(r)?.networks ?? {});
        return s(r) ? `${humanSize(nets.reduce((a, n) => a + n.rx_bytes, 0))} / ${humanSize(nets.reduce((a, n) => a + n.tx_bytes, 0))}` : '-- / --';
      },
    },
    BlockIO: {
      header: 'BLOCK I/O',
      value: (r) => {
        const entries = s(r)?.blkio_stats.io_service_bytes_recursive ?? [];
        const sum = (op: string) => entries.filter((e) => e.op.toLowerCase() === op).reduce((a, e) => a + e.value, 0);
        return s(r) ? `${humanSize(sum('read'))} / ${humanSize(sum('write'))}` : '-- / --';
      },
    },
    PIDs: { header: 'PIDS', value: (r) => (s(r) ? String(s(r)!.pids_stats.current ?? 0) : '--') },
  };
}

/** `engine stats`. */
export const statsCommand: CommandSpec = {
  usage: '[OPTIONS] [CONTAINER...]',
  describe: 'Display a live stream of container(s) resource usage statistics',
  options: {
    all: { type: 'boolean', alias: 'a', describe: 'Show all containers (default shows just running)' },
    format: formatOption,
    'no-stream': { type: 'boolean', describe: 'Disable streaming stats and only pull the first result' },
    'no-trunc': noTrunc,
  },
  async run(args, cli) {
    const engine = await cli.engine();
    let names = [...args._args];
    if (names.length === 0) {
      const list: ContainerSummary[] = await engine.listContainers({ signal: cli.signal, all: args['all'] === true });
      names = list.map((c) => shortId(c.Id));
    }
    const view = statsView(args['no-trunc'] !== true);
    const table = 'table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}';
    const format = args['format'] as string | undefined;
    const rows = new Map<string, StatsRow>(names.map((n) => [n, { container: n, sample: undefined }]));
    if (args['no-stream'] === true) {
      await Promise.all(
        names.map(async (name) => {
          try {
            for await (const sample of engine.containerStats(name, { signal: cli.signal, stream: false })) rows.set(name, { container: name, sample });
          } catch (err) {
            rows.set(name, { container: name, sample: undefined, error: describeError(err) });
          }
        }),
      );
      for (const row of rows.values()) if (row.error) cli.err(`engine: ${row.error}\n`);
      cli.out(formatList([...rows.values()].filter((r) => !r.error), view, format, table));
      return;
    }
    const terminal = cli.io.stdout.isTTY === true;
    const draw = () => {
      const text = formatList([...rows.values()], view, format, table);
      cli.out(terminal ? `\x1b[2J\x1b[H${text}` : text);
    };
    const timer = setInterval(draw, 1000);
    try {
      await Promise.all(
        names.map(async (name) => {
          try {
            for await (const sample of engine.containerStats(name, { signal: cli.signal, stream: true })) rows.set(name, { container: name, sample });
          } catch (err) {
            if (!cli.signal.aborted) rows.set(name, { container: name, sample: undefined, error: describeError(err) });
          }
        }),
      );
    } finally {
      clearInterval(timer);
    }
    draw();
  },
};

/** `engine port`. */
export const portCommand: CommandSpec = {
  usage: 'CONTAINER [PRIVATE_PORT[/PROTO]]',
  describe: 'List port mappings or a specific mapping for the container',
  args: [1, 2],
  async run(args, cli) {
    const [name, wanted] = args._args;
    const info = await (await cli.engine()).inspectContainer(name!, { signal: cli.signal });
    const ports = info.NetworkSettings?.Ports ?? {};
    const address = (ip: string | undefined, port: string | undefined) => `${ip && ip.includes(':') ? `[${ip}]` : ip || '0.0.0.0'}:${port ?? ''}`;
    if (wanted !== undefined) {
      const m = /^(\d+)(?:\/(tcp|udp|sctp))?$/.exec(wanted);
      if (!m) throw new UsageError(`invalid port ${JSON.stringify(wanted)}`, 'port');
      const key = `${m[1]}/${m[2] ?? 'tcp'}`;
      const bindings = ports[key];
      if (!bindings || bindings.length === 0) throw engineError(`No public port '${key}' published for ${name}`, EngineErrorCode.PathNotFound, 'NotFound');
      for (const b of bindings) cli.out(`${address(b.HostIp, b.HostPort)}\n`);
      return;
    }
    const keys = Object.keys(ports).sort((a, b) => parseInt(a) - parseInt(b) || a.localeCompare(b));
    for (const key of keys) for (const b of ports[key] ?? []) cli.out(`${key} -> ${address(b.HostIp, b.HostPort)}\n`);
  },
};
