import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Digest } from '@berth/oci';
import { LocalContentStore } from '@berth/store';
import { startRegistry, type RegistryRig } from '@berth/tools/registry-rig';
import { buildBusyboxImage, type TestDescriptor, type TestImage } from '@berth/tools/test-images';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RegistryClient, type ProgressEvent } from './index.js';

let registry: RegistryRig;
let dir: string;
let content: LocalContentStore;
const clients: RegistryClient[] = [];
const images: TestImage[] = [];

beforeEach(async () => {
  registry = await startRegistry();
  dir = await mkdtemp(join(tmpdir(), 'berth-push-test-'));
  content = new LocalContentStore({ root: join(dir, 'store') });
});

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  await registry.stop();
  await rm(dir, { recursive: true, force: true });
  for (const image of images.splice(0)) await image.remove();
});

function newClient(options: ConstructorParameters<typeof RegistryClient>[0] = {}): RegistryClient {
  const client = new RegistryClient({ retryDelayMs: 10, ...options });
  clients.push(client);
  return client;
}

/** Builds an image and writes all of its blobs (or those of the chosen platforms) into the store. */
async function imageInStore(options: Parameters<typeof buildBusyboxImage>[0] & { only?: readonly string[] } = {}): Promise<TestImage> {
  const image = await buildBusyboxImage(options);
  images.push(image);
  const blobs: TestDescriptor[] = image.index ? [image.index.descriptor] : [];
  for (const m of image.manifests) {
    if (options.only && !options.only.includes(m.platform)) continue;
    blobs.push(m.descriptor, m.config, ...m.layers);
  }
  for (const d of blobs) {
    const ingest = await content.ingest({ digest: d.digest, size: d.size });
    if (ingest.offset < d.size) await pipeline(createReadStream(image.blobPath(d.digest)), ingest.writer);
    await ingest.commit();
  }
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

const short = (d: string) => d.slice(7, 19);

describe('push', () => {
  it('pushes blobs and the manifest, prints the digest line as docker does, and pulls back by tag and by digest', async () => {
    const image = await imageInStore({ layers: 3, layerBytes: 250_000 });
    const m = image.manifests[0]!;
    const client = newClient();
    const ref = `${registry.host}/team/app:v1`;
    const { events, result } = await collect(client.push(ref, { content, manifestDigest: m.descriptor.digest }));
    expect(result).toMatchObject({ digest: m.descriptor.digest, size: m.bytes.length, mediaType: m.descriptor.mediaType });
    expect(events[0]).toEqual({ status: `The push refers to repository [${registry.host}/team/app]` });
    expect(statuses(events, short(m.layers[1]!.digest))).toEqual(['Preparing', 'Pushing', 'Pushed']);
    expect(events.filter((e) => e.id === short(m.layers[1]!.digest) && e.status === 'Pushing').at(-1)).toMatchObject({
      current: m.layers[1]!.size,
      total: m.layers[1]!.size,
    });
    expect(events.some((e) => e.id === short(m.config.digest))).toBe(false);
    expect(events.at(-1)).toEqual({ status: `v1: digest: ${m.descriptor.digest} size: ${m.bytes.length}` });

    const fresh = new LocalContentStore({ root: join(dir, 'fresh') });
    const byTag = await newClient().pull(ref, { content: fresh }).result;
    expect(byTag.manifestDescriptor.digest).toBe(m.descriptor.digest);
    expect(byTag.config.rootfs.diff_ids).toEqual(m.diffIds);
    const other = new LocalContentStore({ root: join(dir, 'other') });
    const byDigest = await newClient().pull(`${registry.host}/team/app@${m.descriptor.digest}`, { content: other }).result;
    expect(byDigest.configDescriptor.digest).toBe(m.config.digest);
    for (const l of m.layers) expect(await other.stat(l.digest)).toEqual({ size: l.size });

    const again = await collect(client.push(ref, { content, manifestDigest: m.descriptor.digest }));
    for (const l of m.layers) expect(statuses(again.events, short(l.digest))).toEqual(['Preparing', 'Layer already exists']);
  });

  it('mounts blobs from another repository of the registry instead of uploading them', async () => {
    const image = await imageInStore({ layers: 2, layerBytes: 100_000 });
    const m = image.manifests[0]!;
    await newClient().push(`${registry.host}/library/base:1`, { content, manifestDigest: m.descriptor.digest }).result;

    // A client that knows nothing of earlier pushes mounts from the repository it is told of.
    const told = await collect(
      newClient().push(`${registry.host}/other/app:1`, { content, manifestDigest: m.descriptor.digest, mountFrom: ['library/base'] }),
    );
    for (const l of m.layers) expect(statuses(told.events, short(l.digest))).toEqual(['Preparing', 'Mounted from library/base']);

    // The same client remembers where it pushed (or pulled) a blob and mounts from there.
    const client = newClient();
    await client.push(`${registry.host}/first:1`, { content, manifestDigest: m.descriptor.digest }).result;
    const remembered = await collect(client.push(`${registry.host}/second:1`, { content, manifestDigest: m.descriptor.digest }));
    for (const l of m.layers) expect(statuses(remembered.events, short(l.digest))).toEqual(['Preparing', 'Mounted from first']);
    const pulled = await newClient().pull(`${registry.host}/second:1`, { content: new LocalContentStore({ root: join(dir, 'check') }) }).result;
    expect(pulled.manifestDescriptor.digest).toBe(m.descriptor.digest);
  });

  it('uploads in chunks when asked to', async () => {
    const image = await imageInStore({ layers: 2, layerBytes: 300_000 });
    const m = image.manifests[0]!;
    const chunkSize = 64 << 10;
    const { events } = await collect(
      newClient({ uploadMode: 'chunked', chunkSize }).push(`${registry.host}/chunked:1`, { content, manifestDigest: m.descriptor.digest }),
    );
    const big = m.layers[1]!;
    const sizes = events.filter((e) => e.id === short(big.digest) && e.status === 'Pushing').map((e) => e.current!);
    expect(sizes.length).toBeGreaterThan(3);
    expect(sizes.slice(0, -1).every((n) => n % chunkSize === 0)).toBe(true);
    expect(sizes.at(-1)).toBe(big.size);
    const back = await newClient().pull(`${registry.host}/chunked:1`, { content: new LocalContentStore({ root: join(dir, 'back') }) }).result;
    expect(back.manifest.layers.map((l) => l.digest)).toEqual(m.layers.map((l) => l.digest));
  });

  it('pushes a multi-platform index with its manifests, keeping every digest', async () => {
    const image = await imageInStore({ layers: 2, platforms: ['linux/amd64', 'linux/arm64'], mediaTypes: 'docker' });
    const client = newClient();
    const ref = `${registry.host}/multi:2`;
    const { events, result } = await collect(client.push(ref, { content, manifestDigest: image.index!.descriptor.digest }));
    expect(result.digest).toBe(image.index!.descriptor.digest);
    expect(result.mediaType).toBe('application/vnd.docker.distribution.manifest.list.v2+json');
    expect(events.at(-1)?.status).toBe(`2: digest: ${image.index!.descriptor.digest} size: ${image.index!.bytes.length}`);
    const fetched = await client.getManifest(ref);
    expect(fetched.bytes.equals(image.index!.bytes)).toBe(true);
    for (const m of image.manifests) {
      const child = await client.getManifest(`${registry.host}/multi@${m.descriptor.digest}`);
      expect(child.descriptor.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    }
  });

  it('refuses an index whose other platforms are neither local nor in the repository', async () => {
    const image = await imageInStore({ platforms: ['linux/amd64', 'linux/arm64'], only: ['linux/amd64'] });
    const arm = image.manifests.find((m) => m.platform === 'linux/arm64')!;
    const err = await newClient()
      .push(`${registry.host}/partial:1`, { content, manifestDigest: image.index!.descriptor.digest })
      .result.catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_MISSING_CONTENT', kind: 'FailedPrecondition' });
    expect((err as Error).message).toContain(`manifest ${arm.descriptor.digest} (linux/arm64)`);
  });

  it('pushes by digest without a tag', async () => {
    const image = await imageInStore();
    const m = image.manifests[0]!;
    const { events } = await collect(newClient().push(`${registry.host}/untagged@${m.descriptor.digest}`, { content }));
    expect(events.at(-1)).toEqual({ status: `digest: ${m.descriptor.digest} size: ${m.bytes.length}` });
    const fetched = await newClient().getManifest(`${registry.host}/untagged@${m.descriptor.digest}`);
    expect(fetched.bytes.equals(m.bytes)).toBe(true);
    // distribution keeps no tag for it: the repository has no tags to list.
    await expect(newClient().listTags(`${registry.host}/untagged`)).rejects.toMatchObject({ code: 'ERR_NAME_UNKNOWN' });
  });

  it('lists tags', async () => {
    const image = await imageInStore();
    const client = newClient();
    const digest = image.manifests[0]!.descriptor.digest as Digest;
    for (const tag of ['b', 'a', 'c']) await client.push(`${registry.host}/tags:${tag}`, { content, manifestDigest: digest }).result;
    expect((await client.listTags(`${registry.host}/tags`)).sort()).toEqual(['a', 'b', 'c']);
  });
});
