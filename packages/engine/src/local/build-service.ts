import { execFile } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import type { BuildNetwork, BuildNetworkAttachment } from '@berth/builder';
import type { RegistryClient } from '@berth/registry';
import type { BuildCachePruneResponse, BuildCacheRecord, BuildOptions } from '../types/image.js';
import type { CallOptions, Filters, JsonMessage } from '../types/common.js';
import { invalidParameter } from './docker-errors.js';
import { untilToNanos } from './docker-time.js';
import { dnsSettings, type DnsDefaults } from './container-lifecycle.js';
import type { EngineContext } from './engine-context.js';
import type { ImageService } from './image-service.js';

const run = promisify(execFile);

/** What a build needs from the rest of the engine. */
export interface BuildServiceOptions {
  readonly images: ImageService;
  /** Snapshot keys containers hold, which garbage collection after a prune must keep. */
  readonly containerSnapshots: () => Promise<readonly string[]>;
  /** The engine's DNS settings, which RUN containers get as every container does. */
  readonly dns?: DnsDefaults;
}

/**
 * `engine build` and the build cache: the builder's executor over the engine's store,
 * snapshotter and runtime, RUN containers on the default bridge (a network namespace of their
 * own, plugged in and out by the network manager), base images pulled through the registry
 * client with the build's credentials.
 */
export class BuildService {
  readonly #ctx: EngineContext;
  readonly #options: BuildServiceOptions;

  constructor(ctx: EngineContext, options: BuildServiceOptions) {
    this.#ctx = ctx;
    this.#options = options;
  }

  get #workDir(): string {
    return join(this.#ctx.layout.runRoot, 'builder');
  }

  get #cacheRoot(): string {
    return this.#ctx.layout.buildCache;
  }

  /** RUN containers on `default`: a namespace of their own on the default bridge, as docker's classic builder gives them. */
  #bridge(): BuildNetwork {
    return {
      attach: async (containerId, { signal }): Promise<BuildNetworkAttachment> => {
        const network = this.#ctx.network();
        const name = `berth-build-${containerId.slice(0, 16)}`;
        const path = `/run/netns/${name}`;
        await run('ip', ['netns', 'add', name]);
        const etcDir = join(this.#workDir, 'etc', containerId);
        const release = async () => {
          await network.releaseContainer({ containerId }).catch(() => {});
          await run('ip', ['netns', 'del', name]).catch(() => {});
          await rm(etcDir, { recursive: true, force: true });
        };
        try {
          await network.connect({ containerId, containerName: containerId.slice(0, 12), netnsPath: path, network: 'bridge', ...(signal ? { signal } : {}) });
          const files = await network.containerFiles({ containerId, hostname: containerId.slice(0, 12), mode: 'bridge', ...dnsSettings({}, this.#options.dns), ...(signal ? { signal } : {}) });
          await mkdir(etcDir, { recursive: true });
          const hosts = join(etcDir, 'hosts');
          const resolvConf = join(etcDir, 'resolv.conf');
          await Promise.all([writeFile(hosts, files.hosts), writeFile(resolvConf, files.resolvConf)]);
          return { namespace: { path }, etc: { hosts, resolvConf }, release };
        } catch (err) {
          await release();
          throw err;
        }
      },
    };
  }

  /**
   * `POST /build`: docker's classic-builder messages; a failure is thrown (its exit code kept).
   * A context of the builder's `directoryContext` (the daemonless CLI's) is read from its
   * directory, never packed.
   */
  async *build(context: Readable, options: BuildOptions & CallOptions = {}): AsyncGenerator<JsonMessage> {
    const { buildImage, contextDirectoryOf } = await import('@berth/builder');
    const directory = contextDirectoryOf(context);
    const network = options.networkMode || 'default';
    if (!['default', 'bridge', 'none', 'host'].includes(network)) throw invalidParameter(`network mode "${network}" is not supported for builds: use default, bridge, none or host`);
    await mkdir(this.#workDir, { recursive: true });
    let registry: { client: RegistryClient; done: () => Promise<void> } | undefined;
    const buildArgs = Object.fromEntries(Object.entries(options.buildArgs ?? {}).filter((e): e is [string, string] => e[1] !== null));
    const operation = buildImage({
      ...(directory
        ? { context: { dir: directory.dir }, ...(directory.dockerfile ? { dockerfile: directory.dockerfile } : {}) }
        : { context: { tar: context }, ...(options.dockerfile ? { dockerfile: options.dockerfile } : {}) }),
      ...(options.tags?.length ? { tags: options.tags } : {}),
      buildArgs,
      ...(options.target ? { target: options.target } : {}),
      ...(options.labels ? { labels: options.labels } : {}),
      ...(options.noCache ? { noCache: true } : {}),
      ...(options.pull ? { pull: true } : {}),
      ...(options.quiet ? { quiet: true } : {}),
      ...(options.platform ? { platform: options.platform } : {}),
      network: network === 'bridge' ? 'default' : (network as 'default' | 'none' | 'host'),
      ...(options.extraHosts?.length ? { extraHosts: options.extraHosts } : {}),
      runLimits: {
        ...(options.memory ? { memory: options.memory } : {}),
        ...(options.memorySwap ? { memorySwap: options.memorySwap } : {}),
        ...(options.cpuShares ? { cpuShares: options.cpuShares } : {}),
        ...(options.cpuSetCpus ? { cpusetCpus: options.cpuSetCpus } : {}),
        ...(options.cpuPeriod ? { cpuPeriod: options.cpuPeriod } : {}),
        ...(options.cpuQuota ? { cpuQuota: options.cpuQuota } : {}),
        ...(options.shmSize ? { shmSize: options.shmSize } : {}),
      },
      images: this.#ctx.images,
      snapshotter: await this.#ctx.snapshotter(),
      runtime: this.#ctx.runtime,
      registry: async () => {
        registry ??= await this.#options.images.buildClient(options.authConfigs);
        return registry.client;
      },
      buildNetwork: this.#bridge(),
      workDir: this.#workDir,
      cacheRoot: this.#cacheRoot,
      logger: this.#ctx.logger,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    try {
      for await (const message of operation) yield message as JsonMessage;
      const result = await operation.result;
      for (const name of result.tags) await this.#ctx.events.append({ Type: 'image', Action: 'tag', Actor: { ID: result.imageId, Attributes: { name } } });
    } finally {
      await registry?.done();
    }
  }

  /** Build cache records as `system df` lists them. */
  async records(options: CallOptions = {}): Promise<BuildCacheRecord[]> {
    const { listBuildCache } = await import('@berth/builder');
    const records = await listBuildCache({ images: this.#ctx.images, cacheRoot: this.#cacheRoot, ...(options.signal ? { signal: options.signal } : {}) });
    return records.map((r) => ({
      ID: r.id,
      Type: r.type,
      Description: r.description,
      InUse: false,
      Shared: false,
      Size: r.size,
      CreatedAt: r.lastUsed.toISOString(),
      LastUsedAt: r.lastUsed.toISOString(),
      UsageCount: 0,
    }));
  }

  /** `POST /build/prune`: records (and with `all` the RUN cache mounts), then what only they kept. */
  async prune(options: CallOptions & { readonly all?: boolean; readonly filters?: Filters } = {}): Promise<BuildCachePruneResponse> {
    for (const key of Object.keys(options.filters ?? {})) if (!['until', 'type', 'id', 'description', 'inuse', 'shared', 'private'].includes(key)) throw invalidParameter(`invalid filter '${key}'`);
    const { pruneBuildCache } = await import('@berth/builder');
    const until = options.filters?.['until']?.[0];
    const result = await pruneBuildCache({
      images: this.#ctx.images,
      cacheRoot: this.#cacheRoot,
      ...(options.all ? { all: true } : {}),
      ...(until ? { until: new Date(Number(untilToNanos(until) / 1_000_000n)) } : {}),
      gc: { snapshots: await this.#ctx.snapshotter(), keepSnapshots: await this.#options.containerSnapshots() },
      ...(options.signal ? { signal: options.signal } : {}),
    });
    return { CachesDeleted: result.removed.length ? [...result.removed] : null, SpaceReclaimed: result.reclaimedBytes };
  }
}
