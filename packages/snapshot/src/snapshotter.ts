import type { Readable } from 'node:stream';
import type { Descriptor, Digest, LayerCompression } from '@berth/oci';
import type { ContentStore, SnapshotCollector } from '@berth/store';
import type { Mount } from './mount.js';

/** Committed snapshots are image layers, keyed by chain ID; active ones are writable (a container, a build step). */
export const SnapshotKind = { Committed: 'committed', Active: 'active' } as const;
export type SnapshotKind = (typeof SnapshotKind)[keyof typeof SnapshotKind];

/** What the snapshotter records about a snapshot. */
export interface SnapshotInfo {
  /** The chain ID of a committed snapshot; the caller's key of an active one. */
  readonly key: string;
  readonly kind: SnapshotKind;
  /** The committed snapshot below, undefined at the bottom. */
  readonly parent: string | undefined;
  readonly created: string;
  /** A committed snapshot's layer diff ID. */
  readonly diffId?: Digest;
  /** Bytes of the uncompressed layer a committed snapshot was unpacked from. */
  readonly size?: number;
}

/** One layer being unpacked, as `unpack` reports it. */
export interface UnpackProgress {
  readonly layer: Digest;
  readonly chainId: Digest;
  /** `exists` when a snapshot of that chain was there already (shared with another image). */
  readonly status: 'exists' | 'unpacked';
}

export interface UnpackImageOptions {
  /** Where the layer blobs are. */
  readonly content: ContentStore;
  /** The manifest's layers, bottom first. */
  readonly layers: readonly Descriptor[];
  /** The config's `rootfs.diff_ids`, one per layer. */
  readonly diffIds: readonly Digest[];
  readonly onProgress?: (event: UnpackProgress) => void;
  readonly signal?: AbortSignal;
}

export interface UnpackImageResult {
  /** The chain ID of the top layer: the parent to `prepare` a container from. */
  readonly chainId: Digest | undefined;
  /** How many layers were unpacked now (the others were present). */
  readonly unpacked: number;
}

/** What `diff` produced, known once its stream has been read to the end. */
export interface DiffResult {
  /** The digest of the uncompressed tar: the config's diff ID. */
  readonly diffId: Digest;
  /** The digest and size of the stream as produced (compressed when asked). */
  readonly digest: Digest;
  readonly size: number;
  readonly mediaType: string;
}

/** A layer tar of a snapshot's changes. Read `stream` to the end; `result` settles after. */
export interface LayerDiff {
  readonly stream: Readable;
  readonly result: Promise<DiffResult>;
}

export interface DiffOptions {
  /** Default gzip, as docker pushes layers. */
  readonly compression?: LayerCompression;
  readonly signal?: AbortSignal;
}

/**
 * Layers to file systems and back. Image layers are unpacked once into committed snapshots
 * keyed by chain ID and shared by every image that has that chain; containers and build steps
 * get active snapshots on top (`prepare`), whose changes `diff` turns back into a layer and
 * `commit` turns into a committed snapshot. Removing a snapshot others are built on is refused;
 * garbage collection (`collect`, called by `ImageStore.gc`) removes what no image, lease or
 * container keeps.
 */
export interface Snapshotter extends SnapshotCollector {
  /** `overlay` or `copy`. */
  readonly driver: string;
  readonly root: string;
  stat(key: string): Promise<SnapshotInfo | undefined>;
  /**
   * Bytes a snapshot's own directory holds (each inode once): an active overlay snapshot's
   * changes (docker's SizeRw), a copy snapshot's whole tree. NotFound when there is none.
   */
  usage(key: string, options?: { readonly signal?: AbortSignal }): Promise<{ readonly size: number; readonly inodes: number }>;
  list(): Promise<SnapshotInfo[]>;
  /** Unpacks an image's layers that are not there yet and returns the top chain ID. */
  unpack(options: UnpackImageOptions): Promise<UnpackImageResult>;
  /** Makes a writable snapshot on top of the committed `parent` (none: empty) and returns its mounts. */
  prepare(key: string, parent: string | undefined, options?: { readonly signal?: AbortSignal }): Promise<Mount[]>;
  /** The mounts of a snapshot: writable for an active one, read-only for a committed one. */
  mounts(key: string): Promise<Mount[]>;
  /** Read-only mounts of a snapshot with everything below it, usable while it is mounted elsewhere. */
  view(key: string): Promise<Mount[]>;
  /** Turns the active snapshot `key` into the committed snapshot `chainId` (compute it from `diff`). */
  commit(key: string, chainId: Digest, options?: { readonly diffId?: Digest; readonly signal?: AbortSignal }): Promise<SnapshotInfo>;
  /** Removes a snapshot nothing is built on. */
  remove(key: string): Promise<void>;
  /** The changes of a snapshot against its parent as a layer tar with whiteouts. */
  diff(key: string, options?: DiffOptions): Promise<LayerDiff>;
  /** The whole file system of a snapshot (with everything below it) as a tar, like `docker export`. */
  export(key: string, options?: { readonly signal?: AbortSignal }): Promise<Readable>;
}
