import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RecordWatch } from './record-watch.js';

// What another process does to a record, done here by hand: a record replaced by a rename, the
// container's directory renamed away on removal.

let dir = '';
let seq = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-watch-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function container(): Promise<string> {
  const id = `c${++seq}`;
  await mkdir(join(dir, id));
  await writeFile(join(dir, id, 'config.v2.json'), '{}');
  return id;
}

/** Whether `changed` settles within a moment. */
async function settles(changed: Promise<void>): Promise<boolean> {
  return Promise.race([changed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 200))]);
}

describe('RecordWatch', () => {
  it('wakes on a record replaced by another process, not on the other files', async () => {
    const watch = new RecordWatch(dir);
    const id = await container();
    const next = watch.next(id);
    await writeFile(join(dir, id, '.hostconfig.json.tmp'), '{}');
    await rename(join(dir, id, '.hostconfig.json.tmp'), join(dir, id, 'hostconfig.json'));
    expect(await settles(next.changed)).toBe(false);
    await writeFile(join(dir, id, '.config.v2.json.tmp'), '{"changed":true}');
    await rename(join(dir, id, '.config.v2.json.tmp'), join(dir, id, 'config.v2.json'));
    expect(await settles(next.changed)).toBe(true);
  });

  it('wakes when the container is removed: its directory renamed away, or already gone', async () => {
    const watch = new RecordWatch(dir);
    const id = await container();
    const next = watch.next(id);
    // Changes to other containers in the same directory are not this one's.
    await rename(join(dir, await container()), join(dir, '.gone-other'));
    expect(await settles(next.changed)).toBe(false);
    await rename(join(dir, id), join(dir, `.gone-${id}`));
    expect(await settles(next.changed)).toBe(true);
    expect(await settles(watch.next(id).changed)).toBe(true);
  });

  it('wakes on a change this process announces, and on cancel', async () => {
    const watch = new RecordWatch(dir);
    const id = await container();
    const first = watch.next(id);
    const second = watch.next(id);
    watch.notify(id);
    expect(await settles(first.changed)).toBe(true);
    expect(await settles(second.changed)).toBe(true);
    const third = watch.next(id);
    third.cancel();
    expect(await settles(third.changed)).toBe(true);
  });
});
