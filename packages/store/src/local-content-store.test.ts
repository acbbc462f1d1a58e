import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { digestOf } from '@berth/oci';
import { ImageStore, LocalContentStore } from './index.js';

const distIndex = fileURLToPath(new URL('../dist/index.js', import.meta.url));

let dir: string;
const children: ChildProcess[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-content-'));
});

afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

async function text(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Runs an ES module script against the built package in a child and waits for it to print `line`. */
function startChild(script: string, line: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes(line)) resolve(child);
    });
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => reject(new Error(`child exited ${code} before "${line}": ${err}`)));
  });
}

function killed(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

describe('LocalContentStore', () => {
  it('puts, stats and reads blobs verified against their descriptor', async () => {
    const store = new LocalContentStore({ root: dir });
    const data = Buffer.from('{"hello":"world"}');
    const digest = digestOf(data);
    expect(await store.stat(digest)).toBeUndefined();
    await expect(store.read(digest)).rejects.toMatchObject({ code: 'ERR_BLOB_NOT_FOUND', kind: 'NotFound' });
    await expect(store.put(data, { digest: digestOf('other'), size: data.length })).rejects.toMatchObject({ code: 'ERR_DIGEST_MISMATCH' });
    await expect(store.put(data, { digest, size: 3 })).rejects.toMatchObject({ code: 'ERR_DIGEST_MISMATCH' });
    expect(await store.stat(digest)).toBeUndefined();
    expect(await store.put(data, { digest, size: data.length })).toEqual({ digest, size: data.length });
    expect(await store.stat(digest)).toEqual({ size: data.length });
    expect(await store.readBytes(digest)).toEqual(data);
    expect(await text(await store.read(digest))).toEqual(data);
    expect(await readFile(join(dir, 'blobs', 'sha256', digest.slice(7)))).toEqual(data);
  });

  it('ingests a blob, refusing wrong content and keeping nothing of it', async () => {
    const store = new LocalContentStore({ root: dir });
    const data = randomBytes(3 << 20);
    const digest = digestOf(data);
    const bad = await store.ingest({ digest, size: data.length });
    expect(bad.offset).toBe(0);
    const wrong = Buffer.from(data);
    wrong[100] ^= 0xff;
    await pipeline(Readable.from([wrong]), bad.writer);
    await expect(bad.commit()).rejects.toMatchObject({ code: 'ERR_DIGEST_MISMATCH' });
    expect(await store.stat(digest)).toBeUndefined();
    expect(await readdir(join(dir, 'ingest'))).toEqual([]);

    const good = await store.ingest({ digest, size: data.length });
    expect(good.offset).toBe(0);
    await pipeline(Readable.from([data.subarray(0, 1000), data.subarray(1000)]), good.writer);
    await good.commit();
    expect(await store.stat(digest)).toEqual({ size: data.length });
    expect((await store.readBytes(digest)).equals(data)).toBe(true);
    // An ingest of a committed blob has nothing left to write.
    const again = await store.ingest({ digest, size: data.length });
    expect(again.offset).toBe(data.length);
    await again.commit();
  });

  it('refuses more bytes than the descriptor says and discards them', async () => {
    const store = new LocalContentStore({ root: dir });
    const data = Buffer.from('exactly this');
    const ingest = await store.ingest({ digest: digestOf(data), size: data.length });
    await expect(pipeline(Readable.from([data, Buffer.from('and more')]), ingest.writer)).rejects.toMatchObject({ code: 'ERR_DIGEST_MISMATCH' });
    await expect(ingest.commit()).rejects.toBeTruthy();
    expect(await readdir(join(dir, 'ingest'))).toEqual([]);
  });

  it('keeps partial bytes on abort({keep}) and resumes from them', async () => {
    const store = new LocalContentStore({ root: dir });
    const data = randomBytes(1 << 20);
    const expected = { digest: digestOf(data), size: data.length };
    const first = await store.ingest(expected);
    await new Promise<void>((resolve) => first.writer.write(data.subarray(0, 300_000), () => resolve()));
    await first.abort({ keep: true });
    const second = await store.ingest(expected);
    expect(second.offset).toBe(300_000);
    await pipeline(Readable.from([data.subarray(second.offset)]), second.writer);
    await second.commit();
    expect((await store.readBytes(expected.digest)).equals(data)).toBe(true);

    const dropped = await store.ingest({ digest: digestOf('x'), size: 1 });
    await dropped.abort();
    expect(await readdir(join(dir, 'ingest'))).toEqual([]);
  });

  it('resumes from an empty kept partial (an abort before any byte arrived)', async () => {
    const store = new LocalContentStore({ root: dir });
    const data = randomBytes(4096);
    const expected = { digest: digestOf(data), size: data.length };
    await (await store.ingest(expected)).abort({ keep: true });
    const again = await store.ingest(expected);
    expect(again.offset).toBe(0);
    await pipeline(Readable.from([data]), again.writer);
    await again.commit();
    expect((await store.readBytes(expected.digest)).equals(data)).toBe(true);
  });

  it('lets concurrent ingests of one digest end with the single committed blob', async () => {
    const store = new LocalContentStore({ root: dir });
    const data = randomBytes(2 << 20);
    const expected = { digest: digestOf(data), size: data.length };
    const first = await store.ingest(expected);
    const secondPromise = store.ingest(expected);
    let secondStarted = false;
    void secondPromise.then(() => (secondStarted = true));
    await pipeline(Readable.from([data]), first.writer);
    expect(secondStarted).toBe(false);
    await first.commit();
    const second = await secondPromise;
    expect(second.offset).toBe(data.length);
    await second.commit();
    expect((await store.readBytes(expected.digest)).equals(data)).toBe(true);
  });

  it('writes blobs of unknown digest and verifies them when a digest is given', async () => {
    const store = new LocalContentStore({ root: dir });
    const data = randomBytes(100_000);
    const written = await store.writeBlob(Readable.from([data]));
    expect(written).toEqual({ digest: digestOf(data), size: data.length });
    await expect(store.writeBlob(Readable.from([data]), { expected: { digest: digestOf('nope'), size: data.length } })).rejects.toMatchObject({
      code: 'ERR_DIGEST_MISMATCH',
    });
    expect(await readdir(join(dir, 'ingest'))).toEqual([]);
  });
});

describe('crash safety', () => {
  const half = 3 << 20;

  async function killMidBlob(data: Buffer, written: Buffer): Promise<void> {
    const dataFile = join(dir, 'payload');
    await writeFile(dataFile, written);
    const child = await startChild(
      `import { LocalContentStore } from ${JSON.stringify(distIndex)};
       import { readFile } from 'node:fs/promises';
       const store = new LocalContentStore({ root: ${JSON.stringify(join(dir, 'root'))} });
       const ingest = await store.ingest({ digest: ${JSON.stringify(digestOf(data))}, size: ${data.length} });
       const bytes = await readFile(${JSON.stringify(dataFile)});
       ingest.writer.write(bytes, () => { console.log('written'); });
       setInterval(() => {}, 1000);`,
      'written',
    );
    await killed(child);
  }

  it('leaves no visible blob when the writer is killed mid-blob, and the next ingest resumes', async () => {
    const data = randomBytes(8 << 20);
    const digest = digestOf(data);
    await killMidBlob(data, data.subarray(0, half));
    const store = new LocalContentStore({ root: join(dir, 'root') });
    expect(await store.stat(digest)).toBeUndefined();
    expect(await readdir(join(dir, 'root', 'blobs', 'sha256'))).toEqual([]);

    const resumed = await store.ingest({ digest, size: data.length });
    expect(resumed.offset).toBe(half);
    await pipeline(Readable.from([data.subarray(resumed.offset)]), resumed.writer);
    await resumed.commit();
    expect((await store.readBytes(digest)).equals(data)).toBe(true);
  });

  it('discards a partial blob whose kept bytes turn out wrong, then ingests it whole', async () => {
    const data = randomBytes(8 << 20);
    const digest = digestOf(data);
    await killMidBlob(data, randomBytes(half));
    const store = new LocalContentStore({ root: join(dir, 'root') });
    const resumed = await store.ingest({ digest, size: data.length });
    expect(resumed.offset).toBe(half);
    await pipeline(Readable.from([data.subarray(resumed.offset)]), resumed.writer);
    await expect(resumed.commit()).rejects.toMatchObject({ code: 'ERR_DIGEST_MISMATCH' });
    expect(await store.stat(digest)).toBeUndefined();

    const fresh = await store.ingest({ digest, size: data.length });
    expect(fresh.offset).toBe(0);
    await pipeline(Readable.from([data]), fresh.writer);
    await fresh.commit();
    expect((await store.readBytes(digest)).equals(data)).toBe(true);
  });

  it('garbage collection keeps a live writer’s partial and discards a dead one’s', async () => {
    const data = randomBytes(4 << 20);
    await killMidBlob(data, data.subarray(0, 1 << 20));
    const images = new ImageStore({ root: join(dir, 'root') });
    const kept = await images.gc();
    expect(kept.removedIngests).toEqual([]);
    const live = await images.content.ingest({ digest: digestOf('live'), size: 4 });
    live.writer.write(Buffer.from('li'));
    const result = await images.gc({ partialMaxAgeMs: 0 });
    expect(result.removedIngests).toEqual([`sha256-${digestOf(data).slice(7)}.data`]);
    expect((await stat(join(dir, 'root', 'ingest', `sha256-${digestOf('live').slice(7)}.data`))).isFile()).toBe(true);
    await live.abort();
  });

  it('makes a second process wait for the first writer of a digest', async () => {
    const data = randomBytes(1 << 20);
    const digest = digestOf(data);
    const dataFile = join(dir, 'payload');
    await writeFile(dataFile, data);
    const child = await startChild(
      `import { LocalContentStore } from ${JSON.stringify(distIndex)};
       import { readFile } from 'node:fs/promises';
       import { setTimeout as sleep } from 'node:timers/promises';
       const store = new LocalContentStore({ root: ${JSON.stringify(join(dir, 'root'))} });
       const ingest = await store.ingest({ digest: ${JSON.stringify(digest)}, size: ${data.length} });
       console.log('locked');
       await sleep(300);
       ingest.writer.end(await readFile(${JSON.stringify(dataFile)}));
       await ingest.commit();
       console.log('committed');`,
      'locked',
    );
    const store = new LocalContentStore({ root: join(dir, 'root') });
    const mine = await store.ingest({ digest, size: data.length });
    expect(mine.offset).toBe(data.length);
    await mine.commit();
    if (child.exitCode === null) await new Promise((r) => child.once('exit', r));
    expect(child.exitCode).toBe(0);
    expect((await store.readBytes(digest)).equals(data)).toBe(true);
  });
});
