import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile, link, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TarEntryType, TarReader, packTar, type TarEntry, type TarInput } from './index.js';

const run = promisify(execFile);
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-tar-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function readAll(stream: Readable): Promise<Array<{ entry: TarEntry; data: Buffer }>> {
  const out: Array<{ entry: TarEntry; data: Buffer }> = [];
  await pipeline(
    stream,
    new TarReader((entry) => {
      const chunks: Buffer[] = [];
      return {
        write: (c) => void chunks.push(Buffer.from(c)),
        end: () => void out.push({ entry, data: Buffer.concat(chunks) }),
      };
    }),
  );
  return out;
}

const longDir = 'a'.repeat(60) + '/' + 'b'.repeat(60) + '/' + 'c'.repeat(60);
const capability = Buffer.from([0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

const inputs: TarInput[] = [
  { entry: { path: 'etc/', type: TarEntryType.Directory, size: 0, mode: 0o755, uid: 0, gid: 0, mtime: 1700000000 } },
  {
    entry: { path: 'etc/passwd', type: TarEntryType.File, size: 5, mode: 0o644, uid: 0, gid: 0, uname: 'root', gname: 'root', mtime: 1700000001 },
    body: Buffer.from('root\n'),
  },
  {
    entry: {
      path: 'bin/ping',
      type: TarEntryType.File,
      size: 3,
      mode: 0o4755,
      uid: 0,
      gid: 0,
      mtime: 1700000002,
      xattrs: new Map([
        ['security.capability', capability],
        ['user.note', Buffer.from('hé\nllo')],
      ]),
    },
    body: [Buffer.from('p'), Buffer.from('in')],
  },
  { entry: { path: 'bin/sh', type: TarEntryType.Symlink, size: 0, mode: 0o777, uid: 0, gid: 0, mtime: 1700000003, linkpath: '/bin/busybox' } },
  { entry: { path: 'etc/passwd-', type: TarEntryType.Hardlink, size: 0, mode: 0o644, uid: 0, gid: 0, mtime: 1700000001, linkpath: 'etc/passwd' } },
  { entry: { path: 'dev/null', type: TarEntryType.CharDevice, size: 0, mode: 0o666, uid: 0, gid: 0, mtime: 1700000004, devmajor: 1, devminor: 3 } },
  { entry: { path: 'run/fifo', type: TarEntryType.Fifo, size: 0, mode: 0o600, uid: 0, gid: 0, mtime: 1700000005 } },
  { entry: { path: `${longDir}/${'d'.repeat(120)}.txt`, type: TarEntryType.File, size: 1, mode: 0o600, uid: 3000000, gid: 70000000, mtime: 1700000006 }, body: Buffer.from('x') },
  { entry: { path: 'long-link', type: TarEntryType.Symlink, size: 0, mode: 0o777, uid: 0, gid: 0, mtime: 1700000007, linkpath: `../${'l'.repeat(150)}` } },
];

describe('tar codec', () => {
  it('round-trips every entry type, long names, large ids and binary xattrs', async () => {
    const read = await readAll(packTar(inputs));
    expect(read).toHaveLength(inputs.length);
    read.forEach(({ entry, data }, i) => {
      const want = inputs[i]!;
      expect(entry).toEqual(want.entry);
      const body = want.body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(want.body) ? want.body : Buffer.concat([...(want.body as Buffer[])]);
      expect(data.equals(body)).toBe(true);
    });
  });

  it('writes archives GNU tar reads', async () => {
    const archive = join(dir, 'a.tar');
    const chunks: Buffer[] = [];
    for await (const c of packTar(inputs)) chunks.push(c as Buffer);
    await writeFile(archive, Buffer.concat(chunks));
    const { stdout } = await run('tar', ['-tvf', archive, '--numeric-owner']);
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(inputs.length);
    expect(lines[2]).toMatch(/^-rwsr-xr-x 0\/0 +3 .* bin\/ping$/);
    expect(lines[4]).toMatch(/etc\/passwd- link to etc\/passwd$/);
    expect(lines[5]).toMatch(/^crw-rw-rw- 0\/0 +1,3 .* dev\/null$/);
    expect(lines[7]).toContain(`3000000/70000000`);
    expect(lines[7]).toContain(`${longDir}/${'d'.repeat(120)}.txt`);
    expect(lines[8]).toContain(`long-link -> ../${'l'.repeat(150)}`);
  });

  it('reads what GNU tar writes, in gnu and pax formats, with hardlinks and long names', async () => {
    const src = join(dir, 'src');
    await mkdir(join(src, longDir), { recursive: true });
    await writeFile(join(src, longDir, 'file.txt'), 'hello');
    await link(join(src, longDir, 'file.txt'), join(src, 'hard'));
    await symlink(`/${'t'.repeat(120)}`, join(src, 'sym'));
    await utimes(join(src, 'hard'), 1600000000, 1600000000);
    for (const format of ['gnu', 'pax']) {
      const archive = join(dir, `${format}.tar`);
      await run('tar', [`--format=${format}`, '-C', src, '-cf', archive, '.']);
      const read = await readAll(createReadStream(archive));
      const byPath = new Map(read.map((r) => [r.entry.path.replace(/^\.\//, ''), r]));
      const file = byPath.get(`${longDir}/file.txt`) ?? byPath.get('hard')!;
      expect(file.entry.type).toBe(TarEntryType.File);
      expect(file.entry.mtime).toBe(1600000000);
      expect(file.data.toString()).toBe('hello');
      const other = byPath.get('hard')?.entry.type === TarEntryType.Hardlink ? byPath.get('hard')! : byPath.get(`${longDir}/file.txt`)!;
      expect(other.entry.type).toBe(TarEntryType.Hardlink);
      expect(byPath.get('sym')!.entry).toMatchObject({ type: TarEntryType.Symlink, linkpath: `/${'t'.repeat(120)}` });
      expect(byPath.get(`${longDir}/`)?.entry.type ?? byPath.get(longDir)?.entry.type).toBe(TarEntryType.Directory);
    }
  });

  it('refuses corrupt and truncated streams', async () => {
    const chunks: Buffer[] = [];
    for await (const c of packTar(inputs.slice(0, 2))) chunks.push(c as Buffer);
    const whole = Buffer.concat(chunks);
    const corrupt = Buffer.from(whole);
    corrupt[600] ^= 0xff;
    await expect(readAll(Readable.from([corrupt]))).rejects.toMatchObject({ code: 'ERR_INVALID_TAR' });
    await expect(readAll(Readable.from([whole.subarray(0, 1030)]))).rejects.toMatchObject({ code: 'ERR_INVALID_TAR' });
    await expect(readAll(Readable.from([Buffer.alloc(0)]))).rejects.toMatchObject({ code: 'ERR_INVALID_TAR' });
    await expect(readAll(Readable.from([Buffer.alloc(1024)]))).resolves.toEqual([]);
  });

  it('refuses content that does not match the header size', async () => {
    const bad: TarInput = { entry: { path: 'f', type: TarEntryType.File, size: 10, mode: 0o644, uid: 0, gid: 0, mtime: 0 }, body: Buffer.from('short') };
    await expect(readAll(packTar([bad]))).rejects.toMatchObject({ code: 'ERR_INVALID_TAR' });
  });

  it('feeds content in slices of any size and waits for slow sinks', async () => {
    const chunks: Buffer[] = [];
    for await (const c of packTar(inputs)) chunks.push(c as Buffer);
    const whole = Buffer.concat(chunks);
    const pieces: Buffer[] = [];
    for (let i = 0; i < whole.length; i += 7) pieces.push(whole.subarray(i, i + 7));
    const seen: string[] = [];
    await pipeline(
      Readable.from(pieces),
      new TarReader(async (entry) => {
        await new Promise((r) => setTimeout(r, 1));
        seen.push(entry.path);
        return { write: async () => void (await new Promise((r) => setImmediate(r))), end: () => {} };
      }),
    );
    expect(seen).toEqual(inputs.map((i) => i.entry.path));
  });
});
