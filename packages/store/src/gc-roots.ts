import { mkdir, readdir, readFile, stat, unlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorKind, errnoCode, throwIfAborted } from '@berth/errors';
import { writeJsonAtomic } from '@berth/fsutil';
import { isDigest, type Descriptor } from '@berth/oci';
import { StoreError, StoreErrorCode } from './errors.js';

/** Options of `GcRoots`: the directory the roots live in (`<state root>/roots`). */
export interface GcRootsOptions {
  readonly dir: string;
}

/** One persistent root, as `list` returns it. */
export interface GcRoot {
  readonly group: string;
  readonly name: string;
  readonly descriptor: Descriptor;
  /** When the root was set, or last `touch`ed. */
  readonly modified: Date;
}

const namePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/;

function checkName(what: string, value: string): void {
  if (typeof value !== 'string' || !namePattern.test(value)) {
    throw new StoreError(`invalid GC root ${what} ${JSON.stringify(value)}: want letters, digits, '.', '_' or '-'`, {
      code: StoreErrorCode.InvalidOptions,
      kind: ErrorKind.InvalidArgument,
    });
  }
}

function parseRoot(text: string): Descriptor | undefined {
  try {
    const value = JSON.parse(text) as Partial<Descriptor>;
    if (typeof value.mediaType === 'string' && typeof value.digest === 'string' && isDigest(value.digest) && typeof value.size === 'number') return value as Descriptor;
  } catch {
    // A root cut short by a crash (roots may be written without fsync): it keeps nothing.
  }
  return undefined;
}

/**
 * Persistent garbage-collection roots outside `index.json`: descriptors filed by group and
 * name (`<dir>/<group>/<name>.json`), each kept by `ImageStore.gc` with everything it reaches,
 * as an image is (a manifest keeps its config, layers and their chain IDs' snapshots). The
 * build cache files its intermediate images here, so they survive collections until a
 * `builder prune` removes them. Roots are not images: `list` and `resolve` never see them.
 *
 * A writer protects the blobs with a lease until `set` returns; garbage collection reads the
 * leases before the roots, so a root set and its lease released in between is still seen.
 */
export class GcRoots {
  readonly dir: string;
  readonly #made = new Set<string>();

  constructor(options: GcRootsOptions) {
    if (typeof options?.dir !== 'string' || options.dir === '') {
      throw new StoreError('GcRoots needs a directory', { code: StoreErrorCode.InvalidOptions, kind: ErrorKind.InvalidArgument });
    }
    this.dir = options.dir;
  }

  #path(group: string, name: string): string {
    checkName('group', group);
    checkName('name', name);
    return join(this.dir, group, `${name}.json`);
  }

  /**
   * Files `descriptor` as `group/name`, replacing what was there. `durable: false` skips the
   * fsync, for roots that are cheap to lose (a cache record).
   */
  async set(group: string, name: string, descriptor: Descriptor, options: { readonly durable?: boolean; readonly signal?: AbortSignal } = {}): Promise<void> {
    throwIfAborted(options.signal);
    const path = this.#path(group, name);
    if (!this.#made.has(group)) {
      await mkdir(join(this.dir, group), { recursive: true });
      this.#made.add(group);
    }
    await writeJsonAtomic(path, descriptor, { durable: options.durable ?? true });
  }

  /** The descriptor filed as `group/name`, or undefined. */
  async get(group: string, name: string): Promise<Descriptor | undefined> {
    try {
      return parseRoot(await readFile(this.#path(group, name), 'utf8'));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** Marks `group/name` as used now (its `modified` time); false when it is not there. */
  async touch(group: string, name: string): Promise<boolean> {
    const now = new Date();
    try {
      await utimes(this.#path(group, name), now, now);
      return true;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return false;
      throw err;
    }
  }

  /** Removes `group/name`; true when it was there. What it kept goes at the next collection. */
  async delete(group: string, name: string): Promise<boolean> {
    try {
      await unlink(this.#path(group, name));
      return true;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return false;
      throw err;
    }
  }

  /** The roots of one group, or of every group. Unreadable files are skipped. */
  async list(group?: string): Promise<GcRoot[]> {
    let groups: string[];
    if (group !== undefined) {
      checkName('group', group);
      groups = [group];
    } else {
      try {
        groups = await readdir(this.dir);
      } catch (err) {
        if (errnoCode(err) === 'ENOENT') return [];
        throw err;
      }
    }
    const out: GcRoot[] = [];
    for (const g of groups) {
      if (!namePattern.test(g)) continue;
      let files: string[];
      try {
        files = await readdir(join(this.dir, g));
      } catch (err) {
        if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') continue;
        throw err;
      }
      for (const file of files) {
        const name = file.endsWith('.json') ? file.slice(0, -'.json'.length) : '';
        if (!namePattern.test(name)) continue;
        const path = join(this.dir, g, file);
        try {
          const [text, info] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
          const descriptor = parseRoot(text);
          if (descriptor) out.push({ group: g, name, descriptor, modified: info.mtime });
        } catch (err) {
          if (errnoCode(err) !== 'ENOENT') throw err;
        }
      }
    }
    return out;
  }
}
