import type { Readable, Writable } from 'node:stream';
import type { Digest } from '@berth/oci';

/** What a writer of blobs knows before it starts: the digest and size from a descriptor. */
export interface ExpectedBlob {
  readonly digest: Digest;
  readonly size: number;
  readonly mediaType?: string;
}

/** Content-addressed blobs (OCI image layout `blobs/sha256/<hex>`), verified on every write. */
export interface ContentStore {
  /** Size of a committed blob, or undefined when it is absent. */
  stat(digest: Digest): Promise<{ readonly size: number } | undefined>;
  /** Reads a committed blob (NotFound error when absent). */
  read(digest: Digest, options?: { readonly signal?: AbortSignal }): Promise<Readable>;
  /** Reads a small committed blob (manifest, config) whole. */
  readBytes(digest: Digest, options?: { readonly signal?: AbortSignal }): Promise<Buffer>;
  /** Writes a small blob in one go, verified against `expected` when given; returns its digest and size. */
  put(
    data: Uint8Array,
    expected?: ExpectedBlob,
    options?: { readonly signal?: AbortSignal },
  ): Promise<{ readonly digest: Digest; readonly size: number }>;
  /**
   * Starts, or resumes after an interrupted write (also one killed with SIGKILL), writing a blob. `offset` is how many
   * bytes of it are already kept; the caller writes the rest from there (an HTTP Range request) to `writer`, then commits.
   * Concurrent ingests of the same digest (two pulls sharing a layer) must not corrupt each other: one waits or both
   * end with the single committed blob. When the blob is committed already (or by the writer waited for), `offset`
   * equals its size, nothing more may be written and `commit` does nothing.
   */
  ingest(expected: ExpectedBlob, options?: { readonly signal?: AbortSignal }): Promise<Ingest>;
}

export interface Ingest {
  readonly offset: number;
  readonly writer: Writable;
  /** Verifies digest and size and makes the blob visible atomically; on mismatch throws ERR_DIGEST_MISMATCH and discards it. */
  commit(): Promise<void>;
  /** Stops; `keep: true` keeps the partial bytes for a later resume, otherwise they are discarded. */
  abort(options?: { readonly keep?: boolean }): Promise<void>;
}
