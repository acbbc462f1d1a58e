import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Annotation, MediaType, digestOf, type Descriptor, type Digest } from '@berth/oci';
import { ImageStore, type ContentStore, type ImageUser } from './index.js';

const distIndex = fileURLToPath(new URL('../dist/index.js', import.meta.url));

let dir: string;
let store: ImageStore;
const children: ChildProcess[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-images-'));
  store = new ImageStore({ root: dir });
});

afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await gone;
    }
  }
  await rm(dir, { recursive: true, force: true });
});

interface Made {
  readonly target: Descriptor;
  readonly config: Digest;
  readonly layers: readonly Digest[];
}

/** Writes a small image (random layers, a config listing them, a manifest) through `content`. */
async function makeImage(
  content: ContentStore,
  options: { layers?: readonly Buffer[]; created?: string; labels?: Record<string, string>; history?: object[] } = {},
): Promise<Made> {
  const layers = options.layers ?? [randomBytes(64)];
  const layerDescs: Descriptor[] = [];
  for (const l of layers) {
    const { digest, size } = await content.put(l);
    layerDescs.push({ mediaType: MediaType.OciLayer, digest, size });
  }
  const config = Buffer.from(
    JSON.stringify({
      created: options.created ?? new Date().toISOString(),
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['sh'], ...(options.labels ? { Labels: options.labels } : {}) },
      rootfs: { type: 'layers', diff_ids: layerDescs.map((l) => l.digest) },
      ...(options.history ? { history: options.history } : {}),
    }),
  );
  const c = await content.put(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: c.digest, size: c.size },
      layers: layerDescs,
    }),
  );
  const m = await content.put(manifest);
  return { target: { mediaType: MediaType.OciManifest, digest: m.digest, size: m.size }, config: c.digest, layers: layerDescs.map((l) => l.digest) };
}

const stopped = (imageId: Digest): ImageUser => ({ containerId: 'c0ffee0000000000000000000000000000000000000000000000000000000001', imageId, running: false });
const running = (imageId: Digest): ImageUser => ({ ...stopped(imageId), running: true });

describe('ImageStore names', () => {
  it('records an image under its names and resolves it the ways docker does', async () => {
    const img = await makeImage(store.content);
    const record = await store.add({ target: img.target, names: ['busybox', 'localhost:5000/me/app:1.0'] });
    expect(record.id).toBe(img.config);
    expect(record.repoTags).toEqual(['busybox:latest', 'localhost:5000/me/app:1.0']);
    expect(record.repoDigests).toEqual([]);
    expect(record.dangling).toBe(false);
    expect(record.manifestDigest).toBe(img.target.digest);

    const hex = img.config.slice(7);
    for (const input of ['busybox', 'busybox:latest', 'docker.io/library/busybox:latest', 'localhost:5000/me/app:1.0', img.config, hex, hex.slice(0, 12), hex.slice(0, 4), `sha256:${hex.slice(0, 8)}`]) {
      expect((await store.resolve(input)).id, input).toBe(img.config);
    }
    await expect(store.resolve('busybox:nope')).rejects.toMatchObject({ code: 'ERR_IMAGE_NOT_FOUND', kind: 'NotFound', message: 'No such image: busybox:nope' });
    await expect(store.resolve('localhost:5000/me/app')).rejects.toMatchObject({ code: 'ERR_IMAGE_NOT_FOUND' });
    await expect(store.resolve('Bad Name')).rejects.toMatchObject({ code: 'ERR_INVALID_REFERENCE' });
  });

  it('resolves digest references and reports them as RepoDigests', async () => {
    const img = await makeImage(store.content);
    const pinned = `localhost:5000/app@${img.target.digest}`;
    const record = await store.add({ target: img.target, names: ['localhost:5000/app:v1', pinned] });
    expect(record.repoDigests).toEqual([pinned]);
    expect((await store.resolve(pinned)).id).toBe(img.config);
    await expect(store.resolve(`localhost:5000/other@${img.target.digest}`)).rejects.toMatchObject({ code: 'ERR_IMAGE_NOT_FOUND' });
  });

  it('refuses an ambiguous ID prefix', async () => {
    const made: Made[] = [];
    for (let i = 0; i < 40; i++) made.push(await makeImage(store.content));
    for (const m of made) await store.add({ target: m.target });
    const counts = new Map<string, number>();
    for (const m of made) counts.set(m.config[7]!, (counts.get(m.config[7]!) ?? 0) + 1);
    const shared = [...counts].find(([, n]) => n > 1)![0];
    await expect(store.resolve(shared)).rejects.toMatchObject({ code: 'ERR_AMBIGUOUS_IMAGE_ID' });
  });

  it('writes index.json entries other OCI tools can read, and keeps them across restarts', async () => {
    const img = await makeImage(store.content);
    await store.add({ target: img.target, names: ['busybox:1'] });
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
    expect(JSON.parse(await readFile(join(dir, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });
    expect(index.manifests).toHaveLength(1);
    expect(index.manifests[0]).toMatchObject({
      mediaType: MediaType.OciManifest,
      digest: img.target.digest,
      annotations: { [Annotation.RefName]: 'docker.io/library/busybox:1', [Annotation.ContainerdImageName]: 'docker.io/library/busybox:1' },
    });
    const reopened = new ImageStore({ root: dir });
    expect((await reopened.resolve('busybox:1')).id).toBe(img.config);
    expect((await reopened.list()).map((i) => i.repoTags)).toEqual([['busybox:1']]);
  });

  it('moves a tag to another image and keeps the old one as dangling', async () => {
    const a = await makeImage(store.content, { created: '2024-01-01T00:00:00Z' });
    const b = await makeImage(store.content, { created: '2024-02-01T00:00:00Z' });
    await store.add({ target: a.target, names: ['app:1'] });
    await store.add({ target: b.target, names: ['app:1'] });
    const list = await store.list();
    expect(list.map((i) => [i.id, i.repoTags, i.dangling])).toEqual([
      [b.config, ['app:1'], false],
      [a.config, [], true],
    ]);
    expect((await store.list({ filters: { dangling: true } })).map((i) => i.id)).toEqual([a.config]);
    await store.tag(a.config, 'app:2');
    expect((await store.resolve('app:2')).id).toBe(a.config);
    expect((await store.list({ filters: { dangling: true } })).map((i) => i.id)).toEqual([]);
    await expect(store.tag('app:1', `app@${b.target.digest}`)).rejects.toMatchObject({ code: 'ERR_INVALID_TAG' });
    await expect(store.tag('nothing:here', 'app:3')).rejects.toMatchObject({ code: 'ERR_IMAGE_NOT_FOUND' });
  });

  it('filters the list by reference, label, before, since and until', async () => {
    const a = await makeImage(store.content, { created: '2024-01-01T00:00:00Z', labels: { tier: 'db' } });
    const b = await makeImage(store.content, { created: '2024-02-01T00:00:00Z', labels: { tier: 'web', team: 'x' } });
    const c = await makeImage(store.content, { created: '2024-03-01T00:00:00Z' });
    await store.add({ target: a.target, names: ['postgres:16'] });
    await store.add({ target: b.target, names: ['me/web:1'] });
    await store.add({ target: c.target, names: ['busybox'] });
    const ids = async (filters: object) => (await store.list({ filters })).map((i) => i.id);
    expect(await ids({ reference: ['busy*'] })).toEqual([c.config]);
    expect(await ids({ reference: ['me/*:1'] })).toEqual([b.config]);
    expect(await ids({ label: ['tier'] })).toEqual([b.config, a.config]);
    expect(await ids({ label: ['tier=web', 'team'] })).toEqual([b.config]);
    expect(await ids({ before: 'me/web:1' })).toEqual([a.config]);
    expect(await ids({ since: 'postgres:16' })).toEqual([c.config, b.config]);
    expect(await ids({ until: new Date('2024-01-15T00:00:00Z') })).toEqual([a.config]);
    const withUsers = await store.list({ containers: [stopped(a.config), running(a.config)] });
    expect(withUsers.find((i) => i.id === a.config)!.containers).toBe(2);
    expect(withUsers.find((i) => i.id === b.config)!.labels).toEqual({ tier: 'web', team: 'x' });
  });

  it('shows history newest first with layer sizes and <missing> ids below the top', async () => {
    const img = await makeImage(store.content, {
      layers: [randomBytes(100), randomBytes(200)],
      history: [
        { created: '2024-01-01T00:00:00Z', created_by: 'ADD rootfs.tar /' },
        { created: '2024-01-01T00:00:01Z', created_by: 'ENV A=1', empty_layer: true },
        { created: '2024-01-01T00:00:02Z', created_by: 'RUN make', comment: 'buildkit' },
      ],
    });
    await store.add({ target: img.target, names: ['app'] });
    const rows = await store.history('app');
    expect(rows.map((r) => [r.id, r.createdBy, r.size, r.emptyLayer, r.tags])).toEqual([
      [img.config, 'RUN make', 200, false, ['app:latest']],
      [undefined, 'ENV A=1', 0, true, []],
      [undefined, 'ADD rootfs.tar /', 100, false, []],
    ]);
  });

  it('inspects config and manifest', async () => {
    const img = await makeImage(store.content, { labels: { a: 'b' } });
    await store.add({ target: img.target, names: ['app'] });
    const details = await store.inspect('app');
    expect(details.config.config?.Labels).toEqual({ a: 'b' });
    expect(details.manifest.layers.map((l) => l.digest)).toEqual(img.layers);
    expect(details.size).toBe(details.manifest.config.size + details.manifest.layers.reduce((s, l) => s + l.size, 0));
  });

  it('refuses to record an image whose blobs are missing', async () => {
    const img = await makeImage(store.content);
    await store.content.delete(img.layers[0]!);
    await expect(store.add({ target: img.target, names: ['x'] })).rejects.toMatchObject({ code: 'ERR_INVALID_IMAGE' });
    await expect(store.add({ target: { ...img.target, digest: digestOf('nothing') } })).rejects.toMatchObject({ code: 'ERR_BLOB_NOT_FOUND' });
  });
});

describe('ImageStore removal (docker rmi)', () => {
  it('untags a name that is not the last one and keeps the image', async () => {
    const img = await makeImage(store.content);
    await store.add({ target: img.target, names: ['a:1', 'b:1'] });
    expect(await store.remove('a:1')).toEqual([{ untagged: 'a:1' }]);
    expect((await store.resolve(img.config)).repoTags).toEqual(['b:1']);
  });

  it('deletes an image with its last name and collects its blobs, sparing shared ones', async () => {
    const shared = randomBytes(50);
    const a = await makeImage(store.content, { layers: [shared, randomBytes(60)] });
    const b = await makeImage(store.content, { layers: [shared] });
    await store.add({ target: a.target, names: ['a'] });
    await store.add({ target: b.target, names: ['b'] });
    expect(await store.remove('a')).toEqual([{ untagged: 'a:latest' }, { deleted: a.config }]);
    await expect(store.resolve(a.config)).rejects.toMatchObject({ code: 'ERR_IMAGE_NOT_FOUND' });
    expect(await store.content.stat(a.target.digest)).toBeUndefined();
    expect(await store.content.stat(a.layers[1]!)).toBeUndefined();
    expect(await store.content.stat(a.config)).toBeUndefined();
    expect(await store.content.stat(a.layers[0]!)).toBeDefined();
    expect(await store.content.stat(b.config)).toBeDefined();
  });

  it('removes the digest references of a repository with its last tag there', async () => {
    const img = await makeImage(store.content);
    const pinned = `busybox@${img.target.digest}`;
    await store.add({ target: img.target, names: ['busybox:latest', pinned] });
    expect(await store.remove('busybox')).toEqual([{ untagged: 'busybox:latest' }, { untagged: pinned }, { deleted: img.config }]);
  });

  it('refuses to remove by ID an image several repositories name, unless forced', async () => {
    const img = await makeImage(store.content);
    await store.add({ target: img.target, names: ['a:1', 'b:1'] });
    const short = img.config.slice(7, 19);
    await expect(store.remove(short)).rejects.toMatchObject({
      code: 'ERR_IMAGE_CONFLICT',
      kind: 'Conflict',
      message: `conflict: unable to delete ${short} (must be forced) - image is referenced in multiple repositories`,
    });
    expect(await store.remove(short, { force: true })).toEqual([{ untagged: 'a:1' }, { untagged: 'b:1' }, { deleted: img.config }]);
  });

  it('removes by ID an image with one tag', async () => {
    const img = await makeImage(store.content);
    await store.add({ target: img.target, names: ['a:1', `a@${img.target.digest}`] });
    expect(await store.remove(img.config)).toEqual([{ untagged: 'a:1' }, { untagged: `a@${img.target.digest}` }, { deleted: img.config }]);
  });

  it('protects images containers use: stopped ones need force, running ones never go', async () => {
    const img = await makeImage(store.content);
    await store.add({ target: img.target, names: ['app'] });
    const short = img.config.slice(7, 19);
    await expect(store.remove('app', { containers: [stopped(img.config)] })).rejects.toMatchObject({
      code: 'ERR_IMAGE_CONFLICT',
      message: `conflict: unable to remove repository reference "app" (must force) - container c0ffee000000 is using its referenced image ${short}`,
    });
    await expect(store.remove(img.config, { containers: [stopped(img.config)] })).rejects.toMatchObject({
      message: `conflict: unable to delete ${short} (must be forced) - image is being used by stopped container c0ffee000000`,
    });
    await expect(store.remove(img.config, { force: true, containers: [running(img.config)] })).rejects.toMatchObject({
      message: `conflict: unable to delete ${short} (cannot be forced) - image is being used by running container c0ffee000000`,
    });
    // Forcing the name off a running container's image untags it and leaves the image dangling.
    expect(await store.remove('app', { force: true, containers: [running(img.config)] })).toEqual([{ untagged: 'app:latest' }]);
    expect((await store.resolve(img.config)).dangling).toBe(true);
    expect(await store.content.stat(img.layers[0]!)).toBeDefined();
    expect(await store.remove(img.config, { force: true, containers: [stopped(img.config)] })).toEqual([{ deleted: img.config }]);
  });

  it('prunes dangling images, or every unused image with all', async () => {
    const a = await makeImage(store.content);
    const b = await makeImage(store.content);
    const c = await makeImage(store.content);
    const d = await makeImage(store.content);
    await store.add({ target: a.target });
    await store.add({ target: b.target });
    await store.add({ target: c.target, names: ['c'] });
    await store.add({ target: d.target, names: ['d'] });
    const users = [stopped(b.config), running(d.config)];
    const dangling = await store.prune({ containers: users });
    expect(dangling.records).toEqual([{ deleted: a.config }]);
    expect(dangling.reclaimedBytes).toBeGreaterThan(0);
    const all = await store.prune({ all: true, containers: users });
    expect(all.records).toEqual([{ untagged: 'c:latest' }, { deleted: c.config }]);
    expect((await store.list()).map((i) => i.id).sort()).toEqual([b.config, d.config].sort());
  });
});

describe('ImageStore garbage collection and leases', () => {
  it('keeps leased blobs until the lease is released', async () => {
    const lease = await store.createLease();
    const img = await makeImage(lease.content);
    expect((await store.gc()).removedBlobs).toEqual([]);
    await lease.release();
    const result = await store.gc();
    expect(result.removedBlobs.sort()).toEqual([img.target.digest, img.config, ...img.layers].sort());
  });

  it('drops the lease of a process killed with SIGKILL', async () => {
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { ImageStore } from ${JSON.stringify(distIndex)};
         const store = new ImageStore({ root: ${JSON.stringify(dir)} });
         const lease = await store.createLease();
         await lease.content.put(Buffer.from('leased by a dead process'));
         console.log('leased');
         setInterval(() => {}, 1000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    children.push(child);
    await new Promise<void>((resolve) => child.stdout!.on('data', (d: Buffer) => d.toString().includes('leased') && resolve()));
    expect((await store.gc()).removedBlobs).toEqual([]);
    await new Promise((r) => {
      child.once('exit', r);
      child.kill('SIGKILL');
    });
    const result = await store.gc();
    expect(result.expiredLeases).toHaveLength(1);
    expect(result.removedBlobs).toEqual([digestOf('leased by a dead process')]);
  });

  it('keeps what a persistent root reaches, out of the image list, until the root goes', async () => {
    const lease = await store.createLease();
    const img = await makeImage(lease.content, { layers: [randomBytes(10), randomBytes(10)] });
    await store.roots.set('build-cache', 'step-1', img.target, { durable: false });
    await lease.release();
    let seen: ReadonlySet<string> | undefined;
    const collector = { collect: async (live: ReadonlySet<string>) => ((seen = live), { removed: [], purge: async () => {} }) };
    expect((await store.gc({ snapshots: collector })).removedBlobs).toEqual([]);
    const { chainIds } = await import('@berth/oci');
    expect([...seen!].sort()).toEqual(chainIds(img.layers).sort());
    expect(await store.list()).toEqual([]);
    expect(await store.roots.get('build-cache', 'step-1')).toEqual(img.target);
    expect((await store.roots.list('build-cache')).map((r) => r.name)).toEqual(['step-1']);
    expect(await store.roots.delete('build-cache', 'step-1')).toBe(true);
    expect((await store.gc()).removedBlobs.sort()).toEqual([img.target.digest, img.config, ...img.layers].sort());
    await expect(store.roots.set('build-cache', '../escape', img.target)).rejects.toMatchObject({ code: 'ERR_INVALID_OPTIONS' });
  });

  it('hands live chain IDs, leased and kept snapshot keys to the snapshot collector', async () => {
    const img = await makeImage(store.content, { layers: [randomBytes(10), randomBytes(10)] });
    await store.add({ target: img.target, names: ['app'] });
    const lease = await store.createLease();
    await lease.add({ snapshots: ['build-step-1'] });
    let seen: ReadonlySet<string> | undefined;
    let purged = false;
    const result = await store.gc({
      keepSnapshots: ['container-abc'],
      snapshots: {
        async collect(live) {
          seen = live;
          return { removed: ['sha256:old'], purge: async () => void (purged = true) };
        },
      },
    });
    const { chainIds } = await import('@berth/oci');
    expect([...seen!].sort()).toEqual([...chainIds(img.layers), 'build-step-1', 'container-abc'].sort());
    expect(result.removedSnapshots).toEqual(['sha256:old']);
    expect(purged).toBe(true);
    await lease.release();
  });
});

describe('ImageStore across processes', () => {
  function runChild(script: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'inherit', 'pipe'] });
      children.push(child);
      let err = '';
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`child exited ${code}: ${err}`))));
    });
  }

  it('keeps index.json consistent while several processes tag and remove at once', async () => {
    const img = await makeImage(store.content);
    await store.add({ target: img.target, names: ['base:1'] });
    const workers = 4;
    const rounds = 15;
    await Promise.all(
      Array.from({ length: workers }, (_, w) =>
        runChild(
          `import { ImageStore } from ${JSON.stringify(distIndex)};
           const store = new ImageStore({ root: ${JSON.stringify(dir)} });
           for (let i = 0; i < ${rounds}; i++) {
             await store.tag('base:1', 'w${w}:' + i);
             if (i % 3 === 0) await store.remove('w${w}:' + i, { gc: false });
           }`,
        ),
      ),
    );
    const record = await new ImageStore({ root: dir }).resolve('base:1');
    const expected = ['base:1'];
    for (let w = 0; w < workers; w++) for (let i = 0; i < rounds; i++) if (i % 3 !== 0) expected.push(`w${w}:${i}`);
    expect([...record.repoTags].sort()).toEqual(expected.sort());
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
    expect(index.manifests).toHaveLength(expected.length);
  });

  it('never lets a concurrent GC delete content of images being added or present', async () => {
    const script = `import { ImageStore } from ${JSON.stringify(distIndex)};
      import { randomBytes } from 'node:crypto';
      const store = new ImageStore({ root: ${JSON.stringify(dir)} });
      for (let i = 0; i < 12; i++) {
        await store.withLease(async (lease) => {
          const layer = await lease.content.put(randomBytes(1000));
          const config = await lease.content.put(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.digest] } })));
          const manifest = await lease.content.put(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: '${MediaType.OciManifest}',
            config: { mediaType: '${MediaType.OciConfig}', ...config }, layers: [{ mediaType: '${MediaType.OciLayer}', ...layer }] })));
          await store.add({ target: { mediaType: '${MediaType.OciManifest}', ...manifest }, names: ['img:' + i] });
        });
        if (i % 2 === 1) await store.remove('img:' + (i - 1));
      }`;
    const gcs = runChild(
      `import { ImageStore } from ${JSON.stringify(distIndex)};
       const store = new ImageStore({ root: ${JSON.stringify(dir)} });
       const until = Date.now() + 3000;
       while (Date.now() < until) await store.gc();`,
    );
    await Promise.all([runChild(script), gcs]);
    const images = await store.list();
    expect(images.map((i) => i.repoTags[0]).sort()).toEqual(['img:1', 'img:11', 'img:3', 'img:5', 'img:7', 'img:9']);
    for (const image of images) {
      const details = await store.inspect(image.id);
      for (const layer of details.manifest.layers) expect(await store.content.stat(layer.digest)).toEqual({ size: layer.size });
    }
    expect((await store.gc()).removedBlobs).toEqual([]);
  });
});
