import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { copyFile, chown, chmod, lstat, mkdir, rename, rm, stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { promisify } from 'node:util';
import { ErrorKind, errnoCode } from '@berth/errors';
import { acquireFileLock, tryAcquireFileLock, type FileLock } from '@berth/fsutil';
import type { RunMount as RuntimeMount } from '@berth/runtime';
import { mountAll, unmount } from '@berth/snapshot';
import type { CacheMount, RunMount } from './dockerfile-ast.js';
import { ImageRoot } from './copy-files.js';
import { cleanPath } from './dockerignore.js';
import { BuildError, BuilderErrorCode } from './errors.js';
import type { MountStub } from './step-rootfs.js';

const run = promisify(execFile);

/** What `prepareRunMounts` needs to find mount sources. */
export interface RunMountContext {
  /** The RUN's working directory: relative targets are under it. */
  readonly workdir: string;
  /** Where cache mounts live (`<cacheRoot>/mounts/...`). */
  readonly cacheRoot: string;
  /** The build context as a directory, for binds without `from` (asked for only then: a spooled context is written out for it). */
  readonly contextRoot: () => string;
  /** A read-only view of the root of a stage or image named by `from`; the build unmounts it at its end. */
  readonly rootOf: (from: string) => Promise<string>;
  /** A directory of the step for copy-on-write layers of `rw` binds. */
  readonly scratch: string;
  readonly signal?: AbortSignal;
}

/** The mounts of one RUN, ready for the runtime, and how to let go of them afterwards. */
export interface PreparedMounts {
  readonly mounts: readonly RuntimeMount[];
  /** Mount points the step's root must provide. */
  readonly stubs: readonly MountStub[];
  /** Unmounts copy-on-write layers and releases cache locks; call once the container ended. */
  release(): Promise<void>;
}

/** The directory of a cache mount id under `cacheRoot`, as `builder prune` finds them. */
export function cacheMountDir(cacheRoot: string, id: string): string {
  return join(cacheRoot, 'mounts', createHash('sha256').update(id).digest('hex'));
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false;
    throw err;
  }
}

// Makes a cache directory once, atomically: filled aside (from `from`'s `source` when given)
// and renamed into place, so two builds starting together both see a whole one.
async function makeCacheDir(dir: string, mount: CacheMount, seed: string | undefined): Promise<void> {
  if (await exists(dir)) return;
  const temp = `${dir}.tmp-${randomBytes(6).toString('hex')}`;
  try {
    await mkdir(temp, { recursive: true });
    if (seed) await run('cp', ['-a', '--', `${seed}/.`, `${temp}/`]);
    await chown(temp, mount.uid, mount.gid);
    await chmod(temp, mount.mode);
    try {
      await rename(temp, dir);
    } catch (err) {
      if (errnoCode(err) !== 'ENOTEMPTY' && errnoCode(err) !== 'EEXIST') throw err;
    }
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}

/**
 * Turns a RUN's `--mount`s into runtime mounts: `cache` directories kept under `cacheRoot`
 * between builds (`shared` as is, `locked` held exclusively for the RUN, `private` an
 * instance no other RUN holds), `bind` of the context or of a stage or image (read-only
 * unless `rw`, whose writes go to a throw-away overlay), and `tmpfs`. A `secret` or `ssh`
 * mount the build was not given is skipped unless it is `required`.
 */
export async function prepareRunMounts(mounts: readonly RunMount[], ctx: RunMountContext): Promise<PreparedMounts> {
  const out: RuntimeMount[] = [];
  const stubs: MountStub[] = [];
  const locks: FileLock[] = [];
  const overlays: string[] = [];
  const release = async (): Promise<void> => {
    for (const m of overlays.splice(0)) await unmount(m).catch(() => {});
    for (const l of locks.splice(0)) await l.release();
  };
  try {
    let n = 0;
    for (const mount of mounts) {
      n++;
      if (mount.type === 'secret' || mount.type === 'ssh') {
        if (mount.required) {
          throw new BuildError(`RUN --mount=type=${mount.type},id=${mount.id} is required, but builds here are not given ${mount.type === 'secret' ? 'secrets' : 'SSH agents'}`, {
            code: BuilderErrorCode.Unsupported,
            kind: ErrorKind.NotImplemented,
          });
        }
        continue;
      }
      const target = posix.resolve(ctx.workdir, mount.target);
      if (mount.type === 'tmpfs') {
        out.push({ type: 'tmpfs', target, ...(mount.size !== undefined ? { tmpfsSize: mount.size } : {}) });
        stubs.push({ path: target, kind: 'dir' });
        continue;
      }
      let source: string;
      if (mount.from !== undefined) {
        const root = new ImageRoot(await ctx.rootOf(mount.from));
        const found = root.resolve(mount.source ?? '/');
        if (found === undefined) {
          throw new BuildError(`RUN --mount from ${mount.from}: ${mount.source ?? '/'} not found`, { code: BuilderErrorCode.SourceNotFound, kind: ErrorKind.NotFound });
        }
        source = found;
      } else {
        source = join(ctx.contextRoot(), cleanPath(posix.join('/', mount.source ?? '/')).slice(1));
      }

      if (mount.type === 'cache') {
        const base = cacheMountDir(ctx.cacheRoot, mount.id);
        await mkdir(base, { recursive: true });
        let dir = join(base, '0');
        if (mount.sharing === 'locked') locks.push(await acquireFileLock(`${dir}.lock`, ctx.signal ? { signal: ctx.signal } : {}));
        else if (mount.sharing === 'private') {
          for (let i = 0; ; i++) {
            const lock = await tryAcquireFileLock(join(base, `${i}.lock`));
            if (lock) {
              locks.push(lock);
              dir = join(base, String(i));
              break;
            }
          }
        }
        await makeCacheDir(dir, mount, mount.from !== undefined ? source : undefined);
        out.push({ type: 'bind', source: dir, target, readOnly: mount.readOnly });
        stubs.push({ path: target, kind: 'dir' });
        continue;
      }

      // bind
      let info;
      try {
        info = await stat(source);
      } catch (err) {
        throw new BuildError(`RUN --mount=type=bind source ${mount.source ?? '/'}${mount.from ? ` from ${mount.from}` : ''}: not found`, {
          code: BuilderErrorCode.SourceNotFound,
          kind: ErrorKind.NotFound,
          cause: err,
        });
      }
      if (mount.readWrite && info.isDirectory()) {
        const layer = join(ctx.scratch, `mount-${n}`);
        const merged = join(layer, 'merged');
        for (const d of ['upper', 'work', 'merged']) await mkdir(join(layer, d), { recursive: true });
        await mountAll([{ type: 'overlay', source: 'overlay', options: [`lowerdir=${source}`, `upperdir=${join(layer, 'upper')}`, `workdir=${join(layer, 'work')}`] }], merged, ctx.signal);
        overlays.push(merged);
        source = merged;
      } else if (mount.readWrite) {
        const copy = join(ctx.scratch, `mount-${n}`);
        await copyFile(source, copy);
        source = copy;
      }
      out.push({ type: 'bind', source, target, readOnly: !mount.readWrite });
      stubs.push({ path: target, kind: info.isDirectory() ? 'dir' : 'file' });
    }
  } catch (err) {
    await release();
    throw err;
  }
  return { mounts: out, stubs, release };
}
