import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { acquireFileLock, randomBelow, randomBytes, randomHex, readJsonFile, removeFile, removeTree, tryAcquireFileLock, withFileLock, writeJsonAtomic } from './index.js';

const dist = fileURLToPath(new URL('../dist/index.js', import.meta.url));
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-fsutil-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function node(script: string): Promise<number> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: 'inherit' });
  return new Promise((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
}

describe('writeJsonAtomic', () => {
  it('replaces the file and leaves no temporary behind', async () => {
    const path = join(dir, 'index.json');
    await writeJsonAtomic(path, { a: 1 });
    await writeJsonAtomic(path, { a: 2 });
    expect(await readJsonFile(path)).toEqual({ a: 2 });
    expect(await readdir(dir)).toEqual(['index.json']);
    expect(await readJsonFile(join(dir, 'missing.json'))).toBeUndefined();
  });
});

describe('removeTree', () => {
  it('removes a tree, its unreadable directories and its links, not what they point to', async () => {
    const outside = join(dir, 'outside');
    await mkdir(outside);
    await writeFile(join(outside, 'kept'), 'x');
    const tree = join(dir, 'tree');
    await mkdir(join(tree, 'a', 'b', 'c'), { recursive: true });
    for (let i = 0; i < 20; i++) await writeFile(join(tree, 'a', `f${i}`), String(i));
    await writeFile(join(tree, 'a', 'b', 'c', 'deep'), 'd');
    await symlink(outside, join(tree, 'link-to-dir'));
    await symlink(join(dir, 'nowhere'), join(tree, 'a', 'dangling'));
    // overlayfs leaves work/work with mode 000.
    await mkdir(join(tree, 'work', 'work'), { recursive: true });
    await chmod(join(tree, 'work', 'work'), 0);
    // Each batch ends with a yield: immediates queued meanwhile run before the removal ends.
    let yields = 0;
    const tick = () => {
      yields++;
      if (yields < 1000) setImmediate(tick);
    };
    setImmediate(tick);
    await removeTree(tree, { batch: 4 });
    expect(yields).toBeGreaterThan(3);
    expect((await readdir(dir)).sort()).toEqual(['outside']);
    expect(await readFile(join(outside, 'kept'), 'utf8')).toBe('x');
  });

  it('removes a single file, and a missing path is no error', async () => {
    await writeFile(join(dir, 'file'), 'x');
    await removeTree(join(dir, 'file'));
    await removeTree(join(dir, 'missing'));
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('removeFile', () => {
  it('removes a file, is fine with a missing one, and refuses a directory', async () => {
    await writeFile(join(dir, 'file'), 'x');
    removeFile(join(dir, 'file'));
    expect(await readdir(dir)).toEqual([]);
    removeFile(join(dir, 'file'));
    await mkdir(join(dir, 'sub'));
    expect(() => removeFile(join(dir, 'sub'))).toThrow(/EISDIR|EPERM/);
    expect(await readdir(dir)).toEqual(['sub']);
  });
});

describe('file locks', () => {
  it('serialise read-modify-write across processes', async () => {
    const counter = join(dir, 'counter');
    await writeFile(counter, '0');
    const script = `
      import { withFileLock } from ${JSON.stringify(dist)};
      import { readFile, writeFile } from 'node:fs/promises';
      for (let i = 0; i < 25; i++) {
        await withFileLock(${JSON.stringify(join(dir, 'lock'))}, async () => {
          const n = Number(await readFile(${JSON.stringify(counter)}, 'utf8'));
          await new Promise((r) => setTimeout(r, 1));
          await writeFile(${JSON.stringify(counter)}, String(n + 1));
        });
      }`;
    const codes = await Promise.all([node(script), node(script), node(script), node(script)]);
    expect(codes).toEqual([0, 0, 0, 0]);
    expect(await readFile(counter, 'utf8')).toBe('100');
  });

  it('serialise callers inside one process', async () => {
    const order: string[] = [];
    const path = join(dir, 'lock');
    await Promise.all(
      ['a', 'b', 'c'].map((name) =>
        withFileLock(path, async () => {
          order.push(`${name}+`);
          await new Promise((r) => setTimeout(r, 5));
          order.push(`${name}-`);
        }),
      ),
    );
    expect(order).toEqual(['a+', 'a-', 'b+', 'b-', 'c+', 'c-']);
  });

  it('break a lock whose owner was killed with SIGKILL', async () => {
    const path = join(dir, 'lock');
    const child = spawn(process.execPath, ['--input-type=module', '-e', `
      import { acquireFileLock } from ${JSON.stringify(dist)};
      await acquireFileLock(${JSON.stringify(path)});
      process.stdout.write('held\\n');
      setInterval(() => {}, 1000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const lock = await acquireFileLock(path, { timeoutMs: 5000 });
    await lock.release();
  });

  it('tryAcquire returns nothing while this or another live process holds the lock, and takes a dead owner\'s', async () => {
    const path = join(dir, 'lock');
    const mine = await acquireFileLock(path);
    expect(await tryAcquireFileLock(path)).toBeUndefined();
    await mine.release();

    const child = spawn(process.execPath, ['--input-type=module', '-e', `
      import { acquireFileLock } from ${JSON.stringify(dist)};
      await acquireFileLock(${JSON.stringify(path)});
      process.stdout.write('held\\n');
      setInterval(() => {}, 1000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    expect(await tryAcquireFileLock(path)).toBeUndefined();
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const taken = await tryAcquireFileLock(path);
    expect(taken).toBeDefined();
    // While taken by a probe, in-process waiters queue behind it.
    const order: string[] = [];
    const waiter = withFileLock(path, async () => void order.push('waiter'));
    order.push('probe');
    await taken!.release();
    await waiter;
    expect(order).toEqual(['probe', 'waiter']);
  });

  it('time out, and honour abort, while a live process holds the lock', async () => {
    const path = join(dir, 'lock');
    const held = await acquireFileLock(path);
    const child = node(`
      import { acquireFileLock } from ${JSON.stringify(dist)};
      try { await acquireFileLock(${JSON.stringify(path)}, { timeoutMs: 200 }); process.exit(0) }
      catch (e) { process.exit(e.code === 'ERR_LOCK_TIMEOUT' ? 3 : 4) }`);
    expect(await child).toBe(3);
    const ac = new AbortController();
    const waiting = acquireFileLock(path, { signal: ac.signal });
    ac.abort();
    await expect(waiting).rejects.toMatchObject({ kind: 'Canceled' });
    await held.release();
  });
});

describe('random', () => {
  it('gives fresh bytes of the asked length, as hex too', () => {
    expect(randomBytes(0)).toHaveLength(0);
    expect(randomBytes(100)).toHaveLength(100);
    const ids = new Set(Array.from({ length: 200 }, () => randomHex(32)));
    expect(ids.size).toBe(200);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{64}$/);
    // Every byte value turns up in 64 KiB of them: not a constant, not a narrow range.
    expect(new Set(randomBytes(65536)).size).toBe(256);
  });

  it('draws integers below a bound, each of them, and refuses a bound that is not one', () => {
    const seen = new Map<number, number>();
    for (let i = 0; i < 6000; i++) {
      const n = randomBelow(6);
      seen.set(n, (seen.get(n) ?? 0) + 1);
    }
    expect([...seen.keys()].sort()).toEqual([0, 1, 2, 3, 4, 5]);
    for (const count of seen.values()) expect(count).toBeGreaterThan(800);
    expect(randomBelow(1)).toBe(0);
    for (const bad of [0, -1, 1.5, 2 ** 33]) expect(() => randomBelow(bad)).toThrow(RangeError);
  });
});
