import { mkdirSync, readFileSync, renameSync, symlinkSync, unlinkSync } from 'node:fs';
import { lstat, mkdir, readdir, readlink, rmdir, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip, createZstdCompress } from 'node:zlib';
import { ErrorKind, errnoCode, throwIfAborted } from '@berth/errors';
import { acquireFileLock, randomBytes, randomHex, removeTree, tryAcquireFileLock, withFileLock, writeJsonAtomic } from '@berth/fsutil';
import { noopLogger, utcTimestamp, type Logger } from '@berth/log';
import { DigestStream, MediaType, chainIds, digestOf, isDigest, layerCompression, sha256Hex, type Digest, type LayerCompression } from '@berth/oci';
import { packTar, type SnapshotCollection, type TarInput } from '@berth/store';
import { SnapshotError, SnapshotErrorCode } from './errors.js';
import { FsOps } from './fs-ops.js';
import { mountAll, unmount, type Mount } from './mount.js';
import {
  SnapshotKind,
  type DiffOptions,
  type LayerDiff,
  type SnapshotInfo,
  type Snapshotter,
  type UnpackImageOptions,
  type UnpackImageResult,
} from './snapshotter.js';
import { closing, treeEntries, type WalkContext } from './tree-entries.js';
import { unpackLayer, type UnpackMode } from './unpack-layer.js';

/** Options every snapshotter takes: its state directory (under the state root, which the app chooses). */
export interface SnapshotterOptions {
  readonly root: string;
  readonly logger?: Logger;
  /** The berth-fsops helper (default: the one the package build made). */
  readonly fsOpsPath?: string;
}

/** A snapshot's record on disk (`snapshots/<name>/info.json`). */
export interface SnapshotRecord extends SnapshotInfo {
  /** The directory name under `snapshots/`. */
  readonly name: string;
  /** The short name of its `l/` link (overlay lowerdirs). */
  readonly link?: string;
}

// Snapshot trees are not fsynced (as docker and containerd leave them): syncing info.json
// would flush every file of the layer through ext4's ordered journal and buy no durability.
const notDurable = { durable: false } as const;
const linkAlphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
const linkLength = 4;
const maxKeyLength = 512;

// Renames, links and mkdirs of snapshot metadata are single quick syscalls: synchronous, they
// save a thread-pool round trip each (several per container start and removal).
function unlinkIfThere(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Gone already, or never made: a link is only a shortcut.
  }
}

function notFound(key: string): SnapshotError {
  return new SnapshotError(`snapshot ${key} does not exist`, { code: SnapshotErrorCode.SnapshotNotFound, kind: ErrorKind.NotFound });
}

// The last active key named: a container's operations name the same key one after another.
let lastActive: { readonly key: string; readonly name: string } | undefined;

/** The directory name of a key: `c-<hex>` for a chain ID, `a-<sha256 of key>` for an active key. */
export function snapshotName(key: string): string {
  if (isDigest(key)) return `c-${key.slice(key.indexOf(':') + 1)}`;
  if (lastActive?.key !== key) lastActive = { key, name: `a-${sha256Hex(key)}` };
  return lastActive.name;
}

const compressionMediaType: Record<LayerCompression, string> = {
  gzip: MediaType.OciLayerGzip,
  zstd: MediaType.OciLayerZstd,
  none: MediaType.OciLayer,
};

/**
 * Snapshots as directories under `<root>`:
 *
 * - `snapshots/<name>/info.json` and `fs/` (plus `work/` for an active overlay snapshot);
 * - `l/<id>`: short links to `fs/`, which keep overlay's lowerdir option short;
 * - `tmp/`: unpacks and prepares in progress, each guarded by a lock file naming its process;
 * - `trash/`: removed snapshots waiting to be deleted; `mnt/`: temporary mount points.
 *
 * A snapshot appears by one rename of a complete directory, so a kill at any moment leaves
 * either nothing or a whole snapshot; `collect` clears what dead processes left in `tmp/`.
 * `snapshots.lock` guards every change to the set of snapshots and is held only briefly.
 */
export abstract class DirectorySnapshotter implements Snapshotter {
  abstract readonly driver: string;
  readonly root: string;
  protected readonly logger: Logger;
  protected readonly fsOpsPath: string | undefined;
  #ready: Promise<void> | undefined;

  constructor(options: SnapshotterOptions) {
    if (typeof options?.root !== 'string' || options.root === '') {
      throw new SnapshotError('a snapshotter needs a root directory', { code: SnapshotErrorCode.InvalidOptions, kind: ErrorKind.InvalidArgument });
    }
    // Absolute and normal once: the paths under it are joined as strings (fixed names and
    // snapshot names), as path.join normalises the whole path at every call.
    this.root = resolve(options.root);
    this.logger = options.logger ?? noopLogger;
    this.fsOpsPath = options.fsOpsPath;
  }

  /** How layers are applied: overlay whiteouts in a layer directory, or deletions in a full copy. */
  protected abstract readonly unpackMode: UnpackMode;
  /** Fills a new layer's `fs` before the layer is applied to it (a copy of the parent, or nothing). */
  protected abstract populate(fs: string, chain: readonly SnapshotRecord[], signal?: AbortSignal): Promise<void>;
  /** Extra directories a new active snapshot needs (overlay's work dir). */
  protected abstract prepareDirs(dir: string): Promise<void>;
  /** The lower layers' directories, nearest first, that unpacking a layer on `chain` consults. */
  protected abstract lowerDirs(chain: readonly SnapshotRecord[]): string[];
  protected abstract mountsOf(record: SnapshotRecord, parents: readonly SnapshotRecord[]): Mount[];
  protected abstract viewOf(record: SnapshotRecord, parents: readonly SnapshotRecord[]): Mount[];
  protected abstract changes(record: SnapshotRecord, parents: readonly SnapshotRecord[], ctx: WalkContext): AsyncIterable<TarInput>;
  /** Tidies an active snapshot's directory as it becomes a layer. */
  protected abstract beforeCommit(dir: string): Promise<void>;

  protected dirOf(name: string): string {
    return `${this.root}/snapshots/${name}`;
  }

  protected fsOf(record: { readonly name: string }): string {
    return `${this.dirOf(record.name)}/fs`;
  }

  protected linkPath(record: SnapshotRecord): string {
    return `${this.root}/l/${record.link ?? ''}`;
  }

  get #lockPath(): string {
    return `${this.root}/snapshots.lock`;
  }

  protected init(): Promise<void> {
    this.#ready ??= (async () => {
      for (const d of ['snapshots', 'l', 'tmp', 'trash', 'mnt']) mkdirSync(join(this.root, d), { recursive: true });
    })();
    return this.#ready;
  }

  // Read synchronously: a record is a few hundred bytes on a local disk, less work than the
  // thread-pool round trips of an asynchronous read, and every operation reads several.
  async #readRecord(name: string): Promise<SnapshotRecord | undefined> {
    let text: string;
    try {
      text = readFileSync(`${this.dirOf(name)}/info.json`, 'utf8');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return undefined;
      throw err;
    }
    return { ...(JSON.parse(text) as SnapshotRecord), name };
  }

  async #record(key: string): Promise<SnapshotRecord> {
    const record = await this.#readRecord(snapshotName(key));
    if (!record || record.key !== key) throw notFound(key);
    return record;
  }

  /** A record's parents, nearest first. */
  async #parents(record: SnapshotRecord): Promise<SnapshotRecord[]> {
    const out: SnapshotRecord[] = [];
    for (let parent = record.parent; parent !== undefined; ) {
      const p = await this.#readRecord(snapshotName(parent));
      if (!p) throw new SnapshotError(`snapshot ${record.key} is missing its parent ${parent}`, { code: SnapshotErrorCode.SnapshotNotFound, kind: ErrorKind.Internal });
      out.push(p);
      parent = p.parent;
    }
    return out;
  }

  #publicInfo(record: SnapshotRecord): SnapshotInfo {
    return {
      key: record.key,
      kind: record.kind,
      parent: record.parent,
      created: record.created,
      ...(record.diffId ? { diffId: record.diffId } : {}),
      ...(record.size !== undefined ? { size: record.size } : {}),
    };
  }

  async usage(key: string, options: { readonly signal?: AbortSignal } = {}): Promise<{ readonly size: number; readonly inodes: number }> {
    await this.init();
    const root = this.fsOf(await this.#record(key));
    const seen = new Set<bigint>();
    let size = 0;
    const walk = async (dir: string): Promise<void> => {
      throwIfAborted(options.signal);
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if (errnoCode(err) === 'ENOENT') return;
        throw err;
      }
      for (const entry of entries) {
        const path = join(dir, entry.name);
        const info = await lstat(path, { bigint: true }).catch(() => undefined);
        if (!info || seen.has(info.ino)) continue;
        seen.add(info.ino);
        // As docker's SizeRw: apparent sizes of what is not a directory, a hardlinked file once.
        if (entry.isDirectory()) await walk(path);
        else size += Number(info.size);
      }
    };
    await walk(root);
    return { size, inodes: seen.size };
  }

  async stat(key: string): Promise<SnapshotInfo | undefined> {
    await this.init();
    const record = await this.#readRecord(snapshotName(key));
    return record && record.key === key ? this.#publicInfo(record) : undefined;
  }

  async #records(): Promise<SnapshotRecord[]> {
    await this.init();
    const out: SnapshotRecord[] = [];
    for (const name of await readdir(join(this.root, 'snapshots'))) {
      const record = await this.#readRecord(name);
      if (record) out.push(record);
    }
    return out;
  }

  async list(): Promise<SnapshotInfo[]> {
    return (await this.#records()).map((r) => this.#publicInfo(r));
  }

  // A fresh short link name, reserved by creating the link itself.
  async #makeLink(name: string): Promise<string> {
    for (;;) {
      const bytes = randomBytes(linkLength);
      const id = [...bytes].map((b) => linkAlphabet[b % linkAlphabet.length]).join('');
      try {
        symlinkSync(`../snapshots/${name}/fs`, join(this.root, 'l', id));
        return id;
      } catch (err) {
        if (errnoCode(err) !== 'EEXIST') throw err;
      }
    }
  }

  /**
   * Runs `work` in a private directory `tmp/<name>` under a lock naming this process, then
   * moves the result to `snapshots/<name>` under the snapshots lock. An existing snapshot of
   * that name wins (another process made the same layer): the work is discarded.
   */
  async #build(name: string, work: (dir: string) => Promise<SnapshotRecord>, signal?: AbortSignal): Promise<SnapshotRecord> {
    // A record appears only complete (renamed into place), so one that is there needs no lock:
    // every image layer of every run takes this path.
    const made = await this.#readRecord(name);
    if (made) return made;
    const tmp = `${this.root}/tmp/${name}`;
    const lock = await acquireFileLock(`${tmp}.lock`, signal ? { signal } : {});
    try {
      const existing = await this.#readRecord(name);
      if (existing) return existing;
      await removeTree(tmp);
      mkdirSync(tmp);
      let record: SnapshotRecord;
      try {
        record = await work(tmp);
      } catch (err) {
        await removeTree(tmp);
        throw err;
      }
      return await withFileLock(this.#lockPath, async () => {
        const again = await this.#readRecord(name);
        if (again) {
          await removeTree(tmp);
          return again;
        }
        renameSync(tmp, this.dirOf(name));
        return record;
      });
    } finally {
      await lock.release();
    }
  }

  async unpack(options: UnpackImageOptions): Promise<UnpackImageResult> {
    await this.init();
    const { layers, diffIds, signal } = options;
    if (layers.length !== diffIds.length) {
      throw new SnapshotError(`image has ${layers.length} layers but its config names ${diffIds.length} diff IDs`, {
        code: SnapshotErrorCode.InvalidLayer,
        kind: ErrorKind.InvalidArgument,
      });
    }
    const chain = chainIds(diffIds);
    let unpacked = 0;
    let below: SnapshotRecord[] = [];
    for (let i = 0; i < layers.length; i++) {
      throwIfAborted(signal);
      const layer = layers[i]!;
      const chainId = chain[i]!;
      const name = snapshotName(chainId);
      let fresh = false;
      const record = await this.#build(
        name,
        async (tmp) => {
          fresh = true;
          const fs = join(tmp, 'fs');
          await this.populate(fs, below, signal);
          const result = await unpackLayer({
            source: await options.content.read(layer.digest, signal ? { signal } : {}),
            target: fs,
            mode: this.unpackMode,
            compression: layerCompression(layer.mediaType) ?? 'auto',
            diffId: diffIds[i]!,
            lowerDirs: this.lowerDirs(below),
            logger: this.logger,
            ...(this.fsOpsPath ? { fsOpsPath: this.fsOpsPath } : {}),
            ...(signal ? { signal } : {}),
          });
          const info: SnapshotRecord = {
            key: chainId,
            kind: SnapshotKind.Committed,
            parent: chain[i - 1],
            created: utcTimestamp(),
            diffId: diffIds[i]!,
            size: result.size,
            name,
            link: await this.#makeLink(name),
          };
          await writeJsonAtomic(join(tmp, 'info.json'), info, notDurable);
          return info;
        },
        signal,
      );
      if (fresh) unpacked++;
      options.onProgress?.({ layer: layer.digest, chainId, status: fresh ? 'unpacked' : 'exists' });
      below = [record, ...below];
    }
    return { chainId: chain.at(-1), unpacked };
  }

  async prepare(key: string, parent: string | undefined, options: { readonly signal?: AbortSignal } = {}): Promise<Mount[]> {
    await this.init();
    if (typeof key !== 'string' || key === '' || key.length > maxKeyLength || isDigest(key)) {
      throw new SnapshotError(`invalid snapshot key ${JSON.stringify(key)}: want a name that is not a digest (digests name committed layers)`, {
        code: SnapshotErrorCode.InvalidOptions,
        kind: ErrorKind.InvalidArgument,
      });
    }
    const name = snapshotName(key);
    if (await this.#readRecord(name)) throw this.#exists(key);
    let parents: SnapshotRecord[] = [];
    if (parent !== undefined) {
      const p = await this.#record(parent);
      if (p.kind !== SnapshotKind.Committed) {
        throw new SnapshotError(`snapshot ${parent} is active; only committed snapshots can be parents`, { code: SnapshotErrorCode.SnapshotInUse, kind: ErrorKind.FailedPrecondition });
      }
      parents = [p, ...(await this.#parents(p))];
    }
    let created = false;
    const record = await this.#build(
      name,
      async (tmp) => {
        created = true;
        await this.populate(join(tmp, 'fs'), parents, options.signal);
        await this.prepareDirs(tmp);
        const info: SnapshotRecord = { key, kind: SnapshotKind.Active, parent, created: utcTimestamp(), name, link: await this.#makeLink(name) };
        await writeJsonAtomic(join(tmp, 'info.json'), info, notDurable);
        return info;
      },
      options.signal,
    );
    if (!created) throw this.#exists(key);
    return this.mountsOf(record, parents);
  }

  #exists(key: string): SnapshotError {
    return new SnapshotError(`snapshot ${key} already exists`, { code: SnapshotErrorCode.SnapshotExists, kind: ErrorKind.AlreadyExists });
  }

  async mounts(key: string): Promise<Mount[]> {
    await this.init();
    const record = await this.#record(key);
    return this.mountsOf(record, await this.#parents(record));
  }

  async view(key: string): Promise<Mount[]> {
    await this.init();
    const record = await this.#record(key);
    return this.viewOf(record, await this.#parents(record));
  }

  async commit(key: string, chainId: Digest, options: { readonly diffId?: Digest; readonly signal?: AbortSignal } = {}): Promise<SnapshotInfo> {
    await this.init();
    throwIfAborted(options.signal);
    if (!isDigest(chainId)) {
      throw new SnapshotError(`commit needs a chain ID, got ${JSON.stringify(chainId)}`, { code: SnapshotErrorCode.InvalidOptions, kind: ErrorKind.InvalidArgument });
    }
    const active = await this.#record(key);
    if (active.kind !== SnapshotKind.Active) {
      throw new SnapshotError(`snapshot ${key} is already committed`, { code: SnapshotErrorCode.SnapshotInUse, kind: ErrorKind.FailedPrecondition });
    }
    if (options.diffId) {
      const expected = active.parent ? digestOf(`${active.parent} ${options.diffId}`) : options.diffId;
      if (expected !== chainId) {
        throw new SnapshotError(`chain ID ${chainId} does not follow from parent ${active.parent ?? '(none)'} and diff ID ${options.diffId}`, {
          code: SnapshotErrorCode.InvalidOptions,
          kind: ErrorKind.InvalidArgument,
        });
      }
    }
    const name = snapshotName(chainId);
    const trash: string[] = [];
    const result = await withFileLock(this.#lockPath, async () => {
      const existing = await this.#readRecord(name);
      if (existing) {
        // The layer exists already (another build made it): the active copy is redundant.
        trash.push(await this.#toTrash(active));
        return existing;
      }
      const dir = this.dirOf(active.name);
      await this.beforeCommit(dir);
      const record: SnapshotRecord = {
        key: chainId,
        kind: SnapshotKind.Committed,
        parent: active.parent,
        created: utcTimestamp(),
        ...(options.diffId ? { diffId: options.diffId } : {}),
        name,
        link: await this.#makeLink(name),
      };
      await writeJsonAtomic(join(dir, 'info.json'), record, notDurable);
      renameSync(dir, this.dirOf(name));
      if (active.link) unlinkIfThere(this.linkPath(active));
      return record;
    });
    for (const t of trash) await removeTree(t);
    return this.#publicInfo(result);
  }

  // Moves a snapshot out of sight (fast, under the lock); deleting the tree comes after.
  async #toTrash(record: SnapshotRecord): Promise<string> {
    const target = join(this.root, 'trash', `${record.name}-${randomHex(4)}`);
    renameSync(this.dirOf(record.name), target);
    if (record.link) unlinkIfThere(this.linkPath(record));
    return target;
  }

  async remove(key: string): Promise<void> {
    await this.init();
    const trash = await withFileLock(this.#lockPath, async () => {
      const record = await this.#record(key);
      // Only a committed snapshot can be a parent (prepare refuses others), so only its removal
      // needs the scan of every record.
      const child = record.kind === SnapshotKind.Committed ? (await this.#records()).find((r) => r.parent === key) : undefined;
      if (child) {
        throw new SnapshotError(`snapshot ${key} has dependent snapshot ${child.key}`, { code: SnapshotErrorCode.SnapshotInUse, kind: ErrorKind.FailedPrecondition });
      }
      return this.#toTrash(record);
    });
    await removeTree(trash);
  }

  async collect(live: ReadonlySet<string>, options: { readonly signal?: AbortSignal } = {}): Promise<SnapshotCollection> {
    await this.init();
    const removed: string[] = [];
    const trash: string[] = [];
    await withFileLock(
      this.#lockPath,
      async () => {
        const records = await this.#records();
        const byKey = new Map(records.map((r) => [r.key, r]));
        const keep = new Set<string>();
        for (const key of live) {
          for (let k: string | undefined = key; k !== undefined && !keep.has(k); k = byKey.get(k)?.parent) keep.add(k);
        }
        for (const record of records) {
          throwIfAborted(options.signal);
          if (keep.has(record.key)) continue;
          trash.push(await this.#toTrash(record));
          removed.push(record.key);
        }
        await this.#cleanTmp();
        await this.#cleanLinks();
      },
      options.signal ? { signal: options.signal } : {},
    );
    return {
      removed,
      purge: async () => {
        for (const t of trash) await removeTree(t);
        // Left by processes that died between moving a snapshot away and deleting it.
        for (const entry of await readdir(join(this.root, 'trash'))) await removeTree(join(this.root, 'trash', entry));
      },
    };
  }

  // Unpacks and prepares of processes that died: their lock can be taken.
  async #cleanTmp(): Promise<void> {
    const tmpDir = join(this.root, 'tmp');
    for (const entry of await readdir(tmpDir)) {
      if (entry.endsWith('.lock')) continue;
      const lock = await tryAcquireFileLock(join(tmpDir, `${entry}.lock`));
      if (!lock) continue;
      try {
        await removeTree(join(tmpDir, entry));
      } finally {
        await lock.release();
      }
    }
  }

  async #cleanLinks(): Promise<void> {
    const linkDir = join(this.root, 'l');
    for (const id of await readdir(linkDir)) {
      const target = await readlink(join(linkDir, id)).catch(() => undefined);
      const name = target?.split('/')[2];
      if (name && (await this.#readRecord(name))?.link === id) continue;
      // A link without its snapshot: keep it while an unpack of that snapshot is running.
      const idle = name ? await tryAcquireFileLock(join(this.root, 'tmp', `${name}.lock`)) : undefined;
      if (name && !idle) continue;
      await idle?.release();
      await unlink(join(linkDir, id)).catch(() => {});
    }
  }

  async diff(key: string, options: DiffOptions = {}): Promise<LayerDiff> {
    await this.init();
    const record = await this.#record(key);
    const parents = await this.#parents(record);
    const compression = options.compression ?? 'gzip';
    const ops = await FsOps.start(this.fsOpsPath);
    const ctx: WalkContext = { ops, links: new Map(), ...(options.signal ? { signal: options.signal } : {}) };
    const tar = packTar(closing(this.changes(record, parents, ctx), () => ops.close()));
    const uncompressed = new DigestStream();
    const compressor = compression === 'gzip' ? createGzip({ level: 6 }) : compression === 'zstd' ? createZstdCompress() : new PassThrough();
    const compressed = new DigestStream();
    const out = new PassThrough({ highWaterMark: 1 << 20 });
    const done = pipeline(tar, uncompressed, compressor, compressed, out, options.signal ? { signal: options.signal } : {});
    const result = done.then(() => ({
      diffId: uncompressed.digest,
      digest: compressed.digest,
      size: compressed.size,
      mediaType: compressionMediaType[compression],
    }));
    result.catch(() => {});
    return { stream: out, result };
  }

  async export(key: string, options: { readonly signal?: AbortSignal } = {}): Promise<Readable> {
    const mounts = await this.view(key);
    const bind = mounts.length === 1 && mounts[0]!.type === 'bind' ? mounts[0]! : undefined;
    let mountpoint: string | undefined;
    if (!bind) {
      mountpoint = join(this.root, 'mnt', `export-${randomHex(6)}`);
      await mkdir(mountpoint);
      try {
        await mountAll(mounts, mountpoint, options.signal);
      } catch (err) {
        await rmdir(mountpoint).catch(() => {});
        throw err;
      }
    }
    const release = async () => {
      if (!mountpoint) return;
      const mp = mountpoint;
      mountpoint = undefined;
      await unmount(mp);
      // rmdir, never rm -r: if the unmount did not take, the tree below is a snapshot.
      await rmdir(mp).catch(() => {});
    };
    let ops: FsOps;
    try {
      ops = await FsOps.start(this.fsOpsPath);
    } catch (err) {
      await release();
      throw err;
    }
    const ctx: WalkContext = { ops, links: new Map(), ...(options.signal ? { signal: options.signal } : {}) };
    return packTar(
      closing(treeEntries(bind ? bind.source : mountpoint!, ctx), async () => {
        try {
          await ops.close();
        } finally {
          await release();
        }
      }),
    );
  }
}
