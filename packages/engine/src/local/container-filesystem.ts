import { spawn } from 'node:child_process';
import { lstat, mkdir, mkdtemp, readlink, rm, stat } from 'node:fs/promises';
import { posix } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ErrorKind, errnoCode, hasKind } from '@berth/errors';
import { MediaType, digestOf, type Descriptor, type Digest, type ImageConfig, type ImageManifest } from '@berth/oci';
import { RootResolver, UnpackMode, mountAll, unmount, unpackLayer } from '@berth/snapshot';
import { TarReader, applyImageChanges } from '@berth/store';
import { EngineErrorCode, engineError, type CommitOptions } from '../engine.js';
import type { CallOptions, IdResponse } from '../types/common.js';
import type { ContainerPathStat, FilesystemChange } from '../types/container.js';
import { isRunning, type ContainerLifecycle } from './container-lifecycle.js';
import type { ContainerRecord } from './container-record.js';
import { invalidParameter } from './docker-errors.js';
import { nowRfc3339 } from './docker-time.js';
import type { EngineContext } from './engine-context.js';

// Go's os.FileMode type bits, which docker's path stat carries.
const goMode = { dir: 2 ** 31, symlink: 2 ** 27, device: 2 ** 26, namedPipe: 2 ** 25, socket: 2 ** 24, setuid: 2 ** 23, setgid: 2 ** 22, charDevice: 2 ** 21, sticky: 2 ** 20 };

function noSuchPath(path: string, id: string): Error {
  return engineError(`Could not find the file ${path} in container ${id}`, EngineErrorCode.PathNotFound, ErrorKind.NotFound);
}

/** A place in a container's file system: the host directory that is its root there, and the path inside. */
interface Located {
  readonly root: string;
  /** Root-relative and resolved: every directory component is a real directory. */
  readonly rel: string;
}

/** The container's file system as the host can see it for the length of one operation. */
interface FsView {
  locate(path: string, followLast: boolean): Located | undefined;
  release(): Promise<void>;
}

/**
 * What reaches into a container's file system: `docker cp` (stat, get, put), `diff`, `export`
 * and `commit`. Paths resolve inside the container's root the way the kernel would resolve
 * them there (symlinks and `..` never leave it); a running container is seen through
 * /proc/<pid>/root, which includes its volumes and binds; a stopped one through its mounted
 * root file system with volumes and binds mapped to their sources.
 */
export class ContainerFilesystem {
  readonly #ctx: EngineContext;
  readonly #lifecycle: ContainerLifecycle;

  constructor(ctx: EngineContext, lifecycle: ContainerLifecycle) {
    this.#ctx = ctx;
    this.#lifecycle = lifecycle;
  }

  async #view(record: ContainerRecord): Promise<FsView> {
    if (isRunning(record) && record.state.pid > 0) {
      const root = `/proc/${record.state.pid}/root`;
      return { locate: (path, followLast) => resolveIn(root, path, followLast), release: async () => {} };
    }
    const snapshotter = await this.#ctx.snapshotter();
    await mkdir(this.#ctx.layout.runRoot, { recursive: true });
    const dir = await mkdtemp(`${this.#ctx.layout.runRoot}/view-`);
    await mountAll(await snapshotter.mounts(record.snapshotKey), dir);
    const mounts = [...record.mounts].filter((m) => m.type !== 'tmpfs').sort((a, b) => b.destination.length - a.destination.length);
    return {
      locate: (path, followLast) => {
        const clean = posix.normalize(`/${path}`);
        const mount = mounts.find((m) => clean === m.destination || clean.startsWith(`${m.destination}/`));
        if (mount) return resolveIn(mount.type === 'volume' && mount.subpath ? `${mount.source}/${mount.subpath}` : mount.source, clean.slice(mount.destination.length), followLast);
        return resolveIn(dir, clean, followLast);
      },
      release: async () => {
        await unmount(dir);
        await rm(dir, { recursive: true, force: true });
      },
    };
  }

  async #withView<T>(ref: string, fn: (view: FsView, record: ContainerRecord) => Promise<T>): Promise<T> {
    const record = await this.#lifecycle.get(ref);
    const work = async () => {
      const view = await this.#view(record);
      try {
        return await fn(view, record);
      } finally {
        await view.release();
      }
    };
    // A stopped container's root is mounted for the operation: hold its lock so it does not start meanwhile.
    return isRunning(record) ? work() : this.#ctx.containers.withLock(record.id, work);
  }

  async #stat(view: FsView, path: string, id: string): Promise<{ stat: ContainerPathStat; abs: string }> {
    const located = view.locate(path, false);
    if (!located) throw noSuchPath(path, id);
    const abs = located.rel ? `${located.root}/${located.rel}` : located.root;
    const info = await lstat(abs).catch((err: unknown) => {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') throw noSuchPath(path, id);
      throw err;
    });
    let mode = info.mode & 0o777;
    if (info.mode & 0o4000) mode += goMode.setuid;
    if (info.mode & 0o2000) mode += goMode.setgid;
    if (info.mode & 0o1000) mode += goMode.sticky;
    if (info.isDirectory()) mode += goMode.dir;
    else if (info.isSymbolicLink()) mode += goMode.symlink;
    else if (info.isBlockDevice()) mode += goMode.device;
    else if (info.isCharacterDevice()) mode += goMode.device + goMode.charDevice;
    else if (info.isFIFO()) mode += goMode.namedPipe;
    else if (info.isSocket()) mode += goMode.socket;
    const linkTarget = info.isSymbolicLink() ? await readlink(abs) : '';
    const name = posix.basename(posix.normalize(`/${path}`)) || '/';
    return { stat: { name, size: info.size, mode, mtime: info.mtime.toISOString(), linkTarget }, abs };
  }

  /** `HEAD /containers/{id}/archive`. */
  async statPath(ref: string, path: string): Promise<ContainerPathStat> {
    return this.#withView(ref, async (view, record) => (await this.#stat(view, path, record.id)).stat);
  }

  /** `GET /containers/{id}/archive`: the path as a tar named by its base name, and its stat. */
  async getArchive(ref: string, path: string): Promise<{ readonly stat: ContainerPathStat; readonly archive: Readable }> {
    const record = await this.#lifecycle.get(ref);
    const view = await this.#view(record);
    let released = false;
    const release = async () => {
      if (released) return;
      released = true;
      await view.release();
    };
    try {
      const { stat: info, abs } = await this.#stat(view, path, record.id);
      // `dir/.` archives the directory's content under `./`, as docker does.
      const dotted = /\/\.$/.test(path) || path === '.';
      const cwd = dotted ? abs : posix.dirname(abs);
      const member = dotted ? '.' : posix.basename(abs);
      const wanted = dotted ? '.' : info.name;
      // GNU tar archives symlinks as symlinks and follows none inside the tree.
      const args = ['--xattrs', '--numeric-owner', '-C', cwd, '-cf', '-', ...(member !== wanted ? [`--transform=s,^${escapeSed(member)},${escapeSed(wanted)},`] : []), '--', member];
      const child = spawn('tar', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      // Not tar's stdout itself: node drains a child's unread stdout when the child exits, so a
      // consumer that starts reading after tar has finished would get nothing.
      const archive = new PassThrough();
      child.stdout.pipe(archive, { end: false });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (code) => {
        void release();
        // GNU tar's 1 is "some files changed while read" (a running container's logs): the archive is whole.
        if (code === 0 || code === 1) archive.end();
        else archive.destroy(engineError(`tar of ${path} in container ${record.id} failed: ${stderr.trim() || `exit status ${code}`}`, EngineErrorCode.ArchiveFailed, ErrorKind.Internal));
      });
      // A consumer that stops early ends tar, which releases the view.
      archive.on('close', () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGKILL');
        child.stdout.destroy();
      });
      return { stat: info, archive };
    } catch (err) {
      await release();
      throw err;
    }
  }

  /** `PUT /containers/{id}/archive`: extracts a tar into the directory `path`, never outside it. */
  async putArchive(ref: string, path: string, archive: Readable, options: CallOptions & { readonly noOverwriteDirNonDir?: boolean; readonly copyUIDGID?: boolean } = {}): Promise<void> {
    await this.#withView(ref, async (view, record) => {
      if (record.hostConfig.ReadonlyRootfs && !record.mounts.some((m) => m.rw && (path === m.destination || path.startsWith(`${m.destination}/`)))) {
        throw engineError('container rootfs is marked read-only', EngineErrorCode.InvalidParameter, ErrorKind.PermissionDenied);
      }
      const located = view.locate(path, true);
      if (!located) {
        const last = view.locate(path, false);
        const exists = last && (await lstat(last.rel ? `${last.root}/${last.rel}` : last.root).then(() => true, () => false));
        throw exists ? invalidParameter('extraction point is not a directory') : noSuchPath(path, record.id);
      }
      const abs = located.rel ? `${located.root}/${located.rel}` : located.root;
      const info = await stat(abs).catch(() => undefined);
      if (!info) throw noSuchPath(path, record.id);
      if (!info.isDirectory()) throw invalidParameter('extraction point is not a directory');
      await unpackLayer({
        source: archive,
        target: abs,
        mode: UnpackMode.Copy,
        sameOwner: options.copyUIDGID ?? false,
        logger: this.#ctx.logger,
        ...(options.signal ? { signal: options.signal } : {}),
      });
    });
  }

  /** `GET /containers/{id}/changes`: what the container changed against its image. */
  async changes(ref: string, options: CallOptions = {}): Promise<FilesystemChange[]> {
    const record = await this.#lifecycle.get(ref);
    const snapshotter = await this.#ctx.snapshotter();
    const info = await snapshotter.stat(record.snapshotKey);
    await mkdir(this.#ctx.layout.runRoot, { recursive: true });
    const lowerDir = info?.parent ? await mkdtemp(`${this.#ctx.layout.runRoot}/lower-`) : undefined;
    if (lowerDir) await mountAll(await snapshotter.view(info!.parent!), lowerDir);
    try {
      const diff = await snapshotter.diff(record.snapshotKey, { compression: 'none', ...(options.signal ? { signal: options.signal } : {}) });
      const out: FilesystemChange[] = [];
      const reader = new TarReader(async (entry) => {
        const clean = posix.normalize(`/${entry.path}`).replace(/\/$/, '') || '/';
        const base = posix.basename(clean);
        if (base === '.wh..wh..opq') return;
        if (base.startsWith('.wh.')) {
          out.push({ Path: posix.join(posix.dirname(clean), base.slice(4)), Kind: 2 });
          return;
        }
        const existed = lowerDir ? await lstat(`${lowerDir}${clean}`).then(() => true, () => false) : false;
        out.push({ Path: clean, Kind: existed ? 0 : 1 });
      });
      await pipeline(diff.stream, reader);
      await diff.result;
      return out.filter((c) => c.Path !== '/');
    } finally {
      if (lowerDir) {
        await unmount(lowerDir).catch(() => {});
        await rm(lowerDir, { recursive: true, force: true });
      }
    }
  }

  /** `GET /containers/{id}/export`: the container's root file system as a tar. */
  async export(ref: string, options: CallOptions = {}): Promise<Readable> {
    const record = await this.#lifecycle.get(ref);
    const stream = await (await this.#ctx.snapshotter()).export(record.snapshotKey, options.signal ? { signal: options.signal } : {});
    await this.#ctx.events.append({ Type: 'container', Action: 'export', Actor: { ID: record.id, Attributes: { image: record.config.Image ?? record.image, name: record.name } } });
    return stream;
  }

  /** `POST /commit`: the container's changes as a new layer on its image, with its config. */
  async commit(options: CommitOptions): Promise<IdResponse> {
    const signal = options.signal;
    const record = await this.#lifecycle.get(options.container);
    const pause = (options.pause ?? true) && record.state.status === 'running';
    if (pause) await this.#ctx.runtime.pause(record.id);
    try {
      const images = this.#ctx.images;
      const base = await images.inspect(record.image, signal ? { signal } : {}).catch((err: unknown) => {
        if (hasKind(err, 'NotFound')) throw engineError(`the image of container ${record.id} (${record.image}) is gone: it cannot be committed`, EngineErrorCode.ImageNotFound, ErrorKind.NotFound);
        throw err;
      });
      const snapshotter = await this.#ctx.snapshotter();
      return await images.withLease(async (lease) => {
        const diff = await snapshotter.diff(record.snapshotKey, { compression: 'gzip', ...(signal ? { signal } : {}) });
        const written = await lease.writeBlob(diff.stream);
        const result = await diff.result;
        const c = record.config;
        const carried = {
          ...(c.User ? { User: c.User } : {}),
          ...(c.ExposedPorts ? { ExposedPorts: c.ExposedPorts } : {}),
          ...(c.Env ? { Env: c.Env } : {}),
          ...(c.Entrypoint ? { Entrypoint: c.Entrypoint } : {}),
          ...(c.Cmd ? { Cmd: c.Cmd } : {}),
          ...(c.Volumes ? { Volumes: c.Volumes } : {}),
          ...(c.WorkingDir ? { WorkingDir: c.WorkingDir } : {}),
          ...(c.Labels && Object.keys(c.Labels).length ? { Labels: c.Labels } : {}),
          ...(c.StopSignal ? { StopSignal: c.StopSignal } : {}),
          ...(c.Healthcheck ? { Healthcheck: c.Healthcheck } : {}),
          ...(c.OnBuild?.length ? { OnBuild: c.OnBuild } : {}),
          ...(c.Shell?.length ? { Shell: c.Shell } : {}),
          ...(options.config ?? {}),
        };
        const runConfig = applyImageChanges(carried as ImageConfig['config'], options.changes ?? []);
        const created = nowRfc3339();
        const config: ImageConfig = {
          ...base.config,
          created,
          ...(options.author ? { author: options.author } : {}),
          ...(options.comment ? { comment: options.comment } : {}),
          container: record.id,
          config: runConfig,
          rootfs: { type: 'layers', diff_ids: [...base.config.rootfs.diff_ids, result.diffId] },
          history: [
            ...(base.config.history ?? []),
            {
              created,
              created_by: [record.path, ...record.args].join(' '),
              ...(options.author ? { author: options.author } : {}),
              ...(options.comment ? { comment: options.comment } : {}),
            },
          ],
        };
        const configBytes = Buffer.from(JSON.stringify(config));
        const configDescriptor: Descriptor = { mediaType: MediaType.OciConfig, digest: digestOf(configBytes), size: configBytes.length };
        await lease.content.put(configBytes, configDescriptor);
        const manifest: ImageManifest = {
          schemaVersion: 2,
          mediaType: MediaType.OciManifest,
          config: configDescriptor,
          layers: [...base.manifest.layers, { mediaType: result.mediaType, digest: written.digest, size: written.size }],
        };
        const manifestBytes = Buffer.from(JSON.stringify(manifest));
        const target: Descriptor = { mediaType: MediaType.OciManifest, digest: digestOf(manifestBytes), size: manifestBytes.length };
        await lease.content.put(manifestBytes, target);
        const name = options.repo ? `${options.repo}:${options.tag || 'latest'}` : undefined;
        await images.add({ target, ...(name ? { names: [name] } : {}), ...(signal ? { signal } : {}) });
        const id = configDescriptor.digest;
        // Keep the committed layer unpacked for containers made from the new image.
        await snapshotter.unpack({ content: images.content, layers: manifest.layers, diffIds: config.rootfs.diff_ids as Digest[] }).catch(() => undefined);
        await this.#ctx.events.append({ Type: 'container', Action: 'commit', Actor: { ID: record.id, Attributes: { comment: options.comment ?? '', image: record.config.Image ?? record.image, imageID: id, name: record.name } } });
        return { Id: id };
      }, signal ? { signal } : {});
    } finally {
      if (pause) await this.#ctx.runtime.resume(record.id).catch(() => {});
    }
  }
}

function escapeSed(text: string): string {
  return text.replace(/[\\,.*[\]^$]/g, '\\$&');
}

/** Resolves `path` inside `root` (see RootResolver); the last component is followed only when asked. */
function resolveIn(root: string, path: string, followLast: boolean): Located | undefined {
  try {
    return resolveInRoot(root, path, followLast);
  } catch (err) {
    // A component that is a file: nothing can be below it.
    if (hasKind(err, 'InvalidArgument')) return undefined;
    throw err;
  }
}

function resolveInRoot(root: string, path: string, followLast: boolean): Located | undefined {
  const resolver = new RootResolver(root);
  const parts = posix.normalize(`/${path}`).split('/').filter(Boolean);
  if (parts.length === 0) return { root, rel: '' };
  if (followLast) {
    const rel = resolver.resolveDir(parts);
    return rel === undefined ? undefined : { root, rel };
  }
  const dir = resolver.resolveDir(parts.slice(0, -1));
  if (dir === undefined) return undefined;
  return { root, rel: dir ? `${dir}/${parts.at(-1)}` : parts.at(-1)! };
}
