import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm, utimes } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { tempPathFor } from '@berth/fsutil';
import { ErrorKind } from '@berth/errors';
import { noopLogger, type Logger } from '@berth/log';
import { BuildContextError, BuilderErrorCode } from './errors.js';

/** True for the ADD sources that are fetched over HTTP(S) rather than read from the context. */
export function isRemoteSource(source: string): boolean {
  return /^https?:\/\//i.test(source);
}

/** The file name a remote ADD source gets in a destination directory: its URL's last path element. */
export function remoteFileName(url: string): string {
  try {
    const base = posix.basename(new URL(url).pathname);
    return base === '' || base === '.' || base === '/' ? '__unnamed__' : decodeURIComponent(base);
  } catch {
    return '__unnamed__';
  }
}

/** Options of `fetchRemoteSource`. */
export interface FetchRemoteSourceOptions {
  readonly url: string;
  /** `--checksum`: `sha256:<hex>` (sha384 and sha512 also accepted); the download must match it. */
  readonly checksum?: string;
  /** The directory the file is written into, under its `remoteFileName`. */
  readonly dir: string;
  readonly signal?: AbortSignal;
  readonly logger?: Logger;
}

/** A downloaded ADD source. */
export interface RemoteSource {
  readonly path: string;
  readonly filename: string;
  /** `sha256:` digest of the content (or of the `--checksum` algorithm). */
  readonly digest: string;
  readonly size: number;
  readonly lastModified?: Date;
}

const digestLengths: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

/**
 * Downloads a remote ADD source as docker does: file mode 0600, mtime from Last-Modified,
 * never unpacked. With `checksum`, a download whose digest differs is deleted and refused.
 */
export async function fetchRemoteSource(options: FetchRemoteSourceOptions): Promise<RemoteSource> {
  const logger = options.logger ?? noopLogger;
  let algorithm = 'sha256';
  let expected: string | undefined;
  if (options.checksum !== undefined) {
    const [alg, hex] = options.checksum.split(':', 2);
    if (!alg || !hex || digestLengths[alg] !== hex.length || !/^[0-9a-f]+$/.test(hex)) {
      throw new BuildContextError(`invalid checksum ${JSON.stringify(options.checksum)}: want sha256:<64 hex digits>`, {
        code: BuilderErrorCode.ChecksumMismatch,
        kind: ErrorKind.InvalidArgument,
      });
    }
    algorithm = alg;
    expected = options.checksum;
  }

  let response: Response;
  try {
    response = await fetch(options.url, { redirect: 'follow', ...(options.signal ? { signal: options.signal } : {}) });
  } catch (err) {
    throw new BuildContextError(`failed to fetch ${options.url}`, { code: BuilderErrorCode.RemoteSource, kind: ErrorKind.Unavailable, cause: err });
  }
  if (!response.ok || !response.body) {
    await response.body?.cancel();
    throw new BuildContextError(`failed to fetch ${options.url}: ${response.status} ${response.statusText}`, {
      code: BuilderErrorCode.RemoteSource,
      kind: response.status === 404 ? ErrorKind.NotFound : ErrorKind.Unavailable,
    });
  }

  const filename = remoteFileName(options.url);
  const path = join(options.dir, filename);
  const temp = tempPathFor(path);
  const hash = createHash(algorithm);
  let size = 0;
  const count = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      size += chunk.length;
      done(null, chunk);
    },
  });
  try {
    await pipeline(Readable.fromWeb(response.body as import('node:stream/web').ReadableStream), count, createWriteStream(temp, { mode: 0o600 }), ...(options.signal ? [{ signal: options.signal }] : []));
  } catch (err) {
    await rm(temp, { force: true });
    throw new BuildContextError(`failed to fetch ${options.url}`, { code: BuilderErrorCode.RemoteSource, kind: ErrorKind.Unavailable, cause: err });
  }
  const digest = `${algorithm}:${hash.digest('hex')}`;
  if (expected !== undefined && digest !== expected) {
    await rm(temp, { force: true });
    throw new BuildContextError(`checksum mismatch for ${options.url}: expected ${expected}, got ${digest}`, {
      code: BuilderErrorCode.ChecksumMismatch,
      kind: ErrorKind.InvalidArgument,
    });
  }
  const modified = response.headers.get('last-modified');
  const lastModified = modified ? new Date(modified) : undefined;
  if (lastModified && !Number.isNaN(lastModified.getTime())) await utimes(temp, lastModified, lastModified);
  await rename(temp, path);
  logger.debug('fetched remote ADD source', { url: options.url, digest, size });
  return { path, filename, digest, size, ...(lastModified && !Number.isNaN(lastModified.getTime()) ? { lastModified } : {}) };
}
