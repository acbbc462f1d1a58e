import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parsePlatform, type Descriptor, type Digest } from '@berth/oci';
import { LeaseManager, LocalContentStore } from '@berth/store';
import { startRegistry, type RegistryRig } from '@berth/tools/registry-rig';
import { pushBusyboxImage, type TestImage } from '@berth/tools/test-images';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RegistryClient, type ProgressEvent } from './index.js';

let registry: RegistryRig;
let root: string;
let content: LocalContentStore;
let client: RegistryClient;
const images: TestImage[] = [];

beforeEach(async () => {
  registry = await startRegistry();
  root = await mkdtemp(join(tmpdir(), 'berth-pull-test-'));
  content = new LocalContentStore({ root });
  client = new RegistryClient({ retryDelayMs: 10 });
});

afterEach(async () => {
  await client.close();
  await registry.stop();
  await rm(root, { recursive: true, force: true });
  for (const image of images.splice(0)) await image.remove();
});

async function pushed(repoTag: string, options: Parameters<typeof pushBusyboxImage>[2] = {}): Promise<TestImage> {
  const image = await pushBusyboxImage(registry, repoTag, options);
  images.push(image);
  return image;
}

async function collect<R>(op: AsyncIterable<ProgressEvent> & { result: Promise<R> }): Promise<{ events: ProgressEvent[]; result: R }> {
  const events: ProgressEvent[] = [];
  for await (const e of op) events.push(e);
  return { events, result: await op.result };
}

function statuses(events: readonly ProgressEvent[], id: string): string[] {
  return events.filter((e) => e.id === id).map((e) => e.status).filter((s, i, all) => s !== all[i - 1]);
}

async function stored(digests: readonly Digest[]): Promise<boolean[]> {
  return Promise.all(digests.map(async (d) => (await content.stat(d)) !== undefined));
}

describe('pull', () => {
  it('pulls by tag into the content store with docker progress messages, then finds it up to date', async () => {
    const image = await pushed('busybox:latest', { layers: 3, layerBytes: 300_000 });
    const m = image.manifests[0]!;
    const ref = `${registry.host}/busybox:latest`;
    const { events, result } = await collect(client.pull(ref, { content }));

    expect(result.descriptor.digest).toBe(image.target.digest);
    expect(result.manifestDescriptor.digest).toBe(m.descriptor.digest);
    expect(result.configDescriptor.digest).toBe(m.config.digest);
    expect(result.configBytes.equals(m.configBytes)).toBe(true);
    expect(result.config.rootfs.diff_ids).toEqual(m.diffIds);
    expect(result.platform).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(result.downloaded).toBe(true);
    expect(await stored([m.descriptor.digest, m.config.digest, ...m.layers.map((l) => l.digest)])).toEqual([true, true, true, true, true]);
    expect((await content.readBytes(m.descriptor.digest)).equals(m.bytes)).toBe(true);

    expect(events[0]).toEqual({ id: 'latest', status: 'Pulling from busybox' });
    const big = m.layers[1]!;
    const id = big.digest.slice(7, 19);
    expect(statuses(events, id)).toEqual(['Pulling fs layer', 'Downloading', 'Verifying Checksum', 'Download complete', 'Pull complete']);
    const progress = events.filter((e) => e.id === id && e.status === 'Downloading');
    expect(progress.at(-1)).toMatchObject({ current: big.size, total: big.size });
    expect(events.at(-2)).toEqual({ status: `Digest: ${image.target.digest}` });
    expect(events.at(-1)).toEqual({ status: `Status: Downloaded newer image for ${ref}` });

    const again = await collect(client.pull(ref, { content }));
    expect(again.result.downloaded).toBe(false);
    expect(statuses(again.events, id)).toEqual(['Already exists']);
    expect(again.events.at(-1)).toEqual({ status: `Status: Image is up to date for ${ref}` });
  });

  it('pulls by digest, and refuses a digest the registry does not have', async () => {
    const image = await pushed('app:v1', { layers: 2 });
    const ref = `${registry.host}/app@${image.target.digest}`;
    const { result, events } = await collect(client.pull(ref, { content }));
    expect(result.manifestDescriptor.digest).toBe(image.target.digest);
    expect(events[0]).toEqual({ id: image.target.digest, status: 'Pulling from app' });
    expect(events.at(-1)?.status).toBe(`Status: Downloaded newer image for ${ref}`);

    const absent = `sha256:${'0'.repeat(64)}` as Digest;
    await expect(client.pull(`${registry.host}/app@${absent}`, { content }).result).rejects.toMatchObject({
      code: 'ERR_MANIFEST_UNKNOWN',
      kind: 'NotFound',
    });
  });

  it('names the missing tag as docker does', async () => {
    await pushed('busybox:latest');
    const err = await client.pull(`${registry.host}/busybox:nope`, { content }).result.catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_MANIFEST_UNKNOWN', kind: 'NotFound', status: 404, registryCodes: ['MANIFEST_UNKNOWN'] });
    expect((err as Error).message).toBe(`manifest for ${registry.host}/busybox:nope not found: manifest unknown: manifest unknown`);
  });

  it('selects the host platform from an index, another with --platform, and lists the platforms when none match', async () => {
    const platforms = ['linux/amd64', 'linux/arm64', 'linux/arm/v7'];
    const image = await pushed('multi:1', { layers: 2, platforms });
    const ref = `${registry.host}/multi:1`;
    const byPlatform = (p: string) => image.manifests.find((m) => m.platform === p)!;

    const host = await client.pull(ref, { content }).result;
    expect(host.indexDescriptor?.digest).toBe(image.index!.descriptor.digest);
    expect(host.descriptor.digest).toBe(image.index!.descriptor.digest);
    expect(host.manifestDescriptor.digest).toBe(byPlatform('linux/amd64').descriptor.digest);
    expect(host.platform).toEqual({ os: 'linux', architecture: 'amd64' });
    expect((await content.readBytes(image.index!.descriptor.digest)).equals(image.index!.bytes)).toBe(true);
    const arm = byPlatform('linux/arm64');
    expect(await stored([arm.descriptor.digest, arm.layers.at(-1)!.digest])).toEqual([false, false]);

    const other = await client.pull(ref, { content, platform: parsePlatform('linux/arm64') }).result;
    expect(other.manifestDescriptor.digest).toBe(arm.descriptor.digest);
    expect(other.platform).toEqual({ os: 'linux', architecture: 'arm64' });
    expect(await stored([arm.descriptor.digest, arm.config.digest, arm.layers.at(-1)!.digest])).toEqual([true, true, true]);

    const v7 = await client.pull(ref, { content, platform: parsePlatform('linux/arm') }).result;
    expect(v7.manifestDescriptor.digest).toBe(byPlatform('linux/arm/v7').descriptor.digest);

    const err = await client.pull(ref, { content, platform: parsePlatform('linux/s390x') }).result.catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_NO_MATCHING_PLATFORM', kind: 'NotFound' });
    expect((err as Error).message).toContain('no matching manifest for linux/s390x');
    expect((err as Error).message).toContain('available: linux/amd64, linux/arm64, linux/arm/v7');
  });

  it('reads Docker schema2 manifest lists and manifests', async () => {
    const image = await pushed('docker-types:1', { layers: 2, platforms: ['linux/amd64', 'linux/arm64'], mediaTypes: 'docker' });
    const result = await client.pull(`${registry.host}/docker-types:1`, { content }).result;
    expect(result.indexDescriptor?.mediaType).toBe('application/vnd.docker.distribution.manifest.list.v2+json');
    expect(result.manifestDescriptor.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(result.manifestDescriptor.digest).toBe(image.manifests[0]!.descriptor.digest);
    expect(result.configDescriptor.mediaType).toBe('application/vnd.docker.container.image.v1+json');
  });

  it('refuses a single-platform image of another platform with --platform, and only warns without', async () => {
    await pushed('arm-only:1', { platforms: ['linux/arm64'] });
    const ref = `${registry.host}/arm-only:1`;
    await expect(client.pull(ref, { content, platform: parsePlatform('linux/amd64') }).result).rejects.toMatchObject({
      code: 'ERR_NO_MATCHING_PLATFORM',
      message: expect.stringContaining('does not match the specified platform: wanted linux/amd64, actual: linux/arm64'),
    });
    const result = await client.pull(ref, { content }).result;
    expect(result.platform).toEqual({ os: 'linux', architecture: 'arm64' });
    expect(result.warnings).toEqual([
      "The requested image's platform (linux/arm64) does not match the detected host platform (linux/amd64) and no specific platform was requested",
    ]);
  });

  it('refuses a corrupted blob with a digest error and stores neither it nor the manifest', async () => {
    const image = await pushed('corrupt:1', { layers: 2, layerBytes: 200_000 });
    const m = image.manifests[0]!;
    const victim = m.layers[1]!;
    // Same size, different bytes: only the digest can tell.
    await writeFile(registry.blobPath(victim.digest), Buffer.alloc(victim.size, 7));
    const err = await client.pull(`${registry.host}/corrupt:1`, { content }).result.catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_DIGEST_MISMATCH' });
    expect((err as Error).message).toContain(`filesystem layer verification failed for digest ${victim.digest}`);
    expect(await stored([victim.digest, m.descriptor.digest])).toEqual([false, false]);
    const partials = (await readdir(join(root, 'ingest'))).filter((n) => n.endsWith('.data') && n.includes(victim.digest.slice(7)));
    expect(partials).toEqual([]);
  });

  it('hands each layer to unpackLayer in order once it is stored', async () => {
    const image = await pushed('unpack:1', { layers: 4, layerBytes: 100_000 });
    const m = image.manifests[0]!;
    const seen: { digest: string; position: number; present: boolean; diffId: string }[] = [];
    const { events } = await collect(
      client.pull(`${registry.host}/unpack:1`, {
        content,
        unpackLayer: async (layer: Descriptor, position: number, { diffId }) => {
          seen.push({ digest: layer.digest, position, present: (await content.stat(layer.digest)) !== undefined, diffId });
        },
      }),
    );
    expect(seen).toEqual(m.layers.map((l, position) => ({ digest: l.digest, position, present: true, diffId: m.diffIds[position] })));
    const id = m.layers[2]!.digest.slice(7, 19);
    expect(statuses(events, id).slice(-3)).toEqual(['Download complete', 'Extracting', 'Pull complete']);
  });

  it('lets two pulls sharing layers run at once into one store', async () => {
    const a = await pushed('shared-a:1', { layers: 3, layerBytes: 500_000, seed: 'shared' });
    const b = await pushed('shared-b:1', { layers: 3, layerBytes: 500_000, seed: 'shared' });
    const second = new RegistryClient({});
    const [ra, rb] = await Promise.all([
      client.pull(`${registry.host}/shared-a:1`, { content }).result,
      second.pull(`${registry.host}/shared-b:1`, { content }).result,
    ]).finally(() => second.close());
    expect(ra.manifestDescriptor.digest).toBe(a.target.digest);
    expect(rb.manifestDescriptor.digest).toBe(b.target.digest);
    for (const l of a.manifests[0]!.layers) expect(await content.stat(l.digest)).toEqual({ size: l.size });
  });

  it('pulls through a store lease, which then protects every blob it wrote from garbage collection', async () => {
    const image = await pushed('leased:1', { layers: 2, platforms: ['linux/amd64', 'linux/arm64'] });
    const leases = new LeaseManager({ dir: join(root, 'leases'), gcLockPath: join(root, 'gc.lock'), content });
    const lease = await leases.create();
    try {
      const result = await client.pull(`${registry.host}/leased:1`, { content: lease.content }).result;
      const m = image.manifests.find((x) => x.platform === 'linux/amd64')!;
      const { blobs } = await leases.active();
      for (const d of [image.index!.descriptor.digest, result.manifestDescriptor.digest, m.config.digest, ...m.layers.map((l) => l.digest)]) {
        expect(blobs.has(d as Digest)).toBe(true);
      }
    } finally {
      await lease.release();
    }
  });

  it('stops when the signal fires and reports Canceled', async () => {
    await pushed('cancel:1', { layers: 2, layerBytes: 2_000_000 });
    const ac = new AbortController();
    const op = client.pull(`${registry.host}/cancel:1`, { content, signal: ac.signal });
    ac.abort(new Error('user pressed ^C'));
    await expect(op.result).rejects.toMatchObject({ kind: 'Canceled' });
  });
});
