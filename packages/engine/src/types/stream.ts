import type { Writable } from 'node:stream';
import type { TerminalSize } from './common.js';

/** Which output of a process a chunk came from. */
export type OutputStreamName = 'stdout' | 'stderr';

/** A piece of a process's output. With a terminal everything arrives as `stdout`. */
export interface OutputChunk {
  readonly stream: OutputStreamName;
  readonly data: Buffer;
}

/**
 * A process's output, in the order it was written. `tty` tells whether it is one raw terminal
 * stream (true) or stdout and stderr kept apart (false): the API frames the latter with the
 * 8-byte stdcopy header and sends the former raw.
 */
export interface ContainerOutput {
  readonly tty: boolean;
  readonly output: AsyncIterable<OutputChunk>;
}

/**
 * A live connection to a container's main process (attach) or to an exec process: its stdin,
 * its output, and its terminal. `output` ends when the process exits, when the container's
 * detach keys are typed on `stdin`, or after `close()`. Ending `stdin` closes the process's
 * stdin when it was opened with `StdinOnce` (always for exec), as docker's half-close does.
 */
export interface ContainerStream extends ContainerOutput {
  /** Present when stdin was asked for. */
  readonly stdin: Writable | undefined;
  /** Sets the process's terminal size; a no-op without a terminal. */
  resize(size: TerminalSize, options?: { readonly signal?: AbortSignal }): Promise<void>;
  /** Detaches: stops the output and drops stdin without touching the process. */
  close(): void;
}
