import { createHash } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync, zstdCompressSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Digest } from '@berth/oci';
import { TarEntryType, packTar, type TarEntry, type TarInput } from '@berth/store';
import { FsOps, UnpackMode, unpackLayer } from './index.js';

let dir: string;
let target: string;
let outside: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-unpack-'));
  target = join(dir, 'root');
  outside = join(dir, 'outside');
  await mkdir(target);
  await mkdir(outside);
  await writeFile(join(outside, 'secret'), 'secret');
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const base = { size: 0, mode: 0o644, uid: 0, gid: 0, mtime: 1700000000 };
const file = (path: string, content: string, extra: Partial<TarEntry> = {}): TarInput => ({
  entry: { ...base, path, type: TarEntryType.File, size: Buffer.byteLength(content), ...extra },
  body: Buffer.from(content),
});
const directory = (path: string, extra: Partial<TarEntry> = {}): TarInput => ({ entry: { ...base, mode: 0o755, path, type: TarEntryType.Directory, ...extra } });
const symlink = (path: string, linkpath: string): TarInput => ({ entry: { ...base, mode: 0o777, path, type: TarEntryType.Symlink, linkpath } });
const hardlink = (path: string, linkpath: string): TarInput => ({ entry: { ...base, path, type: TarEntryType.Hardlink, linkpath } });
const whiteout = (path: string): TarInput => file(path, '');

async function tarBytes(entries: TarInput[]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of packTar(entries)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}` as Digest;

async function apply(entries: TarInput[], mode: UnpackMode = UnpackMode.Copy, into = target, extra: object = {}) {
  return unpackLayer({ source: Readable.from([await tarBytes(entries)]), target: into, mode, ...extra });
}

async function outsideUntouched(): Promise<void> {
  expect((await readdir(outside)).sort()).toEqual(['secret']);
  expect(await readFile(join(outside, 'secret'), 'utf8')).toBe('secret');
  expect((await stat(join(outside, 'secret'))).nlink).toBe(1);
}

describe('unpackLayer', () => {
  const capability = Buffer.from([0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  const rich: TarInput[] = [
    directory('usr/', { uid: 5, gid: 6, mtime: 1600000000 }),
    directory('usr/bin/', { mode: 0o750, mtime: 1600000001 }),
    file('usr/bin/ping', 'ping!', { mode: 0o4755, uid: 0, gid: 0, mtime: 1600000002, xattrs: new Map([['security.capability', capability]]) }),
    file('usr/bin/tool', 'tool', { mode: 0o2711, uid: 1000, gid: 1001, mtime: 1600000003, xattrs: new Map([['user.origin', Buffer.from('layer')]]) }),
    hardlink('usr/bin/tool2', 'usr/bin/tool'),
    symlink('usr/bin/sh', '/bin/busybox'),
    { entry: { ...base, path: 'dev/null', type: TarEntryType.CharDevice, mode: 0o666, devmajor: 1, devminor: 3 } },
    { entry: { ...base, path: 'dev/sda', type: TarEntryType.BlockDevice, mode: 0o660, gid: 6, devmajor: 8, devminor: 0 } },
    { entry: { ...base, path: 'run/fifo', type: TarEntryType.Fifo, mode: 0o620, uid: 7 } },
    file('tmp-sticky/x', 'x'),
    directory('tmp-sticky/', { mode: 0o1777 }),
  ];

  for (const compression of ['none', 'gzip', 'zstd'] as const) {
    it(`keeps owners, modes, times, xattrs, links, devices and fifos (${compression})`, async () => {
      const tar = await tarBytes(rich);
      const blob = compression === 'gzip' ? gzipSync(tar) : compression === 'zstd' ? zstdCompressSync(tar) : tar;
      const result = await unpackLayer({ source: Readable.from([blob]), target, mode: UnpackMode.Overlay, diffId: sha(tar) });
      expect(result).toEqual({ diffId: sha(tar), size: tar.length, entries: rich.length });

      const usr = await stat(join(target, 'usr'));
      expect([usr.uid, usr.gid, usr.mtimeMs / 1000, usr.mode & 0o7777]).toEqual([5, 6, 1600000000, 0o755]);
      expect((await stat(join(target, 'usr/bin'))).mode & 0o7777).toBe(0o750);
      const ping = await stat(join(target, 'usr/bin/ping'));
      expect([ping.mode & 0o7777, ping.mtimeMs / 1000]).toEqual([0o4755, 1600000002]);
      expect(await readFile(join(target, 'usr/bin/ping'), 'utf8')).toBe('ping!');
      const tool = await stat(join(target, 'usr/bin/tool'));
      expect([tool.mode & 0o7777, tool.uid, tool.gid, tool.nlink]).toEqual([0o2711, 1000, 1001, 2]);
      expect((await stat(join(target, 'usr/bin/tool2'))).ino).toBe(tool.ino);
      expect(await readlink(join(target, 'usr/bin/sh'))).toBe('/bin/busybox');
      const nul = await lstat(join(target, 'dev/null'));
      expect(nul.isCharacterDevice()).toBe(true);
      expect([nul.rdev >> 8, nul.rdev & 0xff, nul.mode & 0o7777]).toEqual([1, 3, 0o666]);
      const sda = await lstat(join(target, 'dev/sda'));
      expect([sda.isBlockDevice(), sda.rdev >> 8, sda.gid]).toEqual([true, 8, 6]);
      const fifo = await lstat(join(target, 'run/fifo'));
      expect([fifo.isFIFO(), fifo.mode & 0o7777, fifo.uid]).toEqual([true, 0o620, 7]);
      expect((await stat(join(target, 'tmp-sticky'))).mode & 0o7777).toBe(0o1777);

      const ops = await FsOps.start();
      try {
        expect((await ops.listXattrs(join(target, 'usr/bin/ping'))).get('security.capability')).toEqual(capability);
        expect((await ops.getXattr(join(target, 'usr/bin/tool'), 'user.origin'))?.toString()).toBe('layer');
      } finally {
        await ops.close();
      }
    });
  }

  it('refuses a layer whose content does not match its diff ID', async () => {
    const tar = await tarBytes([file('a', 'a')]);
    await expect(unpackLayer({ source: Readable.from([tar]), target, mode: UnpackMode.Copy, diffId: sha(Buffer.from('other')) })).rejects.toMatchObject({
      code: 'ERR_DIFF_ID_MISMATCH',
    });
  });

  it('takes the metadata of implied parent directories from the lower layers in overlay mode', async () => {
    const lower = join(dir, 'lower');
    await mkdir(lower);
    await apply([directory('tmp/', { mode: 0o1777, uid: 3, mtime: 1500000000 })], UnpackMode.Overlay, lower);
    await apply([file('tmp/new', 'n'), file('opt/x', 'x')], UnpackMode.Overlay, target, { lowerDirs: [lower] });
    const tmp = await stat(join(target, 'tmp'));
    expect([tmp.mode & 0o7777, tmp.uid, tmp.mtimeMs / 1000]).toEqual([0o1777, 3, 1500000000]);
    expect((await stat(join(target, 'opt'))).mode & 0o7777).toBe(0o755);
  });
});

describe('whiteouts', () => {
  const lowerLayer = [directory('etc/'), file('etc/keep', 'k'), file('etc/gone', 'g'), directory('var/'), file('var/old', 'o'), directory('var/sub/'), file('var/sub/deep', 'd')];
  const upperLayer = [whiteout('etc/.wh.gone'), whiteout('var/.wh..wh..opq'), file('var/new', 'n'), directory('var/sub/'), file('var/sub/fresh', 'f'), whiteout('.wh..wh.plnk')];

  it('become overlayfs whiteouts and opaque directories in overlay mode', async () => {
    await apply(upperLayer, UnpackMode.Overlay);
    const gone = await lstat(join(target, 'etc/gone'));
    expect(gone.isCharacterDevice()).toBe(true);
    expect(gone.rdev).toBe(0);
    expect(await readdir(join(target, 'etc'))).toEqual(['gone']);
    const ops = await FsOps.start();
    try {
      expect((await ops.getXattr(join(target, 'var'), 'trusted.overlay.opaque'))?.toString()).toBe('y');
      expect(await ops.getXattr(join(target, 'var/sub'), 'trusted.overlay.opaque')).toBeUndefined();
    } finally {
      await ops.close();
    }
    expect((await readdir(join(target, 'var'))).sort()).toEqual(['new', 'sub']);
    expect(await readdir(target)).not.toContain('.wh..wh.plnk');
  });

  it('are applied to the tree in copy mode', async () => {
    await apply(lowerLayer, UnpackMode.Copy);
    await apply(upperLayer, UnpackMode.Copy);
    expect(await readdir(join(target, 'etc'))).toEqual(['keep']);
    expect((await readdir(join(target, 'var'))).sort()).toEqual(['new', 'sub']);
    expect(await readdir(join(target, 'var/sub'))).toEqual(['fresh']);
  });

  it('drop overlay xattrs a layer tries to set itself', async () => {
    await apply([directory('d/', { xattrs: new Map([['trusted.overlay.opaque', Buffer.from('y')], ['trusted.overlay.redirect', Buffer.from('/etc')]]) })], UnpackMode.Overlay);
    const ops = await FsOps.start();
    try {
      expect([...(await ops.listXattrs(join(target, 'd'))).keys()].filter((k) => k.startsWith('trusted.overlay.'))).toEqual([]);
    } finally {
      await ops.close();
    }
  });
});

describe('hostile layers', () => {
  it('refuses .. that climbs out of the root', async () => {
    await expect(apply([file('../escape', 'x')])).rejects.toMatchObject({ code: 'ERR_LAYER_PATH_ESCAPE' });
    await expect(apply([file('a/../../escape', 'x')])).rejects.toMatchObject({ code: 'ERR_LAYER_PATH_ESCAPE' });
    await expect(apply([whiteout('../.wh.secret')], UnpackMode.Copy)).rejects.toMatchObject({ code: 'ERR_LAYER_PATH_ESCAPE' });
    expect(await readdir(dir)).toEqual(expect.arrayContaining(['outside', 'root']));
    expect(await readdir(dir)).toHaveLength(2);
    await outsideUntouched();
  });

  it('writes absolute names inside the root', async () => {
    await apply([file(`${outside}/secret`, 'pwned'), file('/etc/abs', 'inside')]);
    expect(await readFile(join(target, outside, 'secret'), 'utf8')).toBe('pwned');
    expect(await readFile(join(target, 'etc/abs'), 'utf8')).toBe('inside');
    await outsideUntouched();
  });

  for (const mode of [UnpackMode.Copy, UnpackMode.Overlay]) {
    it(`does not write through a symlink pointing out, absolute or relative (${mode})`, async () => {
      await apply([symlink('abs', outside), file('abs/pwned', 'x'), symlink('rel', '../../../../../../..' + outside), file('rel/pwned2', 'y')], mode);
      await outsideUntouched();
      expect(await readFile(join(target, outside, 'pwned'), 'utf8')).toBe('x');
      expect(await readFile(join(target, outside, 'pwned2'), 'utf8')).toBe('y');
    });
  }

  it('does not write through a symlink an earlier layer left pointing out', async () => {
    await apply([symlink('evil', outside), symlink('evil-file', join(outside, 'secret'))], UnpackMode.Copy);
    await apply([file('evil/pwned', 'x'), directory('evil/dir/'), file('evil-file', 'replaced')], UnpackMode.Copy);
    await outsideUntouched();
    expect(await readFile(join(target, outside, 'pwned'), 'utf8')).toBe('x');
    // The file replaced the symlink itself instead of writing to its target.
    expect((await lstat(join(target, 'evil-file'))).isFile()).toBe(true);
  });

  it('does not apply whiteouts through a symlink pointing out', async () => {
    await apply([symlink('evil', outside)], UnpackMode.Copy);
    await apply([whiteout('evil/.wh.secret'), whiteout('evil/.wh..wh..opq')], UnpackMode.Copy);
    await outsideUntouched();
  });

  it('refuses hardlinks to files outside the root', async () => {
    await expect(apply([hardlink('h', '../outside/secret')])).rejects.toMatchObject({ code: 'ERR_LAYER_PATH_ESCAPE' });
    await expect(apply([hardlink('h', `${outside}/secret`)])).rejects.toMatchObject({ code: 'ERR_INVALID_LAYER' });
    await expect(apply([symlink('d', outside), hardlink('h', 'd/secret')])).rejects.toMatchObject({ code: 'ERR_INVALID_LAYER' });
    await expect(apply([symlink('s', `${outside}/secret`), hardlink('h', 's'), file('h', 'overwrite')])).resolves.toBeTruthy();
    await outsideUntouched();
  });

  it('stops at symlink loops', async () => {
    await expect(apply([symlink('a', 'b'), symlink('b', 'a'), file('a/x', 'x')])).rejects.toMatchObject({ code: 'ERR_INVALID_LAYER' });
  });

  it('follows symlinks that stay inside, as a usrmerge layout needs', async () => {
    await apply([directory('usr/'), directory('usr/lib/'), symlink('lib', 'usr/lib'), file('lib/libc.so', 'c'), symlink('lib64', '/usr/lib'), file('lib64/ld.so', 'ld')]);
    expect(await readFile(join(target, 'usr/lib/libc.so'), 'utf8')).toBe('c');
    expect(await readFile(join(target, 'usr/lib/ld.so'), 'utf8')).toBe('ld');
    expect((await lstat(join(target, 'lib'))).isSymbolicLink()).toBe(true);
  });

  it('replaces a directory by a file and a file by a directory, as docker does', async () => {
    await apply([directory('x/'), file('x/inner', 'i'), file('y', 'y')]);
    await apply([file('x', 'now a file'), directory('y/'), file('y/z', 'z')]);
    expect(await readFile(join(target, 'x'), 'utf8')).toBe('now a file');
    expect(await readFile(join(target, 'y/z'), 'utf8')).toBe('z');
    expect((await lstat(join(target, 'y'))).mode & fsConstants.S_IFMT).toBe(fsConstants.S_IFDIR);
  });
});
