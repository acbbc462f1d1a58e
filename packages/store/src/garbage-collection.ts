import type { Digest } from '@berth/oci';
import {
  chainIds,
  isIndexMediaType,
  isManifestMediaType,
  parseImageConfig,
  parseManifest,
  type Descriptor,
} from '@berth/oci';
import { throwIfAborted } from '@berth/errors';
import type { LocalContentStore } from './local-content-store.js';

/**
 * What the snapshot side offers garbage collection. The store knows which snapshots are live
 * (the chain IDs of its images, leased keys, the containers' keys the caller passes) but not
 * where snapshots live; the snapshotter implements this and is handed to `ImageStore.gc`.
 */
export interface SnapshotCollector {
  /**
   * Removes every snapshot that is not in `live` and is no ancestor of one. It runs under the
   * GC lock, so it should only unlink or rename; slow deletion belongs in `purge`.
   */
  collect(live: ReadonlySet<string>, options: { readonly signal?: AbortSignal }): Promise<SnapshotCollection>;
}

/** The outcome of `SnapshotCollector.collect`. */
export interface SnapshotCollection {
  readonly removed: readonly string[];
  /** Finishes the removal (deleting renamed trees) after the GC lock is released. */
  purge(): Promise<void>;
}

/** Options of `ImageStore.gc`. */
export interface GcOptions {
  readonly snapshots?: SnapshotCollector;
  /** Snapshot keys in use outside images: containers' read-write layers, build steps. */
  readonly keepSnapshots?: Iterable<string>;
  /** Resumable partial downloads older than this are discarded (default 24 hours). */
  readonly partialMaxAgeMs?: number;
  readonly signal?: AbortSignal;
}

/** What a garbage collection removed. */
export interface GcResult {
  readonly removedBlobs: readonly Digest[];
  readonly reclaimedBytes: number;
  readonly removedSnapshots: readonly string[];
  readonly removedIngests: readonly string[];
  readonly expiredLeases: readonly string[];
}

// Blobs named only by digest (leases) are opened to find what they reference when this small.
const maxManifestSize = 4 << 20;

/**
 * Marks what `roots` reach: a manifest reaches its config and layers, an index its
 * manifests; every config reached adds its chain IDs to the live snapshot keys. Missing blobs
 * are fine (an index lists platforms that were never pulled).
 */
export async function markReachable(
  content: LocalContentStore,
  roots: { readonly descriptors: Iterable<Descriptor>; readonly digests: Iterable<Digest> },
  signal?: AbortSignal,
): Promise<{ readonly blobs: Set<Digest>; readonly chainIds: Set<string> }> {
  const blobs = new Set<Digest>();
  const live = new Set<string>();

  const readJson = async (digest: Digest): Promise<Buffer | undefined> => {
    const info = await content.stat(digest);
    if (!info || info.size > maxManifestSize) return undefined;
    return content.readBytes(digest).catch(() => undefined);
  };

  const markConfig = async (digest: Digest) => {
    blobs.add(digest);
    const data = await readJson(digest);
    if (!data) return;
    try {
      for (const id of chainIds(parseImageConfig(data).rootfs.diff_ids)) live.add(id);
    } catch {
      // Not an image config (an artifact's): nothing more to keep.
    }
  };

  const walk = async (digest: Digest, mediaType: string | undefined): Promise<void> => {
    throwIfAborted(signal);
    if (blobs.has(digest)) return;
    blobs.add(digest);
    if (mediaType !== undefined && !isManifestMediaType(mediaType) && !isIndexMediaType(mediaType)) return;
    const data = await readJson(digest);
    if (!data) return;
    let parsed;
    try {
      parsed = parseManifest(data, mediaType);
    } catch {
      if (mediaType === undefined) await markConfig(digest);
      return;
    }
    if (parsed.kind === 'index') {
      for (const m of parsed.index.manifests) await walk(m.digest, m.mediaType);
    } else {
      await markConfig(parsed.manifest.config.digest);
      for (const layer of parsed.manifest.layers) blobs.add(layer.digest);
    }
    const subject = parsed.kind === 'index' ? parsed.index.subject : parsed.manifest.subject;
    if (subject) blobs.add(subject.digest);
  };

  for (const d of roots.descriptors) await walk(d.digest, d.mediaType);
  for (const digest of roots.digests) await walk(digest, undefined);
  return { blobs, chainIds: live };
}
