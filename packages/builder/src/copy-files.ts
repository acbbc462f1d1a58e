import { closeSync, constants as fsConstants, chmodSync, chownSync, copyFileSync, createReadStream, createWriteStream, lchownSync, lstatSync, lutimesSync, mkdirSync, openSync, readSync, readlinkSync, rmSync, symlinkSync, writeFileSync, type Stats } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { chmod, copyFile, lchown, lstat, lutimes, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { ErrorKind, errnoCode, throwIfAborted } from '@berth/errors';
import { resolveUser } from '@berth/runtime';
import { RootResolver } from '@berth/snapshot';
import type { BuildContext, ContextEntry, ContextEntryType } from './build-context.js';
import { BuildError, BuilderErrorCode } from './errors.js';

/** An owner as numbers. */
export interface Owner {
  readonly uid: number;
  readonly gid: number;
}

/** How one COPY/ADD sets owners and modes. */
export interface CopyAttributes {
  /** `--chown`: the owner of everything copied and of the directories made for it. */
  readonly owner?: Owner;
  /** Keep the sources' owners (`COPY --from`, ADD archives); otherwise root, as docker does for the context. */
  readonly preserveOwner: boolean;
  /** `--chmod`: the mode of every file and directory copied. */
  readonly mode?: number;
  readonly signal?: AbortSignal;
}

/** One entry of a tree being copied, relative to the copied root (`''` is the root itself). */
export interface SourceEntry {
  readonly rel: string;
  readonly type: ContextEntryType;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtimeMs: number;
  readonly size?: number;
  readonly linkTarget?: string;
  /** Where a file's content is read from. */
  readonly abs: string;
  /** Where in `abs` the content starts (a spooled context); the whole file otherwise. */
  readonly offset?: number;
}

function typeOf(info: Stats): ContextEntryType {
  if (info.isFile()) return 'file';
  if (info.isDirectory()) return 'directory';
  if (info.isSymbolicLink()) return 'symlink';
  return 'other';
}

/** A context entry (as `.dockerignore` left it) as a source entry at `rel`. */
export function contextSourceEntry(context: BuildContext, entry: ContextEntry, rel: string): SourceEntry {
  return {
    rel,
    type: entry.type,
    mode: entry.mode,
    uid: entry.uid,
    gid: entry.gid,
    mtimeMs: entry.mtimeMs,
    size: entry.size,
    ...(entry.linkTarget !== undefined ? { linkTarget: entry.linkTarget } : {}),
    ...(entry.offset !== undefined && context.spool !== undefined ? { abs: context.spool, offset: entry.offset } : { abs: entry.path === '' ? context.root : join(context.root, entry.path) }),
  };
}

/** The entries under a context path, parents first, only what `.dockerignore` keeps; `skip` drops a subtree (`--exclude`). */
export function* contextTree(context: BuildContext, entry: ContextEntry, skip?: (contextPath: string, rel: string) => boolean): Generator<SourceEntry> {
  const walk = function* (e: ContextEntry, rel: string): Generator<SourceEntry> {
    yield contextSourceEntry(context, e, rel);
    if (e.type !== 'directory') return;
    for (const name of context.children.get(e.path) ?? []) {
      const childPath = e.path === '' ? name : `${e.path}/${name}`;
      const childRel = rel === '' ? name : `${rel}/${name}`;
      if (skip?.(childPath, childRel)) continue;
      const child = context.entries.get(childPath);
      if (child) yield* walk(child, childRel);
    }
  };
  yield* walk(entry, '');
}

/** The entries of a directory tree on disk, parents first, without following symlinks; `skip` drops a subtree. */
export async function* directoryTree(abs: string, info?: Stats, skip?: (rel: string) => boolean): AsyncGenerator<SourceEntry> {
  const walk = async function* (path: string, st: Stats, rel: string): AsyncGenerator<SourceEntry> {
    const type = typeOf(st);
    yield {
      rel,
      type,
      mode: st.mode,
      uid: st.uid,
      gid: st.gid,
      mtimeMs: st.mtimeMs,
      size: st.size,
      ...(type === 'symlink' ? { linkTarget: await readlink(path) } : {}),
      abs: path,
    };
    if (type !== 'directory') return;
    const names = (await readdir(path)).sort();
    for (const name of names) {
      const childRel = rel === '' ? name : `${rel}/${name}`;
      if (skip?.(childRel)) continue;
      const child = join(path, name);
      yield* walk(child, await lstat(child), childRel);
    }
  };
  yield* walk(abs, info ?? (await lstat(abs)), '');
}

/**
 * A mounted image root that COPY and ADD write into. Destination paths are resolved inside
 * the root like a chroot (symlinks in the image followed, `..` stopped at `/`), so nothing a
 * Dockerfile or an image holds can make a copy land outside it.
 */
export class ImageRoot {
  readonly path: string;
  readonly #resolver: RootResolver;

  constructor(path: string) {
    this.path = path;
    this.#resolver = new RootResolver(path);
  }

  /** True when `imagePath` (absolute in the image) is a directory, symlinks followed. */
  isDirectory(imagePath: string): boolean {
    try {
      return this.#resolver.resolveDir(imagePath.split('/').filter(Boolean)) !== undefined;
    } catch {
      return false;
    }
  }

  /**
   * The host path of `imagePath` with every symlink on the way and at the end followed inside
   * the root, or undefined when it does not exist.
   */
  resolve(imagePath: string): string | undefined {
    let parts = imagePath.split('/').filter(Boolean);
    for (let hops = 0; hops <= 40; hops++) {
      if (parts.length === 0) return this.path;
      let dir: string | undefined;
      try {
        dir = this.#resolver.resolveDir(parts.slice(0, -1));
      } catch {
        return undefined;
      }
      if (dir === undefined) return undefined;
      const name = parts.at(-1)!;
      if (name === '..' || name === '.') {
        try {
          const whole = this.#resolver.resolveDir(parts);
          return whole === undefined ? undefined : this.#resolver.abs(whole);
        } catch {
          return undefined;
        }
      }
      const rel = dir === '' ? name : `${dir}/${name}`;
      const info = lstatOrUndefined(this.#resolver.abs(rel));
      if (!info) return undefined;
      if (!info.isSymbolicLink()) return this.#resolver.abs(rel);
      const target = readlinkSync(this.#resolver.abs(rel));
      parts = target.startsWith('/') ? target.split('/').filter(Boolean) : [...(dir === '' ? [] : dir.split('/')), ...target.split('/').filter(Boolean)];
    }
    return undefined;
  }

  /** Resolves `--chown` against the image's passwd and group files; a user alone sets the group to the same number, as docker does. */
  async owner(chown: string): Promise<Owner> {
    const [userPart = '', groupPart] = chown.split(':', 2);
    try {
      const resolved = await resolveUser(this.path, chown);
      return { uid: resolved.uid, gid: groupPart === undefined || groupPart === '' ? resolved.uid : resolved.gid };
    } catch (err) {
      throw new BuildError(`unable to convert uid/gid chown string to host mapping: ${JSON.stringify(chown || userPart)}: ${err instanceof Error ? err.message : String(err)}`, {
        code: BuilderErrorCode.CopyFailed,
        kind: ErrorKind.InvalidArgument,
        cause: err,
      });
    }
  }

  /**
   * The host path of the directory `imagePath`, made (mode 0755, owned by `owner` or root)
   * where missing. A file on the way is an error, as in docker.
   */
  ensureDir(imagePath: string, owner: Owner | undefined): string {
    let rel: string | undefined;
    try {
      rel = this.#resolver.resolveDir(imagePath.split('/').filter(Boolean), (r) => {
        mkdirSync(this.#resolver.abs(r), { mode: 0o755 });
        if (owner) chownSync(this.#resolver.abs(r), owner.uid, owner.gid);
      });
    } catch (err) {
      throw new BuildError(`cannot copy to ${imagePath}: ${err instanceof Error ? err.message : String(err)}`, { code: BuilderErrorCode.CopyFailed, kind: ErrorKind.FailedPrecondition, cause: err });
    }
    return this.#resolver.abs(rel!);
  }

  /** The host path of `imagePath`'s parent (made where missing) and its last name: where a single file lands. */
  target(imagePath: string, owner: Owner | undefined): string {
    const clean = posix.normalize(imagePath);
    const name = posix.basename(clean);
    const dir = this.ensureDir(posix.dirname(clean), owner);
    return name === '' || name === '/' ? dir : join(dir, name);
  }

  /**
   * Copies a tree to the host path `dest`: its root becomes `dest` (made if missing, an
   * existing directory keeps its own mode and owner), everything below is created or replaced
   * with the source's mode and times, owned by `--chown`, the source's owner or root.
   */
  async copyTree(entries: Iterable<SourceEntry> | AsyncIterable<SourceEntry>, dest: string, attrs: CopyAttributes): Promise<number> {
    let count = 0;
    for await (const entry of entries) {
      throwIfAborted(attrs.signal);
      const path = entry.rel === '' ? dest : join(dest, entry.rel);
      await this.writeEntry(entry, path, attrs, entry.rel === '');
      count++;
    }
    return count;
  }

  /** Writes one entry at the host path `path` (inside this root). */
  async writeEntry(entry: SourceEntry, path: string, attrs: CopyAttributes, isRoot: boolean): Promise<void> {
    if (entry.type === 'other') return;
    const owner = attrs.owner ?? (attrs.preserveOwner ? { uid: entry.uid, gid: entry.gid } : { uid: 0, gid: 0 });
    const mode = attrs.mode ?? entry.mode & 0o7777;
    const mtime = new Date(entry.mtimeMs);
    const existing = lstatOrUndefined(path);
    // Metadata calls are synchronous, as GNU tar makes them: a COPY of many small files is
    // dominated by them, and a round trip through the thread pool costs more than the call.
    if (entry.type === 'directory') {
      if (existing?.isDirectory()) {
        // The destination directory itself keeps what it has; docker only merges into it.
        if (isRoot) return;
      } else {
        if (existing) rmSync(path, { recursive: true, force: true });
        mkdirSync(path, { mode: 0o700 });
        if (isRoot) {
          const made = attrs.owner ?? { uid: 0, gid: 0 };
          lchownSync(path, made.uid, made.gid);
          chmodSync(path, attrs.mode ?? 0o755);
          return;
        }
      }
      lchownSync(path, owner.uid, owner.gid);
      chmodSync(path, mode);
      lutimesSync(path, mtime, mtime);
      return;
    }
    if (existing) rmSync(path, { recursive: existing.isDirectory(), force: true });
    if (entry.type === 'file') {
      // Big files go through the thread pool, so a server using this stays responsive.
      if (entry.offset !== undefined) await copyFileRange(entry.abs, entry.offset, entry.size ?? 0, path);
      else if (entry.size === undefined || entry.size >= largeFile) await copyFile(entry.abs, path, fsConstants.COPYFILE_FICLONE);
      else copyFileSync(entry.abs, path, fsConstants.COPYFILE_FICLONE);
      lchownSync(path, owner.uid, owner.gid);
      chmodSync(path, mode);
      lutimesSync(path, mtime, mtime);
    } else if (entry.type === 'symlink') {
      symlinkSync(entry.linkTarget!, path);
      lchownSync(path, owner.uid, owner.gid);
      lutimesSync(path, mtime, mtime);
    }
  }

  /** Writes an inline (heredoc) file or a fetched one at `imagePath`. */
  async writeContent(imagePath: string, content: string | Buffer, attrs: CopyAttributes & { readonly fileMode: number; readonly mtime?: Date }): Promise<void> {
    const path = this.target(imagePath, attrs.owner);
    const existing = lstatOrUndefined(path);
    if (existing) await rm(path, { recursive: existing.isDirectory(), force: true });
    await writeFile(path, content, { mode: 0o600 });
    const owner = attrs.owner ?? { uid: 0, gid: 0 };
    await lchown(path, owner.uid, owner.gid);
    await chmod(path, attrs.mode ?? attrs.fileMode);
    if (attrs.mtime) await lutimes(path, attrs.mtime, attrs.mtime);
  }
}

const largeFile = 1 << 20;

/** Copies `size` bytes of `source` from `offset` into a new file `dest` (mode 0600). */
export async function copyFileRange(source: string, offset: number, size: number, dest: string): Promise<void> {
  if (size < largeFile) {
    const fd = openSync(source, 'r');
    try {
      const buffer = Buffer.alloc(size);
      let done = 0;
      while (done < size) {
        const n = readSync(fd, buffer, done, size - done, offset + done);
        if (n === 0) break;
        done += n;
      }
      writeFileSync(dest, buffer.subarray(0, done), { mode: 0o600 });
    } finally {
      closeSync(fd);
    }
    return;
  }
  await pipeline(createReadStream(source, { start: offset, end: offset + size - 1 }), createWriteStream(dest, { mode: 0o600 }));
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}
