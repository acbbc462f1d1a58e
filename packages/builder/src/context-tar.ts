import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, constants as fsConstants, createReadStream, lchownSync, linkSync, lstatSync, lutimesSync, mkdirSync, openSync, readFileSync, rmSync, symlinkSync, writeSync, type Stats } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { isAbsolute, join, posix, relative, resolve } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { errnoCode, ErrorKind, throwIfAborted } from '@berth/errors';
import { RootResolver, cleanLayerPath } from '@berth/snapshot';
import { TarEntryType, TarReader, type TarEntry, type TarEntrySink } from '@berth/store';
import { decompressStream, detectCompression } from './archive-format.js';
import { checkContextDir, readBuildContext, readDockerignore, type BuildContext } from './build-context.js';
import { IgnoreMatcher, parseDockerignore } from './dockerignore.js';
import { BuildContextError, BuilderErrorCode } from './errors.js';

/** Where the Dockerfile of a packed context comes from. */
export type DockerfileSource = { readonly path: string } | { readonly content: string };

/** Options of `packContext`. */
export interface PackContextOptions {
  /** The context directory. */
  readonly dir: string;
  /** The Dockerfile: a path (relative to `dir` when not absolute; default `Dockerfile`) or its content (`-f -`). */
  readonly dockerfile?: DockerfileSource;
  /** Compress the tar with gzip, as `docker build --compress` does. */
  readonly gzip?: boolean;
  readonly signal?: AbortSignal;
}

/** A packed context: the tar stream, and the Dockerfile's name inside it (the `dockerfile` parameter of POST /build). */
export interface PackedContext {
  readonly stream: Readable;
  readonly dockerfile: string;
}

const block = 512;
const readWholeBelow = 1 << 20;

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let length = Buffer.byteLength(body) + 1;
  while (String(length).length + Buffer.byteLength(body) !== length) length = String(length).length + Buffer.byteLength(body);
  return `${length}${body}`;
}

// One ustar header; names or link targets too long for it go in a PAX header before it.
function tarHeader(entry: { name: string; type: '0' | '2' | '5' | 'x'; mode: number; size: number; mtime: number; linkname?: string }): Buffer[] {
  const out: Buffer[] = [];
  const records = (Buffer.byteLength(entry.name) > 100 ? paxRecord('path', entry.name) : '') + (Buffer.byteLength(entry.linkname ?? '') > 100 ? paxRecord('linkpath', entry.linkname!) : '');
  if (records) {
    const data = Buffer.from(records);
    out.push(...tarHeader({ name: 'PaxHeader', type: 'x', mode: 0o644, size: data.length, mtime: entry.mtime }), data, Buffer.alloc((block - (data.length % block)) % block));
  }
  const h = Buffer.alloc(block);
  h.write(entry.name.slice(0, 100), 0, 'utf8');
  h.write(octal(entry.mode & 0o7777, 8), 100, 'latin1');
  h.write(octal(0, 8), 108, 'latin1');
  h.write(octal(0, 8), 116, 'latin1');
  h.write(octal(entry.size, 12), 124, 'latin1');
  h.write(octal(Math.max(0, Math.floor(entry.mtime)), 12), 136, 'latin1');
  h.write('        ', 148, 'latin1');
  h.write(entry.type, 156, 'latin1');
  if (entry.linkname) h.write(entry.linkname.slice(0, 100), 157, 'utf8');
  h.write('ustar\x0000', 257, 'latin1');
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(octal(sum, 7) + ' ', 148, 'latin1');
  out.push(h);
  return out;
}

/** What an in-process builder reads instead of a context stream of `directoryContext`. */
export interface ContextDirectory {
  /** The context directory. */
  readonly dir: string;
  /** The Dockerfile as `buildImage` takes it: a path inside `dir`, an absolute one outside it, or its text (`-f -`); absent, the context's own. */
  readonly dockerfile?: string | { readonly text: string; readonly name: string };
}

// Streams of directoryContext, with the directory they would pack.
const packedFrom = new WeakMap<Readable, ContextDirectory>();

/**
 * The directory a context stream of `directoryContext` packs, or undefined for any other stream:
 * an in-process builder reads the directory itself, so the stream is never read and the context
 * never packed.
 */
export function contextDirectoryOf(stream: Readable): ContextDirectory | undefined {
  return packedFrom.get(stream);
}

interface PackPlan {
  readonly patterns: string[];
  /** The Dockerfile's name in the tar. */
  readonly dockerfile: string;
  /** A Dockerfile from outside the context (or given as content), added under `dockerfile`. */
  readonly injected?: Buffer;
}

async function planPack(options: PackContextOptions): Promise<PackPlan> {
  const dir = options.dir;
  await checkContextDir(dir);
  const source = options.dockerfile ?? { path: 'Dockerfile' };
  let patterns = await readDockerignore(dir);
  let dockerfile: string;
  let injected: Buffer | undefined;
  if ('path' in source) {
    const absolute = resolve(dir, source.path);
    const rel = relative(dir, absolute).split('\\').join('/');
    if (rel.startsWith('..') || isAbsolute(rel)) {
      injected = await readFile(absolute);
      dockerfile = `.dockerfile.${randomBytes(10).toString('hex')}`;
    } else dockerfile = rel;
  } else {
    injected = Buffer.from(source.content);
    dockerfile = `.dockerfile.${randomBytes(10).toString('hex')}`;
  }
  const matcher = new IgnoreMatcher({ patterns });
  if (matcher.ignores('.dockerignore')) patterns = [...patterns, '!.dockerignore'];
  if (!injected && matcher.ignores(dockerfile)) patterns = [...patterns, '!' + dockerfile];
  return { patterns, dockerfile, ...(injected ? { injected } : {}) };
}

/**
 * Packs a build context as the docker CLI sends it to POST /build: `.dockerignore` applied but
 * `.dockerignore` and an in-context Dockerfile always kept, owners zeroed; a Dockerfile from
 * outside the context (or given as content) added as `.dockerfile.<random>` and listed in the
 * packed `.dockerignore`, so the daemon drops it from the context after reading it. The
 * directory is walked before this returns, so an unreadable context fails here, not mid-upload.
 */
export async function packContext(options: PackContextOptions): Promise<PackedContext> {
  const plan = await planPack(options);
  const context = await readBuildContext({ dir: options.dir, ignorePatterns: plan.patterns, ...(options.signal ? { signal: options.signal } : {}) });
  const tar = Readable.from(packEntries(options, plan, context), { objectMode: false });
  return { stream: options.gzip ? tar.pipe(createGzip()) : tar, dockerfile: plan.dockerfile };
}

/**
 * A build context for an engine in this process: the same tar as `packContext` makes, but the
 * directory is walked and read only if the stream is read. An in-process builder finds the
 * directory with `contextDirectoryOf` and reads it where it is (with its content-hash cache),
 * so a daemonless build packs and unpacks nothing; any other reader gets the tar.
 */
export async function directoryContext(options: Omit<PackContextOptions, 'gzip'>): Promise<PackedContext> {
  const plan = await planPack(options);
  const source = options.dockerfile;
  async function* lazily(): AsyncGenerator<Buffer> {
    const context = await readBuildContext({ dir: options.dir, ignorePatterns: plan.patterns, ...(options.signal ? { signal: options.signal } : {}) });
    yield* packEntries(options, plan, context);
  }
  const stream = Readable.from(lazily(), { objectMode: false });
  packedFrom.set(stream, {
    dir: options.dir,
    // Inside the context, its path there names it in messages, as it does in the tar.
    ...(source ? { dockerfile: 'path' in source ? (plan.injected ? resolve(options.dir, source.path) : plan.dockerfile) : { text: source.content, name: plan.dockerfile } } : {}),
  });
  return { stream, dockerfile: plan.dockerfile };
}

async function* packEntries(options: PackContextOptions, plan: PackPlan, context: BuildContext): AsyncGenerator<Buffer> {
  const { dir } = options;
  const { dockerfile, injected } = plan;
  const now = Math.floor(Date.now() / 1000);
  let ignoreText: Buffer | undefined;
  if (injected) {
    const existing = context.entries.has('.dockerignore') ? await readFile(join(dir, '.dockerignore')) : Buffer.from('.dockerignore');
    ignoreText = Buffer.concat([existing, Buffer.from(`\n${dockerfile}\n`)]);
  }
  for (const path of context.paths) {
    throwIfAborted(options.signal);
    const entry = context.entries.get(path)!;
    if (entry.implicit || entry.type === 'other') continue;
    const mtime = entry.mtimeMs / 1000;
    if (path === '.dockerignore' && ignoreText) continue;
    if (entry.type === 'directory') yield* tarHeader({ name: path + '/', type: '5', mode: entry.mode, size: 0, mtime });
    else if (entry.type === 'symlink') yield* tarHeader({ name: path, type: '2', mode: entry.mode, size: 0, mtime, linkname: entry.linkTarget! });
    else {
      yield* tarHeader({ name: path, type: '0', mode: entry.mode, size: entry.size, mtime });
      let written = 0;
      if (entry.size < readWholeBelow) {
        // One synchronous read: a context is mostly small files, and the stream machinery costs more than they do.
        const data = entry.size === 0 ? Buffer.alloc(0) : readFileSync(join(dir, path));
        written = data.length;
        if (written === entry.size && written > 0) yield data;
      } else {
        for await (const chunk of createReadStream(join(dir, path), { end: Math.max(0, entry.size - 1) })) {
          written += (chunk as Buffer).length;
          yield chunk as Buffer;
        }
      }
      if (written !== entry.size) throw new BuildContextError(`${path} changed size while the context was packed`, { code: BuilderErrorCode.InvalidContext, kind: ErrorKind.Conflict });
      yield Buffer.alloc((block - (entry.size % block)) % block);
    }
  }
  for (const [name, data] of [
    [dockerfile, injected],
    ['.dockerignore', ignoreText],
  ] as const) {
    if (!data) continue;
    yield* tarHeader({ name, type: '0', mode: 0o600, size: data.length, mtime: now });
    yield data;
    yield Buffer.alloc((block - (data.length % block)) % block);
  }
  yield Buffer.alloc(block * 2);
}

/** Options of `unpackContext`. */
export interface UnpackContextOptions {
  /** The request body of POST /build: a tar, plain or gzip/bzip2/xz/zstd-compressed. */
  readonly stream: Readable;
  /** An empty directory to unpack into. */
  readonly dir: string;
  /** The `dockerfile` parameter: the Dockerfile's path inside the context (default `Dockerfile`). */
  readonly dockerfile?: string;
  readonly signal?: AbortSignal;
}

/** An unpacked context, ready for `readBuildContext`. */
export interface UnpackedContext {
  readonly dir: string;
  /** The Dockerfile's name inside the context and its text. */
  readonly dockerfile: { readonly name: string; readonly text: string };
  readonly ignorePatterns: readonly string[];
}

/**
 * Writes the entries of a context tar under `root` with synchronous calls, as GNU tar does
 * (a context is many small files; a trip through the thread pool per call costs more than the
 * call). Names are resolved inside `root` like a chroot, so no name or symlink of the archive
 * reaches outside it; absolute names and `..` above the root are refused, as docker refuses them.
 */
class ContextExtractor {
  readonly #resolver: RootResolver;
  readonly #owners = process.getuid?.() === 0;
  readonly #dirTimes: Array<{ readonly path: string; readonly mtime: number }> = [];

  constructor(root: string) {
    this.#resolver = new RootResolver(root);
  }

  #refuse(name: string, why: string): never {
    throw new BuildContextError(`the build context is not a valid tar archive: ${JSON.stringify(name)} ${why}`, { code: BuilderErrorCode.InvalidContext, kind: ErrorKind.InvalidArgument });
  }

  entry(entry: TarEntry): TarEntrySink | undefined {
    if (entry.path.startsWith('/')) this.#refuse(entry.path, 'is an absolute path');
    let parts: string[];
    try {
      parts = cleanLayerPath(entry.path);
    } catch {
      this.#refuse(entry.path, 'points outside the context');
    }
    if (parts.length === 0) return undefined;
    const parent = this.#resolver.resolveDir(parts.slice(0, -1), (rel) => mkdirSync(this.#resolver.abs(rel), { mode: 0o755 }));
    const path = join(this.#resolver.abs(parent!), parts.at(-1)!);
    const existing = lstatOrUndefined(path);
    if (entry.type === TarEntryType.Directory) {
      if (existing && !existing.isDirectory()) rmSync(path, { recursive: true, force: true });
      if (!existing?.isDirectory()) mkdirSync(path, { mode: 0o700 });
      this.#attributes(path, entry, false);
      this.#dirTimes.push({ path, mtime: entry.mtime });
      return undefined;
    }
    if (existing) rmSync(path, { recursive: existing.isDirectory(), force: true });
    this.#resolver.forget(parent === '' ? parts.at(-1)! : `${parent}/${parts.at(-1)!}`);
    if (entry.type === TarEntryType.File) {
      const fd = openSync(path, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, 0o600);
      return {
        write: (chunk) => void writeSync(fd, chunk),
        end: () => {
          closeSync(fd);
          this.#attributes(path, entry, false);
        },
      };
    }
    if (entry.type === TarEntryType.Symlink) {
      symlinkSync(entry.linkpath ?? '', path);
      this.#attributes(path, entry, true);
    } else if (entry.type === TarEntryType.Hardlink) {
      const target = this.#resolver.resolveDir(cleanLayerPath(entry.linkpath ?? '').slice(0, -1));
      const linkTarget = target === undefined ? undefined : join(this.#resolver.abs(target), posix.basename(entry.linkpath ?? ''));
      if (!linkTarget || !lstatOrUndefined(linkTarget)?.isFile()) this.#refuse(entry.path, `links to ${JSON.stringify(entry.linkpath)}, which is not a file of the context`);
      linkSync(linkTarget, path);
    }
    // Devices and fifos have no place in a build context: docker's COPY skips them too.
    return undefined;
  }

  #attributes(path: string, entry: TarEntry, link: boolean): void {
    if (this.#owners) lchownSync(path, entry.uid, entry.gid);
    if (!link) chmodSync(path, entry.mode & 0o7777);
    const time = new Date(entry.mtime * 1000);
    lutimesSync(path, time, time);
  }

  /** Gives directories their archived times back, now that their children are written. */
  finish(): void {
    for (const { path, mtime } of this.#dirTimes.reverse()) {
      const time = new Date(mtime * 1000);
      lutimesSync(path, time, time);
    }
  }
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

/** A stream that peeks at the first bytes to pick the decompressor, then passes everything through it. */
export function decompressing(signal?: AbortSignal): Transform {
  let inner: ReturnType<typeof decompressStream> | undefined;
  let pending = Buffer.alloc(0);
  const start = (self: Transform, data: Buffer): void => {
    inner = decompressStream(detectCompression(data), signal);
    inner.on('data', (d: Buffer) => self.push(d));
    inner.on('error', (err) => self.destroy(err));
    inner.write(data);
  };
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      if (inner) {
        if (!inner.write(chunk)) inner.once('drain', () => done());
        else done();
        return;
      }
      pending = Buffer.concat([pending, chunk]);
      if (pending.length >= 6) start(this, pending);
      done();
    },
    flush(done) {
      if (!inner) start(this, pending);
      inner!.once('end', () => done());
      inner!.end();
    },
  });
}

/**
 * Unpacks the build context of a POST /build request as the docker daemon does: decompress
 * by content, extract safely (no absolute paths, no `..`, no writes through symlinks), read
 * the Dockerfile (falling back to `dockerfile`), then remove `.dockerignore` and the
 * Dockerfile from the context when `.dockerignore` names them.
 */
export async function unpackContext(options: UnpackContextOptions): Promise<UnpackedContext> {
  const dir = options.dir;
  await mkdir(dir, { recursive: true });
  const extractor = new ContextExtractor(dir);
  try {
    await pipeline(options.stream, decompressing(options.signal), new TarReader((entry) => extractor.entry(entry)), ...(options.signal ? [{ signal: options.signal }] : []));
  } catch (err) {
    if (options.signal?.aborted) throw err;
    if (err instanceof BuildContextError) throw err;
    throw new BuildContextError('the build context is not a valid tar archive', { code: BuilderErrorCode.InvalidContext, kind: ErrorKind.InvalidArgument, cause: err });
  }
  extractor.finish();

  let name = (options.dockerfile ?? 'Dockerfile').replace(/^\.?\//, '');
  let text: string;
  try {
    text = await readFile(join(dir, name), 'utf8');
  } catch (err) {
    // The daemon also accepts the lower-case name when the default one is missing.
    if (errnoCode(err) !== 'ENOENT' || options.dockerfile !== undefined) {
      throw new BuildContextError(`cannot locate specified Dockerfile: ${name}`, { code: BuilderErrorCode.InvalidContext, kind: ErrorKind.NotFound, cause: err });
    }
    name = 'dockerfile';
    text = await readFile(join(dir, name), 'utf8').catch((cause: unknown) => {
      throw new BuildContextError('cannot locate specified Dockerfile: Dockerfile', { code: BuilderErrorCode.InvalidContext, kind: ErrorKind.NotFound, cause });
    });
  }

  let ignorePatterns: string[] = [];
  try {
    ignorePatterns = parseDockerignore(await readFile(join(dir, '.dockerignore'), 'utf8'));
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
  if (ignorePatterns.length > 0) {
    const matcher = new IgnoreMatcher({ patterns: ignorePatterns });
    for (const file of ['.dockerignore', name]) if (matcher.ignores(file)) await rm(join(dir, file), { force: true });
  }
  return { dir, dockerfile: { name, text }, ignorePatterns };
}
