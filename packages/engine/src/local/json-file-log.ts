import { watch } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { errnoCode } from '@berth/errors';
import type { OutputChunk } from '../types/stream.js';
import { formatFixedNanos, rfc3339ToNanos, secondsToNanos } from './docker-time.js';

/** Options of `readJsonFileLog`, as `docker logs` takes them (times in unix seconds). */
export interface ReadJsonFileLogOptions {
  readonly stdout: boolean;
  readonly stderr: boolean;
  readonly since?: number;
  readonly until?: number;
  readonly timestamps?: boolean;
  /** Lines from the end; undefined or negative for all. */
  readonly tail?: number;
  /**
   * Keep reading what is appended until this settles (the container stopped); then the rest is
   * drained and the stream ends. Undefined: read what is there and end.
   */
  readonly follow?: Promise<unknown>;
  readonly signal?: AbortSignal;
}

interface LogEntry {
  readonly log: string;
  readonly stream: string;
  readonly time: string;
}

const chunkSize = 64 * 1024;

/** Where the last `lines` lines of a file start, found by reading backwards from the end. */
async function tailOffset(handle: FileHandle, size: number, lines: number): Promise<number> {
  if (lines <= 0) return size;
  let position = size;
  let seen = 0;
  // The file ends with a newline; the one ending the last line does not start a line.
  let skipLast = true;
  const buffer = Buffer.allocUnsafe(chunkSize);
  while (position > 0) {
    const length = Math.min(chunkSize, position);
    position -= length;
    await handle.read(buffer, 0, length, position);
    for (let i = length - 1; i >= 0; i--) {
      if (buffer[i] !== 0x0a) continue;
      if (skipLast && position + i === size - 1) {
        skipLast = false;
        continue;
      }
      if (++seen === lines) return position + i + 1;
    }
  }
  return 0;
}

/**
 * Reads a container's json-file log (`{"log","stream","time"}` per line, as docker's json-file
 * driver and berth-runtime's monitor write it) with docker's `logs` options: streams, tail,
 * since/until, timestamps, and follow until the container stops.
 */
export async function* readJsonFileLog(path: string, options: ReadJsonFileLogOptions): AsyncGenerator<OutputChunk> {
  const since = options.since === undefined || options.since <= 0 ? undefined : secondsToNanos(options.since);
  const until = options.until === undefined || options.until <= 0 ? undefined : secondsToNanos(options.until);
  const signal = options.signal;
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
    return;
  }
  let stopped = options.follow === undefined;
  let wake: (() => void) | undefined;
  let changed = false;
  const poke = () => {
    changed = true;
    wake?.();
  };
  const watcher = options.follow ? watch(dirname(path), { persistent: false }, poke) : undefined;
  watcher?.on('error', poke);
  void options.follow?.then(
    () => ((stopped = true), poke()),
    () => ((stopped = true), poke()),
  );
  signal?.addEventListener('abort', poke, { once: true });
  try {
    const size = (await handle.stat()).size;
    let position = options.tail === undefined || options.tail < 0 ? 0 : await tailOffset(handle, size, options.tail);
    let pending = '';
    const buffer = Buffer.allocUnsafe(chunkSize);
    for (;;) {
      if (signal?.aborted) return;
      // Read the state first: output written before the stop is in the file by then.
      const last = stopped;
      changed = false;
      for (;;) {
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
        if (bytesRead === 0) break;
        position += bytesRead;
        pending += buffer.toString('utf8', 0, bytesRead);
        const end = pending.lastIndexOf('\n');
        if (end < 0) continue;
        const lines = pending.slice(0, end).split('\n');
        pending = pending.slice(end + 1);
        for (const line of lines) {
          if (!line) continue;
          let entry: LogEntry;
          try {
            entry = JSON.parse(line) as LogEntry;
          } catch {
            continue;
          }
          const stream = entry.stream === 'stderr' ? 'stderr' : 'stdout';
          if (stream === 'stdout' ? !options.stdout : !options.stderr) continue;
          const time = rfc3339ToNanos(entry.time);
          if (since !== undefined && time < since) continue;
          if (until !== undefined && time > until) return;
          const text = options.timestamps ? `${formatFixedNanos(time)} ${entry.log}` : entry.log;
          yield { stream, data: Buffer.from(text, 'utf8') };
        }
        if (signal?.aborted) return;
      }
      if (last) return;
      if (until !== undefined && secondsToNanos(Date.now() / 1000) > until) return;
      if (changed) continue;
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  } finally {
    watcher?.close();
    signal?.removeEventListener('abort', poke);
    await handle.close();
  }
}
