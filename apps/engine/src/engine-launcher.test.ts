import { spawnSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The launcher bin/engine.js must refuse a Node.js older than 22.19 (undici 8's floor) and run
// the bundle on 22.19 and later. It runs here from a copy in a temporary directory with a stub
// bundle and no .node/ above it, under this Node made to report another version.
const launcher = fileURLToPath(new URL('../bin/engine.js', import.meta.url));
let dir = '';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-launcher-'));
  await mkdir(join(dir, 'bin'));
  await mkdir(join(dir, 'dist'));
  await copyFile(launcher, join(dir, 'bin', 'engine.js'));
  await copyFile(join(dirname(launcher), 'package.json'), join(dir, 'bin', 'package.json'));
  await writeFile(join(dir, 'dist', 'engine.cjs'), "process.stdout.write('bundle ran\\n');\n");
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

function launchAs(version: string) {
  const pretend = `data:text/javascript,Object.defineProperty(process.versions,'node',{value:'${version}'})`;
  return spawnSync(process.execPath, ['--import', pretend, join(dir, 'bin', 'engine.js'), 'version'], { encoding: 'utf8', cwd: dir });
}

describe('bin/engine.js', () => {
  it('refuses Node.js older than 22.19 and says what is needed', () => {
    for (const version of ['22.0.0', '22.18.1', '20.19.0']) {
      const r = launchAs(version);
      expect(r.status, version).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain(`Node.js 22.19 or later is required, this is v${version}`);
    }
  });

  it('runs the bundle on 22.19 and later', () => {
    for (const version of ['22.19.0', '22.23.5', '24.1.0']) expect(launchAs(version)).toMatchObject({ status: 0, stdout: 'bundle ran\n' });
  });
});
