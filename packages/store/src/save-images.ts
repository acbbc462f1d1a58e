import type { Readable } from 'node:stream';
import { ErrorKind } from '@berth/errors';
import {
  Annotation,
  MediaType,
  familiarName,
  familiarReference,
  parseDigest,
  parseReference,
  repositoryName,
  type Descriptor,
  type Digest,
  type ImageReference,
} from '@berth/oci';
import { StoreError, StoreErrorCode } from './errors.js';
import { canonicalName } from './image-index.js';
import type { ImageRecord, ImageStore } from './image-store.js';
import { TarEntryType, type TarEntry } from './tar-entry.js';
import { packTar, type TarInput } from './tar-writer.js';

/**
 * `docker`: an OCI image layout plus docker's `manifest.json` and `repositories`, as docker
 * 25 and later write it (older dockers read the manifest.json part). `oci`: the layout alone.
 */
export const ArchiveFormat = { Docker: 'docker', Oci: 'oci' } as const;
export type ArchiveFormat = (typeof ArchiveFormat)[keyof typeof ArchiveFormat];

/** Options of `saveImages`, docker's `save`. */
export interface SaveImagesOptions {
  readonly store: ImageStore;
  /** Names or IDs as `docker save` takes them; a repository without a tag saves all its tags. */
  readonly images: readonly string[];
  readonly format?: ArchiveFormat;
  readonly signal?: AbortSignal;
}

interface Selected {
  readonly record: ImageRecord;
  readonly names: ImageReference[];
}

const ociLayout = Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' }));

function blobPath(digest: Digest): string {
  const { algorithm, hex } = parseDigest(digest);
  return `blobs/${algorithm}/${hex}`;
}

function fileEntry(path: string, size: number): TarEntry {
  return { path, type: TarEntryType.File, size, mode: 0o644, uid: 0, gid: 0, mtime: 0 };
}

function dirEntry(path: string): TarEntry {
  return { path, type: TarEntryType.Directory, size: 0, mode: 0o755, uid: 0, gid: 0, mtime: 0 };
}

async function select(store: ImageStore, inputs: readonly string[]): Promise<Map<Digest, Selected>> {
  const out = new Map<Digest, Selected>();
  const pick = (record: ImageRecord, name: ImageReference | undefined) => {
    const entry = out.get(record.id) ?? { record, names: [] };
    if (name && !entry.names.some((n) => canonicalName(n) === canonicalName(name))) entry.names.push(name);
    out.set(record.id, entry);
  };
  for (const input of inputs) {
    let bare: ImageReference | undefined;
    try {
      bare = parseReference(input, { defaultTag: false });
    } catch {
      bare = undefined;
    }
    // A repository alone means every tag in it.
    if (bare && bare.tag === undefined && bare.digest === undefined) {
      const tagged = (await store.list()).flatMap((r) => r.references.filter((ref) => ref.tag !== undefined && repositoryName(ref) === repositoryName(bare!)).map((ref) => [r, ref] as const));
      if (tagged.length > 0) {
        for (const [record, ref] of tagged) pick(record, ref);
        continue;
      }
    }
    const record = await store.resolve(input);
    const asName = bare ? parseReference(input) : undefined;
    const named = asName && record.references.find((r) => canonicalName(r) === canonicalName(asName));
    pick(record, named);
  }
  return out;
}

/**
 * Writes images as a tar stream docker, podman and skopeo load (`docker-archive:` and
 * `oci-archive:`). Each image is saved as its single-platform manifest with its config and
 * layer blobs unchanged, so digests and RepoDigests survive a round trip. `index.json`
 * names each image as docker does: `io.containerd.image.name` holds the full reference and
 * `org.opencontainers.image.ref.name` the tag.
 */
export async function saveImages(options: SaveImagesOptions): Promise<Readable> {
  const { store, signal } = options;
  const format = options.format ?? ArchiveFormat.Docker;
  if (!Object.values(ArchiveFormat).includes(format)) {
    throw new StoreError(`unknown archive format ${JSON.stringify(format)} (want docker or oci)`, { code: StoreErrorCode.InvalidOptions, kind: ErrorKind.InvalidArgument });
  }
  if (options.images.length === 0) {
    throw new StoreError('nothing to save: name at least one image', { code: StoreErrorCode.InvalidOptions, kind: ErrorKind.InvalidArgument });
  }
  const lease = await store.createLease(signal ? { signal } : {});
  try {
    const selected = await select(store, options.images);
    const blobs = new Map<Digest, number>();
    const index: Descriptor[] = [];
    const manifests: Array<{ Config: string; RepoTags: string[] | null; Layers: string[] }> = [];
    const repositories: Record<string, Record<string, string>> = {};
    for (const { record, names } of selected.values()) {
      const details = await store.inspect(record.id, signal ? { signal } : {});
      const m = details.manifestDescriptor;
      const layers = details.manifest.layers;
      await lease.add({ blobs: [m.digest, details.manifest.config.digest, ...layers.map((l) => l.digest)] }, signal ? { signal } : {});
      for (const d of [m, details.manifest.config, ...layers]) blobs.set(d.digest, d.size);
      const base: Descriptor = { mediaType: m.mediaType, digest: m.digest, size: m.size, ...(m.platform ? { platform: m.platform } : {}) };
      if (names.length === 0) index.push(base);
      for (const name of names) {
        index.push({
          ...base,
          annotations: {
            [Annotation.ContainerdImageName]: canonicalName(name),
            ...(name.tag !== undefined ? { [Annotation.RefName]: name.tag } : {}),
          },
        });
      }
      const tags = names.filter((n) => n.tag !== undefined);
      manifests.push({
        Config: blobPath(details.manifest.config.digest),
        RepoTags: tags.length ? tags.map((n) => familiarReference(n)) : null,
        Layers: layers.map((l) => blobPath(l.digest)),
      });
      const top = layers.at(-1);
      for (const n of tags) {
        if (top) (repositories[familiarName(n)] ??= {})[n.tag!] = parseDigest(top.digest).hex;
      }
    }

    const content = store.content;
    async function* entries(): AsyncGenerator<TarInput> {
      try {
        yield { entry: dirEntry('blobs/') };
        const algorithms = new Set([...blobs.keys()].map((d) => parseDigest(d).algorithm));
        for (const a of algorithms) yield { entry: dirEntry(`blobs/${a}/`) };
        for (const [digest, size] of blobs) {
          yield { entry: fileEntry(blobPath(digest), size), body: (await content.read(digest, signal ? { signal } : {})) as AsyncIterable<Buffer> };
        }
        const json = (v: unknown) => Buffer.from(JSON.stringify(v));
        const indexJson = json({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: index });
        yield { entry: fileEntry('index.json', indexJson.length), body: indexJson };
        if (format === ArchiveFormat.Docker) {
          const manifestJson = json(manifests);
          yield { entry: fileEntry('manifest.json', manifestJson.length), body: manifestJson };
        }
        yield { entry: fileEntry('oci-layout', ociLayout.length), body: ociLayout };
        if (format === ArchiveFormat.Docker && Object.keys(repositories).length > 0) {
          const repos = json(repositories);
          yield { entry: fileEntry('repositories', repos.length), body: repos };
        }
      } finally {
        await lease.release();
      }
    }
    return packTar(entries());
  } catch (err) {
    await lease.release();
    throw err;
  }
}
