import { chmod, chown, mkdir, mkdtemp, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hasCode, hasKind } from '@berth/errors';
import { readBuildContext, type BuildContext } from './build-context.js';
import { ContentHashCache, hashCopySources, matchSources, planCopy } from './copy-sources.js';

let dir: string;

async function files(tree: Record<string, string>): Promise<void> {
  for (const [path, content] of Object.entries(tree)) {
    await mkdir(join(dir, path, '..'), { recursive: true });
    await writeFile(join(dir, path), content);
  }
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-builder-ctx-'));
  await files({
    'Dockerfile': 'FROM busybox\n',
    'go.mod': 'module x\n',
    'main.go': 'package main\n',
    'util.go': 'package main\n',
    'README.md': '# readme\n',
    'src/a.txt': 'a\n',
    'src/sub/b.txt': 'b\n',
    'vendor/lib/x.go': 'package lib\n',
    'vendor/lib/keep.go': 'package lib\n',
    'node_modules/m/index.js': '1\n',
    'logs/app.log': 'log\n',
  });
  await symlink('src/a.txt', join(dir, 'link-to-a'));
  await writeFile(join(dir, '.dockerignore'), '# build junk\nnode_modules\n*.log\n**/*.log\nvendor\n!vendor/lib/keep.go\n');
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('readBuildContext', () => {
  it('lists what .dockerignore keeps, with re-included files under implicit parents', async () => {
    const ctx = await readBuildContext({ dir });
    expect(ctx.paths).toEqual([
      '.dockerignore',
      'Dockerfile',
      'README.md',
      'go.mod',
      'link-to-a',
      'logs',
      'main.go',
      'src',
      'src/a.txt',
      'src/sub',
      'src/sub/b.txt',
      'util.go',
      'vendor',
      'vendor/lib',
      'vendor/lib/keep.go',
    ]);
    expect(ctx.entries.get('vendor')).toMatchObject({ type: 'directory', implicit: true });
    expect(ctx.entries.get('link-to-a')).toMatchObject({ type: 'symlink', linkTarget: 'src/a.txt' });
    expect(ctx.entries.get('src/a.txt')).toMatchObject({ type: 'file', size: 2 });
    expect(ctx.children.get('src')).toEqual(['a.txt', 'sub']);
  });

  it('applies explicit patterns instead of the file, and rejects a missing directory', async () => {
    const ctx = await readBuildContext({ dir, ignorePatterns: ['src'] });
    expect(ctx.paths).toContain('node_modules/m/index.js');
    expect(ctx.paths).not.toContain('src/a.txt');
    let caught: unknown;
    try {
      await readBuildContext({ dir: join(dir, 'nope') });
    } catch (err) {
      caught = err;
    }
    expect(hasCode(caught, 'ERR_BUILD_CONTEXT_INVALID')).toBe(true);
  });
});

describe('matchSources', () => {
  let ctx: BuildContext;
  beforeEach(async () => {
    ctx = await readBuildContext({ dir });
  });

  it('resolves paths, Go wildcards per path element, the root, and clamps .. to the context', () => {
    expect(matchSources(ctx, '*.go').map((m) => m.path)).toEqual(['main.go', 'util.go']);
    expect(matchSources(ctx, 'src/*/b.tx?').map((m) => m.path)).toEqual(['src/sub/b.txt']);
    expect(matchSources(ctx, '[gm]*.go').map((m) => m.path)).toEqual(['main.go']);
    expect(matchSources(ctx, './src/')[0]).toMatchObject({ path: 'src', entry: { type: 'directory' }, wildcard: false });
    expect(matchSources(ctx, '.')[0]).toMatchObject({ path: '', entry: { type: 'directory' } });
    expect(matchSources(ctx, '../../go.mod')[0]!.path).toBe('go.mod');
  });

  it('follows a symlink named as a source', () => {
    expect(matchSources(ctx, 'link-to-a')[0]).toMatchObject({ path: 'link-to-a', entry: { path: 'src/a.txt', type: 'file' } });
  });

  it('fails with NotFound for missing and ignored sources and empty wildcards', () => {
    for (const source of ['missing.txt', 'node_modules', 'logs/app.log', '*.rs', 'vendor/lib/x.go']) {
      let caught: unknown;
      try {
        matchSources(ctx, source);
      } catch (err) {
        caught = err;
      }
      expect(hasCode(caught, 'ERR_BUILD_SOURCE_NOT_FOUND'), source).toBe(true);
      expect(hasKind(caught, 'NotFound')).toBe(true);
    }
  });
});

describe('hashCopySources', () => {
  const hash = async (sources: string[], cache?: ContentHashCache) => (await hashCopySources(await readBuildContext({ dir }), sources, cache ? { cache } : {})).digest;

  it('is stable, and changes with content and mode but not with mtime', async () => {
    const first = await hash(['src', '*.go']);
    expect(await hash(['src', '*.go'])).toBe(first);

    await utimes(join(dir, 'src/sub/b.txt'), new Date(2000, 1, 1), new Date(2000, 1, 1));
    expect(await hash(['src', '*.go'])).toBe(first);

    await chmod(join(dir, 'src/sub/b.txt'), 0o600);
    const afterChmod = await hash(['src', '*.go']);
    expect(afterChmod).not.toBe(first);

    await writeFile(join(dir, 'main.go'), 'package main // changed\n');
    expect(await hash(['src', '*.go'])).not.toBe(afterChmod);
  });

  // chown needs root; skipped with this name when not root.
  it.skipIf(process.getuid?.() !== 0)('changes with the owner (needs root to chown)', async () => {
    const before = await hash(['src']);
    await chown(join(dir, 'src/sub/b.txt'), 1234, 1234);
    expect(await hash(['src'])).not.toBe(before);
  });

  it('changes when a file is added to a copied directory, and not for files outside what is copied', async () => {
    const before = await hash(['src']);
    await writeFile(join(dir, 'README.md'), 'changed\n');
    await writeFile(join(dir, 'logs/other.log'), 'ignored\n');
    expect(await hash(['src'])).toBe(before);
    await writeFile(join(dir, 'src/new.txt'), 'new\n');
    expect(await hash(['src'])).not.toBe(before);
  });

  it('reuses cached content digests by file identity, and not across a rewrite that restores the mtime', async () => {
    const cache = new ContentHashCache({ racyWindowMs: 0 });
    const mtime = new Date(2020, 0, 1);
    await utimes(join(dir, 'main.go'), mtime, mtime);
    const first = await hash(['main.go'], cache);
    expect(cache.size).toBe(1);
    const entry = () => readBuildContext({ dir }).then((c) => c.entries.get('main.go')!);
    expect(cache.get(dir, await entry())).toMatch(/^[0-9a-f]{64}$/);
    // Same size, inode and mtime, but a new ctime: the cache does not answer, the file is read.
    await writeFile(join(dir, 'main.go'), 'package mian\n');
    await utimes(join(dir, 'main.go'), mtime, mtime);
    expect(cache.get(dir, await entry())).toBeUndefined();
    expect(await hash(['main.go'], cache)).not.toBe(first);
  });

  it('does not remember a file changed within the racy window', async () => {
    const cache = new ContentHashCache({ racyWindowMs: 60_000 });
    await writeFile(join(dir, 'main.go'), 'package main\n');
    await hash(['main.go'], cache);
    expect(cache.size).toBe(0);
  });
});

describe('planCopy: destination rules', () => {
  let ctx: BuildContext;
  beforeEach(async () => {
    ctx = await readBuildContext({ dir });
  });
  const plan = (sources: string[], dest: string, extra: { isDirectory?: (p: string) => boolean } = {}) =>
    planCopy({ matches: sources.flatMap((s) => matchSources(ctx, s)), sourceCount: sources.length, dest, workdir: '/app', ...extra });

  it('copies a file to the destination path, or into it when it ends with / or already is a directory', () => {
    expect(plan(['go.mod'], '/etc/x.mod')).toEqual([{ source: 'go.mod', dest: '/etc/x.mod', contentsOnly: false }]);
    expect(plan(['go.mod'], '/etc/')).toEqual([{ source: 'go.mod', dest: '/etc/go.mod', contentsOnly: false }]);
    expect(plan(['go.mod'], '/etc', { isDirectory: (p) => p === '/etc' })).toEqual([{ source: 'go.mod', dest: '/etc/go.mod', contentsOnly: false }]);
  });

  it('resolves a relative destination under WORKDIR and copies directory contents', () => {
    expect(plan(['src'], 'code')).toEqual([{ source: 'src', dest: '/app/code', contentsOnly: true }]);
    expect(plan(['go.mod'], '.')).toEqual([{ source: 'go.mod', dest: '/app/go.mod', contentsOnly: false }]);
  });

  it('puts wildcard matches into the destination directory', () => {
    expect(plan(['*.go'], '/src').map((o) => o.dest)).toEqual(['/src/main.go', '/src/util.go']);
  });

  it('requires a trailing slash for several sources', () => {
    expect(() => plan(['go.mod', 'main.go'], '/dst')).toThrow(/destination must be a directory and end with a \//);
    expect(plan(['go.mod', 'main.go'], '/dst/').map((o) => o.dest)).toEqual(['/dst/go.mod', '/dst/main.go']);
  });

  it('places heredoc files by name', () => {
    const ops = planCopy({ matches: [], inline: [{ name: 'run.sh', content: 'echo\n', expand: true }], sourceCount: 1, dest: '/usr/local/bin/', workdir: '/' });
    expect(ops).toEqual([{ source: 'run.sh', inline: { name: 'run.sh', content: 'echo\n', expand: true }, dest: '/usr/local/bin/run.sh', contentsOnly: false }]);
  });
});
