import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MediaType, chainIds, digestOf, type Descriptor, type Digest } from '@berth/oci';
import { ImageStore, TarEntryType, TarReader, packTar, type TarEntry, type TarInput } from '@berth/store';
import {
  CopySnapshotter,
  OverlaySnapshotter,
  createSnapshotter,
  mountAll,
  probeOverlay,
  unmount,
  type Snapshotter,
} from './index.js';

const distIndex = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const storeDist = fileURLToPath(new URL('../../store/dist/index.js', import.meta.url));

let dir: string;
let store: ImageStore;
const mounted: string[] = [];
const children: ChildProcess[] = [];
let overlayReason: string | undefined;

beforeAll(async () => {
  const probeDir = await mkdtemp(join(tmpdir(), 'berth-probe-'));
  const probe = await probeOverlay(probeDir);
  await rm(probeDir, { recursive: true, force: true });
  overlayReason = probe.supported ? undefined : probe.reason;
});

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-snap-'));
  store = new ImageStore({ root: join(dir, 'store') });
});

afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const m of mounted.splice(0).reverse()) await unmount(m).catch(() => {});
  await rm(dir, { recursive: true, force: true });
});

afterAll(() => {
  if (overlayReason) console.warn(`overlay snapshotter tests skipped: overlay mounts do not work here (${overlayReason})`);
});

const base = { size: 0, mode: 0o644, uid: 0, gid: 0, mtime: 1700000000 };
const file = (path: string, content: string, extra: Partial<TarEntry> = {}): TarInput => ({
  entry: { ...base, path, type: TarEntryType.File, size: Buffer.byteLength(content), ...extra },
  body: Buffer.from(content),
});
const directory = (path: string, extra: Partial<TarEntry> = {}): TarInput => ({ entry: { ...base, mode: 0o755, path, type: TarEntryType.Directory, ...extra } });
const whiteout = (path: string): TarInput => file(path, '');

async function tarBytes(entries: TarInput[]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of packTar(entries)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

interface Layers {
  readonly layers: Descriptor[];
  readonly diffIds: Digest[];
}

/** Puts gzip layers into the content store and returns what `unpack` needs. */
async function putLayers(...defs: TarInput[][]): Promise<Layers> {
  const layers: Descriptor[] = [];
  const diffIds: Digest[] = [];
  for (const def of defs) {
    const tar = await tarBytes(def);
    const blob = gzipSync(tar);
    const { digest, size } = await store.content.put(blob);
    layers.push({ mediaType: MediaType.OciLayerGzip, digest, size });
    diffIds.push(digestOf(tar));
  }
  return { layers, diffIds };
}

async function mountAt(s: Snapshotter, key: string, view = false): Promise<string> {
  const target = join(dir, `mnt-${randomBytes(3).toString('hex')}`);
  await mkdir(target);
  await mountAll(view ? await s.view(key) : await s.mounts(key), target);
  mounted.push(target);
  return target;
}

async function release(target: string): Promise<void> {
  await unmount(target);
  mounted.splice(mounted.indexOf(target), 1);
}

/** `path type size` of every object below `root`, sorted: a comparable picture of a tree. */
async function picture(root: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await readdir(join(root, rel))).sort()) {
    const p = rel ? `${rel}/${name}` : name;
    const info = await lstat(join(root, p));
    const type = info.isDirectory() ? 'dir' : info.isSymbolicLink() ? 'link' : info.isCharacterDevice() ? `chr${info.rdev}` : 'file';
    const content = info.isFile() ? createHash('sha256').update(await readFile(join(root, p))).digest('hex').slice(0, 8) : '';
    out.push(`${p} ${type} ${(info.mode & 0o7777).toString(8)} ${content}`);
    if (info.isDirectory()) out.push(...(await picture(root, p)));
  }
  return out;
}

async function tarEntries(stream: Readable): Promise<Array<{ path: string; type: string }>> {
  const out: Array<{ path: string; type: string }> = [];
  await pipeline(
    stream,
    new TarReader((e) => {
      out.push({ path: e.path, type: e.type });
      return undefined;
    }),
  );
  return out;
}

const lower = [directory('etc/'), file('etc/hostname', 'base'), file('etc/gone', 'g'), directory('var/'), directory('var/cache/'), file('var/cache/a', 'a'), file('var/cache/b', 'b')];
const middle = [whiteout('etc/.wh.gone'), file('etc/motd', 'hello'), whiteout('var/cache/.wh..wh..opq'), file('var/cache/c', 'c')];
const other = [file('srv/data', 'other image')];

const drivers: Array<{ name: string; make: (root: string) => Snapshotter }> = [
  { name: 'overlay', make: (root) => new OverlaySnapshotter({ root, mountOptions: ['index=off', 'redirect_dir=off', 'metacopy=off'] }) },
  { name: 'copy', make: (root) => new CopySnapshotter({ root }) },
];

for (const driver of drivers) {
  describe(`${driver.name} snapshotter`, () => {
    let snapshots: Snapshotter;
    beforeEach((ctx) => {
      if (driver.name === 'overlay' && overlayReason) ctx.skip();
      snapshots = driver.make(join(dir, 'snapshots'));
    });

    it('unpacks layers once per chain ID and shares them between images', async () => {
      const a = await putLayers(lower, middle);
      const b = await putLayers(lower, other);
      const events: string[] = [];
      const first = await snapshots.unpack({ content: store.content, ...a, onProgress: (e) => events.push(e.status) });
      expect(first).toEqual({ chainId: chainIds(a.diffIds)[1], unpacked: 2 });
      const second = await snapshots.unpack({ content: store.content, ...b, onProgress: (e) => events.push(e.status) });
      expect(second.unpacked).toBe(1);
      expect(events).toEqual(['unpacked', 'unpacked', 'exists', 'unpacked']);
      const list = await snapshots.list();
      expect(list).toHaveLength(3);
      const top = await snapshots.stat(first.chainId!);
      expect(top).toMatchObject({ kind: 'committed', parent: a.diffIds[0], diffId: a.diffIds[1] });
    });

    it('mounts a container on an image with whiteouts applied, diffs and commits its changes', async () => {
      const img = await putLayers(lower, middle);
      const { chainId } = await snapshots.unpack({ content: store.content, ...img });
      await snapshots.prepare('container-1', chainId);
      const root = await mountAt(snapshots, 'container-1');
      expect((await readdir(join(root, 'etc'))).sort()).toEqual(['hostname', 'motd']);
      expect(await readdir(join(root, 'var/cache'))).toEqual(['c']);

      await writeFile(join(root, 'etc/hostname'), 'changed');
      await unlink(join(root, 'etc/motd'));
      await mkdir(join(root, 'new'));
      await writeFile(join(root, 'new/file'), 'new');
      await rm(join(root, 'var'), { recursive: true });
      await mkdir(join(root, 'var'));
      await writeFile(join(root, 'var/fresh'), 'fresh');
      const expected = await picture(root);
      await release(root);
      // The overlay upper holds the changes, the copy the whole tree: here both are 'changed', 'new' and 'fresh'.
      expect((await snapshots.usage('container-1')).size).toBe(15);
      await expect(snapshots.usage('no-such-key')).rejects.toMatchObject({ kind: 'NotFound' });

      const diff = await snapshots.diff('container-1', { compression: 'gzip' });
      const chunks: Buffer[] = [];
      for await (const c of diff.stream) chunks.push(c as Buffer);
      const layer = Buffer.concat(chunks);
      const result = await diff.result;
      expect(result.digest).toBe(digestOf(layer));
      expect(result.size).toBe(layer.length);
      expect(result.mediaType).toBe(MediaType.OciLayerGzip);
      const entries = await tarEntries(Readable.from([gunzipSync(layer)]));
      const paths = entries.map((e) => e.path);
      expect(paths).toContain('etc/hostname');
      expect(paths).toContain('etc/.wh.motd');
      expect(paths).toContain('new/file');
      expect(paths).toContain('var/fresh');
      if (driver.name === 'overlay') expect(paths).toContain('var/.wh..wh..opq');
      else expect(paths).toEqual(expect.arrayContaining(['var/.wh.cache']));

      const committedChain = digestOf(`${chainId} ${result.diffId}`);
      await snapshots.commit('container-1', committedChain, { diffId: result.diffId });
      expect(await snapshots.stat('container-1')).toBeUndefined();
      expect(await snapshots.stat(committedChain)).toMatchObject({ kind: 'committed', parent: chainId });
      await snapshots.prepare('container-2', committedChain);
      const again = await mountAt(snapshots, 'container-2');
      expect(await picture(again)).toEqual(expected);
      await release(again);

      // The layer applies to the parent image the same way the snapshot did.
      const { layers, diffIds } = img;
      const stored = await store.content.put(layer);
      const fresh = driver.make(join(dir, 'fresh'));
      const unpacked = await fresh.unpack({
        content: store.content,
        layers: [...layers, { mediaType: MediaType.OciLayerGzip, digest: stored.digest, size: stored.size }],
        diffIds: [...diffIds, result.diffId],
      });
      expect(unpacked.chainId).toBe(committedChain);
      const view = await mountAt(fresh, committedChain, true);
      expect(await picture(view)).toEqual(expected);
    });

    it('exports the whole file system of a snapshot', async () => {
      const img = await putLayers(lower, middle);
      const { chainId } = await snapshots.unpack({ content: store.content, ...img });
      const entries = await tarEntries(await snapshots.export(chainId!));
      expect(entries.map((e) => e.path).sort()).toEqual(['etc/', 'etc/hostname', 'etc/motd', 'var/', 'var/cache/', 'var/cache/c']);
      expect(await readdir(join(dir, 'snapshots', 'mnt'))).toEqual([]);
    });

    it('refuses to remove a snapshot others are built on, and collects what nothing keeps', async () => {
      const a = await putLayers(lower, middle);
      const b = await putLayers(lower, other);
      const ra = await snapshots.unpack({ content: store.content, ...a });
      const rb = await snapshots.unpack({ content: store.content, ...b });
      await snapshots.prepare('keep-me', rb.chainId);
      await snapshots.prepare('drop-me', ra.chainId);
      await expect(snapshots.remove(a.diffIds[0]!)).rejects.toMatchObject({ code: 'ERR_SNAPSHOT_IN_USE' });
      await expect(snapshots.prepare('keep-me', rb.chainId)).rejects.toMatchObject({ code: 'ERR_SNAPSHOT_EXISTS' });
      await expect(snapshots.prepare('x', 'sha256:' + '0'.repeat(64))).rejects.toMatchObject({ code: 'ERR_SNAPSHOT_NOT_FOUND' });

      const collection = await snapshots.collect(new Set(['keep-me']));
      await collection.purge();
      expect(collection.removed.sort()).toEqual([ra.chainId, 'drop-me'].sort());
      expect((await snapshots.list()).map((s) => s.key).sort()).toEqual([a.diffIds[0], rb.chainId, 'keep-me'].sort());
      expect(await readdir(join(dir, 'snapshots', 'trash'))).toEqual([]);
      expect((await readdir(join(dir, 'snapshots', 'l'))).length).toBe(3);

      await snapshots.remove('keep-me');
      await snapshots.remove(rb.chainId!);
      await expect(snapshots.remove('keep-me')).rejects.toMatchObject({ code: 'ERR_SNAPSHOT_NOT_FOUND' });
    });

    it('is collected with the image store: images keep their chains, containers keep theirs', async () => {
      const imgs = { a: await putLayers(lower, middle), b: await putLayers(lower, other) };
      for (const [name, img] of Object.entries(imgs)) {
        const config = await store.content.put(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: img.diffIds } })));
        const manifest = await store.content.put(
          Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: { mediaType: MediaType.OciConfig, ...config }, layers: img.layers })),
        );
        await store.add({ target: { mediaType: MediaType.OciManifest, ...manifest }, names: [name] });
        await snapshots.unpack({ content: store.content, ...img });
      }
      await snapshots.prepare('ctr', chainIds(imgs.b.diffIds)[1]);
      await store.remove('b', { gc: { snapshots, keepSnapshots: ['ctr'] } });
      expect((await snapshots.list()).map((s) => s.key).sort()).toEqual([...chainIds(imgs.a.diffIds), chainIds(imgs.b.diffIds)[1], 'ctr'].sort());
      const result = await store.gc({ snapshots });
      expect(result.removedSnapshots.sort()).toEqual([chainIds(imgs.b.diffIds)[1], 'ctr'].sort());
      expect((await snapshots.list()).map((s) => s.key).sort()).toEqual(chainIds(imgs.a.diffIds).sort());
    });

    it('leaves nothing visible when an unpack is killed, and unpacks again after', async () => {
      const big = randomBytes(8 << 20).toString('base64');
      const img = await putLayers(lower, [file('big', big)]);
      const root = join(dir, 'snapshots');
      // The child's second layer stalls halfway, so the kill lands in the middle of its unpack.
      const script = `import { ${driver.name === 'overlay' ? 'OverlaySnapshotter as S' : 'CopySnapshotter as S'} } from ${JSON.stringify(distIndex)};
        import { ImageStore } from ${JSON.stringify(storeDist)};
        import { Readable } from 'node:stream';
        const store = new ImageStore({ root: ${JSON.stringify(join(dir, 'store'))} });
        const stalled = ${JSON.stringify(img.layers[1]!.digest)};
        const content = {
          stat: (d) => store.content.stat(d),
          readBytes: (d, o) => store.content.readBytes(d, o),
          async read(d, o) {
            const source = await store.content.read(d, o);
            if (d !== stalled) return source;
            const chunks = source[Symbol.asyncIterator]();
            let sent = 0;
            let pending = Buffer.alloc(0);
            return new Readable({ highWaterMark: 1024, async read() {
              if (sent > ${img.layers[1]!.size} / 2) { console.log('stalled'); return; }
              if (pending.length === 0) {
                const { value, done } = await chunks.next();
                if (done) { this.push(null); return; }
                pending = value;
              }
              const piece = pending.subarray(0, 64 << 10);
              pending = pending.subarray(piece.length);
              sent += piece.length;
              this.push(piece);
            } });
          },
        };
        const s = new S({ root: ${JSON.stringify(root)} });
        await s.unpack({ content, layers: ${JSON.stringify(img.layers)}, diffIds: ${JSON.stringify(img.diffIds)} });`;
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      children.push(child);
      await new Promise<void>((resolve, reject) => {
        child.stdout!.on('data', (d: Buffer) => d.toString().includes('stalled') && resolve());
        child.once('exit', (code) => reject(new Error(`the unpacking child exited (${code}) before it stalled`)));
      });
      const tmpName = `c-${chainIds(img.diffIds)[1]!.slice(7)}`;
      expect((await stat(join(root, 'tmp', tmpName, 'fs', 'big'))).size).toBeGreaterThan(0);
      await new Promise((r) => {
        child.once('exit', r);
        child.kill('SIGKILL');
      });
      expect((await snapshots.list()).map((s) => s.key)).toEqual([img.diffIds[0]]);
      const collection = await snapshots.collect(new Set([img.diffIds[0]!]));
      await collection.purge();
      expect((await readdir(join(root, 'tmp'))).filter((n) => !n.endsWith('.lock'))).toEqual([]);
      const again = await snapshots.unpack({ content: store.content, ...img });
      expect(again.unpacked).toBe(1);
      const view = await mountAt(snapshots, again.chainId!, true);
      expect((await readFile(join(view, 'big'), 'utf8')).length).toBe(big.length);
    });
  });
}

describe('overlay specifics', () => {
  beforeEach((ctx) => {
    if (overlayReason) ctx.skip();
  });

  it('mounts an image of 110 layers through short lowerdir links', async () => {
    const defs = Array.from({ length: 110 }, (_, i) => [file(`layer-${i}`, String(i)), ...(i > 0 ? [whiteout(`.wh.layer-${i - 1}`)] : [])]);
    const img = await putLayers(...defs);
    const snapshots = new OverlaySnapshotter({ root: join(dir, 'snapshots') });
    const { chainId } = await snapshots.unpack({ content: store.content, ...img });
    const mounts = await snapshots.prepare('deep', chainId);
    // Absolute lowerdirs of this temp root exceed a page; mountAll mounts them from l/ instead.
    expect(mounts[0]!.options.join(',').length).toBeGreaterThan(4096);
    const root = await mountAt(snapshots, 'deep');
    expect(await readdir(root)).toEqual(['layer-109']);
  });

  it('chooses a driver once per root and keeps it', async () => {
    const root = join(dir, 'auto');
    const first = await createSnapshotter({ root });
    expect(first.driver).toBe('overlay');
    expect(JSON.parse(await readFile(join(root, 'driver.json'), 'utf8')).driver).toBe('overlay');
    await expect(createSnapshotter({ root, driver: 'copy' })).rejects.toMatchObject({ code: 'ERR_INVALID_OPTIONS' });
    expect((await createSnapshotter({ root: join(dir, 'copy'), driver: 'copy' })).driver).toBe('copy');
  });
});
