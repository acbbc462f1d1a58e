import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';

/**
 * Starts programs that print nothing we read (the runtime's create, start, kill, delete) through
 * berth-spawn.node (native/node-spawn.c): posix_spawn, and a thread that waits for the exit,
 * where node:child_process would fork all of Node and load its streams. Commands whose output
 * is read still use child_process.
 */

interface SpawnAddon {
  spawn(file: string, args: readonly string[], fds: readonly number[]): { pid: number; exited: Promise<[number | null, number | null]> };
}

/** How a program ended: its exit status, or the signal that ended it. */
export interface ProgramExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface SpawnedProgram {
  readonly pid: number;
  readonly exited: Promise<ProgramExit>;
}

export const spawnAddonPath = fileURLToPath(new URL('../dist/native/berth-spawn.node', import.meta.url));

let addon: SpawnAddon | undefined;

function loadAddon(): SpawnAddon {
  if (!addon) {
    const module = { exports: {} as SpawnAddon };
    process.dlopen(module, spawnAddonPath);
    addon = module.exports;
  }
  return addon;
}

/** Whether the addon is built (the package's native build makes it beside berth-runtime). */
export function spawnAddonBuilt(): boolean {
  return addon !== undefined || existsSync(spawnAddonPath);
}

const signalNames = new Map(Object.entries(constants.signals).map(([name, number]) => [number, name as NodeJS.Signals]));

/**
 * Starts `file` (a path, or a name found in PATH) with argv `[file, ...args]` and this process's
 * environment. `fds` are the child's descriptors from 0: one of ours, or 'ignore' for /dev/null.
 * A program that cannot be started throws an Error with the errno's name as its code (ENOENT).
 * An aborted `signal` sends the program SIGTERM.
 */
export function spawnProgram(file: string, args: readonly string[], fds: readonly (number | 'ignore')[], signal?: AbortSignal): SpawnedProgram {
  const { pid, exited } = loadAddon().spawn(file, [file, ...args], fds.map((fd) => (fd === 'ignore' ? -1 : fd)));
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
