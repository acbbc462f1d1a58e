import type { RestartPolicy } from '../types/container.js';
import { invalidParameter } from './docker-errors.js';

/** What a restart decision needs to know about the run that just ended. */
export interface ExitFacts {
  readonly exitCode: number;
  /** Stopped or killed through the engine (docker's HasBeenManuallyStopped). */
  readonly manuallyStopped: boolean;
  /** Restarts done by the policy so far (docker's RestartCount). */
  readonly restartCount: number;
}

// docker's restart manager: 100 ms, doubling, at most a minute; a run of 10 s resets it.
const backoffStartMs = 100;
const backoffMaxMs = 60_000;
const stableRunMs = 10_000;

/** Checks a restart policy as docker's create and update do. */
export function validateRestartPolicy(policy: RestartPolicy | undefined, autoRemove: boolean): void {
  const name = policy?.Name ?? '';
  const max = policy?.MaximumRetryCount ?? 0;
  switch (name) {
    case '':
    case 'no':
    case 'always':
    case 'unless-stopped':
      if (max !== 0) throw invalidParameter(`invalid restart policy: maximum retry count can only be used with 'on-failure'`);
      break;
    case 'on-failure':
      if (max < 0) throw invalidParameter('invalid restart policy: maximum retry count cannot be negative');
      break;
    default:
      throw invalidParameter(`invalid restart policy: unknown policy '${name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'`);
  }
  if (autoRemove && name !== '' && name !== 'no') {
    throw invalidParameter(`can't create 'AutoRemove' container with restart policy`);
  }
}

/** True when the policy restarts a container that exited as `facts` say (docker's ShouldRestart). */
export function shouldRestart(policy: RestartPolicy | undefined, facts: ExitFacts): boolean {
  switch (policy?.Name ?? '') {
    case 'always':
    case 'unless-stopped':
      return !facts.manuallyStopped;
    case 'on-failure': {
      if (facts.manuallyStopped || facts.exitCode === 0) return false;
      const max = policy?.MaximumRetryCount ?? 0;
      return max === 0 || facts.restartCount < max;
    }
    default:
      return false;
  }
}

/**
 * True when the policy starts a container again when the supervisor starts (after a host or
 * server restart): `always` even when stopped by hand is docker's rule for a daemon restart;
 * `unless-stopped` only when not stopped by hand; `on-failure` when it failed.
 */
export function shouldStartOnBoot(policy: RestartPolicy | undefined, facts: ExitFacts): boolean {
  switch (policy?.Name ?? '') {
    case 'always':
      return true;
    case 'unless-stopped':
      return !facts.manuallyStopped;
    case 'on-failure':
      return shouldRestart(policy, facts);
    default:
      return false;
  }
}

/** The delay before the next restart: doubling from 100 ms to a minute, reset after a stable run. */
export function nextRestartDelay(previousMs: number, ranForMs: number): number {
  if (ranForMs >= stableRunMs || previousMs <= 0) return backoffStartMs;
  return Math.min(previousMs * 2, backoffMaxMs);
}
