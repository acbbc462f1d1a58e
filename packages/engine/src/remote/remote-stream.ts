import type { Socket } from 'node:net';
import { pipeline, Readable, Writable } from 'node:stream';
import { StdcopyDemuxer } from '../api/stdcopy.js';
import type { TerminalSize } from '../types/common.js';
import type { ContainerStream, OutputChunk } from '../types/stream.js';

/** Output chunks of a byte stream: stdcopy frames, or raw terminal bytes. */
export function outputChunks(source: Readable, framed: boolean): AsyncIterable<OutputChunk> {
  if (framed) {
    const demuxer = new StdcopyDemuxer();
    pipeline(source, demuxer, () => undefined);
    return demuxer;
  }
  return (async function* raw(): AsyncGenerator<OutputChunk> {
    for await (const data of source) yield { stream: 'stdout', data: data as Buffer };
  })();
}

/**
 * A ContainerStream over a hijacked socket. Ending stdin half-closes the socket (docker's
 * CloseWrite), so the server closes the process's stdin and keeps sending its output.
 */
export function socketStream(init: {
  readonly socket: Socket;
  readonly tty: boolean;
  readonly framed: boolean;
  readonly stdin: boolean;
  readonly resize: (size: TerminalSize, signal?: AbortSignal) => Promise<void>;
}): ContainerStream {
  const { socket } = init;
  socket.setNoDelay?.(true);
  const stdin = init.stdin
    ? new Writable({
        write(chunk: Buffer, _encoding, callback) {
          if (socket.destroyed) return callback();
          socket.write(chunk, () => callback());
        },
        final(callback) {
          if (!socket.destroyed) socket.end();
          callback();
        },
      })
    : undefined;
  return {
    tty: init.tty,
    stdin,
    output: outputChunks(socket, init.framed),
    resize: (size, options) => init.resize(size, options?.signal),
    close: () => socket.destroy(),
  };
}
