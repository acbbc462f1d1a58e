import { createReadStream, type BigIntStats } from 'node:fs';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { errnoCode, throwIfAborted } from '@berth/errors';
import { TarEntryType, type TarEntry, type TarInput } from '@berth/store';
import type { FsOps } from './fs-ops.js';

/** What a walk shares: the helper for xattrs, the hardlinks seen, cancellation. */
export interface WalkContext {
  readonly ops: FsOps;
  readonly signal?: AbortSignal;
  /** `dev:ino` of multiply-linked files already archived, to their archived names. */
  readonly links: Map<string, string>;
}

// Small files are read whole; larger ones stream.
const readWholeBelow = 1 << 20;
const overlayXattrPrefix = 'trusted.overlay.';

const join = (dir: string, name: string) => (dir === '' ? name : `${dir}/${name}`);

async function lstatBig(path: string): Promise<BigIntStats | undefined> {
  try {
    return await lstat(path, { bigint: true });
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

/** Names in a directory, in byte order so archives are reproducible; none when it is gone. */
async function names(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return [];
    throw err;
  }
}

/** The xattrs an archive keeps for `path`: all but overlayfs's own. */
async function archivedXattrs(ops: FsOps, path: string): Promise<Map<string, Buffer>> {
  const all = await ops.listXattrs(path);
  for (const name of [...all.keys()]) if (name.startsWith(overlayXattrPrefix)) all.delete(name);
  return all;
}

// glibc's major()/minor() of a dev_t.
function major(rdev: bigint): number {
  return Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
}
function minor(rdev: bigint): number {
  return Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
}

function isWhiteoutDevice(info: BigIntStats): boolean {
  return info.isCharacterDevice() && info.rdev === 0n;
}

/** The tar entry (and content) for one file system object, or undefined for sockets. */
export async function entryFor(abs: string, rel: string, info: BigIntStats, ctx: WalkContext, xattrs?: Map<string, Buffer>): Promise<TarInput | undefined> {
  const attrs = xattrs ?? (await archivedXattrs(ctx.ops, abs));
  const common = {
    mode: Number(info.mode & 0o7777n),
    uid: Number(info.uid),
    gid: Number(info.gid),
    mtime: Number(info.mtimeNs / 1000n) / 1e6,
    ...(attrs.size ? { xattrs: attrs } : {}),
  };
  if (info.isDirectory()) return { entry: { ...common, path: `${rel}/`, type: TarEntryType.Directory, size: 0 } };
  if (info.isSymbolicLink()) return { entry: { ...common, path: rel, type: TarEntryType.Symlink, size: 0, linkpath: await readlink(abs) } };
  if (info.isFile()) {
    if (info.nlink > 1n) {
      const key = `${info.dev}:${info.ino}`;
      const first = ctx.links.get(key);
      if (first !== undefined) return { entry: { ...common, path: rel, type: TarEntryType.Hardlink, size: 0, linkpath: first } };
      ctx.links.set(key, rel);
    }
    const size = Number(info.size);
    const entry: TarEntry = { ...common, path: rel, type: TarEntryType.File, size };
    if (size === 0) return { entry };
    if (size < readWholeBelow) return { entry, body: await readFile(abs) };
    return { entry, body: createReadStream(abs, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer> };
  }
  const devType = info.isCharacterDevice() ? TarEntryType.CharDevice : info.isBlockDevice() ? TarEntryType.BlockDevice : undefined;
  if (devType) return { entry: { ...common, path: rel, type: devType, size: 0, devmajor: major(info.rdev), devminor: minor(info.rdev) } };
  if (info.isFIFO()) return { entry: { ...common, path: rel, type: TarEntryType.Fifo, size: 0 } };
  return undefined;
}

/** Every object under `dir` (not `dir` itself), parents before children: a whole file system. */
export async function* treeEntries(dir: string, ctx: WalkContext, rel = ''): AsyncGenerator<TarInput> {
  for (const name of await names(rel === '' ? dir : `${dir}/${rel}`)) {
    throwIfAborted(ctx.signal);
    const childRel = join(rel, name);
    const abs = `${dir}/${childRel}`;
    const info = await lstatBig(abs);
    if (!info) continue;
    const input = await entryFor(abs, childRel, info, ctx);
    if (input) yield input;
    if (info.isDirectory()) yield* treeEntries(dir, ctx, childRel);
  }
}

function whiteout(rel: string, info: BigIntStats | undefined): TarInput {
  return {
    entry: {
      path: rel,
      type: TarEntryType.File,
      size: 0,
      mode: 0,
      uid: info ? Number(info.uid) : 0,
      gid: info ? Number(info.gid) : 0,
      mtime: info ? Number(info.mtimeNs / 1000n) / 1e6 : 0,
    },
  };
}

/**
 * The layer an overlayfs upper directory is: its objects as they are, a whiteout device
 * (0/0) as a `.wh.<name>` file, and an opaque directory (`trusted.overlay.opaque=y`) followed
 * by its `.wh..wh..opq` marker, as the OCI layer format writes them.
 */
export async function* overlayEntries(upper: string, ctx: WalkContext, rel = ''): AsyncGenerator<TarInput> {
  for (const name of await names(rel === '' ? upper : `${upper}/${rel}`)) {
    throwIfAborted(ctx.signal);
    const childRel = join(rel, name);
    const abs = `${upper}/${childRel}`;
    const info = await lstatBig(abs);
    if (!info) continue;
    if (isWhiteoutDevice(info)) {
      yield whiteout(join(rel, `.wh.${name}`), info);
      continue;
    }
    const all = await ctx.ops.listXattrs(abs);
    const opaque = info.isDirectory() && all.get('trusted.overlay.opaque')?.toString() === 'y';
    for (const key of [...all.keys()]) if (key.startsWith(overlayXattrPrefix)) all.delete(key);
    const input = await entryFor(abs, childRel, info, ctx, all);
    if (input) yield input;
    if (info.isDirectory()) {
      if (opaque) yield whiteout(`${childRel}/.wh..wh..opq`, info);
      yield* overlayEntries(upper, ctx, childRel);
    }
  }
}

function sameXattrs(a: Map<string, Buffer>, b: Map<string, Buffer>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (!b.get(k)?.equals(v)) return false;
  return true;
}

function kindOf(info: BigIntStats): bigint {
  return info.mode & 0o170000n;
}

/**
 * What changed from `lower` to `upper`, two full trees (the copy snapshotter's parent and
 * child): objects added or changed (type, size, mode, owner, mtime, link target, device,
 * xattrs) are archived, a directory that appeared is archived whole, and an object that is
 * gone becomes a `.wh.<name>` whiteout. This is docker's naive diff.
 */
export async function* treeChanges(lower: string, upper: string, ctx: WalkContext, rel = ''): AsyncGenerator<TarInput> {
  const sub = (root: string) => (rel === '' ? root : `${root}/${rel}`);
  const union = [...new Set([...(await names(sub(lower))), ...(await names(sub(upper)))])].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const dirInfo = await lstatBig(sub(upper));
  for (const name of union) {
    throwIfAborted(ctx.signal);
    const childRel = join(rel, name);
    const a = await lstatBig(`${lower}/${childRel}`);
    const b = await lstatBig(`${upper}/${childRel}`);
    if (!b) {
      yield whiteout(join(rel, `.wh.${name}`), dirInfo);
      continue;
    }
    const abs = `${upper}/${childRel}`;
    if (!a || kindOf(a) !== kindOf(b)) {
      const input = await entryFor(abs, childRel, b, ctx);
      if (input) yield input;
      if (b.isDirectory()) yield* treeEntries(upper, ctx, childRel);
      continue;
    }
    const [xa, xb] = await Promise.all([archivedXattrs(ctx.ops, `${lower}/${childRel}`), archivedXattrs(ctx.ops, abs)]);
    const changed =
      a.mode !== b.mode ||
      a.uid !== b.uid ||
      a.gid !== b.gid ||
      a.mtimeNs !== b.mtimeNs ||
      (!b.isDirectory() && a.size !== b.size) ||
      a.rdev !== b.rdev ||
      (b.isSymbolicLink() && (await readlink(`${lower}/${childRel}`)) !== (await readlink(abs))) ||
      !sameXattrs(xa, xb);
    if (changed) {
      const input = await entryFor(abs, childRel, b, ctx, xb);
      if (input) yield input;
    }
    if (b.isDirectory()) yield* treeChanges(lower, upper, ctx, childRel);
  }
}

/**
 * `entries`, then `cleanup` once they are exhausted or the consumer stops early (packTar's
 * stream is destroyed): before the tar stream ends, so a caller sees everything released.
 */
export async function* closing<T>(entries: AsyncIterable<T>, cleanup: () => Promise<void>): AsyncGenerator<T> {
  try {
    yield* entries;
  } finally {
    await cleanup();
  }
}
