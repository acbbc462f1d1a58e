import { closeSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { errnoCode } from '@berth/errors';
import { randomHex } from './random.js';
import { removeFile } from './remove-tree.js';

/** Options of `writeFileAtomic`. */
export interface AtomicWriteOptions {
  /** File mode of the result (default 0o644). */
  readonly mode?: number;
  /** fsync the file and its directory (default true). Off only for state that may be lost. */
  readonly durable?: boolean;
}

/** A fresh temporary name beside `path`, so that a rename onto `path` stays on one filesystem. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomHex(4)}`);
}

/**
 * Replaces `path` with `data` so that readers see the old or the new content, never a mix,
 * and a crash at any moment leaves one of the two: write a temp file, fsync, rename, fsync the
 * directory.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  const durable = options.durable ?? true;
  const temp = tempPathFor(path);
  if (!durable) return writeWithoutSync(path, temp, data, options.mode ?? 0o644);
  try {
    const handle = await open(temp, 'wx', options.mode ?? 0o644);
    try {
      await handle.writeFile(data);
      if (durable) await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  if (durable) await syncDirectory(dirname(path));
}

// Without fsync a small write is a few system calls that take microseconds, less than the
// thread-pool round trip of each asynchronous one: done synchronously.
function writeWithoutSync(path: string, temp: string, data: string | Uint8Array, mode: number): void {
  try {
    const fd = openSync(temp, 'wx', mode);
    try {
      writeFileSync(fd, data);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
  } catch (err) {
    removeFile(temp);
    throw err;
  }
}

/** `writeFileAtomic` of `value` as indented JSON with a trailing newline. */
export async function writeJsonAtomic(path: string, value: unknown, options: AtomicWriteOptions = {}): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n', options);
}

/** The parsed JSON content of `path` (a small state file, read synchronously), or undefined when the file does not exist. */
export async function readJsonFile<T>(path: string): Promise<T | undefined> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
  return JSON.parse(text) as T;
}

/** fsync a directory so that a rename or create inside it survives a power loss. */
export async function syncDirectory(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } catch (err) {
    // Some filesystems (and non-Linux hosts) refuse fsync on directories; the rename still holds.
    if (!['EINVAL', 'EISDIR', 'EPERM', 'EBADF'].includes(errnoCode(err) ?? '')) throw err;
  } finally {
    await handle.close();
  }
}
