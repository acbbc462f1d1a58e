import { readFileSync } from 'node:fs';
import type { Options } from 'yargs';
import type { ContainerCreateRequest, HostConfig, Mount, PortBinding, RestartPolicy, Ulimit, DeviceMapping, EndpointSettings } from '@berth/engine';
import { UsageError } from '../../cli/cli-errors.js';
import type { ParsedArgs } from '../../cli/command-spec.js';
import { parseBytes, parseGoDuration } from '../../format/units.js';

const list = (describe: string, alias?: string): Options => ({ type: 'string', array: true, describe, requiresArg: true, ...(alias ? { alias } : {}) });
const str = (describe: string, alias?: string): Options => ({ type: 'string', describe, requiresArg: true, ...(alias ? { alias } : {}) });
const bool = (describe: string, alias?: string): Options => ({ type: 'boolean', describe, ...(alias ? { alias } : {}) });

/** docker's `create`/`run` flags (cli/command/container/opts.go). */
export const createOptions: Readonly<Record<string, Options>> = {
  'add-host': list('Add a custom host-to-IP mapping (host:ip)'),
  annotation: list('Add an annotation to the container (passed through to the OCI runtime)'),
  attach: list('Attach to STDIN, STDOUT or STDERR', 'a'),
  'blkio-weight': str('Block IO (relative weight), between 10 and 1000, or 0 to disable'),
  'cap-add': list('Add Linux capabilities'),
  'cap-drop': list('Drop Linux capabilities'),
  'cgroup-parent': str('Optional parent cgroup for the container'),
  cgroupns: str('Cgroup namespace to use (host|private)'),
  cidfile: str('Write the container ID to the file'),
  'cpu-period': str('Limit CPU CFS (Completely Fair Scheduler) period'),
  'cpu-quota': str('Limit CPU CFS (Completely Fair Scheduler) quota'),
  'cpu-shares': str('CPU shares (relative weight)', 'c'),
  cpus: str('Number of CPUs'),
  'cpuset-cpus': str('CPUs in which to allow execution (0-3, 0,1)'),
  'cpuset-mems': str('MEMs in which to allow execution (0-3, 0,1)'),
  device: list('Add a host device to the container'),
  dns: list('Set custom DNS servers'),
  'dns-option': list('Set DNS options'),
  'dns-search': list('Set custom DNS search domains'),
  domainname: str('Container NIS domain name'),
  entrypoint: str('Overwrite the default ENTRYPOINT of the image'),
  env: list('Set environment variables', 'e'),
  'env-file': list('Read in a file of environment variables'),
  expose: list('Expose a port or a range of ports'),
  'group-add': list('Add additional groups to join'),
  'health-cmd': str('Command to run to check health'),
  'health-interval': str('Time between running the check (ms|s|m|h) (default 0s)'),
  'health-retries': str('Consecutive failures needed to report unhealthy'),
  'health-start-interval': str('Time between running the check during the start period (ms|s|m|h) (default 0s)'),
  'health-start-period': str('Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)'),
  'health-timeout': str('Maximum time to allow one check to run (ms|s|m|h) (default 0s)'),
  hostname: str('Container host name', 'h'),
  init: bool('Run an init inside the container that forwards signals and reaps processes'),
  interactive: bool('Keep STDIN open even if not attached', 'i'),
  ip: str('IPv4 address (e.g., 172.30.100.104)'),
  ip6: str('IPv6 address (e.g., 2001:db8::33)'),
  ipc: str('IPC mode to use'),
  label: list('Set meta data on a container', 'l'),
  'label-file': list('Read in a line delimited file of labels'),
  link: list('Add link to another container'),
  'log-driver': str('Logging driver for the container (json-file, none)'),
  'log-opt': list('Log driver options'),
  'mac-address': str('Container MAC address (e.g., 92:d0:c6:0a:29:33)'),
  memory: str('Memory limit', 'm'),
  'memory-reservation': str('Memory soft limit'),
  'memory-swap': str("Swap limit equal to memory plus swap: '-1' to enable unlimited swap"),
  'memory-swappiness': str('Tune container memory swappiness (0 to 100)'),
  mount: list('Attach a filesystem mount to the container'),
  name: str('Assign a name to the container'),
  network: str('Connect a container to a network', 'net'),
  'network-alias': list('Add network-scoped alias for the container', 'net-alias'),
  'no-healthcheck': bool('Disable any container-specified HEALTHCHECK'),
  'oom-kill-disable': bool('Disable OOM Killer'),
  'oom-score-adj': str("Tune host's OOM preferences (-1000 to 1000)"),
  pid: str('PID namespace to use'),
  'pids-limit': str('Tune container pids limit (set -1 for unlimited)'),
  platform: str('Set platform if server is multi-platform capable'),
  privileged: bool('Give extended privileges to this container'),
  publish: list("Publish a container's port(s) to the host", 'p'),
  'publish-all': bool('Publish all exposed ports to random ports', 'P'),
  pull: { type: 'string', choices: ['always', 'missing', 'never'], default: 'missing', describe: 'Pull image before creating' },
  quiet: bool('Suppress the pull output', 'q'),
  'read-only': bool("Mount the container's root filesystem as read only"),
  restart: str('Restart policy to apply when a container exits (no, always, on-failure[:max-retries], unless-stopped)'),
  rm: bool('Automatically remove the container and its associated anonymous volumes when it exits'),
  runtime: str('Runtime to use for this container'),
  'security-opt': list('Security Options'),
  'shm-size': str('Size of /dev/shm'),
  'stop-signal': str('Signal to stop the container'),
  'stop-timeout': str('Timeout (in seconds) to stop a container'),
  'storage-opt': list('Storage driver options for the container'),
  sysctl: list('Sysctl options'),
  tmpfs: list('Mount a tmpfs directory'),
  tty: bool('Allocate a pseudo-TTY', 't'),
  ulimit: list('Ulimit options'),
  user: str('Username or UID (format: <name|uid>[:<group|gid>])', 'u'),
  userns: str('User namespace to use'),
  uts: str('UTS namespace to use'),
  volume: list('Bind mount a volume', 'v'),
  'volumes-from': list('Mount volumes from the specified container(s)'),
  workdir: str('Working directory inside the container', 'w'),
};

function strings(args: ParsedArgs, name: string): string[] {
  const v = args[name];
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).map(String);
}

function string(args: ParsedArgs, name: string): string | undefined {
  const v = args[name];
  if (v === undefined) return undefined;
  return String(Array.isArray(v) ? v[v.length - 1] : v);
}

function invalid(message: string): UsageError {
  return new UsageError(message, 'run');
}

function integer(args: ParsedArgs, name: string): number | undefined {
  const v = string(args, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw invalid(`invalid argument "${v}" for "--${name}" flag: strconv.ParseInt: parsing "${v}": invalid syntax`);
  return n;
}

function bytes(args: ParsedArgs, name: string): number | undefined {
  const v = string(args, name);
  if (v === undefined) return undefined;
  if (v === '-1' && name === 'memory-swap') return -1;
  const n = parseBytes(v);
  if (n === undefined) throw invalid(`invalid argument "${v}" for "--${name}" flag: invalid size: '${v}'`);
  return n;
}

function duration(args: ParsedArgs, name: string): number | undefined {
  const v = string(args, name);
  if (v === undefined) return undefined;
  const n = parseGoDuration(v);
  if (n === undefined) throw invalid(`invalid argument "${v}" for "--${name}" flag: time: invalid duration "${v}"`);
  return n;
}

/** Lines of an env or label file: `KEY=value`, `KEY` (taken from the environment for env files), `#` comments. */
export function readKeyValueFile(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw invalid(`open ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (err as Error).message}`);
  }
  return text
    .split(/\r?\n/)
    .map((line) => line.replace(/^\s+/, ''))
    .filter((line) => line !== '' && !line.startsWith('#'));
}

/** `-e KEY` takes KEY's value from the client's environment; an unset KEY goes as it is (docker's ValidateEnv). */
export function resolveEnv(entries: readonly string[], env: NodeJS.ProcessEnv): string[] {
  const out: string[] = [];
  for (const e of entries) {
    if (e.startsWith('=')) throw invalid(`invalid environment variable: ${e}`);
    out.push(e.includes('=') || env[e] === undefined ? e : `${e}=${env[e]}`);
  }
  return out;
}

/** docker's capability names: upper case with the CAP_ prefix, `ALL` as it is. */
export function normalizeCapabilities(caps: readonly string[]): string[] {
  return caps.map((c) => {
    const upper = c.toUpperCase();
    return upper === 'ALL' || upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
  });
}

/** An endpoint as the docker CLI sends it: every field present, empty. */
function endpointSettings(overrides: EndpointSettings): EndpointSettings {
  return {
    IPAMConfig: null,
    Links: null,
    Aliases: null,
    MacAddress: '',
    DriverOpts: null,
    GwPriority: 0,
    NetworkID: '',
    EndpointID: '',
    Gateway: '',
    IPAddress: '',
    IPPrefixLen: 0,
    IPv6Gateway: '',
    GlobalIPv6Address: '',
    GlobalIPv6PrefixLen: 0,
    DNSNames: null,
    ...overrides,
  };
}

function labelsOf(entries: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const l of entries) {
    const eq = l.indexOf('=');
    labels[eq < 0 ? l : l.slice(0, eq)] = eq < 0 ? '' : l.slice(eq + 1);
  }
  return labels;
}

/** `-p [ip:][hostPort:]containerPort[/proto]` with ranges, as docker's nat.ParsePortSpec. */
export function parsePublish(spec: string): { port: string; binding: PortBinding }[] {
  let rest = spec;
  let proto = 'tcp';
  const slash = rest.lastIndexOf('/');
  if (slash >= 0) {
    proto = rest.slice(slash + 1).toLowerCase();
    rest = rest.slice(0, slash);
  }
  if (!['tcp', 'udp', 'sctp'].includes(proto)) throw invalid(`invalid proto: ${proto}`);
  let ip = '';
  const bracket = /^\[([^\]]+)\]:(.*)$/.exec(rest);
  if (bracket) {
    ip = bracket[1]!;
    rest = bracket[2]!;
  }
  const parts = rest.split(':');
  let hostPart = '';
  let containerPart: string;
  if (bracket) {
    [hostPart = '', containerPart = ''] = parts.length === 1 ? ['', parts[0]!] : parts;
  } else if (parts.length === 1) {
    containerPart = parts[0]!;
  } else if (parts.length === 2) {
    [hostPart, containerPart] = [parts[0]!, parts[1]!];
  } else if (parts.length === 3) {
    [ip, hostPart, containerPart] = [parts[0]!, parts[1]!, parts[2]!];
  } else {
    throw invalid(`invalid port format for --publish: ${spec}`);
  }
  const range = (text: string, what: string): [number, number] => {
    const m = /^(\d+)(?:-(\d+))?$/.exec(text);
    const a = m ? Number(m[1]) : NaN;
    const b = m?.[2] === undefined ? a : Number(m[2]);
    if (!m || b < a || b > 65535 || (what === 'containerPort' && a < 1)) throw invalid(`invalid ${what}: ${text}`);
    return [a, b];
  };
  if (containerPart === '') throw invalid(`no port specified: ${spec}<empty>`);
  const [cStart, cEnd] = range(containerPart, 'containerPort');
  const host = hostPart === '' ? undefined : range(hostPart, 'hostPort');
  // A single container port may take a host range (the engine picks a free one in it); otherwise the ranges pair up.
  if (host && cEnd !== cStart && host[1] - host[0] !== cEnd - cStart) {
    throw invalid(`invalid ranges specified for container and host Ports: ${containerPart} and ${hostPart}`);
  }
  const out: { port: string; binding: PortBinding }[] = [];
  for (let p = cStart; p <= cEnd; p++) {
    const hostPort = !host ? '' : cStart === cEnd && host[0] !== host[1] ? `${host[0]}-${host[1]}` : String(host[0] + (p - cStart));
    out.push({ port: `${p}/${proto}`, binding: { HostIp: ip, HostPort: hostPort } });
  }
  return out;
}

/** `--mount type=bind,source=/a,target=/b,readonly` (docker's CSV form). */
export function parseMountFlag(spec: string): Mount {
  const fields: Record<string, string> = {};
  const flags = new Set<string>();
  for (const part of spec.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) flags.add(part.trim().toLowerCase());
    else fields[part.slice(0, eq).trim().toLowerCase()] = part.slice(eq + 1);
  }
  const type = (fields['type'] ?? 'volume') as NonNullable<Mount['Type']>;
  if (!['bind', 'volume', 'tmpfs', 'image'].includes(type)) throw invalid(`invalid argument "${spec}" for "--mount" flag: unknown mount type "${type}"`);
  const source = fields['source'] ?? fields['src'];
  const target = fields['target'] ?? fields['destination'] ?? fields['dst'];
  if (!target) throw invalid(`invalid argument "${spec}" for "--mount" flag: target is required`);
  const readOnly = flags.has('readonly') || flags.has('ro') || ['1', 'true'].includes(fields['readonly'] ?? fields['ro'] ?? '');
  const mount: { -readonly [K in keyof Mount]: Mount[K] } = { Type: type, Target: target, ...(source !== undefined ? { Source: source } : {}) };
  if (readOnly) mount.ReadOnly = true;
  if (type === 'bind' && (fields['bind-propagation'] || fields['bind-nonrecursive'])) {
    mount.BindOptions = {
      ...(fields['bind-propagation'] ? { Propagation: fields['bind-propagation'] as NonNullable<Mount['BindOptions']>['Propagation'] } : {}),
      ...(fields['bind-nonrecursive'] === 'true' ? { NonRecursive: true } : {}),
    };
  }
  if (type === 'volume') {
    const opts = Object.entries(fields).filter(([k]) => k === 'volume-opt');
    const labels = Object.entries(fields).filter(([k]) => k === 'volume-label');
    if (fields['volume-nocopy'] !== undefined || flags.has('volume-nocopy') || opts.length || labels.length || fields['volume-subpath']) {
      mount.VolumeOptions = {
        ...(fields['volume-nocopy'] !== undefined || flags.has('volume-nocopy') ? { NoCopy: fields['volume-nocopy'] !== 'false' } : {}),
        ...(fields['volume-subpath'] ? { Subpath: fields['volume-subpath'] } : {}),
      };
    }
  }
  if (type === 'tmpfs') {
    const size = fields['tmpfs-size'] ? parseBytes(fields['tmpfs-size']) : undefined;
    const mode = fields['tmpfs-mode'] ? parseInt(fields['tmpfs-mode'], 8) : undefined;
    if (size !== undefined || mode !== undefined) mount.TmpfsOptions = { ...(size !== undefined ? { SizeBytes: size } : {}), ...(mode !== undefined ? { Mode: mode } : {}) };
  }
  return mount;
}

/** `--restart no|always|unless-stopped|on-failure[:N]`. */
export function parseRestartPolicy(text: string): RestartPolicy {
  const [name, count] = text.split(':');
  if (name === 'on-failure') {
    const n = count === undefined ? 0 : Number(count);
    if (!Number.isInteger(n) || n < 0) throw invalid(`invalid restart policy format: maximum retry count must be an integer`);
    return { Name: 'on-failure', MaximumRetryCount: n };
  }
  if (count !== undefined) throw invalid(`invalid restart policy format: maximum retry count can only be used with 'on-failure'`);
  if (name === 'no' || name === 'always' || name === 'unless-stopped' || name === '') return { Name: name === '' ? 'no' : name, MaximumRetryCount: 0 };
  throw invalid(`invalid restart policy format: unknown policy '${name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'`);
}

function parseUlimit(text: string): Ulimit {
  const m = /^([a-z]+)=(-?\d+)(?::(-?\d+))?$/.exec(text);
  if (!m) throw invalid(`invalid argument "${text}" for "--ulimit" flag: invalid ulimit argument`);
  return { Name: m[1]!, Soft: Number(m[2]), Hard: Number(m[3] ?? m[2]) };
}

function parseDevice(text: string): DeviceMapping {
  const [host, ctr, perms] = text.split(':');
  return { PathOnHost: host!, PathInContainer: ctr && !/^[rwm]+$/.test(ctr) ? ctr : host!, CgroupPermissions: perms ?? (ctr && /^[rwm]+$/.test(ctr) ? ctr : 'rwm') };
}

function keyValueMap(entries: readonly string[], flag: string): Record<string, string> | undefined {
  if (entries.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const e of entries) {
    const eq = e.indexOf('=');
    if (eq <= 0) throw invalid(`invalid argument "${e}" for "--${flag}" flag: expected key=value`);
    out[e.slice(0, eq)] = e.slice(eq + 1);
  }
  return out;
}

/** What the container needs besides its create body: name, platform, pull policy, how to attach. */
export interface CreatePlan {
  readonly body: ContainerCreateRequest;
  readonly name: string | undefined;
  readonly platform: string | undefined;
  readonly pull: 'always' | 'missing' | 'never';
  readonly quiet: boolean;
  readonly image: string;
  readonly cidfile: string | undefined;
}

/**
 * The create body docker's CLI would send for these flags (cli/command/container/opts.go
 * `parse`), so that local and remote, Berth and docker, see the same container.
 */
export function buildCreatePlan(args: ParsedArgs, env_: NodeJS.ProcessEnv, options: { readonly detach: boolean; readonly terminalSize?: readonly [number, number] }): CreatePlan {
  const [image, ...cmd] = args._args;
  if (!image) throw invalid('"engine run" requires at least 1 argument.');
  const tty = args['tty'] === true;
  const interactive = args['interactive'] === true;
  const attach = strings(args, 'attach').map((s) => s.toLowerCase());
  for (const a of attach) if (!['stdin', 'stdout', 'stderr'].includes(a)) throw invalid(`invalid argument "${a}" for "-a, --attach" flag: valid streams are STDIN, STDOUT and STDERR`);
  if (options.detach && attach.length) throw invalid('Conflicting options: -a and -d');

  const envEntries = [...strings(args, 'env-file').flatMap(readKeyValueFile), ...strings(args, 'env')];
  const labelEntries = [...strings(args, 'label-file').flatMap(readKeyValueFile), ...strings(args, 'label')];

  const exposed: Record<string, Record<string, never>> = {};
  const bindings: Record<string, PortBinding[]> = {};
  for (const e of strings(args, 'expose')) {
    const [port, proto = 'tcp'] = e.split('/');
    const m = /^(\d+)(?:-(\d+))?$/.exec(port ?? '');
    if (!m) throw invalid(`invalid range format for --expose: ${e}`);
    for (let p = Number(m[1]); p <= Number(m[2] ?? m[1]); p++) exposed[`${p}/${proto}`] = {};
  }
  for (const p of strings(args, 'publish')) {
    for (const { port, binding } of parsePublish(p)) {
      exposed[port] = {};
      (bindings[port] ??= []).push(binding);
    }
  }

  const binds: string[] = [];
  const volumes: Record<string, Record<string, never>> = {};
  for (const v of strings(args, 'volume')) {
    // `-v /data` is an anonymous volume; anything with a source is a bind or a named volume.
    if (!v.includes(':')) volumes[v] = {};
    else binds.push(v);
  }
  const tmpfs: Record<string, string> = {};
  for (const t of strings(args, 'tmpfs')) {
    const colon = t.indexOf(':');
    tmpfs[colon < 0 ? t : t.slice(0, colon)] = colon < 0 ? '' : t.slice(colon + 1);
  }

  const restartText = string(args, 'restart');
  const restart: RestartPolicy = restartText === undefined ? { Name: 'no', MaximumRetryCount: 0 } : parseRestartPolicy(restartText);
  const autoRemove = args['rm'] === true;
  if (autoRemove && restart.Name && restart.Name !== 'no') throw invalid('Conflicting options: --restart and --rm');

  const healthCmd = string(args, 'health-cmd');
  const noHealth = args['no-healthcheck'] === true;
  const interval = duration(args, 'health-interval');
  const timeout = duration(args, 'health-timeout');
  const startPeriod = duration(args, 'health-start-period');
  const startInterval = duration(args, 'health-start-interval');
  const retries = integer(args, 'health-retries');
  const anyHealth = healthCmd !== undefined || interval !== undefined || timeout !== undefined || startPeriod !== undefined || retries !== undefined || startInterval !== undefined;
  if (noHealth && anyHealth) throw invalid('--no-healthcheck conflicts with --health-* options');
  for (const [flag, v] of [['interval', interval], ['timeout', timeout], ['start-period', startPeriod], ['start-interval', startInterval]] as const) {
    if (v !== undefined && v < 0) throw invalid(`--health-${flag} cannot be negative`);
  }
  if (retries !== undefined && retries < 0) throw invalid('--health-retries cannot be negative');

  const cpus = string(args, 'cpus');
  let nanoCpus: number | undefined;
  if (cpus !== undefined) {
    const n = Number(cpus);
    if (!Number.isFinite(n) || n < 0) throw invalid(`invalid argument "${cpus}" for "--cpus" flag: failed to parse ${cpus} as a rational number`);
    nanoCpus = Math.round(n * 1e9);
  }

  const network = string(args, 'network');
  const aliases = strings(args, 'network-alias');
  const ip = string(args, 'ip');
  const ip6 = string(args, 'ip6');
  const mac = string(args, 'mac-address');
  const networkMode = network ?? 'default';
  if (aliases.length && (networkMode === 'default' || networkMode === 'bridge' || networkMode === 'host' || networkMode === 'none' || networkMode.startsWith('container:'))) {
    throw invalid('network-scoped aliases are only supported for user-defined networks');
  }
  const endpoint = endpointSettings({
    ...(aliases.length ? { Aliases: aliases } : {}),
    ...(ip || ip6 ? { IPAMConfig: { ...(ip ? { IPv4Address: ip } : {}), ...(ip6 ? { IPv6Address: ip6 } : {}) } } : {}),
    ...(mac ? { MacAddress: mac } : {}),
  });

  const entrypoint = string(args, 'entrypoint');
  const logOpts = keyValueMap(strings(args, 'log-opt'), 'log-opt');
  const stopTimeout = integer(args, 'stop-timeout');
  const pidsLimit = integer(args, 'pids-limit');
  const swappiness = integer(args, 'memory-swappiness');
  const listOrNull = (name: string) => (strings(args, name).length ? strings(args, name) : null);
  const annotations = keyValueMap(strings(args, 'annotation'), 'annotation');
  const storageOpt = keyValueMap(strings(args, 'storage-opt'), 'storage-opt');
  const sysctls = keyValueMap(strings(args, 'sysctl'), 'sysctl');

  // Field for field what the docker CLI sends, so that a server sees the same request from both.
  const hostConfig: HostConfig = {
    Binds: binds.length ? binds : null,
    ContainerIDFile: string(args, 'cidfile') ?? '',
    LogConfig: { Type: string(args, 'log-driver') ?? '', Config: logOpts ?? {} },
    NetworkMode: networkMode,
    PortBindings: bindings,
    RestartPolicy: restart,
    AutoRemove: autoRemove,
    VolumeDriver: '',
    VolumesFrom: listOrNull('volumes-from'),
    ConsoleSize: options.terminalSize ?? [0, 0],
    ...(annotations ? { Annotations: annotations } : {}),
    CapAdd: strings(args, 'cap-add').length ? normalizeCapabilities(strings(args, 'cap-add')) : null,
    CapDrop: strings(args, 'cap-drop').length ? normalizeCapabilities(strings(args, 'cap-drop')) : null,
    CgroupnsMode: (string(args, 'cgroupns') ?? '') as NonNullable<HostConfig['CgroupnsMode']>,
    Dns: strings(args, 'dns'),
    DnsOptions: strings(args, 'dns-option'),
    DnsSearch: strings(args, 'dns-search'),
    ExtraHosts: listOrNull('add-host'),
    GroupAdd: listOrNull('group-add'),
    IpcMode: string(args, 'ipc') ?? '',
    Cgroup: '',
    Links: listOrNull('link'),
    OomScoreAdj: integer(args, 'oom-score-adj') ?? 0,
    PidMode: string(args, 'pid') ?? '',
    Privileged: args['privileged'] === true,
    PublishAllPorts: args['publish-all'] === true,
    ReadonlyRootfs: args['read-only'] === true,
    SecurityOpt: listOrNull('security-opt'),
    ...(storageOpt ? { StorageOpt: storageOpt } : {}),
    ...(Object.keys(tmpfs).length ? { Tmpfs: tmpfs } : {}),
    UTSMode: string(args, 'uts') ?? '',
    UsernsMode: string(args, 'userns') ?? '',
    ShmSize: bytes(args, 'shm-size') ?? 0,
    ...(sysctls ? { Sysctls: sysctls } : {}),
    ...(string(args, 'runtime') ? { Runtime: string(args, 'runtime')! } : {}),
    Isolation: '',
    CpuShares: integer(args, 'cpu-shares') ?? 0,
    Memory: bytes(args, 'memory') ?? 0,
    NanoCpus: nanoCpus ?? 0,
    CgroupParent: string(args, 'cgroup-parent') ?? '',
    BlkioWeight: integer(args, 'blkio-weight') ?? 0,
    BlkioWeightDevice: [],
    BlkioDeviceReadBps: [],
    BlkioDeviceWriteBps: [],
    BlkioDeviceReadIOps: [],
    BlkioDeviceWriteIOps: [],
    CpuPeriod: integer(args, 'cpu-period') ?? 0,
    CpuQuota: integer(args, 'cpu-quota') ?? 0,
    CpuRealtimePeriod: 0,
    CpuRealtimeRuntime: 0,
    CpusetCpus: string(args, 'cpuset-cpus') ?? '',
    CpusetMems: string(args, 'cpuset-mems') ?? '',
    Devices: strings(args, 'device').map(parseDevice),
    DeviceCgroupRules: null,
    DeviceRequests: null,
    MemoryReservation: bytes(args, 'memory-reservation') ?? 0,
    MemorySwap: bytes(args, 'memory-swap') ?? 0,
    MemorySwappiness: swappiness ?? -1,
    OomKillDisable: args['oom-kill-disable'] === true,
    PidsLimit: pidsLimit ?? 0,
    Ulimits: strings(args, 'ulimit').map(parseUlimit),
    CpuCount: 0,
    CpuPercent: 0,
    IOMaximumIOps: 0,
    IOMaximumBandwidth: 0,
    ...(strings(args, 'mount').length ? { Mounts: strings(args, 'mount').map(parseMountFlag) } : {}),
    MaskedPaths: null,
    ReadonlyPaths: null,
    ...(args['init'] !== undefined ? { Init: args['init'] === true } : {}),
  };

  const attachStdin = options.detach ? false : attach.length ? attach.includes('stdin') : interactive;
  const env = resolveEnv(envEntries, env_);
  const body: ContainerCreateRequest = {
    Hostname: string(args, 'hostname') ?? '',
    Domainname: string(args, 'domainname') ?? '',
    User: string(args, 'user') ?? '',
    AttachStdin: attachStdin,
    AttachStdout: options.detach ? false : attach.length ? attach.includes('stdout') : true,
    AttachStderr: options.detach ? false : attach.length ? attach.includes('stderr') : true,
    ...(Object.keys(exposed).length ? { ExposedPorts: exposed } : {}),
    Tty: tty,
    OpenStdin: interactive,
    StdinOnce: interactive && attachStdin,
    Env: env.length ? env : null,
    Cmd: cmd.length ? cmd : null,
    ...(noHealth ? { Healthcheck: { Test: ['NONE'] } } : {}),
    ...(anyHealth
      ? {
          Healthcheck: {
            ...(healthCmd !== undefined ? { Test: ['CMD-SHELL', healthCmd] } : {}),
            ...(interval !== undefined ? { Interval: interval } : {}),
            ...(timeout !== undefined ? { Timeout: timeout } : {}),
            ...(startPeriod !== undefined ? { StartPeriod: startPeriod } : {}),
            ...(startInterval !== undefined ? { StartInterval: startInterval } : {}),
            ...(retries !== undefined ? { Retries: retries } : {}),
          },
        }
      : {}),
    Image: image,
    Volumes: volumes,
    WorkingDir: string(args, 'workdir') ?? '',
    Entrypoint: entrypoint === undefined ? null : entrypoint === '' ? [''] : [entrypoint],
    OnBuild: null,
    Labels: labelsOf(labelEntries),
    ...(string(args, 'stop-signal') ? { StopSignal: string(args, 'stop-signal')! } : {}),
    ...(stopTimeout !== undefined ? { StopTimeout: stopTimeout } : {}),
    HostConfig: hostConfig,
    NetworkingConfig: { EndpointsConfig: { [networkMode]: endpoint } },
  };
  return {
    body,
    image,
    name: string(args, 'name'),
    platform: string(args, 'platform'),
    pull: (string(args, 'pull') ?? 'missing') as CreatePlan['pull'],
    quiet: args['quiet'] === true,
    cidfile: string(args, 'cidfile'),
  };
}
