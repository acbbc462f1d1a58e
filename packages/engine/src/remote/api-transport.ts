import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { errnoCode } from '@berth/errors';
import { noopLogger, type Logger } from '@berth/log';
import { EngineErrorCode, engineError } from '../engine.js';
import { compareApiVersions, maxApiVersion } from '../api/api-version.js';
import { errorFromResponse } from '../api/error-status.js';

/** TLS toward a server: the CA to check it against, and the client's certificate (DOCKER_CERT_PATH). */
export interface RemoteTls {
  readonly ca?: string | Buffer;
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
  /** Check the server's certificate against `ca` (DOCKER_TLS_VERIFY); without it any certificate is taken. */
  readonly verify: boolean;
}

/** Options of the transport. */
export interface ApiTransportOptions {
  /** `unix:///run/berth/berth.sock`, `tcp://host:2376` (TLS when `tls` is set), `http://` or `https://`. */
  readonly host: string;
  readonly tls?: RemoteTls;
  /** Pin an API version instead of negotiating through `/_ping`. */
  readonly apiVersion?: string;
  readonly userAgent?: string;
  readonly logger?: Logger;
}

/** A request's parts. `body` is JSON (an object), raw bytes, or a stream sent chunked. */
export interface ApiRequest {
  readonly method: string;
  readonly path: string;
  readonly query?: Readonly<Record<string, string | number | boolean | readonly string[] | undefined>>;
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal | undefined;
}

/** What an upgraded (hijacked) request gives: the socket both ways, and the response's content type. */
export interface Hijacked {
  readonly socket: Socket;
  readonly contentType: string;
}

/**
 * HTTP to a Docker-API server over a unix socket, TCP or TLS, with docker's version negotiation:
 * `HEAD /_ping` (then `GET` if that is not answered), and min(ours, the server's) for every path.
 */
export class ApiTransport {
  readonly #host: string;
  readonly #base: RequestOptions;
  readonly #secure: boolean;
  readonly #agent: HttpAgent;
  readonly #logger: Logger;
  readonly #userAgent: string;
  #version: Promise<string> | undefined;

  constructor(options: ApiTransportOptions) {
    this.#host = options.host;
    this.#logger = options.logger ?? noopLogger;
    this.#userAgent = options.userAgent ?? 'Berth-Client';
    const m = /^(unix|tcp|http|https):\/\/(.*)$/.exec(options.host);
    if (!m) throw engineError(`invalid host ${JSON.stringify(options.host)}: want unix:///path or tcp://host:port`, EngineErrorCode.InvalidParameter, 'InvalidArgument');
    const scheme = m[1]!;
    const rest = m[2]!;
    if (scheme === 'unix') {
      this.#secure = false;
      this.#base = { socketPath: rest };
    } else {
      this.#secure = scheme === 'https' || (scheme === 'tcp' && options.tls !== undefined);
      const hp = /^(\[[^\]]+\]|[^:/]+)(?::(\d+))?/.exec(rest);
      if (!hp) throw engineError(`invalid host ${JSON.stringify(options.host)}`, EngineErrorCode.InvalidParameter, 'InvalidArgument');
      const hostname = hp[1]!.replace(/^\[|\]$/g, '');
      const port = hp[2] ? Number(hp[2]) : this.#secure ? 2376 : 2375;
      const tls = options.tls;
      this.#base = {
        hostname,
        port,
        ...(this.#secure && tls
          ? { ...(tls.ca ? { ca: tls.ca } : {}), ...(tls.cert ? { cert: tls.cert } : {}), ...(tls.key ? { key: tls.key } : {}), rejectUnauthorized: tls.verify }
          : {}),
      };
    }
    this.#agent = this.#secure ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true });
    if (options.apiVersion) this.#version = Promise.resolve(options.apiVersion);
  }

  get host(): string {
    return this.#host;
  }

  /** The negotiated API version. */
  version(signal?: AbortSignal): Promise<string> {
    this.#version ??= this.#negotiate(signal).catch((err: unknown) => {
      this.#version = undefined;
      throw err;
    });
    return this.#version;
  }

  async #negotiate(signal?: AbortSignal): Promise<string> {
    let res = await this.#send({ method: 'HEAD', path: '/_ping', signal }, '');
    res.resume();
    if (res.statusCode !== 200 && res.statusCode !== 500) {
      res = await this.#send({ method: 'GET', path: '/_ping', signal }, '');
      res.resume();
    }
    const advertised = res.headers['api-version'];
    const server = typeof advertised === 'string' && /^\d+\.\d+$/.test(advertised) ? advertised : '1.24';
    return compareApiVersions(server, maxApiVersion) < 0 ? server : maxApiVersion;
  }

  /** Sends a request; resolves with the response when its status is below 400, else throws the server's error. */
  async request(req: ApiRequest): Promise<IncomingMessage> {
    const version = await this.version(req.signal);
    const res = await this.#send(req, `/v${version}`);
    if ((res.statusCode ?? 500) >= 400) throw errorFromResponse(res.statusCode ?? 500, await readText(res));
    return res;
  }

  /** Sends a request and parses its JSON answer. */
  async json<T>(req: ApiRequest): Promise<T> {
    const res = await this.request(req);
    const text = await readText(res);
    try {
      return JSON.parse(text) as T;
    } catch (cause) {
      throw engineError(`the engine at ${this.#host} answered ${req.method} ${req.path} with something that is not JSON`, EngineErrorCode.Unreachable, 'Unavailable', { cause });
    }
  }

  /** Sends a request whose answer has no body of interest. */
  async empty(req: ApiRequest): Promise<IncomingMessage> {
    const res = await this.request(req);
    res.resume();
    return res;
  }

  /**
   * Attach and exec start: asks to upgrade the connection (`Upgrade: tcp`) and hands over the
   * socket. A server that answers 200 without upgrading gets the same treatment, as docker's client.
   */
  async hijack(req: ApiRequest): Promise<Hijacked> {
    const version = await this.version(req.signal);
    const { request, payload } = this.#start(req, `/v${version}`, { Connection: 'Upgrade', Upgrade: 'tcp' }, false);
    return new Promise<Hijacked>((resolve, reject) => {
      request.once('upgrade', (res: IncomingMessage, socket: Socket, head: Buffer) => {
        if (head.length) socket.unshift(head);
        resolve({ socket, contentType: String(res.headers['content-type'] ?? '') });
      });
      request.once('response', (res: IncomingMessage) => {
        if ((res.statusCode ?? 500) >= 400) {
          readText(res).then((text) => reject(errorFromResponse(res.statusCode ?? 500, text)), reject);
          return;
        }
        resolve({ socket: res.socket as Socket, contentType: String(res.headers['content-type'] ?? '') });
      });
      request.once('error', (err) => reject(this.#connectionError(err)));
      this.#writeBody(request, payload);
    });
  }

  /** Drops pooled connections. */
  close(): void {
    this.#agent.destroy();
  }

  #send(req: ApiRequest, prefix: string): Promise<IncomingMessage> {
    const { request, payload } = this.#start(req, prefix, {}, true);
    return new Promise<IncomingMessage>((resolve, reject) => {
      request.once('response', resolve);
      request.once('error', (err) => reject(this.#connectionError(err, req.signal)));
      this.#writeBody(request, payload);
    });
  }

  #start(req: ApiRequest, prefix: string, extraHeaders: Record<string, string>, pooled: boolean): { request: ClientRequest; payload: Buffer | Readable | undefined } {
    const headers: Record<string, string> = { 'User-Agent': this.#userAgent, ...extraHeaders, ...req.headers };
    let payload: Buffer | Readable | undefined;
    if (req.body instanceof Readable) {
      payload = req.body;
    } else if (Buffer.isBuffer(req.body)) {
      payload = req.body;
    } else if (req.body !== undefined) {
      payload = Buffer.from(JSON.stringify(req.body));
      headers['Content-Type'] ??= 'application/json';
    }
    if (Buffer.isBuffer(payload)) headers['Content-Length'] = String(payload.length);
    const options: RequestOptions = {
      ...this.#base,
      method: req.method,
      path: prefix + req.path + queryString(req.query),
      headers,
      agent: pooled ? this.#agent : false,
      ...(req.signal ? { signal: req.signal } : {}),
    };
    const request = (this.#secure ? httpsRequest : httpRequest)(options);
    return { request, payload };
  }

  #writeBody(request: ClientRequest, payload: Buffer | Readable | undefined): void {
    if (payload instanceof Readable) {
      payload.on('error', (err) => request.destroy(err));
      payload.pipe(request);
    } else {
      request.end(payload);
    }
  }

  #connectionError(err: Error, signal?: AbortSignal): Error {
    if (signal?.aborted) return engineError('operation canceled', EngineErrorCode.Unreachable, 'Canceled', { cause: err });
    const code = errnoCode(err);
    this.#logger.debug('engine connection failed', { host: this.#host, code });
    if (code === 'ECONNREFUSED' || code === 'ENOENT' || code === 'ECONNRESET' || code === 'EHOSTUNREACH' || code === 'ETIMEDOUT' || code === 'EACCES') {
      return engineError(`Cannot connect to the Berth engine at ${this.#host}. Is the engine running?`, EngineErrorCode.Unreachable, 'Unavailable', { cause: err });
    }
    return engineError(`cannot talk to the engine at ${this.#host}: ${err.message}`, EngineErrorCode.Unreachable, 'Unavailable', { cause: err });
  }
}

/** `?a=1&t=x&t=y`: booleans as 1/0, arrays repeated, undefined left out. */
export function queryString(query: ApiRequest['query']): string {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) params.append(key, String(v));
    else params.append(key, typeof value === 'boolean' ? (value ? '1' : '0') : String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}

/** The whole body of a response as text. */
export async function readText(res: IncomingMessage): Promise<string> {
  const parts: Buffer[] = [];
  for await (const part of res) parts.push(part as Buffer);
  return Buffer.concat(parts).toString('utf8');
}

/** The JSON objects of a JSON-lines body, one at a time. */
export async function* readJsonLines<T>(res: IncomingMessage): AsyncGenerator<T> {
  let pending = '';
  res.setEncoding('utf8');
  for await (const part of res) {
    pending += part as string;
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl).trim();
      pending = pending.slice(nl + 1);
      if (line) yield JSON.parse(line) as T;
    }
  }
  if (pending.trim()) yield JSON.parse(pending) as T;
}
