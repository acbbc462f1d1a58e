import { setTimeout as sleep } from 'node:timers/promises';
import { describeError, isBerthError } from '@berth/errors';
import type { HealthConfig, HealthcheckResult, HealthStatus } from '../types/container.js';
import { isRunning } from './container-lifecycle.js';
import type { ContainerRecord } from './container-record.js';
import { nowNanos, nowRfc3339, rfc3339ToNanos } from './docker-time.js';
import type { EngineContext } from './engine-context.js';

// docker's defaults (nanoseconds) and limits.
const defaultIntervalNs = 30e9;
const defaultTimeoutNs = 30e9;
const defaultStartIntervalNs = 5e9;
const defaultRetries = 3;
const maxOutput = 4096;
const keptResults = 5;

/** True when the container has a health check to run (`NONE` disables the image's). */
export function hasHealthcheck(record: ContainerRecord): boolean {
  const test = record.config.Healthcheck?.Test;
  return !!test?.length && test[0] !== 'NONE';
}

/** The command of a health check: `CMD args...` as is, `CMD-SHELL cmd` through /bin/sh -c. */
function checkCommand(test: readonly string[]): string[] {
  if (test[0] === 'CMD') return [...test.slice(1)];
  if (test[0] === 'CMD-SHELL') return ['/bin/sh', '-c', test.slice(1).join(' ')];
  return [...test];
}

/**
 * Runs a container's health check as docker's daemon does, for as long as the run lasts: every
 * `Interval` (every `StartInterval` during the start period), each try bounded by `Timeout`;
 * `Retries` failures in a row after the start period make it unhealthy, one success healthy.
 * The result goes into the record (`State.Health`) and a `health_status` event.
 */
export class HealthMonitor {
  readonly #ctx: EngineContext;
  readonly #id: string;
  readonly #runCount: number;

  constructor(ctx: EngineContext, record: ContainerRecord) {
    this.#ctx = ctx;
    this.#id = record.id;
    this.#runCount = record.state.runCount;
  }

  async run(signal: AbortSignal): Promise<void> {
    const first = await this.#ctx.containers.tryRead(this.#id);
    if (!first || first.state.runCount !== this.#runCount || !isRunning(first)) return;
    const hc: HealthConfig = first.config.Healthcheck ?? {};
    const interval = hc.Interval || defaultIntervalNs;
    const timeout = hc.Timeout || defaultTimeoutNs;
    const startPeriod = hc.StartPeriod || 0;
    const startInterval = hc.StartInterval || defaultStartIntervalNs;
    const retries = hc.Retries || defaultRetries;
    const started = rfc3339ToNanos(first.state.startedAt);
    const inStartPeriod = () => startPeriod > 0 && nowNanos() < started + BigInt(startPeriod);
    while (!signal.aborted) {
      const wait = inStartPeriod() ? Math.min(startInterval, interval) : interval;
      try {
        await sleep(wait / 1e6, undefined, { signal });
      } catch {
        return;
      }
      const result = await this.#probe(checkCommand(hc.Test ?? []), timeout / 1e6, signal);
      if (signal.aborted) return;
      const changed = await this.#record(result, retries, inStartPeriod());
      if (changed === undefined) return;
      if (changed) {
        const record = await this.#ctx.containers.tryRead(this.#id);
        if (record?.state.health) {
          await this.#ctx.events.append({
            Type: 'container',
            Action: `health_status: ${record.state.health.Status}`,
            Actor: { ID: record.id, Attributes: { ...(record.config.Labels ?? {}), image: record.config.Image ?? record.image, name: record.name } },
          });
        }
      }
    }
  }

  async #probe(args: string[], timeoutMs: number, signal: AbortSignal): Promise<HealthcheckResult> {
    const start = nowRfc3339();
    let output = '';
    let exitCode: number;
    try {
      const proc = await this.#ctx.runtime.exec(this.#id, { args, terminal: false }, { signal });
      const take = (d: Buffer) => {
        if (output.length < maxOutput) output = (output + d.toString()).slice(0, maxOutput);
      };
      proc.stdout.on('data', take);
      proc.stderr.on('data', take);
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
      const outcome = await Promise.race([proc.wait(), timedOut]);
      clearTimeout(timer);
      if (outcome === 'timeout') {
        proc.child.kill('SIGKILL');
        return { Start: start, End: nowRfc3339(), ExitCode: -1, Output: `Health check exceeded timeout (${timeoutMs / 1000}s)` };
      }
      exitCode = outcome;
    } catch (err) {
      exitCode = isBerthError(err) && err.exitCode !== undefined ? err.exitCode : -1;
      output = describeError(err);
    }
    return { Start: start, End: nowRfc3339(), ExitCode: exitCode, Output: output };
  }

  /** Stores a result; true when the status changed, undefined when the run is over. */
  async #record(result: HealthcheckResult, retries: number, startPeriod: boolean): Promise<boolean | undefined> {
    return this.#ctx.containers.withLock(this.#id, async () => {
      const record = await this.#ctx.containers.tryRead(this.#id);
      if (!record || record.state.runCount !== this.#runCount || !isRunning(record)) return undefined;
      const before = record.state.health ?? { Status: 'starting' as HealthStatus, FailingStreak: 0, Log: [] };
      let status: HealthStatus = before.Status;
      let streak = before.FailingStreak;
      if (result.ExitCode === 0) {
        status = 'healthy';
        streak = 0;
      } else if (!startPeriod || before.Status !== 'starting') {
        streak += 1;
        if (streak >= retries) status = 'unhealthy';
      }
      const health = { Status: status, FailingStreak: streak, Log: [...before.Log, result].slice(-keptResults) };
      await this.#ctx.containers.write({ ...record, state: { ...record.state, health } });
      this.#ctx.watch.notify(this.#id);
      return status !== before.Status;
    });
  }
}
