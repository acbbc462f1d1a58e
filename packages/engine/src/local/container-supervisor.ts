import { spawn } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeError, hasCode } from '@berth/errors';
import { acquireFileLock, writeJsonAtomic, type FileLock } from '@berth/fsutil';
import { isRunning, type ContainerLifecycle } from './container-lifecycle.js';
import type { ContainerRecord } from './container-record.js';
import { millisSince, nowNanos } from './docker-time.js';
import type { EngineContext } from './engine-context.js';
import { HealthMonitor, hasHealthcheck } from './health-check.js';
import { processAlive } from './process-liveness.js';
import { nextRestartDelay, shouldRestart, shouldStartOnBoot } from './restart-policy.js';

/** How a supervisor runs: after a boot (apply restart policies to stopped containers) or on demand. */
export interface SuperviseOptions {
  readonly signal: AbortSignal;
  /** Start the containers whose policy says so, as a daemon does at its start (`engine serve`). */
  readonly boot: boolean;
  /** End when nothing needs watching for this long (the detached supervisor of the daemonless CLI). */
  readonly idleExitMs?: number;
  /** Recover network leftovers of containers that are gone (`NetworkManager.init`). */
  readonly recoverNetwork?: boolean;
}

/** True when a started container needs someone to watch it beyond its creator: a restart policy, a health check, or `--rm` without a waiter. */
export function needsSupervision(record: ContainerRecord, watchedHere: boolean): boolean {
  const policy = record.hostConfig.RestartPolicy?.Name ?? '';
  return (policy !== '' && policy !== 'no') || hasHealthcheck(record) || ((record.hostConfig.AutoRemove ?? false) && !watchedHere);
}

interface Watch {
  readonly runCount: number;
  readonly stop: AbortController;
}

/**
 * What a Docker daemon does for containers between API calls, done by whichever process holds
 * the supervisor lock of the run root (`engine serve`, or a detached process the daemonless CLI
 * starts when a container needs it): notices exits (through each monitor's attach socket),
 * applies restart policies with docker's backoff, runs health checks, and lets `--rm`
 * containers go.
 */
export class LocalSupervisor {
  readonly #ctx: EngineContext;
  readonly #lifecycle: ContainerLifecycle;
  readonly #watched = new Map<string, Watch>();
  readonly #delays = new Map<string, number>();
  readonly #scheduled = new Set<string>();
  #lastBusy = Date.now();

  constructor(ctx: EngineContext, lifecycle: ContainerLifecycle) {
    this.#ctx = ctx;
    this.#lifecycle = lifecycle;
  }

  get #lockPath(): string {
    return join(this.#ctx.layout.supervisor, 'supervisor.lock');
  }

  /** The pid of the process holding the supervisor lock, when it lives. */
  async holder(): Promise<number | undefined> {
    try {
      const owner = JSON.parse(await readFile(this.#lockPath, 'utf8')) as { pid?: number; start?: string };
      if (typeof owner.pid === 'number' && (await processAlive(owner.pid, owner.start ?? ''))) return owner.pid;
    } catch {
      // no lock file, or one being written: nobody holds it
    }
    return undefined;
  }

  /**
   * Starts the detached supervisor unless one runs: `command` plus the path of a file with the
   * engine's options. It outlives the caller and ends when it has nothing to watch.
   */
  async ensureDetached(command: readonly string[], engineOptions: unknown): Promise<void> {
    if ((await this.holder()) !== undefined) return;
    await mkdir(this.#ctx.layout.supervisor, { recursive: true });
    const optionsPath = join(this.#ctx.layout.supervisor, 'engine.json');
    await writeJsonAtomic(optionsPath, engineOptions, { durable: false });
    const child = spawn(command[0]!, [...command.slice(1), optionsPath], { detached: true, stdio: 'ignore' });
    child.on('error', (err) => this.#ctx.logger.warn('could not start the supervisor', { error: describeError(err) }));
    child.unref();
  }

  /** Runs until the signal fires (or, with `idleExitMs`, until idle). Resolves at once when another process supervises. */
  async run(options: SuperviseOptions): Promise<void> {
    await mkdir(this.#ctx.layout.supervisor, { recursive: true });
    let lock: FileLock;
    if (options.boot) {
      // `engine serve` takes over from a detached supervisor.
      const other = await this.holder();
      if (other !== undefined && other !== process.pid) {
        try {
          process.kill(other, 'SIGTERM');
        } catch {
          // gone meanwhile
        }
      }
      lock = await acquireFileLock(this.#lockPath, { signal: options.signal });
    } else {
      try {
        lock = await acquireFileLock(this.#lockPath, { timeoutMs: 50, signal: options.signal });
      } catch (err) {
        if (hasCode(err, 'ERR_LOCK_TIMEOUT')) return;
        throw err;
      }
    }
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    options.signal.addEventListener('abort', onAbort, { once: true });
    try {
      // Events from before the recovery's listing are followed too: a container started while
      // it runs is then seen by one or the other (#watch takes each run once).
      const since = Number(nowNanos() / 1_000_000n) / 1000;
      await this.#recover(options, stop.signal);
      await this.#follow(options, stop, since);
    } finally {
      options.signal.removeEventListener('abort', onAbort);
      stop.abort();
      for (const w of this.#watched.values()) w.stop.abort();
      this.#watched.clear();
      await lock.release();
    }
  }

  async #recover(options: SuperviseOptions, signal: AbortSignal): Promise<void> {
    const swept = await this.#ctx.containers.sweep();
    if (swept.length) this.#ctx.logger.info('removed leftovers of interrupted operations', { entries: swept });
    const records = await this.#lifecycle.listAll();
    if (options.recoverNetwork) {
      const live = records.filter((r) => isRunning(r)).map((r) => r.id);
      await this.#ctx.network().init({ liveContainers: live, signal }).catch((err: unknown) => this.#ctx.logger.warn('network recovery failed', { error: describeError(err) }));
    }
    for (const record of records) {
      if (signal.aborted) return;
      if (isRunning(record)) {
        this.#watch(record, options, signal);
      } else if (record.state.status === 'restarting' || (options.boot && record.state.hasBeenStarted && shouldStartOnBoot(record.hostConfig.RestartPolicy, this.#facts(record)))) {
        void this.#restart(record, 0, options, signal);
      }
    }
  }

  /** Follows the event journal: every container start anywhere is watched from then on. */
  async #follow(options: SuperviseOptions, stop: AbortController, since: number): Promise<void> {
    const idle = options.idleExitMs;
    let timer: NodeJS.Timeout | undefined;
    if (idle !== undefined) {
      timer = setInterval(() => {
        const busy = [...this.#watched.keys()].length > 0;
        if (busy) this.#lastBusy = Date.now();
        else if (Date.now() - this.#lastBusy > idle) stop.abort();
      }, Math.min(idle, 1000));
    }
    try {
      for await (const ev of this.#ctx.events.read({ since, filters: { type: ['container'], event: ['start', 'die'] }, signal: stop.signal })) {
        const record = await this.#ctx.containers.tryRead(ev.Actor.ID);
        if (!record) continue;
        if (isRunning(record)) this.#watch(record, options, stop.signal);
        // Another process saw it end first: the restart its policy asks for is ours to do.
        else if (record.state.status === 'restarting') void this.#scheduleRestart(record, options, stop.signal);
      }
    } finally {
      if (timer) clearInterval(timer);
    }
  }

  #facts(record: ContainerRecord) {
    return { exitCode: record.state.exitCode, manuallyStopped: record.state.manuallyStopped, restartCount: record.restartCount };
  }

  #watch(record: ContainerRecord, options: SuperviseOptions, signal: AbortSignal): void {
    const existing = this.#watched.get(record.id);
    if (existing && existing.runCount >= record.state.runCount) return;
    existing?.stop.abort();
    // The detached supervisor watches only what needs it; `engine serve` watches everything.
    if (options.idleExitMs !== undefined && !needsSupervision(record, false)) return;
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    this.#watched.set(record.id, { runCount: record.state.runCount, stop });
    this.#lastBusy = Date.now();
    if (hasHealthcheck(record)) {
      void new HealthMonitor(this.#ctx, record).run(stop.signal).catch((err: unknown) => this.#ctx.logger.warn('health check failed', { containerId: record.id, error: describeError(err) }));
    }
    void (async () => {
      try {
        await this.#ctx.watch.monitorGone(this.#ctx.layout.attachSocket(record.id), stop.signal);
        if (stop.signal.aborted) return;
        const after = await this.#lifecycle.finishRun(record.id);
        if (after?.state.status === 'restarting' && after.state.runCount === record.state.runCount) await this.#scheduleRestart(after, options, signal);
      } catch (err) {
        this.#ctx.logger.warn('supervising a container failed', { containerId: record.id, error: describeError(err) });
      } finally {
        signal.removeEventListener('abort', onAbort);
        stop.abort();
        if (this.#watched.get(record.id)?.stop === stop) this.#watched.delete(record.id);
        this.#lastBusy = Date.now();
      }
    })();
  }

  /** Restarts a container its policy marked `restarting`, after docker's backoff; once per run. */
  async #scheduleRestart(record: ContainerRecord, options: SuperviseOptions, signal: AbortSignal): Promise<void> {
    const key = `${record.id}/${record.state.runCount}`;
    if (this.#scheduled.has(key)) return;
    this.#scheduled.add(key);
    try {
      const ranFor = millisSince(record.state.startedAt) - millisSince(record.state.finishedAt);
      const delay = nextRestartDelay(this.#delays.get(record.id) ?? 0, ranFor);
      this.#delays.set(record.id, delay);
      await this.#restart(record, delay, options, signal);
    } finally {
      this.#scheduled.delete(key);
    }
  }

  /** Restarts an exited container after `delayMs`, unless someone started, stopped or removed it meanwhile. */
  async #restart(exited: ContainerRecord, delayMs: number, options: SuperviseOptions, signal: AbortSignal): Promise<void> {
    const id = exited.id;
    const runCount = exited.state.runCount;
    const marked = await this.#ctx.containers.withLock(id, async () => {
      const now = await this.#ctx.containers.tryRead(id);
      if (!now || isRunning(now) || now.state.runCount !== runCount || (now.state.manuallyStopped && !options.boot)) return false;
      if (now.state.status !== 'restarting') await this.#ctx.containers.write({ ...now, state: { ...now.state, status: 'restarting' } });
      return true;
    });
    if (!marked) return;
    this.#ctx.watch.notify(id);
    try {
      await sleep(delayMs, undefined, { signal });
    } catch {
      return;
    }
    const started = await this.#ctx.containers.withLock(id, async () => {
      const now = await this.#ctx.containers.tryRead(id);
      if (!now || now.state.status !== 'restarting' || now.state.runCount !== runCount) return undefined;
      try {
        return await this.#lifecycle.startLocked({ ...now, restartCount: now.restartCount + 1 }, signal);
      } catch (err) {
        this.#ctx.logger.warn('restart failed', { containerId: id, error: describeError(err) });
        const after = await this.#ctx.containers.tryRead(id);
        if (after) await this.#ctx.containers.write({ ...after, state: { ...after.state, status: 'exited' } });
        return after;
      }
    });
    this.#ctx.watch.notify(id);
    if (!started) return;
    if (isRunning(started)) {
      this.#watch(started, options, signal);
      return;
    }
    // A start that failed counts as a failed run: try again later, as docker's restart manager does.
    if (shouldRestart(started.hostConfig.RestartPolicy, this.#facts(started))) {
      const delay = nextRestartDelay(this.#delays.get(id) ?? 0, 0);
      this.#delays.set(id, delay);
      await this.#restart(started, delay, options, signal);
    }
  }
}
