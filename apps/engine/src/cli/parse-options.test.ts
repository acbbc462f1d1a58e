import { describe, expect, it } from 'vitest';
import type { Options } from 'yargs';
import { parseOptions } from './parse-options.js';

const options: Record<string, Options> = {
  detach: { type: 'boolean', alias: 'd' },
  interactive: { type: 'boolean', alias: 'i' },
  tty: { type: 'boolean', alias: 't' },
  env: { type: 'string', array: true, alias: 'e', requiresArg: true },
  name: { type: 'string', requiresArg: true },
  network: { type: 'string', alias: 'net' },
  pull: { type: 'string', choices: ['always', 'missing', 'never'], default: 'missing' },
  'sig-proxy': { type: 'boolean', default: true },
};

const parse = (...args: string[]) => parseOptions(args, options, 'run');

describe('parseOptions (pflag rules)', () => {
  it('takes grouped booleans, a value glued to a short flag, after = or as the next argument', () => {
    const { values, positional } = parse('-itd', '-eA=1', '-e=B=2', '-e', 'C=3', '--env=D=4', '--env', 'E=5', '--net', 'none', 'busybox');
    expect(values).toMatchObject({ interactive: true, tty: true, detach: true, env: ['A=1', 'B=2', 'C=3', 'D=4', 'E=5'], network: 'none' });
    expect(positional).toEqual(['busybox']);
  });

  it('a short flag with a value ends its group; the last value of a plain flag wins', () => {
    const { values } = parse('-ite', 'X=1', '--name', 'a', '--name', 'b');
    expect(values).toMatchObject({ interactive: true, tty: true, env: ['X=1'], name: 'b' });
  });

  it('booleans take a value only after =, in strconv.ParseBool spellings', () => {
    expect(parse('--sig-proxy=false', 'x').values['sig-proxy']).toBe(false);
    expect(parse('-d=0', 'x').values['detach']).toBe(false);
    expect(parse('--detach', 'false').positional).toEqual(['false']);
    expect(() => parse('--detach=maybe')).toThrow('invalid argument "maybe" for "--detach" flag: strconv.ParseBool: parsing "maybe": invalid syntax');
  });

  it('a value may start with a dash; -- ends the options; positionals may come anywhere', () => {
    expect(parse('--name', '--rm').values['name']).toBe('--rm');
    const { values, positional } = parse('a', '-d', 'b', '--', '-i', '--tty');
    expect(values['detach']).toBe(true);
    expect(values['interactive']).toBeUndefined();
    expect(positional).toEqual(['a', 'b', '-i', '--tty']);
  });

  it('applies defaults and checks choices', () => {
    expect(parse().values).toMatchObject({ pull: 'missing', 'sig-proxy': true });
    expect(() => parse('--pull', 'sometimes')).toThrow('invalid argument "sometimes" for "--pull" flag: must be one of always, missing, never');
  });

  it("names unknown flags and missing values as docker's CLI does", () => {
    expect(() => parse('--nope')).toThrow('unknown flag: --nope');
    expect(() => parse('-dx')).toThrow("unknown shorthand flag: 'x' in -dx");
    expect(() => parse('--name')).toThrow('flag needs an argument: --name');
    expect(() => parse('-e')).toThrow("flag needs an argument: 'e' in -e");
    expect(() => parse('--name=')).toThrow('flag needs an argument: --name');
  });
});
