import type { IncomingMessage, ServerResponse } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex, Readable, Writable } from 'node:stream';
import { EngineErrorCode, engineError, type Engine } from '../engine.js';
import { apiVersionAtLeast } from './api-version.js';
import { errorResponse } from './error-status.js';
import { parseFilters } from './filters.js';
import type { Filters } from '../types/common.js';

const maxJsonBody = 16 << 20;

/** The two ends of a hijacked connection: what the client sends, and where the output goes. */
export interface HijackedConnection {
  readonly input: Readable;
  readonly output: Writable;
}

/** Where a request came in: an ordinary request with its response, or an upgrade with its socket. */
export type Transport =
  | { readonly kind: 'response'; readonly res: ServerResponse }
  | { readonly kind: 'upgrade'; readonly socket: Duplex };

/**
 * One API request and its answer, over an ordinary response or an upgraded (hijackable) socket.
 * Handlers read parameters and bodies here and answer through it, so that attach and exec work
 * the same whether or not the client asked to upgrade.
 */
export class ApiExchange {
  readonly engine: Engine;
  readonly req: IncomingMessage;
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  /** The API version of the request (from its `/vX.Y` prefix, else the server's maximum). */
  readonly version: string;
  /** Fires when the client goes away. */
  readonly signal: AbortSignal;
  readonly #transport: Transport;
  readonly #headers: Readonly<Record<string, string>>;
  #started = false;

  constructor(init: {
    engine: Engine;
    req: IncomingMessage;
    transport: Transport;
    params: Readonly<Record<string, string>>;
    query: URLSearchParams;
    version: string;
    signal: AbortSignal;
    headers: Readonly<Record<string, string>>;
  }) {
    this.engine = init.engine;
    this.req = init.req;
    this.#transport = init.transport;
    this.params = init.params;
    this.query = init.query;
    this.version = init.version;
    this.signal = init.signal;
    this.#headers = init.headers;
  }

  /** True once a status line went out; errors after that go into the stream. */
  get started(): boolean {
    return this.#started;
  }

  atLeast(version: string): boolean {
    return apiVersionAtLeast(this.version, version);
  }

  param(name: string): string {
    const value = this.params[name];
    if (value === undefined) throw new Error(`route has no parameter ${name}`);
    return value;
  }

  /** A query string parameter; empty strings count as absent. */
  string(name: string): string | undefined {
    const v = this.query.get(name);
    return v === null || v === '' ? undefined : v;
  }

  /** Every value of a repeated parameter (`t=a&t=b`). */
  strings(name: string): string[] {
    return this.query.getAll(name).filter((v) => v !== '');
  }

  /** Docker's query booleans: `1`, `true`, `True` are true; absent is `fallback`. */
  bool(name: string, fallback = false): boolean {
    const v = this.query.get(name);
    if (v === null || v === '') return fallback;
    return !['0', 'false', 'False', 'FALSE', 'no'].includes(v);
  }

  /** A query integer; a malformed one is InvalidArgument naming the parameter. */
  int(name: string): number | undefined {
    const v = this.string(name);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n)) throw engineError(`invalid value for ${name}: ${JSON.stringify(v)} is not a number`, EngineErrorCode.InvalidParameter, 'InvalidArgument');
    return n;
  }

  filters(name = 'filters'): Filters {
    return parseFilters(this.query.get(name));
  }

  /** A query JSON value (`buildargs`, `labels`); a malformed one is InvalidArgument. */
  jsonParam<T>(name: string): T | undefined {
    const v = this.string(name);
    if (v === undefined) return undefined;
    try {
      return JSON.parse(v) as T;
    } catch (cause) {
      throw engineError(`invalid value for ${name}: not JSON`, EngineErrorCode.InvalidParameter, 'InvalidArgument', { cause });
    }
  }

  /** The request body as a stream. */
  body(): Readable {
    return this.#transport.kind === 'upgrade' ? this.#transport.socket : this.req;
  }

  /** The body as JSON; an empty body is `fallback`, malformed JSON InvalidArgument. */
  async json<T>(fallback?: T): Promise<T> {
    const text = (await this.#readBody()).toString('utf8');
    if (text.trim() === '') {
      if (fallback !== undefined) return fallback;
      throw engineError('request body is empty; a JSON object is required', EngineErrorCode.InvalidParameter, 'InvalidArgument');
    }
    try {
      return JSON.parse(text) as T;
    } catch (cause) {
      throw engineError(`invalid JSON in the request body: ${(cause as Error).message}`, EngineErrorCode.InvalidParameter, 'InvalidArgument', { cause });
    }
  }

  // An upgraded request's body (exec start's JSON) sits in the socket, possibly already in the
  // `head` the server unshifted: read exactly Content-Length bytes and leave the rest as stdin.
  async #readBody(): Promise<Buffer> {
    if (this.#transport.kind === 'response') {
      const parts: Buffer[] = [];
      let size = 0;
      for await (const part of this.req) {
        size += (part as Buffer).length;
        // JSON bodies are small (a create body is a few KiB); a huge one is a client error, not something to buffer.
        if (size > maxJsonBody) throw engineError(`request body is larger than ${maxJsonBody} bytes`, EngineErrorCode.InvalidParameter, 'InvalidArgument');
        parts.push(part as Buffer);
      }
      return Buffer.concat(parts);
    }
    const socket = this.#transport.socket;
    const length = Number(this.req.headers['content-length'] ?? 0);
    if (!length) return Buffer.alloc(0);
    const parts: Buffer[] = [];
    let have = 0;
    while (have < length) {
      const part = socket.read() as Buffer | null;
      if (part === null) {
        if (socket.readableEnded || socket.destroyed) break;
        await new Promise<void>((resolve) => {
          const done = () => {
            socket.off('readable', done);
            socket.off('end', done);
            socket.off('close', done);
            resolve();
          };
          socket.on('readable', done).on('end', done).on('close', done);
        });
        continue;
      }
      parts.push(part);
      have += part.length;
    }
    const all = Buffer.concat(parts);
    if (all.length > length) socket.unshift(all.subarray(length));
    return all.subarray(0, length);
  }

  /** Answers with a JSON body. */
  sendJson(status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
    const text = Buffer.from(JSON.stringify(body) + '\n');
    this.#respond(status, { 'Content-Type': 'application/json', 'Content-Length': String(text.length), ...headers }, text);
  }

  /** Answers with no body (204, 304, 201 without content). */
  sendEmpty(status: number, headers: Readonly<Record<string, string>> = {}): void {
    this.#respond(status, { ...(status === 204 || status === 304 ? {} : { 'Content-Length': '0' }), ...headers });
  }

  /** Answers with an error, as docker does: `{"message": ...}` with the status of its kind. */
  sendError(err: unknown): void {
    const { status, body } = errorResponse(err);
    this.sendJson(status, body);
  }

  /**
   * Sends the status line and headers now and returns the body's sink: chunked on an ordinary
   * response, the raw socket (closed at the end) on an upgraded one.
   */
  startStream(status: number, headers: Readonly<Record<string, string>>): Writable {
    this.#started = true;
    if (this.#transport.kind === 'response') {
      const res = this.#transport.res;
      res.writeHead(status, { ...this.#headers, ...headers });
      res.flushHeaders();
      return res;
    }
    const socket = this.#transport.socket;
    socket.write(statusHead(status, { ...this.#headers, ...headers, Connection: 'close' }));
    return socket;
  }

  /**
   * Takes the connection over for attach and exec. A client that asked to upgrade gets docker's
   * `101 UPGRADED` and the raw socket both ways; one that did not gets `200` and the response body.
   */
  hijack(contentType: string): HijackedConnection {
    this.#started = true;
    if (this.#transport.kind === 'upgrade') {
      const socket = this.#transport.socket;
      socket.write(statusHead(101, { ...this.#headers, 'Content-Type': contentType, Connection: 'Upgrade', Upgrade: 'tcp' }, 'UPGRADED'));
      return { input: socket, output: socket };
    }
    const res = this.#transport.res;
    res.writeHead(200, { ...this.#headers, 'Content-Type': contentType });
    res.flushHeaders();
    return { input: this.req, output: res };
  }

  #respond(status: number, headers: Readonly<Record<string, string>>, body?: Buffer): void {
    this.#started = true;
    if (this.#transport.kind === 'response') {
      const res = this.#transport.res;
      res.writeHead(status, { ...this.#headers, ...headers });
      res.end(this.req.method === 'HEAD' ? undefined : body);
      return;
    }
    const socket = this.#transport.socket;
    socket.end(Buffer.concat([Buffer.from(statusHead(status, { ...this.#headers, ...headers, Connection: 'close' })), body ?? Buffer.alloc(0)]));
  }
}

function statusHead(status: number, headers: Readonly<Record<string, string>>, reason = STATUS_CODES[status] ?? 'Status'): string {
  return `HTTP/1.1 ${status} ${reason}\r\n` + Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n';
}
