import { execFile, spawn } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGzip } from 'node:zlib';
import { makeBusyboxRootfs } from './rootfs.js';
import type { RegistryRig } from './registry-rig.js';

const run = promisify(execFile);

/** A content descriptor as OCI writes it. */
export interface TestDescriptor {
  readonly mediaType: string;
  readonly digest: `sha256:${string}`;
  readonly size: number;
  readonly platform?: { readonly os: string; readonly architecture: string; readonly variant?: string };
  readonly annotations?: Readonly<Record<string, string>>;
}

/** One single-platform manifest of a built image, with its raw bytes. */
export interface TestManifest {
  /** `linux/amd64`, `linux/arm/v7`. */
  readonly platform: string;
  readonly descriptor: TestDescriptor;
  readonly bytes: Buffer;
  readonly config: TestDescriptor;
  readonly configBytes: Buffer;
  readonly layers: readonly TestDescriptor[];
  /** The uncompressed digests of the layers, as the config lists them. */
  readonly diffIds: readonly string[];
}

/** An image written as an OCI image layout, tagged `latest` in its index.json. */
export interface TestImage {
  /** The OCI layout directory (`oci:<dir>:latest` for skopeo). */
  readonly dir: string;
  /** What the tag points to: the index when there is one, otherwise the only manifest. */
  readonly target: TestDescriptor;
  readonly targetBytes: Buffer;
  readonly index?: { readonly descriptor: TestDescriptor; readonly bytes: Buffer };
  readonly manifests: readonly TestManifest[];
  /** The path of a blob in the layout. */
  blobPath(digest: string): string;
  /** Removes the layout directory. */
  remove(): Promise<void>;
}

/** Options of `buildBusyboxImage`. */
export interface TestImageOptions {
  /** Number of layers (default 1): the first is the busybox rootfs, each further one adds generated files. */
  readonly layers?: number;
  /**
   * Platforms as `os/arch[/variant]`. One (the default, `linux/amd64`) gives a single manifest; more give an index
   * whose manifests differ in their config and in `/etc/platform`.
   */
  readonly platforms?: readonly string[];
  /** Always write an index, even for one platform. */
  readonly index?: boolean;
  /** OCI (default) or Docker schema2 media types. */
  readonly mediaTypes?: 'oci' | 'docker';
  /** Bytes of pseudo-random (incompressible) data in each layer after the first (default 4 KiB). */
  readonly layerBytes?: number;
  /** Bytes of pseudo-random data added to the first layer beside busybox (default 0). */
  readonly firstLayerBytes?: number;
  /** Makes the content of this image differ from another's with the same options. */
  readonly seed?: string;
  /** The directory the layout is written to (default: a fresh temp dir). */
  readonly dir?: string;
}

const types = {
  oci: {
    manifest: 'application/vnd.oci.image.manifest.v1+json',
    index: 'application/vnd.oci.image.index.v1+json',
    config: 'application/vnd.oci.image.config.v1+json',
    layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  },
  docker: {
    manifest: 'application/vnd.docker.distribution.manifest.v2+json',
    index: 'application/vnd.docker.distribution.manifest.list.v2+json',
    config: 'application/vnd.docker.container.image.v1+json',
    layer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  },
} as const;

function sha256(data: Uint8Array): `sha256:${string}` {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

function parsePlatform(p: string): { os: string; architecture: string; variant?: string } {
  const [os, architecture, variant] = p.split('/');
  if (!os || !architecture) throw new Error(`platform ${JSON.stringify(p)}: want os/arch[/variant]`);
  return { os, architecture, ...(variant ? { variant } : {}) };
}

/** Deterministic incompressible bytes: an AES-CTR keystream keyed by `seed`. */
export function pseudoRandom(seed: string, size: number): Readable {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(1 << 20);
  let left = size;
  return new Readable({
    highWaterMark: 1 << 20,
    read() {
      if (left === 0) {
        this.push(null);
        return;
      }
      const n = Math.min(left, zeros.length);
      left -= n;
      this.push(cipher.update(zeros.subarray(0, n)));
    },
  });
}

async function writeRandomFile(path: string, seed: string, size: number): Promise<void> {
  await pipeline(pseudoRandom(seed, size), createWriteStream(path));
}

// GNU tar with fixed order, owners and times gives the same bytes for the same tree.
async function tarDirectory(source: string, tarFile: string): Promise<void> {
  await run('tar', [
    '--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '--format=posix',
    '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime', '-C', source, '-cf', tarFile, '.',
  ]);
}

/** Gzips `tarFile` into the layout's blobs and returns the layer descriptor and diffID. */
async function addLayer(dir: string, tarFile: string, mediaType: string, level: number): Promise<{ descriptor: TestDescriptor; diffId: string }> {
  const diff = createHash('sha256');
  const compressed = createHash('sha256');
  let size = 0;
  const tmp = join(dir, 'blobs', 'sha256', `.layer-${process.pid}-${Date.now()}-${Math.random().toString(16).slice(2)}`);
  await pipeline(
    createReadStream(tarFile, { highWaterMark: 1 << 20 }),
    new Transform({
      transform(chunk: Buffer, _e, cb) {
        diff.update(chunk);
        cb(null, chunk);
      },
    }),
    createGzip({ level, chunkSize: 1 << 16 }),
    new Transform({
      transform(chunk: Buffer, _e, cb) {
        compressed.update(chunk);
        size += chunk.length;
        cb(null, chunk);
      },
    }),
    createWriteStream(tmp),
  );
  const digest = `sha256:${compressed.digest('hex')}` as const;
  await run('mv', ['-f', tmp, join(dir, 'blobs', 'sha256', digest.slice(7))]);
  return { descriptor: { mediaType, digest, size }, diffId: `sha256:${diff.digest('hex')}` };
}

async function addBlob(dir: string, data: Buffer): Promise<`sha256:${string}`> {
  const digest = sha256(data);
  await writeFile(join(dir, 'blobs', 'sha256', digest.slice(7)), data);
  return digest;
}

/**
 * Builds a small busybox-based image from Debian's static busybox and writes it as an OCI
 * image layout tagged `latest`. Nothing is fetched; the same options give the same digests.
 */
export async function buildBusyboxImage(options: TestImageOptions = {}): Promise<TestImage> {
  const layerCount = options.layers ?? 1;
  if (!Number.isInteger(layerCount) || layerCount < 1) throw new Error(`layers must be a positive integer, got ${layerCount}`);
  const platforms = options.platforms ?? ['linux/amd64'];
  if (platforms.length === 0) throw new Error('platforms must not be empty');
  const mt = types[options.mediaTypes ?? 'oci'];
  const seed = options.seed ?? 'berth';
  const layerBytes = options.layerBytes ?? 4096;
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'berth-image-')));
  const work = await mkdtemp(join(tmpdir(), 'berth-image-work-'));
  try {
    await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
    await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');

    // Layers shared by every platform, then one per platform naming it, so that pulling the
    // wrong platform shows in the content as well as in the config.
    const shared: { descriptor: TestDescriptor; diffId: string }[] = [];
    const rootfs = join(work, 'rootfs');
    await makeBusyboxRootfs(rootfs);
    if (options.firstLayerBytes) await writeRandomFile(join(rootfs, 'etc', 'payload-0'), `${seed}/0`, options.firstLayerBytes);
    await tarDirectory(rootfs, join(work, 'layer-0.tar'));
    shared.push(await addLayer(dir, join(work, 'layer-0.tar'), mt.layer, 6));
    const sharedCount = platforms.length > 1 ? layerCount - 1 : layerCount;
    for (let i = 1; i < sharedCount; i++) {
      const tree = join(work, `tree-${i}`);
      await mkdir(join(tree, 'etc'), { recursive: true });
      await mkdir(join(tree, 'data'), { recursive: true });
      await writeFile(join(tree, 'etc', `layer-${i}`), `layer ${i} of ${seed}\n`);
      await writeRandomFile(join(tree, 'data', `payload-${i}`), `${seed}/${i}`, layerBytes);
      await tarDirectory(tree, join(work, `layer-${i}.tar`));
      // Level 1: the payload is incompressible, and big test layers should not cost seconds to make.
      shared.push(await addLayer(dir, join(work, `layer-${i}.tar`), mt.layer, 1));
    }

    const manifests: TestManifest[] = [];
    for (const [n, platformText] of platforms.entries()) {
      const platform = parsePlatform(platformText);
      const layers = [...shared];
      if (platforms.length > 1) {
        const tree = join(work, `platform-${n}`);
        await mkdir(join(tree, 'etc'), { recursive: true });
        await writeFile(join(tree, 'etc', 'platform'), `${platformText}\n`);
        if (layerCount > 1) await writeRandomFile(join(tree, 'etc', 'payload'), `${seed}/${platformText}`, layerBytes);
        await tarDirectory(tree, join(work, `platform-${n}.tar`));
        layers.push(await addLayer(dir, join(work, `platform-${n}.tar`), mt.layer, 1));
      }
      const config = {
        created: '2026-01-01T00:00:00Z',
        architecture: platform.architecture,
        os: platform.os,
        ...(platform.variant ? { variant: platform.variant } : {}),
        config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'], Labels: { 'org.berth.test.seed': seed } },
        rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
        history: layers.map((_, i) => ({ created: '2026-01-01T00:00:00Z', created_by: `berth test layer ${i}` })),
      };
      const configBytes = Buffer.from(JSON.stringify(config));
      const configDescriptor: TestDescriptor = { mediaType: mt.config, digest: await addBlob(dir, configBytes), size: configBytes.length };
      const manifest = { schemaVersion: 2, mediaType: mt.manifest, config: configDescriptor, layers: layers.map((l) => l.descriptor) };
      const bytes = Buffer.from(JSON.stringify(manifest));
      const descriptor: TestDescriptor = { mediaType: mt.manifest, digest: await addBlob(dir, bytes), size: bytes.length, platform };
      manifests.push({
        platform: platformText,
        descriptor,
        bytes,
        config: configDescriptor,
        configBytes,
        layers: layers.map((l) => l.descriptor),
        diffIds: layers.map((l) => l.diffId),
      });
    }

    let index: TestImage['index'];
    let target: TestDescriptor;
    let targetBytes: Buffer;
    if (platforms.length > 1 || options.index) {
      const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: mt.index, manifests: manifests.map((m) => m.descriptor) }));
      const descriptor: TestDescriptor = { mediaType: mt.index, digest: await addBlob(dir, bytes), size: bytes.length };
      index = { descriptor, bytes };
      target = descriptor;
      targetBytes = bytes;
    } else {
      const { platform: _platform, ...rest } = manifests[0]!.descriptor;
      target = rest;
      targetBytes = manifests[0]!.bytes;
    }
    const layoutIndex = {
      schemaVersion: 2,
      mediaType: types.oci.index,
      manifests: [{ ...target, annotations: { 'org.opencontainers.image.ref.name': 'latest' } }],
    };
    await writeFile(join(dir, 'index.json'), JSON.stringify(layoutIndex));
    return {
      dir,
      target,
      targetBytes,
      ...(index ? { index } : {}),
      manifests,
      blobPath: (digest) => join(dir, 'blobs', 'sha256', digest.replace(/^sha256:/, '')),
      remove: () => rm(dir, { recursive: true, force: true }),
    };
  } catch (err) {
    if (!options.dir) await rm(dir, { recursive: true, force: true });
    throw err;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

// The token a rig's token server gives the first user for `scope`.
async function rigAuthorization(registry: RegistryRig, scope: string): Promise<string | undefined> {
  if (registry.auth === 'none' || !registry.creds) return undefined;
  const basic = `Basic ${Buffer.from(registry.creds).toString('base64')}`;
  if (registry.auth === 'basic') return basic;
  const ping = await fetch(`${registry.url}/v2/`);
  await ping.body?.cancel();
  const challenge = ping.headers.get('www-authenticate') ?? '';
  const realm = /realm="([^"]+)"/.exec(challenge)?.[1];
  const service = /service="([^"]+)"/.exec(challenge)?.[1];
  if (!realm || !service) throw new Error(`registry ${registry.host} sent no bearer challenge: ${challenge}`);
  const url = `${realm}?service=${encodeURIComponent(service)}&scope=${encodeURIComponent(scope)}`;
  const res = await fetch(url, { headers: { authorization: basic } });
  if (!res.ok) throw new Error(`token server refused ${url}: ${res.status}`);
  return `Bearer ${((await res.json()) as { token: string }).token}`;
}

async function expectStatus(res: Response, want: number, what: string): Promise<void> {
  if (res.status !== want) throw new Error(`${what}: HTTP ${res.status}: ${await res.text()}`);
}

/**
 * Uploads a built image into a rig registry as `repo:tag` with plain HTTP requests of its own
 * (an implementation independent of Berth's client): blobs monolithically, then manifests by
 * digest, then the tag. Digests are kept as built.
 */
export async function pushImage(registry: RegistryRig, image: TestImage, repoTag: string): Promise<void> {
  const colon = repoTag.lastIndexOf(':');
  const repo = colon > 0 ? repoTag.slice(0, colon) : repoTag;
  const tag = colon > 0 ? repoTag.slice(colon + 1) : 'latest';
  const authorization = await rigAuthorization(registry, `repository:${repo}:pull,push`);
  const headers = (extra: Record<string, string> = {}): Record<string, string> => ({ ...extra, ...(authorization ? { authorization } : {}) });
  const base = `${registry.url}/v2/${repo}`;
  const blobs = new Map<string, number>();
  for (const m of image.manifests) for (const d of [m.config, ...m.layers]) blobs.set(d.digest, d.size);
  for (const [digest, size] of blobs) {
    const head = await fetch(`${base}/blobs/${digest}`, { method: 'HEAD', headers: headers() });
    if (head.status === 200) continue;
    const start = await fetch(`${base}/blobs/uploads/`, { method: 'POST', headers: headers() });
    await expectStatus(start, 202, `start upload of ${digest}`);
    const location = new URL(start.headers.get('location') ?? '', registry.url);
    location.searchParams.set('digest', digest);
    const put = await fetch(location, {
      method: 'PUT',
      headers: headers({ 'content-type': 'application/octet-stream', 'content-length': String(size) }),
      body: Readable.toWeb(createReadStream(image.blobPath(digest))) as ReadableStream,
      duplex: 'half',
    } as RequestInit);
    await expectStatus(put, 201, `upload of ${digest}`);
  }
  const putManifest = async (reference: string, mediaType: string, bytes: Buffer) => {
    const res = await fetch(`${base}/manifests/${reference}`, { method: 'PUT', headers: headers({ 'content-type': mediaType }), body: bytes });
    await expectStatus(res, 201, `put manifest ${repo}:${reference}`);
  };
  for (const m of image.manifests) await putManifest(image.index ? m.descriptor.digest : tag, m.descriptor.mediaType, m.bytes);
  if (image.index) await putManifest(tag, image.index.descriptor.mediaType, image.index.bytes);
}

/**
 * Builds a busybox image (see `buildBusyboxImage`) and pushes it to `registry` as `repo:tag`.
 * The layout is removed once pushed (nothing to clean up); the returned image keeps the
 * descriptors and bytes of what was pushed.
 */
export async function pushBusyboxImage(registry: RegistryRig, repoTag: string, options: TestImageOptions = {}): Promise<TestImage> {
  const image = await buildBusyboxImage(options);
  try {
    await pushImage(registry, image, repoTag);
  } finally {
    await image.remove();
  }
  return image;
}

/**
 * The benchmark image: three gzip layers of about 40 MB each (busybox plus incompressible
 * data), about 126 MB to transfer, as an OCI layout in `dir` (default: a fresh temp dir).
 */
export async function buildBenchImage(options: { readonly dir?: string } = {}): Promise<TestImage> {
  return buildBusyboxImage({ layers: 3, firstLayerBytes: 39 << 20, layerBytes: 40 << 20, seed: 'berth-bench', ...(options.dir ? { dir: options.dir } : {}) });
}

/**
 * A tar of `dir`'s contents as a client would stream it. Piped at once into a buffer stream:
 * Node drains a child's stdout that nobody reads yet when the child exits, so a small tar
 * handed to code that awaits something before reading would arrive empty.
 */
export function tarOfDirectory(dir: string): Readable {
  const out = new PassThrough();
  const child = spawn('tar', ['-C', dir, '-cf', '-', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
  child.on('error', (err) => out.destroy(err));
  child.on('exit', (code) => {
    if (code !== 0) out.destroy(new Error(`tar -C ${dir} exited with ${code}`));
  });
  return child.stdout.pipe(out);
}

/** What `loadBusyboxImage` needs of an engine (LocalEngine, RemoteEngine). */
export interface ImageLoader {
  loadImages(archive: Readable): AsyncIterable<{ readonly stream?: string }>;
  tagImage(image: string, target: { readonly repo: string; readonly tag?: string }): Promise<unknown>;
}

/** Loads a fresh `buildBusyboxImage` into `engine` as `busybox:latest`; resolves with its image ID. */
export async function loadBusyboxImage(engine: ImageLoader): Promise<string> {
  const image = await buildBusyboxImage();
  let loaded = '';
  try {
    for await (const m of engine.loadImages(tarOfDirectory(image.dir))) loaded += m.stream ?? '';
  } finally {
    await image.remove();
  }
  const id = /Loaded image ID: (sha256:[0-9a-f]{64})/.exec(loaded)?.[1];
  if (!id) throw new Error(`loading the busybox image said: ${loaded}`);
  await engine.tagImage(id, { repo: 'busybox', tag: 'latest' });
  return id;
}
