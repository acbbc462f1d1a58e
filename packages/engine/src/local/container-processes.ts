import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import type { ContainerStats } from '@berth/runtime';
import type { CallOptions } from '../types/common.js';
import type { ContainerStatsResponse, ContainerTopResponse, CpuStats, NetworkStats } from '../types/container.js';
import { isRunning, type ContainerLifecycle } from './container-lifecycle.js';
import type { ContainerRecord } from './container-record.js';
import { invalidParameter, notRunning } from './docker-errors.js';
import { zeroTime } from './docker-time.js';
import type { EngineContext } from './engine-context.js';

const run = promisify(execFile);

const zeroCpu: CpuStats = { cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 }, throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 } };

/** The interfaces of a network namespace and their counters, from /proc/<pid>/net/dev. */
async function networkCounters(pid: number): Promise<Record<string, NetworkStats> | undefined> {
  const text = await readFile(`/proc/${pid}/net/dev`, 'utf8').catch(() => '');
  const out: Record<string, NetworkStats> = {};
  for (const line of text.split('\n').slice(2)) {
    const [name, rest] = line.split(':');
    if (!name || !rest || name.trim() === 'lo') continue;
    const n = rest.trim().split(/\s+/).map(Number);
    out[name.trim()] = {
      rx_bytes: n[0] ?? 0, rx_packets: n[1] ?? 0, rx_errors: n[2] ?? 0, rx_dropped: n[3] ?? 0,
      tx_bytes: n[8] ?? 0, tx_packets: n[9] ?? 0, tx_errors: n[10] ?? 0, tx_dropped: n[11] ?? 0,
    };
  }
  return Object.keys(out).length ? out : undefined;
}

function cpuStats(s: ContainerStats): CpuStats {
  return {
    cpu_usage: {
      total_usage: s.cpu.usageNs,
      ...(s.cpu.perCpuNs ? { percpu_usage: [...s.cpu.perCpuNs] } : {}),
      usage_in_kernelmode: s.cpu.systemNs ?? 0,
      usage_in_usermode: s.cpu.userNs ?? 0,
    },
    system_cpu_usage: s.cpu.systemUsageNs,
    online_cpus: s.cpu.onlineCpus,
    throttling_data: { periods: s.cpu.periods ?? 0, throttled_periods: s.cpu.throttledPeriods ?? 0, throttled_time: s.cpu.throttledNs ?? 0 },
  };
}

/** `top` and `stats`: the container's processes and its cgroup counters. */
export class ContainerProcesses {
  readonly #ctx: EngineContext;
  readonly #lifecycle: ContainerLifecycle;

  constructor(ctx: EngineContext, lifecycle: ContainerLifecycle) {
    this.#ctx = ctx;
    this.#lifecycle = lifecycle;
  }

  /** `GET /containers/{id}/top`: the host's `ps` (with `psArgs`, default `-ef`), rows of the container's processes. */
  async top(ref: string, options: CallOptions & { readonly psArgs?: string } = {}): Promise<ContainerTopResponse> {
    const record = await this.#lifecycle.get(ref);
    if (!isRunning(record)) throw notRunning(record.id);
    const pids = new Set((await this.#ctx.runtime.ps(record.id, options.signal ? { signal: options.signal } : {})).map(String));
    const args = (options.psArgs || '-ef').split(/\s+/).filter(Boolean);
    let stdout: string;
    try {
      ({ stdout } = await run('ps', args, { maxBuffer: 64 << 20, ...(options.signal ? { signal: options.signal } : {}) }));
    } catch (err) {
      throw invalidParameter(`Error running ps: ${(err as { stderr?: string }).stderr?.trim() || String(err)}`, err);
    }
    const lines = stdout.split('\n').filter((l) => l.trim());
    const titles = (lines[0] ?? '').trim().split(/\s+/);
    const pidColumn = titles.indexOf('PID');
    if (pidColumn < 0) throw invalidParameter(`Couldn't find PID field in ps output`);
    const processes: string[][] = [];
    for (const line of lines.slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (!pids.has(fields[pidColumn] ?? '')) continue;
      // The last column (the command) may hold spaces: join what is beyond the titles into it.
      processes.push([...fields.slice(0, titles.length - 1), fields.slice(titles.length - 1).join(' ')]);
    }
    return { Titles: titles, Processes: processes };
  }

  async #sample(record: ContainerRecord, previous: ContainerStatsResponse | undefined, signal?: AbortSignal): Promise<ContainerStatsResponse> {
    const base = { name: `/${record.name}`, id: record.id };
    if (!isRunning(record)) {
      return {
        ...base, read: zeroTime, preread: zeroTime, pids_stats: {}, blkio_stats: { io_service_bytes_recursive: null }, num_procs: 0,
        cpu_stats: zeroCpu, precpu_stats: zeroCpu, memory_stats: {},
      };
    }
    const s = await this.#ctx.runtime.readStats(record.id, signal ? { signal } : {});
    const networks = await networkCounters(record.state.pid);
    return {
      ...base,
      read: s.read.toISOString(),
      preread: previous?.read ?? zeroTime,
      pids_stats: { current: s.pids.current, ...(s.pids.limit !== undefined ? { limit: s.pids.limit } : {}) },
      blkio_stats: { io_service_bytes_recursive: null },
      num_procs: 0,
      cpu_stats: cpuStats(s),
      precpu_stats: previous?.cpu_stats ?? zeroCpu,
      memory_stats: {
        usage: s.memory.usage,
        ...(s.memory.maxUsage !== undefined ? { max_usage: s.memory.maxUsage } : {}),
        stats: s.memory.stats,
        failcnt: s.memory.oomKills,
        limit: s.memory.limit,
      },
      ...(networks ? { networks } : {}),
    };
  }

  /**
   * `GET /containers/{id}/stats`: a sample a second while `stream` (until the container stops or
   * the signal fires); else one sample, taken after a second so that the CPU delta is real,
   * unless `oneShot`.
   */
  async *stats(ref: string, options: CallOptions & { readonly stream?: boolean; readonly oneShot?: boolean } = {}): AsyncGenerator<ContainerStatsResponse> {
    const signal = options.signal;
    let record = await this.#lifecycle.get(ref);
    const stream = options.stream ?? true;
    let previous: ContainerStatsResponse | undefined;
    if (!stream && !options.oneShot && isRunning(record)) {
      previous = await this.#sample(record, undefined, signal);
      await sleep(1000, undefined, signal ? { signal } : {}).catch(() => {});
    }
    for (;;) {
      if (signal?.aborted) return;
      const current = await this.#sample(record, previous, signal).catch(async (err: unknown) => {
        // The container stopped between the check and the read.
        record = (await this.#lifecycle.refresh(record)) ?? record;
        if (isRunning(record)) throw err;
        return this.#sample(record, previous, signal);
      });
      yield current;
      if (!stream || !isRunning(record)) return;
      previous = current;
      await sleep(1000, undefined, signal ? { signal } : {}).catch(() => {});
      const fresh = await this.#ctx.containers.tryRead(record.id);
      if (!fresh) return;
      record = (await this.#lifecycle.refresh(fresh)) ?? fresh;
    }
  }
}
