import { request } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorKind, abortError, errnoCode, throwIfAborted } from '@berth/errors';
import { MachineError } from './errors.js';

/** Options of `EngineClient`. */
export interface EngineClientOptions {
  /** `tcp://HOST:PORT` (as DOCKER_HOST) or `https://HOST:PORT`. */
  readonly url: string;
  /** PEM CA, client certificate and key: the engine only answers mutual TLS. */
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
  /** Per-request timeout (default 10 s). */
  readonly timeoutMs?: number;
}

/** What `/version` says (the fields machine uses). */
export interface EngineVersion {
  readonly Version: string;
  readonly ApiVersion: string;
  readonly Os?: string;
  readonly Arch?: string;
}

/** What `/info` says (the fields machine uses). */
export interface EngineInfo {
  readonly NCPU: number;
  readonly MemTotal: number;
  readonly Name?: string;
  readonly ServerVersion?: string;
}

/**
 * A small Docker Engine API client over mutual TLS: what machine needs to check and describe a
 * provisioned engine. It has no native parts, so the machine CLI stays portable.
 */
export class EngineClient {
  readonly host: string;
  readonly port: number;
  readonly #options: EngineClientOptions;

  constructor(options: EngineClientOptions) {
    const match = /^(?:tcp|https):\/\/(\[[^\]]+\]|[^:/]+)(?::(\d+))?\/?$/.exec(options.url);
    if (!match) {
      throw new MachineError(`engine URL ${JSON.stringify(options.url)} is not tcp://HOST:PORT`, { code: 'ERR_ENGINE_URL', kind: ErrorKind.InvalidArgument });
    }
    this.host = match[1]!.replace(/^\[|\]$/g, '');
    this.port = Number(match[2] ?? 2376);
    this.#options = options;
  }

  /** `GET /_ping`: resolves when the engine answers OK. */
  async ping(options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    const body = await this.#get('/_ping', options.signal);
    if (body.trim() !== 'OK') {
      throw new MachineError(`engine at ${this.host}:${this.port} answered /_ping with ${JSON.stringify(body.slice(0, 80))}`, {
        code: 'ERR_ENGINE_UNAVAILABLE',
        kind: ErrorKind.Unavailable,
      });
    }
  }

  /** `GET /version`. */
  async version(options: { readonly signal?: AbortSignal } = {}): Promise<EngineVersion> {
    return this.#json<EngineVersion>('/version', options.signal);
  }

  /** `GET /info`. */
  async info(options: { readonly signal?: AbortSignal } = {}): Promise<EngineInfo> {
    return this.#json<EngineInfo>('/info', options.signal);
  }

  async #json<T>(path: string, signal: AbortSignal | undefined): Promise<T> {
    const body = await this.#get(path, signal);
    try {
      return JSON.parse(body) as T;
    } catch (err) {
      throw new MachineError(`engine at ${this.host}:${this.port} sent invalid JSON for ${path}`, { code: 'ERR_ENGINE_PROTOCOL', kind: ErrorKind.Internal, cause: err });
    }
  }

  #get(path: string, signal: AbortSignal | undefined): Promise<string> {
    throwIfAborted(signal);
    const where = `${this.host}:${this.port}`;
    return new Promise<string>((resolve, reject) => {
      const req = request(
        {
          host: this.host,
          port: this.port,
          path,
          method: 'GET',
          ca: this.#options.ca,
          cert: this.#options.cert,
          key: this.#options.key,
          timeout: this.#options.timeoutMs ?? 10_000,
          signal,
          headers: { 'User-Agent': 'berth-machine' },
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () => {
            if ((res.statusCode ?? 500) >= 400) {
              reject(
                new MachineError(`engine at ${where} answered ${path} with HTTP ${res.statusCode}: ${body.slice(0, 200)}`, {
                  code: 'ERR_ENGINE_HTTP',
                  kind: ErrorKind.Unavailable,
                }),
              );
            } else resolve(body);
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer from ${where} in time`), { code: 'ETIMEDOUT' })));
      req.on('error', (err) => {
        if (signal?.aborted) return reject(abortError(signal));
        const code = errnoCode(err) ?? '';
        // A certificate that does not name the address, or one from another CA: not a retryable outage.
        const tls = code.startsWith('ERR_TLS') || code.includes('CERT') || code === 'DEPTH_ZERO_SELF_SIGNED_CERT' || code === 'SELF_SIGNED_CERT_IN_CHAIN';
        reject(
          new MachineError(tls ? `TLS check of the engine at ${where} failed: ${err.message}` : `cannot reach the engine at ${where}: ${err.message}`, {
            code: tls ? 'ERR_ENGINE_TLS' : 'ERR_ENGINE_UNAVAILABLE',
            kind: tls ? ErrorKind.FailedPrecondition : ErrorKind.Unavailable,
            cause: err,
          }),
        );
      });
      req.end();
    });
  }
}

/**
 * Polls `/_ping` until the engine answers (default up to 60 s), then returns its version.
 * A TLS failure ends the wait at once: retrying cannot fix a certificate.
 */
export async function waitForEngine(
  client: EngineClient,
  options: { readonly timeoutMs?: number; readonly intervalMs?: number; readonly signal?: AbortSignal } = {},
): Promise<EngineVersion> {
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  let last: unknown;
  for (;;) {
    throwIfAborted(options.signal);
    try {
      await client.ping({ signal: options.signal });
      return await client.version({ signal: options.signal });
    } catch (err) {
      if (err instanceof MachineError && (err.code === 'ERR_ENGINE_TLS' || err.kind === ErrorKind.Canceled)) throw err;
      last = err;
    }
    if (Date.now() + (options.intervalMs ?? 1000) > deadline) break;
    await sleep(options.intervalMs ?? 1000, undefined, { signal: options.signal }).catch(() => throwIfAborted(options.signal));
  }
  throw new MachineError(`the engine at ${client.host}:${client.port} did not answer in time`, { code: 'ERR_ENGINE_WAIT_TIMEOUT', kind: ErrorKind.Timeout, cause: last });
}
