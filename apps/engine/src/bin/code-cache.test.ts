import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The built entry dist/engine.cjs runs dist/cli.cjs (dist/run.cjs for run and create) with a code
// cache per command. It runs here
// from a copy of the app's bin/ and dist/ in a temporary directory, with a cache directory of its own.
const appDir = fileURLToPath(new URL('../..', import.meta.url));
const built = ['cli.cjs', 'run.cjs', 'engine.cjs'].every((f) => existsSync(join(appDir, 'dist', f)));
const skip = built ? undefined : `${join(appDir, 'dist')} holds no built CLI: npx nx run @berth/engine-cli:build`;
let dir = '';

beforeAll(async () => {
  if (!built) return;
  dir = await mkdtemp(join(tmpdir(), 'berth-code-cache-'));
  await mkdir(join(dir, 'app', 'bin'), { recursive: true });
  await mkdir(join(dir, 'app', 'dist'));
  for (const file of ['bin/engine.js', 'bin/package.json', 'dist/engine.cjs', 'dist/cli.cjs', 'dist/run.cjs']) await copyFile(join(appDir, file), join(dir, 'app', file));
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

function engine(cache: string, args: readonly string[], env: NodeJS.ProcessEnv = {}, nodeFlags: readonly string[] = []) {
  const { NODE_DISABLE_COMPILE_CACHE: _, ...base } = process.env;
  return spawnSync(process.execPath, [...nodeFlags, join(dir, 'app', 'bin', 'engine.js'), ...args], { encoding: 'utf8', env: { ...base, XDG_CACHE_HOME: cache, ...env } });
}

/** Every cache file under a cache home, by its path below berth/code. */
async function cacheFiles(cache: string): Promise<string[]> {
  const root = join(cache, 'berth', 'code');
  if (!existsSync(root)) return [];
  const files: string[] = [];
  for (const bundleDir of await readdir(root)) for (const file of await readdir(join(root, bundleDir))) files.push(`${bundleDir}/${file}`);
  return files.sort();
}

describe.skipIf(!!skip)('the code cache of dist/engine.cjs', () => {
  it('is written when a command first exits and read, unchanged, at its next start', async () => {
    const cache = join(dir, 'first');
    const first = engine(cache, ['help']);
    expect(first.status).toBe(0);
    expect(first.stdout).toContain('Usage:  engine [OPTIONS] COMMAND');
    const files = await cacheFiles(cache);
    expect(files).toEqual([expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{8}\/help\.[0-9a-f]+\.bin$/)]);
    const file = join(cache, 'berth', 'code', files[0]!);
    const before = await stat(file);
    expect(before.size).toBeGreaterThan(10_000);
    expect(before.mode & 0o777).toBe(0o600);
    expect((await stat(join(cache, 'berth', 'code'))).mode & 0o777).toBe(0o700);

    const second = engine(cache, ['help']);
    expect(second.status).toBe(0);
    expect(second.stdout).toBe(first.stdout);
    // Accepted by V8, so not written again.
    const after = await stat(file);
    expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);
  });

  it('keeps one cache per command, named past the global flags, run and create in the run bundle', async () => {
    const cache = join(dir, 'per-command');
    expect(engine(cache, ['--config', join(dir, 'no-docker-config'), 'image', 'ls', '--help']).status).toBe(0);
    const run = engine(cache, ['-l', 'error', 'run', '--no-such-flag', 'busybox']);
    expect(run.status).toBe(125);
    expect(run.stderr).toBe("engine: unknown flag: --no-such-flag\nSee 'engine run --help'.\n");
    expect(engine(cache, ['create', '--no-such-flag']).status).toBe(125);
    // One directory per bundle: image ls ran from dist/cli.cjs, run and create from dist/run.cjs;
    // their help from dist/cli.cjs, which has it.
    const help = engine(cache, ['run', '--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('Usage:  engine run [OPTIONS] IMAGE [COMMAND] [ARG...]');
    const byBundle = new Map<string, string[]>();
    for (const f of await cacheFiles(cache)) {
      const [bundle, name] = f.split('/') as [string, string];
      byBundle.set(bundle, [...(byBundle.get(bundle) ?? []), name.split('.')[0]!]);
    }
    expect([...byBundle.values()].map((names) => names.sort()).sort()).toEqual([['create', 'run'], ['image-ls', 'run']]);
  });

  it('keeps a cache per set of V8 flags, so runs under other flags do not replace it', async () => {
    const cache = join(dir, 'flags');
    expect(engine(cache, ['help']).status).toBe(0);
    const [plain] = await cacheFiles(cache);
    const before = await stat(join(cache, 'berth', 'code', plain!));
    expect(engine(cache, ['help'], {}, ['--min-semi-space-size=16']).status).toBe(0);
    const files = await cacheFiles(cache);
    expect(files).toHaveLength(2);
    expect(engine(cache, ['help']).status).toBe(0);
    const after = await stat(join(cache, 'berth', 'code', plain!));
    expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);
  });

  it('replaces a cache V8 rejects, and the command still runs', async () => {
    const cache = join(dir, 'corrupt');
    expect(engine(cache, ['help']).status).toBe(0);
    const file = join(cache, 'berth', 'code', (await cacheFiles(cache))[0]!);
    await writeFile(file, 'not a code cache');
    const run = engine(cache, ['help']);
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('Usage:  engine [OPTIONS] COMMAND');
    expect((await readFile(file)).length).toBeGreaterThan(10_000);
  });

  it('drops the caches of an earlier build of the same bundle', async () => {
    const cache = join(dir, 'rebuilt');
    expect(engine(cache, ['help']).status).toBe(0);
    const [old] = await cacheFiles(cache);
    const later = new Date(Date.now() + 60_000);
    await utimes(join(dir, 'app', 'dist', 'cli.cjs'), later, later);
    expect(engine(cache, ['help']).status).toBe(0);
    const now = await cacheFiles(cache);
    expect(now).toHaveLength(1);
    expect(now[0]!.split('/')[0]).not.toBe(old!.split('/')[0]);
  });

  it('is not used in a directory that other users could write, nor in another user\'s home, nor when Node is told to cache nothing', async () => {
    const shared = join(dir, 'shared');
    await mkdir(join(shared, 'berth', 'code'), { recursive: true });
    await chmod(join(shared, 'berth', 'code'), 0o777);
    expect(engine(shared, ['help']).status).toBe(0);
    expect(await cacheFiles(shared)).toEqual([]);

    // A home that is another user's, as `sudo engine` may keep it.
    const theirs = join(dir, 'theirs');
    await mkdir(theirs);
    await chown(theirs, 4321, 4321);
    expect(engine(join(dir, 'unused'), ['help'], { XDG_CACHE_HOME: '', HOME: theirs }).status).toBe(0);
    expect(await readdir(theirs)).toEqual([]);

    const off = join(dir, 'off');
    expect(engine(off, ['help'], { NODE_DISABLE_COMPILE_CACHE: '1' }).status).toBe(0);
    expect(existsSync(join(off, 'berth'))).toBe(false);
  });
});

// Where the CLI is not built, the report says why.
if (skip) {
  describe('the code cache of dist/engine.cjs', () => {
    it.skip(`cannot run here: ${skip}`, () => {});
  });
}
