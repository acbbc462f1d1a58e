import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { connect, createServer, type Server } from 'node:net';
import { noopLogger } from '@berth/log';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DnsRcode, DnsType, encodeDnsQuery, encodeDnsResponse, parseDnsQuery } from './dns-message.js';
import { EmbeddedDnsServer, type DnsZone } from './dns-server.js';

// The embedded DNS server on loopback addresses of its own (127.0.0.0/8 is all local), over real
// UDP and TCP sockets, with a fake upstream resolver on port 53: A 192.0.2.44 over TCP, NXDOMAIN over UDP.

const octet = () => randomInt(2, 250);
const base = `127.${octet()}.${octet()}`;
const gateway = `${base}.1`;
const upstreamAddress = `127.${octet()}.${octet()}.${octet()}`;
const port = randomInt(20000, 60000);
const server = new EmbeddedDnsServer({ logger: noopLogger, port, upstreamTimeoutMs: 1000 });
let upstream: Server;
const upstreamUdp = createSocket('udp4');

function zone(over: Partial<DnsZone> = {}): DnsZone {
  return {
    networkId: 'n1',
    gateway,
    subnet: '127.0.0.0/8',
    internal: false,
    hosts: [
      { containerId: 'c1', address: `${base}.2`, names: ['web', 'www', 'c1'] },
      { containerId: 'c2', address: `${base}.3`, names: ['db'] },
    ],
    ...over,
  };
}

function udpQuery(name: string, type: number, from = '127.0.0.1'): Promise<Buffer> {
  const socket = createSocket('udp4');
  return new Promise<Buffer>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer for ${name}`)), 3000);
    socket.on('message', (msg) => {
      clearTimeout(timer);
      resolve(msg);
    });
    socket.bind({ address: from, port: 0 }, () => socket.send(encodeDnsQuery(7, name, type), port, gateway));
  }).finally(() => socket.close());
}

function tcpQuery(name: string, type: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: gateway, port });
    let buf = Buffer.alloc(0);
    socket.on('error', reject);
    socket.on('connect', () => {
      const q = encodeDnsQuery(9, name, type);
      const len = Buffer.alloc(2);
      len.writeUInt16BE(q.length);
      socket.write(Buffer.concat([len, q]));
    });
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        socket.destroy();
        resolve(buf.subarray(2, 2 + buf.readUInt16BE(0)));
      }
    });
  });
}

const rcode = (msg: Buffer) => msg.readUInt16BE(2) & 0xf;
const answers = (msg: Buffer) => msg.readUInt16BE(6);
const lastIpv4 = (msg: Buffer) => [...msg.subarray(msg.length - 4)].join('.');

describe('EmbeddedDnsServer', () => {
  beforeAll(async () => {
    upstream = createServer((socket) => {
      socket.once('data', (chunk: Buffer) => {
        const q = parseDnsQuery(chunk.subarray(2));
        const reply = encodeDnsResponse(q, DnsRcode.NoError, [{ name: q.questions[0]!.name, type: DnsType.A, ttl: 5, data: '192.0.2.44' }]);
        const len = Buffer.alloc(2);
        len.writeUInt16BE(reply.length);
        socket.end(Buffer.concat([len, reply]));
      });
    });
    await new Promise<void>((resolve) => upstream.listen({ host: upstreamAddress, port: 53 }, () => resolve()));
    upstreamUdp.on('message', (msg, from) => {
      const q = parseDnsQuery(msg);
      upstreamUdp.send(encodeDnsResponse(q, DnsRcode.NameError), from.port, from.address);
    });
    await new Promise<void>((resolve) => upstreamUdp.bind({ address: upstreamAddress, port: 53 }, () => resolve()));
    expect(await server.update([zone()], [upstreamAddress])).toEqual([]);
  });

  afterAll(async () => {
    await server.close();
    upstream?.close();
    upstreamUdp.close();
  });

  it('answers A for names and aliases, case-insensitively, over UDP and TCP', async () => {
    const a = await udpQuery('WWW', DnsType.A);
    expect(rcode(a)).toBe(0);
    expect(answers(a)).toBe(1);
    expect(lastIpv4(a)).toBe(`${base}.2`);
    const t = await tcpQuery('db', DnsType.A);
    expect(lastIpv4(t)).toBe(`${base}.3`);
    // A known name without IPv6: an empty NOERROR, so resolvers do not ask the world.
    const aaaa = await udpQuery('web', DnsType.AAAA);
    expect([rcode(aaaa), answers(aaaa)]).toEqual([0, 0]);
  });

  it('answers PTR for container addresses and forwards other names', async () => {
    const ptr = await udpQuery(`3.${base.split('.').reverse().join('.')}.in-addr.arpa`, DnsType.PTR);
    expect(answers(ptr)).toBe(1);
    expect(ptr.toString('latin1')).toContain('db');
    const forwarded = await tcpQuery('example.org', DnsType.A);
    expect(lastIpv4(forwarded)).toBe('192.0.2.44');
  });

  it('refuses askers outside the subnet, and forwards nothing for internal networks', async () => {
    expect(await server.update([zone({ subnet: '10.0.0.0/24' })], [upstreamAddress])).toEqual([]);
    expect(rcode(await udpQuery('web', DnsType.A))).toBe(DnsRcode.Refused);
    await server.update([zone({ internal: true })], [upstreamAddress]);
    expect(rcode(await udpQuery('example.org', DnsType.A))).toBe(DnsRcode.Refused);
    expect(lastIpv4(await udpQuery('web', DnsType.A))).toBe(`${base}.2`);
    // A container sees names of every network it is on; one on a single network sees only that one.
    const other: DnsZone = {
      networkId: 'n2',
      gateway: `${base}.129`,
      subnet: '127.0.0.0/8',
      internal: false,
      hosts: [
        { containerId: 'c1', address: `${base}.130`, names: ['web'] },
        { containerId: 'c9', address: `${base}.131`, names: ['cache'] },
      ],
    };
    expect(await server.update([zone(), other], [upstreamAddress])).toEqual([]);
    expect(lastIpv4(await udpQuery('cache', DnsType.A, `${base}.2`))).toBe(`${base}.131`);
    // The fake upstream says NXDOMAIN over UDP: the name went out, unanswered here.
    expect(rcode(await udpQuery('cache', DnsType.A, `${base}.3`))).toBe(DnsRcode.NameError);
  });

  it('reports a zone it cannot bind instead of failing the others', async () => {
    const failures = await server.update([zone(), { ...zone(), networkId: 'bad', gateway: '192.0.2.250' }], [upstreamAddress]);
    expect(failures).toEqual([expect.objectContaining({ gateway: '192.0.2.250', code: 'EADDRNOTAVAIL' })]);
    expect(server.size).toBe(1);
  });
});
