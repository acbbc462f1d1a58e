import { hasCode } from '@berth/errors';
import { acquireFileLock, type FileLock } from '@berth/fsutil';

// Lock files this process holds. A probe must not queue behind them: fsutil serialises the
// callers of one process in memory, so probing a lock held here would wait for its release.
const heldHere = new Set<string>();

/** Takes the lock file `path` (waiting for it), remembering that this process holds it. */
export async function acquireOwnedLock(path: string, signal?: AbortSignal): Promise<FileLock> {
  const lock = await acquireFileLock(path, signal ? { signal } : {});
  heldHere.add(path);
  return {
    path,
    async release() {
      heldHere.delete(path);
      await lock.release();
    },
  };
}

// Long enough for fsutil to break a dead owner's lock and retake it once.
const probeTimeoutMs = 100;

/**
 * Takes the lock file `path` only if no live process holds it: undefined when it is busy. A
 * lock left by a dead process (kill -9) is broken, so its partial state can be cleaned up.
 */
export async function probeLock(path: string): Promise<FileLock | undefined> {
  if (heldHere.has(path)) return undefined;
  try {
    return await acquireFileLock(path, { timeoutMs: probeTimeoutMs });
  } catch (err) {
    if (hasCode(err, 'ERR_LOCK_TIMEOUT')) return undefined;
    throw err;
  }
}
