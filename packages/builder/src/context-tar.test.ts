import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hasCode, hasKind } from '@berth/errors';
import { isTarArchive } from './archive-format.js';
import { contextDirectoryOf, directoryContext, packContext, unpackContext } from './context-tar.js';
import { fetchRemoteSource, remoteFileName } from './remote-source.js';

let work: string;
let ctx: string;
const longName = 'deep/' + 'x'.repeat(60) + '/' + 'y'.repeat(60) + '.txt';

beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'berth-builder-tar-'));
  ctx = join(work, 'ctx');
  await mkdir(join(ctx, 'src'), { recursive: true });
  await mkdir(join(ctx, 'node_modules/m'), { recursive: true });
  await mkdir(join(ctx, longName, '..'), { recursive: true });
  await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nCOPY . /app\n');
  await writeFile(join(ctx, 'src/main.c'), 'int main(){return 0;}\n');
  await writeFile(join(ctx, 'node_modules/m/index.js'), 'x\n');
  await writeFile(join(ctx, longName), 'long\n');
  await symlink('src/main.c', join(ctx, 'link'));
  await writeFile(join(ctx, '.dockerignore'), 'node_modules\nDockerfile\n.dockerignore\n');
});

afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

async function save(stream: NodeJS.ReadableStream, path: string): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  await writeFile(path, Buffer.concat(chunks));
}

const have = (tool: string): boolean => {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`]);
    return true;
  } catch {
    return false;
  }
};
const list = (tarPath: string, flags = '-tvf') => execFileSync('tar', [flags, tarPath], { encoding: 'utf8' });

describe('packContext', () => {
  it('writes a tar GNU tar reads: ignored files out, .dockerignore and the Dockerfile kept, owners zeroed', async () => {
    const packed = await packContext({ dir: ctx });
    expect(packed.dockerfile).toBe('Dockerfile');
    await save(packed.stream, join(work, 'ctx.tar'));
    const names = execFileSync('tar', ['-tf', join(work, 'ctx.tar')], { encoding: 'utf8' }).trim().split('\n').sort();
    expect(names).toEqual(['.dockerignore', 'Dockerfile', 'deep/', longName.split('/').slice(0, 2).join('/') + '/', longName, 'link', 'src/', 'src/main.c'].sort());
    expect(list(join(work, 'ctx.tar'))).toMatch(/0\/0 +\d+ .* src\/main\.c/);
    expect(list(join(work, 'ctx.tar'))).toMatch(/link -> src\/main\.c/);
  });

  it('round-trips through unpackContext, gzip-compressed, and drops what .dockerignore names', async () => {
    const packed = await packContext({ dir: ctx, gzip: true });
    const out = join(work, 'out');
    const unpacked = await unpackContext({ stream: packed.stream, dir: out, dockerfile: packed.dockerfile });
    expect(unpacked.dockerfile).toEqual({ name: 'Dockerfile', text: 'FROM busybox\nCOPY . /app\n' });
    expect(await readFile(join(out, longName), 'utf8')).toBe('long\n');
    expect(await readFile(join(out, 'link'), 'utf8')).toBe('int main(){return 0;}\n');
    // The daemon removes the Dockerfile and .dockerignore from the context when .dockerignore lists them.
    expect((await readdir(out)).sort()).toEqual(['deep', 'link', 'src']);
  });

  it('adds a Dockerfile from outside the context (or stdin) as .dockerfile.<random>, listed in .dockerignore', async () => {
    await writeFile(join(ctx, '.dockerignore'), 'node_modules\n');
    await writeFile(join(work, 'Other.dockerfile'), 'FROM scratch\n');
    for (const dockerfile of [{ path: join(work, 'Other.dockerfile') }, { content: 'FROM scratch\n' }]) {
      const packed = await packContext({ dir: ctx, dockerfile });
      expect(packed.dockerfile).toMatch(/^\.dockerfile\.[0-9a-f]{20}$/);
      const tarPath = join(work, 'ctx.tar');
      await save(packed.stream, tarPath);
      expect(execFileSync('tar', ['-xOf', tarPath, '.dockerignore'], { encoding: 'utf8' })).toBe(`node_modules\n\n${packed.dockerfile}\n`);
      const out = await mkdtemp(join(work, 'out-'));
      const unpacked = await unpackContext({ stream: createReadStream(tarPath), dir: out, dockerfile: packed.dockerfile });
      expect(unpacked.dockerfile.text).toBe('FROM scratch\n');
      expect((await readdir(out)).sort()).toEqual(['.dockerignore', 'Dockerfile', 'deep', 'link', 'src']);
    }
  });
});

describe('directoryContext', () => {
  it('names its directory and Dockerfile to an in-process reader; packContext streams name none', async () => {
    expect(contextDirectoryOf((await directoryContext({ dir: ctx })).stream)).toEqual({ dir: ctx });
    expect(contextDirectoryOf((await directoryContext({ dir: ctx, dockerfile: { path: join(ctx, 'build/Dockerfile.dev') } })).stream)).toEqual({ dir: ctx, dockerfile: 'build/Dockerfile.dev' });
    await writeFile(join(work, 'Outside.dockerfile'), 'FROM scratch\n');
    expect(contextDirectoryOf((await directoryContext({ dir: ctx, dockerfile: { path: join(work, 'Outside.dockerfile') } })).stream)).toEqual({ dir: ctx, dockerfile: join(work, 'Outside.dockerfile') });
    const piped = await directoryContext({ dir: ctx, dockerfile: { content: 'FROM scratch\n' } });
    expect(contextDirectoryOf(piped.stream)).toEqual({ dir: ctx, dockerfile: { text: 'FROM scratch\n', name: piped.dockerfile } });
    expect(contextDirectoryOf((await packContext({ dir: ctx })).stream)).toBeUndefined();
  });

  it('walks the directory only when read, and then gives the tar packContext gives', async () => {
    const lazy = await directoryContext({ dir: ctx });
    // Written after the stream was made: a lazy stream has it, as it walks when read.
    await writeFile(join(ctx, 'src/late.c'), 'late\n');
    await save(lazy.stream, join(work, 'lazy.tar'));
    await save((await packContext({ dir: ctx })).stream, join(work, 'eager.tar'));
    const names = (tar: string) => execFileSync('tar', ['-tf', join(work, tar)], { encoding: 'utf8' }).trim().split('\n').sort();
    expect(names('lazy.tar')).toContain('src/late.c');
    expect(names('lazy.tar')).toEqual(names('eager.tar'));
  });

  it('fails at once on a context that is not a directory', async () => {
    await expect(directoryContext({ dir: join(work, 'missing') })).rejects.toMatchObject({ code: 'ERR_BUILD_CONTEXT_INVALID', message: expect.stringContaining(join(work, 'missing')) });
  });

  it('fails on read, not before, when the directory went away', async () => {
    const lazy = await directoryContext({ dir: ctx });
    await rm(ctx, { recursive: true });
    let caught: unknown;
    try {
      await save(lazy.stream, join(work, 'gone.tar'));
    } catch (err) {
      caught = err;
    }
    expect(hasCode(caught, 'ERR_BUILD_CONTEXT_INVALID')).toBe(true);
  });
});

describe('unpackContext', () => {
  for (const [tool, flag] of [
    ['xz', '-J'],
    ['bzip2', '-j'],
    ['zstd', '--zstd'],
  ] as const) {
    it.skipIf(!have(tool))(`reads a ${tool}-compressed context made by GNU tar (skipped without ${tool})`, async () => {
      const tarPath = join(work, `ctx.tar.${tool}`);
      execFileSync('tar', ['-C', ctx, flag, '-cf', tarPath, 'Dockerfile', 'src']);
      const unpacked = await unpackContext({ stream: createReadStream(tarPath), dir: join(work, 'out') });
      expect(unpacked.dockerfile.text).toContain('FROM busybox');
      expect(await readFile(join(work, 'out/src/main.c'), 'utf8')).toContain('main');
    });
  }

  it('refuses entries with absolute or .. paths, writing nothing outside the target directory', async () => {
    const tarPath = join(work, 'evil.tar');
    execFileSync('python3', [
      '-c',
      `import tarfile, io
t = tarfile.open(${JSON.stringify(tarPath)}, 'w')
for name, data in [('Dockerfile', b'FROM scratch\\n'), ('../escaped.txt', b'x'), ('/abs.txt', b'y')]:
    info = tarfile.TarInfo(name); info.size = len(data); t.addfile(info, io.BytesIO(data))
t.close()`,
    ]);
    const out = join(work, 'nested/out');
    let caught: unknown;
    try {
      await unpackContext({ stream: createReadStream(tarPath), dir: out });
    } catch (err) {
      caught = err;
    }
    expect(hasCode(caught, 'ERR_BUILD_CONTEXT_INVALID')).toBe(true);
    await expect(stat(join(work, 'nested/escaped.txt'))).rejects.toThrow(/ENOENT/);
    await expect(stat('/abs.txt')).rejects.toThrow(/ENOENT/);
  });

  it('never writes through a symlink of the archive to outside the target, and keeps hardlinks, modes and times', async () => {
    const outside = join(work, 'outside');
    const tarPath = join(work, 'links.tar');
    execFileSync('python3', [
      '-c',
      `import tarfile, io
t = tarfile.open(${JSON.stringify(tarPath)}, 'w')
def add(name, data=None, **kw):
    info = tarfile.TarInfo(name)
    for k, v in kw.items(): setattr(info, k, v)
    if data is not None: info.size = len(data)
    t.addfile(info, io.BytesIO(data) if data is not None else None)
add('Dockerfile', b'FROM scratch\\n', mode=0o640, mtime=1000000000)
add('escape', type=tarfile.SYMTYPE, linkname=${JSON.stringify(outside)})
add('escape/planted.txt', b'planted')
add('hard', type=tarfile.LNKTYPE, linkname='Dockerfile')
t.close()`,
    ]);
    const out = join(work, 'links-out');
    await unpackContext({ stream: createReadStream(tarPath), dir: out });
    await expect(stat(join(outside, 'planted.txt'))).rejects.toThrow(/ENOENT/);
    // The symlink's absolute target is taken inside the context, as in a chroot.
    expect(await readFile(join(out, outside, 'planted.txt'), 'utf8')).toBe('planted');
    const [dockerfile, hard] = await Promise.all([stat(join(out, 'Dockerfile')), stat(join(out, 'hard'))]);
    expect(hard.ino).toBe(dockerfile.ino);
    expect(dockerfile.mode & 0o7777).toBe(0o640);
    expect(dockerfile.mtimeMs).toBe(1000000000 * 1000);
  });

  it('rejects garbage and a missing Dockerfile, and falls back to the lower-case name', async () => {
    const garbage = join(work, 'garbage');
    await writeFile(garbage, 'this is not a tar archive at all'.repeat(40));
    let caught: unknown;
    try {
      await unpackContext({ stream: createReadStream(garbage), dir: join(work, 'g') });
    } catch (err) {
      caught = err;
    }
    expect(hasCode(caught, 'ERR_BUILD_CONTEXT_INVALID')).toBe(true);

    const tarPath = join(work, 'lower.tar');
    await writeFile(join(work, 'dockerfile'), 'FROM busybox\n');
    execFileSync('tar', ['-C', work, '-cf', tarPath, 'dockerfile']);
    expect((await unpackContext({ stream: createReadStream(tarPath), dir: join(work, 'l') })).dockerfile).toEqual({ name: 'dockerfile', text: 'FROM busybox\n' });

    caught = undefined;
    try {
      await unpackContext({ stream: createReadStream(tarPath), dir: join(work, 'm'), dockerfile: 'build/Dockerfile.dev' });
    } catch (err) {
      caught = err;
    }
    expect(hasKind(caught, 'NotFound')).toBe(true);
    expect((caught as Error).message).toBe('cannot locate specified Dockerfile: build/Dockerfile.dev');
  });
});

describe('isTarArchive (ADD auto-extraction)', () => {
  it.skipIf(!['gzip', 'xz', 'bzip2', 'zstd'].every(have))('recognises plain and compressed tars by content, not by name (skipped without gzip, xz, bzip2 and zstd)', async () => {
    const made: Array<[string, boolean]> = [];
    execFileSync('tar', ['-C', ctx, '-cf', join(work, 'a.tar'), 'src']);
    made.push(['a.tar', true]);
    for (const [tool, ext] of [
      ['gzip', 'gz'],
      ['xz', 'xz'],
      ['bzip2', 'bz2'],
      ['zstd', 'zst'],
    ] as const) {
      execFileSync('sh', ['-c', `${tool} -c ${join(work, 'a.tar')} > ${join(work, `a.tar.${ext}`)}`]);
      made.push([`a.tar.${ext}`, true]);
    }
    await writeFile(join(work, 'notes.tar'), 'plain text, named like a tar\n'.repeat(30));
    execFileSync('sh', ['-c', `gzip -c ${join(work, 'notes.tar')} > ${join(work, 'notes.gz')}`]);
    made.push(['notes.tar', false], ['notes.gz', false]);
    for (const [name, expected] of made) expect(await isTarArchive(join(work, name)), name).toBe(expected);
  });
});

describe('fetchRemoteSource (ADD <url>)', () => {
  let server: Server;
  let base: string;
  const body = Buffer.from('remote content\n');
  const sha = 'sha256:' + execFileSync('sha256sum', { input: body, encoding: 'utf8' }).split(' ')[0];

  beforeEach(async () => {
    server = createServer((req, res) => {
      if (req.url === '/files/tool.tar.gz') {
        res.writeHead(200, { 'last-modified': 'Wed, 21 Oct 2015 07:28:00 GMT' });
        res.end(body);
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(async () => {
    await new Promise((r) => server.close(r));
  });

  it('downloads with mode 0600 and Last-Modified as mtime, verifying --checksum', async () => {
    const got = await fetchRemoteSource({ url: `${base}/files/tool.tar.gz`, checksum: sha, dir: work });
    expect(got).toMatchObject({ filename: 'tool.tar.gz', digest: sha, size: body.length, path: join(work, 'tool.tar.gz') });
    const st = await stat(got.path);
    expect(st.mode & 0o777).toBe(0o600);
    expect(st.mtime.toISOString()).toBe('2015-10-21T07:28:00.000Z');
    expect(await readFile(got.path)).toEqual(body);
  });

  it('refuses a checksum mismatch and leaves no file, and reports 404 as NotFound', async () => {
    const wrong = 'sha256:' + '0'.repeat(64);
    let caught: unknown;
    try {
      await fetchRemoteSource({ url: `${base}/files/tool.tar.gz`, checksum: wrong, dir: work });
    } catch (err) {
      caught = err;
    }
    expect(hasCode(caught, 'ERR_BUILD_CHECKSUM_MISMATCH')).toBe(true);
    expect((caught as Error).message).toContain(`expected ${wrong}, got ${sha}`);
    expect((await readdir(work)).filter((f) => f.includes('tool'))).toEqual([]);

    caught = undefined;
    try {
      await fetchRemoteSource({ url: `${base}/missing`, dir: work });
    } catch (err) {
      caught = err;
    }
    expect(hasKind(caught, 'NotFound')).toBe(true);
    await expect(fetchRemoteSource({ url: `${base}/x`, checksum: 'md5:abc', dir: work })).rejects.toThrow(/invalid checksum/);
  });

  it('names the file after the URL path', () => {
    expect(remoteFileName('https://example.com/a/b/file%20name.tgz?x=1')).toBe('file name.tgz');
    expect(remoteFileName('https://example.com/')).toBe('__unnamed__');
  });
});
