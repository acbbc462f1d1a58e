import { createReadStream, type Stats } from 'node:fs';
import { lstat, mkdir, open, readdir } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { ErrorKind } from '@berth/errors';
import { UnpackMode, unpackLayer } from '@berth/snapshot';
import { decompressStream, detectCompression, isTarArchive } from './archive-format.js';
import type { BuildContext, ContextEntry, ContextEntryType } from './build-context.js';
import { contextTree, copyFileRange, directoryTree, ImageRoot, type CopyAttributes, type SourceEntry } from './copy-files.js';
import { globToRegex, hasWildcards, matchSources, planCopy, type CopyOperation, type SourceMatch } from './copy-sources.js';
import type { AddInstruction, CopyInstruction } from './dockerfile-ast.js';
import { cleanPath, IgnoreMatcher } from './dockerignore.js';
import { BuildContextError, BuildError, BuilderErrorCode } from './errors.js';
import { isRemoteSource, type RemoteSource } from './remote-source.js';

/** Options of `applyCopy`. */
export interface ApplyCopyOptions {
  /** The expanded COPY or ADD. */
  readonly instruction: CopyInstruction | AddInstruction;
  readonly workdir: string;
  /** The mounted root of the step, written into. */
  readonly root: ImageRoot;
  readonly context: BuildContext;
  /** The root of the stage or image `--from` names. */
  readonly fromRoot?: string;
  /** Remote ADD sources, already downloaded, by URL. */
  readonly remote?: ReadonlyMap<string, RemoteSource>;
  /** A directory of the step for unpacking archives. */
  readonly staging: string;
  readonly signal?: AbortSignal;
}

type TreeSource = () => Iterable<SourceEntry> | AsyncIterable<SourceEntry>;

interface Sources {
  readonly matches: SourceMatch[];
  readonly trees: Map<string, TreeSource>;
  /** Local archives ADD unpacks (by match path). */
  readonly archives: Map<string, string>;
}

function typeOf(info: Stats): ContextEntryType {
  if (info.isFile()) return 'file';
  if (info.isDirectory()) return 'directory';
  if (info.isSymbolicLink()) return 'symlink';
  return 'other';
}

function entryOf(path: string, info: Stats): ContextEntry {
  return { path, type: typeOf(info), mode: info.mode, uid: info.uid, gid: info.gid, size: info.isFile() ? info.size : 0, mtimeMs: info.mtimeMs, ctimeMs: info.ctimeMs, ino: info.ino };
}

function notFound(source: string, where: string): BuildContextError {
  return new BuildContextError(`COPY/ADD source ${JSON.stringify(source)}: not found in ${where}`, { code: BuilderErrorCode.SourceNotFound, kind: ErrorKind.NotFound });
}

/** Paths of `root` matching a source that may hold wildcards, each component matched within its directory. */
export async function matchRootPaths(root: ImageRoot, source: string): Promise<string[]> {
  const parts = cleanPath(posix.join('/', source)).split('/').filter(Boolean);
  let current = [''];
  for (const part of parts) {
    const next: string[] = [];
    for (const dir of current) {
      const path = dir === '' ? part : `${dir}/${part}`;
      if (!hasWildcards(part)) {
        next.push(path.replace(/\\(.)/g, '$1'));
        continue;
      }
      const abs = root.resolve('/' + dir);
      if (abs === undefined) continue;
      const names = await readdir(abs).catch(() => [] as string[]);
      const regex = globToRegex(part);
      for (const name of names.sort()) if (regex.test(name)) next.push(dir === '' ? name : `${dir}/${name}`);
    }
    current = next;
  }
  const out: string[] = [];
  for (const path of current) if (root.resolve('/' + path) !== undefined) out.push(path);
  return out;
}

async function collectSources(o: ApplyCopyOptions, exclude: IgnoreMatcher | undefined): Promise<Sources> {
  const matches: SourceMatch[] = [];
  const trees = new Map<string, TreeSource>();
  const archives = new Map<string, string>();
  const { instruction } = o;
  const unpack = instruction.kind === 'ADD' ? instruction.unpack : false;
  const skipContext = exclude ? (contextPath: string, rel: string) => exclude.ignores(contextPath) || exclude.ignores(rel) : undefined;

  for (const source of instruction.sources) {
    if (instruction.kind === 'ADD' && isRemoteSource(source)) {
      const fetched = o.remote?.get(source);
      if (!fetched) throw notFound(source, 'the downloads of this step');
      const info = await lstat(fetched.path);
      const match: SourceMatch = { source, path: fetched.filename, entry: entryOf(fetched.filename, info), wildcard: false };
      matches.push(match);
      trees.set(match.path, () => directoryTree(fetched.path, info));
      continue;
    }
    if (/^git@|^git:\/\/|\.git(#|$)/.test(source) && instruction.kind === 'ADD') {
      throw new BuildError(`ADD of a git repository (${source}) is not supported: clone it into the context and COPY it`, { code: BuilderErrorCode.Unsupported, kind: ErrorKind.NotImplemented });
    }
    if (o.fromRoot !== undefined) {
      const root = new ImageRoot(o.fromRoot);
      const paths = await matchRootPaths(root, source);
      if (paths.length === 0) throw notFound(source, `the root of ${instruction.kind === 'COPY' ? instruction.from : 'the source'}`);
      for (const path of paths) {
        if (exclude?.ignores(path)) continue;
        const abs = root.resolve('/' + path)!;
        const info = await lstat(abs);
        const match: SourceMatch = { source, path, entry: entryOf(path, info), wildcard: hasWildcards(source) };
        matches.push(match);
        trees.set(path, () => directoryTree(abs, info, exclude ? (rel) => exclude.ignores(rel) || exclude.ignores(`${path}/${rel}`) : undefined));
      }
      continue;
    }
    for (const match of matchSources(o.context, source)) {
      if (exclude?.ignores(match.path) && match.path !== '') continue;
      matches.push(match);
      trees.set(match.path, () => contextTree(o.context, match.entry, skipContext));
      // ADD unpacks local tar archives (plain or compressed), told by content, never by name.
      if (instruction.kind === 'ADD' && match.entry.type === 'file' && unpack !== false) {
        let abs = join(o.context.root, match.entry.path);
        if (match.entry.offset !== undefined && o.context.spool !== undefined) {
          // A spooled context has no file to look at: this one is written out first.
          await mkdir(o.staging, { recursive: true });
          abs = join(o.staging, `source-${archives.size}-${posix.basename(match.entry.path)}`);
          await copyFileRange(o.context.spool, match.entry.offset, match.entry.size, abs);
        }
        if (unpack === true || (await isTarArchive(abs, o.signal))) archives.set(match.path, abs);
      }
    }
  }
  return { matches, trees, archives };
}

async function unpackArchive(archive: string, target: string, signal?: AbortSignal): Promise<void> {
  const handle = await open(archive, 'r');
  let head: Buffer;
  try {
    const buffer = Buffer.alloc(8);
    const { bytesRead } = await handle.read(buffer, 0, 8, 0);
    head = buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
  await mkdir(target, { recursive: true });
  const source = createReadStream(archive).pipe(decompressStream(detectCompression(head), signal));
  await unpackLayer({ source, target, mode: UnpackMode.Copy, compression: 'none', sameOwner: true, ...(signal ? { signal } : {}) });
}

/**
 * Performs a COPY or ADD on the mounted root: sources from the context (as `.dockerignore`
 * left it), from the root of `--from`, downloaded URLs or inline heredocs, placed by docker's
 * destination rules, with `--chown`, `--chmod`, `--exclude` and `--parents`. ADD unpacks local
 * tar archives into the destination. Directories made for the destination are 0755 and owned
 * by `--chown` (or root); an existing destination directory keeps its mode and owner.
 */
export async function applyCopy(o: ApplyCopyOptions): Promise<{ readonly single: ContextEntryType | undefined }> {
  const { instruction, root } = o;
  const exclude = instruction.exclude.length ? new IgnoreMatcher({ patterns: instruction.exclude }) : undefined;
  const owner = instruction.chown !== undefined && instruction.chown !== '' ? await root.owner(instruction.chown) : undefined;
  const mode = instruction.chmod !== undefined ? parseInt(instruction.chmod, 8) : undefined;
  const preserveOwner = o.fromRoot !== undefined;
  const attrs: CopyAttributes = {
    ...(owner ? { owner } : {}),
    ...(mode !== undefined ? { mode } : {}),
    preserveOwner,
    ...(o.signal ? { signal: o.signal } : {}),
  };
  const { matches, trees, archives } = await collectSources(o, exclude);
  const sourceCount = instruction.sources.length + instruction.inline.length;
  const destination = posix.resolve(o.workdir, instruction.dest);

  let ops: CopyOperation[];
  if (instruction.kind === 'COPY' && instruction.parents) {
    ops = matches.map((m) => ({ source: m.path, dest: posix.join(destination, m.path), contentsOnly: m.entry.type === 'directory' }));
  } else {
    ops = planCopy({
      matches: matches.filter((m) => !archives.has(m.path)),
      inline: instruction.inline,
      sourceCount,
      dest: instruction.dest,
      workdir: o.workdir,
      isDirectory: (path) => root.isDirectory(path),
    });
    for (const m of matches) if (archives.has(m.path)) ops.push({ source: m.path, dest: destination, contentsOnly: true });
  }

  const single = sourceCount === 1 && matches.length + instruction.inline.length === 1 ? (matches[0]?.entry.type ?? 'file') : undefined;
  let unpacked = 0;
  for (const op of ops) {
    if (op.inline) {
      await root.writeContent(op.dest, op.inline.content, { ...attrs, fileMode: 0o644 });
      continue;
    }
    const archive = archives.get(op.source);
    if (archive) {
      const staged = join(o.staging, `archive-${unpacked++}`);
      await unpackArchive(archive, staged, o.signal);
      await root.copyTree(directoryTree(staged), root.ensureDir(op.dest, owner), { ...attrs, preserveOwner: true });
      continue;
    }
    const tree = trees.get(op.source)!;
    if (op.contentsOnly) await root.copyTree(tree(), root.ensureDir(op.dest, owner), attrs);
    else {
      for await (const entry of tree()) {
        if (entry.rel !== '') break;
        await root.writeEntry(entry, root.target(op.dest, owner), attrs, true);
      }
    }
  }
  return { single };
}

/** docker's history text of a COPY/ADD: `COPY file:<hex> in /app/ `, `dir:`, or `multi:` for several sources. */
export function copyHistoryText(instruction: CopyInstruction | AddInstruction, sourcesDigest: string, single: ContextEntryType | undefined): string {
  const kind = single === undefined ? 'multi' : single === 'directory' ? 'dir' : 'file';
  return `${instruction.kind} ${kind}:${sourcesDigest.replace(/^sha\d+:/, '')} in ${instruction.dest} `;
}
