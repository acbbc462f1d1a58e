import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ErrorKind, errnoCode } from '@berth/errors';
import { tempPathFor, withFileLock } from '@berth/fsutil';
import type { Logger } from '@berth/log';
import { VirtualBoxError, VirtualBoxErrorCode } from './vbox-manage.js';

/** Options of `ensureBootImage`. */
export interface BootImageOptions {
  /** A local path, or an http(s) URL. */
  readonly source: string;
  /** Where downloads are kept (`<store>/cache/virtualbox`). */
  readonly cacheDir: string;
  readonly logger: Logger;
  readonly signal?: AbortSignal | undefined;
}

function imageError(message: string, cause?: unknown): VirtualBoxError {
  return new VirtualBoxError(message, { code: VirtualBoxErrorCode.Image, kind: ErrorKind.FailedPrecondition, ...(cause === undefined ? {} : { cause }) });
}

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

/**
 * The SHA-256 published for `url` in a SHA256SUMS file beside it (as Ubuntu's cloud image
 * directories have), or undefined when there is none.
 */
async function publishedChecksum(url: URL, signal: AbortSignal | undefined): Promise<string | undefined> {
  const sums = new URL('SHA256SUMS', url);
  const response = await fetch(sums, signal ? { signal } : {}).catch(() => undefined);
  if (!response?.ok) return undefined;
  const name = basename(url.pathname);
  for (const line of (await response.text()).split('\n')) {
    const match = /^([0-9a-f]{64})\s+\*?(.+)$/.exec(line.trim());
    if (match && match[2] === name) return match[1];
  }
  return undefined;
}

/**
 * The local file of the boot image: the path itself, or the cached download of a URL. A
 * download happens once per URL (under a lock, so parallel creates share it), into a temp file
 * renamed into place after its SHA-256 matched the published SHA256SUMS when there is one.
 */
export async function ensureBootImage(options: BootImageOptions): Promise<string> {
  const { source, cacheDir, logger, signal } = options;
  if (!/^https?:\/\//.test(source)) {
    const path = resolve(source);
    await stat(path).catch((cause: unknown) => {
      throw imageError(`boot image ${path} ${errnoCode(cause) === 'ENOENT' ? 'does not exist' : 'cannot be read'}`, cause);
    });
    return path;
  }
  const url = new URL(source);
  const name = basename(url.pathname);
  if (!name) throw imageError(`boot image URL ${source} names no file`);
  // The host part keeps two URLs with the same file name apart.
  const target = join(cacheDir, url.host.replace(/[^A-Za-z0-9.-]/g, '_'), dirname(url.pathname).replace(/[^A-Za-z0-9.-]/g, '_'), name);
  await mkdir(dirname(target), { recursive: true });
  return withFileLock(`${target}.lock`, async () => {
    if (await stat(target).then(() => true, () => false)) {
      logger.debug('boot image cached', { path: target });
      return target;
    }
    logger.info('downloading boot image', { url: source });
    const temp = tempPathFor(target);
    try {
      const response = await fetch(url, signal ? { signal } : {});
      if (!response.ok || !response.body) throw imageError(`downloading ${source} failed: HTTP ${response.status}`);
      await pipeline(Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>), createWriteStream(temp), signal ? { signal } : {});
      const expected = await publishedChecksum(url, signal);
      if (expected) {
        const actual = await sha256(temp);
        if (actual !== expected) throw imageError(`boot image ${source} has SHA-256 ${actual}, but SHA256SUMS says ${expected}`);
      } else logger.warn('no SHA256SUMS beside the boot image; it is not verified', { url: source });
      await rename(temp, target);
      return target;
    } catch (error) {
      await rm(temp, { force: true });
      if (error instanceof VirtualBoxError) throw error;
      throw imageError(`downloading ${source} failed`, error);
    }
  });
}
