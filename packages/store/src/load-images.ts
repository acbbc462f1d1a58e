import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { posix } from 'node:path';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { once } from 'node:events';
import { ErrorKind, throwIfAborted } from '@berth/errors';
import {
  Annotation,
  MediaType,
  digestOf,
  familiarReference,
  isIndexMediaType,
  isManifestMediaType,
  parseDigest,
  parseImageConfig,
  parseManifest,
  parseReference,
  type Descriptor,
  type Digest,
  type ImageManifest,
  type Platform,
} from '@berth/oci';
import { createDecompressor, detectCompression, peekHead } from './compression.js';
import { StoreError, StoreErrorCode } from './errors.js';
import { canonicalName, resolveTarget } from './image-index.js';
import type { ImageRecord, ImageStore } from './image-store.js';
import type { Lease } from './lease.js';
import { TarEntryType } from './tar-entry.js';
import { TarReader, type TarEntrySink } from './tar-reader.js';

/** Options of `loadImages`, docker's `load`: a tar stream or an OCI layout directory. */
export interface LoadImagesOptions {
  readonly store: ImageStore;
  /** A docker or OCI archive as a tar stream, plain or gzip/zstd-compressed. */
  readonly source?: Readable;
  /** An OCI image layout directory (what `skopeo copy ... oci:<dir>` writes). */
  readonly dir?: string;
  /** The platform to pick from multi-platform indexes (default: the store's). */
  readonly platform?: Platform;
  readonly signal?: AbortSignal;
}

/** An image loaded: its record and the names it was loaded under, as docker prints them. */
export interface LoadedImage {
  readonly record: ImageRecord;
  readonly names: readonly string[];
}

interface BlobFile {
  readonly digest: Digest;
  readonly size: number;
}

interface DockerManifestItem {
  readonly Config?: unknown;
  readonly RepoTags?: unknown;
  readonly Layers?: unknown;
}

// Metadata files are read whole; anything larger is a layer.
const maxMetadataFile = 16 << 20;
const blobPathRe = /^blobs\/(sha256|sha512)\/([a-f0-9]+)$/;

function invalidArchive(message: string, cause?: unknown): StoreError {
  return new StoreError(`invalid image archive: ${message}`, { code: StoreErrorCode.InvalidArchive, kind: ErrorKind.InvalidArgument, ...(cause ? { cause } : {}) });
}

function cleanPath(path: string): string {
  return posix.normalize(`/${path}`).slice(1).replace(/\/$/, '');
}

async function write(writer: Writable, chunk: Buffer): Promise<void> {
  if (!writer.write(chunk)) await once(writer, 'drain');
}

/** Gathers the files of an archive: blobs into the content store, metadata in memory. */
class ArchiveFiles {
  readonly blobs = new Map<string, BlobFile>();
  readonly metadata = new Map<string, Buffer>();
  readonly #aliases = new Map<string, string>();
  readonly #lease: Lease;
  readonly #signal: AbortSignal | undefined;

  constructor(lease: Lease, signal?: AbortSignal) {
    this.#lease = lease;
    this.#signal = signal;
  }

  /** Records a link: pre-25 docker archives share identical layers by symlinking `layer.tar`. */
  alias(path: string, target: string, relative: boolean): void {
    this.#aliases.set(cleanPath(path), cleanPath(relative ? posix.join(posix.dirname(cleanPath(path)), target) : target));
  }

  resolve(path: string): string {
    let p = cleanPath(path);
    for (let hops = 0; hops < 16 && this.#aliases.has(p); hops++) p = this.#aliases.get(p)!;
    return p;
  }

  async file(rawPath: string, size: number): Promise<TarEntrySink | undefined> {
    throwIfAborted(this.#signal);
    const path = cleanPath(rawPath);
    const opts = this.#signal ? { signal: this.#signal } : {};
    const blob = blobPathRe.exec(path);
    if (blob) {
      const digest = `${blob[1]}:${blob[2]}` as Digest;
      parseDigest(digest);
      const ingest = await this.#lease.content.ingest({ digest, size }, opts);
      let skip = ingest.offset;
      return {
        write: (chunk) => {
          // Bytes kept from an earlier, interrupted load are already in the partial blob.
          if (skip >= chunk.length) {
            skip -= chunk.length;
            return undefined;
          }
          const rest = skip ? chunk.subarray(skip) : chunk;
          skip = 0;
          return write(ingest.writer, rest);
        },
        end: async () => {
          await ingest.commit();
          this.blobs.set(path, { digest, size });
        },
      };
    }
    if (size <= maxMetadataFile && !path.endsWith('.tar')) {
      const chunks: Buffer[] = [];
      return {
        write: (chunk) => void chunks.push(Buffer.from(chunk)),
        end: () => void this.metadata.set(path, Buffer.concat(chunks)),
      };
    }
    const pass = new PassThrough({ highWaterMark: 1 << 20 });
    const written = this.#lease.writeBlob(pass, opts);
    written.catch(() => {});
    return {
      write: (chunk) => write(pass, chunk),
      end: async () => {
        pass.end();
        this.blobs.set(path, await written);
      },
    };
  }
}

async function feedTar(files: ArchiveFiles, source: Readable, signal?: AbortSignal): Promise<void> {
  const head = await peekHead(source);
  if (head[0] === 0xfd && head.subarray(1, 5).toString('latin1') === '7zXZ') throw invalidArchive('xz-compressed archives are not supported; decompress it first');
  if (head.subarray(0, 3).toString('latin1') === 'BZh') throw invalidArchive('bzip2-compressed archives are not supported; decompress it first');
  const reader = new TarReader((entry) => {
    if (entry.type === TarEntryType.Symlink) files.alias(entry.path, entry.linkpath ?? '', !entry.linkpath?.startsWith('/'));
    else if (entry.type === TarEntryType.Hardlink) files.alias(entry.path, entry.linkpath ?? '', false);
    else if (entry.type === TarEntryType.File) return files.file(entry.path, entry.size);
    return undefined;
  });
  const decompress = createDecompressor(detectCompression(head));
  const opts = signal ? { signal } : {};
  if (decompress) await pipeline(source, decompress, reader, opts);
  else await pipeline(source, reader, opts);
}

async function feedDirectory(files: ArchiveFiles, dir: string, rel = ''): Promise<void> {
  for (const name of await readdir(posix.join(dir, rel))) {
    const path = rel ? `${rel}/${name}` : name;
    const info = await stat(posix.join(dir, path));
    if (info.isDirectory()) {
      await feedDirectory(files, dir, path);
      continue;
    }
    if (!info.isFile()) continue;
    const sink = await files.file(path, info.size);
    if (!sink) continue;
    for await (const chunk of createReadStream(posix.join(dir, path), { highWaterMark: 1 << 20 })) await sink.write(chunk as Buffer);
    await sink.end();
  }
}

function parseJson(files: ArchiveFiles, path: string): unknown {
  const data = files.metadata.get(path);
  if (!data) return undefined;
  try {
    return JSON.parse(data.toString('utf8'));
  } catch (err) {
    throw invalidArchive(`${path} is not JSON`, err);
  }
}

/** The names of an index.json entry: docker's full name, or a ref.name that is a whole reference. */
function namesOf(entry: Descriptor): string[] {
  const a = entry.annotations ?? {};
  for (const candidate of [a[Annotation.ContainerdImageName], a[Annotation.RefName]]) {
    if (!candidate || !/[/:@]/.test(candidate)) continue;
    try {
      return [canonicalName(parseReference(candidate))];
    } catch {
      continue;
    }
  }
  return [];
}

async function layerMediaType(store: ImageStore, digest: Digest): Promise<string> {
  const head: Buffer[] = [];
  let have = 0;
  for await (const chunk of await store.content.read(digest)) {
    head.push(chunk as Buffer);
    have += (chunk as Buffer).length;
    if (have >= 4) break;
  }
  const compression = detectCompression(Buffer.concat(head));
  return compression === 'gzip' ? MediaType.OciLayerGzip : compression === 'zstd' ? MediaType.OciLayerZstd : MediaType.OciLayer;
}

/**
 * Loads the images of an archive into the store, as `docker load`: docker's archives (the
 * OCI layout with manifest.json of docker 25 and later, and the older `<id>/layer.tar` form),
 * OCI layout archives and directories (skopeo's `oci:`/`oci-archive:`). Every blob is verified
 * against its digest on the way in; names come from `manifest.json` RepoTags and from the
 * index.json annotations that hold a whole reference.
 */
export async function loadImages(options: LoadImagesOptions): Promise<LoadedImage[]> {
  const { store, signal } = options;
  if ((options.source === undefined) === (options.dir === undefined)) {
    throw new StoreError('loadImages needs either source or dir', { code: StoreErrorCode.InvalidOptions, kind: ErrorKind.InvalidArgument });
  }
  await store.init();
  return store.withLease(async (lease) => {
    const files = new ArchiveFiles(lease, signal);
    if (options.source) await feedTar(files, options.source, signal);
    else await feedDirectory(files, options.dir!);

    const platform = options.platform ? { platform: options.platform } : {};
    const images: Array<{ target: Descriptor; names: Set<string>; config: Digest }> = [];
    const index = parseJson(files, 'index.json') as { manifests?: unknown } | undefined;
    if (index !== undefined) {
      let parsed;
      try {
        parsed = parseManifest(files.metadata.get('index.json')!, MediaType.OciIndex);
      } catch (err) {
        throw invalidArchive('index.json is not an OCI index', err);
      }
      if (parsed.kind !== 'index') throw invalidArchive('index.json is not an OCI index');
      for (const entry of parsed.index.manifests) {
        if (!isManifestMediaType(entry.mediaType) && !isIndexMediaType(entry.mediaType)) continue;
        const resolved = await resolveTarget(lease.content, entry, { platform: options.platform ?? store.platform, ...(signal ? { signal } : {}) });
        const target: Descriptor = { mediaType: entry.mediaType, digest: entry.digest, size: entry.size, ...(entry.platform ? { platform: entry.platform } : {}) };
        const same = images.find((i) => i.target.digest === target.digest);
        if (same) for (const n of namesOf(entry)) same.names.add(n);
        else images.push({ target, names: new Set(namesOf(entry)), config: resolved.manifest.config.digest });
      }
    }

    const manifestJson = parseJson(files, 'manifest.json');
    if (manifestJson !== undefined) {
      if (!Array.isArray(manifestJson)) throw invalidArchive('manifest.json is not a list');
      for (const item of manifestJson as DockerManifestItem[]) {
        if (typeof item.Config !== 'string' || !Array.isArray(item.Layers)) throw invalidArchive('a manifest.json entry lacks Config or Layers');
        const configPath = files.resolve(item.Config);
        let config: BlobFile | undefined = files.blobs.get(configPath);
        if (!config) {
          const data = files.metadata.get(configPath);
          if (!data) throw invalidArchive(`config ${item.Config} is not in the archive`);
          const named = /^([a-f0-9]{64})\.json$/.exec(posix.basename(configPath));
          if (named && digestOf(data) !== `sha256:${named[1]}`) throw invalidArchive(`config ${item.Config} does not match its name`);
          config = await lease.content.put(data, undefined, signal ? { signal } : {});
        }
        const tags = Array.isArray(item.RepoTags) ? item.RepoTags.filter((t): t is string => typeof t === 'string').map((t) => canonicalName(parseReference(t))) : [];
        const known = images.find((i) => i.config === config.digest);
        if (known) {
          for (const t of tags) known.names.add(t);
          continue;
        }
        const diffIds = parseImageConfig(await lease.content.readBytes(config.digest)).rootfs.diff_ids;
        if (diffIds.length !== item.Layers.length) throw invalidArchive(`config ${item.Config} names ${diffIds.length} layers, manifest.json lists ${item.Layers.length}`);
        const layers: Descriptor[] = [];
        for (const [i, layerPath] of (item.Layers as unknown[]).entries()) {
          if (typeof layerPath !== 'string') throw invalidArchive('a Layers entry is not a path');
          const blob = files.blobs.get(files.resolve(layerPath));
          if (!blob) throw invalidArchive(`layer ${layerPath} is not in the archive`);
          const mediaType = await layerMediaType(store, blob.digest);
          if (mediaType === MediaType.OciLayer && blob.digest !== diffIds[i]) {
            throw invalidArchive(`layer ${layerPath} has digest ${blob.digest}, its config expects diff ID ${diffIds[i]}`);
          }
          layers.push({ mediaType, digest: blob.digest, size: blob.size });
        }
        const manifest: ImageManifest = {
          schemaVersion: 2,
          mediaType: MediaType.OciManifest,
          config: { mediaType: MediaType.OciConfig, digest: config.digest, size: config.size },
          layers,
        };
        const put = await lease.content.put(Buffer.from(JSON.stringify(manifest)), undefined, signal ? { signal } : {});
        images.push({ target: { mediaType: MediaType.OciManifest, ...put }, names: new Set(tags), config: config.digest });
      }
    }
    if (index === undefined && manifestJson === undefined) throw invalidArchive('neither manifest.json nor index.json found');

    const loaded: LoadedImage[] = [];
    for (const image of images) {
      const record = await store.add({ target: image.target, names: [...image.names], ...platform, ...(signal ? { signal } : {}) });
      loaded.push({ record, names: [...image.names].map((n) => familiarReference(parseReference(n))) });
    }
    return loaded;
  }, signal ? { signal } : {});
}
