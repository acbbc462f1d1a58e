import { describe, expect, it } from 'vitest';
import { formatPlatform, hostPlatform, parsePlatform, selectByPlatform, type Platform } from './index.js';

const item = (p: string) => ({ name: p, platform: parsePlatform(p) as Platform });

describe('platforms', () => {
  it('parses and normalises', () => {
    expect(parsePlatform('linux/arm64/v8')).toEqual({ os: 'linux', architecture: 'arm64' });
    expect(parsePlatform('linux/aarch64')).toEqual({ os: 'linux', architecture: 'arm64' });
    expect(parsePlatform('linux/arm')).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7' });
    expect(parsePlatform('x86_64')).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(formatPlatform(parsePlatform('Linux/ARM/6'))).toBe('linux/arm/v6');
    expect(() => parsePlatform('linux//x')).toThrowError(/os\/arch/);
    expect(hostPlatform().os).toBe('linux');
  });

  it('selects the exact match first, then a compatible older variant, never another arch', () => {
    const list = [item('linux/amd64'), item('linux/arm/v6'), item('linux/arm/v7'), item('linux/arm64'), item('windows/amd64')];
    expect(selectByPlatform(list, parsePlatform('linux/amd64'))?.name).toBe('linux/amd64');
    expect(selectByPlatform(list, parsePlatform('linux/arm/v7'))?.name).toBe('linux/arm/v7');
    expect(selectByPlatform([item('linux/arm/v6')], parsePlatform('linux/arm/v7'))?.name).toBe('linux/arm/v6');
    expect(selectByPlatform([item('linux/arm/v7')], parsePlatform('linux/arm/v6'))).toBeUndefined();
    expect(selectByPlatform(list, parsePlatform('linux/arm64/v8'))?.name).toBe('linux/arm64');
    expect(selectByPlatform(list, parsePlatform('linux/s390x'))).toBeUndefined();
    expect(selectByPlatform([{ name: 'attestation' }], parsePlatform('linux/amd64'))).toBeUndefined();
  });
});
