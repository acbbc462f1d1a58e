import { lstatSync, readlinkSync } from 'node:fs';
import { ErrorKind, errnoCode } from '@berth/errors';
import { SnapshotError, SnapshotErrorCode } from './errors.js';

// Linux's limit on symlinks followed in one lookup.
const maxSymlinkHops = 40;

/**
 * The root-relative components of an archive name: `./a//b/` is `a/b`, a leading `/` is
 * dropped (tar stores absolute names relative to the root), and `..` is resolved lexically.
 * A name that climbs above the root is refused: docker refuses such layers too.
 */
export function cleanLayerPath(name: string): string[] {
  const out: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length === 0) {
        throw new SnapshotError(`layer entry ${JSON.stringify(name)} points outside the root`, {
          code: SnapshotErrorCode.LayerPathEscape,
          kind: ErrorKind.PermissionDenied,
        });
      }
      out.pop();
      continue;
    }
    out.push(part);
  }
  return out;
}

/**
 * Resolves paths inside a root directory the way the kernel would inside a chroot (openat2's
 * RESOLVE_IN_ROOT): every symlink met on the way is followed with its absolute targets taken
 * relative to the root and `..` stopped at the root, so no name or link in a layer, however
 * crafted, reaches outside. The final component is never followed: entries replace it.
 *
 * Directories found real (not symlinks) are remembered, so unpacking a layer costs one lstat
 * per new directory, not one per path component per entry; the unpacker tells the resolver
 * when it replaces something (`forget`).
 */
export class RootResolver {
  readonly root: string;
  readonly #dirs = new Set<string>(['']);
  readonly #aliases = new Map<string, string>();

  constructor(root: string) {
    this.root = root;
  }

  /** The absolute path of a root-relative path (which must already be resolved). */
  abs(rel: string): string {
    return rel === '' ? this.root : `${this.root}/${rel}`;
  }

  /** Records that `rel` is a real directory (just created or found). */
  markDir(rel: string): void {
    this.#dirs.add(rel);
  }

  /** Drops what is known about `rel` and below: it was removed or replaced. */
  forget(rel: string): void {
    this.#aliases.clear();
    if (!this.#dirs.delete(rel)) return;
    const prefix = `${rel}/`;
    for (const d of this.#dirs) if (d.startsWith(prefix)) this.#dirs.delete(d);
  }

  /**
   * Resolves directory components to a real directory inside the root and returns its
   * root-relative path. A missing directory is made by `create` (which must make it a real
   * directory) when given; otherwise undefined is returned.
   */
  resolveDir(components: readonly string[], create?: (rel: string) => void): string | undefined {
    const key = components.join('/');
    if (this.#dirs.has(key)) return key;
    const alias = this.#aliases.get(key);
    if (alias !== undefined) return alias;
    const out: string[] = [];
    const queue = [...components];
    let hops = 0;
    while (queue.length > 0) {
      const c = queue.shift()!;
      if (c === '' || c === '.') continue;
      if (c === '..') {
        out.pop();
        continue;
      }
      out.push(c);
      const rel = out.join('/');
      if (this.#dirs.has(rel)) continue;
      let info;
      try {
        info = lstatSync(this.abs(rel));
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw err;
        if (!create) return undefined;
        create(rel);
        this.#dirs.add(rel);
        continue;
      }
      if (info.isDirectory()) {
        this.#dirs.add(rel);
        continue;
      }
      if (info.isSymbolicLink()) {
        if (++hops > maxSymlinkHops) {
          throw new SnapshotError(`too many levels of symbolic links resolving ${components.join('/')}`, {
            code: SnapshotErrorCode.InvalidLayer,
            kind: ErrorKind.InvalidArgument,
          });
        }
        const target = readlinkSync(this.abs(rel));
        out.pop();
        if (target.startsWith('/')) out.length = 0;
        queue.unshift(...target.split('/'));
        continue;
      }
      throw new SnapshotError(`${components.join('/')}: ${rel} is not a directory`, { code: SnapshotErrorCode.InvalidLayer, kind: ErrorKind.InvalidArgument });
    }
    const resolved = out.join('/');
    if (resolved !== key) this.#aliases.set(key, resolved);
    return resolved;
  }
}
