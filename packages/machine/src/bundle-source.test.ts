import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalBundleSource, readBundleManifest } from './bundle-source.js';

const run = promisify(execFile);
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-bundles-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

// A bundle as tools/src/engine-bundle.ts lays it out: manifest.json first.
async function bundle(file: string, arch: string, first = 'manifest.json'): Promise<void> {
  const stage = join(dir, `stage-${arch}-${first}`);
  await mkdir(join(stage, 'berth-engine/bin'), { recursive: true });
  await writeFile(join(stage, 'berth-engine/manifest.json'), JSON.stringify({ name: 'berth-engine', version: '1.2.3', arch }));
  await writeFile(join(stage, 'berth-engine/bin/engine'), '#!/bin/sh\n', { mode: 0o755 });
  const entries = first === 'manifest.json' ? ['berth-engine/manifest.json', 'berth-engine/bin'] : ['berth-engine/bin', 'berth-engine/manifest.json'];
  await run('tar', ['-czf', file, '-C', stage, ...entries]);
}

describe('engine bundles', () => {
  it('reads the manifest from the first tar entry', async () => {
    await bundle(join(dir, 'b.tar.gz'), 'arm64');
    expect(await readBundleManifest(join(dir, 'b.tar.gz'))).toEqual({ name: 'berth-engine', version: '1.2.3', arch: 'arm64' });
    await bundle(join(dir, 'late.tar.gz'), 'x64', 'bin');
    await expect(readBundleManifest(join(dir, 'late.tar.gz'))).rejects.toMatchObject({ code: 'ERR_BUNDLE_INVALID' });
    await writeFile(join(dir, 'junk.tar.gz'), 'not gzip');
    await expect(readBundleManifest(join(dir, 'junk.tar.gz'))).rejects.toMatchObject({ code: 'ERR_BUNDLE_INVALID', message: expect.stringContaining('junk.tar.gz') });
  });

  it('finds the bundle for an architecture in files and directories, in order', async () => {
    await mkdir(join(dir, 'bundles'));
    await bundle(join(dir, 'bundles', 'berth-engine-linux-x64.tar.gz'), 'x64');
    await bundle(join(dir, 'my-arm.tar.gz'), 'arm64');
    const source = new LocalBundleSource({ paths: [join(dir, 'my-arm.tar.gz'), join(dir, 'missing'), join(dir, 'bundles')], hint: 'build one' });
    expect(await source.resolve('arm64')).toMatchObject({ path: join(dir, 'my-arm.tar.gz'), arch: 'arm64', version: '1.2.3' });
    expect(await source.resolve('x64')).toMatchObject({ path: join(dir, 'bundles', 'berth-engine-linux-x64.tar.gz') });
    await expect(source.resolve('s390x')).rejects.toMatchObject({ code: 'ERR_BUNDLE_NOT_FOUND', message: expect.stringMatching(/linux\/s390x.*missing.*build one/s) });
  });
});
