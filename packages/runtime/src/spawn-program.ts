import { constants } from 'node:os';
import { nativeAddon } from './native-addon.js';

/**
 * Starts programs that print nothing we read (the runtime's create, start, kill, delete) through
 * berth-addon.node (native/node-addon.c): posix_spawn, and a wait in libuv's thread pool,
 * where node:child_process would fork all of Node and load its streams. Commands whose output
 * is read still use child_process.
 */

/** How a program ended: its exit status, or the signal that ended it. */
export interface ProgramExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface SpawnedProgram {
  readonly pid: number;
  readonly exited: Promise<ProgramExit>;
}

const signalNames = new Map(Object.entries(constants.signals).map(([name, number]) => [number, name as NodeJS.Signals]));
const errnoNames = new Map(Object.entries(constants.errno).map(([name, number]) => [number, name]));

/** The addon's failure to start a program as Node's errno errors are: `spawn FILE ENOENT`, with code, errno, syscall and path. */
function spawnError(err: unknown, file: string): unknown {
  const errno = (err as { errno?: unknown } | null)?.errno;
  if (typeof errno !== 'number') return err;
  const code = errnoNames.get(-errno) ?? `E${-errno}`;
  return Object.assign(new Error(`spawn ${file} ${code}`), { code, errno, syscall: 'spawn', path: file });
}

/**
 * Starts `file` (a path, or a name found in PATH) with argv `[file, ...args]` and this process's
 * environment. `fds` are the child's descriptors from 0: one of ours, or 'ignore' for /dev/null.
 * A program that cannot be started throws an Error with the errno's name as its code (ENOENT);
 * without the addon built, a RuntimeError (ERR_SHIM_MISSING).
 * An aborted `signal` sends the program SIGTERM.
 */
export function spawnProgram(file: string, args: readonly string[], fds: readonly (number | 'ignore')[], signal?: AbortSignal): SpawnedProgram {
  const addon = nativeAddon();
  let started: ReturnType<typeof addon.spawn>;
  try {
    started = addon.spawn(file, [file, ...args], fds.map((fd) => (fd === 'ignore' ? -1 : fd)));
  } catch (err) {
    throw spawnError(err, file);
  }
  const { pid, exited } = started;
  const terminate = () => {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // Already gone.
    }
  };
  signal?.addEventListener('abort', terminate, { once: true });
  return {
    pid,
    exited: exited.then(([code, sig]) => {
      signal?.removeEventListener('abort', terminate);
      return { code, signal: sig === null ? null : (signalNames.get(sig) ?? null) };
    }),
  };
}
