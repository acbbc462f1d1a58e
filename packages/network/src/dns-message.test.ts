import { describe, expect, it } from 'vitest';
import { DnsRcode, DnsType, encodeDnsQuery, encodeDnsResponse, parseDnsQuery, reverseName } from './dns-message.js';

describe('dns messages', () => {
  it('round-trips a query and answers it', () => {
    const query = parseDnsQuery(encodeDnsQuery(0x1234, 'Web.Example', DnsType.A));
    expect(query).toEqual({ id: 0x1234, opcode: 0, recursionDesired: true, questions: [{ name: 'web.example', type: 1, class: 1 }] });
    const reply = encodeDnsResponse(query, DnsRcode.NoError, [{ name: 'web.example', type: DnsType.A, ttl: 600, data: '10.0.0.2' }]);
    expect(reply.readUInt16BE(0)).toBe(0x1234);
    expect(reply.readUInt16BE(2) & 0x8000).toBe(0x8000);
    expect(reply.readUInt16BE(2) & 0xf).toBe(0);
    expect(reply.readUInt16BE(6)).toBe(1);
    expect([...reply.subarray(reply.length - 4)]).toEqual([10, 0, 0, 2]);
    expect(parseDnsQuery(reply).questions[0]!.name).toBe('web.example');
  });

  it('follows compression pointers and rejects loops and truncation', () => {
    const q = encodeDnsQuery(1, 'a.b', DnsType.A);
    // Header with two questions, the second a pointer to the first name.
    const two = Buffer.concat([q, Buffer.from([0xc0, 12, 0, 1, 0, 1])]);
    two.writeUInt16BE(2, 4);
    expect(parseDnsQuery(two).questions.map((x) => x.name)).toEqual(['a.b', 'a.b']);
    const loop = Buffer.concat([q.subarray(0, 12), Buffer.from([0xc0, 12, 0, 1, 0, 1])]);
    expect(() => parseDnsQuery(loop)).toThrow(expect.objectContaining({ code: 'ERR_MALFORMED_DNS_MESSAGE' }));
    expect(() => parseDnsQuery(q.subarray(0, q.length - 3))).toThrow(/malformed/);
    expect(() => parseDnsQuery(Buffer.alloc(5))).toThrow(/header/);
  });

  it('names reverse lookups', () => {
    expect(reverseName('10.0.1.2')).toBe('2.1.0.10.in-addr.arpa');
  });
});
