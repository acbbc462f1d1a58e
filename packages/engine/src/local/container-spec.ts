import { join } from 'node:path';
import type { NamespaceMode, RootfsMount, RunMount, RunOptions } from '@berth/runtime';
import type { HostConfig } from '../types/container.js';
import type { ContainerRecord, MountRecord } from './container-record.js';
import { invalidParameter } from './docker-errors.js';

/** Where `--init`'s init is mounted in the container, as docker mounts its docker-init. */
export const initPathInContainer = '/sbin/docker-init';

/** The paths of the /etc files a container gets bind-mounted (its own, or another container's). */
export interface EtcFiles {
  readonly hostname: string;
  readonly hosts: string;
  readonly resolvConf: string;
}

/** What the spec needs besides the record: namespaces to join, files, the init binary. */
export interface SpecInputs {
  readonly rootfs: string;
  /** What berth-runtime mounts at `rootfs` inside the container (absent: it is mounted here). */
  readonly rootfsMounts?: readonly RootfsMount[];
  readonly etc: EtcFiles | undefined;
  readonly network: NamespaceMode;
  readonly pid: NamespaceMode;
  readonly ipc: NamespaceMode;
  readonly uts: NamespaceMode;
  /** The host path of the init to run as pid 1 with `--init`. */
  readonly initPath?: string;
  readonly hostname?: string;
}

/** The mount a recorded mount becomes in the runtime spec. */
function runMount(m: MountRecord): RunMount {
  // The spec builder puts nosuid, nodev, noexec first; what the user adds (`exec`) comes after and wins.
  if (m.type === 'tmpfs') {
    return { type: 'tmpfs', target: m.destination, readOnly: !m.rw, options: (m.tmpfsOptions ?? []).filter((o) => !['nosuid', 'nodev', 'noexec', 'ro', 'rw'].includes(o)) };
  }
  const source = m.type === 'volume' && m.subpath ? join(m.source, m.subpath) : m.source;
  return {
    type: 'bind',
    source,
    target: m.destination,
    readOnly: !m.rw,
    ...(m.propagation ? { propagation: m.propagation } : {}),
    ...(m.nonRecursive ? { options: ['bind'] } : {}),
  };
}

function shareMode(mode: string | undefined, what: string): NamespaceMode {
  if (!mode || mode === 'private' || mode === 'shareable' || mode === '') return 'private';
  if (mode === 'host') return 'host';
  throw invalidParameter(`invalid ${what} mode: ${mode}`);
}

/** `--ipc`, `--pid`, `--uts` modes that are not `container:` (those the caller resolves to paths). */
export function namespaceMode(mode: string | undefined, what: string): NamespaceMode | { readonly container: string } {
  if (mode?.startsWith('container:')) return { container: mode.slice('container:'.length) };
  return shareMode(mode, what);
}

function securityOptions(host: HostConfig): { noNewPrivileges: boolean; seccomp: 'default' | 'unconfined' } {
  let noNewPrivileges = false;
  let seccomp: 'default' | 'unconfined' = 'default';
  for (const opt of host.SecurityOpt ?? []) {
    const [key, value = 'true'] = opt.includes('=') ? opt.split('=', 2) : opt.split(':', 2);
    if (key === 'no-new-privileges') noNewPrivileges = value === 'true';
    else if (key === 'seccomp') {
      if (value !== 'unconfined' && value !== 'builtin') throw invalidParameter(`seccomp profiles other than unconfined and builtin are not supported: ${opt}`);
      seccomp = value === 'unconfined' ? 'unconfined' : 'default';
    } else if (key === 'apparmor' || key === 'label') {
      continue;
    } else {
      throw invalidParameter(`invalid --security-opt: ${opt}`);
    }
  }
  return { noNewPrivileges, seccomp };
}

/** The runtime's run options for a container record: docker's HostConfig mapped onto the spec builder's options. */
export async function runOptionsFor(record: ContainerRecord, inputs: SpecInputs): Promise<RunOptions> {
  const host = record.hostConfig;
  const config = record.config;
  const security = securityOptions(host);
  const mounts: RunMount[] = [];
  if (inputs.etc) {
    const has = (dest: string) => record.mounts.some((m) => m.destination === dest);
    if (!has('/etc/hostname')) mounts.push({ type: 'bind', source: inputs.etc.hostname, target: '/etc/hostname', propagation: 'rprivate' });
    if (!has('/etc/hosts')) mounts.push({ type: 'bind', source: inputs.etc.hosts, target: '/etc/hosts', propagation: 'rprivate' });
    if (!has('/etc/resolv.conf')) mounts.push({ type: 'bind', source: inputs.etc.resolvConf, target: '/etc/resolv.conf', propagation: 'rprivate' });
  }
  // Parents before children, as docker sorts mounts by destination depth.
  const user = [...record.mounts].sort((a, b) => a.destination.split('/').length - b.destination.split('/').length);
  for (const m of user) mounts.push(runMount(m));
  if (inputs.initPath) mounts.push({ type: 'bind', source: inputs.initPath, target: initPathInContainer, readOnly: true, propagation: 'rprivate' });
  const devices = (host.Devices ?? []).map((d) => ({
    pathOnHost: d.PathOnHost,
    ...(d.PathInContainer ? { pathInContainer: d.PathInContainer } : {}),
    ...(d.CgroupPermissions ? { permissions: d.CgroupPermissions } : {}),
  }));
  const args = inputs.initPath ? [initPathInContainer, '--', record.path, ...record.args] : [record.path, ...record.args];
  return {
    rootfs: inputs.rootfs,
    ...(inputs.rootfsMounts ? { rootfsMounts: inputs.rootfsMounts } : {}),
    id: record.id,
    ...(inputs.uts === 'host' ? {} : { hostname: inputs.hostname ?? config.Hostname ?? record.id.slice(0, 12) }),
    ...(config.Domainname ? { domainname: config.Domainname } : {}),
    entrypoint: [args[0]!],
    cmd: args.slice(1),
    env: [...(config.Env ?? [])],
    ...(config.User ? { user: config.User } : {}),
    ...(host.GroupAdd?.length ? { groupAdd: host.GroupAdd } : {}),
    ...(config.WorkingDir ? { workdir: config.WorkingDir } : {}),
    tty: config.Tty ?? false,
    mounts,
    readOnlyRootfs: host.ReadonlyRootfs ?? false,
    privileged: host.Privileged ?? false,
    ...(host.CapAdd?.length ? { capAdd: host.CapAdd } : {}),
    ...(host.CapDrop?.length ? { capDrop: host.CapDrop } : {}),
    ...(host.Memory ? { memory: host.Memory } : {}),
    ...(host.MemoryReservation ? { memoryReservation: host.MemoryReservation } : {}),
    ...(host.MemorySwap ? { memorySwap: host.MemorySwap } : {}),
    ...(host.MemorySwappiness !== undefined && host.MemorySwappiness !== null && host.MemorySwappiness >= 0 ? { memorySwappiness: host.MemorySwappiness } : {}),
    ...(host.OomKillDisable ? { oomKillDisable: true } : {}),
    ...(host.CpuShares ? { cpuShares: host.CpuShares } : {}),
    ...(host.CpuQuota ? { cpuQuota: host.CpuQuota } : {}),
    ...(host.CpuPeriod ? { cpuPeriod: host.CpuPeriod } : {}),
    ...(host.NanoCpus ? { nanoCpus: host.NanoCpus } : {}),
    ...(host.CpusetCpus ? { cpusetCpus: host.CpusetCpus } : {}),
    ...(host.CpusetMems ? { cpusetMems: host.CpusetMems } : {}),
    ...(host.PidsLimit && host.PidsLimit > 0 ? { pidsLimit: host.PidsLimit } : {}),
    ...(host.BlkioWeight ? { blkioWeight: host.BlkioWeight } : {}),
    ...(host.Ulimits?.length ? { ulimits: host.Ulimits.map((u) => ({ name: u.Name, soft: u.Soft, hard: u.Hard })) } : {}),
    ...(host.Sysctls && Object.keys(host.Sysctls).length ? { sysctls: host.Sysctls } : {}),
    noNewPrivileges: security.noNewPrivileges,
    seccomp: security.seccomp,
    ...(host.OomScoreAdj ? { oomScoreAdj: host.OomScoreAdj } : {}),
    network: inputs.network,
    pid: inputs.pid,
    ipc: inputs.ipc,
    uts: inputs.uts,
    ...(host.ShmSize ? { shmSize: host.ShmSize } : {}),
    ...(devices.length ? { devices } : {}),
    cgroupsPath: host.CgroupParent ? `${host.CgroupParent.replace(/\/$/, '')}/berth-${record.id}` : `/berth/${record.id}`,
    ...(host.Annotations && Object.keys(host.Annotations).length ? { annotations: host.Annotations } : {}),
  };
}
