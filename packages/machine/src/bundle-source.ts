import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createGunzip } from 'node:zlib';
import { ErrorKind, errnoCode, throwIfAborted } from '@berth/errors';
import { ProvisionError } from './errors.js';
import type { EngineBundle, EngineBundleSource } from './provisioner.js';

/** What the first entry of an engine bundle says about it. */
export interface BundleManifest {
  readonly name: string;
  readonly version: string;
  readonly arch: string;
}

/** The file name of the engine bundle for `arch` (`berth-engine-linux-x64.tar.gz`). */
export function engineBundleFileName(arch: string): string {
  return `berth-engine-linux-${arch}.tar.gz`;
}

function bad(path: string, why: string, cause?: unknown): ProvisionError {
  return new ProvisionError(`${path} is not an engine bundle: ${why}`, { code: 'ERR_BUNDLE_INVALID', kind: ErrorKind.InvalidArgument, cause });
}

/**
 * Reads `manifest.json`, the first entry of a bundle, streaming only as far as it: a tar
 * header (name at 0, octal size at 124) then the content, inside gzip.
 */
export async function readBundleManifest(path: string, options: { readonly signal?: AbortSignal } = {}): Promise<BundleManifest> {
  const gunzip = createGunzip();
  const input = createReadStream(path, { signal: options.signal });
  input.pipe(gunzip);
  let buffer = Buffer.alloc(0);
  try {
    for await (const chunk of gunzip) {
      buffer = Buffer.concat([buffer, chunk as Buffer]);
      if (buffer.length < 512) continue;
      const name = buffer.subarray(0, 100).toString('latin1').replace(/\0.*$/s, '');
      if (!name.endsWith('manifest.json')) throw bad(path, `its first entry is ${JSON.stringify(name)}, not manifest.json`);
      const size = parseInt(buffer.subarray(124, 136).toString('latin1').replace(/\0.*$/s, '').trim(), 8);
      if (!Number.isFinite(size) || size > 1 << 16) throw bad(path, 'manifest.json has no sane size');
      if (buffer.length < 512 + size) continue;
      const manifest = JSON.parse(buffer.subarray(512, 512 + size).toString('utf8')) as Partial<BundleManifest>;
      if (typeof manifest.version !== 'string' || typeof manifest.arch !== 'string') throw bad(path, 'manifest.json lacks version or arch');
      return { name: manifest.name ?? 'berth-engine', version: manifest.version, arch: manifest.arch };
    }
  } catch (err) {
    if (err instanceof ProvisionError) throw err;
    if (options.signal?.aborted) throw err;
    if (errnoCode(err) === 'ENOENT') throw new ProvisionError(`engine bundle ${path} does not exist`, { code: 'ERR_BUNDLE_NOT_FOUND', kind: ErrorKind.NotFound, cause: err });
    throw bad(path, 'cannot read it as tar.gz', err);
  } finally {
    input.destroy();
    gunzip.destroy();
  }
  throw bad(path, 'it ends before manifest.json');
}

/** Options of `LocalBundleSource`. */
export interface LocalBundleSourceOptions {
  /**
   * Bundle files, or directories holding `berth-engine-linux-<arch>.tar.gz`, searched in order.
   * A file is used for whatever architecture its manifest names.
   */
  readonly paths: readonly string[];
  /** How to build bundles, for the error when none is found. */
  readonly hint?: string;
}

/** Finds engine bundles on this machine: given files, or by name in given directories. */
export class LocalBundleSource implements EngineBundleSource {
  readonly #paths: readonly string[];
  readonly #hint: string;

  constructor(options: LocalBundleSourceOptions) {
    this.#paths = options.paths;
    this.#hint = options.hint ?? '';
  }

  async resolve(arch: string, options: { readonly signal?: AbortSignal } = {}): Promise<EngineBundle> {
    const tried: string[] = [];
    for (const path of this.#paths) {
      throwIfAborted(options.signal);
      const info = await stat(path).catch(() => undefined);
      if (!info) {
        tried.push(path);
        continue;
      }
      const file = info.isDirectory() ? join(path, engineBundleFileName(arch)) : path;
      if (info.isDirectory() && !(await stat(file).catch(() => undefined))) {
        tried.push(file);
        continue;
      }
      const manifest = await readBundleManifest(file, options);
      if (manifest.arch !== arch) {
        if (info.isDirectory()) throw bad(file, `its manifest says ${manifest.arch}, the host is ${arch}`);
        tried.push(`${file} (for ${manifest.arch})`);
        continue;
      }
      return { path: file, version: manifest.version, arch: manifest.arch };
    }
    throw new ProvisionError(`no engine bundle for linux/${arch}: looked at ${tried.join(', ') || 'nothing'}${this.#hint ? `. ${this.#hint}` : ''}`, {
      code: 'ERR_BUNDLE_NOT_FOUND',
      kind: ErrorKind.NotFound,
    });
  }
}
