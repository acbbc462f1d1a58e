import { Transform, type TransformCallback } from 'node:stream';
import type { OutputChunk, OutputStreamName } from '../types/stream.js';

/**
 * Docker's stream multiplexing for non-terminal attach, exec and logs: each frame is an 8-byte
 * header `[type, 0, 0, 0, size (uint32 big-endian)]` and `size` bytes of payload. Type 0 is stdin
 * (written on stdout), 1 stdout, 2 stderr, 3 an error the client reports.
 */
export const StdType = { stdin: 0, stdout: 1, stderr: 2, systemErr: 3 } as const;
export type StdType = (typeof StdType)[keyof typeof StdType];

const headerSize = 8;

/** The frame for `data` on stream `type`: header and payload in one buffer. */
export function encodeFrame(type: StdType, data: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(headerSize + data.length);
  frame.writeUInt32BE(0, 0);
  frame[0] = type;
  frame.writeUInt32BE(data.length, 4);
  frame.set(data, headerSize);
  return frame;
}

/** A chunk of output of a process with no terminal, framed. */
export function frameChunk(chunk: OutputChunk): Buffer {
  return encodeFrame(chunk.stream === 'stderr' ? StdType.stderr : StdType.stdout, chunk.data);
}

/** Thrown by the demultiplexer for a type 3 frame: the server's error, in its words. */
export class StreamSystemError extends Error {}

/**
 * Reads stdcopy frames and yields them as output chunks (stdin frames count as stdout, as
 * docker's StdCopy does). A type 3 frame fails the stream with its text.
 */
export class StdcopyDemuxer extends Transform {
  #pending: Buffer = Buffer.alloc(0);

  constructor() {
    super({ readableObjectMode: true });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#pending = this.#pending.length ? Buffer.concat([this.#pending, chunk]) : chunk;
    while (this.#pending.length >= headerSize) {
      const size = this.#pending.readUInt32BE(4);
      if (this.#pending.length < headerSize + size) break;
      const type = this.#pending[0];
      const data = this.#pending.subarray(headerSize, headerSize + size);
      this.#pending = this.#pending.subarray(headerSize + size);
      if (type === StdType.systemErr) {
        callback(new StreamSystemError(data.toString('utf8')));
        return;
      }
      if (type !== StdType.stdin && type !== StdType.stdout && type !== StdType.stderr) {
        callback(new StreamSystemError(`unknown stream type ${type} in a multiplexed stream`));
        return;
      }
      const stream: OutputStreamName = type === StdType.stderr ? 'stderr' : 'stdout';
      if (size > 0) this.push({ stream, data: Buffer.from(data) } satisfies OutputChunk);
    }
    callback();
  }

  override _flush(callback: TransformCallback): void {
    callback(this.#pending.length ? new StreamSystemError(`multiplexed stream ended inside a frame (${this.#pending.length} bytes left)`) : undefined);
  }
}
