import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '@berth/log';
import { DnsRcode, DnsType, encodeDnsResponse, parseDnsQuery, reverseName, type DnsAnswer, type DnsQuery } from './dns-message.js';
import { parseIpv4, parseSubnet, subnetContains, type Ipv4Subnet } from './ipv4.js';

/** A container on a user network, as the DNS server knows it. */
export interface DnsHost {
  readonly containerId: string;
  readonly address: string;
  /** Container name, aliases and short id, answered case-insensitively. */
  readonly names: readonly string[];
}

/** A user network served by the embedded DNS server on its gateway address. */
export interface DnsZone {
  readonly networkId: string;
  readonly gateway: string;
  readonly subnet: string;
  /** Internal networks get their own names only: nothing is forwarded outside. */
  readonly internal: boolean;
  readonly hosts: readonly DnsHost[];
}

/** A zone whose listener could not bind, with the system error code. */
export interface DnsBindFailure {
  readonly gateway: string;
  readonly code: string;
  readonly message: string;
}

/** Options of `EmbeddedDnsServer`. */
export interface EmbeddedDnsServerOptions {
  readonly logger: Logger;
  /** Port to listen on (53; tests of the server alone may use another). */
  readonly port?: number;
  /** How long to wait for an upstream resolver before trying the next one. */
  readonly upstreamTimeoutMs?: number;
}

interface Listener {
  readonly udp: UdpSocket;
  readonly tcp: Server;
  zone: DnsZone;
  subnet: Ipv4Subnet;
}

const ttl = 600;

/**
 * The embedded DNS server of user networks, as podman's aardvark-dns: it listens on each user
 * network's gateway (UDP and TCP), answers A and PTR queries for the containers of the networks
 * the asking container is attached to, and forwards every other name to the host's resolvers.
 * It runs in the host's namespace, so loopback resolvers (systemd-resolved) are reachable.
 * Queries from outside the network's subnet are refused, so the server is no open resolver.
 */
export class EmbeddedDnsServer {
  readonly #logger: Logger;
  readonly #port: number;
  readonly #timeoutMs: number;
  readonly #listeners = new Map<string, Listener>();
  #upstreams: readonly string[] = [];

  constructor(options: EmbeddedDnsServerOptions) {
    this.#logger = options.logger;
    this.#port = options.port ?? 53;
    this.#timeoutMs = options.upstreamTimeoutMs ?? 3000;
  }

  /** The number of networks served. */
  get size(): number {
    return this.#listeners.size;
  }

  /** Serves exactly `zones` from now on, forwarding to `upstreams`; returns the zones that could not bind. */
  async update(zones: readonly DnsZone[], upstreams: readonly string[]): Promise<DnsBindFailure[]> {
    this.#upstreams = upstreams;
    const wanted = new Map(zones.map((z) => [z.gateway, z]));
    for (const [gateway, l] of this.#listeners) {
      if (!wanted.has(gateway)) {
        this.#listeners.delete(gateway);
        await closeListener(l);
      }
    }
    const failures: DnsBindFailure[] = [];
    for (const zone of zones) {
      const existing = this.#listeners.get(zone.gateway);
      if (existing) {
        existing.zone = zone;
        existing.subnet = parseSubnet(zone.subnet);
        continue;
      }
      try {
        this.#listeners.set(zone.gateway, await this.#listen(zone));
      } catch (err) {
        const code = typeof err === 'object' && err && 'code' in err ? String(err.code) : 'EUNKNOWN';
        failures.push({ gateway: zone.gateway, code, message: err instanceof Error ? err.message : String(err) });
        this.#logger.warn('embedded DNS cannot listen', { gateway: zone.gateway, err });
      }
    }
    return failures;
  }

  async close(): Promise<void> {
    const all = [...this.#listeners.values()];
    this.#listeners.clear();
    await Promise.all(all.map(closeListener));
  }

  async #listen(zone: DnsZone): Promise<Listener> {
    const udp = createSocket({ type: 'udp4' });
    const tcp = createServer((socket) => this.#serveTcp(socket, zone.gateway));
    const listener: Listener = { udp, tcp, zone, subnet: parseSubnet(zone.subnet) };
    try {
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind({ address: zone.gateway, port: this.#port }, () => {
          udp.off('error', reject);
          resolve();
        });
      });
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen({ host: zone.gateway, port: this.#port }, () => {
          tcp.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      await closeListener(listener).catch(() => {});
      throw err;
    }
    udp.on('error', (err) => this.#logger.warn('embedded DNS socket error', { gateway: zone.gateway, err }));
    tcp.on('error', (err) => this.#logger.warn('embedded DNS server error', { gateway: zone.gateway, err }));
    udp.on('message', (msg, from) => {
      this.#answer(msg, from.address, zone.gateway, 'udp').then(
        (reply) => reply && udp.send(reply, from.port, from.address),
        (err: unknown) => this.#logger.warn('embedded DNS query failed', { err }),
      );
    });
    return listener;
  }

  #serveTcp(socket: Socket, gateway: string): void {
    let buffered = Buffer.alloc(0);
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        const msg = buffered.subarray(2, 2 + buffered.readUInt16BE(0));
        buffered = buffered.subarray(2 + msg.length);
        this.#answer(msg, socket.remoteAddress ?? '', gateway, 'tcp').then(
          (reply) => {
            if (!reply || socket.destroyed) return;
            const len = Buffer.alloc(2);
            len.writeUInt16BE(reply.length);
            socket.write(Buffer.concat([len, reply]));
          },
          (err: unknown) => this.#logger.warn('embedded DNS query failed', { err }),
        );
      }
    });
  }

  /** The reply to one message, or undefined to stay silent (unparseable). */
  async #answer(msg: Buffer, source: string, gateway: string, transport: 'udp' | 'tcp'): Promise<Buffer | undefined> {
    const listener = this.#listeners.get(gateway);
    let query: DnsQuery;
    try {
      query = parseDnsQuery(msg);
    } catch {
      return undefined;
    }
    if (!listener) return encodeDnsResponse(query, DnsRcode.Refused);
    const from = source.replace(/^::ffff:/, '');
    let fromAddress: number;
    try {
      fromAddress = parseIpv4(from);
    } catch {
      return encodeDnsResponse(query, DnsRcode.Refused);
    }
    if (!subnetContains(listener.subnet, fromAddress)) return encodeDnsResponse(query, DnsRcode.Refused);
    if (query.opcode !== 0) return encodeDnsResponse(query, DnsRcode.NotImplemented);
    const question = query.questions[0];
    if (!question || query.questions.length > 1) return encodeDnsResponse(query, DnsRcode.FormatError);

    const hosts = this.#visibleHosts(listener.zone, from);
    const name = question.name.replace(/\.$/, '');
    const matches = hosts.filter((h) => h.names.some((n) => n.toLowerCase() === name));
    if (matches.length) {
      // A name of ours: A records for A (and ANY), an empty answer otherwise, so that the
      // resolver does not go on to ask the world about a container's AAAA or MX.
      const answers: DnsAnswer[] =
        question.type === DnsType.A || question.type === 255
          ? [...new Set(matches.map((h) => h.address))].map((address) => ({ name, type: DnsType.A, ttl, data: address }))
          : [];
      return encodeDnsResponse(query, DnsRcode.NoError, answers);
    }
    if (question.type === DnsType.PTR) {
      const host = hosts.find((h) => reverseName(h.address) === name);
      if (host) return encodeDnsResponse(query, DnsRcode.NoError, [{ name, type: DnsType.PTR, ttl, data: host.names[0]! }]);
    }
    if (listener.zone.internal) return encodeDnsResponse(query, DnsRcode.Refused);
    return (await this.#forward(msg, transport)) ?? encodeDnsResponse(query, DnsRcode.ServerFailure);
  }

  /**
   * The containers an asker can resolve: those of every user network the asking container is on
   * (docker resolves across all of a container's networks); an asker that is no container sees
   * the network it asked on.
   */
  #visibleHosts(zone: DnsZone, from: string): DnsHost[] {
    const asker = zone.hosts.find((h) => h.address === from)?.containerId;
    if (!asker) return [...zone.hosts];
    const hosts: DnsHost[] = [];
    for (const l of this.#listeners.values()) {
      if (l.zone.hosts.some((h) => h.containerId === asker)) hosts.push(...l.zone.hosts);
    }
    return hosts;
  }

  async #forward(msg: Buffer, transport: 'udp' | 'tcp'): Promise<Buffer | undefined> {
    for (const upstream of this.#upstreams) {
      try {
        return transport === 'udp' ? await this.#forwardUdp(msg, upstream) : await this.#forwardTcp(msg, upstream);
      } catch (err) {
        this.#logger.debug('upstream resolver failed', { upstream, err });
      }
    }
    return undefined;
  }

  #forwardUdp(msg: Buffer, upstream: string): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const socket = createSocket({ type: upstream.includes(':') ? 'udp6' : 'udp4' });
      const timer = setTimeout(() => done(new Error(`no answer from ${upstream}`)), this.#timeoutMs);
      const done = (err: Error | undefined, reply?: Buffer) => {
        clearTimeout(timer);
        socket.close();
        if (err) reject(err);
        else resolve(reply!);
      };
      socket.on('error', (err) => done(err));
      socket.on('message', (reply) => {
        if (reply.length >= 2 && reply.readUInt16BE(0) === msg.readUInt16BE(0)) done(undefined, reply);
      });
      socket.send(msg, 53, upstream);
    });
  }

  #forwardTcp(msg: Buffer, upstream: string): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: upstream, port: 53 });
      const timer = setTimeout(() => socket.destroy(new Error(`no answer from ${upstream}`)), this.#timeoutMs);
      let buffered = Buffer.alloc(0);
      socket.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.on('connect', () => {
        const len = Buffer.alloc(2);
        len.writeUInt16BE(msg.length);
        socket.write(Buffer.concat([len, msg]));
      });
      socket.on('data', (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        if (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
          clearTimeout(timer);
          socket.destroy();
          resolve(buffered.subarray(2, 2 + buffered.readUInt16BE(0)));
        }
      });
    });
  }
}

async function closeListener(l: Listener): Promise<void> {
  await Promise.all([
    new Promise<void>((resolve) => l.udp.close(() => resolve())),
    new Promise<void>((resolve) => l.tcp.close(() => resolve())),
  ]);
}
