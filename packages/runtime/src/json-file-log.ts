import { watch, type Stats } from 'node:fs';
import { open, readdir, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { errnoCode } from '@berth/errors';
import { RuntimeError, RuntimeErrorCode } from './errors.js';

/** How berth-runtime's monitor rotates a json-file log: docker's `max-size`, `max-file` and `compress`. */
export interface LogRotation {
  /** Rotate once the log holds this many bytes. */
  readonly maxSize: number;
  /** Files kept, the live one included (`<log>`, `<log>.1`, ...); 1 (the default) starts the log over. */
  readonly maxFiles?: number;
  /** gzip the rotated files (`<log>.1.gz`, ...); needs maxFiles of 2 or more. */
  readonly compress?: boolean;
}

/** One record of a json-file log. */
export interface JsonFileLogRecord {
  readonly stream: 'stdout' | 'stderr';
  /** The text as the container wrote it, with its newline (a line split at 16 KiB has none). */
  readonly log: string;
  /** The time as written (RFC 3339 with nanoseconds). */
  readonly time: string;
  /** The same time in nanoseconds since the epoch. */
  readonly timeNs: bigint;
}

/** Options of `readJsonFileLog`, as `docker logs` takes them. */
export interface ReadJsonFileLogOptions {
  /** Include stdout (default true). */
  readonly stdout?: boolean;
  /** Include stderr (default true). */
  readonly stderr?: boolean;
  /** Only records at or after this time (nanoseconds since the epoch). */
  readonly sinceNs?: bigint;
  /** Stop at the first record after this time (nanoseconds since the epoch). */
  readonly untilNs?: bigint;
  /** The last `tail` records (before the since filter, as docker counts), across rotated files; all when absent or negative. */
  readonly tail?: number;
  /**
   * Keep reading what is written, through rotations, until this settles (the container
   * stopped); then the rest is drained and the iteration ends. Absent: read what is there.
   */
  readonly follow?: Promise<unknown>;
  readonly signal?: AbortSignal;
}

const humanSize = /^(\d+(?:\.\d+)*) ?([kmgtp])?i?b?$/i;
const decimalUnits: Record<string, number> = { k: 1e3, m: 1e6, g: 1e9, t: 1e12, p: 1e15 };

function invalid(message: string): RuntimeError {
  return new RuntimeError(message, RuntimeErrorCode.InvalidSpec);
}

/**
 * The rotation of docker's json-file `--log-opt`s (`max-size=10m`, `max-file=3`, `compress=true`),
 * checked with docker's rules and messages; undefined when the log does not rotate (no max-size).
 * Other options (labels, env, tag, ...) are not about rotation and are ignored here.
 */
export function jsonFileLogRotation(config: Readonly<Record<string, string>>): LogRotation | undefined {
  let maxSize: number | undefined;
  const sizeText = config['max-size'];
  if (sizeText !== undefined) {
    const m = humanSize.exec(sizeText);
    if (!m) throw invalid(`invalid size: '${sizeText}'`);
    maxSize = Math.trunc(Number(m[1]) * (m[2] ? decimalUnits[m[2].toLowerCase()]! : 1));
    if (maxSize <= 0) throw invalid('max-size must be a positive number');
  }
  let maxFiles = 1;
  const filesText = config['max-file'];
  if (filesText !== undefined) {
    if (!/^[+-]?\d+$/.test(filesText)) throw invalid(`strconv.Atoi: parsing "${filesText}": invalid syntax`);
    maxFiles = Number(filesText);
    if (maxFiles < 1) throw invalid('max-file cannot be less than 1');
  }
  let compress = false;
  const compressText = config['compress'];
  if (compressText !== undefined) {
    if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(compressText)) compress = true;
    else if (!['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(compressText)) {
      throw invalid(`strconv.ParseBool: parsing "${compressText}": invalid syntax`);
    }
    if (compress && (maxFiles === 1 || maxSize === undefined)) {
      throw invalid('compress cannot be true when max-file is less than 2 or max-size is not set');
    }
  }
  if (maxSize === undefined) return undefined;
  return { maxSize, maxFiles, ...(compress ? { compress } : {}) };
}

const rfc3339 = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/;

/** Nanoseconds since the epoch of an RFC 3339 time with up to nine fraction digits. */
function timeToNanos(time: string): bigint {
  const m = rfc3339.exec(time);
  if (!m) return 0n;
  const seconds = Date.parse(`${m[1]}${m[3]}`);
  return BigInt(seconds) * 1_000_000n + BigInt((m[2] ?? '').padEnd(9, '0'));
}

interface RawEntry {
  readonly log?: unknown;
  readonly stream?: unknown;
  readonly time?: unknown;
}

function parseRecord(line: string): JsonFileLogRecord | undefined {
  let raw: RawEntry;
  try {
    raw = JSON.parse(line) as RawEntry;
  } catch {
    return undefined; // a torn or foreign line: docker's reader skips it too
  }
  if (typeof raw.log !== 'string' || typeof raw.time !== 'string') return undefined;
  return { stream: raw.stream === 'stderr' ? 'stderr' : 'stdout', log: raw.log, time: raw.time, timeNs: timeToNanos(raw.time) };
}

/** The rotated files of a log, oldest first: `<log>.N[.gz]` ... `<log>.1[.gz]`. */
async function rotatedFiles(path: string): Promise<string[]> {
  const base = basename(path);
  const names = await readdir(dirname(path)).catch((err: unknown) => {
    if (errnoCode(err) === 'ENOENT') return [] as string[];
    throw err;
  });
  const found = new Map<number, string>();
  for (const name of names) {
    if (!name.startsWith(`${base}.`)) continue;
    const m = /^(\d+)(\.gz)?$/.exec(name.slice(base.length + 1));
    if (!m) continue;
    const n = Number(m[1]);
    // While <log>.1 is being compressed both may exist: the plain one is complete.
    if (!found.has(n) || !m[2]) found.set(n, join(dirname(path), name));
  }
  return [...found.entries()].sort((a, b) => b[0] - a[0]).map(([, p]) => p);
}

const chunkSize = 64 * 1024;

/** An open log file, plain or gzipped. */
interface LogFile {
  readonly handle: FileHandle;
  readonly gz: boolean;
  readonly stats: Stats;
}

/** Opens `<name>`, or `<name>.gz` when the plain one is not (or no longer) there. */
async function openLogFile(name: string): Promise<LogFile | undefined> {
  for (const file of name.endsWith('.gz') ? [name] : [name, `${name}.gz`]) {
    try {
      const handle = await open(file, 'r');
      return { handle, gz: file.endsWith('.gz'), stats: await handle.stat() };
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
    }
  }
  return undefined;
}

/** The live log: plain only. */
async function openLive(path: string): Promise<LogFile | undefined> {
  try {
    const handle = await open(path, 'r');
    return { handle, gz: false, stats: await handle.stat() };
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
    return undefined;
  }
}

async function* chunksOf(handle: FileHandle): AsyncGenerator<Buffer> {
  for (let position = 0; ; ) {
    const buffer = Buffer.allocUnsafe(chunkSize);
    const { bytesRead } = await handle.read(buffer, 0, chunkSize, position);
    if (bytesRead === 0) return;
    position += bytesRead;
    yield buffer.subarray(0, bytesRead);
  }
}

/** The file's bytes from its start, gunzipped; positional reads, so the handle stays as it is. */
function contentOf(file: LogFile): Readable {
  const raw = Readable.from(chunksOf(file.handle), { objectMode: false });
  if (!file.gz) return raw;
  const gunzip = createGunzip();
  raw.on('error', (err) => gunzip.destroy(err));
  gunzip.on('close', () => raw.destroy());
  return raw.pipe(gunzip);
}

async function* linesOf(stream: Readable): AsyncGenerator<string> {
  let pending = '';
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      pending += chunk.toString('utf8');
      const end = pending.lastIndexOf('\n');
      if (end < 0) continue;
      const lines = pending.slice(0, end).split('\n');
      pending = pending.slice(end + 1);
      yield* lines;
    }
  } finally {
    stream.destroy();
  }
}

/** The time of a file's first record, or undefined when it has none. */
async function firstRecordTime(file: LogFile): Promise<bigint | undefined> {
  for await (const line of linesOf(contentOf(file))) {
    const record = parseRecord(line);
    if (record) return record.timeNs;
  }
  return undefined;
}

async function countLines(file: LogFile): Promise<number> {
  let n = 0;
  for await (const chunk of contentOf(file) as AsyncIterable<Buffer>) {
    for (let i = chunk.indexOf(0x0a); i >= 0; i = chunk.indexOf(0x0a, i + 1)) n++;
  }
  return n;
}

const sameFile = (a: Stats | undefined, b: Stats | undefined) => !!a && !!b && a.ino === b.ino && a.dev === b.dev;

const byFirst = (a: { first: bigint }, b: { first: bigint }) => (a.first < b.first ? -1 : a.first > b.first ? 1 : 0);

/**
 * The rotated files with records after `afterNs` (all when undefined), oldest first by their
 * first record's time (which a compressed copy keeps), stopping at the file `stopAt`. Rotation
 * moves `<log>.K` to `<log>.K+1` from the top down, so a scan upwards from `<log>.1` while it
 * happens may meet a file twice (known by inode) but never misses one.
 */
async function scanRotated(path: string, afterNs: bigint | undefined, stopAt: Stats | undefined, live: LogFile | undefined): Promise<LogFile[]> {
  const highest = (await rotatedFiles(path)).length;
  const seen: Stats[] = [];
  const found: { file: LogFile; first: bigint }[] = [];
  for (let i = 1, misses = 0; i <= highest || misses < 2; i++) {
    const file = await openLogFile(`${path}.${i}`);
    if (!file) {
      misses++;
      continue;
    }
    misses = 0;
    if (sameFile(file.stats, stopAt)) {
      await file.handle.close();
      break;
    }
    const known = sameFile(file.stats, live?.stats) || seen.some((s) => sameFile(s, file.stats));
    const first = known ? undefined : await firstRecordTime(file);
    if (first === undefined || (afterNs !== undefined && first <= afterNs)) {
      await file.handle.close();
      if (first === undefined) continue;
      break;
    }
    seen.push(file.stats);
    found.push({ file, first });
  }
  // Once the live log has been rotated away it has content, and files after it come after it.
  const liveFirst = live ? await firstRecordTime(live) : undefined;
  const files: LogFile[] = [];
  for (const f of found.sort(byFirst)) {
    if (liveFirst !== undefined && f.first >= liveFirst) await f.file.handle.close();
    else files.push(f.file);
  }
  return files;
}

/** Where the last `lines` lines of the open live log start, and how many it holds when fewer. */
async function tailOffset(handle: FileHandle, size: number, lines: number): Promise<{ offset: number; found: number }> {
  if (lines <= 0) return { offset: size, found: 0 };
  let position = size;
  let seen = 0;
  const buffer = Buffer.allocUnsafe(chunkSize);
  while (position > 0) {
    const length = Math.min(chunkSize, position);
    position -= length;
    await handle.read(buffer, 0, length, position);
    for (let i = length - 1; i >= 0; i--) {
      // The newline ending the last line does not start one.
      if (buffer[i] !== 0x0a || position + i === size - 1) continue;
      if (++seen === lines) return { offset: position + i + 1, found: lines };
    }
  }
  return { offset: 0, found: size > 0 ? seen + 1 : 0 };
}

/**
 * Reads a json-file log as berth-runtime's monitor (or docker's json-file driver) writes it,
 * rotated files included: `<log>.N[.gz]` oldest first, then `<log>`. With `follow` it keeps up
 * with the live log through rotations, however many pass between two reads.
 */
export async function* readJsonFileLog(path: string, options: ReadJsonFileLogOptions = {}): AsyncGenerator<JsonFileLogRecord> {
  const wantStdout = options.stdout ?? true;
  const wantStderr = options.stderr ?? true;
  const { sinceNs, untilNs, signal } = options;
  let lastNs: bigint | undefined;
  let pastUntil = false;
  // The record of a line if it passes the filters; past `until` ends the read.
  const take = (line: string): JsonFileLogRecord | undefined => {
    const record = parseRecord(line);
    if (!record) return undefined;
    lastNs = record.timeNs;
    if (untilNs !== undefined && record.timeNs > untilNs) {
      pastUntil = true;
      return undefined;
    }
    if (record.stream === 'stdout' ? !wantStdout : !wantStderr) return undefined;
    if (sinceNs !== undefined && record.timeNs < sinceNs) return undefined;
    return record;
  };

  let stopped = options.follow === undefined;
  let changed = false;
  let wake: (() => void) | undefined;
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

  let live: LogFile | undefined;
  let rotated: LogFile[] = [];
  try {
    // Open the live log first: what rotates away after this is still read through the handle.
    live = await openLive(path);
    rotated = await scanRotated(path, undefined, undefined, live);
    let position = 0;
    let skip = 0; // lines to skip in the first rotated file read
    if (options.tail !== undefined && options.tail >= 0) {
      const fromLive = live ? await tailOffset(live.handle, live.stats.size, options.tail) : { offset: 0, found: 0 };
      position = fromLive.offset;
      let want = options.tail - fromLive.found;
      let first = rotated.length;
      while (want > 0 && first > 0) {
        const n = await countLines(rotated[first - 1]!);
        first--;
        if (n >= want) {
          skip = n - want;
          want = 0;
        } else want -= n;
      }
      await Promise.all(rotated.slice(0, first).map((f) => f.handle.close()));
      rotated = rotated.slice(first);
    }

    let pending = '';
    let drainedRotated = false;
    const buffer = Buffer.allocUnsafe(chunkSize);
    // Without follow, the log as it was when the read began: a line written meanwhile would make
    // `--tail 2` print three.
    const limit = options.follow === undefined && live ? live.stats.size : Infinity;
    for (;;) {
      while (rotated.length) {
        const file = rotated.shift()!;
        try {
          for await (const line of linesOf(contentOf(file))) {
            if (skip > 0) {
              skip--;
              continue;
            }
            if (signal?.aborted) return;
            const record = take(line);
            if (pastUntil) return;
            if (record) yield record;
          }
        } finally {
          await file.handle.close();
        }
      }
      if (signal?.aborted) return;
      // Read the state first: output written before the stop is in the file by then.
      const last = stopped;
      changed = false;
      while (live) {
        const room = Math.min(buffer.length, limit - position);
        if (room <= 0) break;
        const { bytesRead } = await live.handle.read(buffer, 0, room, position);
        if (bytesRead === 0) break;
        position += bytesRead;
        pending += buffer.toString('utf8', 0, bytesRead);
        const end = pending.lastIndexOf('\n');
        if (end < 0) continue;
        const lines = pending.slice(0, end).split('\n');
        pending = pending.slice(end + 1);
        for (const line of lines) {
          const record = take(line);
          if (pastUntil) return;
          if (record) yield record;
        }
        if (signal?.aborted) return;
      }
      if (options.follow === undefined) return;
      // A rotation leaves our handle on the old file, drained now: go on with the files rotated
      // after it, then the new live log from its start.
      const now = await stat(path).catch(() => undefined);
      if (now && !sameFile(now, live?.stats)) {
        // The old file may have grown between the drain and the rotation: drain it once more.
        if (!drainedRotated) {
          drainedRotated = true;
          continue;
        }
        drainedRotated = false;
        const stale = live;
        live = await openLive(path);
        rotated = await scanRotated(path, lastNs, stale?.stats, live);
        await stale?.handle.close();
        position = 0;
        pending = '';
        continue;
      }
      if (last) return;
      if (untilNs !== undefined && BigInt(Date.now()) * 1_000_000n > untilNs) return;
      if (changed) continue;
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  } finally {
    watcher?.close();
    signal?.removeEventListener('abort', poke);
    await Promise.all([live, ...rotated].map((f) => f?.handle.close()));
  }
}
