import { describe, expect, it } from 'vitest';
import { hasCode } from '@berth/errors';
import { expandWord } from './word-expansion.js';

const env = new Map([
  ['PWD', '/home'],
  ['SHELL', 'bash'],
  ['KOREAN', '한국어'],
  ['EMPTY', ''],
  ['SPACES', ' a  b '],
  ['X', 'aaa.bbb.ccc'],
]);
const value = (word: string, vars = env) => expandWord(word, vars).value;
const words = (word: string, vars = env) => expandWord(word, vars).words;

describe('expandWord: quotes and escapes, as docker processes words', () => {
  it.each([
    ['hello', 'hello'],
    ["he'll'o", 'hello'],
    ["he\\'llo", "he'llo"],
    ['abc\\\\def', 'abc\\def'],
    ['"abc\\\\def"', 'abc\\def'],
    ["'abc\\\\def'", 'abc\\\\def'],
    ['"abc\\def"', 'abc\\def'],
    ['"a\\"b"', 'a"b'],
    ["'a\"b'", 'a"b'],
    ['"a\'b"', "a'b"],
    ['a\\ b', 'a b'],
    ['trailing\\', 'trailing'],
    ['`not run`', '`not run`'],
    ['$(not run)', '$(not run)'],
  ])('%s → %s', (input, expected) => {
    expect(value(input)).toBe(expected);
  });

  it.each([["he'llo"], ['"unterminated'], ["he\\\\'llo"]])('%s is an error', (input) => {
    expect(() => value(input)).toThrow(/failed to process/);
  });
});

describe('expandWord: variables', () => {
  it.each([
    ['$PWD', '/home'],
    ['${PWD}', '/home'],
    ['he$PWD', 'he/home'],
    ['he${PWD}x', 'he/homex'],
    ['he\\$PWD', 'he$PWD'],
    ['"he\\$PWD"', 'he$PWD'],
    ["'he$PWD'", 'he$PWD'],
    ['"he$PWD"', 'he/home'],
    ['$KOREAN', '한국어'],
    ['${KOREAN}!', '한국어!'],
    ['$UNSET', ''],
    ['${UNSET}x', 'x'],
    ['$', '$'],
    ['a$', 'a$'],
    ['$/x', '$/x'],
    ['$PWD-x', '/home-x'],
  ])('%s → %s', (input, expected) => {
    expect(value(input)).toBe(expected);
  });

  it.each([
    ['${PWD:-xxx}', '/home'],
    ['${UNSET:-xxx}', 'xxx'],
    ['${EMPTY:-xxx}', 'xxx'],
    ['${EMPTY-xxx}', ''],
    ['${UNSET-xxx}', 'xxx'],
    ['${PWD:+yyy}', 'yyy'],
    ['${UNSET:+yyy}', ''],
    ['${EMPTY:+yyy}', ''],
    ['${EMPTY+yyy}', 'yyy'],
    ['${PWD:+${SHELL}}', 'bash'],
    ['${UNSET:-${SHELL}-x}', 'bash-x'],
    ['${UNSET:-"a b"}', 'a b'],
    ['${UNSET:-/non:-alphanumeric}', '/non:-alphanumeric'],
    ['${PWD:?must be set}', '/home'],
    ['${EMPTY?must be set}', ''],
  ])('modifier %s → %s', (input, expected) => {
    expect(value(input)).toBe(expected);
  });

  it.each([
    ['${X#*.}', 'bbb.ccc'],
    ['${X##*.}', 'ccc'],
    ['${X%.*}', 'aaa.bbb'],
    ['${X%%.*}', 'aaa'],
    ['${X#a?a}', '.bbb.ccc'],
    ['${X#nomatch}', 'aaa.bbb.ccc'],
    ['${X/b/B}', 'aaa.Bbb.ccc'],
    ['${X//b/B}', 'aaa.BBB.ccc'],
    ['${X//./-}', 'aaa-bbb-ccc'],
    ['${X/b*/}', 'aaa.'],
  ])('pattern %s → %s', (input, expected) => {
    expect(value(input)).toBe(expected);
  });

  it.each([
    ['${', "missing '}'"],
    ['${}', 'bad substitution'],
    ['${:-x}', 'bad substitution'],
    ['${PWD', "missing '}'"],
    ['${PWD:-x', "missing '}'"],
    ['${PWD:=x}', 'unsupported modifier (:=)'],
    ['${X:#a}', 'unsupported modifier (:#)'],
    ['${UNSET:?custom message}', 'UNSET: custom message'],
    ['${UNSET?}', 'UNSET: is not allowed to be unset'],
    ['${EMPTY:?}', 'EMPTY: is not allowed to be empty'],
  ])('%s fails with %s', (input, message) => {
    let caught: unknown;
    try {
      value(input);
    } catch (err) {
      caught = err;
    }
    expect(hasCode(caught, 'ERR_DOCKERFILE_EXPANSION')).toBe(true);
    expect((caught as Error).message).toContain(message);
  });

  it('reports which variables it read, set and unset', () => {
    const result = expandWord('${PWD}/$UNSET/${SHELL:-x}/${NOPE:-$EMPTY}', env);
    expect([...result.used].sort()).toEqual(['EMPTY', 'PWD', 'SHELL']);
    expect([...result.unset].sort()).toEqual(['NOPE', 'UNSET']);
  });

  it('keeps unset variables as written when asked to', () => {
    expect(expandWord('$UNSET ${UNSET} ${UNSET:-x} $PWD', env, { skipUnset: true }).value).toBe('$UNSET ${UNSET} ${UNSET:-x} /home');
  });
});

describe('expandWord: word splitting after substitution', () => {
  it.each([
    ['hello world', ['hello', 'world']],
    ['  hello   world  ', ['hello', 'world']],
    ['"hello world"', ['hello world']],
    ['a"b c"d', ['ab cd']],
    ['$SPACES', ['a', 'b']],
    ['"$SPACES"', [' a  b ']],
    ['x${SPACES}y', ['x', 'a', 'b', 'y']],
    ['a\\ b c', ['a b', 'c']],
    ["'' x", ['x']],
    ['$UNSET', []],
  ])('%s → %j', (input, expected) => {
    expect(words(input)).toEqual(expected);
  });
});

describe('expandWord: the backtick escape token', () => {
  it('escapes with ` and leaves backslashes alone', () => {
    const opts = { escapeToken: '`' as const };
    expect(expandWord('c:\\windows', env, opts).value).toBe('c:\\windows');
    expect(expandWord('a`$PWD', env, opts).value).toBe('a$PWD');
    expect(expandWord('"a`"b"', env, opts).value).toBe('a"b');
    expect(expandWord('a` b', env, opts).words).toEqual(['a b']);
  });
});

describe('expandWord: raw modes used for heredoc detection', () => {
  it('keeps quotes and escapes when asked to', () => {
    expect(expandWord(`"a b" 'c' d\\e`, env, { rawQuotes: true, rawEscapes: true }).words).toEqual(['"a b"', "'c'", 'd\\e']);
  });

  it('expands heredoc bodies as sh does: quotes are plain, backslash escapes only $ ` \\ and newline', () => {
    const body = `echo "$PWD" '$SHELL' \\$HOME printf "a\\nb" \\\\ x\\\ny\n`;
    expect(expandWord(body, env, { heredoc: true }).value).toBe(`echo "/home" 'bash' $HOME printf "a\\nb" \\ xy\n`);
  });
});
