import { readFile } from 'node:fs/promises';
import { totalmem } from 'node:os';
import { errnoCode } from '@berth/errors';

/** Resource usage of a container, read from its cgroup files (what `docker stats` shows). */
export interface ContainerStats {
  readonly read: Date;
  readonly layout: CgroupLayout;
  readonly memory: {
    /** Bytes in use, page cache included (v1 usage_in_bytes, v2 memory.current). */
    readonly usage: number;
    /** The limit in bytes; the host's memory when unlimited, as docker reports it. */
    readonly limit: number;
    readonly maxUsage?: number;
    /** memory.stat as numbers (cache, rss, inactive_file, ... on v1; anon, file, ... on v2). */
    readonly stats: Readonly<Record<string, number>>;
    /** How often the kernel's OOM killer killed a process of the container. */
    readonly oomKills: number;
  };
  readonly cpu: {
    /** CPU time used by the container, in nanoseconds. */
    readonly usageNs: number;
    readonly userNs?: number;
    readonly systemNs?: number;
    readonly perCpuNs?: readonly number[];
    readonly periods?: number;
    readonly throttledPeriods?: number;
    readonly throttledNs?: number;
    /** Total CPU time of the host (all CPUs, /proc/stat) in nanoseconds, for a percentage as docker computes it. */
    readonly systemUsageNs: number;
    readonly onlineCpus: number;
  };
  readonly pids: { readonly current: number; readonly limit?: number };
}

export type CgroupLayout = 'v1' | 'v2' | 'hybrid';

/** A container's cgroups: the layout and the directory per hierarchy, keyed by controller ("unified" for v2). */
export interface CgroupPaths {
  readonly layout: CgroupLayout;
  readonly paths: Readonly<Record<string, string>>;
}

async function readText(path: string | undefined): Promise<string | undefined> {
  if (!path) return undefined;
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if (['ENOENT', 'ENODEV', 'EINVAL', 'EOPNOTSUPP'].includes(errnoCode(err) ?? '')) return undefined;
    throw err;
  }
}

async function readNumber(path: string | undefined): Promise<number | undefined> {
  const text = (await readText(path))?.trim();
  if (text === undefined || text === '' || text === 'max') return undefined;
  const n = Number(text);
  return Number.isFinite(n) ? n : undefined;
}

function keyValues(text: string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of (text ?? '').split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && Number.isFinite(Number(v))) out[k] = Number(v);
  }
  return out;
}

/** The directory of a controller: "cpu" finds "cpu" or a co-mounted "cpu,cpuacct". */
function controllerPath(cg: CgroupPaths, controller: string): string | undefined {
  for (const [key, path] of Object.entries(cg.paths)) if (key.split(',').includes(controller)) return path;
  return undefined;
}

async function hostCpu(): Promise<{ systemUsageNs: number; onlineCpus: number }> {
  const stat = (await readText('/proc/stat')) ?? '';
  const lines = stat.split('\n');
  const total = lines[0]?.startsWith('cpu ') ? lines[0].trim().split(/\s+/).slice(1, 8).reduce((a, b) => a + Number(b), 0) : 0;
  const onlineCpus = lines.filter((l) => /^cpu\d+ /.test(l)).length || 1;
  // /proc/stat counts USER_HZ ticks (100 per second on Linux).
  return { systemUsageNs: total * 1e7, onlineCpus };
}

/** Reads memory, cpu and pids usage of a cgroup on any layout (hybrid uses the v1 controllers). */
export async function readCgroupStats(cg: CgroupPaths): Promise<ContainerStats> {
  const v2 = cg.layout === 'v2';
  const host = await hostCpu();
  if (v2) {
    const dir = cg.paths.unified ?? Object.values(cg.paths)[0];
    const at = (f: string) => (dir ? `${dir}/${f}` : undefined);
    const cpuStat = keyValues(await readText(at('cpu.stat')));
    const limit = await readNumber(at('memory.max'));
    const peak = await readNumber(at('memory.peak'));
    const pidsLimit = await readNumber(at('pids.max'));
    return {
      read: new Date(),
      layout: cg.layout,
      memory: {
        usage: (await readNumber(at('memory.current'))) ?? 0,
        limit: Math.min(limit ?? Infinity, totalmem()),
        ...(peak !== undefined ? { maxUsage: peak } : {}),
        stats: keyValues(await readText(at('memory.stat'))),
        oomKills: keyValues(await readText(at('memory.events'))).oom_kill ?? 0,
      },
      cpu: {
        usageNs: (cpuStat.usage_usec ?? 0) * 1000,
        userNs: (cpuStat.user_usec ?? 0) * 1000,
        systemNs: (cpuStat.system_usec ?? 0) * 1000,
        periods: cpuStat.nr_periods ?? 0,
        throttledPeriods: cpuStat.nr_throttled ?? 0,
        throttledNs: (cpuStat.throttled_usec ?? 0) * 1000,
        ...host,
      },
      pids: { current: (await readNumber(at('pids.current'))) ?? 0, ...(pidsLimit !== undefined ? { limit: pidsLimit } : {}) },
    };
  }
  const memory = controllerPath(cg, 'memory');
  const cpuacct = controllerPath(cg, 'cpuacct');
  const cpu = controllerPath(cg, 'cpu');
  const pids = controllerPath(cg, 'pids');
  const limit = await readNumber(memory && `${memory}/memory.limit_in_bytes`);
  const maxUsage = await readNumber(memory && `${memory}/memory.max_usage_in_bytes`);
  const perCpu = (await readText(cpuacct && `${cpuacct}/cpuacct.usage_percpu`))?.trim().split(/\s+/).filter(Boolean).map(Number);
  const acctStat = keyValues(await readText(cpuacct && `${cpuacct}/cpuacct.stat`));
  const cpuStat = keyValues(await readText(cpu && `${cpu}/cpu.stat`));
  const pidsLimit = await readNumber(pids && `${pids}/pids.max`);
  // v1 reports "no limit" as the largest page-aligned value; docker shows the host's memory then.
  const effectiveLimit = limit === undefined || limit >= 2 ** 62 ? totalmem() : Math.min(limit, totalmem());
  return {
    read: new Date(),
    layout: cg.layout,
    memory: {
      usage: (await readNumber(memory && `${memory}/memory.usage_in_bytes`)) ?? 0,
      limit: effectiveLimit,
      ...(maxUsage !== undefined ? { maxUsage } : {}),
      stats: keyValues(await readText(memory && `${memory}/memory.stat`)),
      oomKills: keyValues(await readText(memory && `${memory}/memory.oom_control`)).oom_kill ?? 0,
    },
    cpu: {
      usageNs: (await readNumber(cpuacct && `${cpuacct}/cpuacct.usage`)) ?? 0,
      // cpuacct.stat counts USER_HZ ticks.
      ...(acctStat.user !== undefined ? { userNs: acctStat.user * 1e7 } : {}),
      ...(acctStat.system !== undefined ? { systemNs: acctStat.system * 1e7 } : {}),
      ...(perCpu?.length ? { perCpuNs: perCpu } : {}),
      periods: cpuStat.nr_periods ?? 0,
      throttledPeriods: cpuStat.nr_throttled ?? 0,
      throttledNs: cpuStat.throttled_time ?? 0,
      ...host,
    },
    pids: { current: (await readNumber(pids && `${pids}/pids.current`)) ?? 0, ...(pidsLimit !== undefined ? { limit: pidsLimit } : {}) },
  };
}

const v1Controllers = new Set(['cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'blkio', 'pids', 'hugetlb', 'net_cls', 'net_prio', 'perf_event', 'rdma', 'misc']);

/** The cgroups of a running process, from /proc/<pid>/cgroup and the host's cgroup mounts. */
export async function cgroupPathsOfProcess(pid: number): Promise<CgroupPaths> {
  const self = (await readText(`/proc/${pid}/cgroup`)) ?? '';
  const mountinfo = (await readText('/proc/self/mountinfo')) ?? '';
  const mounts: { controllers: string; point: string; root: string; v2: boolean }[] = [];
  for (const line of mountinfo.split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const f = left.split(' ');
    const [fstype, , superOpts = ''] = right.split(' ');
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    const controllers = fstype === 'cgroup2' ? '' : superOpts.split(',').filter((o) => v1Controllers.has(o) || o.startsWith('name=')).join(',');
    mounts.push({ controllers, point: f[4]!, root: f[3]!, v2: fstype === 'cgroup2' });
  }
  const paths: Record<string, string> = {};
  const hasV1 = mounts.some((m) => !m.v2);
  const hasV2 = mounts.some((m) => m.v2);
  for (const line of self.split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    const mount = mounts.find((x) => x.controllers === m[1]);
    if (!mount) continue;
    const rel = mount.root !== '/' && m[2]!.startsWith(mount.root) ? m[2]!.slice(mount.root.length) : m[2]!;
    paths[m[1] || 'unified'] = mount.point + (rel === '/' ? '' : rel);
  }
  return { layout: hasV1 && hasV2 ? 'hybrid' : hasV2 ? 'v2' : 'v1', paths };
}
