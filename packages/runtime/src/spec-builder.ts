import type { ContainerConfig } from '@berth/oci';
import { availableCapabilities, resolveCapabilities } from './capabilities.js';
import { RuntimeError, RuntimeErrorCode } from './errors.js';
import type { DeviceRule, IdMapping, LinuxDevice, MountSpec, NamespaceType, RuntimeSpec, SeccompSpec } from './oci-spec.js';
import { hostDevice, listHostDevices } from './host-devices.js';
import { defaultSeccompProfile } from './seccomp-profile.js';
import { resolveUser } from './user.js';

/** The image's part of a container: `config` of an OCI image config, in Docker's casing. */
export type ImageRunConfig = Pick<ContainerConfig, 'Env' | 'Cmd' | 'Entrypoint' | 'User' | 'WorkingDir'>;

/** A mount of `docker run --mount`/`-v`/`--tmpfs`. */
export interface RunMount {
  readonly type: 'bind' | 'tmpfs';
  /** Host path of a bind mount (volumes are bind mounts of their directory). */
  readonly source?: string;
  readonly target: string;
  readonly readOnly?: boolean;
  /** rprivate (default), private, rshared, shared, rslave, slave. */
  readonly propagation?: string;
  /** tmpfs size in bytes and mode. */
  readonly tmpfsSize?: number;
  readonly tmpfsMode?: number;
  /** More mount options, passed on as they are (nosuid, noexec, ...). */
  readonly options?: readonly string[];
}

/**
 * A mount that makes up the container's root file system (an overlay of image layers, or a bind
 * of a copied directory), in mount(8)'s terms: `options` are flags and filesystem data alike;
 * `cwd` is where relative paths in them (an overlay's lowerdirs) resolve.
 */
export interface RootfsMount {
  readonly type: string;
  readonly source: string;
  readonly options: readonly string[];
  readonly cwd?: string;
}

/** Annotations of a spec that berth-runtime acts on (see docs/berth-runtime.md). */
export const RuntimeAnnotation = {
  /** JSON of the `RootfsMount`s to mount at root.path in the container's mount namespace. */
  RootfsMounts: 'org.berth.rootfs.mounts',
  /** docker's `--user`, looked up in the container's /etc/passwd and /etc/group. */
  User: 'org.berth.user',
  /** docker's `--group-add`, comma-separated, looked up with the user. */
  GroupAdd: 'org.berth.group-add',
} as const;

/** A namespace to share instead of creating a private one: the host's, or one at a path. */
export type NamespaceMode = 'private' | 'host' | { readonly path: string };

/** What `docker run` lets one say about a container, as far as the OCI spec carries it. */
export interface RunOptions {
  /**
   * The container's root filesystem (absolute): the spec's root.path and where users are looked
   * up; with `rootfsMounts`, the empty directory they are mounted on.
   */
  readonly rootfs: string;
  /**
   * berth-runtime: mount these at `rootfs` inside the container's mount namespace, so that the
   * host never holds (or has to unmount) the container's root. The user is then looked up by
   * berth-runtime in the container, as nothing of it can be read here before it starts.
   */
  readonly rootfsMounts?: readonly RootfsMount[];
  /** The container id: the default hostname is its first 12 characters, the cgroup /berth/<id>. */
  readonly id: string;
  readonly hostname?: string;
  readonly domainname?: string;
  /** Replaces the image's Cmd. */
  readonly cmd?: readonly string[];
  /** Replaces the image's Entrypoint; an empty list clears it (and the image's Cmd with it, as docker does). */
  readonly entrypoint?: readonly string[];
  /** KEY=value entries added to (and overriding) the image's Env. */
  readonly env?: readonly string[];
  readonly user?: string;
  readonly groupAdd?: readonly string[];
  readonly workdir?: string;
  readonly tty?: boolean;
  readonly mounts?: readonly RunMount[];
  readonly readOnlyRootfs?: boolean;
  readonly privileged?: boolean;
  readonly capAdd?: readonly string[];
  readonly capDrop?: readonly string[];
  /** Memory limit in bytes. */
  readonly memory?: number;
  readonly memoryReservation?: number;
  /** Memory plus swap in bytes, -1 for unlimited swap; docker's default is twice the memory limit. */
  readonly memorySwap?: number;
  readonly memorySwappiness?: number;
  readonly oomKillDisable?: boolean;
  readonly cpuShares?: number;
  readonly cpuQuota?: number;
  readonly cpuPeriod?: number;
  /** `--cpus` as billionths of a CPU: becomes quota/period (period 100ms). */
  readonly nanoCpus?: number;
  readonly cpusetCpus?: string;
  readonly cpusetMems?: string;
  /** Maximum number of processes; 0 or -1 for none. */
  readonly pidsLimit?: number;
  readonly blkioWeight?: number;
  readonly ulimits?: readonly { readonly name: string; readonly soft: number; readonly hard: number }[];
  readonly sysctls?: Readonly<Record<string, string>>;
  /** `no-new-privileges` (default false, as docker). */
  readonly noNewPrivileges?: boolean;
  /** `default` (docker's profile), `unconfined`, or a profile of one's own. */
  readonly seccomp?: 'default' | 'unconfined' | SeccompSpec;
  readonly oomScoreAdj?: number;
  /** Runs the container in a user namespace: container ids 0..size-1 become host ids hostId... */
  readonly userNamespace?: { readonly uidMappings: readonly IdMapping[]; readonly gidMappings: readonly IdMapping[] };
  readonly network?: NamespaceMode;
  readonly pid?: NamespaceMode;
  readonly ipc?: NamespaceMode;
  readonly uts?: NamespaceMode;
  /** A private cgroup namespace (docker's default on cgroup v2 only). */
  readonly cgroupNamespace?: boolean;
  /** The cgroup path; default /berth/<id>. */
  readonly cgroupsPath?: string;
  /** Host devices to add (`--device /dev/fuse:/dev/fuse:rwm`). */
  readonly devices?: readonly { readonly pathOnHost: string; readonly pathInContainer?: string; readonly permissions?: string }[];
  /** /dev/shm size in bytes (default 64 MiB). */
  readonly shmSize?: number;
  readonly annotations?: Readonly<Record<string, string>>;
  /** The host's devices for `privileged` and `devices`; by default read from /dev. */
  readonly hostDevices?: readonly LinuxDevice[];
}

const defaultPath = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

// Docker's masked and read-only paths (moby oci/defaults.go).
const maskedPaths = [
  '/proc/asound', '/proc/acpi', '/proc/interrupts', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap',
];
const readonlyPaths = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

// The device cgroup of every unprivileged docker container: nothing but these.
const defaultDeviceRules: DeviceRule[] = [
  { allow: false, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 8, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 9, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 0, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 1, access: 'rwm' },
  { allow: false, type: 'c', major: 10, minor: 229, access: 'rwm' },
];

function envKey(entry: string): string {
  const i = entry.indexOf('=');
  return i < 0 ? entry : entry.slice(0, i);
}

/** `base` with `overrides` applied by key, in docker's order (image first, then the run's). */
export function mergeEnv(base: readonly string[], overrides: readonly string[]): string[] {
  const out = [...base];
  for (const entry of overrides) {
    const i = out.findIndex((e) => envKey(e) === envKey(entry));
    if (i >= 0) out[i] = entry;
    else out.push(entry);
  }
  return out;
}

function invalid(message: string): RuntimeError {
  return new RuntimeError(message, RuntimeErrorCode.InvalidSpec);
}

function namespaces(o: RunOptions): { type: NamespaceType; path?: string }[] {
  const out: { type: NamespaceType; path?: string }[] = [{ type: 'mount' }];
  const add = (type: NamespaceType, mode: NamespaceMode | undefined) => {
    if (mode === 'host') return;
    if (mode === undefined || mode === 'private') out.push({ type });
    else out.push({ type, path: mode.path });
  };
  add('network', o.network);
  add('uts', o.uts);
  add('pid', o.pid);
  add('ipc', o.ipc);
  if (o.cgroupNamespace) out.push({ type: 'cgroup' });
  if (o.userNamespace) out.push({ type: 'user' });
  if (o.uts === 'host' && o.hostname) throw invalid('hostname: cannot be set with the host uts namespace');
  return out;
}

function mountsFor(o: RunOptions): MountSpec[] {
  const shm = o.shmSize ?? 64 * 1024 * 1024;
  const sysOpts = ['nosuid', 'noexec', 'nodev', o.privileged ? 'rw' : 'ro'];
  const defaults: MountSpec[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
    },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: sysOpts },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', o.privileged ? 'rw' : 'ro'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${shm}`] },
  ];
  const user: MountSpec[] = [];
  for (const m of o.mounts ?? []) {
    if (!m.target.startsWith('/')) throw invalid(`mounts: target ${JSON.stringify(m.target)} is not an absolute path`);
    if (m.type === 'bind') {
      if (!m.source) throw invalid(`mounts: the bind mount at ${m.target} has no source`);
      const options = ['rbind', m.propagation ?? 'rprivate', ...(m.readOnly ? ['ro'] : []), ...(m.options ?? [])];
      user.push({ destination: m.target, type: 'bind', source: m.source, options });
    } else {
      const options = ['nosuid', 'nodev', 'noexec', ...(m.readOnly ? ['ro'] : [])];
      if (m.tmpfsSize !== undefined) options.push(`size=${m.tmpfsSize}`);
      if (m.tmpfsMode !== undefined) options.push(`mode=${m.tmpfsMode.toString(8)}`);
      options.push(...(m.options ?? []));
      user.push({ destination: m.target, type: 'tmpfs', source: 'tmpfs', options });
    }
  }
  // A mount of the run replaces a default one at the same place (docker: -v over /dev/shm).
  return [...defaults.filter((d) => !user.some((u) => u.destination === d.destination)), ...user];
}

function resources(o: RunOptions, devices: DeviceRule[]) {
  const memory: NonNullable<NonNullable<RuntimeSpec['linux']>['resources']>['memory'] = {};
  if (o.memory) {
    memory.limit = o.memory;
    memory.swap = o.memorySwap ?? o.memory * 2;
  } else if (o.memorySwap !== undefined && o.memorySwap !== 0) {
    throw invalid('memorySwap: needs a memory limit too');
  }
  if (o.memory && o.memorySwap !== undefined && o.memorySwap > 0 && o.memorySwap < o.memory) {
    throw invalid('memorySwap: must be at least the memory limit (it counts memory plus swap)');
  }
  if (o.memoryReservation) memory.reservation = o.memoryReservation;
  if (o.memorySwappiness !== undefined && o.memorySwappiness >= 0) memory.swappiness = o.memorySwappiness;
  if (o.oomKillDisable) memory.disableOOMKiller = true;
  const cpu: { shares?: number; quota?: number; period?: number; cpus?: string; mems?: string } = {};
  if (o.nanoCpus) {
    if (o.cpuQuota || o.cpuPeriod) throw invalid('nanoCpus: conflicts with cpuQuota and cpuPeriod');
    cpu.period = 100000;
    cpu.quota = Math.round((o.nanoCpus * 100000) / 1e9);
  }
  if (o.cpuShares) cpu.shares = o.cpuShares;
  if (o.cpuQuota) cpu.quota = o.cpuQuota;
  if (o.cpuPeriod) cpu.period = o.cpuPeriod;
  if (o.cpusetCpus) cpu.cpus = o.cpusetCpus;
  if (o.cpusetMems) cpu.mems = o.cpusetMems;
  return {
    devices,
    ...(Object.keys(memory).length ? { memory } : {}),
    ...(Object.keys(cpu).length ? { cpu } : {}),
    ...(o.pidsLimit !== undefined && o.pidsLimit !== 0 ? { pids: { limit: o.pidsLimit } } : {}),
    ...(o.blkioWeight ? { blockIO: { weight: o.blkioWeight } } : {}),
  };
}

/**
 * Builds the OCI runtime spec of a container from its image config and docker-like run options,
 * with docker's defaults: its mounts, masked and read-only paths, device rules, 14 capabilities,
 * seccomp profile, namespaces, PATH/HOSTNAME/TERM/HOME, and the user looked up in the rootfs.
 */
export async function buildSpec(image: ImageRunConfig, o: RunOptions): Promise<RuntimeSpec> {
  if (!o.rootfs.startsWith('/')) throw invalid(`rootfs: ${JSON.stringify(o.rootfs)} is not an absolute path`);
  if (!o.id) throw invalid('id: required');
  const entrypoint = o.entrypoint ?? image.Entrypoint ?? [];
  // A new entrypoint drops the image's Cmd (docker's rule); an explicit cmd always wins.
  const cmd = o.cmd ?? (o.entrypoint !== undefined ? [] : (image.Cmd ?? []));
  const args = [...entrypoint, ...cmd];
  if (args.length === 0) throw invalid('no command: the image has no Entrypoint or Cmd and none was given');
  const userText = o.user ?? image.User ?? '';
  // With its root mounted by the runtime, the user is looked up there (HOME too, when unset).
  const deferred = o.rootfsMounts !== undefined && o.rootfsMounts.length > 0;
  const user = deferred ? undefined : await resolveUser(o.rootfs, userText, o.groupAdd);
  const hostname = o.uts === 'host' ? undefined : (o.hostname ?? o.id.slice(0, 12));
  let env = mergeEnv([defaultPath], image.Env ?? []);
  if (hostname) env = mergeEnv(env, [`HOSTNAME=${hostname}`]);
  if (o.tty) env = mergeEnv(env, ['TERM=xterm']);
  env = mergeEnv(env, o.env ?? []);
  if (user && !env.some((e) => envKey(e) === 'HOME')) env.push(`HOME=${user.home}`);
  const cwd = o.workdir || image.WorkingDir || '/';
  if (!cwd.startsWith('/')) throw invalid(`workdir: ${JSON.stringify(cwd)} is not an absolute path`);

  const caps = o.privileged
    ? await availableCapabilities()
    : resolveCapabilities({ ...(o.capAdd ? { capAdd: o.capAdd } : {}), ...(o.capDrop ? { capDrop: o.capDrop } : {}) });
  const seccomp = o.privileged || o.seccomp === 'unconfined' ? undefined : typeof o.seccomp === 'object' ? o.seccomp : defaultSeccompProfile(caps);

  const linuxDevices: LinuxDevice[] = [];
  let deviceRules: DeviceRule[];
  if (o.privileged) {
    deviceRules = [{ allow: true, access: 'rwm' }];
    linuxDevices.push(...(o.hostDevices ?? (await listHostDevices())));
  } else {
    deviceRules = [...defaultDeviceRules];
    for (const d of o.devices ?? []) {
      const host = o.hostDevices ? o.hostDevices.find((h) => h.path === d.pathOnHost) : await hostDevice(d.pathOnHost);
      if (!host) throw invalid(`devices: ${d.pathOnHost} is not a device of this host`);
      linuxDevices.push({ ...host, path: d.pathInContainer ?? d.pathOnHost });
      deviceRules.push({ allow: true, type: host.type === 'b' ? 'b' : 'c', major: host.major, minor: host.minor, access: d.permissions ?? 'rwm' });
    }
  }

  const spec: RuntimeSpec = {
    ociVersion: '1.0.2',
    root: { path: o.rootfs, readonly: o.readOnlyRootfs ?? false },
    process: {
      terminal: o.tty ?? false,
      user: user ? { uid: user.uid, gid: user.gid, ...(user.additionalGids.length ? { additionalGids: [...user.additionalGids] } : {}) } : { uid: 0, gid: 0 },
      args,
      env,
      cwd,
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      noNewPrivileges: o.noNewPrivileges ?? false,
      ...(o.ulimits?.length ? { rlimits: o.ulimits.map((u) => ({ type: `RLIMIT_${u.name.toUpperCase()}`, soft: u.soft, hard: u.hard })) } : {}),
      ...(o.oomScoreAdj !== undefined ? { oomScoreAdj: o.oomScoreAdj } : {}),
    },
    ...(hostname ? { hostname } : {}),
    ...(o.domainname ? { domainname: o.domainname } : {}),
    mounts: mountsFor(o),
    ...(o.annotations || deferred
      ? {
          annotations: {
            ...o.annotations,
            ...(deferred
              ? {
                  [RuntimeAnnotation.RootfsMounts]: JSON.stringify(o.rootfsMounts!.map((m) => ({ type: m.type, source: m.source, options: [...m.options], ...(m.cwd ? { cwd: m.cwd } : {}) }))),
                  [RuntimeAnnotation.User]: userText,
                  ...(o.groupAdd?.length ? { [RuntimeAnnotation.GroupAdd]: o.groupAdd.join(',') } : {}),
                }
              : {}),
          },
        }
      : {}),
    linux: {
      namespaces: namespaces(o),
      ...(o.userNamespace ? { uidMappings: o.userNamespace.uidMappings.map((m) => ({ ...m })), gidMappings: o.userNamespace.gidMappings.map((m) => ({ ...m })) } : {}),
      ...(linuxDevices.length ? { devices: linuxDevices } : {}),
      cgroupsPath: o.cgroupsPath ?? `/berth/${o.id}`,
      resources: resources(o, deviceRules),
      ...(o.sysctls && Object.keys(o.sysctls).length ? { sysctl: { ...o.sysctls } } : {}),
      ...(seccomp ? { seccomp } : {}),
      ...(o.privileged ? {} : { maskedPaths: [...maskedPaths], readonlyPaths: [...readonlyPaths] }),
    },
  };
  return spec;
}
