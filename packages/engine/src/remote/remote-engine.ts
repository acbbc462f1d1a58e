import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import type { Logger } from '@berth/log';
import {
  EngineErrorCode,
  engineError,
  type AttachOptions,
  type CommitOptions,
  type ContainerWait,
  type Engine,
  type ImportOptions,
  type ListContainersOptions,
  type LogsOptions,
  type PullOptions,
  type PushOptions,
  type RemoveContainerOptions,
} from '../engine.js';
import { apiVersionAtLeast } from '../api/api-version.js';
import { formatFilters } from '../api/filters.js';
import { encodeAuthHeader } from '../api/registry-auth.js';
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
  ContainerWaitResponse,
  FilesystemChange,
  WaitCondition,
} from '../types/container.js';
import type { ExecConfig, ExecInspectResponse, ExecStartConfig } from '../types/exec.js';
import type { BuildCachePruneResponse, BuildOptions, HistoryResponseItem, ImageDeleteResponseItem, ImageInspect, ImagePruneResponse, ImageSummary } from '../types/image.js';
import type { Network, NetworkConnectRequest, NetworkCreateRequest, NetworkCreateResponse, NetworkDisconnectRequest, NetworkPruneResponse } from '../types/network.js';
import type { ContainerOutput, ContainerStream } from '../types/stream.js';
import type { AuthResponse, EventMessage, PingResponse, SystemDataUsage, SystemInfo, SystemVersion } from '../types/system.js';
import type { Volume, VolumeCreateRequest, VolumeListResponse, VolumePruneResponse } from '../types/volume.js';
import { ApiTransport, readJsonLines, readText, type ApiRequest, type RemoteTls } from './api-transport.js';
import { outputChunks, socketStream } from './remote-stream.js';

/** Options of RemoteEngine. */
export interface RemoteEngineOptions {
  /** `unix:///run/berth/berth.sock`, `tcp://host:2376`, ... (from -H, BERTH_HOST or DOCKER_HOST). */
  readonly host: string;
  readonly tls?: RemoteTls;
  /** Pin the API version instead of negotiating. */
  readonly apiVersion?: string;
  readonly userAgent?: string;
  readonly logger?: Logger;
}

const multiplexed = 'application/vnd.docker.multiplexed-stream';
const enc = encodeURIComponent;

function authHeaders(auth: AuthConfig | undefined): Record<string, string> {
  // docker sends `{}` when it has no credentials; some servers insist on the header for push.
  return { 'X-Registry-Auth': encodeAuthHeader(auth ?? {}) };
}

function throwOnError(message: JsonMessage): JsonMessage {
  if (message.errorDetail || message.error) {
    const text = message.errorDetail?.message ?? message.error ?? 'unknown error';
    // A failed build's code is its RUN's exit status, which the CLI exits with (as docker's).
    const code = message.errorDetail?.code;
    throw engineError(text, EngineErrorCode.Remote, 'Internal', code ? { exitCode: code } : {});
  }
  return message;
}

/**
 * The Engine over the Docker Engine API: every call is one or a few HTTP requests to a server
 * (`engine serve`, or dockerd itself), so the CLI behaves the same local or remote.
 */
export class RemoteEngine implements Engine {
  readonly #http: ApiTransport;

  constructor(options: RemoteEngineOptions) {
    this.#http = new ApiTransport(options);
  }

  /** The negotiated API version. */
  apiVersion(options?: CallOptions): Promise<string> {
    return this.#http.version(options?.signal);
  }

  async #progress(req: ApiRequest): Promise<AsyncGenerator<JsonMessage>> {
    const res = await this.#http.request(req);
    return readJsonLines<JsonMessage>(res);
  }

  async *#progressLines(req: ApiRequest): AsyncGenerator<JsonMessage> {
    for await (const message of await this.#progress(req)) yield throwOnError(message);
  }

  // System

  async ping(options?: CallOptions): Promise<PingResponse> {
    const res = await this.#http.empty({ method: 'GET', path: '/_ping', signal: options?.signal });
    const header = (name: string) => String(res.headers[name] ?? '');
    return {
      apiVersion: header('api-version'),
      osType: header('ostype'),
      builderVersion: header('builder-version'),
      experimental: header('docker-experimental') === 'true',
    };
  }

  info(options?: CallOptions): Promise<SystemInfo> {
    return this.#http.json({ method: 'GET', path: '/info', signal: options?.signal });
  }

  version(options?: CallOptions): Promise<SystemVersion> {
    return this.#http.json({ method: 'GET', path: '/version', signal: options?.signal });
  }

  dataUsage(options?: CallOptions & { readonly types?: readonly string[] }): Promise<SystemDataUsage> {
    return this.#http.json({ method: 'GET', path: '/system/df', query: { type: options?.types }, signal: options?.signal });
  }

  async *events(options?: CallOptions & { readonly since?: number; readonly until?: number; readonly filters?: Filters }): AsyncGenerator<EventMessage> {
    const res = await this.#http.request({
      method: 'GET',
      path: '/events',
      query: { since: options?.since, until: options?.until, filters: formatFilters(options?.filters) },
      signal: options?.signal,
    });
    try {
      yield* readJsonLines<EventMessage>(res);
    } catch (err) {
      if (!options?.signal?.aborted) throw err;
    }
  }

  login(auth: AuthConfig, options?: CallOptions): Promise<AuthResponse> {
    return this.#http.json({ method: 'POST', path: '/auth', body: auth, signal: options?.signal });
  }

  // Containers

  createContainer(body: ContainerCreateRequest, options?: CallOptions & { readonly name?: string; readonly platform?: string }): Promise<ContainerCreateResponse> {
    return this.#http.json({ method: 'POST', path: '/containers/create', query: { name: options?.name, platform: options?.platform }, body, signal: options?.signal });
  }

  listContainers(options?: ListContainersOptions): Promise<ContainerSummary[]> {
    return this.#http.json({
      method: 'GET',
      path: '/containers/json',
      query: { all: options?.all || undefined, limit: options?.limit, size: options?.size || undefined, filters: formatFilters(options?.filters) },
      signal: options?.signal,
    });
  }

  inspectContainer(id: string, options?: CallOptions & { readonly size?: boolean }): Promise<ContainerInspectResponse> {
    return this.#http.json({ method: 'GET', path: `/containers/${enc(id)}/json`, query: { size: options?.size || undefined }, signal: options?.signal });
  }

  async startContainer(id: string, options?: CallOptions & { readonly detachKeys?: string }): Promise<boolean> {
    const res = await this.#http.empty({ method: 'POST', path: `/containers/${enc(id)}/start`, query: { detachKeys: options?.detachKeys }, signal: options?.signal });
    return res.statusCode !== 304;
  }

  async stopContainer(id: string, options?: CallOptions & { readonly timeout?: number; readonly signalName?: string }): Promise<boolean> {
    const res = await this.#http.empty({ method: 'POST', path: `/containers/${enc(id)}/stop`, query: { t: options?.timeout, signal: options?.signalName }, signal: options?.signal });
    return res.statusCode !== 304;
  }

  async restartContainer(id: string, options?: CallOptions & { readonly timeout?: number; readonly signalName?: string }): Promise<void> {
    await this.#http.empty({ method: 'POST', path: `/containers/${enc(id)}/restart`, query: { t: options?.timeout, signal: options?.signalName }, signal: options?.signal });
  }

  async killContainer(id: string, options?: CallOptions & { readonly signalName?: string }): Promise<void> {
    await this.#http.empty({ method: 'POST', path: `/containers/${enc(id)}/kill`, query: { signal: options?.signalName }, signal: options?.signal });
  }

  async pauseContainer(id: string, options?: CallOptions): Promise<void> {
    await this.#http.empty({ method: 'POST', path: `/containers/${enc(id)}/pause`, signal: options?.signal });
  }

  async unpauseContainer(id: string, options?: CallOptions): Promise<void> {
    await this.#http.empty({ method: 'POST', path: `/containers/${enc(id)}/unpause`, signal: options?.signal });
  }

  async removeContainer(id: string, options?: RemoveContainerOptions): Promise<void> {
    await this.#http.empty({
      method: 'DELETE',
      path: `/containers/${enc(id)}`,
      query: { force: options?.force || undefined, v: options?.volumes || undefined, link: options?.link || undefined },
      signal: options?.signal,
    });
  }

  async waitContainer(id: string, options?: CallOptions & { readonly condition?: WaitCondition }): Promise<ContainerWait> {
    const res = await this.#http.request({ method: 'POST', path: `/containers/${enc(id)}/wait`, query: { condition: options?.condition }, signal: options?.signal });
    const result = readText(res).then((text) => {
      const parsed = JSON.parse(text) as ContainerWaitResponse;
      if (parsed.StatusCode === -1 && parsed.Error?.Message) throw engineError(parsed.Error.Message, EngineErrorCode.Remote, 'Internal');
      return parsed;
    });
    // A caller that never reads the result must not crash the process with an unhandled rejection.
    result.catch(() => undefined);
    return { result };
  }

  async attachContainer(id: string, options?: AttachOptions): Promise<ContainerStream> {
    const hijacked = await this.#http.hijack({
      method: 'POST',
      path: `/containers/${enc(id)}/attach`,
      query: {
        stream: options?.stream ?? true,
        stdin: options?.stdin || undefined,
        stdout: options?.stdout || undefined,
        stderr: options?.stderr || undefined,
        logs: options?.logs || undefined,
        detachKeys: options?.detachKeys,
      },
      signal: options?.signal,
    });
    const tty = await this.#isTty(hijacked.contentType, () => this.inspectContainer(id, options).then((c) => c.Config.Tty === true), options?.signal);
    return socketStream({
      socket: hijacked.socket,
      tty,
      framed: !tty,
      stdin: options?.stdin === true,
      resize: (size, signal) => this.resizeContainer(id, size, signal ? { signal } : undefined),
    });
  }

  // The content type says multiplexed or raw from API 1.42 on; below that raw is ambiguous and
  // only the container's (or exec's) Tty setting tells, as docker's CLI also looks it up.
  async #isTty(contentType: string, lookUp: () => Promise<boolean>, signal?: AbortSignal): Promise<boolean> {
    if (contentType.startsWith(multiplexed)) return false;
    if (apiVersionAtLeast(await this.#http.version(signal), '1.42')) return true;
    return lookUp();
  }

  async resizeContainer(id: string, size: TerminalSize, options?: CallOptions): Promise<void> {
    await this.#http.empty({ method: 'POST', path: `/containers/${enc(id)}/resize`, query: { h: size.height, w: size.width }, signal: options?.signal });
  }

  async containerLogs(id: string, options?: LogsOptions): Promise<ContainerOutput> {
    const res = await this.#http.request({
      method: 'GET',
      path: `/containers/${enc(id)}/logs`,
      query: {
        follow: options?.follow || undefined,
        stdout: options?.stdout ?? true,
        stderr: options?.stderr ?? true,
        since: options?.since,
        until: options?.until,
        timestamps: options?.timestamps || undefined,
        tail: options?.tail,
      },
      signal: options?.signal,
    });
    const tty = await this.#isTty(String(res.headers['content-type'] ?? ''), () => this.inspectContainer(id, options).then((c) => c.Config.Tty === true), options?.signal);
    return { tty, output: outputChunks(res, !tty) };
  }

  topContainer(id: string, options?: CallOptions & { readonly psArgs?: string }): Promise<ContainerTopResponse> {
    return this.#http.json({ method: 'GET', path: `/containers/${enc(id)}/top`, query: { ps_args: options?.psArgs }, signal: options?.signal });
  }

  async *containerStats(id: string, options?: CallOptions & { readonly stream?: boolean; readonly oneShot?: boolean }): AsyncGenerator<ContainerStatsResponse> {
    const stream = options?.stream ?? true;
    const res = await this.#http.request({
      method: 'GET',
      path: `/containers/${enc(id)}/stats`,
      query: { stream, 'one-shot': options?.oneShot || undefined },
      signal: options?.signal,
    });
    try {
      yield* readJsonLines<ContainerStatsResponse>(res);
    } catch (err) {
      if (!options?.signal?.aborted) throw err;
    }
  }

  async renameContainer(id: string, name: string, options?: CallOptions): Promise<void> {
    await this.#http.empty({ method: 'POST', path: `/containers/${enc(id)}/rename`, query: { name }, signal: options?.signal });
  }

  updateContainer(id: string, update: ContainerUpdateRequest, options?: CallOptions): Promise<ContainerUpdateResponse> {
    return this.#http.json({ method: 'POST', path: `/containers/${enc(id)}/update`, body: update, signal: options?.signal });
  }

  async containerChanges(id: string, options?: CallOptions): Promise<FilesystemChange[]> {
    return (await this.#http.json<FilesystemChange[] | null>({ method: 'GET', path: `/containers/${enc(id)}/changes`, signal: options?.signal })) ?? [];
  }

  exportContainer(id: string, options?: CallOptions): Promise<Readable> {
    return this.#http.request({ method: 'GET', path: `/containers/${enc(id)}/export`, signal: options?.signal });
  }

  async statContainerPath(id: string, path: string, options?: CallOptions): Promise<ContainerPathStat> {
    const res = await this.#http.empty({ method: 'HEAD', path: `/containers/${enc(id)}/archive`, query: { path }, signal: options?.signal });
    return pathStatOf(res);
  }

  async getContainerArchive(id: string, path: string, options?: CallOptions): Promise<{ readonly stat: ContainerPathStat; readonly archive: Readable }> {
    const res = await this.#http.request({ method: 'GET', path: `/containers/${enc(id)}/archive`, query: { path }, signal: options?.signal });
    return { stat: pathStatOf(res), archive: res };
  }

  async putContainerArchive(
    id: string,
    path: string,
    archive: Readable,
    options?: CallOptions & { readonly noOverwriteDirNonDir?: boolean; readonly copyUIDGID?: boolean },
  ): Promise<void> {
    await this.#http.empty({
      method: 'PUT',
      path: `/containers/${enc(id)}/archive`,
      query: { path, noOverwriteDirNonDir: options?.noOverwriteDirNonDir || undefined, copyUIDGID: options?.copyUIDGID || undefined },
      headers: { 'Content-Type': 'application/x-tar' },
      body: archive,
      signal: options?.signal,
    });
  }

  pruneContainers(options?: CallOptions & { readonly filters?: Filters }): Promise<ContainerPruneResponse> {
    return this.#http.json({ method: 'POST', path: '/containers/prune', query: { filters: formatFilters(options?.filters) }, signal: options?.signal });
  }

  commitContainer(options: CommitOptions): Promise<IdResponse> {
    return this.#http.json({
      method: 'POST',
      path: '/commit',
      query: {
        container: options.container,
        repo: options.repo,
        tag: options.tag,
        comment: options.comment,
        author: options.author,
        pause: options.pause ?? true,
        changes: options.changes,
      },
      body: options.config ?? {},
      signal: options.signal,
    });
  }

  // Exec

  createExec(containerId: string, config: ExecConfig, options?: CallOptions): Promise<IdResponse> {
    return this.#http.json({ method: 'POST', path: `/containers/${enc(containerId)}/exec`, body: config, signal: options?.signal });
  }

  async startExec(execId: string, config: ExecStartConfig, options?: CallOptions): Promise<ContainerStream | undefined> {
    const path = `/exec/${enc(execId)}/start`;
    if (config.Detach) {
      await this.#http.empty({ method: 'POST', path, body: config, signal: options?.signal });
      return undefined;
    }
    const inspect = await this.inspectExec(execId, options);
    const hijacked = await this.#http.hijack({ method: 'POST', path, body: config, signal: options?.signal });
    const tty = await this.#isTty(hijacked.contentType, async () => config.Tty ?? inspect.ProcessConfig.tty, options?.signal);
    return socketStream({
      socket: hijacked.socket,
      tty,
      framed: !tty,
      stdin: inspect.OpenStdin,
      resize: (size, signal) => this.resizeExec(execId, size, signal ? { signal } : undefined),
    });
  }

  async resizeExec(execId: string, size: TerminalSize, options?: CallOptions): Promise<void> {
    await this.#http.empty({ method: 'POST', path: `/exec/${enc(execId)}/resize`, query: { h: size.height, w: size.width }, signal: options?.signal });
  }

  inspectExec(execId: string, options?: CallOptions): Promise<ExecInspectResponse> {
    return this.#http.json({ method: 'GET', path: `/exec/${enc(execId)}/json`, signal: options?.signal });
  }

  // Images

  listImages(options?: CallOptions & { readonly all?: boolean; readonly filters?: Filters; readonly digests?: boolean; readonly sharedSize?: boolean }): Promise<ImageSummary[]> {
    return this.#http.json({
      method: 'GET',
      path: '/images/json',
      query: { all: options?.all || undefined, filters: formatFilters(options?.filters), digests: options?.digests || undefined, 'shared-size': options?.sharedSize || undefined },
      signal: options?.signal,
    });
  }

  inspectImage(name: string, options?: CallOptions): Promise<ImageInspect> {
    return this.#http.json({ method: 'GET', path: `/images/${name}/json`, signal: options?.signal });
  }

  imageHistory(name: string, options?: CallOptions & { readonly platform?: string }): Promise<HistoryResponseItem[]> {
    return this.#http.json({ method: 'GET', path: `/images/${name}/history`, query: { platform: options?.platform }, signal: options?.signal });
  }

  pullImage(options: PullOptions): AsyncIterable<JsonMessage> {
    return this.#progressLines({
      method: 'POST',
      path: '/images/create',
      query: { fromImage: options.fromImage, tag: options.allTags ? undefined : options.tag, platform: options.platform },
      headers: authHeaders(options.auth),
      signal: options.signal,
    });
  }

  pushImage(name: string, options?: PushOptions): AsyncIterable<JsonMessage> {
    return this.#progressLines({
      method: 'POST',
      path: `/images/${name}/push`,
      query: { tag: options?.tag, platform: options?.platform },
      headers: authHeaders(options?.auth),
      signal: options?.signal,
    });
  }

  importImage(options: ImportOptions): AsyncIterable<JsonMessage> {
    const fromStream = typeof options.source !== 'string';
    return this.#progressLines({
      method: 'POST',
      path: '/images/create',
      query: {
        fromSrc: fromStream ? '-' : (options.source as string),
        repo: options.repo,
        tag: options.tag,
        message: options.message,
        changes: options.changes,
        platform: options.platform,
      },
      ...(fromStream ? { body: options.source, headers: { 'Content-Type': 'application/x-tar' } } : {}),
      signal: options.signal,
    });
  }

  async tagImage(name: string, target: { readonly repo: string; readonly tag?: string }, options?: CallOptions): Promise<void> {
    await this.#http.empty({ method: 'POST', path: `/images/${name}/tag`, query: { repo: target.repo, tag: target.tag }, signal: options?.signal });
  }

  removeImage(name: string, options?: CallOptions & { readonly force?: boolean; readonly noprune?: boolean }): Promise<ImageDeleteResponseItem[]> {
    return this.#http.json({
      method: 'DELETE',
      path: `/images/${name}`,
      query: { force: options?.force || undefined, noprune: options?.noprune || undefined },
      signal: options?.signal,
    });
  }

  saveImages(names: readonly string[], options?: CallOptions & { readonly platform?: string }): Promise<Readable> {
    return this.#http.request({ method: 'GET', path: '/images/get', query: { names, platform: options?.platform }, signal: options?.signal });
  }

  loadImages(archive: Readable, options?: CallOptions & { readonly quiet?: boolean; readonly platform?: string }): AsyncIterable<JsonMessage> {
    return this.#progressLines({
      method: 'POST',
      path: '/images/load',
      query: { quiet: options?.quiet || undefined, platform: options?.platform },
      headers: { 'Content-Type': 'application/x-tar' },
      body: archive,
      signal: options?.signal,
    });
  }

  pruneImages(options?: CallOptions & { readonly filters?: Filters }): Promise<ImagePruneResponse> {
    return this.#http.json({ method: 'POST', path: '/images/prune', query: { filters: formatFilters(options?.filters) }, signal: options?.signal });
  }

  buildImage(context: Readable, options?: BuildOptions & CallOptions): AsyncIterable<JsonMessage> {
    const o = options ?? {};
    // As docker's client: empty maps left out, keys sorted (Go marshals maps in key order).
    const json = (v: Readonly<Record<string, unknown>> | readonly string[] | undefined) => {
      if (v === undefined) return undefined;
      if (Array.isArray(v)) return v.length ? JSON.stringify(v) : undefined;
      const keys = Object.keys(v).sort();
      return keys.length ? JSON.stringify(Object.fromEntries(keys.map((k) => [k, (v as Record<string, unknown>)[k]]))) : undefined;
    };
    return this.#progressLines({
      method: 'POST',
      path: '/build',
      query: {
        t: o.tags,
        dockerfile: o.dockerfile,
        buildargs: json(o.buildArgs),
        labels: json(o.labels),
        cachefrom: json(o.cacheFrom),
        target: o.target,
        nocache: o.noCache || undefined,
        pull: o.pull || undefined,
        q: o.quiet || undefined,
        rm: o.remove === false ? false : undefined,
        forcerm: o.forceRemove || undefined,
        platform: o.platform,
        networkmode: o.networkMode,
        extrahosts: o.extraHosts,
        shmsize: o.shmSize,
        memory: o.memory,
        memswap: o.memorySwap,
        cpushares: o.cpuShares,
        cpusetcpus: o.cpuSetCpus,
        cpuperiod: o.cpuPeriod,
        cpuquota: o.cpuQuota,
        version: '1',
      },
      headers: { 'Content-Type': 'application/x-tar', ...(o.authConfigs ? { 'X-Registry-Config': encodeAuthHeader(o.authConfigs) } : {}) },
      body: context,
      signal: o.signal,
    });
  }

  pruneBuildCache(options?: CallOptions & { readonly all?: boolean; readonly filters?: Filters }): Promise<BuildCachePruneResponse> {
    return this.#http.json({ method: 'POST', path: '/build/prune', query: { all: options?.all || undefined, filters: formatFilters(options?.filters) }, signal: options?.signal });
  }

  // Volumes

  createVolume(body: VolumeCreateRequest, options?: CallOptions): Promise<Volume> {
    return this.#http.json({ method: 'POST', path: '/volumes/create', body, signal: options?.signal });
  }

  listVolumes(options?: CallOptions & { readonly filters?: Filters }): Promise<VolumeListResponse> {
    return this.#http.json({ method: 'GET', path: '/volumes', query: { filters: formatFilters(options?.filters) }, signal: options?.signal });
  }

  inspectVolume(name: string, options?: CallOptions): Promise<Volume> {
    return this.#http.json({ method: 'GET', path: `/volumes/${enc(name)}`, signal: options?.signal });
  }

  async removeVolume(name: string, options?: CallOptions & { readonly force?: boolean }): Promise<void> {
    await this.#http.empty({ method: 'DELETE', path: `/volumes/${enc(name)}`, query: { force: options?.force || undefined }, signal: options?.signal });
  }

  pruneVolumes(options?: CallOptions & { readonly filters?: Filters }): Promise<VolumePruneResponse> {
    return this.#http.json({ method: 'POST', path: '/volumes/prune', query: { filters: formatFilters(options?.filters) }, signal: options?.signal });
  }

  // Networks

  createNetwork(body: NetworkCreateRequest, options?: CallOptions): Promise<NetworkCreateResponse> {
    return this.#http.json({ method: 'POST', path: '/networks/create', body, signal: options?.signal });
  }

  listNetworks(options?: CallOptions & { readonly filters?: Filters }): Promise<Network[]> {
    return this.#http.json({ method: 'GET', path: '/networks', query: { filters: formatFilters(options?.filters) }, signal: options?.signal });
  }

  inspectNetwork(id: string, options?: CallOptions & { readonly verbose?: boolean }): Promise<Network> {
    return this.#http.json({ method: 'GET', path: `/networks/${enc(id)}`, query: { verbose: options?.verbose || undefined }, signal: options?.signal });
  }

  async removeNetwork(id: string, options?: CallOptions): Promise<void> {
    await this.#http.empty({ method: 'DELETE', path: `/networks/${enc(id)}`, signal: options?.signal });
  }

  async connectNetwork(id: string, body: NetworkConnectRequest, options?: CallOptions): Promise<void> {
    await this.#http.empty({ method: 'POST', path: `/networks/${enc(id)}/connect`, body, signal: options?.signal });
  }

  async disconnectNetwork(id: string, body: NetworkDisconnectRequest, options?: CallOptions): Promise<void> {
    await this.#http.empty({ method: 'POST', path: `/networks/${enc(id)}/disconnect`, body, signal: options?.signal });
  }

  pruneNetworks(options?: CallOptions & { readonly filters?: Filters }): Promise<NetworkPruneResponse> {
    return this.#http.json({ method: 'POST', path: '/networks/prune', query: { filters: formatFilters(options?.filters) }, signal: options?.signal });
  }

  async close(): Promise<void> {
    this.#http.close();
  }
}

function pathStatOf(res: IncomingMessage): ContainerPathStat {
  const header = res.headers['x-docker-container-path-stat'];
  if (typeof header !== 'string') throw engineError('the engine sent no X-Docker-Container-Path-Stat header', EngineErrorCode.Remote, 'Internal');
  return JSON.parse(Buffer.from(header, 'base64').toString('utf8')) as ContainerPathStat;
}
