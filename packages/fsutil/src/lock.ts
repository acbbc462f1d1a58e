import { linkSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { BerthError, ErrorKind, abortError, errnoCode, throwIfAborted } from '@berth/errors';
import { randomHex } from './random.js';

/** Options of `acquireFileLock` and `withFileLock`. */
export interface LockOptions {
  readonly signal?: AbortSignal;
  /** Give up after this many milliseconds with ERR_LOCK_TIMEOUT (default: wait forever). */
  readonly timeoutMs?: number;
}

/** A held lock. Release it exactly once. */
export interface FileLock {
  readonly path: string;
  release(): Promise<void>;
}

interface Owner {
  readonly pid: number;
  readonly start: string;
  readonly host: string;
}

// A break lock older than this cannot belong to a live breaker: breaking takes microseconds.
const breakStaleMs = 10_000;

// Lock files are a few bytes on a local disk: they are written, linked and read synchronously,
// which costs less than the thread-pool round trips of the asynchronous calls (a container's start
// takes and releases half a dozen locks).

/** Start time of a process (Linux /proc), which tells a live owner from a reused pid. */
function processStart(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
  } catch {
    return '';
  }
}

async function ownerAlive(owner: Owner): Promise<boolean> {
  if (owner.host !== hostname()) return true;
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    if (errnoCode(err) === 'ESRCH') return false;
  }
  if (!owner.start) return true;
  return processStart(owner.pid) === owner.start;
}

async function readOwner(path: string): Promise<Owner | undefined> {
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<Owner>;
    if (typeof parsed.pid !== 'number') return undefined;
    return { pid: parsed.pid, start: parsed.start ?? '', host: parsed.host ?? '' };
  } catch {
    return undefined;
  }
}

// Creates `path` holding `content`, failing with EEXIST when it exists: link(2) is atomic and
// the file is complete the moment it appears, so a reader never sees an empty owner.
function createExclusive(path: string, content: string): boolean {
  const temp = `${path}.${process.pid}.${randomHex(4)}`;
  writeFileSync(temp, content);
  try {
    linkSync(temp, path);
    return true;
  } catch (err) {
    if (errnoCode(err) === 'EEXIST') return false;
    throw err;
  } finally {
    try {
      unlinkSync(temp);
    } catch {
      // Already gone: nothing to clean.
    }
  }
}

// Removes a lock whose owner died, under a second lock so that two waiters never both break it
// and the second one removes the lock the first one has just taken.
async function breakIfStale(path: string): Promise<void> {
  const owner = await readOwner(path);
  if (owner && (await ownerAlive(owner))) return;
  if (!owner) {
    // Unreadable owner: only a crash between link and nothing else can make one, so wait a moment.
    const info = await stat(path).catch(() => undefined);
    if (!info || Date.now() - info.mtimeMs < breakStaleMs) return;
  }
  const breaker = `${path}.break`;
  const info = await stat(breaker).catch(() => undefined);
  if (info && Date.now() - info.mtimeMs > breakStaleMs) await unlink(breaker).catch(() => {});
  if (!createExclusive(breaker, String(process.pid))) return;
  try {
    const again = await readOwner(path);
    if (JSON.stringify(again) === JSON.stringify(owner)) await unlink(path).catch(() => {});
  } finally {
    await unlink(breaker).catch(() => {});
  }
}

const inProcess = new Map<string, Promise<void>>();

/**
 * Takes the exclusive lock file `path` across processes. A lock left by a process that died
 * (kill -9) is detected by its owner's pid and start time and broken. Not reentrant: taking a
 * lock twice in one async flow waits forever.
 */
export async function acquireFileLock(path: string, options: LockOptions = {}): Promise<FileLock> {
  // Queue callers of this process first, so that only one of them polls the file system.
  const previous = inProcess.get(path) ?? Promise.resolve();
  let releaseQueue!: () => void;
  const mine = new Promise<void>((resolve) => (releaseQueue = resolve));
  const tail = previous.then(() => mine);
  inProcess.set(path, tail);
  const done = () => {
    releaseQueue();
    if (inProcess.get(path) === tail) inProcess.delete(path);
  };

  try {
    await waitQueued(previous, options);
    const content = ownerRecord();
    const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
    for (let attempt = 0; ; attempt++) {
      throwIfAborted(options.signal);
      if (createExclusive(path, content)) break;
      await breakIfStale(path);
      if (Date.now() > deadline) {
        throw new BerthError(`timed out waiting for lock ${path}`, { code: 'ERR_LOCK_TIMEOUT', kind: ErrorKind.Timeout });
      }
      await sleep(Math.min(2 + attempt * 3, 50) + Math.random() * 5);
    }
  } catch (err) {
    done();
    throw err;
  }

  return heldLock(path, done);
}

/**
 * Takes the lock file `path` only if nobody holds it: undefined at once when a live process
 * (this one included) holds or awaits it. A lock left by a dead owner is broken and taken, so
 * the caller can clean up what that owner left half-done.
 */
export async function tryAcquireFileLock(path: string): Promise<FileLock | undefined> {
  if (inProcess.has(path)) return undefined;
  // Claim this process's slot before the first await, so in-process callers queue behind us.
  let releaseQueue!: () => void;
  const mine = new Promise<void>((resolve) => (releaseQueue = resolve));
  inProcess.set(path, mine);
  const done = () => {
    releaseQueue();
    if (inProcess.get(path) === mine) inProcess.delete(path);
  };
  try {
    const content = ownerRecord();
    if (!createExclusive(path, content)) {
      await breakIfStale(path);
      if (!createExclusive(path, content)) {
        done();
        return undefined;
      }
    }
  } catch (err) {
    done();
    throw err;
  }
  return heldLock(path, done);
}

let ownRecord: string | undefined;

/** This process as a lock's owner (its pid, start time and host never change). */
function ownerRecord(): string {
  ownRecord ??= JSON.stringify({ pid: process.pid, start: processStart(process.pid), host: hostname() } satisfies Owner);
  return ownRecord;
}

function heldLock(path: string, done: () => void): FileLock {
  let released = false;
  return {
    path,
    async release() {
      if (released) return;
      released = true;
      try {
        unlinkSync(path);
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw err;
      } finally {
        done();
      }
    },
  };
}

async function waitQueued(previous: Promise<void>, options: LockOptions): Promise<void> {
  const { signal } = options;
  if (!signal) return previous;
  throwIfAborted(signal);
  await new Promise<void>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    previous.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}

/** Runs `fn` holding the lock file `path`, and releases it however `fn` ends. */
export async function withFileLock<T>(path: string, fn: () => Promise<T>, options: LockOptions = {}): Promise<T> {
  const lock = await acquireFileLock(path, options);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}
