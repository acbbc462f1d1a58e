import { describe, expect, it } from 'vitest';
import { hasCode } from '@berth/errors';
import { IgnoreMatcher, parseDockerignore } from './dockerignore.js';

const matcher = (text: string) => new IgnoreMatcher({ patterns: parseDockerignore(text) });

describe('parseDockerignore', () => {
  it('drops comments and blank lines, trims, cleans paths and strips a leading slash', () => {
    expect(parseDockerignore('\uFEFF# comment\n\n  *.log  \n/abs\ndir/\n./a/../b\n! keep.log\n!/rooted\n #not-a-comment\n..\n/\n')).toEqual([
      '*.log',
      'abs',
      'dir',
      'b',
      '!keep.log',
      '!rooted',
      '#not-a-comment',
      '..',
      '/',
    ]);
  });
});

describe('IgnoreMatcher: docker matching rules', () => {
  it.each([
    ['*.md', 'README.md', true],
    ['*.md', 'docs/a.md', false],
    ['**/*.md', 'docs/deep/a.md', true],
    ['**/*.md', 'README.md', true],
    ['docs', 'docs/a/b.txt', true],
    ['docs', 'docsx', false],
    ['docs/*', 'docs/a/b.txt', true],
    ['temp?', 'temp1', true],
    ['temp?', 'temp12', false],
    ['a/**/b', 'a/b', true],
    ['a/**/b', 'a/x/y/b', true],
    ['a/**/b', 'a/x/y/b/c.txt', true],
    ['a/**/b', 'a/x/y/bc', false],
    ['**', 'anything/at/all', true],
    ['foo/**', 'foo/x', true],
    ['foo(1).txt', 'foo(1).txt', true],
    ['foo(1).txt', 'foo1.txt', false],
    ['c++', 'c++', true],
    ['a{1}', 'a{1}', true],
    ['x|y', 'x', false],
    ['[a-c].txt', 'b.txt', true],
    ['[^a].txt', 'a.txt', false],
    ['\\*.txt', '*.txt', true],
    ['\\*.txt', 'x.txt', false],
    ['README.md', 'readme.md', false],
    ['/abs/file', 'abs/file', true],
    ['dir/', 'dir/file', true],
    ['a/./b/../c', 'a/c', true],
  ])('%s on %s → %s', (pattern, path, ignored) => {
    expect(matcher(pattern).ignores(path)).toBe(ignored);
  });

  it('lets the last matching pattern win, so exceptions re-include files in excluded directories', () => {
    const m = matcher('docs\n!docs/keep.md\n*.tmp\n!important.tmp\n');
    expect(m.ignores('docs/other.md')).toBe(true);
    expect(m.ignores('docs/keep.md')).toBe(false);
    expect(m.ignores('x.tmp')).toBe(true);
    expect(m.ignores('important.tmp')).toBe(false);
    expect(matcher('!keep\n*\n').ignores('keep')).toBe(true);
    expect(matcher('*\n!keep\n').ignores('keep')).toBe(false);
    expect(matcher('*\n!keep\n').ignores('keep/inner')).toBe(false);
  });

  it('says when a walk must look inside an excluded directory', () => {
    const m = matcher('vendor\n!vendor/keep/x.go\nbuild\n');
    expect(m.mayReincludeUnder('vendor')).toBe(true);
    expect(m.mayReincludeUnder('vendor/keep')).toBe(true);
    expect(m.mayReincludeUnder('build')).toBe(false);
    expect(matcher('vendor\n!**/*.go\n').mayReincludeUnder('vendor')).toBe(true);
    expect(matcher('vendor\n').mayReincludeUnder('vendor')).toBe(false);
  });

  it('rejects a lone ! and a bad pattern', () => {
    expect(() => new IgnoreMatcher({ patterns: ['!'] })).toThrow(/illegal exclusion pattern/);
    let caught: unknown;
    try {
      new IgnoreMatcher({ patterns: ['[a'] });
    } catch (err) {
      caught = err;
    }
    expect(hasCode(caught, 'ERR_BUILD_CONTEXT_INVALID')).toBe(true);
  });
});
