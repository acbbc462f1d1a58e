import { constants, createWriteStream } from 'node:fs';
import { access, mkdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorKind } from '@berth/errors';
import { createJsonLogger, noopLogger, type Logger } from '@berth/log';
import { NetworkManager, type NetworkManagerOptions } from '@berth/network';
import { Runtime, initBinary, type RuntimeName } from '@berth/runtime';
import type { Snapshotter } from '@berth/snapshot';
import { ImageStore } from '@berth/store';
import type { Readable } from 'node:stream';
import {
  EngineErrorCode,
  engineError,
  type AttachOptions,
  type CommitOptions,
  type ContainerSupervisor,
  type ContainerWait,
  type Engine,
  type ImportOptions,
  type ListContainersOptions,
  type LogsOptions,
  type PullOptions,
  type PushOptions,
  type RemoveContainerOptions,
} from '../engine.js';
import type { AuthConfig, CallOptions, Filters, IdResponse, JsonMessage, TerminalSize } from '../types/common.js';
import type {
  ContainerCreateRequest,
  ContainerCreateResponse,
  ContainerInspectResponse,
  ContainerPathStat,
  ContainerPruneResponse,
  ContainerStatsResponse,
  ContainerSummary,
  ContainerTopResponse,
  ContainerUpdateRequest,
  ContainerUpdateResponse,
  FilesystemChange,
  WaitCondition,
} from '../types/container.js';
import type { ExecConfig, ExecInspectResponse, ExecStartConfig } from '../types/exec.js';
import type {
  BuildCachePruneResponse,
  BuildOptions,
  HistoryResponseItem,
  ImageDeleteResponseItem,
  ImageInspect,
  ImagePruneResponse,
  ImageSummary,
} from '../types/image.js';
import type {
  Network,
  NetworkConnectRequest,
  NetworkCreateRequest,
  NetworkCreateResponse,
  NetworkDisconnectRequest,
  NetworkPruneResponse,
} from '../types/network.js';
import type { ContainerOutput, ContainerStream } from '../types/stream.js';
import type { AuthResponse, EventMessage, PingResponse, SystemDataUsage, SystemInfo, SystemVersion } from '../types/system.js';
import type { Volume, VolumeCreateRequest, VolumeListResponse, VolumePruneResponse } from '../types/volume.js';
import { filterContainers } from './container-filters.js';
import { ContainerIo } from './container-io.js';
import { validateHostConfig } from './container-config.js';
import { ContainerLifecycle, type DnsDefaults } from './container-lifecycle.js';
import { ContainerStore } from './container-store.js';
import { LocalSupervisor, needsSupervision } from './container-supervisor.js';
import { inspectView, summaryView } from './container-view.js';
import type { EngineContext } from './engine-context.js';
import { EventJournal } from './event-journal.js';
import { RecordWatch } from './record-watch.js';
import { parseRegistryMirror } from './registry-mirror.js';
import { StateLayout } from './state-layout.js';
import { maxApiVersion } from '../api/api-version.js';
import { BuildService } from './build-service.js';
import { ContainerFilesystem } from './container-filesystem.js';
import { ContainerProcesses } from './container-processes.js';
import { ExecService } from './exec-service.js';
import { ImageService } from './image-service.js';
import { NetworkService } from './network-service.js';
import { SystemService } from './system-service.js';
import { VolumeService } from './volume-service.js';
import { VolumeStore } from './volume-store.js';

/** Settings of the network manager the local engine makes (names, subnets and tags tests and hosts choose). */
export type LocalNetworkOptions = Omit<NetworkManagerOptions, 'stateDir' | 'logger'>;

/** Options of `LocalEngine`. The apps read files and the environment and pass the result here. */
export interface LocalEngineOptions {
  /** The state root (`BERTH_ROOT`, default /var/lib/berth in the apps). */
  readonly root: string;
  /** Runtime state that dies with the host (`BERTH_RUNROOT`, default /run/berth in the apps). */
  readonly runRoot: string;
  readonly logger?: Logger;
  /** `berth-runtime` (default), `runc`, `crun` or a path to a runtime with runc's command line. */
  readonly runtime?: RuntimeName;
  /** Global options for that runtime (`--cgroup-manager=disabled` for crun on a hybrid cgroup host). */
  readonly runtimeArgs?: readonly string[];
  /** `auto` (default: overlay where it works, else copying), `overlay` or `copy`. */
  readonly snapshotDriver?: 'auto' | 'overlay' | 'copy';
  readonly network?: LocalNetworkOptions;
  /** The docker config file holding registry credentials (`~/.docker/config.json`). */
  readonly dockerConfigPath?: string;
  /** Registries reached over plain HTTP (`host:port`), as docker's `--insecure-registry`. */
  readonly insecureRegistries?: readonly string[];
  /**
   * Docker Hub mirrors (dockerd's `--registry-mirror`): `https://` or `http://` URLs of hosts,
   * tried in order before Docker Hub by every pull from it (`pull`, `run`, a build's `FROM`).
   */
  readonly registryMirrors?: readonly string[];
  /** Layer downloads and uploads at once (dockerd's `--max-concurrent-downloads` and `--max-concurrent-uploads`). */
  readonly maxConcurrentDownloads?: number;
  readonly maxConcurrentUploads?: number;
  /** Containers' DNS when they name none (dockerd's `--dns`, `--dns-search`, `--dns-opt`); the host's resolv.conf otherwise. */
  readonly dns?: DnsDefaults;
  /** The log driver (`json-file` or `none`) and options of containers that name no driver (dockerd's `--log-driver`, `--log-opt`). */
  readonly logConfig?: { readonly Type: string; readonly Config?: Readonly<Record<string, string>> };
  /**
   * The init binary `--init` runs as pid 1, statically linked (default: berth-runtime itself,
   * which runs as an init under the name `docker-init`).
   */
  readonly initPath?: string;
  /** `key=value` labels `info` reports (`engine serve --label`). */
  readonly labels?: readonly string[];
  /**
   * How to start the detached supervisor (restart policies, health checks, `--rm` of detached
   * containers while no `engine serve` runs); the path of an options file is appended. Default:
   * this Node binary running this package's `dist/local/supervisor-main.js`. An app bundled into
   * one file passes its own entry that calls `runDetachedSupervisor`.
   */
  readonly supervisorCommand?: readonly string[];
  /** Berth's version, commit and build time, for `version` and `info`. */
  readonly version?: string;
  readonly gitCommit?: string;
  readonly buildTime?: string;
}

/**
 * The runtime: berth-runtime, or runc/crun (or another runc-compatible one) run under
 * berth-runtime's monitor as conmon does for podman, so that logs, attach and exit records work.
 */
function runtimeFor(options: LocalEngineOptions, layout: StateLayout, logger: Logger): Runtime {
  const name = options.runtime ?? 'berth-runtime';
  const args = options.runtimeArgs?.length ? { runtimeArgs: options.runtimeArgs } : {};
  if (basename(name) === 'berth-runtime') return new Runtime({ runtime: name, root: layout.runtimeRoot, logger, ...args });
  return new Runtime({ runtime: name, root: join(layout.runRoot, basename(name)), monitor: true, monitorRoot: layout.runtimeRoot, logger, ...args });
}

function positive(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1) throw engineError(`LocalEngine: ${name} must be a positive integer, not ${value}`, EngineErrorCode.InvalidParameter, ErrorKind.InvalidArgument);
  return value;
}

function required(value: unknown, name: string): string {
  if (typeof value !== 'string' || !value.startsWith('/')) {
    throw engineError(`LocalEngine: ${name} must be an absolute path`, EngineErrorCode.InvalidParameter, ErrorKind.InvalidArgument);
  }
  return value;
}

// From src/local (tests) and dist/local alike, the built entry of this package.
const defaultSupervisorCommand = [process.execPath, fileURLToPath(new URL('../../dist/local/supervisor-main.js', import.meta.url))];

// Where docker's packages put the static tini it runs for --init: used only when this build's
// berth-runtime cannot be one (it was linked dynamically).
const hostInitCandidates = ['/usr/bin/docker-init', '/usr/libexec/docker/docker-init', '/usr/local/bin/docker-init', '/usr/bin/tini-static'];


/**
 * The Engine in-process (daemonless, as podman works): containers, images, volumes, networks
 * and events over the state root, driving the store, snapshotter, runtime and network manager
 * directly. Several LocalEngines (in several processes) may share a root: every change is
 * made under file locks and written atomically. Containers outlive the engine: the runtime's
 * monitor keeps them.
 */
export class LocalEngine implements Engine, ContainerSupervisor {
  readonly options: LocalEngineOptions;
  readonly #ctx: EngineContext;
  readonly #lifecycle: ContainerLifecycle;
  readonly #io: ContainerIo;
  readonly #volumes: VolumeService;
  readonly #images: ImageService;
  readonly #execs: ExecService;
  readonly #networks: NetworkService;
  readonly #fs: ContainerFilesystem;
  readonly #processes: ContainerProcesses;
  readonly #supervisor: LocalSupervisor;
  readonly #builds: BuildService;
  readonly #closing = new AbortController();
  readonly #system: SystemService;
  #snapshotter: Promise<Snapshotter> | undefined;
  #network: NetworkManager | undefined;

  constructor(options: LocalEngineOptions) {
    const root = required(options?.root, 'root');
    const runRoot = required(options.runRoot, 'runRoot');
    this.options = options;
    const logger = (options.logger ?? noopLogger).child({ component: 'engine' });
    const layout = new StateLayout(root, runRoot);
    const mirrors = (options.registryMirrors ?? []).map(parseRegistryMirror);
    if (options.logConfig) {
      if (!['json-file', 'none'].includes(options.logConfig.Type)) {
        throw engineError(`LocalEngine: logConfig.Type ${JSON.stringify(options.logConfig.Type)} is not a log driver: json-file or none`, EngineErrorCode.InvalidParameter, ErrorKind.InvalidArgument);
      }
      validateHostConfig({ LogConfig: { Type: options.logConfig.Type, Config: { ...options.logConfig.Config } } });
    }
    const ctx: EngineContext = {
      layout,
      logger,
      containers: new ContainerStore(layout),
      volumes: new VolumeStore(layout.volumes),
      events: new EventJournal({ dir: layout.events, logger }),
      images: new ImageStore({ root, logger }),
      runtime: runtimeFor(options, layout, logger),
      watch: new RecordWatch(layout.containers),
      closing: this.#closing.signal,
      snapshotter: () => this.#getSnapshotter(),
      network: () => this.#getNetwork(),
    };
    this.#ctx = ctx;
    this.#lifecycle = new ContainerLifecycle(ctx, {
      initPath: () => this.#initPath(),
      ...(options.dns ? { dns: options.dns } : {}),
      ...(options.logConfig ? { logConfig: options.logConfig } : {}),
      onStarted: (record, watchedHere) => {
        if (!needsSupervision(record, watchedHere)) return;
        const { logger: _logger, ...serializable } = this.options;
        void this.#supervisor
          .ensureDetached(this.options.supervisorCommand ?? defaultSupervisorCommand, serializable)
          .catch((err: unknown) => ctx.logger.warn('could not start the supervisor', { error: err }));
      },
    });
    this.#supervisor = new LocalSupervisor(ctx, this.#lifecycle);
    this.#io = new ContainerIo(ctx, this.#lifecycle);
    this.#volumes = new VolumeService(ctx);
    this.#execs = new ExecService(ctx, this.#lifecycle);
    this.#networks = new NetworkService(ctx);
    this.#fs = new ContainerFilesystem(ctx, this.#lifecycle);
    this.#processes = new ContainerProcesses(ctx, this.#lifecycle);
    this.#images = new ImageService(ctx, {
      users: async () => (await this.#lifecycle.listAll()).map((c) => ({ containerId: c.id, imageId: c.image as `sha256:${string}`, running: c.state.status === 'running' || c.state.status === 'paused' })),
      containerSnapshots: async () => (await ctx.containers.list()).map((c) => c.snapshotKey),
      dockerConfigPath: options.dockerConfigPath,
      insecureRegistries: options.insecureRegistries ?? [],
      registryMirrors: mirrors,
      ...(options.maxConcurrentDownloads ? { maxConcurrentDownloads: positive(options.maxConcurrentDownloads, 'maxConcurrentDownloads') } : {}),
      ...(options.maxConcurrentUploads ? { maxConcurrentUploads: positive(options.maxConcurrentUploads, 'maxConcurrentUploads') } : {}),
      userAgent: `Berth/${options.version ?? '0.0.0'}`,
    });
    this.#builds = new BuildService(ctx, {
      images: this.#images,
      containerSnapshots: async () => (await ctx.containers.list()).map((c) => c.snapshotKey),
      ...(options.dns ? { dns: options.dns } : {}),
    });
    this.#system = new SystemService(ctx, {
      version: options.version ?? '0.0.0',
      gitCommit: options.gitCommit ?? '',
      buildTime: options.buildTime ?? '',
      labels: options.labels ?? [],
      insecureRegistries: options.insecureRegistries ?? [],
      registryMirrors: mirrors.map((m) => `${m.insecure ? 'http' : 'https'}://${m.host}/`),
      runtimeName: options.runtime ?? 'berth-runtime',
      initPath: options.initPath ?? 'docker-init',
    });
  }

  #init: Promise<string | undefined> | undefined;

  /** The `--init` binary: the one configured, else berth-runtime's own init, else a host's static docker-init or tini. */
  #initPath(): Promise<string | undefined> {
    this.#init ??= (async () => {
      if (this.options.initPath) return this.options.initPath;
      const own = await initBinary();
      if (own) return own;
      for (const candidate of hostInitCandidates) if (await access(candidate, constants.X_OK).then(() => true, () => false)) return candidate;
      return undefined;
    })();
    return this.#init;
  }

  #getSnapshotter(): Promise<Snapshotter> {
    this.#snapshotter ??= import('@berth/snapshot').then(({ createSnapshotter }) =>
      createSnapshotter({ root: this.#ctx.layout.snapshots, logger: this.#ctx.logger, driver: this.options.snapshotDriver ?? 'auto' }),
    );
    return this.#snapshotter;
  }

  #getNetwork(): NetworkManager {
    this.#network ??= new NetworkManager({ ...(this.options.network ?? {}), stateDir: this.#ctx.layout.network, logger: this.#ctx.logger });
    return this.#network;
  }

  // ---- system --------------------------------------------------------------------------------

  async ping(): Promise<PingResponse> {
    return { apiVersion: maxApiVersion, osType: 'linux', builderVersion: '1', experimental: false };
  }

  async info(_options: CallOptions = {}): Promise<SystemInfo> {
    const containers = await this.#lifecycle.listAll();
    const running = containers.filter((c) => c.state.status === 'running').length;
    const paused = containers.filter((c) => c.state.status === 'paused').length;
    const images = (await this.#ctx.images.list()).length;
    return this.#system.info({ total: containers.length, running, paused, stopped: containers.length - running - paused }, images);
  }

  async version(_options: CallOptions = {}): Promise<SystemVersion> {
    return this.#system.version();
  }

  async dataUsage(options: CallOptions & { readonly types?: readonly string[] } = {}): Promise<SystemDataUsage> {
    const want = (t: string) => !options.types?.length || options.types.includes(t);
    const images = want('image') ? await this.#images.list({ containers: true, ...(options.signal ? { signal: options.signal } : {}) }) : [];
    const containers = want('container') ? await this.listContainers({ all: true, size: true }) : [];
    const volumes = want('volume') ? await this.#volumes.withUsage() : [];
    return {
      LayersSize: images.reduce((sum, i) => sum + i.Size, 0),
      Images: images,
      Containers: containers,
      Volumes: volumes,
      BuildCache: want('build-cache') ? await this.#builds.records(options) : [],
    };
  }

  events(options: CallOptions & { readonly since?: number; readonly until?: number; readonly filters?: Filters } = {}): AsyncIterable<EventMessage> {
    return this.#ctx.events.read(options);
  }

  async login(auth: AuthConfig, options: CallOptions = {}): Promise<AuthResponse> {
    return this.#images.login(auth, options);
  }

  // ---- containers ----------------------------------------------------------------------------

  async createContainer(body: ContainerCreateRequest, options: CallOptions & { readonly name?: string; readonly platform?: string } = {}): Promise<ContainerCreateResponse> {
    return this.#lifecycle.create(body, options);
  }

  async listContainers(options: ListContainersOptions = {}): Promise<ContainerSummary[]> {
    let records = await this.#lifecycle.listAll();
    const filters = options.filters ?? {};
    if (!options.all && !filters['status']?.length) records = records.filter((r) => r.state.status === 'running' || r.state.status === 'paused' || r.state.status === 'restarting');
    records = await filterContainers(records, filters, {
      ancestorIds: async (ref) => {
        const found = await this.#ctx.images.find(ref).catch(() => undefined);
        return found ? [found.id] : [];
      },
      networkId: async (ref) => {
            return (await this.#ctx.network().inspectNetwork(ref).catch(() => undefined))?.id;
      },
    });
    if (options.limit !== undefined && options.limit > 0) records = records.slice(0, options.limit);
    const out: ContainerSummary[] = [];
    for (const r of records) {
      const image = await this.#imageShown(r.config.Image ?? '', r.image);
      const summary = summaryView(r, image);
      if (options.size) {
        const size = await this.#lifecycle.rwSize(r).catch(() => 0);
        out.push({ ...summary, SizeRw: size });
      } else out.push(summary);
    }
    return out;
  }

  /** What ps shows in IMAGE: the reference the container was made from while it still names that image, else the image ID. */
  async #imageShown(ref: string, id: string): Promise<string> {
    const found = ref ? await this.#ctx.images.find(ref).catch(() => undefined) : undefined;
    return found?.id === id ? ref : id;
  }

  async inspectContainer(id: string, options: CallOptions & { readonly size?: boolean } = {}): Promise<ContainerInspectResponse> {
    const record = await this.#lifecycle.get(id);
    const view = inspectView(record, this.#ctx.layout, { execIds: await this.#execs.idsOf(record.id), graphDriverData: null });
    if (!options.size) return view;
    return { ...view, SizeRw: await this.#lifecycle.rwSize(record).catch(() => 0) };
  }

  async startContainer(id: string, options: CallOptions & { readonly detachKeys?: string } = {}): Promise<boolean> {
    return this.#lifecycle.start(id, options);
  }

  async stopContainer(id: string, options: CallOptions & { readonly timeout?: number; readonly signalName?: string } = {}): Promise<boolean> {
    return this.#lifecycle.stop(id, options);
  }

  async restartContainer(id: string, options: CallOptions & { readonly timeout?: number; readonly signalName?: string } = {}): Promise<void> {
    return this.#lifecycle.restart(id, options);
  }

  async killContainer(id: string, options: CallOptions & { readonly signalName?: string } = {}): Promise<void> {
    return this.#lifecycle.kill(id, options);
  }

  async pauseContainer(id: string, options: CallOptions = {}): Promise<void> {
    return this.#lifecycle.pause(id, options);
  }

  async unpauseContainer(id: string, options: CallOptions = {}): Promise<void> {
    return this.#lifecycle.unpause(id, options);
  }

  async removeContainer(id: string, options: RemoveContainerOptions = {}): Promise<void> {
    return this.#lifecycle.remove(id, options);
  }

  async waitContainer(id: string, options: CallOptions & { readonly condition?: WaitCondition } = {}): Promise<ContainerWait> {
    return this.#lifecycle.wait(id, options);
  }

  async attachContainer(id: string, options: AttachOptions = {}): Promise<ContainerStream> {
    return this.#io.attach(id, options);
  }

  async resizeContainer(id: string, size: TerminalSize, options: CallOptions = {}): Promise<void> {
    return this.#io.resize(id, size, options);
  }

  async containerLogs(id: string, options: LogsOptions = {}): Promise<ContainerOutput> {
    return this.#io.logs(id, options);
  }

  async topContainer(id: string, options: CallOptions & { readonly psArgs?: string } = {}): Promise<ContainerTopResponse> {
    return this.#processes.top(id, options);
  }

  containerStats(id: string, options: CallOptions & { readonly stream?: boolean; readonly oneShot?: boolean } = {}): AsyncIterable<ContainerStatsResponse> {
    return this.#processes.stats(id, options);
  }

  async renameContainer(id: string, name: string): Promise<void> {
    return this.#lifecycle.rename(id, name);
  }

  async updateContainer(id: string, update: ContainerUpdateRequest): Promise<ContainerUpdateResponse> {
    return this.#lifecycle.update(id, update);
  }

  async containerChanges(id: string, options: CallOptions = {}): Promise<FilesystemChange[]> {
    return this.#fs.changes(id, options);
  }

  async exportContainer(id: string, options: CallOptions = {}): Promise<Readable> {
    return this.#fs.export(id, options);
  }

  async statContainerPath(id: string, path: string, _options: CallOptions = {}): Promise<ContainerPathStat> {
    return this.#fs.statPath(id, path);
  }

  async getContainerArchive(id: string, path: string, _options: CallOptions = {}): Promise<{ readonly stat: ContainerPathStat; readonly archive: Readable }> {
    return this.#fs.getArchive(id, path);
  }

  async putContainerArchive(
    id: string,
    path: string,
    archive: Readable,
    options: CallOptions & { readonly noOverwriteDirNonDir?: boolean; readonly copyUIDGID?: boolean } = {},
  ): Promise<void> {
    return this.#fs.putArchive(id, path, archive, options);
  }

  async pruneContainers(options: CallOptions & { readonly filters?: Filters } = {}): Promise<ContainerPruneResponse> {
    return this.#lifecycle.prune(options.filters ?? {});
  }

  async commitContainer(options: CommitOptions): Promise<IdResponse> {
    return this.#fs.commit(options);
  }

  // ---- exec ----------------------------------------------------------------------------------

  async createExec(containerId: string, config: ExecConfig, options: CallOptions = {}): Promise<IdResponse> {
    return this.#execs.create(containerId, config, options);
  }

  async startExec(execId: string, config: ExecStartConfig, options: CallOptions = {}): Promise<ContainerStream | undefined> {
    return this.#execs.start(execId, config, options);
  }

  async resizeExec(execId: string, size: TerminalSize, _options: CallOptions = {}): Promise<void> {
    return this.#execs.resize(execId, size);
  }

  async inspectExec(execId: string, _options: CallOptions = {}): Promise<ExecInspectResponse> {
    return this.#execs.inspect(execId);
  }

  // ---- images --------------------------------------------------------------------------------

  async listImages(options: CallOptions & { readonly all?: boolean; readonly filters?: Filters; readonly digests?: boolean; readonly sharedSize?: boolean } = {}): Promise<ImageSummary[]> {
    return this.#images.list(options);
  }

  async inspectImage(name: string, options: CallOptions = {}): Promise<ImageInspect> {
    return this.#images.inspect(name, options);
  }

  async imageHistory(name: string, options: CallOptions & { readonly platform?: string } = {}): Promise<HistoryResponseItem[]> {
    return this.#images.history(name, options);
  }

  pullImage(options: PullOptions): AsyncIterable<JsonMessage> {
    return this.#images.pull(options);
  }

  pushImage(name: string, options: PushOptions = {}): AsyncIterable<JsonMessage> {
    return this.#images.push(name, options);
  }

  importImage(options: ImportOptions): AsyncIterable<JsonMessage> {
    return this.#images.import(options);
  }

  async tagImage(name: string, target: { readonly repo: string; readonly tag?: string }, options: CallOptions = {}): Promise<void> {
    return this.#images.tag(name, target, options);
  }

  async removeImage(name: string, options: CallOptions & { readonly force?: boolean; readonly noprune?: boolean } = {}): Promise<ImageDeleteResponseItem[]> {
    return this.#images.remove(name, options);
  }

  async saveImages(names: readonly string[], options: CallOptions & { readonly platform?: string } = {}): Promise<Readable> {
    return this.#images.save(names, options);
  }

  loadImages(archive: Readable, options: CallOptions & { readonly quiet?: boolean; readonly platform?: string } = {}): AsyncIterable<JsonMessage> {
    return this.#images.load(archive, options);
  }

  async pruneImages(options: CallOptions & { readonly filters?: Filters } = {}): Promise<ImagePruneResponse> {
    return this.#images.prune(options);
  }

  buildImage(context: Readable, options: BuildOptions & CallOptions = {}): AsyncIterable<JsonMessage> {
    return this.#buildStream(context, options);
  }

  async *#buildStream(context: Readable, options: BuildOptions & CallOptions): AsyncGenerator<JsonMessage> {
    yield* this.#builds.build(context, options);
  }

  async pruneBuildCache(options: CallOptions & { readonly all?: boolean; readonly filters?: Filters } = {}): Promise<BuildCachePruneResponse> {
    return this.#builds.prune(options);
  }

  // ---- volumes -------------------------------------------------------------------------------

  async createVolume(body: VolumeCreateRequest): Promise<Volume> {
    return this.#volumes.create(body);
  }

  async listVolumes(options: CallOptions & { readonly filters?: Filters } = {}): Promise<VolumeListResponse> {
    return this.#volumes.list(options.filters ?? {});
  }

  async inspectVolume(name: string): Promise<Volume> {
    return this.#volumes.inspect(name);
  }

  async removeVolume(name: string, options: CallOptions & { readonly force?: boolean } = {}): Promise<void> {
    return this.#volumes.remove(name, options.force ?? false);
  }

  async pruneVolumes(options: CallOptions & { readonly filters?: Filters } = {}): Promise<VolumePruneResponse> {
    return this.#volumes.prune(options.filters ?? {});
  }

  // ---- networks ------------------------------------------------------------------------------

  async createNetwork(body: NetworkCreateRequest, options: CallOptions = {}): Promise<NetworkCreateResponse> {
    return this.#networks.create(body, options);
  }

  async listNetworks(options: CallOptions & { readonly filters?: Filters } = {}): Promise<Network[]> {
    return this.#networks.list(options.filters ?? {}, options);
  }

  async inspectNetwork(id: string, options: CallOptions & { readonly verbose?: boolean } = {}): Promise<Network> {
    return this.#networks.inspect(id, options);
  }

  async removeNetwork(id: string, options: CallOptions = {}): Promise<void> {
    return this.#networks.remove(id, options);
  }

  async connectNetwork(id: string, body: NetworkConnectRequest, options: CallOptions = {}): Promise<void> {
    return this.#networks.connect(id, body, options);
  }

  async disconnectNetwork(id: string, body: NetworkDisconnectRequest, options: CallOptions = {}): Promise<void> {
    return this.#networks.disconnect(id, body, options);
  }

  async pruneNetworks(options: CallOptions & { readonly filters?: Filters } = {}): Promise<NetworkPruneResponse> {
    return this.#networks.prune(options.filters ?? {}, options);
  }

  /**
   * What `engine serve` runs beside the API (ContainerSupervisor): recovers networking left by a
   * crash, starts the containers whose restart policy says so, then watches every container until
   * the signal fires: exits, restart policies with docker's backoff, health checks, `--rm`.
   */
  async supervise(options: { readonly signal: AbortSignal }): Promise<void> {
    await this.#supervisor.run({ signal: options.signal, boot: true, recoverNetwork: true });
  }

  /** The supervisor of the daemonless CLI: no boot restarts, ends when idle. Use `runDetachedSupervisor`. */
  async superviseDetached(signal: AbortSignal, idleExitMs: number): Promise<void> {
    await this.#supervisor.run({ signal, boot: false, idleExitMs });
  }

  async close(): Promise<void> {
    // Containers keep running; what this process was waiting on or attached to lets go.
    this.#closing.abort();
    await this.#images.close();
  }
}

/**
 * The detached supervisor's main (see `LocalEngineOptions.supervisorCommand`): runs the supervisor
 * for the engine options in `optionsPath` until nothing needs watching or the signal fires, logging
 * JSON lines to `<runRoot>/supervisor/supervisor.log`.
 */
export async function runDetachedSupervisor(options: { readonly optionsPath: string; readonly signal: AbortSignal; readonly idleExitMs?: number }): Promise<void> {
  const engineOptions = JSON.parse(await readFile(options.optionsPath, 'utf8')) as LocalEngineOptions;
  const dir = join(engineOptions.runRoot, 'supervisor');
  await mkdir(dir, { recursive: true });
  const log = createWriteStream(join(dir, 'supervisor.log'), { flags: 'a' });
  const logger = createJsonLogger({ write: (line) => log.write(line) }).child({ component: 'supervisor', pid: process.pid });
  const engine = new LocalEngine({ ...engineOptions, logger });
  try {
    await engine.superviseDetached(options.signal, options.idleExitMs ?? 5000);
  } catch (err) {
    logger.error('supervisor failed', { error: err });
    throw err;
  } finally {
    await engine.close();
    log.end();
  }
}
