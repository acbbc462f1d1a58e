import { closeSync, fstatSync, mkdirSync, openSync, watch, writeSync, type FSWatcher } from 'node:fs';
import { mkdir, open, readFile, rename, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '@berth/errors';
import { withFileLock } from '@berth/fsutil';
import { noopLogger, type Logger } from '@berth/log';
import type { Filters, Labels } from '../types/common.js';
import type { EventMessage, EventType } from '../types/system.js';
import { invalidParameter } from './docker-errors.js';
import { nowNanos, secondsToNanos } from './docker-time.js';

/** Options of an EventJournal. */
export interface EventJournalOptions {
  /** The journal's directory (`<root>/events`). */
  readonly dir: string;
  readonly logger?: Logger;
  /** The current file is rotated to `events.jsonl.1` beyond this size (default 8 MiB). */
  readonly maxBytes?: number;
}

/** What a component reports; the journal adds the time and scope. */
export interface EventInput {
  readonly Type: EventType;
  readonly Action: string;
  readonly Actor: { readonly ID: string; readonly Attributes: Labels };
}

/** Options of `EventJournal.read`. Times are unix seconds (fractions allowed). */
export interface ReadEventsOptions {
  readonly since?: number;
  readonly until?: number;
  readonly filters?: Filters;
  readonly signal?: AbortSignal;
}

const eventFilterKeys = new Set(['config', 'container', 'daemon', 'event', 'image', 'label', 'network', 'node', 'plugin', 'scope', 'secret', 'service', 'type', 'volume']);

function exactMatch(filters: Filters, key: string, ...values: string[]): boolean {
  const wanted = filters[key];
  if (!wanted?.length) return true;
  return values.some((v) => wanted.includes(v));
}

function fuzzyMatch(filters: Filters, key: string, ...values: string[]): boolean {
  const wanted = filters[key];
  if (!wanted?.length) return true;
  return values.some((v) => v !== '' && wanted.some((w) => v === w || v.startsWith(w)));
}

function stripTag(image: string): string {
  const at = image.indexOf('@');
  if (at >= 0) return image.slice(0, at);
  const colon = image.lastIndexOf(':');
  return colon > image.lastIndexOf('/') ? image.slice(0, colon) : image;
}

/** Checks event filter keys as docker does (`invalid filter 'x'`). */
export function validateEventFilters(filters: Filters | undefined): void {
  for (const key of Object.keys(filters ?? {})) {
    if (!eventFilterKeys.has(key)) throw invalidParameter(`invalid filter '${key}'`);
  }
}

/** docker's event filter (daemon/events/filter.go): every given key must match. */
export function eventMatches(ev: EventMessage, filters: Filters | undefined): boolean {
  if (!filters) return true;
  const attrs = ev.Actor.Attributes;
  const fuzzyActions = ['health_status', 'exec_create', 'exec_start'];
  const actionOk = (filters['event'] ?? []).some((e) => fuzzyActions.includes(e))
    ? fuzzyMatch(filters, 'event', ev.Action)
    : exactMatch(filters, 'event', ev.Action);
  const named = (type: string) => fuzzyMatch(filters, type, ev.Actor.ID, attrs['name'] ?? '');
  const imageName = attrs[ev.Type === 'image' ? 'name' : 'image'] ?? '';
  const labels = filters['label'] ?? [];
  return (
    actionOk &&
    exactMatch(filters, 'type', ev.Type) &&
    exactMatch(filters, 'scope', ev.scope) &&
    (filters['container']?.length ? ev.Type === 'container' && named('container') : true) &&
    (filters['volume']?.length ? ev.Type === 'volume' && named('volume') : true) &&
    (filters['network']?.length ? ev.Type === 'network' && named('network') : true) &&
    (filters['daemon']?.length ? ev.Type === 'daemon' && named('daemon') : true) &&
    exactMatch(filters, 'image', ev.Actor.ID, imageName, stripTag(ev.Actor.ID), stripTag(imageName)) &&
    labels.every((l) => {
      const eq = l.indexOf('=');
      return eq < 0 ? l in attrs : attrs[l.slice(0, eq)] === l.slice(eq + 1);
    })
  );
}

/**
 * Events persisted as JSON lines under the state root, so that `events --since` sees what
 * other processes did (the CLI is daemonless: there is no process to keep them in memory).
 * Appends are single O_APPEND writes of one line, which the kernel keeps whole; readers follow
 * the file with inotify. The file rotates once to `events.jsonl.1`.
 */
export class EventJournal {
  readonly #dir: string;
  readonly #file: string;
  readonly #old: string;
  readonly #logger: Logger;
  readonly #maxBytes: number;
  #dirMade = false;

  constructor(options: EventJournalOptions) {
    this.#dir = options.dir;
    this.#file = join(options.dir, 'events.jsonl');
    this.#old = join(options.dir, 'events.jsonl.1');
    this.#logger = options.logger ?? noopLogger;
    this.#maxBytes = options.maxBytes ?? 8 << 20;
  }

  /** Records an event; failures are logged, never thrown (an event must not fail the work it reports). */
  async append(input: EventInput): Promise<EventMessage> {
    const nanos = nowNanos();
    const event: EventMessage = {
      Type: input.Type,
      Action: input.Action,
      Actor: input.Actor,
      scope: 'local',
      time: Number(nanos / 1_000_000_000n),
      timeNano: Number(nanos),
    };
    try {
      if (!this.#dirMade) {
        mkdirSync(this.#dir, { recursive: true });
        this.#dirMade = true;
      }
      // One line appended synchronously: a few system calls, cheaper than the thread-pool round
      // trips of an asynchronous open, write, stat and close, at every step of a container's life.
      const fd = openSync(this.#file, 'a');
      let size: number;
      try {
        writeSync(fd, JSON.stringify(event) + '\n');
        size = fstatSync(fd).size;
      } finally {
        closeSync(fd);
      }
      if (size > this.#maxBytes) await this.#rotate();
    } catch (err) {
      this.#logger.warn('could not record an event', { action: input.Action, error: err });
    }
    return event;
  }

  async #rotate(): Promise<void> {
    await withFileLock(join(this.#dir, 'rotate.lock'), async () => {
      const size = (await stat(this.#file).catch(() => undefined))?.size ?? 0;
      if (size > this.#maxBytes) await rename(this.#file, this.#old);
    });
  }

  /**
   * Events from `since` (past ones first, then live ones) until `until` or the signal. Without
   * `since` only live events come; with `until` in the past only past ones.
   */
  async *read(options: ReadEventsOptions = {}): AsyncGenerator<EventMessage> {
    validateEventFilters(options.filters);
    const signal = options.signal;
    if (signal?.aborted) return;
    const start = nowNanos();
    const since = options.since === undefined ? undefined : secondsToNanos(options.since);
    const until = options.until === undefined ? undefined : secondsToNanos(options.until);
    const keep = (ev: EventMessage): boolean => {
      const t = BigInt(Math.round(ev.timeNano));
      if (since !== undefined && t < since) return false;
      if (until !== undefined && t > until) return false;
      return eventMatches(ev, options.filters);
    };

    await mkdir(this.#dir, { recursive: true });
    // Watch before reading, so that nothing appended between the read and the watch is lost.
    const follow = until === undefined || until > start;
    const tail = follow ? new FileTail(this.#dir, this.#file) : undefined;
    try {
      let offset = 0;
      if (since !== undefined) {
        for (const ev of parseLines(await readFile(this.#old, 'utf8').catch(() => ''))) if (keep(ev)) yield ev;
        const current = await readFile(this.#file).catch(() => Buffer.alloc(0));
        const end = current.lastIndexOf(0x0a) + 1;
        for (const ev of parseLines(current.subarray(0, end).toString('utf8'))) if (keep(ev)) yield ev;
        offset = end;
      } else {
        offset = (await stat(this.#file).catch(() => undefined))?.size ?? 0;
      }
      if (!tail) return;
      const deadline = until === undefined ? undefined : Number((until - nowNanos()) / 1_000_000n);
      for await (const text of tail.lines(offset, deadline, signal)) {
        for (const ev of parseLines(text)) if (keep(ev)) yield ev;
      }
    } finally {
      tail?.close();
    }
  }
}

function parseLines(text: string): EventMessage[] {
  const out: EventMessage[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      out.push(JSON.parse(line) as EventMessage);
    } catch {
      // A torn last line of a crashed writer: skip it.
    }
  }
  return out;
}

/**
 * Follows a file that is appended to and sometimes renamed away (rotated): yields whole new
 * lines as they arrive, draining a rotated file before switching to its successor.
 */
class FileTail {
  readonly #path: string;
  readonly #watcher: FSWatcher;
  #wake: (() => void) | undefined;
  #changed = false;
  #closed = false;

  constructor(dir: string, path: string) {
    this.#path = path;
    this.#watcher = watch(dir, { persistent: false }, () => {
      this.#changed = true;
      this.#wake?.();
    });
    this.#watcher.on('error', () => this.#wake?.());
  }

  close(): void {
    this.#closed = true;
    this.#watcher.close();
    this.#wake?.();
  }

  async *lines(offset: number, deadlineMs: number | undefined, signal: AbortSignal | undefined): AsyncGenerator<string> {
    let handle: FileHandle | undefined;
    let ino = -1;
    let position = offset;
    let pending: Buffer = Buffer.alloc(0);
    const endAt = deadlineMs === undefined ? undefined : Date.now() + deadlineMs;
    const onAbort = () => this.#wake?.();
    signal?.addEventListener('abort', onAbort, { once: true });
    const timer = endAt === undefined ? undefined : setTimeout(() => this.#wake?.(), Math.max(0, endAt - Date.now()));
    try {
      for (;;) {
        if (signal?.aborted || (endAt !== undefined && Date.now() >= endAt)) return;
        this.#changed = false;
        if (!handle) {
          try {
            handle = await open(this.#path, 'r');
            const info = await handle.stat();
            if (ino !== -1 && info.ino !== ino) position = 0;
            ino = info.ino;
          } catch (err) {
            if (errnoCode(err) !== 'ENOENT') throw err;
          }
        }
        if (handle) {
          const chunk = await readFrom(handle, position);
          position += chunk.length;
          pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
          const end = pending.lastIndexOf(0x0a) + 1;
          if (end > 0) {
            yield pending.subarray(0, end).toString('utf8');
            pending = pending.subarray(end);
          }
          // Rotated: the open handle still reads the old file; once drained, move on.
          const now = await stat(this.#path).catch(() => undefined);
          if (!now || now.ino !== ino) {
            if (chunk.length > 0) continue;
            await handle.close();
            handle = undefined;
            pending = Buffer.alloc(0);
            if (now) {
              position = 0;
              ino = now.ino;
              continue;
            }
          }
        }
        if (this.#changed) continue;
        // An abort or close that came while we were reading found no waiter to wake: look again.
        if (signal?.aborted || this.#closed || (endAt !== undefined && Date.now() >= endAt)) return;
        await new Promise<void>((resolve) => (this.#wake = resolve));
        this.#wake = undefined;
      }
    } finally {
      if (timer) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      await handle?.close();
    }
  }
}

async function readFrom(handle: FileHandle, position: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for (;;) {
    const buffer = Buffer.allocUnsafe(64 * 1024);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
    if (bytesRead === 0) break;
    chunks.push(buffer.subarray(0, bytesRead));
    position += bytesRead;
  }
  return Buffer.concat(chunks);
}
