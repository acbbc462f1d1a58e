import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { ContainerOutput, ContainerStream, OutputChunk } from '@berth/engine';
import type { Cli } from '../cli/cli.js';

async function write(sink: Writable, data: Buffer): Promise<void> {
  if (!sink.write(data)) await once(sink, 'drain');
}

/** Writes a process's output to the CLI's stdout and stderr, keeping each chunk on its own stream. */
export async function copyOutput(cli: Cli, output: ContainerOutput['output']): Promise<void> {
  for await (const chunk of output as AsyncIterable<OutputChunk>) {
    await write(chunk.stream === 'stderr' ? cli.io.stderr : cli.io.stdout, chunk.data);
  }
}

/** Options of `connectTerminal`. */
export interface ConnectOptions {
  /** Forward the CLI's stdin to the process. */
  readonly stdin: boolean;
  /** The process has a terminal: put ours in raw mode and keep its size in step with the window. */
  readonly tty: boolean;
}

/**
 * Connects the CLI's terminal to a container or exec stream: stdin in (raw mode on a TTY, EOF
 * closes the process's stdin), output out, window size followed. Resolves when the output ends.
 */
export async function connectTerminal(cli: Cli, stream: ContainerStream, options: ConnectOptions): Promise<void> {
  // process.stdin is made on first use: only when it is forwarded.
  const io = cli.io;
  const stdout = io.stdout;
  const raw = options.tty && options.stdin && io.stdin.isTTY === true;
  const cleanups: (() => void)[] = [];
  if (raw) {
    io.stdin.setRawMode(true);
    cleanups.push(() => io.stdin.setRawMode(false));
  }
  if (options.tty && stdout.isTTY) {
    const resize = () => void stream.resize({ height: stdout.rows, width: stdout.columns }).catch(() => undefined);
    resize();
    stdout.on('resize', resize);
    cleanups.push(() => stdout.off('resize', resize));
  }
  const sink = stream.stdin;
  if (options.stdin && sink) {
    const stdin = io.stdin;
    const forward = (data: Buffer) => {
      if (!sink.write(data)) {
        stdin.pause();
        sink.once('drain', () => stdin.resume());
      }
    };
    const end = () => sink.end();
    stdin.on('data', forward);
    stdin.once('end', end);
    sink.on('error', () => undefined);
    cleanups.push(() => {
      stdin.off('data', forward);
      stdin.off('end', end);
      // Stop reading so that a stdin still open (a terminal, a pipe) does not keep the CLI alive.
      stdin.pause();
    });
  }
  try {
    await copyOutput(cli, stream.output);
  } finally {
    for (const cleanup of cleanups.reverse()) cleanup();
  }
}
