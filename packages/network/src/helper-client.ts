import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { errnoCode, throwIfAborted } from '@berth/errors';
import type { Logger } from '@berth/log';
import type { ReloadReply } from './network-helper.js';
import { NetworkErrorCode, networkError } from './network-error.js';
import { stateFiles } from './network-state.js';

/** Options of `HelperClient`. */
export interface HelperClientOptions {
  readonly stateDir: string;
  /** The helper's command line, `--state-dir DIR` appended. */
  readonly command: readonly string[];
  readonly logger: Logger;
  readonly startTimeoutMs?: number;
}

interface Reply {
  readonly ok: boolean;
  readonly error?: string;
}

/**
 * Talks to the helper process of a state directory, and starts it when it is not running.
 * Callers hold the state lock, so two processes never start two helpers.
 */
export class HelperClient {
  readonly #stateDir: string;
  readonly #command: readonly string[];
  readonly #logger: Logger;
  readonly #startTimeoutMs: number;

  constructor(options: HelperClientOptions) {
    this.#stateDir = options.stateDir;
    this.#command = options.command;
    this.#logger = options.logger;
    this.#startTimeoutMs = options.startTimeoutMs ?? 10_000;
  }

  get #socketPath(): string {
    return join(this.#stateDir, stateFiles.helperSocket);
  }

  /** Makes the helper serve the current state file, starting it first when needed. */
  async reload(signal?: AbortSignal): Promise<ReloadReply> {
    let reply = await this.#request<ReloadReply & Reply>('reload', signal);
    if (!reply) {
      await this.#start(signal);
      reply = await this.#request<ReloadReply & Reply>('reload', signal);
    }
    if (!reply?.ok) {
      throw networkError(`network helper failed to reload: ${reply?.error ?? 'it stopped answering'}`, 'Unavailable', NetworkErrorCode.HelperFailed);
    }
    if (reply.serving === 0) await this.#waitGone(reply.pid, signal);
    return reply;
  }

  /** Asks a running helper to reload, without starting one; true when one answered. */
  async reloadIfRunning(signal?: AbortSignal): Promise<boolean> {
    const reply = await this.#request<ReloadReply & Reply>('reload', signal);
    if (reply?.ok && reply.serving === 0) await this.#waitGone(reply.pid, signal);
    return reply !== undefined;
  }

  /** The pid of the running helper, if one answers. */
  async pid(signal?: AbortSignal): Promise<number | undefined> {
    return (await this.#request<{ ok: boolean; pid: number }>('status', signal))?.pid;
  }

  /**
   * Stops the helper and waits for it to exit. A helper that does not answer (hung, or its socket
   * removed) but is still recorded in the pid file is killed.
   */
  async stop(signal?: AbortSignal): Promise<void> {
    const reply = await this.#request<{ ok: boolean; pid: number }>('stop', signal);
    if (reply) {
      await this.#waitGone(reply.pid, signal);
      return;
    }
    const pid = await this.#recordedPid();
    if (pid !== undefined) {
      this.#logger.warn('killing an unresponsive network helper', { pid });
      process.kill(pid, 'SIGKILL');
      await this.#waitGone(pid, signal);
    }
  }

  /** The pid in the pid file, when that process is alive and is this state directory's helper. */
  async #recordedPid(): Promise<number | undefined> {
    const pid = Number((await readFile(join(this.#stateDir, stateFiles.helperPid), 'utf8').catch(() => '')).trim());
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    return cmdline.split('\0').includes(this.#stateDir) ? pid : undefined;
  }

  async #waitGone(pid: number, signal?: AbortSignal): Promise<void> {
    for (let i = 0; i < 500; i++) {
      throwIfAborted(signal);
      try {
        process.kill(pid, 0);
      } catch (err) {
        if (errnoCode(err) === 'ESRCH') return;
      }
      // A zombie (the helper is our own child in tests) is gone for every purpose.
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
      if (!stat || stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return;
      await sleep(10);
    }
    this.#logger.warn('network helper did not exit; killing it', { pid });
    process.kill(pid, 'SIGKILL');
  }

  /** Sends one request; undefined when no helper listens on the socket. */
  #request<T>(op: string, signal?: AbortSignal): Promise<T | undefined> {
    throwIfAborted(signal);
    return new Promise((resolve, reject) => {
      const socket = connect(this.#socketPath);
      let text = '';
      let connected = false;
      socket.setEncoding('utf8');
      const onAbort = () => socket.destroy();
      signal?.addEventListener('abort', onAbort, { once: true });
      socket.on('connect', () => {
        connected = true;
        socket.write(JSON.stringify({ op }) + '\n');
      });
      socket.on('data', (chunk: string) => (text += chunk));
      socket.on('error', (err) => {
        signal?.removeEventListener('abort', onAbort);
        if (!connected && ['ENOENT', 'ECONNREFUSED'].includes(errnoCode(err) ?? '')) resolve(undefined);
        else reject(networkError(`network helper request ${op} failed`, 'Unavailable', NetworkErrorCode.HelperFailed, err));
      });
      socket.on('close', () => {
        signal?.removeEventListener('abort', onAbort);
        if (signal?.aborted) {
          try {
            throwIfAborted(signal);
          } catch (err) {
            reject(err);
          }
          return;
        }
        if (!connected) return;
        try {
          resolve(JSON.parse(text) as T);
        } catch (cause) {
          reject(networkError(`network helper sent no reply to ${op}`, 'Unavailable', NetworkErrorCode.HelperFailed, cause));
        }
      });
    });
  }

  async #start(signal?: AbortSignal): Promise<void> {
    // A helper may live on without its socket (removed by hand): end it, or two would fight over ports.
    const stale = await this.#recordedPid();
    if (stale !== undefined) {
      process.kill(stale, 'SIGKILL');
      await this.#waitGone(stale, signal);
    }
    const [file, ...args] = this.#command;
    // Detached in a session of its own, in /, so that it holds no terminal or working directory of the CLI.
    const child = spawn(file!, [...args, '--state-dir', this.#stateDir], { detached: true, cwd: '/', stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      await new Promise<void>((resolve, reject) => {
        let out = '';
        const timer = setTimeout(() => reject(new Error(`no ready line within ${this.#startTimeoutMs} ms`)), this.#startTimeoutMs);
        const onAbort = () => reject(signal?.reason);
        signal?.addEventListener('abort', onAbort, { once: true });
        const settle = () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
        };
        child.once('error', (err) => {
          settle();
          reject(err);
        });
        child.once('exit', (code) => {
          settle();
          reject(new Error(`it exited with status ${code} before it was ready`));
        });
        child.stdout!.setEncoding('utf8');
        child.stdout!.on('data', (chunk: string) => {
          out += chunk;
          if (out.includes('ready\n')) {
            settle();
            resolve();
          }
        });
      });
    } catch (cause) {
      child.kill('SIGKILL');
      const log = await readFile(join(this.#stateDir, stateFiles.helperLog), 'utf8').catch(() => '');
      const last = log.trim().split('\n').at(-1) ?? '';
      throw networkError(
        `cannot start the network helper (${this.#command.join(' ')}): ${cause instanceof Error ? cause.message : String(cause)}${last ? `; last log line: ${last}` : ''}`,
        'Unavailable',
        NetworkErrorCode.HelperFailed,
        cause,
      );
    } finally {
      child.removeAllListeners('exit');
      child.stdout?.destroy();
      child.unref();
    }
    this.#logger.debug('network helper started', { pid: child.pid });
  }
}
