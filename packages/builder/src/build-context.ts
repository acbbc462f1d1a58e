import { lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode, ErrorKind, throwIfAborted } from '@berth/errors';
import { IgnoreMatcher, parseDockerignore } from './dockerignore.js';
import { BuildContextError, BuilderErrorCode } from './errors.js';

/** The kinds of context entries. */
export type ContextEntryType = 'file' | 'directory' | 'symlink' | 'other';

/** One path of the build context, with what the cache key uses of its metadata. */
export interface ContextEntry {
  /** Relative to the context root, `/`-separated, no leading `./`. */
  readonly path: string;
  readonly type: ContextEntryType;
  /** The full st_mode (type and permission bits). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly mtimeMs: number;
  /** The inode change time, which nothing can set back: a file rewritten with its old mtime still shows it. Absent for a tar's entries. */
  readonly ctimeMs?: number;
  readonly ino: number;
  readonly linkTarget?: string;
  /** A parent directory that .dockerignore excludes but that holds re-included entries: it exists only by implication. */
  readonly implicit?: boolean;
  /** Where a file's content starts in the context's `spool` (a context read from a tar); otherwise it is at `root/path`. */
  readonly offset?: number;
  /** The hex sha256 of a file's content, when it was computed as the context was read. */
  readonly sha256?: string;
}

/**
 * A build context after `.dockerignore`: every included path, sorted, with its children. The
 * files are on disk under `root`, or, for a context read from a tar, their contents are
 * concatenated in the file `spool` (each entry's `offset`) and `root` is not used for them.
 */
export interface BuildContext {
  readonly root: string;
  readonly spool?: string;
  /** The .dockerignore patterns that were applied. */
  readonly ignorePatterns: readonly string[];
  readonly entries: ReadonlyMap<string, ContextEntry>;
  /** Every included path, sorted by code unit. */
  readonly paths: readonly string[];
  /** The names of each directory's included children, sorted; the root is `''`. */
  readonly children: ReadonlyMap<string, readonly string[]>;
}

/** Options of `readBuildContext`. */
export interface ReadBuildContextOptions {
  readonly dir: string;
  /** Patterns to apply; by default those of `<dir>/.dockerignore`, if it exists. */
  readonly ignorePatterns?: readonly string[];
  readonly signal?: AbortSignal;
}

// Entries walked between two turns of the event loop.
const yieldEvery = 2000;

function entryType(mode: number): ContextEntryType {
  const type = mode & 0o170000;
  if (type === 0o100000) return 'file';
  if (type === 0o040000) return 'directory';
  if (type === 0o120000) return 'symlink';
  return 'other';
}

/** The .dockerignore patterns of a context directory, or none when it has no such file. */
export async function readDockerignore(dir: string): Promise<string[]> {
  try {
    return parseDockerignore(await readFile(join(dir, '.dockerignore'), 'utf8'));
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw new BuildContextError(`cannot read ${join(dir, '.dockerignore')}`, { code: BuilderErrorCode.InvalidContext, kind: ErrorKind.InvalidArgument, cause: err });
  }
}

/** Fails with ERR_BUILD_CONTEXT_INVALID unless `dir` is a directory. */
export async function checkContextDir(dir: string): Promise<void> {
  try {
    if (!(await stat(dir)).isDirectory()) throw new Error('not a directory');
  } catch (err) {
    throw new BuildContextError(`build context ${dir} is not a readable directory`, { code: BuilderErrorCode.InvalidContext, kind: ErrorKind.InvalidArgument, cause: err });
  }
}

/**
 * Walks a context directory and lists what `.dockerignore` keeps, without following symlinks.
 * An excluded directory is skipped unless an exception may re-include something inside it;
 * then the re-included entries are listed and the directory itself is implicit.
 */
export async function readBuildContext(options: ReadBuildContextOptions): Promise<BuildContext> {
  const root = options.dir;
  await checkContextDir(root);
  const ignorePatterns = options.ignorePatterns ?? (await readDockerignore(root));
  const matcher = new IgnoreMatcher({ patterns: ignorePatterns });
  const entries = new Map<string, ContextEntry>();

  // Synchronous calls, as GNU tar makes them: a walk is thousands of tiny metadata calls, and a
  // trip through the thread pool costs more than each. The event loop gets a turn now and then.
  let sinceYield = 0;
  const walk = async (dir: string): Promise<void> => {
    throwIfAborted(options.signal);
    for (const name of readdirSync(dir ? `${root}/${dir}` : root)) {
      if (++sinceYield >= yieldEvery) {
        sinceYield = 0;
        await new Promise<void>((resolve) => setImmediate(resolve));
        throwIfAborted(options.signal);
      }
      const path = dir ? `${dir}/${name}` : name;
      const st = lstatSync(`${root}/${path}`);
      const type = entryType(st.mode);
      const ignored = matcher.ignores(path);
      if (ignored && !(type === 'directory' && matcher.mayReincludeUnder(path))) continue;
      if (!ignored) {
        entries.set(path, {
          path,
          type,
          mode: st.mode,
          uid: st.uid,
          gid: st.gid,
          size: type === 'file' ? st.size : 0,
          mtimeMs: st.mtimeMs,
          ctimeMs: st.ctimeMs,
          ino: st.ino,
          ...(type === 'symlink' ? { linkTarget: readlinkSync(`${root}/${path}`) } : {}),
        });
      }
      if (type === 'directory') await walk(path);
    }
  };
  await walk('');

  return indexContext(root, ignorePatterns, entries);
}

/**
 * Completes a context's entries: the parents that included entries imply (under an excluded
 * directory, or missing from a tar), every path sorted, and each directory's children.
 */
export function indexContext(root: string, ignorePatterns: readonly string[], entries: Map<string, ContextEntry>, spool?: string): BuildContext {
  for (const path of [...entries.keys()]) {
    for (let slash = path.lastIndexOf('/'); slash > 0; slash = path.lastIndexOf('/', slash - 1)) {
      const parent = path.slice(0, slash);
      if (entries.has(parent)) break;
      entries.set(parent, { path: parent, type: 'directory', mode: 0o40755, uid: 0, gid: 0, size: 0, mtimeMs: 0, ino: 0, implicit: true });
    }
  }
  const paths = [...entries.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const children = new Map<string, string[]>([['', []]]);
  for (const path of paths) {
    if (entries.get(path)!.type === 'directory') children.set(path, []);
  }
  for (const path of paths) {
    const slash = path.lastIndexOf('/');
    children.get(slash < 0 ? '' : path.slice(0, slash))?.push(slash < 0 ? path : path.slice(slash + 1));
  }
  return { root, ...(spool !== undefined ? { spool } : {}), ignorePatterns, entries, paths, children };
}

/** The content of a context file: from disk, or from the context's spool. */
export async function readContextFile(context: BuildContext, entry: ContextEntry): Promise<Buffer> {
  if (entry.offset === undefined || context.spool === undefined) return readFile(join(context.root, entry.path));
  const handle = await open(context.spool, 'r');
  try {
    const buffer = Buffer.alloc(entry.size);
    let done = 0;
    while (done < entry.size) {
      const { bytesRead } = await handle.read(buffer, done, entry.size - done, entry.offset + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return buffer;
  } finally {
    await handle.close();
  }
}

