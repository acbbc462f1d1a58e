import type { Readable } from 'node:stream';
import { BerthError, type ErrorKind } from '@berth/errors';
import type { AuthConfig, CallOptions, Filters, IdResponse, JsonMessage, TerminalSize } from './types/common.js';
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
  ContainerWaitResponse,
  FilesystemChange,
  ContainerConfig,
  WaitCondition,
} from './types/container.js';
import type { ExecConfig, ExecInspectResponse, ExecStartConfig } from './types/exec.js';
import type {
  BuildCachePruneResponse,
  BuildOptions,
  HistoryResponseItem,
  ImageDeleteResponseItem,
  ImageInspect,
  ImagePruneResponse,
  ImageSummary,
} from './types/image.js';
import type {
  Network,
  NetworkConnectRequest,
  NetworkCreateRequest,
  NetworkCreateResponse,
  NetworkDisconnectRequest,
  NetworkPruneResponse,
} from './types/network.js';
import type { ContainerOutput, ContainerStream } from './types/stream.js';
import type { AuthResponse, EventMessage, PingResponse, SystemDataUsage, SystemInfo, SystemVersion } from './types/system.js';
import type { Volume, VolumeCreateRequest, VolumeListResponse, VolumePruneResponse } from './types/volume.js';

export { maxApiVersion, minApiVersion } from './api/api-version.js';

/** The stable codes of engine errors. Both implementations throw these; the remote one restores them from the wire. */
export const EngineErrorCode = {
  ContainerNotFound: 'ERR_CONTAINER_NOT_FOUND',
  ImageNotFound: 'ERR_IMAGE_NOT_FOUND',
  VolumeNotFound: 'ERR_VOLUME_NOT_FOUND',
  NetworkNotFound: 'ERR_NETWORK_NOT_FOUND',
  ExecNotFound: 'ERR_EXEC_NOT_FOUND',
  PathNotFound: 'ERR_PATH_NOT_FOUND',
  /** A container, volume or network name is taken (Conflict). */
  NameInUse: 'ERR_NAME_IN_USE',
  /** The container is not running (kill, exec, pause, attach to a stopped one). */
  ContainerNotRunning: 'ERR_CONTAINER_NOT_RUNNING',
  /** The container runs and the call needs it stopped (rm without force). */
  ContainerRunning: 'ERR_CONTAINER_RUNNING',
  ContainerPaused: 'ERR_CONTAINER_PAUSED',
  /** An image, volume or network is used by a container. */
  InUse: 'ERR_IN_USE',
  /** A parameter or a body field is wrong; the message names it. */
  InvalidParameter: 'ERR_INVALID_PARAMETER',
  /** The container's command could not be found (exit code 127) or run (126). */
  CommandNotFound: 'ERR_COMMAND_NOT_FOUND',
  CommandNotExecutable: 'ERR_COMMAND_NOT_EXECUTABLE',
  /** Reading a container's files into a tar failed part-way (`GET /containers/{id}/archive`). */
  ArchiveFailed: 'ERR_ARCHIVE_FAILED',
  NotImplemented: 'ERR_NOT_IMPLEMENTED',
  /** The API has no such endpoint (docker's `page not found`). */
  UnknownEndpoint: 'ERR_UNKNOWN_ENDPOINT',
  /** The server could not be reached or answered something that is not the Docker API. */
  Unreachable: 'ERR_ENGINE_UNREACHABLE',
  /** An error the server reported without a Berth code (another Docker-API server). */
  Remote: 'ERR_ENGINE_REMOTE',
} as const;
export type EngineErrorCode = (typeof EngineErrorCode)[keyof typeof EngineErrorCode];

/** The error of the Engine service, local or remote. `exitCode` carries docker's 125/126/127 where it applies. */
export class EngineError extends BerthError {}

/** Shorthand for the common case: an engine error with a code and a kind. */
export function engineError(message: string, code: EngineErrorCode, kind: ErrorKind, extra: { cause?: unknown; exitCode?: number } = {}): EngineError {
  return new EngineError(message, { code, kind, ...extra });
}

/**
 * A registered wait. The call that returns it resolves once the wait is in place (so a caller
 * can start the container afterwards without missing its exit), `result` once the condition is met.
 */
export interface ContainerWait {
  readonly result: Promise<ContainerWaitResponse>;
}

/** Options of `listContainers` (`GET /containers/json`). */
export interface ListContainersOptions extends CallOptions {
  readonly all?: boolean;
  readonly limit?: number;
  readonly size?: boolean;
  readonly filters?: Filters;
}

/** Options of `attachContainer` (`POST /containers/{id}/attach`). */
export interface AttachOptions extends CallOptions {
  /** Stream live output (default true); false with `logs` gives the log only. */
  readonly stream?: boolean;
  readonly stdin?: boolean;
  readonly stdout?: boolean;
  readonly stderr?: boolean;
  /** Replay the log before the live output. */
  readonly logs?: boolean;
  /** `ctrl-p,ctrl-q` by default. */
  readonly detachKeys?: string;
}

/** Options of `containerLogs`. Times are unix seconds (fractions allowed). */
export interface LogsOptions extends CallOptions {
  readonly follow?: boolean;
  readonly stdout?: boolean;
  readonly stderr?: boolean;
  readonly since?: number;
  readonly until?: number;
  /** Prefix each line with docker's fixed-width RFC 3339 nanosecond time and a space. */
  readonly timestamps?: boolean;
  /** Lines from the end; `all` (default) for everything. */
  readonly tail?: number | 'all';
}

/** Options of `commitContainer` (`POST /commit`). */
export interface CommitOptions extends CallOptions {
  readonly container: string;
  readonly repo?: string;
  readonly tag?: string;
  readonly comment?: string;
  readonly author?: string;
  /** Pause the container while committing (default true). */
  readonly pause?: boolean;
  /** Dockerfile instructions applied to the config: `CMD ["sh"]`, `ENV A=1`, ... */
  readonly changes?: readonly string[];
  /** Config fields that override the container's. */
  readonly config?: ContainerConfig;
}

/** Options of `pullImage` (`POST /images/create?fromImage=`). */
export interface PullOptions extends CallOptions {
  /** The reference; a tag or digest in it wins over `tag`. */
  readonly fromImage: string;
  readonly tag?: string;
  readonly platform?: string;
  /** Pull every tag of the repository. */
  readonly allTags?: boolean;
  readonly auth?: AuthConfig;
}

/** Options of `importImage` (`POST /images/create?fromSrc=`). */
export interface ImportOptions extends CallOptions {
  /** The rootfs tar (plain or compressed), or a URL to fetch it from. */
  readonly source: Readable | string;
  readonly repo?: string;
  readonly tag?: string;
  readonly message?: string;
  readonly changes?: readonly string[];
  readonly platform?: string;
}

/** Options of `pushImage`. */
export interface PushOptions extends CallOptions {
  readonly tag?: string;
  readonly platform?: string;
  readonly auth?: AuthConfig;
}

/** Options of a remove call. */
export interface RemoveContainerOptions extends CallOptions {
  readonly force?: boolean;
  /** Also remove the anonymous volumes. */
  readonly volumes?: boolean;
  readonly link?: boolean;
}

/**
 * The Engine service: everything the `engine` CLI, the Docker API server and the remote client
 * do, in the Docker Engine API's shapes. `LocalEngine` implements it in-process over the
 * libraries (daemonless); `RemoteEngine` speaks the Docker API to a server; `serveEngineApi`
 * puts any Engine behind an HTTP server.
 *
 * Contract for implementations:
 * - Failures are `EngineError`s (or other `BerthError`s) whose `kind` says what went wrong: an
 *   unknown container/image/volume/network/exec is NotFound (docker's `No such container: x`),
 *   a name in use or an object in use is Conflict, a bad parameter InvalidArgument. The API server
 *   maps kinds to HTTP statuses in one place.
 * - A container, image, volume or network may be named by full ID, unique ID prefix or name.
 * - Progress calls (pull, push, import, load, build) return an async iterable of docker's JSON
 *   messages; iterating drives the work, breaking off or aborting the signal cancels it.
 * - Every call honours its AbortSignal. Nothing here writes to a console or reads the environment.
 */
export interface Engine {
  // System
  ping(options?: CallOptions): Promise<PingResponse>;
  info(options?: CallOptions): Promise<SystemInfo>;
  version(options?: CallOptions): Promise<SystemVersion>;
  /** `GET /system/df`; `types` limits the work to `container`, `image`, `volume`, `build-cache`. */
  dataUsage(options?: CallOptions & { readonly types?: readonly string[] }): Promise<SystemDataUsage>;
  /**
   * Events in time order: the past ones from `since` (unix seconds), then live ones until `until`
   * or until the signal fires. Without `since` only live events come.
   */
  events(options?: CallOptions & { readonly since?: number; readonly until?: number; readonly filters?: Filters }): AsyncIterable<EventMessage>;
  /** Checks credentials against a registry (`POST /auth`); storing them is the client's job. */
  login(auth: AuthConfig, options?: CallOptions): Promise<AuthResponse>;

  // Containers
  /** Creates a container; NotFound (`No such image: ref`) when the image is not local, so the caller can pull and retry. */
  createContainer(body: ContainerCreateRequest, options?: CallOptions & { readonly name?: string; readonly platform?: string }): Promise<ContainerCreateResponse>;
  listContainers(options?: ListContainersOptions): Promise<ContainerSummary[]>;
  inspectContainer(id: string, options?: CallOptions & { readonly size?: boolean }): Promise<ContainerInspectResponse>;
  /** Starts a created or stopped container; false when it already ran (the API's 304). */
  startContainer(id: string, options?: CallOptions & { readonly detachKeys?: string }): Promise<boolean>;
  /**
   * Sends the stop signal (the container's, or `signal`), waits `timeout` seconds (the
   * container's StopTimeout, default 10; -1 forever), then SIGKILL. `signalName` overrides the stop signal. False when it was not running.
   */
  stopContainer(id: string, options?: CallOptions & { readonly timeout?: number; readonly signalName?: string }): Promise<boolean>;
  restartContainer(id: string, options?: CallOptions & { readonly timeout?: number; readonly signalName?: string }): Promise<void>;
  /** Sends `signalName` (default SIGKILL; a name with or without SIG, or a number); Conflict when not running. */
  killContainer(id: string, options?: CallOptions & { readonly signalName?: string }): Promise<void>;
  pauseContainer(id: string, options?: CallOptions): Promise<void>;
  unpauseContainer(id: string, options?: CallOptions): Promise<void>;
  removeContainer(id: string, options?: RemoveContainerOptions): Promise<void>;
  /** See ContainerWait. `removed` also resolves when the container is already gone after it was waited for. */
  waitContainer(id: string, options?: CallOptions & { readonly condition?: WaitCondition }): Promise<ContainerWait>;
  attachContainer(id: string, options?: AttachOptions): Promise<ContainerStream>;
  resizeContainer(id: string, size: TerminalSize, options?: CallOptions): Promise<void>;
  /** The container's log (json-file driver), also of a stopped container; InvalidArgument when its log driver is `none`. */
  containerLogs(id: string, options?: LogsOptions): Promise<ContainerOutput>;
  /** `ps` inside the container; `psArgs` defaults to `-ef`. */
  topContainer(id: string, options?: CallOptions & { readonly psArgs?: string }): Promise<ContainerTopResponse>;
  /** Samples every second while `stream` (default true); one sample otherwise (`oneShot` skips the CPU delta wait). */
  containerStats(id: string, options?: CallOptions & { readonly stream?: boolean; readonly oneShot?: boolean }): AsyncIterable<ContainerStatsResponse>;
  renameContainer(id: string, name: string, options?: CallOptions): Promise<void>;
  updateContainer(id: string, update: ContainerUpdateRequest, options?: CallOptions): Promise<ContainerUpdateResponse>;
  /** Changes of the container's filesystem against its image (`docker diff`). */
  containerChanges(id: string, options?: CallOptions): Promise<FilesystemChange[]>;
  /** The container's filesystem as a tar; works on created and stopped containers too. */
  exportContainer(id: string, options?: CallOptions): Promise<Readable>;
  /** Stats a path in the container (NotFound when absent). Paths resolve inside the rootfs: symlinks and `..` cannot escape. */
  statContainerPath(id: string, path: string, options?: CallOptions): Promise<ContainerPathStat>;
  /** A tar of `path` (a file or a directory, named by its base name in the tar) and its stat. */
  getContainerArchive(id: string, path: string, options?: CallOptions): Promise<{ readonly stat: ContainerPathStat; readonly archive: Readable }>;
  /** Extracts a tar into the directory `path` of the container; nothing may land outside the rootfs. */
  putContainerArchive(
    id: string,
    path: string,
    archive: Readable,
    options?: CallOptions & { readonly noOverwriteDirNonDir?: boolean; readonly copyUIDGID?: boolean },
  ): Promise<void>;
  pruneContainers(options?: CallOptions & { readonly filters?: Filters }): Promise<ContainerPruneResponse>;
  commitContainer(options: CommitOptions): Promise<IdResponse>;

  // Exec
  /** Conflict when the container is not running or is paused. */
  createExec(containerId: string, config: ExecConfig, options?: CallOptions): Promise<IdResponse>;
  /** Starts an exec: a stream to it, or undefined with `Detach`. Its exit code is in `inspectExec` after the output ends. */
  startExec(execId: string, config: ExecStartConfig, options?: CallOptions): Promise<ContainerStream | undefined>;
  resizeExec(execId: string, size: TerminalSize, options?: CallOptions): Promise<void>;
  inspectExec(execId: string, options?: CallOptions): Promise<ExecInspectResponse>;

  // Images
  listImages(options?: CallOptions & { readonly all?: boolean; readonly filters?: Filters; readonly digests?: boolean; readonly sharedSize?: boolean }): Promise<ImageSummary[]>;
  inspectImage(name: string, options?: CallOptions): Promise<ImageInspect>;
  imageHistory(name: string, options?: CallOptions & { readonly platform?: string }): Promise<HistoryResponseItem[]>;
  pullImage(options: PullOptions): AsyncIterable<JsonMessage>;
  /** Pushes `name` (a repository, or repository:tag); without a tag every tag of the repository. */
  pushImage(name: string, options?: PushOptions): AsyncIterable<JsonMessage>;
  /** Makes an image from a rootfs tar; the last message's `status` is the image ID. */
  importImage(options: ImportOptions): AsyncIterable<JsonMessage>;
  /** Tags `name` as `repo:tag` (tag defaults to latest). */
  tagImage(name: string, target: { readonly repo: string; readonly tag?: string }, options?: CallOptions): Promise<void>;
  /** docker's rmi: untags a reference, deletes an image when its last tag goes; Conflict when a container uses it (unless forced). */
  removeImage(name: string, options?: CallOptions & { readonly force?: boolean; readonly noprune?: boolean }): Promise<ImageDeleteResponseItem[]>;
  /** docker save: an OCI layout tar with docker's `manifest.json` and `repositories`. */
  saveImages(names: readonly string[], options?: CallOptions & { readonly platform?: string }): Promise<Readable>;
  /** docker load: OCI layout or docker-archive tars (also pre-v25 ones); reports `Loaded image: name:tag`. */
  loadImages(archive: Readable, options?: CallOptions & { readonly quiet?: boolean; readonly platform?: string }): AsyncIterable<JsonMessage>;
  pruneImages(options?: CallOptions & { readonly filters?: Filters }): Promise<ImagePruneResponse>;
  /**
   * Builds from a context tar. The stream carries docker's classic-builder lines (`Step 1/3 : ...`,
   * ` ---> Using cache`, RUN output), then `{"aux":{"ID":"sha256:..."}}` and `Successfully built/tagged`.
   */
  buildImage(context: Readable, options?: BuildOptions & CallOptions): AsyncIterable<JsonMessage>;
  pruneBuildCache(options?: CallOptions & { readonly all?: boolean; readonly filters?: Filters }): Promise<BuildCachePruneResponse>;

  // Volumes
  createVolume(body: VolumeCreateRequest, options?: CallOptions): Promise<Volume>;
  listVolumes(options?: CallOptions & { readonly filters?: Filters }): Promise<VolumeListResponse>;
  inspectVolume(name: string, options?: CallOptions): Promise<Volume>;
  /** Conflict when a container uses it, unless forced. */
  removeVolume(name: string, options?: CallOptions & { readonly force?: boolean }): Promise<void>;
  /** Removes unused anonymous volumes (and named ones with the filter `all=true`). */
  pruneVolumes(options?: CallOptions & { readonly filters?: Filters }): Promise<VolumePruneResponse>;

  // Networks
  createNetwork(body: NetworkCreateRequest, options?: CallOptions): Promise<NetworkCreateResponse>;
  listNetworks(options?: CallOptions & { readonly filters?: Filters }): Promise<Network[]>;
  inspectNetwork(id: string, options?: CallOptions & { readonly verbose?: boolean }): Promise<Network>;
  removeNetwork(id: string, options?: CallOptions): Promise<void>;
  connectNetwork(id: string, body: NetworkConnectRequest, options?: CallOptions): Promise<void>;
  disconnectNetwork(id: string, body: NetworkDisconnectRequest, options?: CallOptions): Promise<void>;
  pruneNetworks(options?: CallOptions & { readonly filters?: Filters }): Promise<NetworkPruneResponse>;

  /** Releases what the Engine holds (connections, watchers); containers keep running. */
  close(): Promise<void>;
}

/**
 * What `engine serve` runs beside the API: restart policies (`always`, `unless-stopped`,
 * `on-failure[:n]`) applied to containers that exit, and on start to those that were running
 * when the host or the server went down, health checks, and `--rm` clean-up, until the signal fires.
 */
export interface ContainerSupervisor {
  supervise(options: { readonly signal: AbortSignal }): Promise<void>;
}
