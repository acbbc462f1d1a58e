import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, test } from 'vitest';
import { makeSeedIso } from './seed-iso.js';

const run = promisify(execFile);

async function missing(tool: string, args: readonly string[]): Promise<string | undefined> {
  try {
    await run(tool, [...args]);
    return undefined;
  } catch {
    return `${tool} is not installed`;
  }
}

// An independent reader of ISO 9660 (genisoimage's isoinfo), and the kernel's, where it has iso9660.
const noIsoinfo = await missing('isoinfo', ['-version']);
const kernelIso = (await readFile('/proc/filesystems', 'utf8').catch(() => '')).includes('iso9660');
const noMount = process.getuid?.() !== 0 ? 'loop mounts need root' : !kernelIso ? 'the kernel has no iso9660 filesystem' : await missing('losetup', ['--find']);

async function writeSample(dir: string): Promise<{ path: string; big: Buffer }> {
  const big = Buffer.alloc(5000, 'x');
  const path = join(dir, 'seed.iso');
  await writeFile(
    path,
    makeSeedIso([
      { name: 'user-data', data: Buffer.from('#cloud-config\nhostname: h1\n') },
      { name: 'meta-data', data: Buffer.from('instance-id: i-1\n') },
      { name: 'network-config', data: big },
    ]),
  );
  return { path, big };
}

describe('cloud-init seed ISO', () => {
  test('has the ISO 9660 signature, the cidata label and the files at sector boundaries', () => {
    const iso = makeSeedIso([{ name: 'meta-data', data: Buffer.from('instance-id: x\n') }], 'cidata');
    expect(iso.length % 2048).toBe(0);
    expect(iso.subarray(16 * 2048 + 1, 16 * 2048 + 6).toString()).toBe('CD001');
    expect(iso.subarray(16 * 2048 + 40, 16 * 2048 + 46).toString()).toBe('cidata');
    expect(iso[17 * 2048]).toBe(255);
    expect(iso.subarray(21 * 2048, 21 * 2048 + 15).toString()).toBe('instance-id: x\n');
    expect(() => makeSeedIso([{ name: 'bad name', data: Buffer.alloc(0) }])).toThrow(RangeError);
  });

  test.skipIf(noIsoinfo !== undefined)(`isoinfo reads the label, the file list and each file${noIsoinfo ? ` (skipped: ${noIsoinfo})` : ''}`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-seed-iso-'));
    try {
      const { path, big } = await writeSample(dir);
      expect((await run('isoinfo', ['-d', '-i', path])).stdout).toMatch(/Volume id: cidata/);
      const listing = (await run('isoinfo', ['-f', '-i', path])).stdout.trim().split('\n').sort();
      expect(listing).toEqual(['/META-DATA;1', '/NETWORK-CONFIG;1', '/USER-DATA;1']);
      expect((await run('isoinfo', ['-x', '/USER-DATA;1', '-i', path])).stdout).toBe('#cloud-config\nhostname: h1\n');
      const extracted = await run('isoinfo', ['-x', '/NETWORK-CONFIG;1', '-i', path], { encoding: 'buffer', maxBuffer: 1 << 20 });
      expect(Buffer.compare(extracted.stdout, big)).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test.skipIf(noMount !== undefined)(`the kernel mounts it and shows the files by their names${noMount ? ` (skipped: ${noMount})` : ''}`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-seed-iso-'));
    const mnt = join(dir, 'mnt');
    await mkdir(mnt);
    let mounted = false;
    try {
      const { path, big } = await writeSample(dir);
      await run('mount', ['-o', 'loop,ro', '-t', 'iso9660', path, mnt]);
      mounted = true;
      expect((await readdir(mnt)).sort()).toEqual(['meta-data', 'network-config', 'user-data']);
      expect(await readFile(join(mnt, 'user-data'), 'utf8')).toBe('#cloud-config\nhostname: h1\n');
      expect(await readFile(join(mnt, 'network-config'))).toEqual(big);
      const { stdout } = await run('blkid', ['-o', 'value', '-s', 'LABEL', path]);
      expect(stdout.trim()).toBe('cidata');
    } finally {
      if (mounted) await run('umount', [mnt]);
      await rm(dir, { recursive: true, force: true });
    }
  });
});
