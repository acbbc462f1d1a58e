import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { errnoCode } from '@berth/errors';
import { readJsonFile, withFileLock, writeJsonAtomic } from '@berth/fsutil';
import type { Labels } from '../types/common.js';
import type { Volume } from '../types/volume.js';
import { inUse, invalidParameter, noSuchVolume } from './docker-errors.js';
import { nowRfc3339 } from './docker-time.js';

const run = promisify(execFile);

/** True when `dir` is the root of a mount (its device differs from its parent's). */
async function isMountPoint(dir: string): Promise<boolean> {
  const [mine, parent] = await Promise.all([stat(dir).catch(() => undefined), stat(join(dir, '..')).catch(() => undefined)]);
  return !!mine && !!parent && mine.dev !== parent.dev;
}

/** docker's label on anonymous volumes (API 1.42+ prunes only those by default). */
export const anonymousVolumeLabel = 'com.docker.volume.anonymous';

const namePattern = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
const localOptions = new Set(['type', 'device', 'o']);

/** What `volume.json` holds. */
interface VolumeFile {
  readonly name: string;
  readonly createdAt: string;
  readonly labels: Labels;
  readonly options: Labels;
}

/** Options of `VolumeStore.create`. */
export interface CreateVolumeOptions {
  /** Empty or absent: a random 64-hex name (an anonymous volume when `anonymous`). */
  readonly name?: string;
  readonly driver?: string;
  readonly driverOpts?: Labels;
  readonly labels?: Labels;
  readonly anonymous?: boolean;
}

/**
 * Named volumes of the `local` driver: `volumes/<name>/_data` is the content and
 * `volumes/<name>/volume.json` the metadata, written atomically; `volumes/<name>` appears by a
 * rename, so a volume exists whole or not at all. Which containers use a volume is not kept
 * here: the container records say it, and the engine passes that in.
 */
export class VolumeStore {
  readonly #dir: string;

  constructor(dir: string) {
    this.#dir = dir;
  }

  /** The host directory a volume's content lives in. */
  dataPath(name: string): string {
    return join(this.#dir, name, '_data');
  }

  #lockPath(name: string): string {
    return join(this.#dir, `.${name}.lock`);
  }

  /** Creates a volume, or returns the existing one of that name as docker does. */
  async create(options: CreateVolumeOptions): Promise<{ volume: Volume; created: boolean }> {
    const driver = options.driver || 'local';
    if (driver !== 'local') throw invalidParameter(`create ${options.name ?? ''}: error looking up volume plugin ${driver}: plugin "${driver}" not found`);
    const name = options.name || randomBytes(32).toString('hex');
    if (!namePattern.test(name)) {
      throw invalidParameter(
        name.length < 2
          ? `create ${name}: volume name is too short, names should be at least two alphanumeric characters`
          : `create ${name}: "${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`,
      );
    }
    const opts = options.driverOpts ?? {};
    for (const key of Object.keys(opts)) {
      if (!localOptions.has(key)) throw invalidParameter(`create ${name}: invalid option: "${key}"`);
    }
    if ((opts['type'] || opts['o']) && !opts['device']) throw invalidParameter(`create ${name}: missing required option: "device"`);
    await mkdir(this.#dir, { recursive: true });
    return withFileLock(this.#lockPath(name), async () => {
      const existing = await this.tryInspect(name);
      if (existing) return { volume: existing, created: false };
      const temp = join(this.#dir, `.new-${name}-${randomBytes(4).toString('hex')}`);
      await mkdir(join(temp, '_data'), { recursive: true, mode: 0o755 });
      const labels = { ...(options.labels ?? {}), ...(options.anonymous ? { [anonymousVolumeLabel]: '' } : {}) };
      const file: VolumeFile = { name, createdAt: nowRfc3339(), labels, options: opts };
      try {
        await writeJsonAtomic(join(temp, 'volume.json'), file);
        await rename(temp, join(this.#dir, name));
      } catch (err) {
        await rm(temp, { recursive: true, force: true });
        throw err;
      }
      return { volume: this.#toVolume(file), created: true };
    });
  }

  #toVolume(file: VolumeFile): Volume {
    return {
      Name: file.name,
      Driver: 'local',
      Mountpoint: this.dataPath(file.name),
      CreatedAt: file.createdAt,
      Labels: file.labels,
      Scope: 'local',
      Options: Object.keys(file.options).length ? file.options : null,
    };
  }

  async tryInspect(name: string): Promise<Volume | undefined> {
    if (!namePattern.test(name)) return undefined;
    const file = await readJsonFile<VolumeFile>(join(this.#dir, name, 'volume.json')).catch((err: unknown) => {
      if (errnoCode(err) === 'ENOTDIR') return undefined;
      throw err;
    });
    return file ? this.#toVolume(file) : undefined;
  }

  async inspect(name: string): Promise<Volume> {
    const volume = await this.tryInspect(name);
    if (!volume) throw noSuchVolume(name);
    return volume;
  }

  async list(): Promise<Volume[]> {
    let names: string[];
    try {
      names = (await readdir(this.#dir)).filter((n) => namePattern.test(n));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return [];
      throw err;
    }
    const volumes = await Promise.all(names.map((n) => this.tryInspect(n)));
    return volumes.filter((v): v is Volume => v !== undefined).sort((a, b) => (a.Name < b.Name ? -1 : 1));
  }

  /**
   * Removes a volume and its content. `usersOf` is asked under the volume's lock, so a volume is
   * not removed while a container is being created with it by this process.
   */
  async remove(name: string, usersOf: () => Promise<readonly string[]>): Promise<void> {
    await withFileLock(this.#lockPath(name), async () => {
      if (!(await this.tryInspect(name))) throw noSuchVolume(name);
      const users = await usersOf();
      if (users.length) {
        throw inUse(`remove ${name}: volume is in use - [${users.join(', ')}]`);
      }
      const data = this.dataPath(name);
      if (await isMountPoint(data)) await run('umount', [data]).catch(() => run('umount', ['-l', data]));
      const doomed = join(this.#dir, `.gone-${name}-${randomBytes(4).toString('hex')}`);
      await rename(join(this.#dir, name), doomed);
      await rm(doomed, { recursive: true, force: true });
    });
  }

  /**
   * Mounts a volume made with the local driver's `type`/`device`/`o` options on its `_data`
   * (`--opt type=tmpfs --opt device=tmpfs --opt o=size=64m`), once; plain volumes need nothing.
   */
  async mountIfNeeded(name: string): Promise<void> {
    const file = await readJsonFile<VolumeFile>(join(this.#dir, name, 'volume.json'));
    if (!file?.options['device']) return;
    await withFileLock(this.#lockPath(name), async () => {
      const data = this.dataPath(name);
      if (await isMountPoint(data)) return;
      const o = file.options;
      const args = [...(o['type'] ? ['-t', o['type']] : []), ...(o['o'] ? ['-o', o['o']] : []), o['device']!, data];
      try {
        await run('mount', args);
      } catch (err) {
        throw invalidParameter(`error while mounting volume '${data}': ${(err as { stderr?: string }).stderr?.trim() || String(err)}`, err);
      }
    });
  }

  /** Bytes used by a volume's content (du-like: regular files' sizes, each inode once). */
  async size(name: string): Promise<number> {
    const seen = new Set<string>();
    const walk = async (dir: string): Promise<number> => {
      let total = 0;
      let entries: string[];
      try {
        entries = await readdir(dir);
      } catch {
        return 0;
      }
      for (const entry of entries) {
        const path = join(dir, entry);
        const info = await lstat(path).catch(() => undefined);
        if (!info) continue;
        if (info.isDirectory()) total += await walk(path);
        else if (!seen.has(`${info.dev}:${info.ino}`)) {
          seen.add(`${info.dev}:${info.ino}`);
          total += info.size;
        }
      }
      return total;
    };
    return walk(this.dataPath(name));
  }
}
