import { readFileSync, statSync } from 'node:fs';
import { ErrorKind, errnoCode } from '@berth/errors';
import {
  Annotation,
  MediaType,
  formatReference,
  isIndexMediaType,
  isManifestMediaType,
  parseImageConfig,
  parseManifest,
  parseReference,
  selectByPlatform,
  type Descriptor,
  type Digest,
  type ImageConfig,
  type ImageManifest,
  type ImageReference,
  type Platform,
} from '@berth/oci';
import type { ContentStore } from './content-store.js';
import { StoreError, StoreErrorCode } from './errors.js';

/**
 * Annotations Berth adds to its index.json entries, so that listing and resolving images
 * never opens a manifest: the image ID, the manifest chosen from an index, the config's
 * creation time, the image size, and when the name was set. Other tools ignore them.
 */
export const BerthAnnotation = {
  ImageId: 'io.berth.image.id',
  Manifest: 'io.berth.image.manifest',
  Created: 'io.berth.image.created',
  Size: 'io.berth.image.size',
  Tagged: 'io.berth.image.tagged',
} as const;

/** What an index.json entry points at, resolved down to the image. */
export interface EntryInfo {
  readonly id: Digest;
  /** The single-platform manifest (the target itself unless the target is an index). */
  readonly manifestDigest: Digest;
  readonly created: string | undefined;
  readonly size: number;
}

/** The manifest, config and their descriptors behind a target, read from the content store. */
export interface ResolvedImage {
  readonly manifestDescriptor: Descriptor;
  readonly manifest: ImageManifest;
  readonly config: ImageConfig;
}

function invalidImage(message: string, cause?: unknown): StoreError {
  return new StoreError(message, { code: StoreErrorCode.InvalidImage, kind: ErrorKind.FailedPrecondition, ...(cause ? { cause } : {}) });
}

/**
 * Follows a manifest or index down to one manifest and its config. An index picks the
 * manifest named by `chosen`, else the best match for `platform` among those present.
 */
export async function resolveTarget(
  content: ContentStore,
  target: Descriptor,
  options: { readonly platform: Platform; readonly chosen?: Digest; readonly signal?: AbortSignal },
): Promise<ResolvedImage> {
  const read = (d: Digest) => content.readBytes(d, options.signal ? { signal: options.signal } : {});
  let manifestDescriptor = target;
  let parsed = parseManifest(await read(target.digest), target.mediaType);
  if (parsed.kind === 'index') {
    const candidates: Descriptor[] = [];
    for (const m of parsed.index.manifests) {
      if (isManifestMediaType(m.mediaType) && (await content.stat(m.digest))) candidates.push(m);
    }
    const pick =
      (options.chosen ? candidates.find((m) => m.digest === options.chosen) : undefined) ??
      selectByPlatform(candidates, options.platform) ??
      (candidates.length === 1 && !candidates[0]!.platform ? candidates[0] : undefined);
    if (!pick) {
      throw invalidImage(`index ${target.digest} has no manifest for the platform in the store (${candidates.length} of ${parsed.index.manifests.length} manifests present)`);
    }
    manifestDescriptor = pick;
    parsed = parseManifest(await read(pick.digest), pick.mediaType);
  }
  if (parsed.kind !== 'manifest') throw invalidImage(`${manifestDescriptor.digest} is an index inside an index; Berth stores one level`);
  const config = parseImageConfig(await read(parsed.manifest.config.digest));
  return { manifestDescriptor, manifest: parsed.manifest, config };
}

/** The size Berth reports for an image: its config and layer blobs as stored. */
export function imageSize(manifest: ImageManifest): number {
  return manifest.config.size + manifest.layers.reduce((sum, l) => sum + l.size, 0);
}

/** The full reference an entry names, or undefined for an untagged (dangling) entry. */
export function entryName(entry: Descriptor): string | undefined {
  const a = entry.annotations;
  const name = a?.[Annotation.ContainerdImageName] ?? a?.[Annotation.RefName];
  if (!name) return undefined;
  try {
    return canonicalName(parseReference(name));
  } catch {
    // A bare tag as skopeo or `docker save` write it (`latest`): not a name Berth can use.
    return undefined;
  }
}

/** `docker.io/library/busybox:latest`; a reference with a digest drops its tag, as docker stores it. */
export function canonicalName(ref: ImageReference): string {
  return formatReference(ref.digest ? { domain: ref.domain, path: ref.path, digest: ref.digest } : ref);
}

/** The entry for `target` under `name` (or untagged), carrying the Berth annotations of `info`. */
export function makeEntry(target: Descriptor, info: EntryInfo, name: string | undefined, taggedAt: string | undefined): Descriptor {
  const annotations: Record<string, string> = {};
  for (const [k, v] of Object.entries(target.annotations ?? {})) {
    if (k !== Annotation.RefName && k !== Annotation.ContainerdImageName && !k.startsWith('io.berth.')) annotations[k] = v;
  }
  if (name) {
    annotations[Annotation.RefName] = name;
    annotations[Annotation.ContainerdImageName] = name;
  }
  annotations[BerthAnnotation.ImageId] = info.id;
  if (info.manifestDigest !== target.digest) annotations[BerthAnnotation.Manifest] = info.manifestDigest;
  if (info.created) annotations[BerthAnnotation.Created] = info.created;
  annotations[BerthAnnotation.Size] = String(info.size);
  if (taggedAt) annotations[BerthAnnotation.Tagged] = taggedAt;
  return {
    mediaType: target.mediaType,
    digest: target.digest,
    size: target.size,
    ...(target.platform ? { platform: target.platform } : {}),
    annotations,
  };
}

/** The info Berth annotated an entry with, when it is complete. */
export function annotatedInfo(entry: Descriptor): EntryInfo | undefined {
  const a = entry.annotations;
  const id = a?.[BerthAnnotation.ImageId];
  const size = Number(a?.[BerthAnnotation.Size]);
  if (!id || !Number.isSafeInteger(size)) return undefined;
  const manifestDigest = (a?.[BerthAnnotation.Manifest] ?? entry.digest) as Digest;
  return { id: id as Digest, manifestDigest, created: a?.[BerthAnnotation.Created], size };
}

/** The parsed index.json and the file identity it was read at. */
interface IndexSnapshot {
  readonly key: string;
  readonly entries: readonly Descriptor[];
}

/**
 * Reads index.json, keeping the last parse while the file is unchanged: writers replace it by
 * rename, so a new inode, size or mtime means new content.
 */
export class IndexFile {
  readonly path: string;
  #cached: IndexSnapshot | undefined;

  constructor(path: string) {
    this.path = path;
  }

  async read(options: { readonly fresh?: boolean } = {}): Promise<readonly Descriptor[]> {
    // Read at every image lookup, and small: synchronously, which costs less than the thread-pool
    // round trips of asynchronous calls.
    let key: string;
    try {
      const info = statSync(this.path);
      key = `${info.ino}:${info.size}:${info.mtimeMs}`;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return [];
      throw err;
    }
    if (!options.fresh && this.#cached?.key === key) return this.#cached.entries;
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return [];
      throw err;
    }
    const entries = parseIndexJson(text, this.path);
    this.#cached = { key, entries };
    return entries;
  }
}

function parseIndexJson(text: string, path: string): readonly Descriptor[] {
  let parsed;
  try {
    parsed = parseManifest(text, MediaType.OciIndex);
  } catch (err) {
    throw new StoreError(`${path} is not a valid OCI index`, { code: StoreErrorCode.InvalidImage, kind: ErrorKind.Internal, cause: err });
  }
  if (parsed.kind !== 'index') throw new StoreError(`${path} is not an OCI index`, { code: StoreErrorCode.InvalidImage, kind: ErrorKind.Internal });
  return parsed.index.manifests;
}

/** True for index.json entries that are images (not artifacts or other content). */
export function isImageEntry(entry: Descriptor): boolean {
  return isManifestMediaType(entry.mediaType) || isIndexMediaType(entry.mediaType);
}
