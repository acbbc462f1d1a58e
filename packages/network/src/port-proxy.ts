import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '@berth/log';

/** Where a proxy sends what it receives. */
export interface ProxyTarget {
  readonly host: string;
  readonly port: number;
}

/** Options of the proxies. */
export interface PortProxyOptions {
  readonly hostIp: string;
  readonly hostPort: number;
  readonly target: ProxyTarget;
  readonly logger: Logger;
  /** UDP only: how long a client's flow lives without traffic (docker-proxy's 90 s). */
  readonly udpIdleMs?: number;
}

/**
 * A userland proxy for one published port, as docker-proxy is: it holds the host port (so that
 * nothing else takes it and a clash is seen at publish time) and carries the traffic DNAT does
 * not see, from 127.0.0.1 and from the container's own bridge.
 */
export interface PortProxy {
  /** Binds the host port; rejects with the system error (EADDRINUSE, EADDRNOTAVAIL, EACCES). */
  listen(): Promise<void>;
  /** Points new connections or flows at another container address. */
  retarget(target: ProxyTarget): void;
  close(): Promise<void>;
}

/** A TCP proxy: one upstream connection per client, half-closes passed on. */
export class TcpPortProxy implements PortProxy {
  readonly #options: PortProxyOptions;
  #target: ProxyTarget;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();

  constructor(options: PortProxyOptions) {
    this.#options = options;
    this.#target = options.target;
    this.#server = createServer({ allowHalfOpen: true, noDelay: true }, (client) => this.#accept(client));
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen({ host: this.#options.hostIp, port: this.#options.hostPort }, () => {
        this.#server.off('error', reject);
        this.#server.on('error', (err) => this.#options.logger.warn('proxy server error', { err }));
        resolve();
      });
    });
  }

  retarget(target: ProxyTarget): void {
    this.#target = target;
  }

  #accept(client: Socket): void {
    const upstream = connect({ host: this.#target.host, port: this.#target.port, allowHalfOpen: true, noDelay: true });
    for (const s of [client, upstream]) {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    }
    client.on('error', () => upstream.destroy());
    upstream.on('error', (err) => {
      this.#options.logger.debug('proxy upstream failed', { target: `${this.#target.host}:${this.#target.port}`, err });
      client.resetAndDestroy();
    });
    client.pipe(upstream);
    upstream.pipe(client);
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const s of this.#sockets) s.destroy();
    await closed;
  }
}

interface UdpFlow {
  readonly socket: UdpSocket;
  timer: NodeJS.Timeout;
}

/** A UDP proxy: a socket per client address towards the container, replies sent back to that client. */
export class UdpPortProxy implements PortProxy {
  readonly #options: PortProxyOptions;
  #target: ProxyTarget;
  readonly #socket: UdpSocket;
  readonly #flows = new Map<string, UdpFlow>();
  readonly #idleMs: number;

  constructor(options: PortProxyOptions) {
    this.#options = options;
    this.#target = options.target;
    this.#idleMs = options.udpIdleMs ?? 90_000;
    this.#socket = createSocket({ type: 'udp4' });
    this.#socket.on('message', (msg, from) => this.#forward(msg, from));
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#socket.once('error', reject);
      this.#socket.bind({ address: this.#options.hostIp, port: this.#options.hostPort }, () => {
        this.#socket.off('error', reject);
        this.#socket.on('error', (err) => this.#options.logger.warn('udp proxy error', { err }));
        resolve();
      });
    });
  }

  retarget(target: ProxyTarget): void {
    this.#target = target;
    for (const key of [...this.#flows.keys()]) this.#endFlow(key);
  }

  #forward(msg: Buffer, from: RemoteInfo): void {
    const key = `${from.address}:${from.port}`;
    let flow = this.#flows.get(key);
    if (!flow) {
      const socket = createSocket({ type: 'udp4' });
      socket.on('message', (reply) => {
        this.#socket.send(reply, from.port, from.address);
        this.#touch(key);
      });
      socket.on('error', () => this.#endFlow(key));
      flow = { socket, timer: setTimeout(() => this.#endFlow(key), this.#idleMs) };
      this.#flows.set(key, flow);
    }
    flow.socket.send(msg, this.#target.port, this.#target.host);
    this.#touch(key);
  }

  #touch(key: string): void {
    const flow = this.#flows.get(key);
    if (flow) flow.timer.refresh();
  }

  #endFlow(key: string): void {
    const flow = this.#flows.get(key);
    if (!flow) return;
    clearTimeout(flow.timer);
    flow.socket.close();
    this.#flows.delete(key);
  }

  async close(): Promise<void> {
    for (const key of [...this.#flows.keys()]) this.#endFlow(key);
    await new Promise<void>((resolve) => this.#socket.close(() => resolve()));
  }
}
