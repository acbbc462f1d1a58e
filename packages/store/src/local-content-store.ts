import { createHash, randomBytes, type Hash } from 'node:crypto';
import { closeSync, createReadStream, fstatSync, openSync, readSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable, type Readable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { ErrorKind, abortError, errnoCode, throwIfAborted } from '@berth/errors';
import { acquireFileLock, syncDirectory, tryAcquireFileLock, writeFileAtomic } from '@berth/fsutil';
import { noopLogger, type Logger } from '@berth/log';
import { parseDigest, type Digest, type DigestAlgorithm } from '@berth/oci';
import type { ContentStore, ExpectedBlob, Ingest } from './content-store.js';
import { StoreError, StoreErrorCode } from './errors.js';

/** Options of a LocalContentStore: the directory holding `blobs/` and `ingest/`. */
export interface LocalContentStoreOptions {
  readonly root: string;
  readonly logger?: Logger;
}

/** What `writeBlob` checks the content against, when the caller knows it. */
export interface WriteBlobOptions {
  readonly expected?: ExpectedBlob;
  readonly algorithm?: DigestAlgorithm;
  readonly signal?: AbortSignal;
  /** Runs once the content is verified, before the blob becomes visible (a lease adds it here). */
  readonly beforeCommit?: (digest: Digest) => Promise<void>;
}

/** A partial write found in `ingest/` by `cleanIngests`. */
export interface IngestCleanup {
  readonly removed: readonly string[];
  readonly kept: readonly string[];
}

// Big reads and writes: blobs are layers of tens of megabytes.
const streamChunk = 1 << 20;
// readBytes reads blobs up to this size synchronously (manifests, configs and indexes are KBs).
const smallBlob = 1 << 20;
// A temp file of writeFileAtomic older than this belongs to a writer that died.
const staleTempMs = 10 * 60_000;

function invalidBlob(expected: ExpectedBlob, what: string): StoreError {
  return new StoreError(`digest mismatch for ${expected.digest}: ${what}`, {
    code: StoreErrorCode.DigestMismatch,
    kind: ErrorKind.InvalidArgument,
  });
}

function checkExpected(expected: ExpectedBlob): void {
  parseDigest(expected.digest);
  if (!Number.isSafeInteger(expected.size) || expected.size < 0) {
    throw new StoreError(`invalid blob size ${expected.size} for ${expected.digest}: want a non-negative integer`, {
      code: StoreErrorCode.InvalidOptions,
      kind: ErrorKind.InvalidArgument,
    });
  }
}

/**
 * The content store of an OCI image layout on the local disk: committed blobs live in
 * `blobs/<alg>/<hex>` and are only ever created by a rename of fully written, verified
 * content; partial writes live in `ingest/` beside a lock file naming their writer, so a
 * write killed at any moment leaves nothing visible and can be resumed or discarded.
 */
export class LocalContentStore implements ContentStore {
  readonly root: string;
  readonly #logger: Logger;
  #ready: Promise<void> | undefined;

  constructor(options: LocalContentStoreOptions) {
    if (typeof options?.root !== 'string' || options.root === '') {
      throw new StoreError('LocalContentStore needs a root directory', { code: StoreErrorCode.InvalidOptions, kind: ErrorKind.InvalidArgument });
    }
    this.root = options.root;
    this.#logger = options.logger ?? noopLogger;
  }

  /** Where a committed blob lives (whether or not it is there). */
  blobPath(digest: Digest): string {
    const { algorithm, hex } = parseDigest(digest);
    return join(this.root, 'blobs', algorithm, hex);
  }

  get #ingestDir(): string {
    return join(this.root, 'ingest');
  }

  #prepare(): Promise<void> {
    this.#ready ??= (async () => {
      await mkdir(join(this.root, 'blobs', 'sha256'), { recursive: true });
      await mkdir(this.#ingestDir, { recursive: true });
    })();
    return this.#ready;
  }

  async stat(digest: Digest): Promise<{ readonly size: number } | undefined> {
    try {
      const info = await stat(this.blobPath(digest));
      return { size: info.size };
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  async read(digest: Digest, options: { readonly signal?: AbortSignal } = {}): Promise<Readable> {
    throwIfAborted(options.signal);
    const path = this.blobPath(digest);
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (err) {
      throw this.#notFound(digest, err);
    }
    return handle.createReadStream({ highWaterMark: streamChunk, ...(options.signal ? { signal: options.signal } : {}) });
  }

  async readBytes(digest: Digest, options: { readonly signal?: AbortSignal } = {}): Promise<Buffer> {
    throwIfAborted(options.signal);
    let fd: number;
    try {
      fd = openSync(this.blobPath(digest), 'r');
    } catch (err) {
      throw this.#notFound(digest, err);
    }
    try {
      // Manifests and configs, read on every run and inspect, take one synchronous read, not the
      // four thread-pool round trips of readFile; a large blob is read without blocking.
      const size = fstatSync(fd).size;
      if (size > smallBlob) return await readFile(this.blobPath(digest), options.signal ? { signal: options.signal } : {}).catch((err: unknown) => Promise.reject(this.#notFound(digest, err)));
      const data = Buffer.allocUnsafe(size);
      let got = 0;
      while (got < size) {
        const n = readSync(fd, data, got, size - got, got);
        if (n === 0) break;
        got += n;
      }
      return got === size ? data : data.subarray(0, got);
    } finally {
      closeSync(fd);
    }
  }

  #notFound(digest: Digest, err: unknown): unknown {
    if (errnoCode(err) !== 'ENOENT') return err;
    return new StoreError(`blob ${digest} not found in ${this.root}`, { code: StoreErrorCode.BlobNotFound, kind: ErrorKind.NotFound, cause: err });
  }

  async put(
    data: Uint8Array,
    expected?: ExpectedBlob,
    options: { readonly signal?: AbortSignal } = {},
  ): Promise<{ readonly digest: Digest; readonly size: number }> {
    throwIfAborted(options.signal);
    if (expected) checkExpected(expected);
    const algorithm = expected ? parseDigest(expected.digest).algorithm : 'sha256';
    const digest: Digest = `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
    if (expected && expected.size !== data.length) throw invalidBlob(expected, `${data.length} bytes, want ${expected.size}`);
    if (expected && expected.digest !== digest) throw invalidBlob(expected, `content has digest ${digest}`);
    await this.#prepare();
    const existing = await this.stat(digest);
    if (existing?.size !== data.length) {
      const path = this.blobPath(digest);
      await mkdir(join(this.root, 'blobs', algorithm), { recursive: true });
      await writeFileAtomic(path, data);
    }
    return { digest, size: data.length };
  }

  async ingest(expected: ExpectedBlob, options: { readonly signal?: AbortSignal } = {}): Promise<Ingest> {
    checkExpected(expected);
    throwIfAborted(options.signal);
    await this.#prepare();
    if ((await this.stat(expected.digest))?.size === expected.size) return committedIngest(expected.size);

    const { algorithm, hex } = parseDigest(expected.digest);
    const stem = join(this.#ingestDir, `${algorithm}-${hex}`);
    // One writer per digest across processes: a second pull of the same layer waits here and
    // then finds the blob committed.
    const lock = await acquireFileLock(`${stem}.lock`, options.signal ? { signal: options.signal } : {});
    try {
      if ((await this.stat(expected.digest))?.size === expected.size) {
        await lock.release();
        return committedIngest(expected.size);
      }
      const partial = `${stem}.data`;
      const hash = createHash(algorithm);
      const offset = await this.#resume(partial, hash, expected);
      const handle = await open(partial, 'a', 0o644);
      await mkdir(join(this.root, 'blobs', algorithm), { recursive: true });
      return new LocalIngest({
        expected,
        offset,
        hash,
        handle,
        partial,
        target: this.blobPath(expected.digest),
        release: () => lock.release(),
        ...(options.signal ? { signal: options.signal } : {}),
      });
    } catch (err) {
      await lock.release();
      throw err;
    }
  }

  // Feeds the kept bytes of an interrupted write into the hash, so that commit verifies the
  // whole blob; a partial longer than the blob cannot be a prefix of it and is dropped.
  async #resume(partial: string, hash: Hash, expected: ExpectedBlob): Promise<number> {
    let size: number;
    try {
      size = (await stat(partial)).size;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return 0;
      throw err;
    }
    if (size > expected.size) {
      this.#logger.warn('discarding partial blob longer than its descriptor', { digest: expected.digest, size });
      await unlink(partial);
      return 0;
    }
    // An aborted ingest that kept nothing leaves an empty partial: nothing to hash.
    if (size === 0) return 0;
    for await (const chunk of createReadStream(partial, { highWaterMark: streamChunk, end: size - 1 })) hash.update(chunk as Buffer);
    if (size > 0) this.#logger.debug('resuming blob', { digest: expected.digest, offset: size });
    return size;
  }

  /**
   * Writes a blob whose digest is not known beforehand (a layer being exported or loaded),
   * hashing it on the way; with `expected`, verifies it like `ingest`. Returns digest and size.
   */
  async writeBlob(source: Readable, options: WriteBlobOptions = {}): Promise<{ readonly digest: Digest; readonly size: number }> {
    if (options.expected) checkExpected(options.expected);
    throwIfAborted(options.signal);
    await this.#prepare();
    const algorithm = options.expected ? parseDigest(options.expected.digest).algorithm : (options.algorithm ?? 'sha256');
    const stem = join(this.#ingestDir, `tmp-${randomBytes(8).toString('hex')}`);
    const lock = await acquireFileLock(`${stem}.lock`, options.signal ? { signal: options.signal } : {});
    const partial = `${stem}.data`;
    try {
      const hash = createHash(algorithm);
      const handle = await open(partial, 'wx', 0o644);
      const writer = new HashingFileWriter(handle, hash, options.expected?.size);
      try {
        if (options.signal) await pipeline(source, writer, { signal: options.signal });
        else await pipeline(source, writer);
      } finally {
        await writer.closeFile();
      }
      const digest: Digest = `${algorithm}:${hash.digest('hex')}`;
      const expected = options.expected;
      if (expected && expected.size !== writer.size) throw invalidBlob(expected, `${writer.size} bytes, want ${expected.size}`);
      if (expected && expected.digest !== digest) throw invalidBlob(expected, `content has digest ${digest}`);
      await options.beforeCommit?.(digest);
      await commitFile(partial, this.blobPath(digest));
      return { digest, size: writer.size };
    } finally {
      await rm(partial, { force: true });
      await lock.release();
    }
  }

  /** Removes a committed blob; true when it was there. Only garbage collection should call this. */
  async delete(digest: Digest): Promise<boolean> {
    try {
      await unlink(this.blobPath(digest));
      return true;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return false;
      throw err;
    }
  }

  /** Every committed blob with its size; stale temp files of dead writers are removed on the way. */
  async *list(): AsyncGenerator<{ readonly digest: Digest; readonly size: number }> {
    let algorithms: string[];
    try {
      algorithms = await readdir(join(this.root, 'blobs'));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return;
      throw err;
    }
    for (const algorithm of algorithms) {
      if (algorithm !== 'sha256' && algorithm !== 'sha512') continue;
      const dir = join(this.root, 'blobs', algorithm);
      for (const name of await readdir(dir)) {
        const info = await stat(join(dir, name)).catch(() => undefined);
        if (!info) continue;
        if (name.startsWith('.')) {
          if (Date.now() - info.mtimeMs > staleTempMs) await rm(join(dir, name), { force: true });
          continue;
        }
        const digest = `${algorithm}:${name}`;
        try {
          parseDigest(digest);
        } catch {
          continue;
        }
        yield { digest: digest as Digest, size: info.size };
      }
    }
  }

  /**
   * Removes partial writes nobody is writing: those of dead writers whose digest is unknown
   * at once, and resumable ones once older than `maxAgeMs`. Writes in progress are kept.
   */
  async cleanIngests(options: { readonly maxAgeMs: number; readonly signal?: AbortSignal }): Promise<IngestCleanup> {
    const removed: string[] = [];
    const kept: string[] = [];
    let names: string[];
    try {
      names = await readdir(this.#ingestDir);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return { removed, kept };
      throw err;
    }
    for (const name of names) {
      if (!name.endsWith('.data')) continue;
      throwIfAborted(options.signal);
      const stem = join(this.#ingestDir, name.slice(0, -'.data'.length));
      const lock = await tryAcquireFileLock(`${stem}.lock`);
      if (!lock) {
        kept.push(name);
        continue;
      }
      try {
        const info = await stat(`${stem}.data`).catch(() => undefined);
        const resumable = !name.startsWith('tmp-');
        if (info && resumable && Date.now() - info.mtimeMs < options.maxAgeMs) {
          kept.push(name);
          continue;
        }
        await rm(`${stem}.data`, { force: true });
        removed.push(name);
      } finally {
        await lock.release();
      }
    }
    return { removed, kept };
  }
}

async function commitFile(partial: string, target: string): Promise<void> {
  await rename(partial, target);
  await syncDirectory(join(target, '..'));
}

/** An Ingest of a blob that is already committed: nothing to write, commit is a no-op. */
function committedIngest(size: number): Ingest {
  return {
    offset: size,
    writer: new Writable({
      write(chunk: Buffer, _encoding, callback) {
        callback(
          chunk.length === 0
            ? null
            : new StoreError('blob is already committed; nothing more may be written', { code: StoreErrorCode.IngestClosed, kind: ErrorKind.FailedPrecondition }),
        );
      },
    }),
    commit: async () => {},
    abort: async () => {},
  };
}

/** A Writable appending to a file and hashing what it writes; refuses to grow past `limit`. */
class HashingFileWriter extends Writable {
  readonly #handle: FileHandle;
  readonly #hash: Hash;
  readonly #limit: number | undefined;
  #size: number;
  #closed = false;
  #overflowed = false;

  constructor(handle: FileHandle, hash: Hash, limit?: number, offset = 0) {
    super({ highWaterMark: 4 * streamChunk });
    this.#handle = handle;
    this.#hash = hash;
    this.#limit = limit;
    this.#size = offset;
  }

  get size(): number {
    return this.#size;
  }

  /** True once a write was refused for growing past the limit: the content is wrong. */
  get overflowed(): boolean {
    return this.#overflowed;
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    const buffers = chunks.map((c) => c.chunk);
    let total = 0;
    for (const b of buffers) total += b.length;
    if (this.#limit !== undefined && this.#size + total > this.#limit) {
      this.#overflowed = true;
      callback(new StoreError(`blob grows past its descriptor's ${this.#limit} bytes`, { code: StoreErrorCode.DigestMismatch, kind: ErrorKind.InvalidArgument }));
      return;
    }
    for (const b of buffers) this.#hash.update(b);
    this.#size += total;
    this.#handle.writev(buffers).then(
      () => callback(),
      (err: Error) => callback(err),
    );
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this._writev([{ chunk }], callback);
  }

  /** Closes the file once; safe to call after an error. */
  async closeFile(sync = false): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      if (sync) await this.#handle.sync();
    } finally {
      await this.#handle.close();
    }
  }
}

interface LocalIngestOptions {
  readonly expected: ExpectedBlob;
  readonly offset: number;
  readonly hash: Hash;
  readonly handle: FileHandle;
  readonly partial: string;
  readonly target: string;
  readonly release: () => Promise<void>;
  readonly signal?: AbortSignal;
}

class LocalIngest implements Ingest {
  readonly offset: number;
  readonly writer: HashingFileWriter;
  readonly #o: LocalIngestOptions;
  #done: Promise<void> | undefined;

  constructor(options: LocalIngestOptions) {
    this.#o = options;
    this.offset = options.offset;
    this.writer = new HashingFileWriter(options.handle, options.hash, options.expected.size, options.offset);
    const signal = options.signal;
    if (signal) {
      const onAbort = () => {
        this.writer.destroy(abortError(signal));
        void this.abort({ keep: true });
      };
      signal.addEventListener('abort', onAbort, { once: true });
      void finished(this.writer).then(
        () => signal.removeEventListener('abort', onAbort),
        () => signal.removeEventListener('abort', onAbort),
      );
    }
  }

  commit(): Promise<void> {
    if (this.#done) {
      return this.#done.then(() => {
        throw new StoreError(`ingest of ${this.#o.expected.digest} already ended`, { code: StoreErrorCode.IngestClosed, kind: ErrorKind.FailedPrecondition });
      });
    }
    this.#done = this.#commit();
    return this.#done;
  }

  async #commit(): Promise<void> {
    const { expected } = this.#o;
    let keep = true;
    try {
      if (!this.writer.writableEnded) this.writer.end();
      await finished(this.writer);
      await this.writer.closeFile(true);
      const digest = `${parseDigest(expected.digest).algorithm}:${this.#o.hash.digest('hex')}`;
      if (this.writer.size !== expected.size) {
        keep = this.writer.size < expected.size;
        throw invalidBlob(expected, `${this.writer.size} bytes, want ${expected.size}`);
      }
      if (digest !== expected.digest) {
        keep = false;
        throw invalidBlob(expected, `content has digest ${digest}`);
      }
      await commitFile(this.#o.partial, this.#o.target);
    } catch (err) {
      await this.writer.closeFile().catch(() => {});
      // A short blob may be resumed later; wrong bytes never can.
      if (!keep || this.writer.overflowed) await rm(this.#o.partial, { force: true });
      throw err;
    } finally {
      await this.#o.release();
    }
  }

  abort(options: { readonly keep?: boolean } = {}): Promise<void> {
    if (this.#done) return this.#done.catch(() => {});
    this.#done = (async () => {
      try {
        if (!this.writer.destroyed) this.writer.destroy();
        await finished(this.writer).catch(() => {});
        await this.writer.closeFile().catch(() => {});
        if (!options.keep) await rm(this.#o.partial, { force: true });
      } finally {
        await this.#o.release();
      }
    })();
    return this.#done;
  }
}
