import { connect, type Socket } from 'node:net';
import { PassThrough, Writable, type Readable } from 'node:stream';
import { abortError } from '@berth/errors';
import { RuntimeError, RuntimeErrorCode } from './errors.js';

/** Frame types of the attach protocol (see native/monitor.h). */
export const AttachFrame = { Stdin: 0, Stdout: 1, Stderr: 2, Exit: 3, CloseStdin: 4, Resize: 5 } as const;

/** A connection to a container's attach socket. */
export interface AttachSession {
  /** What is written goes to the container's stdin (if it has one open); end() closes that stdin. */
  readonly stdin: Writable;
  readonly stdout: Readable;
  /** Empty for a tty container: a tty has one output stream. */
  readonly stderr: Readable;
  /** Resizes the container's tty. */
  resize(rows: number, columns: number): void;
  /** The exit code when the container exits while attached; undefined when the session ended first. */
  readonly exit: Promise<number | undefined>;
  /** Detaches; the container goes on. */
  close(): void;
}

function header(type: number, length: number): Buffer {
  const h = Buffer.alloc(8);
  h[0] = type;
  h.writeUInt32BE(length, 4);
  return h;
}

/** Connects to the attach socket at `path`. */
export function attachSocket(path: string, options: { readonly signal?: AbortSignal } = {}): Promise<AttachSession> {
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) return reject(abortError(options.signal));
    const socket: Socket = connect(path);
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let pending: Buffer = Buffer.alloc(0);
    let exitCode: number | undefined;
    let settleExit!: (code: number | undefined) => void;
    const exit = new Promise<number | undefined>((r) => (settleExit = r));
    const onAbort = () => socket.destroy(abortError(options.signal!));
    options.signal?.addEventListener('abort', onAbort, { once: true });

    socket.on('data', (chunk: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      while (pending.length >= 8) {
        const length = pending.readUInt32BE(4);
        if (pending.length < 8 + length) break;
        const type = pending[0];
        const payload = pending.subarray(8, 8 + length);
        pending = pending.subarray(8 + length);
        if (type === AttachFrame.Stdout) stdout.write(payload);
        else if (type === AttachFrame.Stderr) stderr.write(payload);
        else if (type === AttachFrame.Exit && payload.length >= 4) {
          exitCode = payload.readInt32BE(0);
          // Nothing follows the exit but the monitor's end of stream, and the monitor waits for
          // its clients to close before it finishes: close at once, not when this process next
          // gets around to reading that end.
          socket.end();
        }
      }
    });
    const finish = () => {
      options.signal?.removeEventListener('abort', onAbort);
      stdout.end();
      stderr.end();
      settleExit(exitCode);
    };
    socket.on('close', finish);
    socket.on('error', (err) => {
      if (!connected) {
        options.signal?.removeEventListener('abort', onAbort);
        reject(new RuntimeError(`cannot attach to ${path}`, RuntimeErrorCode.Runtime, { cause: err }));
      }
    });
    let connected = false;
    socket.on('connect', () => {
      connected = true;
      const stdin = new Writable({
        write(chunk: Buffer, _encoding, callback) {
          socket.write(Buffer.concat([header(AttachFrame.Stdin, chunk.length), chunk]), callback);
        },
        final(callback) {
          if (socket.destroyed) return callback();
          socket.write(header(AttachFrame.CloseStdin, 0), () => callback());
        },
      });
      resolve({
        stdin,
        stdout,
        stderr,
        resize(rows, columns) {
          const frame = header(AttachFrame.Resize, 4);
          const size = Buffer.alloc(4);
          size.writeUInt16BE(rows, 0);
          size.writeUInt16BE(columns, 2);
          socket.write(Buffer.concat([frame, size]));
        },
        exit,
        close() {
          socket.end();
        },
      });
    });
  });
}
