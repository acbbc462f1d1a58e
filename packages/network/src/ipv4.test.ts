import { describe, expect, it } from 'vitest';
import { broadcastOf, formatIpv4, formatSubnet, nthSubnet, parseIpv4, parseSubnet, subnetContains, subnetsOverlap } from './ipv4.js';

describe('ipv4', () => {
  it('parses and formats addresses and canonical subnets', () => {
    expect(formatIpv4(parseIpv4('10.1.255.3'))).toBe('10.1.255.3');
    expect(parseIpv4('255.255.255.255')).toBe(0xffffffff);
    expect(formatSubnet(parseSubnet('10.1.2.3/24'))).toBe('10.1.2.0/24');
    expect(formatSubnet(parseSubnet('0.0.0.0/0'))).toBe('0.0.0.0/0');
    expect(formatIpv4(broadcastOf(parseSubnet('172.18.0.0/16')))).toBe('172.18.255.255');
    for (const bad of ['10.1.2', '10.1.2.256', '01.1.1.1', '1.2.3.4.5', 'a.b.c.d', '']) expect(() => parseIpv4(bad)).toThrow(/invalid IPv4 address/);
    for (const bad of ['10.0.0.0', '10.0.0.0/33', '10.0.0.0/x']) expect(() => parseSubnet(bad)).toThrow(/invalid subnet/);
  });

  it('tells containment and overlap', () => {
    const s = parseSubnet('192.168.16.0/20');
    expect(subnetContains(s, parseIpv4('192.168.31.255'))).toBe(true);
    expect(subnetContains(s, parseIpv4('192.168.32.0'))).toBe(false);
    expect(subnetsOverlap(s, parseSubnet('192.168.0.0/16'))).toBe(true);
    expect(subnetsOverlap(s, parseSubnet('192.168.32.0/24'))).toBe(false);
    expect(subnetsOverlap(parseSubnet('0.0.0.0/0'), parseSubnet('10.0.0.0/8'))).toBe(true);
  });

  it('cuts pools into subnets', () => {
    const pool = parseSubnet('192.168.0.0/16');
    expect(formatSubnet(nthSubnet(pool, 20, 0)!)).toBe('192.168.0.0/20');
    expect(formatSubnet(nthSubnet(pool, 20, 15)!)).toBe('192.168.240.0/20');
    expect(nthSubnet(pool, 20, 16)).toBeUndefined();
    expect(nthSubnet(pool, 8, 0)).toBeUndefined();
  });
});
