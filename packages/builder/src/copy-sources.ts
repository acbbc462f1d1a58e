import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, posix } from 'node:path';
import { ErrorKind, throwIfAborted } from '@berth/errors';
import { writeFileAtomic } from '@berth/fsutil';
import type { Digest } from '@berth/oci';
import { readContextFile, type BuildContext, type ContextEntry } from './build-context.js';
import type { InlineSource } from './dockerfile-ast.js';
import { cleanPath } from './dockerignore.js';
import { BuildContextError, BuilderErrorCode } from './errors.js';

/** A context path a COPY/ADD source resolved to. */
export interface SourceMatch {
  /** The source as written in the instruction (after expansion). */
  readonly source: string;
  /** The matched context path (`''` for the whole context). */
  readonly path: string;
  /** The entry copied: the match itself, or a symlink's target. */
  readonly entry: ContextEntry;
  readonly wildcard: boolean;
}

const notFound = (source: string): BuildContextError =>
  new BuildContextError(`COPY/ADD source ${JSON.stringify(source)}: not found in the build context (missing, or excluded by .dockerignore)`, {
    code: BuilderErrorCode.SourceNotFound,
    kind: ErrorKind.NotFound,
  });

/** True when a source has filepath.Match wildcards (`*`, `?`, `[`) that are not escaped. */
export function hasWildcards(source: string): boolean {
  return /(^|[^\\])[*?[]/.test(source);
}

/** Go's filepath.Match of one whole path as a regular expression: wildcards never cross a `/`. */
export function globToRegex(pattern: string): RegExp {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else if (ch === '\\' && i + 1 < pattern.length) re += '\\' + pattern[++i];
    else if (ch === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) throw new Error(`syntax error in pattern ${JSON.stringify(pattern)}`);
      let body = pattern.slice(i + 1, end);
      if (body.startsWith('^')) body = '^' + body.slice(1).replace(/[\]\\]/g, '\\$&');
      else body = body.replace(/[\]\\^]/g, '\\$&');
      re += `[${body}]`;
      i = end;
    } else re += ch.replace(/[.+()|{}$^/]/, '\\$&');
  }
  return new RegExp(re + '$');
}

// Source paths are relative to the context root and cannot leave it: `../x` is `x`, as in BuildKit.
function contextPath(source: string): string {
  return cleanPath(posix.join('/', source)).slice(1);
}

// A symlink named as a source is followed, within the context.
function follow(context: BuildContext, entry: ContextEntry, source: string): ContextEntry {
  let current = entry;
  for (let hops = 0; current.type === 'symlink'; hops++) {
    if (hops >= 40) throw new BuildContextError(`COPY/ADD source ${JSON.stringify(source)}: too many levels of symbolic links`, { code: BuilderErrorCode.SourceNotFound, kind: ErrorKind.InvalidArgument });
    const target = current.linkTarget!;
    const resolved = contextPath(target.startsWith('/') ? target : posix.join(posix.dirname(current.path), target));
    const next = resolved === '' ? rootEntry : context.entries.get(resolved);
    if (!next) throw notFound(source);
    current = next;
  }
  return current;
}

const rootEntry: ContextEntry = { path: '', type: 'directory', mode: 0o40755, uid: 0, gid: 0, size: 0, mtimeMs: 0, ino: 0, implicit: true };

/**
 * Resolves one COPY/ADD source against the filtered context: a path, or a pattern with Go's
 * filepath.Match wildcards matched against every path of the same depth. Throws
 * ERR_BUILD_SOURCE_NOT_FOUND when nothing matches, as BuildKit does.
 */
export function matchSources(context: BuildContext, source: string): SourceMatch[] {
  const wildcard = hasWildcards(source);
  const path = contextPath(source);
  if (!wildcard) {
    const entry = path === '' ? rootEntry : context.entries.get(path.replace(/\\(.)/g, '$1'));
    if (!entry) throw notFound(source);
    return [{ source, path: entry.path, entry: follow(context, entry, source), wildcard }];
  }
  let regex: RegExp;
  try {
    regex = globToRegex(path);
  } catch (err) {
    throw new BuildContextError(`COPY/ADD source ${JSON.stringify(source)}: bad pattern`, { code: BuilderErrorCode.SourceNotFound, kind: ErrorKind.InvalidArgument, cause: err });
  }
  const matches = context.paths.filter((p) => regex.test(p)).map((p) => ({ source, path: p, entry: follow(context, context.entries.get(p)!, source), wildcard }));
  if (matches.length === 0) throw notFound(source);
  return matches;
}

/**
 * Remembers content digests by file identity (path, inode, size, mtime, ctime), so a second
 * build over an unchanged context reads no file twice, as BuildKit's content-hash cache does.
 * A file changed within a clock tick of being read could keep its times; one whose ctime is
 * that recent is not remembered (git's "racily clean" rule), so it is read again next time.
 */
export class ContentHashCache {
  readonly #digests = new Map<string, { stamp: string; digest: string }>();
  readonly #racyWindowMs: number;
  #changed = false;

  /** `racyWindowMs`: how recent a ctime is too recent to remember (default 2 s, the coarsest file-system clock, FAT's). */
  constructor(options: { readonly racyWindowMs?: number } = {}) {
    const window = options.racyWindowMs ?? 2000;
    if (!Number.isFinite(window) || window < 0) throw new RangeError(`racyWindowMs must be a non-negative number, got ${String(options.racyWindowMs)}`);
    this.#racyWindowMs = window;
  }

  /**
   * A cache filled from `path` (written by `save`), empty when there is none or it is
   * unreadable: the builder keeps one per context directory, so a rebuild reads no
   * unchanged file.
   */
  static async load(path: string): Promise<ContentHashCache> {
    const cache = new ContentHashCache();
    try {
      const saved = JSON.parse(await readFile(path, 'utf8')) as Record<string, { stamp: string; digest: string }>;
      for (const [k, v] of Object.entries(saved)) if (typeof v?.stamp === 'string' && typeof v.digest === 'string') cache.#digests.set(k, v);
    } catch {
      // No cache yet, or one cut short: start empty.
    }
    return cache;
  }

  /** Writes the cache to `path` when something was added since it was loaded. */
  async save(path: string): Promise<void> {
    if (!this.#changed) return;
    await mkdir(dirname(path), { recursive: true });
    await writeFileAtomic(path, JSON.stringify(Object.fromEntries(this.#digests)), { durable: false });
    this.#changed = false;
  }

  get(root: string, entry: ContextEntry): string | undefined {
    const hit = this.#digests.get(root + '\0' + entry.path);
    return hit && hit.stamp === stamp(entry) ? hit.digest : undefined;
  }

  set(root: string, entry: ContextEntry, digest: string): void {
    if (entry.ctimeMs === undefined || entry.ctimeMs > Date.now() - this.#racyWindowMs) return;
    this.#changed = true;
    this.#digests.set(root + '\0' + entry.path, { stamp: stamp(entry), digest });
  }

  get size(): number {
    return this.#digests.size;
  }
}

function stamp(entry: ContextEntry): string {
  return `${entry.ino}:${entry.size}:${entry.mtimeMs}:${entry.ctimeMs}`;
}

/** Options of `hashCopySources`. */
export interface HashCopySourcesOptions {
  readonly signal?: AbortSignal;
  readonly cache?: ContentHashCache;
  /** How many files are read at once (default 16). */
  readonly concurrency?: number;
}

/** The content digest of a COPY/ADD, with each match's own digest. */
export interface CopySourcesDigest {
  readonly digest: Digest;
  readonly matches: ReadonlyArray<{ readonly source: string; readonly path: string; readonly digest: Digest }>;
}

const sha256 = (data: string | Uint8Array): Digest => `sha256:${createHash('sha256').update(data).digest('hex')}`;

// What docker's cache takes from a file's metadata (tarsum v1 header fields): type and
// permission bits, owner, size and link target; never the name (the parent hashes it) or mtime.
function header(entry: ContextEntry): string {
  return `mode=${entry.mode & 0o177777};uid=${entry.uid};gid=${entry.gid};size=${entry.size};link=${entry.linkTarget ?? ''};`;
}

/**
 * Hashes what a COPY/ADD reads from the context: for each source, each match's metadata and
 * content, directories recursively (names and digests of their children). Files are read
 * with bounded concurrency and remembered in `cache` when given.
 */
export async function hashCopySources(context: BuildContext, sources: readonly string[], options: HashCopySourcesOptions = {}): Promise<CopySourcesDigest> {
  const matches = sources.flatMap((s) => matchSources(context, s));

  // Read every file under the matches first, with a bounded pool of readers.
  const files = new Map<string, ContextEntry>();
  const collect = (entry: ContextEntry): void => {
    if (entry.type === 'file') files.set(entry.path, entry);
    else if (entry.type === 'directory') for (const name of context.children.get(entry.path) ?? []) collect(context.entries.get(entry.path ? `${entry.path}/${name}` : name)!);
  };
  for (const m of matches) collect(m.entry);
  const contentDigests = new Map<string, string>();
  const queue = [...files.values()];
  const worker = async (): Promise<void> => {
    for (let entry = queue.pop(); entry; entry = queue.pop()) {
      throwIfAborted(options.signal);
      // A spooled context hashed its files as they arrived; a stamp cache does not apply to it.
      let digest = entry.sha256 ?? (context.spool === undefined ? options.cache?.get(context.root, entry) : undefined);
      if (digest === undefined) {
        digest = createHash('sha256').update(await readContextFile(context, entry)).digest('hex');
        if (context.spool === undefined) options.cache?.set(context.root, entry, digest);
      }
      contentDigests.set(entry.path, digest);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 16) }, worker));

  const memo = new Map<string, Digest>();
  const digestOf = (entry: ContextEntry): Digest => {
    const known = memo.get(entry.path);
    if (known) return known;
    let digest: Digest;
    if (entry.type === 'file') digest = sha256(header(entry) + contentDigests.get(entry.path)!);
    else if (entry.type === 'directory') {
      let body = header(entry);
      for (const name of context.children.get(entry.path) ?? []) {
        body += `${name}\0${digestOf(context.entries.get(entry.path ? `${entry.path}/${name}` : name)!)}\0`;
      }
      digest = sha256(body);
    } else digest = sha256(header(entry));
    memo.set(entry.path, digest);
    return digest;
  };

  const perMatch = matches.map((m) => ({ source: m.source, path: m.path, digest: digestOf(m.entry) }));
  return { digest: sha256(perMatch.map((m) => `${m.source}\0${m.path}\0${m.digest}\n`).join('')), matches: perMatch };
}

/** One copy the executor performs: a context path (or inline file) to an absolute destination. */
export interface CopyOperation {
  /** A context path, or for an inline (heredoc) source its name. */
  readonly source: string;
  readonly inline?: InlineSource;
  /** The absolute path in the image the source lands at. */
  readonly dest: string;
  /** For a directory source: its contents are copied into `dest`, not the directory itself. */
  readonly contentsOnly: boolean;
}

/** Options of `planCopy`. */
export interface PlanCopyOptions {
  readonly matches: readonly SourceMatch[];
  readonly inline?: readonly InlineSource[];
  /** The number of sources the instruction names (paths and heredocs). */
  readonly sourceCount: number;
  readonly dest: string;
  readonly workdir: string;
  /** Whether an absolute path already is a directory in the image being built (then a file lands inside it). */
  readonly isDirectory?: (path: string) => boolean;
}

/**
 * Applies docker's destination rules: a relative destination is under WORKDIR; a destination
 * ending in `/` (or several sources, or a wildcard matching several) is a directory that files
 * land in by name; a directory source copies its contents; otherwise a single file source
 * becomes the destination path itself, unless that path already is a directory.
 */
export function planCopy(options: PlanCopyOptions): CopyOperation[] {
  const { dest } = options;
  const absolute = posix.resolve(options.workdir, dest);
  const trailing = dest.endsWith('/') || dest === '.' || dest.endsWith('/.') || dest === '';
  if (options.sourceCount > 1 && !trailing) {
    throw new BuildContextError(`when using COPY with more than one source file, the destination must be a directory and end with a /: ${dest}`, {
      code: BuilderErrorCode.InvalidContext,
      kind: ErrorKind.InvalidArgument,
    });
  }
  const intoDirectory = trailing || options.matches.length + (options.inline?.length ?? 0) > 1 || (options.isDirectory?.(absolute) ?? false);
  const ops: CopyOperation[] = options.matches.map((m) => {
    if (m.entry.type === 'directory') return { source: m.path, dest: absolute, contentsOnly: true };
    return { source: m.path, dest: intoDirectory ? posix.join(absolute, posix.basename(m.path)) : absolute, contentsOnly: false };
  });
  for (const file of options.inline ?? []) {
    ops.push({ source: file.name, inline: file, dest: intoDirectory ? posix.join(absolute, posix.basename(file.name)) : absolute, contentsOnly: false });
  }
  return ops;
}
