import { chmodSync, chownSync, lstatSync, mkdirSync, writeFileSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, rm, rmdir } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { join, posix } from 'node:path';
import { promisify } from 'node:util';
import { errnoCode } from '@berth/errors';
import { digestOf, type Descriptor, type Digest, type LayerCompression } from '@berth/oci';
import { RootResolver, mountAll, mountData, unmount, type Mount, type Snapshotter } from '@berth/snapshot';
import type { Lease } from '@berth/store';

const run = promisify(execFile);

/** The diff ID of a layer with no entries: docker records such a step as an empty layer. */
export const emptyLayerDiffId: Digest = digestOf(Buffer.alloc(1024));

/** A mount point a RUN needs in its root: a directory, or a file to bind a file onto. */
export interface MountStub {
  /** Absolute path in the container. */
  readonly path: string;
  readonly kind: 'dir' | 'file';
}

/** The layer a step produced, or none when it changed nothing. */
export interface StepLayer {
  readonly descriptor: Descriptor;
  readonly diffId: Digest;
  readonly chainId: Digest;
}

/** Options of `StepRootfs.open`. */
export interface StepRootfsOptions {
  readonly snapshotter: Snapshotter;
  readonly lease: Lease;
  /** The snapshot key of the step (an active snapshot, removed or committed at the end). */
  readonly key: string;
  /** The chain the step builds on (undefined: an empty root). */
  readonly parent: Digest | undefined;
  /** A fresh directory of the build's work dir: the mount point and the stub layer go here. */
  readonly dir: string;
  /** Mount points to provide without them showing in the step's layer. */
  readonly stubs?: readonly MountStub[];
  readonly signal?: AbortSignal;
}

// Type, mode and owner of a path in the image below an overlay, read from its lower
// directories: the first one that has the path decides (a whiteout hides it).
function statInLowers(lowers: readonly string[], rel: string): { dir: boolean; mode: number; uid: number; gid: number } | undefined {
  for (const lower of lowers) {
    try {
      const info = lstatSync(join(lower, rel));
      if (info.isCharacterDevice() && info.rdev === 0) return undefined;
      return { dir: info.isDirectory(), mode: info.mode & 0o7777, uid: info.uid, gid: info.gid };
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT' && errnoCode(err) !== 'ENOTDIR') throw err;
    }
  }
  return undefined;
}

/**
 * The writable root file system of one build step: an active snapshot on the step's parent,
 * mounted at `<dir>/rootfs`. A RUN's mount points (/proc, /etc/hosts, --mount targets) come
 * from a stub layer under the snapshot's own layers, as docker's init layer does, so they
 * never show in the step's layer; where the snapshot is a plain directory (the copying
 * snapshotter, an empty root) they are made in it and removed after the step.
 */
export class StepRootfs {
  readonly path: string;
  readonly #o: StepRootfsOptions;
  #mounted = false;
  #made: string[] = [];
  readonly #parentTimes = new Map<string, bigint>();
  #finished = false;

  private constructor(options: StepRootfsOptions) {
    this.#o = options;
    this.path = join(options.dir, 'rootfs');
  }

  /** Prepares the snapshot and mounts it. On failure nothing is left behind. */
  static async open(options: StepRootfsOptions): Promise<StepRootfs> {
    const step = new StepRootfs(options);
    const { snapshotter, lease, key, parent, signal } = options;
    await lease.add({ snapshots: [key] }, signal ? { signal } : {});
    const mounts = await snapshotter.prepare(key, parent, signal ? { signal } : {});
    try {
      await mkdir(step.path, { recursive: true });
      const stubs = options.stubs ?? [];
      const layered = stubs.length > 0 ? await step.#withStubLayer(mounts, stubs) : undefined;
      await mountAll(layered ?? mounts, step.path);
      step.#mounted = true;
      if (stubs.length > 0 && !layered) step.#makeStubs(stubs);
      return step;
    } catch (err) {
      await step.discard();
      throw err;
    }
  }

  // An overlay gets the stubs as its topmost lower directory; anything else (a bind of a
  // plain directory) gets them made in place.
  async #withStubLayer(mounts: readonly Mount[], stubs: readonly MountStub[]): Promise<Mount[] | undefined> {
    const overlay = mounts.length === 1 && mounts[0]!.type === 'overlay' ? mounts[0]! : undefined;
    const lowerOption = overlay?.options.find((o) => o.startsWith('lowerdir='));
    if (!overlay || !lowerOption) return undefined;
    const lowers = lowerOption.slice('lowerdir='.length).split(':');
    const stubDir = join(this.#o.dir, 'stubs');
    const layered: Mount = { ...overlay, options: overlay.options.map((o) => (o === lowerOption ? `lowerdir=${stubDir}:${lowers.join(':')}` : o)) };
    try {
      mountData(layered);
    } catch {
      return undefined;
    }
    // A directory of the stub layer hides whatever the image has at its path: where the image
    // has a symlink or a file on the way to a stub, the stubs are made in place instead.
    for (const stub of stubs) {
      const parts = posix.normalize(stub.path).split('/').filter(Boolean);
      const dirs = stub.kind === 'dir' ? parts.length : parts.length - 1;
      for (let i = 1; i <= dirs; i++) {
        const existing = statInLowers(lowers, parts.slice(0, i).join('/'));
        if (existing && !existing.dir) return undefined;
      }
    }
    await mkdir(stubDir);
    const root = statInLowers(lowers, '');
    if (root) {
      chownSync(stubDir, root.uid, root.gid);
      chmodSync(stubDir, root.mode);
    }
    for (const stub of stubs) {
      const parts = posix.normalize(stub.path).split('/').filter(Boolean);
      for (let i = 1; i <= parts.length; i++) {
        const rel = parts.slice(0, i).join('/');
        const abs = join(stubDir, rel);
        if (i < parts.length || stub.kind === 'dir') {
          try {
            mkdirSync(abs, { mode: 0o755 });
          } catch (err) {
            if (errnoCode(err) === 'EEXIST') continue;
            throw err;
          }
          // The merged view shows the stub layer's directory: it keeps the image's mode and owner.
          const existing = statInLowers(lowers, rel);
          if (existing) {
            chownSync(abs, existing.uid, existing.gid);
            chmodSync(abs, existing.mode);
          }
        } else {
          try {
            writeFileSync(abs, '', { flag: 'wx', mode: 0o644 });
          } catch (err) {
            if (errnoCode(err) !== 'EEXIST') throw err;
          }
        }
      }
    }
    return [layered];
  }

  #makeStubs(stubs: readonly MountStub[]): void {
    const resolver = new RootResolver(this.path);
    // A directory's modification time as it was before the first stub was made in it, to the nanosecond.
    const remember = (parentRel: string): void => {
      const parent = resolver.abs(parentRel);
      if (!this.#parentTimes.has(parent)) this.#parentTimes.set(parent, lstatSync(parent, { bigint: true }).mtimeNs);
    };
    const parentOf = (rel: string): string => (rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '');
    for (const stub of stubs) {
      const parts = posix.normalize(stub.path).split('/').filter(Boolean);
      const dirParts = stub.kind === 'dir' ? parts : parts.slice(0, -1);
      let top: string | undefined;
      const dirRel = resolver.resolveDir(dirParts, (rel) => {
        if (top === undefined) {
          top = rel;
          remember(parentOf(rel));
        }
        mkdirSync(resolver.abs(rel), { mode: 0o755 });
      });
      if (stub.kind === 'file' && dirRel !== undefined) {
        const rel = dirRel === '' ? parts.at(-1)! : `${dirRel}/${parts.at(-1)!}`;
        try {
          lstatSync(resolver.abs(rel));
        } catch (err) {
          if (errnoCode(err) !== 'ENOENT') throw err;
          if (top === undefined) {
            top = rel;
            remember(dirRel);
          }
          writeFileSync(resolver.abs(rel), '', { flag: 'wx', mode: 0o644 });
        }
      }
      if (top !== undefined) this.#made.push(resolver.abs(top));
    }
  }

  // Removes the stubs made in place when they still are what was made (empty), and gives
  // their parent directories their modification times back, so the step's diff does not see
  // them. Node's utimes cannot set nanoseconds; touch(1) can.
  async #removeStubs(): Promise<void> {
    for (const top of this.#made.reverse()) if (await onlyEmpty(top)) await rm(top, { recursive: true, force: true });
    this.#made = [];
    const parents = [...this.#parentTimes].sort(([a], [b]) => b.length - a.length);
    this.#parentTimes.clear();
    for (const [parent, mtimeNs] of parents) {
      const stamp = `@${mtimeNs / 1_000_000_000n}.${(mtimeNs % 1_000_000_000n).toString().padStart(9, '0')}`;
      await run('touch', ['-m', '-h', '-d', stamp, parent]).catch(() => {});
    }
  }

  /** Unmounts (idempotent); the snapshot stays for `commit` or `discard`. */
  async unmount(): Promise<void> {
    if (!this.#mounted) return;
    await this.#removeStubs();
    await unmount(this.path);
    this.#mounted = false;
  }

  /**
   * Ends the step: unmounts, turns the snapshot's changes into a layer blob (written through
   * the lease) and commits the snapshot as that layer's chain. A step that changed nothing
   * gives no layer and its snapshot is removed.
   */
  async commit(options: { readonly compression: LayerCompression; readonly signal?: AbortSignal }): Promise<StepLayer | undefined> {
    const { snapshotter, lease, key, parent } = this.#o;
    const signal = options.signal;
    await this.unmount();
    await this.#removeWorkFiles();
    const diff = await snapshotter.diff(key, { compression: options.compression, ...(signal ? { signal } : {}) });
    const written = await lease.writeBlob(diff.stream, signal ? { signal } : {});
    const result = await diff.result;
    if (result.diffId === emptyLayerDiffId) {
      await this.discard();
      return undefined;
    }
    const chainId = parent ? digestOf(`${parent} ${result.diffId}`) : result.diffId;
    await lease.add({ snapshots: [chainId] }, signal ? { signal } : {});
    await snapshotter.commit(key, chainId, { diffId: result.diffId, ...(signal ? { signal } : {}) });
    this.#finished = true;
    return { descriptor: { mediaType: result.mediaType, digest: written.digest, size: written.size }, diffId: result.diffId, chainId };
  }

  /** Unmounts and removes the snapshot and the step's directory; safe to call more than once and after a failure. */
  async discard(): Promise<void> {
    if (this.#mounted) {
      await unmount(this.path).catch(() => {});
      this.#mounted = false;
    }
    if (!this.#finished) {
      this.#finished = true;
      await this.#o.snapshotter.remove(this.#o.key).catch(() => {});
    }
    if (!this.#mounted) await this.#removeWorkFiles();
  }

  // rmdir, never rm -r, of the mount point: if an unmount did not take, below it is a snapshot.
  async #removeWorkFiles(): Promise<void> {
    await rmdir(this.path).catch(() => {});
    await rm(join(this.#o.dir, 'stubs'), { recursive: true, force: true });
  }
}

async function onlyEmpty(path: string): Promise<boolean> {
  let info;
  try {
    info = await lstat(path);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false;
    throw err;
  }
  if (info.isFile()) return info.size === 0;
  if (!info.isDirectory()) return false;
  for (const name of await readdir(path)) if (!(await onlyEmpty(join(path, name)))) return false;
  return true;
}

/**
 * Removes a directory of the build's scratch space, unless something is still mounted in it:
 * then it is left, rather than deleted through into a snapshot.
 */
export async function removeUnmounted(dir: string): Promise<void> {
  const mounts = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  for (const line of mounts.split('\n')) {
    const target = line.split(' ')[4] ?? '';
    if (target === dir || target.startsWith(`${dir}/`)) return;
  }
  await rm(dir, { recursive: true, force: true });
}
