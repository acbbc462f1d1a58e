import { describe, expect, it } from 'vitest';
import { openPortsFlag, type FlagDefinition } from './driver.js';
import { resolveFlagValues, withPrefixAliases } from './flags.js';

const flags: FlagDefinition[] = [
  { name: 'x-region', type: 'string', usage: '', envVar: 'X_REGION', default: 'eu', aliases: ['old-region'] },
  { name: 'x-size', type: 'number', usage: '', envVar: 'X_SIZE', default: 10 },
  { name: 'x-spot', type: 'boolean', usage: '', envVar: 'X_SPOT' },
  { name: 'x-tags', type: 'string[]', usage: '', envVar: 'X_TAGS' },
  { name: 'x-kind', type: 'string', usage: '', choices: ['a', 'b'] },
  { name: 'x-key', type: 'string', usage: '', envVar: 'X_KEY', required: true },
];

describe('resolveFlagValues', () => {
  it('takes the command line over env over defaults, and aliases for names', () => {
    expect(resolveFlagValues(flags, { 'x-key': 'k' })).toEqual({ 'x-region': 'eu', 'x-size': 10, 'x-key': 'k' });
    expect(resolveFlagValues(flags, { 'x-key': 'k' }, { X_REGION: 'us', X_SIZE: '20', X_SPOT: 'true', X_TAGS: 'a, b' })).toEqual({
      'x-region': 'us',
      'x-size': 20,
      'x-spot': true,
      'x-tags': ['a', 'b'],
      'x-key': 'k',
    });
    expect(resolveFlagValues(flags, { 'old-region': 'ap', 'x-key': 'k', 'x-tags': 'one' }, { X_REGION: 'us' })).toMatchObject({ 'x-region': 'ap', 'x-tags': ['one'] });
    expect(resolveFlagValues(flags, {}, { X_KEY: 'from-env' })['x-key']).toBe('from-env');
  });

  it('names the flag when a value is wrong or missing', () => {
    expect(() => resolveFlagValues(flags, {})).toThrow(/--x-key is required \(or set X_KEY\)/);
    expect(() => resolveFlagValues(flags, { 'x-key': 'k' }, { X_SIZE: 'big' })).toThrow(/X_SIZE=big is not a number \(for --x-size\)/);
    expect(() => resolveFlagValues(flags, { 'x-key': 'k' }, { X_SPOT: 'maybe' })).toThrow(/X_SPOT/);
    expect(() => resolveFlagValues(flags, { 'x-key': 'k', 'x-kind': 'c' })).toThrow(/--x-kind "c" is not one of a, b/);
    expect(() => resolveFlagValues(flags, { 'x-key': 'k', 'x-size': 'many' })).toThrow(/--x-size/);
  });
});

describe('withPrefixAliases', () => {
  it('accepts each flag under the other prefix too, keeping the aliases it had', () => {
    const aliased = withPrefixAliases('x-', 'legacy-', flags.slice(0, 2));
    expect(aliased.map((f) => f.aliases)).toEqual([['old-region', 'legacy-region'], ['legacy-size']]);
    expect(resolveFlagValues(withPrefixAliases('x-', 'legacy-', flags), { 'legacy-size': 30, 'legacy-key': 'k' })).toMatchObject({ 'x-size': 30, 'x-key': 'k' });
  });
});

describe('openPortsFlag', () => {
  it('reads PORT as TCP and PORT/PROTOCOL, and names the flag for anything else', () => {
    expect(openPortsFlag({ 'x-open-port': ['8080', '53/udp', '443/tcp'] }, 'x-open-port')).toEqual([
      { port: 8080, protocol: 'tcp' },
      { port: 53, protocol: 'udp' },
      { port: 443, protocol: 'tcp' },
    ]);
    expect(openPortsFlag({}, 'x-open-port')).toEqual([]);
    for (const bad of ['http', '0', '70000', '53/sctp']) {
      expect(() => openPortsFlag({ 'x-open-port': [bad] }, 'x-open-port')).toThrow(`flag --x-open-port takes PORT or PORT/tcp|udp, got "${bad}"`);
    }
  });
});
