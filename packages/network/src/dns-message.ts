import { NetworkErrorCode, networkError, type NetworkError } from './network-error.js';

/** The DNS record types the embedded server answers itself. */
export const DnsType = { A: 1, PTR: 12, AAAA: 28 } as const;

/** The DNS response codes the embedded server uses. */
export const DnsRcode = { NoError: 0, FormatError: 1, ServerFailure: 2, NameError: 3, NotImplemented: 4, Refused: 5 } as const;
export type DnsRcode = (typeof DnsRcode)[keyof typeof DnsRcode];

/** One question of a query. Names are lower-cased, without the trailing dot. */
export interface DnsQuestion {
  readonly name: string;
  readonly type: number;
  readonly class: number;
}

/** The parts of a query the server looks at. */
export interface DnsQuery {
  readonly id: number;
  readonly opcode: number;
  readonly recursionDesired: boolean;
  readonly questions: readonly DnsQuestion[];
}

/** One answer record: an A record's dotted quad or a PTR record's name. */
export interface DnsAnswer {
  readonly name: string;
  readonly type: typeof DnsType.A | typeof DnsType.PTR;
  readonly ttl: number;
  readonly data: string;
}

function malformed(why: string): NetworkError {
  return networkError(`malformed DNS message: ${why}`, 'InvalidArgument', NetworkErrorCode.MalformedDnsMessage);
}

function readName(buf: Buffer, start: number): { name: string; next: number } {
  const labels: string[] = [];
  let offset = start;
  let next = -1;
  for (let jumps = 0; ; ) {
    if (offset >= buf.length) throw malformed('name runs past the message');
    const len = buf[offset]!;
    if (len === 0) {
      if (next < 0) next = offset + 1;
      break;
    }
    if ((len & 0xc0) === 0xc0) {
      if (offset + 1 >= buf.length || ++jumps > 16) throw malformed('bad compression pointer');
      if (next < 0) next = offset + 2;
      offset = ((len & 0x3f) << 8) | buf[offset + 1]!;
      continue;
    }
    if (len > 63 || offset + 1 + len > buf.length) throw malformed('bad label');
    labels.push(buf.toString('latin1', offset + 1, offset + 1 + len));
    offset += 1 + len;
  }
  return { name: labels.join('.').toLowerCase(), next };
}

/** Parses the header and questions of a DNS message. */
export function parseDnsQuery(buf: Buffer): DnsQuery {
  if (buf.length < 12) throw malformed('shorter than a DNS header');
  const flags = buf.readUInt16BE(2);
  const count = buf.readUInt16BE(4);
  const questions: DnsQuestion[] = [];
  let offset = 12;
  for (let i = 0; i < count; i++) {
    const { name, next } = readName(buf, offset);
    if (next + 4 > buf.length) throw malformed('question runs past the message');
    questions.push({ name, type: buf.readUInt16BE(next), class: buf.readUInt16BE(next + 2) });
    offset = next + 4;
  }
  return { id: buf.readUInt16BE(0), opcode: (flags >> 11) & 0xf, recursionDesired: (flags & 0x0100) !== 0, questions };
}

function encodeName(name: string): Buffer {
  const parts = name.split('.').filter(Boolean);
  const bufs = parts.map((p) => {
    const label = Buffer.from(p, 'latin1');
    return Buffer.concat([Buffer.from([Math.min(label.length, 63)]), label.subarray(0, 63)]);
  });
  return Buffer.concat([...bufs, Buffer.from([0])]);
}

function encodeIpv4(text: string): Buffer {
  return Buffer.from(text.split('.').map(Number));
}

/** A response to `query`: its questions echoed, then `answers`, flagged authoritative with recursion available. */
export function encodeDnsResponse(query: DnsQuery, rcode: DnsRcode, answers: readonly DnsAnswer[] = []): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(query.id, 0);
  header.writeUInt16BE(0x8000 | (query.opcode << 11) | 0x0400 | (query.recursionDesired ? 0x0100 : 0) | 0x0080 | rcode, 2);
  header.writeUInt16BE(query.questions.length, 4);
  header.writeUInt16BE(answers.length, 6);
  const parts: Buffer[] = [header];
  for (const q of query.questions) {
    const tail = Buffer.alloc(4);
    tail.writeUInt16BE(q.type, 0);
    tail.writeUInt16BE(q.class, 2);
    parts.push(encodeName(q.name), tail);
  }
  for (const a of answers) {
    const rdata = a.type === DnsType.A ? encodeIpv4(a.data) : encodeName(a.data);
    const fixed = Buffer.alloc(10);
    fixed.writeUInt16BE(a.type, 0);
    fixed.writeUInt16BE(1, 2);
    fixed.writeUInt32BE(a.ttl, 4);
    fixed.writeUInt16BE(rdata.length, 8);
    parts.push(encodeName(a.name), fixed, rdata);
  }
  return Buffer.concat(parts);
}

/** A minimal query, for tests and health checks: one question, recursion desired. */
export function encodeDnsQuery(id: number, name: string, type: number): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2);
  header.writeUInt16BE(1, 4);
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(type, 0);
  tail.writeUInt16BE(1, 2);
  return Buffer.concat([header, encodeName(name), tail]);
}

/** The reverse-lookup name of an IPv4 address: `2.0.10.10.in-addr.arpa`. */
export function reverseName(address: string): string {
  return `${address.split('.').reverse().join('.')}.in-addr.arpa`;
}
