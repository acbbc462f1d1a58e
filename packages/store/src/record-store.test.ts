import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RecordStore } from './index.js';

const distIndex = fileURLToPath(new URL('../dist/index.js', import.meta.url));

interface Counter {
  readonly name: string;
  readonly count: number;
}

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-records-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('RecordStore', () => {
  it('creates, reads, lists, updates and deletes records', async () => {
    const records = new RecordStore<Counter>({ dir: join(dir, 'containers'), kind: 'container' });
    await records.create('abc', { name: 'a', count: 0 });
    await records.create('def', { name: 'd', count: 5 });
    await expect(records.create('abc', { name: 'x', count: 1 })).rejects.toMatchObject({ code: 'ERR_RECORD_EXISTS', kind: 'AlreadyExists' });
    expect(await records.get('abc')).toEqual({ name: 'a', count: 0 });
    expect(await records.get('nope')).toBeUndefined();
    await expect(records.require('nope')).rejects.toMatchObject({ code: 'ERR_RECORD_NOT_FOUND', message: 'no such container: nope' });
    expect(await records.update('abc', (c) => ({ ...c, count: c.count + 1 }))).toEqual({ name: 'a', count: 1 });
    await expect(records.update('nope', (c) => c)).rejects.toMatchObject({ code: 'ERR_RECORD_NOT_FOUND' });
    expect((await records.list()).map((r) => [r.id, r.value.count])).toEqual([
      ['abc', 1],
      ['def', 5],
    ]);
    expect(await records.delete('abc')).toBe(true);
    expect(await records.delete('abc')).toBe(false);
    expect((await readdir(join(dir, 'containers'))).sort()).toEqual(['def.json']);
    await expect(records.get('../escape')).rejects.toMatchObject({ code: 'ERR_INVALID_RECORD_ID' });
  });

  it('validates what it reads back', async () => {
    const records = new RecordStore<Counter>({
      dir,
      validate: (value, id) => {
        if (typeof (value as Counter).count !== 'number') throw new Error(`record ${id} has no count`);
        return value as Counter;
      },
    });
    await writeFile(join(dir, 'bad.json'), '{"name":"x"}');
    await writeFile(join(dir, 'broken.json'), '{');
    await expect(records.get('bad')).rejects.toThrowError('record bad has no count');
    await expect(records.get('broken')).rejects.toMatchObject({ code: 'ERR_INVALID_RECORD' });
  });

  it('serialises updates of one record across processes', async () => {
    const records = new RecordStore<Counter>({ dir });
    await records.create('shared', { name: 's', count: 0 });
    const worker = `import { RecordStore } from ${JSON.stringify(distIndex)};
      const records = new RecordStore({ dir: ${JSON.stringify(dir)} });
      for (let i = 0; i < 25; i++) await records.update('shared', (c) => ({ ...c, count: c.count + 1 }));`;
    await Promise.all(
      Array.from(
        { length: 4 },
        () =>
          new Promise<void>((resolve, reject) => {
            const child = spawn(process.execPath, ['--input-type=module', '-e', worker], { stdio: 'inherit' });
            child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`worker exited ${code}`))));
          }),
      ),
    );
    expect((await records.require('shared')).count).toBe(100);
  });
});
