import { PassThrough } from 'node:stream';
import { runCli } from '../main.js';
import { SignalRouter } from './signal-router.js';

/** The outcome of a command line run with captured streams. */
export interface CapturedRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs one `engine` command line in this process with its stdin fed from `input` and its
 * output captured, as the tests drive the CLI without a terminal.
 */
export async function runCaptured(args: readonly string[], options: { readonly env: NodeJS.ProcessEnv; readonly input?: string | Buffer }): Promise<CapturedRun> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (d: Buffer) => out.push(d));
  stderr.on('data', (d: Buffer) => err.push(d));
  const stdin = new PassThrough();
  stdin.end(options.input);
  const code = await runCli(
    args,
    { stdin: stdin as unknown as NodeJS.ReadStream, stdout: stdout as unknown as NodeJS.WriteStream, stderr: stderr as unknown as NodeJS.WriteStream, env: options.env },
    new SignalRouter(),
  );
  return { code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}
