import { createHash } from 'node:crypto';
import { chmodSync, closeSync, constants as fsConstants, lchownSync, lutimesSync, mkdirSync, openSync, readSync, symlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ErrorKind } from '@berth/errors';
import { cleanLayerPath } from '@berth/snapshot';
import { TarEntryType, TarReader, type TarEntry, type TarEntrySink } from '@berth/store';
import { indexContext, readContextFile, type BuildContext, type ContextEntry } from './build-context.js';
import { decompressing } from './context-tar.js';
import { IgnoreMatcher, parseDockerignore } from './dockerignore.js';
import { BuildContextError, BuilderErrorCode } from './errors.js';

/** Options of `spoolContext`. */
export interface SpoolContextOptions {
  /** The request body of POST /build: a tar, plain or gzip/bzip2/xz/zstd-compressed. */
  readonly stream: Readable;
  /** A fresh directory: the spool goes in it, and the files if they are ever needed on disk. */
  readonly dir: string;
  /** The `dockerfile` parameter: the Dockerfile's path inside the context (default `Dockerfile`). */
  readonly dockerfile?: string;
  readonly signal?: AbortSignal;
}

/** A context read from a tar, with its Dockerfile. */
export interface SpooledContext {
  readonly context: BuildContext;
  readonly dockerfile: { readonly name: string; readonly text: string };
}

const typeBits: Partial<Record<TarEntryType, number>> = {
  [TarEntryType.File]: 0o100000,
  [TarEntryType.Directory]: 0o040000,
  [TarEntryType.Symlink]: 0o120000,
};

function invalid(message: string, cause?: unknown): BuildContextError {
  return new BuildContextError(`the build context is not a valid tar archive${message ? `: ${message}` : ''}`, {
    code: BuilderErrorCode.InvalidContext,
    kind: ErrorKind.InvalidArgument,
    ...(cause ? { cause } : {}),
  });
}

/**
 * Reads the build context of a POST /build request without writing it out file by file: the
 * entries' metadata stays in memory and the files' contents go, one after the other, into a
 * single spool file. Hashing and COPY read from there; a context is written to disk only if a
 * RUN binds it (`materializeContext`). The Dockerfile is read (falling back to the lower-case
 * name, as the daemon does), then `.dockerignore` applies, as docker's daemon applies it.
 */
export async function spoolContext(options: SpoolContextOptions): Promise<SpooledContext> {
  const spool = join(options.dir, 'context.spool');
  mkdirSync(options.dir, { recursive: true });
  const fd = openSync(spool, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
  const entries = new Map<string, ContextEntry>();
  let size = 0;
  const handle = (entry: TarEntry): TarEntrySink | undefined => {
    if (entry.path.startsWith('/')) throw invalid(`${JSON.stringify(entry.path)} is an absolute path`);
    let path: string;
    try {
      path = cleanLayerPath(entry.path).join('/');
    } catch (err) {
      throw invalid(`${JSON.stringify(entry.path)} points outside the context`, err);
    }
    if (path === '') return undefined;
    const common = { path, mode: (typeBits[entry.type] ?? 0) | (entry.mode & 0o7777), uid: entry.uid, gid: entry.gid, mtimeMs: entry.mtime * 1000, ino: 0 };
    if (entry.type === TarEntryType.File) {
      const offset = size;
      const hash = createHash('sha256');
      return {
        write: (chunk) => {
          writeSync(fd, chunk);
          hash.update(chunk);
          size += chunk.length;
        },
        // Hashed on the way in: the cache key of a COPY reads no file again.
        end: () => void entries.set(path, { ...common, type: 'file', size: entry.size, offset, sha256: hash.digest('hex') }),
      };
    }
    if (entry.type === TarEntryType.Hardlink) {
      const target = entries.get(cleanLayerPath(entry.linkpath ?? '').join('/'));
      if (target?.type !== 'file') throw invalid(`${JSON.stringify(entry.path)} links to ${JSON.stringify(entry.linkpath)}, which is not a file of the context`);
      entries.set(path, { ...target, path });
    } else if (entry.type === TarEntryType.Directory) entries.set(path, { ...common, type: 'directory', size: 0 });
    else if (entry.type === TarEntryType.Symlink) entries.set(path, { ...common, type: 'symlink', size: 0, linkTarget: entry.linkpath ?? '' });
    else entries.set(path, { ...common, type: 'other', size: 0 });
    return undefined;
  };
  try {
    await pipeline(options.stream, decompressing(options.signal), new TarReader(handle), ...(options.signal ? [{ signal: options.signal }] : []));
  } catch (err) {
    if (options.signal?.aborted || err instanceof BuildContextError) throw err;
    throw invalid('', err);
  } finally {
    closeSync(fd);
  }

  const root = join(options.dir, 'context');
  const unfiltered = indexContext(root, [], new Map(entries), spool);
  const read = async (name: string): Promise<string | undefined> => {
    const entry = entries.get(name);
    return entry?.type === 'file' ? (await readContextFile(unfiltered, entry)).toString('utf8') : undefined;
  };
  let name = (options.dockerfile ?? 'Dockerfile').replace(/^\.?\//, '');
  let text = await read(name);
  // The daemon also accepts the lower-case name when the default one is missing.
  if (text === undefined && options.dockerfile === undefined) {
    name = 'dockerfile';
    text = await read(name);
  }
  if (text === undefined) {
    throw new BuildContextError(`cannot locate specified Dockerfile: ${options.dockerfile ?? 'Dockerfile'}`, { code: BuilderErrorCode.InvalidContext, kind: ErrorKind.NotFound });
  }
  const ignoreText = await read('.dockerignore');
  const patterns = ignoreText === undefined ? [] : parseDockerignore(ignoreText);
  if (patterns.length) {
    const matcher = new IgnoreMatcher({ patterns });
    for (const path of [...entries.keys()]) if (matcher.ignores(path)) entries.delete(path);
  }
  return { context: indexContext(root, patterns, entries, spool), dockerfile: { name, text } };
}

/**
 * Writes a spooled context out under its `root` (for a RUN that binds the context) and
 * returns that directory. A context already on disk is returned as it is.
 */
export function materializeContext(context: BuildContext): string {
  const spool = context.spool;
  if (spool === undefined) return context.root;
  mkdirSync(context.root, { recursive: true, mode: 0o755 });
  const fd = openSync(spool, fsConstants.O_RDONLY);
  const owners = process.getuid?.() === 0;
  const times: Array<[string, number]> = [];
  try {
    for (const path of context.paths) {
      const entry = context.entries.get(path)!;
      const target = join(context.root, path);
      if (entry.type === 'directory') mkdirSync(target, { mode: 0o700 });
      else if (entry.type === 'symlink') symlinkSync(entry.linkTarget ?? '', target);
      else if (entry.type === 'file') {
        const out = openSync(target, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, 0o600);
        try {
          const buffer = Buffer.alloc(Math.min(entry.size, 1 << 20));
          for (let done = 0; done < entry.size; ) {
            const n = readSync(fd, buffer, 0, Math.min(buffer.length, entry.size - done), entry.offset! + done);
            if (n === 0) break;
            writeSync(out, buffer, 0, n);
            done += n;
          }
        } finally {
          closeSync(out);
        }
      } else continue;
      if (owners) lchownSync(target, entry.uid, entry.gid);
      if (entry.type !== 'symlink') chmodSync(target, entry.mode & 0o7777);
      times.push([target, entry.mtimeMs]);
    }
  } finally {
    closeSync(fd);
  }
  // Parents last: writing a child changes its directory's times.
  for (const [target, mtimeMs] of times.reverse()) lutimesSync(target, new Date(mtimeMs), new Date(mtimeMs));
  return context.root;
}
