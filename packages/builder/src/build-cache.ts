import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { throwIfAborted } from '@berth/errors';
import { chainIds, parseDigest, parseImageConfig, parseManifest, type Digest } from '@berth/oci';
import type { GcOptions, ImageStore } from '@berth/store';
import type { ImageState } from './image-state.js';

/** The GC-root group the build cache files its step images under (`<root>/roots/build-cache/`). */
export const buildCacheGroup = 'build-cache';

/** Annotations a cache record carries on its root descriptor. */
export const BuildCacheAnnotation = {
  /** The step's history text (`RUN make`). */
  Step: 'io.berth.build.step',
  /** Bytes of the layer the step added (absent for a metadata step). */
  LayerSize: 'io.berth.build.layer-size',
} as const;

function keyName(key: Digest): string {
  return parseDigest(key).hex;
}

/**
 * The persistent layer cache of builds: one record per step key, the manifest of the image
 * that step produced, filed as a GC root of the image store so that garbage collection keeps
 * its config, layers and snapshots until `pruneBuildCache` removes the record. Records live
 * under the store root and serve every later build, in any process.
 */
export class BuildCache {
  readonly #images: ImageStore;

  constructor(options: { readonly images: ImageStore }) {
    this.#images = options.images;
  }

  /**
   * The image a step with `key` produced before, or undefined. A record whose blobs are gone
   * (another tool removed them) is dropped. Only layers beyond `parentLayers` are checked:
   * the parent's are known present.
   */
  async lookup(key: Digest, parentLayers: number, signal?: AbortSignal): Promise<ImageState | undefined> {
    throwIfAborted(signal);
    const name = keyName(key);
    const root = await this.#images.roots.get(buildCacheGroup, name);
    if (!root) return undefined;
    const content = this.#images.content;
    try {
      const parsed = parseManifest(await content.readBytes(root.digest), root.mediaType);
      if (parsed.kind !== 'manifest') return undefined;
      const manifest = parsed.manifest;
      const config = parseImageConfig(await content.readBytes(manifest.config.digest));
      for (const layer of manifest.layers.slice(parentLayers)) {
        if (!(await content.stat(layer.digest))) throw new Error(`layer ${layer.digest} is gone`);
      }
      await this.#images.roots.touch(buildCacheGroup, name);
      const { annotations: _annotations, ...descriptor } = root;
      return {
        config,
        id: manifest.config.digest,
        manifest: descriptor,
        layers: manifest.layers,
        chainId: chainIds(config.rootfs.diff_ids).at(-1),
      };
    } catch {
      await this.#images.roots.delete(buildCacheGroup, name);
      return undefined;
    }
  }

  /** Records that the step with `key` produced `state` (whose blobs must be stored and leased). */
  async record(key: Digest, state: ImageState, info: { readonly step: string; readonly layerSize?: number }, signal?: AbortSignal): Promise<void> {
    if (!state.manifest) return;
    await this.#images.roots.set(
      buildCacheGroup,
      keyName(key),
      {
        ...state.manifest,
        annotations: {
          [BuildCacheAnnotation.Step]: info.step,
          ...(info.layerSize !== undefined ? { [BuildCacheAnnotation.LayerSize]: String(info.layerSize) } : {}),
        },
      },
      { durable: false, ...(signal ? { signal } : {}) },
    );
  }
}

/** One record of the build cache, as `system df` and `builder prune` list them. */
export interface BuildCacheRecord {
  /** The step key's hex. */
  readonly id: string;
  /** `regular` for a step, `exec.cachemount` for a RUN cache mount (docker's types). */
  readonly type: 'regular' | 'exec.cachemount';
  readonly description: string;
  readonly size: number;
  readonly lastUsed: Date;
}

/** Options of `listBuildCache` and `pruneBuildCache`. */
export interface BuildCacheOptions {
  readonly images: ImageStore;
  /** The builder's directory for RUN cache mounts (default `<store root>/builder`). */
  readonly cacheRoot?: string;
  readonly signal?: AbortSignal;
}

async function directorySize(path: string): Promise<number> {
  let total = 0;
  const walk = async (p: string): Promise<void> => {
    let info;
    try {
      info = await stat(p);
    } catch {
      return;
    }
    total += info.isFile() ? info.size : 0;
    if (info.isDirectory()) for (const name of await readdir(p).catch(() => [] as string[])) await walk(join(p, name));
  };
  await walk(path);
  return total;
}

/** Every step record and cache mount of the build cache, with sizes. */
export async function listBuildCache(options: BuildCacheOptions): Promise<BuildCacheRecord[]> {
  const out: BuildCacheRecord[] = [];
  for (const root of await options.images.roots.list(buildCacheGroup)) {
    throwIfAborted(options.signal);
    const a = root.descriptor.annotations ?? {};
    out.push({ id: root.name, type: 'regular', description: a[BuildCacheAnnotation.Step] ?? '', size: Number(a[BuildCacheAnnotation.LayerSize] ?? 0), lastUsed: root.modified });
  }
  const mounts = join(options.cacheRoot ?? join(options.images.root, 'builder'), 'mounts');
  for (const name of await readdir(mounts).catch(() => [] as string[])) {
    const path = join(mounts, name);
    const info = await stat(path).catch(() => undefined);
    if (!info?.isDirectory()) continue;
    out.push({ id: name, type: 'exec.cachemount', description: 'cached mount', size: await directorySize(path), lastUsed: info.mtime });
  }
  return out;
}

/** Options of `pruneBuildCache`. */
export interface PruneBuildCacheOptions extends BuildCacheOptions {
  /** Only records last used before this time (docker's `--filter until=`). */
  readonly until?: Date;
  /** Also remove the RUN cache mounts (docker's `builder prune --all` removes every kind of cache). */
  readonly all?: boolean;
  /**
   * Collect what the removed records kept, with these GC options (pass the snapshotter and the
   * containers' snapshot keys as for image removal); `false` leaves it to the next collection.
   */
  readonly gc?: Omit<GcOptions, 'signal'> | false;
}

/** What `pruneBuildCache` removed. */
export interface PruneBuildCacheResult {
  readonly removed: readonly string[];
  readonly reclaimedBytes: number;
}

/**
 * `builder prune`: removes build cache records (those last used before `until`, or all) and,
 * with `all`, the RUN cache mounts, then lets garbage collection free what only they kept.
 */
export async function pruneBuildCache(options: PruneBuildCacheOptions): Promise<PruneBuildCacheResult> {
  const removed: string[] = [];
  let reclaimed = 0;
  for (const record of await listBuildCache(options)) {
    throwIfAborted(options.signal);
    if (options.until && record.lastUsed >= options.until) continue;
    if (record.type === 'regular') {
      if (await options.images.roots.delete(buildCacheGroup, record.id)) removed.push(record.id);
    } else if (options.all) {
      await rm(join(options.cacheRoot ?? join(options.images.root, 'builder'), 'mounts', record.id), { recursive: true, force: true });
      removed.push(record.id);
      reclaimed += record.size;
    }
  }
  if (options.gc !== false) {
    const result = await options.images.gc({ ...(options.gc ?? {}), ...(options.signal ? { signal: options.signal } : {}) });
    reclaimed += result.reclaimedBytes;
  }
  return { removed, reclaimedBytes: reclaimed };
}
