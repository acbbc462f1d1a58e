import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import { describeError, isBerthError } from '@berth/errors';
import type { JsonMessage } from '../types/common.js';
import type { OutputChunk } from '../types/stream.js';
import type { ApiExchange } from './api-exchange.js';
import { frameChunk } from './stdcopy.js';

/** Writes with backpressure; false when the sink closed first. */
export async function writeChunk(sink: Writable, data: Buffer | string): Promise<boolean> {
  if (sink.destroyed || sink.writableEnded) return false;
  if (sink.write(data)) return true;
  const closed = once(sink, 'close').then(() => false);
  const drained = once(sink, 'drain').then(() => true);
  return Promise.race([drained, closed]);
}

/** Copies a process's output to a sink: stdcopy frames without a terminal, raw bytes with one. */
export async function writeOutput(output: AsyncIterable<OutputChunk>, sink: Writable, tty: boolean): Promise<void> {
  for await (const chunk of output) {
    if (!(await writeChunk(sink, tty ? chunk.data : frameChunk(chunk)))) return;
  }
}

/**
 * Streams docker's JSON messages as chunked `application/json` lines. The first message is taken
 * before the status line goes out, so an early failure (no such image, bad credentials) is an
 * ordinary error status; a later one becomes an `errorDetail` line, as docker does, with the
 * error's exit code (a failed build's RUN status) as its `code`: the docker CLI exits with it.
 */
export async function sendJsonLines(x: ApiExchange, messages: AsyncIterable<JsonMessage>): Promise<void> {
  const iterator = messages[Symbol.asyncIterator]();
  const first = await iterator.next();
  const sink = x.startStream(200, { 'Content-Type': 'application/json' });
  try {
    if (!first.done) {
      if (!(await writeChunk(sink, JSON.stringify(first.value) + '\n'))) return;
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
        if (!(await writeChunk(sink, JSON.stringify(next.value) + '\n'))) return;
      }
    }
  } catch (err) {
    const message = describeError(err);
    const code = isBerthError(err) ? err.exitCode : undefined;
    await writeChunk(sink, JSON.stringify({ errorDetail: { ...(code === undefined ? {} : { code }), message }, error: message } satisfies JsonMessage) + '\n');
  } finally {
    await iterator.return?.();
    sink.end();
  }
}

/** Streams JSON objects, one per line, with the status line sent at once (events, stats). */
export async function sendJsonObjects(x: ApiExchange, objects: AsyncIterable<unknown>): Promise<void> {
  const sink = x.startStream(200, { 'Content-Type': 'application/json' });
  try {
    for await (const object of objects) {
      if (!(await writeChunk(sink, JSON.stringify(object) + '\n'))) return;
    }
  } finally {
    sink.end();
  }
}

/** Sends a byte stream (tar archives) after the headers. */
export async function sendReadable(x: ApiExchange, readable: Readable, headers: Readonly<Record<string, string>>): Promise<void> {
  const sink = x.startStream(200, headers);
  try {
    for await (const chunk of readable) {
      if (!(await writeChunk(sink, chunk as Buffer))) {
        readable.destroy();
        return;
      }
    }
    sink.end();
  } catch (err) {
    // The status line is gone: cutting the connection short is how the client learns the tar is incomplete.
    sink.destroy(err as Error);
  }
}
