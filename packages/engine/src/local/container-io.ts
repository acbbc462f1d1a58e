import { Writable } from 'node:stream';
import { ErrorKind } from '@berth/errors';
import { attachSocket, readJsonFileLog, type AttachSession, type JsonFileLogRecord } from '@berth/runtime';
import { EngineErrorCode, engineError, type AttachOptions, type LogsOptions } from '../engine.js';
import type { CallOptions, TerminalSize } from '../types/common.js';
import type { ContainerOutput, ContainerStream, OutputChunk } from '../types/stream.js';
import { isRunning, type ContainerLifecycle } from './container-lifecycle.js';
import type { ContainerRecord } from './container-record.js';
import { invalidParameter } from './docker-errors.js';
import type { EngineContext } from './engine-context.js';
import { formatFixedNanos, secondsToNanos } from './docker-time.js';
import { OutputQueue } from './output-queue.js';

/** A log's records as output chunks, each prefixed with docker's fixed-width time when asked. */
async function* logChunks(records: AsyncIterable<JsonFileLogRecord>, timestamps: boolean): AsyncGenerator<OutputChunk> {
  for await (const r of records) {
    yield { stream: r.stream, data: Buffer.from(timestamps ? `${formatFixedNanos(r.timeNs)} ${r.log}` : r.log, 'utf8') };
  }
}

/** docker's detach keys (`ctrl-p,ctrl-q`, `ctrl-a,x`) as the bytes that trigger a detach. */
export function parseDetachKeys(spec: string): Buffer {
  const bytes: number[] = [];
  for (const key of spec.split(',')) {
    const k = key.trim();
    if (k.length === 1) {
      bytes.push(k.charCodeAt(0));
      continue;
    }
    const m = /^ctrl-(.)$/i.exec(k);
    if (!m) throw invalidParameter(`Invalid detach keys (${spec}) provided`);
    const c = m[1]!;
    const code = /[a-z]/i.test(c) ? c.toLowerCase().charCodeAt(0) - 96 : '@[\\]^_'.indexOf(c);
    if (code < 0) throw invalidParameter(`Invalid detach keys (${spec}) provided`);
    bytes.push(/[a-z]/i.test(c) ? code : code === 0 ? 0 : 26 + code);
  }
  return Buffer.from(bytes);
}

/**
 * A stdin that watches for the detach keys: bytes before them go to `target`; the keys
 * themselves detach. A partial match is held back until it is decided.
 */
function detachingStdin(target: Writable, keys: Buffer, onDetach: () => void): Writable {
  let matched = 0;
  return new Writable({
    write(chunk: Buffer, _enc, callback) {
      const out: number[] = [];
      for (const byte of chunk) {
        if (keys.length && byte === keys[matched]) {
          matched++;
          if (matched === keys.length) {
            matched = 0;
            if (out.length) target.write(Buffer.from(out));
            onDetach();
            return callback();
          }
          continue;
        }
        if (matched) {
          out.push(...keys.subarray(0, matched));
          matched = 0;
        }
        out.push(byte);
      }
      if (out.length === 0) return callback();
      if (target.destroyed || target.writableEnded) return callback();
      target.write(Buffer.from(out), () => callback());
    },
    final(callback) {
      if (target.destroyed || target.writableEnded) return callback();
      target.end(callback);
    },
  });
}

/** Attach, logs and resize of containers. */
export class ContainerIo {
  readonly #ctx: EngineContext;
  readonly #lifecycle: ContainerLifecycle;

  constructor(ctx: EngineContext, lifecycle: ContainerLifecycle) {
    this.#ctx = ctx;
    this.#lifecycle = lifecycle;
  }

  /** `POST /containers/{id}/attach`. */
  async attach(ref: string, options: AttachOptions = {}): Promise<ContainerStream> {
    const record = await this.#lifecycle.get(ref);
    const tty = record.config.Tty ?? false;
    const wantStdout = options.stdout ?? true;
    const wantStderr = options.stderr ?? true;
    const wantStdin = (options.stdin ?? false) && (record.config.OpenStdin ?? false);
    const stream = options.stream ?? true;
    const keys = parseDetachKeys(options.detachKeys || 'ctrl-p,ctrl-q');
    const queue = new OutputQueue();
    const holdLogs = options.logs ? queue.hold() : undefined;
    const holdLive = stream ? queue.hold() : undefined;
    let session: AttachSession | undefined;
    let closed = false;
    let pendingResize: TerminalSize | undefined;
    let stdinProxy: Writable | undefined;
    // Input typed before the session is connected waits for it.
    const stdinBacklog: Buffer[] = [];
    let stdinEnded = false;
    let cancelHook: (() => void) | undefined;
    const stopWatch = new AbortController();

    const close = () => {
      if (closed) return;
      closed = true;
      this.#ctx.closing.removeEventListener('abort', close);
      cancelHook?.();
      stopWatch.abort();
      session?.close();
      queue.stop();
    };

    // True once this attach is connected (a lone one before start thereby starts the process).
    // Before start it may be called while the runtime creates the container (`signal` ends that).
    const connect = async (socket: string, beforeStart: boolean, signal?: AbortSignal): Promise<boolean> => {
      if (closed || session) return session !== undefined;
      for (let attempt = 0; ; attempt++) {
        try {
          session = await attachSocket(socket, signal ? { signal } : {});
          break;
        } catch (err) {
          // Before start the monitor may not listen yet: nothing runs, so nothing is missed while
          // we try again for a moment.
          if (beforeStart && attempt < 200 && !signal?.aborted) {
            await new Promise((r) => setTimeout(r, attempt < 20 ? 1 : 10));
            continue;
          }
          holdLive?.();
          this.#ctx.logger.debug('attach socket unavailable', { containerId: record.id, error: err });
          return false;
        }
      }
      if (closed) {
        session.close();
        return true;
      }
      this.#ctx.watch.attached(socket, session);
      cancelHook?.();
      if (wantStdout) queue.add(session.stdout, 'stdout');
      else session.stdout.resume();
      if (wantStderr && !tty) queue.add(session.stderr, 'stderr');
      else session.stderr.resume();
      void session.exit.then(() => holdLive?.());
      holdLive?.();
      if (pendingResize) session.resize(pendingResize.height, pendingResize.width);
      for (const chunk of stdinBacklog.splice(0)) session.stdin.write(chunk);
      if (stdinEnded) session.stdin.end();
      await this.#ctx.events.append({
        Type: 'container',
        Action: 'attach',
        Actor: { ID: record.id, Attributes: { image: record.config.Image ?? record.image, name: record.name } },
      });
      return true;
    };

    this.#ctx.closing.addEventListener('abort', close, { once: true });
    if (wantStdin) {
      const target = new Writable({
        write(chunk: Buffer, _enc, callback) {
          if (session) session.stdin.write(chunk, () => callback());
          else {
            stdinBacklog.push(chunk);
            callback();
          }
        },
        final(callback) {
          stdinEnded = true;
          if (session) session.stdin.end(callback);
          else callback();
        },
      });
      stdinProxy = detachingStdin(target, keys, close);
    }

    if (options.logs && record.logPath) {
      void (async () => {
        try {
          for await (const chunk of logChunks(readJsonFileLog(record.logPath, { stdout: wantStdout, stderr: wantStderr }), false)) queue.push(chunk);
        } catch (err) {
          queue.fail(err);
        } finally {
          holdLogs?.();
        }
      })();
    } else {
      holdLogs?.();
    }

    if (stream) {
      const socket = this.#ctx.layout.attachSocket(record.id);
      if (isRunning(record)) {
        await connect(socket, false);
      } else {
        // Attached before start: connect between the runtime's create and start (in this process),
        // or as soon as another process has started it.
        cancelHook = this.#lifecycle.addBeforeStart(record.id, (s, signal) => connect(s, true, signal));
        void this.#connectWhenStarted(record, socket, stopWatch.signal, connect);
      }
    }
    return {
      tty,
      output: queue,
      stdin: stdinProxy,
      resize: async (size: TerminalSize) => {
        pendingResize = size;
        session?.resize(size.height, size.width);
      },
      close,
    };
  }

  async #connectWhenStarted(record: ContainerRecord, socket: string, signal: AbortSignal, connect: (socket: string, beforeStart: boolean) => Promise<boolean>): Promise<void> {
    const runs = record.state.runCount;
    while (!signal.aborted) {
      const next = this.#ctx.watch.next(record.id, { signal });
      const now = await this.#ctx.containers.tryRead(record.id);
      if (!now) {
        next.cancel();
        return;
      }
      if (now.state.runCount > runs && isRunning(now)) {
        next.cancel();
        await connect(socket, false);
        return;
      }
      await next.changed;
    }
  }

  /** `GET /containers/{id}/logs`. */
  async logs(ref: string, options: LogsOptions = {}): Promise<ContainerOutput> {
    const record = await this.#lifecycle.get(ref);
    const stdout = options.stdout ?? false;
    const stderr = options.stderr ?? false;
    if (!stdout && !stderr) throw invalidParameter('Bad parameters: you must choose at least one stream');
    if (!record.logPath) {
      throw engineError('configured logging driver does not support reading', EngineErrorCode.InvalidParameter, ErrorKind.InvalidArgument);
    }
    const signal = options.signal ? AbortSignal.any([options.signal, this.#ctx.closing]) : this.#ctx.closing;
    const follow = options.follow && isRunning(record) ? this.#ctx.watch.monitorGone(this.#ctx.layout.attachSocket(record.id), signal) : undefined;
    const tail = options.tail === undefined || options.tail === 'all' ? undefined : options.tail;
    return {
      tty: record.config.Tty ?? false,
      output: logChunks(
        readJsonFileLog(record.logPath, {
          stdout,
          stderr,
          ...(options.since !== undefined && options.since > 0 ? { sinceNs: secondsToNanos(options.since) } : {}),
          ...(options.until !== undefined && options.until > 0 ? { untilNs: secondsToNanos(options.until) } : {}),
          ...(tail !== undefined ? { tail } : {}),
          ...(follow ? { follow } : {}),
          signal,
        }),
        options.timestamps ?? false,
      ),
    };
  }

  /** `POST /containers/{id}/resize`. */
  async resize(ref: string, size: TerminalSize, options: CallOptions = {}): Promise<void> {
    const record = await this.#lifecycle.get(ref);
    if (!isRunning(record)) throw engineError(`Container ${record.id} is not running`, EngineErrorCode.ContainerNotRunning, ErrorKind.Conflict);
    if (!(record.config.Tty ?? false)) return;
    const session = await attachSocket(this.#ctx.layout.attachSocket(record.id), options.signal ? { signal: options.signal } : {});
    session.stdout.resume();
    session.stderr.resume();
    session.resize(size.height, size.width);
    session.close();
  }
}
