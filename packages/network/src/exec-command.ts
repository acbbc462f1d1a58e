import { spawn } from 'node:child_process';
import { abortError, errnoCode, throwIfAborted } from '@berth/errors';
import { NetworkErrorCode, networkError } from './network-error.js';

/** Options of `execCommand`. */
export interface ExecOptions {
  /** Text written to the command's stdin (for `ip -batch -`, `iptables-restore`, `nft -f -`). */
  readonly input?: string;
  readonly signal?: AbortSignal;
}

/**
 * Runs a system command (ip, nsenter, iptables, nft) to completion and returns its stdout. A
 * non-zero exit becomes a NetworkError that carries the command line and its stderr, which is
 * what names the failing rule or link.
 */
export async function execCommand(file: string, args: readonly string[], options: ExecOptions = {}): Promise<string> {
  throwIfAborted(options.signal);
  const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], signal: options.signal });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (b: Buffer) => out.push(b));
  child.stderr.on('data', (b: Buffer) => err.push(b));
  // A command that exits before reading all of its input closes the pipe; its exit status tells more.
  child.stdin.on('error', () => {});
  child.stdin.end(options.input ?? '');
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (status) => resolve(status));
  }).catch((cause: unknown) => {
    if (options.signal?.aborted) throw abortError(options.signal);
    const missing = errnoCode(cause) === 'ENOENT';
    throw networkError(
      missing ? `${file} not found: install it (iproute2, iptables, nftables, util-linux)` : `cannot run ${file}`,
      missing ? 'FailedPrecondition' : 'Internal',
      NetworkErrorCode.CommandFailed,
      cause,
    );
  });
  if (code !== 0) {
    if (options.signal?.aborted) throw abortError(options.signal);
    const stderr = Buffer.concat(err).toString().trim();
    throw networkError(`${file} ${args.join(' ')} failed (exit ${code}): ${stderr || 'no message'}`, 'Internal', NetworkErrorCode.CommandFailed);
  }
  return Buffer.concat(out).toString();
}
