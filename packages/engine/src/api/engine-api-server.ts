import { mkdir, chmod, unlink } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, type AddressInfo } from 'node:net';
import { dirname } from 'node:path';
import type { Duplex } from 'node:stream';
import { BerthError, ErrorKind, describeError } from '@berth/errors';
import { noopLogger, type Logger } from '@berth/log';
import { EngineErrorCode, engineError, type Engine } from '../engine.js';
import { ApiExchange, type Transport } from './api-exchange.js';
import { compareApiVersions, maxApiVersion, minApiVersion } from './api-version.js';
import { Router } from './router.js';
import { addContainerRoutes } from './routes/container-routes.js';
import { addExecRoutes } from './routes/exec-routes.js';
import { addImageRoutes } from './routes/image-routes.js';
import { addSystemRoutes } from './routes/system-routes.js';
import { addNetworkRoutes, addVolumeRoutes } from './routes/volume-network-routes.js';

/** Options of the API handler. */
export interface EngineApiHandlerOptions {
  readonly engine: Engine;
  /** Berth's version, for the `Server` header. */
  readonly serverVersion: string;
  readonly logger?: Logger;
}

const versionPrefix = /^\/v(\d+\.\d+)(\/.*)$/;

/**
 * The Docker Engine API in front of an Engine, as node:http request and upgrade listeners.
 * Routes answer with and without a `/vX.Y` prefix; every response carries `Api-Version`,
 * `Server` and `Ostype`, as dockerd's do.
 */
export class EngineApiHandler {
  readonly #engine: Engine;
  readonly #logger: Logger;
  readonly #router = new Router();
  readonly #headers: Readonly<Record<string, string>>;

  constructor(options: EngineApiHandlerOptions) {
    if (!options.engine) throw new BerthError('EngineApiHandler needs an engine', { code: 'ERR_INVALID_OPTIONS', kind: ErrorKind.InvalidArgument });
    this.#engine = options.engine;
    this.#logger = options.logger ?? noopLogger;
    this.#headers = { 'Api-Version': maxApiVersion, Server: `Berth/${options.serverVersion} (linux)`, Ostype: 'linux' };
    addSystemRoutes(this.#router);
    addContainerRoutes(this.#router);
    addExecRoutes(this.#router);
    addImageRoutes(this.#router);
    addVolumeRoutes(this.#router);
    addNetworkRoutes(this.#router);
  }

  /** The `request` listener. */
  readonly handleRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const controller = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) controller.abort(new Error('client closed the connection'));
    });
    void this.#dispatch(req, { kind: 'response', res }, controller.signal);
  };

  /**
   * The `upgrade` listener: attach and exec start when the client sends `Upgrade: tcp`. Bytes
   * that came with the request head are put back on the socket for the body and stdin.
   */
  readonly handleUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    // The client half-closes when its stdin ends (docker's CloseWrite; over TLS a close_notify):
    // the output must keep flowing, so the socket must not end itself on the client's end.
    (socket as Duplex & { allowHalfOpen: boolean }).allowHalfOpen = true;
    const controller = new AbortController();
    socket.once('close', () => controller.abort(new Error('client closed the connection')));
    socket.on('error', (err) => this.#logger.debug('hijacked connection error', { error: err }));
    if (head.length) socket.unshift(head);
    void this.#dispatch(req, { kind: 'upgrade', socket }, controller.signal);
  };

  async #dispatch(req: IncomingMessage, transport: Transport, signal: AbortSignal): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://engine');
    let path = url.pathname;
    let version = maxApiVersion;
    const prefixed = versionPrefix.exec(path);
    if (prefixed) {
      version = prefixed[1]!;
      path = prefixed[2]!;
    }
    const exchange = new ApiExchange({ engine: this.#engine, req, transport, params: {}, query: url.searchParams, version, signal, headers: this.#headers });
    try {
      if (compareApiVersions(version, minApiVersion) < 0) {
        throw engineError(`client version ${version} is too old. Minimum supported API version is ${minApiVersion}, please upgrade your client to a newer version`, EngineErrorCode.InvalidParameter, 'InvalidArgument');
      }
      if (compareApiVersions(version, maxApiVersion) > 0) {
        throw engineError(`client version ${version} is too new. Maximum supported API version is ${maxApiVersion}`, EngineErrorCode.InvalidParameter, 'InvalidArgument');
      }
      const match = this.#router.match(req.method ?? 'GET', path);
      if (match === undefined) throw engineError('page not found', EngineErrorCode.UnknownEndpoint, 'NotFound');
      if (match === 'methodNotAllowed') throw engineError(`method ${req.method} not allowed on ${path}`, EngineErrorCode.InvalidParameter, 'InvalidArgument');
      const routed = new ApiExchange({ engine: this.#engine, req, transport, params: match.params, query: url.searchParams, version, signal, headers: this.#headers });
      try {
        await match.handler(routed);
      } catch (err) {
        this.#fail(routed, req, err);
        return;
      }
      this.#logger.debug('request', { method: req.method, path: url.pathname });
    } catch (err) {
      this.#fail(exchange, req, err);
    }
  }

  #fail(exchange: ApiExchange, req: IncomingMessage, err: unknown): void {
    this.#logger.debug('request failed', { method: req.method, url: req.url, error: describeError(err) });
    if (!exchange.started) {
      exchange.sendError(err);
      return;
    }
    // The status line is out: all that is left is to cut the connection so the client notices.
    req.socket.destroy();
  }
}

/** TLS for TCP listeners: the server's certificate and key, and the CA that client certificates must chain to. */
export interface EngineApiTls {
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
  readonly ca?: string | Buffer;
  /** `--tlsverify`: refuse clients without a certificate signed by `ca`. */
  readonly verifyClients: boolean;
}

/** Options of `listenEngineApi`. */
export interface EngineApiServerOptions extends EngineApiHandlerOptions {
  /** `unix:///run/berth/berth.sock`, `tcp://0.0.0.0:2376`, `tcp://127.0.0.1:0` (a free port). */
  readonly hosts: readonly string[];
  readonly tls?: EngineApiTls;
  /** Permissions of unix sockets (default 0o660, as docker's). */
  readonly socketMode?: number;
  readonly signal?: AbortSignal;
}

/** A running API server. */
export interface EngineApiServer {
  /** Where it listens, as `unix://` and `tcp://` URLs (with the real port for `:0`). */
  readonly addresses: readonly string[];
  /** Stops listening and ends open connections. */
  close(): Promise<void>;
}

type Listener = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

function parseHost(host: string): Listener {
  const m = /^(unix|tcp):\/\/(.*)$/.exec(host);
  if (!m) throw engineError(`invalid host ${JSON.stringify(host)}: want unix:///path or tcp://host:port`, EngineErrorCode.InvalidParameter, 'InvalidArgument');
  if (m[1] === 'unix') {
    if (!m[2]!.startsWith('/')) throw engineError(`invalid host ${JSON.stringify(host)}: the socket path must be absolute`, EngineErrorCode.InvalidParameter, 'InvalidArgument');
    return { kind: 'unix', path: m[2]! };
  }
  const hp = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(m[2]!);
  if (!hp) throw engineError(`invalid host ${JSON.stringify(host)}`, EngineErrorCode.InvalidParameter, 'InvalidArgument');
  return { kind: 'tcp', host: (hp[1] || '0.0.0.0').replace(/^\[|\]$/g, ''), port: hp[2] === undefined ? 2375 : Number(hp[2]) };
}

// A socket file left by a server that died is removed; one that still answers belongs to a live
// server, and taking it over would cut that server off.
async function clearStaleSocket(path: string): Promise<void> {
  const live = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (live) throw engineError(`${path} is in use by another running server`, EngineErrorCode.NameInUse, 'Conflict');
  await unlink(path).catch(() => undefined);
}

/** Listens on every host with the Docker Engine API in front of `options.engine`. */
export async function listenEngineApi(options: EngineApiServerOptions): Promise<EngineApiServer> {
  if (options.hosts.length === 0) throw engineError('listenEngineApi needs at least one host', EngineErrorCode.InvalidParameter, 'InvalidArgument');
  const listeners = options.hosts.map(parseHost);
  const handler = new EngineApiHandler(options);
  const servers: Server[] = [];
  const addresses: string[] = [];
  const sockets = new Set<Duplex>();
  const close = async () => {
    for (const s of sockets) s.destroy();
    await Promise.all(
      servers.map(
        (server) =>
          new Promise<void>((resolve) => {
            server.close(() => resolve());
            server.closeAllConnections();
          }),
      ),
    );
  };
  try {
    for (const listener of listeners) {
      const tls = listener.kind === 'tcp' ? options.tls : undefined;
      const server = tls
        ? createHttpsServer(
            { cert: tls.cert, key: tls.key, ...(tls.ca ? { ca: tls.ca } : {}), requestCert: tls.verifyClients, rejectUnauthorized: tls.verifyClients, allowHalfOpen: true },
            handler.handleRequest,
          )
        : createHttpServer(handler.handleRequest);
      // Hijacked streams and followed logs stay open as long as the client wants.
      server.requestTimeout = 0;
      server.headersTimeout = 60_000;
      server.keepAliveTimeout = 60_000;
      server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
        sockets.add(socket);
        socket.once('close', () => sockets.delete(socket));
        handler.handleUpgrade(req, socket, head);
      });
      server.on('tlsClientError', (err) => (options.logger ?? noopLogger).info('TLS client refused', { error: err.message }));
      servers.push(server);
      if (listener.kind === 'unix') {
        await mkdir(dirname(listener.path), { recursive: true, mode: 0o755 });
        await clearStaleSocket(listener.path);
        await listen(server, { path: listener.path });
        await chmod(listener.path, options.socketMode ?? 0o660);
        addresses.push(`unix://${listener.path}`);
      } else {
        await listen(server, { host: listener.host, port: listener.port });
        const port = (server.address() as AddressInfo).port;
        addresses.push(`tcp://${listener.host.includes(':') ? `[${listener.host}]` : listener.host}:${port}`);
      }
    }
  } catch (err) {
    await close();
    throw err;
  }
  options.signal?.addEventListener('abort', () => void close(), { once: true });
  return { addresses, close };
}

function listen(server: Server, at: { path: string } | { host: string; port: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', (err) =>
      reject(
        engineError(`cannot listen on ${'path' in at ? at.path : `${at.host}:${at.port}`}: ${err.message}`, EngineErrorCode.Unreachable, 'Unavailable', { cause: err }),
      ),
    );
    server.listen(at, () => resolve());
  });
}
