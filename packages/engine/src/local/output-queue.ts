import type { Readable } from 'node:stream';
import type { OutputChunk, OutputStreamName } from '../types/stream.js';

/**
 * Turns the two output streams of a process into one async iterable of chunks in arrival
 * order, ending when both streams have ended or `stop()` is called.
 */
export class OutputQueue implements AsyncIterable<OutputChunk> {
  readonly #chunks: OutputChunk[] = [];
  #open = 0;
  #stopped = false;
  #wake: (() => void) | undefined;
  #error: unknown;

  /** Feeds a stream's data into the queue under `name`. */
  add(stream: Readable, name: OutputStreamName): void {
    this.#open++;
    stream.on('data', (data: Buffer) => this.push({ stream: name, data }));
    const done = () => {
      stream.removeListener('end', done);
      stream.removeListener('close', done);
      this.#open--;
      this.#poke();
    };
    stream.once('end', done);
    stream.once('close', done);
    stream.once('error', (err) => this.fail(err));
  }

  /** Holds the queue open until `release` is called (output may still be attached). */
  hold(): () => void {
    this.#open++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#open--;
      this.#poke();
    };
  }

  push(chunk: OutputChunk): void {
    if (this.#stopped) return;
    this.#chunks.push(chunk);
    this.#poke();
  }

  fail(err: unknown): void {
    this.#error ??= err;
    this.#poke();
  }

  stop(): void {
    this.#stopped = true;
    this.#poke();
  }

  #poke(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<OutputChunk> {
    for (;;) {
      const chunk = this.#chunks.shift();
      if (chunk) {
        yield chunk;
        continue;
      }
      if (this.#error !== undefined) throw this.#error;
      if (this.#stopped || this.#open <= 0) return;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }
}
