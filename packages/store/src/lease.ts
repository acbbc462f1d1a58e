import { randomBytes } from 'node:crypto';
import { appendFile, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { ErrorKind, errnoCode, throwIfAborted } from '@berth/errors';
import { acquireFileLock, tryAcquireFileLock, withFileLock } from '@berth/fsutil';
import { digestOf, isDigest, type Digest } from '@berth/oci';
import type { ContentStore, ExpectedBlob, Ingest } from './content-store.js';
import { StoreError, StoreErrorCode } from './errors.js';
import type { LocalContentStore, WriteBlobOptions } from './local-content-store.js';

/** What a lease keeps from garbage collection: blobs by digest, snapshots by key (chain ID or container key). */
export interface LeaseResources {
  readonly blobs?: readonly Digest[];
  readonly snapshots?: readonly string[];
}

/**
 * A claim on blobs and snapshots that are not yet referenced by an image (a pull before its
 * tag, a build before its commit). Garbage collection keeps everything a live lease names.
 * A lease lives as long as its process: one whose owner died (kill -9) is dropped by the
 * next collection.
 */
export interface Lease {
  readonly id: string;
  /** Adds resources; they are protected from the moment this resolves. Add before you look. */
  add(resources: LeaseResources, options?: { readonly signal?: AbortSignal }): Promise<void>;
  /** The content store seen through this lease: every blob it stats, reads or writes is protected first. */
  readonly content: ContentStore;
  /** `LocalContentStore.writeBlob` under this lease: the blob is protected before it becomes visible. */
  writeBlob(source: Readable, options?: WriteBlobOptions): Promise<{ readonly digest: Digest; readonly size: number }>;
  /** Drops the claim. Tag or otherwise reference what must survive before releasing. */
  release(): Promise<void>;
}

/** Options of a LeaseManager: the state root's lease directory and its GC lock. */
export interface LeaseManagerOptions {
  readonly dir: string;
  /** The lock a garbage collection holds while it marks and sweeps. */
  readonly gcLockPath: string;
  readonly content: LocalContentStore;
}

/** The resources of every live lease, as garbage collection needs them. */
export interface LeasedResources {
  readonly blobs: ReadonlySet<Digest>;
  readonly snapshots: ReadonlySet<string>;
  /** Leases whose owner died and that were dropped. */
  readonly expired: readonly string[];
}

interface LeaseLine {
  readonly blob?: string;
  readonly snapshot?: string;
}

/**
 * Leases on disk: `<dir>/<id>.lease` lists the resources as JSON lines and `<id>.lock` is held
 * by the owner for the lease's life. Appends happen under the GC lock, so a collection sees
 * either the resource in the lease or the lease added after its sweep.
 */
export class LeaseManager {
  readonly #o: LeaseManagerOptions;

  constructor(options: LeaseManagerOptions) {
    if (!options?.dir || !options.gcLockPath || !options.content) {
      throw new StoreError('LeaseManager needs dir, gcLockPath and content', { code: StoreErrorCode.InvalidOptions, kind: ErrorKind.InvalidArgument });
    }
    this.#o = options;
  }

  /** Starts a lease owned by this process. */
  async create(options: { readonly signal?: AbortSignal } = {}): Promise<Lease> {
    throwIfAborted(options.signal);
    await mkdir(this.#o.dir, { recursive: true });
    const id = `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`;
    const lock = await acquireFileLock(join(this.#o.dir, `${id}.lock`), options.signal ? { signal: options.signal } : {});
    return new FileLease(id, join(this.#o.dir, `${id}.lease`), this.#o.gcLockPath, this.#o.content, lock.release);
  }

  /**
   * Reads every live lease and drops the dead ones. Call it holding the GC lock, so that no
   * lease grows while the collection runs.
   */
  async active(): Promise<LeasedResources> {
    const blobs = new Set<Digest>();
    const snapshots = new Set<string>();
    const expired: string[] = [];
    let names: string[];
    try {
      names = await readdir(this.#o.dir);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return { blobs, snapshots, expired };
      throw err;
    }
    const ids = new Set(names.filter((n) => n.endsWith('.lease') || n.endsWith('.lock')).map((n) => n.replace(/\.(lease|lock)$/, '')));
    for (const id of ids) {
      const leaseFile = join(this.#o.dir, `${id}.lease`);
      const probe = await tryAcquireFileLock(join(this.#o.dir, `${id}.lock`));
      if (probe) {
        try {
          await rm(leaseFile, { force: true });
          expired.push(id);
        } finally {
          await probe.release();
        }
        continue;
      }
      let text = '';
      try {
        text = await readFile(leaseFile, 'utf8');
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw err;
      }
      for (const line of text.split('\n')) {
        let parsed: LeaseLine;
        try {
          parsed = JSON.parse(line) as LeaseLine;
        } catch {
          continue; // an append cut short by a crash, or the empty last line
        }
        if (typeof parsed.blob === 'string' && isDigest(parsed.blob)) blobs.add(parsed.blob);
        if (typeof parsed.snapshot === 'string') snapshots.add(parsed.snapshot);
      }
    }
    return { blobs, snapshots, expired };
  }
}

class FileLease implements Lease {
  readonly id: string;
  readonly content: ContentStore;
  readonly #file: string;
  readonly #gcLock: string;
  readonly #store: LocalContentStore;
  readonly #releaseLock: () => Promise<void>;
  readonly #added = new Set<string>();
  #released = false;

  constructor(id: string, file: string, gcLock: string, content: LocalContentStore, releaseLock: () => Promise<void>) {
    this.id = id;
    this.#file = file;
    this.#gcLock = gcLock;
    this.#releaseLock = releaseLock;
    this.#store = content;
    this.content = new LeasedContentStore(this, content);
  }

  async add(resources: LeaseResources, options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    if (this.#released) {
      throw new StoreError(`lease ${this.id} was released`, { code: StoreErrorCode.LeaseReleased, kind: ErrorKind.FailedPrecondition });
    }
    const lines: string[] = [];
    for (const blob of resources.blobs ?? []) {
      const line = JSON.stringify({ blob });
      if (!this.#added.has(line)) lines.push(line);
    }
    for (const snapshot of resources.snapshots ?? []) {
      const line = JSON.stringify({ snapshot });
      if (!this.#added.has(line)) lines.push(line);
    }
    if (lines.length === 0) return;
    await withFileLock(this.#gcLock, () => appendFile(this.#file, lines.join('\n') + '\n'), options.signal ? { signal: options.signal } : {});
    for (const line of lines) this.#added.add(line);
  }

  writeBlob(source: Readable, options: WriteBlobOptions = {}): Promise<{ readonly digest: Digest; readonly size: number }> {
    return this.#store.writeBlob(source, {
      ...options,
      beforeCommit: async (digest) => {
        await options.beforeCommit?.(digest);
        await this.add({ blobs: [digest] }, options.signal ? { signal: options.signal } : {});
      },
    });
  }

  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    try {
      await rm(this.#file, { force: true });
    } finally {
      await this.#releaseLock();
    }
  }
}

/** A ContentStore that adds every digest it is asked about to a lease before acting. */
class LeasedContentStore implements ContentStore {
  readonly #lease: Lease;
  readonly #inner: LocalContentStore;

  constructor(lease: Lease, inner: LocalContentStore) {
    this.#lease = lease;
    this.#inner = inner;
  }

  async stat(digest: Digest): Promise<{ readonly size: number } | undefined> {
    await this.#lease.add({ blobs: [digest] });
    return this.#inner.stat(digest);
  }

  async read(digest: Digest, options: { readonly signal?: AbortSignal } = {}): Promise<Readable> {
    await this.#lease.add({ blobs: [digest] }, options);
    return this.#inner.read(digest, options);
  }

  async readBytes(digest: Digest, options: { readonly signal?: AbortSignal } = {}): Promise<Buffer> {
    await this.#lease.add({ blobs: [digest] }, options);
    return this.#inner.readBytes(digest, options);
  }

  async put(
    data: Uint8Array,
    expected?: ExpectedBlob,
    options: { readonly signal?: AbortSignal } = {},
  ): Promise<{ readonly digest: Digest; readonly size: number }> {
    if (expected) {
      await this.#lease.add({ blobs: [expected.digest] }, options);
      return this.#inner.put(data, expected, options);
    }
    // The digest is only known once hashed: lease it before the blob becomes visible.
    const digest = digestOf(data);
    await this.#lease.add({ blobs: [digest] }, options);
    return this.#inner.put(data, { digest, size: data.length }, options);
  }

  async ingest(expected: ExpectedBlob, options: { readonly signal?: AbortSignal } = {}): Promise<Ingest> {
    await this.#lease.add({ blobs: [expected.digest] }, options);
    return this.#inner.ingest(expected, options);
  }
}
