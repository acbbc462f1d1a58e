import {
  closeSync,
  constants as fsConstants,
  fchmodSync,
  fchownSync,
  futimesSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  chmodSync,
  chownSync,
  openSync,
  readdirSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeSync,
  type Stats,
} from 'node:fs';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ErrorKind, errnoCode, hasCode, throwIfAborted } from '@berth/errors';
import { noopLogger, type Logger } from '@berth/log';
import { DigestStream, OciErrorCode, type Digest, type LayerCompression } from '@berth/oci';
import { TarEntryType, TarReader, createDecompressor, detectCompression, peekHead, type TarEntry, type TarEntrySink } from '@berth/store';
import { SnapshotError, SnapshotErrorCode } from './errors.js';
import { FsOps, FsOpsError } from './fs-ops.js';
import { RootResolver, cleanLayerPath } from './root-resolver.js';

/**
 * How whiteouts land: `overlay` turns them into overlayfs whiteouts (a 0/0 character device,
 * `trusted.overlay.opaque=y`) in a directory of their own; `copy` applies them to a full copy
 * of the parent tree by deleting what they hide.
 */
export const UnpackMode = { Overlay: 'overlay', Copy: 'copy' } as const;
export type UnpackMode = (typeof UnpackMode)[keyof typeof UnpackMode];

/** Options of `unpackLayer`. */
export interface UnpackLayerOptions {
  /** The layer blob: a tar, gzip- or zstd-compressed or not. */
  readonly source: Readable;
  /** The directory the layer is applied to; it must exist. */
  readonly target: string;
  readonly mode: UnpackMode;
  /** Default `auto`: told by the first bytes. */
  readonly compression?: LayerCompression | 'auto';
  /** The diff ID the config names for this layer; a mismatch fails the unpack. */
  readonly diffId?: Digest;
  /** Overlay mode: the parent layers' directories, nearest first, for the metadata of directories the layer implies. */
  readonly lowerDirs?: readonly string[];
  /** A berth-fsops session to use; one is started (from `fsOpsPath`) when the layer needs it. */
  readonly fsOps?: FsOps;
  readonly fsOpsPath?: string;
  /** Keep the archived owners (default: when running as root, as tar does). */
  readonly sameOwner?: boolean;
  readonly logger?: Logger;
  readonly signal?: AbortSignal;
}

/** What an unpack found: the diff ID and size of the uncompressed layer, and its entry count. */
export interface UnpackResult {
  readonly diffId: Digest;
  readonly size: number;
  readonly entries: number;
}

const whiteoutPrefix = '.wh.';
const opaqueMarker = '.wh..wh..opq';
const overlayOpaque = 'trusted.overlay.opaque';
const createFileFlags = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW;
const typeBits: Partial<Record<TarEntryType, number>> = {
  [TarEntryType.CharDevice]: fsConstants.S_IFCHR,
  [TarEntryType.BlockDevice]: fsConstants.S_IFBLK,
  [TarEntryType.Fifo]: fsConstants.S_IFIFO,
};

function escape(name: string, why: string): SnapshotError {
  return new SnapshotError(`layer entry ${JSON.stringify(name)} ${why}`, { code: SnapshotErrorCode.LayerPathEscape, kind: ErrorKind.PermissionDenied });
}

function invalid(message: string, cause?: unknown): SnapshotError {
  return new SnapshotError(message, { code: SnapshotErrorCode.InvalidLayer, kind: ErrorKind.InvalidArgument, ...(cause ? { cause } : {}) });
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Applies one layer to a directory, streaming: decompression, the diff ID hash and the tar
 * parse run as the bytes arrive, and each file is written with plain synchronous calls
 * (create, write, chown, chmod, times) as GNU tar does. Owners, modes, times, xattrs
 * (`SCHILY.xattr.*`, set through berth-fsops), hardlinks, symlinks, device nodes and fifos
 * are kept; whiteouts follow `mode`.
 *
 * Paths are resolved inside the target like a chroot (see RootResolver), so a layer can
 * never write outside it: `..` above the root is refused, absolute names and symlinks
 * (absolute or relative, from this layer or an earlier one) resolve within the target, and
 * hardlinks can only link to files inside it.
 */
export async function unpackLayer(options: UnpackLayerOptions): Promise<UnpackResult> {
  throwIfAborted(options.signal);
  let compression = options.compression ?? 'auto';
  if (compression === 'auto') compression = detectCompression(await peekHead(options.source));
  const applier = new LayerApplier(options);
  const digest = new DigestStream(options.diffId ? { expected: { digest: options.diffId } } : {});
  const reader = new TarReader((entry) => applier.entry(entry));
  const decompress = createDecompressor(compression);
  const streamOptions = options.signal ? { signal: options.signal } : {};
  try {
    if (decompress) await pipeline(options.source, decompress, digest, reader, streamOptions);
    else await pipeline(options.source, digest, reader, streamOptions);
    await applier.finish();
  } catch (err) {
    await applier.abandon();
    if (hasCode(err, OciErrorCode.DigestMismatch)) {
      throw new SnapshotError(`layer does not match diff ID ${options.diffId}`, { code: SnapshotErrorCode.DiffIdMismatch, kind: ErrorKind.InvalidArgument, cause: err });
    }
    throw err;
  }
  return { diffId: digest.digest, size: digest.size, entries: reader.entries };
}

/** The per-layer state of an unpack: the resolver, deferred directory times, helper calls in flight. */
class LayerApplier {
  readonly #o: UnpackLayerOptions;
  readonly #logger: Logger;
  readonly #resolver: RootResolver;
  readonly #sameOwner: boolean;
  readonly #dirTimes: Array<{ rel: string; atime: number; mtime: number }> = [];
  // Copy mode: what this layer wrote, so an opaque whiteout removes only what lies below it.
  readonly #touched = new Set<string>();
  #fsOps: FsOps | undefined;
  #ownFsOps = false;
  // The file being written, closed here if the stream fails in the middle of it.
  #openFd: number | undefined;
  #inFlight: Promise<void>[] = [];

  constructor(options: UnpackLayerOptions) {
    this.#o = options;
    this.#logger = options.logger ?? noopLogger;
    this.#resolver = new RootResolver(options.target);
    this.#sameOwner = options.sameOwner ?? process.getuid?.() === 0;
  }

  async #helper(): Promise<FsOps> {
    if (!this.#fsOps) {
      this.#fsOps = this.#o.fsOps ?? (await FsOps.start(this.#o.fsOpsPath));
      this.#ownFsOps = !this.#o.fsOps;
    }
    return this.#fsOps;
  }

  // Sends a helper call without waiting, so the tar stream keeps flowing; finish() collects them.
  #later(call: (ops: FsOps) => Promise<void>, what: string, tolerant = false): void {
    const p = this.#helper()
      .then(call)
      .catch((err: unknown) => {
        if (tolerant && err instanceof FsOpsError && ['ENOTSUP', 'EOPNOTSUPP', 'EPERM'].includes(err.errno)) {
          this.#logger.warn('extended attribute not kept', { path: what, error: err.message });
          return;
        }
        throw err;
      });
    p.catch(() => {});
    this.#inFlight.push(p);
  }

  async #settle(): Promise<void> {
    const calls = this.#inFlight;
    this.#inFlight = [];
    await Promise.all(calls);
  }

  entry(entry: TarEntry): TarEntrySink | undefined | Promise<TarEntrySink | undefined> {
    if (this.#o.signal?.aborted) throwIfAborted(this.#o.signal);
    const parts = cleanLayerPath(entry.path);
    const name = parts.at(-1);
    if (name === opaqueMarker) return this.#opaque(parts.slice(0, -1));
    if (name?.startsWith(whiteoutPrefix)) {
      // Other `.wh..wh.` names are aufs bookkeeping, not whiteouts.
      if (name.startsWith(`${whiteoutPrefix}${whiteoutPrefix}`)) return undefined;
      return this.#whiteout(parts.slice(0, -1), name.slice(whiteoutPrefix.length), entry);
    }
    if (parts.length === 0) {
      if (entry.type !== TarEntryType.Directory) throw invalid(`layer entry ${JSON.stringify(entry.path)} would replace the root`);
      this.#applyDirMeta('', entry);
      return undefined;
    }
    const parentRel = this.#resolver.resolveDir(parts.slice(0, -1), (rel) => this.#makeParent(rel))!;
    const rel = parentRel === '' ? name! : `${parentRel}/${name}`;
    if (this.#o.mode === UnpackMode.Copy) this.#touched.add(rel);
    const abs = this.#resolver.abs(rel);
    switch (entry.type) {
      case TarEntryType.File:
        return this.#file(rel, abs, entry);
      case TarEntryType.Directory:
        return this.#directory(rel, abs, entry);
      case TarEntryType.Symlink:
        return this.#create(rel, abs, () => {
          symlinkSync(entry.linkpath ?? '', abs);
          if (this.#sameOwner) lchownSync(abs, entry.uid, entry.gid);
          lutimesSync(abs, entry.atime ?? entry.mtime, entry.mtime);
          this.#xattrs(abs, entry);
        });
      case TarEntryType.Hardlink:
        return this.#hardlink(rel, abs, entry);
      default:
        return this.#create(rel, abs, () => {
          this.#later(
            (ops) =>
              ops.mknod(abs, {
                mode: typeBits[entry.type]! | entry.mode,
                major: entry.devmajor ?? 0,
                minor: entry.devminor ?? 0,
                uid: this.#sameOwner ? entry.uid : (process.getuid?.() ?? 0),
                gid: this.#sameOwner ? entry.gid : (process.getgid?.() ?? 0),
                mtime: entry.mtime,
              }),
            abs,
          );
          this.#xattrs(abs, entry);
        });
    }
  }

  // Makes a directory the layer implies but does not list. On overlay, the merged view shows an
  // upper directory's owner and mode, so they are copied from the nearest lower layer having it.
  #makeParent(rel: string): void {
    const abs = this.#resolver.abs(rel);
    mkdirSync(abs, 0o755);
    if (this.#o.mode !== UnpackMode.Overlay) return;
    for (const lower of this.#o.lowerDirs ?? []) {
      const info = lstatOrUndefined(`${lower}/${rel}`);
      if (!info) continue;
      if (!info.isDirectory()) break;
      if (this.#sameOwner) chownSync(abs, info.uid, info.gid);
      chmodSync(abs, info.mode & 0o7777);
      this.#dirTimes.push({ rel, atime: info.atimeMs / 1000, mtime: info.mtimeMs / 1000 });
      break;
    }
  }

  // Runs `make` for a new entry; when something is already there, flushes helper calls,
  // removes it (a directory only when the entry is not one) and tries again.
  #create(rel: string, abs: string, make: () => void): undefined | Promise<undefined> {
    try {
      make();
      return undefined;
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
    }
    return this.#settle().then(() => {
      this.#remove(rel, abs);
      make();
      return undefined;
    });
  }

  #remove(rel: string, abs: string): void {
    const info = lstatOrUndefined(abs);
    if (!info) return;
    if (info.isDirectory()) rmSync(abs, { recursive: true, force: true });
    else unlinkSync(abs);
    this.#resolver.forget(rel);
  }

  #file(rel: string, abs: string, entry: TarEntry): TarEntrySink | Promise<TarEntrySink> {
    let fd: number | undefined;
    const open = () => {
      fd = openSync(abs, createFileFlags, 0o600);
      this.#openFd = fd;
    };
    const sink: TarEntrySink = {
      write: (chunk) => {
        let at = 0;
        while (at < chunk.length) at += writeSync(fd!, chunk, at, chunk.length - at);
      },
      end: () => {
        try {
          if (this.#sameOwner) fchownSync(fd!, entry.uid, entry.gid);
          // After chown, which clears setuid bits.
          fchmodSync(fd!, entry.mode);
          futimesSync(fd!, entry.atime ?? entry.mtime, entry.mtime);
        } finally {
          this.#openFd = undefined;
          closeSync(fd!);
        }
        this.#xattrs(abs, entry);
      },
    };
    const made = this.#create(rel, abs, open);
    return made ? made.then(() => sink) : sink;
  }

  #directory(rel: string, abs: string, entry: TarEntry): undefined | Promise<undefined> {
    try {
      mkdirSync(abs, 0o700);
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
      if (!lstatSync(abs).isDirectory()) {
        return this.#settle().then(() => {
          this.#remove(rel, abs);
          mkdirSync(abs, 0o700);
          this.#resolver.markDir(rel);
          this.#applyDirMeta(rel, entry);
          return undefined;
        });
      }
    }
    this.#resolver.markDir(rel);
    this.#applyDirMeta(rel, entry);
    return undefined;
  }

  #applyDirMeta(rel: string, entry: TarEntry): void {
    const abs = this.#resolver.abs(rel);
    if (this.#sameOwner) chownSync(abs, entry.uid, entry.gid);
    chmodSync(abs, entry.mode);
    this.#dirTimes.push({ rel, atime: entry.atime ?? entry.mtime, mtime: entry.mtime });
    this.#xattrs(abs, entry);
  }

  #hardlink(rel: string, abs: string, entry: TarEntry): undefined | Promise<undefined> {
    const linkParts = cleanLayerPath(entry.linkpath ?? '');
    if (linkParts.length === 0) throw escape(entry.path, `links to the root`);
    const dir = this.#resolver.resolveDir(linkParts.slice(0, -1));
    const targetRel = dir === undefined ? undefined : dir === '' ? linkParts.at(-1)! : `${dir}/${linkParts.at(-1)}`;
    const target = targetRel === undefined ? undefined : lstatOrUndefined(this.#resolver.abs(targetRel));
    if (!target || target.isDirectory()) {
      throw invalid(`layer entry ${JSON.stringify(entry.path)} is a hardlink to ${JSON.stringify(entry.linkpath)}, which is ${target ? 'a directory' : 'not in the layer'}`);
    }
    const targetAbs = this.#resolver.abs(targetRel!);
    if (targetAbs === abs) return undefined;
    return this.#create(rel, abs, () => linkSync(targetAbs, abs));
  }

  #xattrs(abs: string, entry: TarEntry): void {
    if (!entry.xattrs) return;
    for (const [name, value] of entry.xattrs) {
      // A layer must not steer overlayfs (opaque, redirect, metacopy): those are ours to set.
      if (name.startsWith('trusted.overlay.')) continue;
      this.#later((ops) => ops.setXattr(abs, name, value), abs, true);
    }
  }

  #whiteout(dirParts: string[], name: string, entry: TarEntry): undefined {
    if (name === '' || name === '.' || name === '..' || name.includes('/')) throw escape(entry.path, 'is not a valid whiteout');
    if (this.#o.mode === UnpackMode.Overlay) {
      const dir = this.#resolver.resolveDir(dirParts, (rel) => this.#makeParent(rel))!;
      const rel = dir === '' ? name : `${dir}/${name}`;
      const abs = this.#resolver.abs(rel);
      // The layer's own entry of that name wins: whiteouts hide only lower layers.
      if (lstatOrUndefined(abs)) return undefined;
      this.#later(
        (ops) =>
          ops.mknod(abs, {
            mode: fsConstants.S_IFCHR,
            major: 0,
            minor: 0,
            uid: this.#sameOwner ? entry.uid : (process.getuid?.() ?? 0),
            gid: this.#sameOwner ? entry.gid : (process.getgid?.() ?? 0),
            mtime: entry.mtime,
          }),
        abs,
      );
      return undefined;
    }
    const dir = this.#resolver.resolveDir(dirParts);
    if (dir === undefined) return undefined;
    const rel = dir === '' ? name : `${dir}/${name}`;
    if (this.#touched.has(rel)) return undefined;
    this.#remove(rel, this.#resolver.abs(rel));
    return undefined;
  }

  #opaque(dirParts: string[]): undefined {
    if (this.#o.mode === UnpackMode.Overlay) {
      const dir = this.#resolver.resolveDir(dirParts, (rel) => this.#makeParent(rel))!;
      this.#later((ops) => ops.setXattr(this.#resolver.abs(dir), overlayOpaque, Buffer.from('y')), this.#resolver.abs(dir));
      return undefined;
    }
    const dir = this.#resolver.resolveDir(dirParts);
    if (dir !== undefined) this.#removeUntouched(dir);
    return undefined;
  }

  // Copy mode: an opaque directory keeps only what this layer put in it.
  #removeUntouched(dir: string): void {
    for (const child of readdirSync(this.#resolver.abs(dir))) {
      const rel = dir === '' ? child : `${dir}/${child}`;
      if (!this.#touched.has(rel)) {
        this.#remove(rel, this.#resolver.abs(rel));
      } else if (lstatSync(this.#resolver.abs(rel)).isDirectory()) {
        this.#removeUntouched(rel);
      }
    }
  }

  /** Waits for the helper, then sets directory times last, since filling a directory moves its mtime. */
  async finish(): Promise<void> {
    try {
      await this.#settle();
      for (let i = this.#dirTimes.length - 1; i >= 0; i--) {
        const { rel, atime, mtime } = this.#dirTimes[i]!;
        const abs = this.#resolver.abs(rel);
        if (lstatOrUndefined(abs)?.isDirectory()) utimesSync(abs, atime, mtime);
      }
    } finally {
      await this.#close();
    }
  }

  async abandon(): Promise<void> {
    if (this.#openFd !== undefined) closeSync(this.#openFd);
    this.#openFd = undefined;
    await Promise.allSettled(this.#inFlight);
    await this.#close();
  }

  async #close(): Promise<void> {
    if (this.#ownFsOps) await this.#fsOps?.close();
    this.#fsOps = undefined;
  }
}
