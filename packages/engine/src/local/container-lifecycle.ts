import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { hostname as hostHostname, release as kernelRelease } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ErrorKind, describeError, errnoCode, hasCode, hasKind, isBerthError, throwIfAborted } from '@berth/errors';
import { randomHex, readJsonFile, removeFile, removeTree, writeJsonAtomic } from '@berth/fsutil';
import { digestOf, familiarReference, parseReference, type Digest } from '@berth/oci';
import { utcTimestamp } from '@berth/log';
import { parsePublish, type PortSpec } from '@berth/network';
import { RuntimeErrorCode, buildSpec, jsonFileLogRotation, readExitRecord, type LinuxResources, type NamespaceMode, type RootfsMount } from '@berth/runtime';
import { RootResolver, mountAll, mountData, unmount, type Mount } from '@berth/snapshot';
import type { ImageDetails } from '@berth/store';
import { EngineErrorCode, engineError, type ContainerWait } from '../engine.js';
import type { CallOptions, Filters } from '../types/common.js';
import type {
  ContainerCreateRequest,
  ContainerCreateResponse,
  ContainerPruneResponse,
  ContainerUpdateRequest,
  ContainerUpdateResponse,
  HostConfig,
  PortMap,
  WaitCondition,
} from '../types/container.js';
import type { EndpointSettings } from '../types/network.js';
import { entrypointAndArgs, mergeImageConfig, validateConfig, validateHostConfig } from './container-config.js';
import type { ContainerRecord, ContainerStateRecord, MountRecord, NetworkingRecord } from './container-record.js';
import { namespaceMode, runOptionsFor, type EtcFiles } from './container-spec.js';
import { newContainerId, validContainerName } from './container-store.js';
import { invalidParameter, isPaused, notRunning } from './docker-errors.js';
import { nowRfc3339, rfc3339ToNanos, untilToNanos, zeroTime } from './docker-time.js';
import { parseSignal } from './signal-names.js';
import type { EngineContext } from './engine-context.js';
import { mountRequests, type MountRequest } from './mount-spec.js';
import { randomContainerName } from './name-generator.js';
import { parentPid, processAlive, processStartTime } from './process-liveness.js';
import { shouldRestart, validateRestartPolicy } from './restart-policy.js';

const run = promisify(execFile);

/**
 * True when something is mounted at `path`. Not a comparison of device numbers: the copying
 * snapshotter's root is a bind mount from the same file system, which has its parent's device.
 */
async function isMountPoint(path: string): Promise<boolean> {
  let real: string;
  try {
    real = realpathSync(path);
  } catch {
    return false;
  }
  const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
  // Field 5 is the mount point, with space, tab, newline and backslash as octal escapes.
  return mountinfo.split('\n').some((line) => (line.split(' ')[4] ?? '').replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))) === real);
}

/** overlayfs's `volatile` (no sync of the upper file system when it is unmounted) came in Linux 5.10. */
const overlayVolatile = (() => {
  const [major = 0, minor = 0] = kernelRelease().split('.').map((n) => parseInt(n, 10));
  return major > 5 || (major === 5 && minor >= 10);
})();

/**
 * A container's root mounts for one run. A `--rm` container's overlay is mounted `volatile`:
 * unmounting it then skips the sync of the whole upper file system (20 ms on an idle disk, whole
 * seconds behind other writers), which only matters after a host crash, and a crashed `--rm`
 * container is removed, never run again: nothing it wrote is read back. The kernel refuses to
 * mount an upper dir again while its `work/incompat/volatile` marker is there (it stays after a
 * clean unmount too); every run clears it first, so a `--rm` container whose removal was cut
 * short (the engine killed) can still be started or removed by hand.
 */
async function runMounts(mounts: readonly Mount[], autoRemove: boolean): Promise<Mount[]> {
  return Promise.all(
    mounts.map(async (m) => {
      const workdir = m.type === 'overlay' ? m.options.find((o) => o.startsWith('workdir='))?.slice('workdir='.length) : undefined;
      if (!workdir) return m;
      await removeTree(join(workdir, 'work', 'incompat', 'volatile'));
      return autoRemove && overlayVolatile ? { ...m, options: [...m.options, 'volatile'] } : m;
    }),
  );
}

/** What the lifecycle needs from its owner beyond the shared context. */
export interface LifecycleOptions {
  /** The host path of the init binary `--init` runs as pid 1; undefined when none is available. */
  readonly initPath: () => Promise<string | undefined>;
  /** Called after a container starts that needs watching beyond this process (health, restart, auto-remove). */
  readonly onStarted?: (record: ContainerRecord, watchedHere: boolean) => void;
  /** The engine's DNS settings (dockerd's `--dns`, `--dns-search`, `--dns-opt`) for containers that set none. */
  readonly dns?: DnsDefaults;
  /** The engine's log driver and options (dockerd's `--log-driver`, `--log-opt`); json-file without options by default. */
  readonly logConfig?: { readonly Type: string; readonly Config?: Readonly<Record<string, string>> };
}

/** DNS servers, search domains and resolver options containers get unless they name their own. */
export interface DnsDefaults {
  readonly servers?: readonly string[];
  readonly search?: readonly string[];
  readonly options?: readonly string[];
}

/**
 * A hook run between the runtime's `create` and `start`, with the monitor's attach socket
 * (pre-start attach). A lone one may run while the runtime creates the container; `signal`
 * then ends it when the create fails.
 */
export type BeforeStartHook = (attachSocket: string, signal?: AbortSignal) => Promise<boolean>;

const live = new Set(['running', 'paused', 'restarting']);

/** True while the container's process runs (or is paused). */
export function isRunning(record: ContainerRecord): boolean {
  return record.state.status === 'running' || record.state.status === 'paused';
}

function initialState(): ContainerStateRecord {
  return {
    status: 'created',
    pid: 0,
    exitCode: 0,
    error: '',
    startedAt: zeroTime,
    finishedAt: zeroTime,
    oomKilled: false,
    manuallyStopped: false,
    hasBeenStarted: false,
    runCount: 0,
    monitorPid: 0,
    monitorStartTime: '',
  };
}


/**
 * A container's log config as dockerd settles it: its own driver, else the engine's; with the
 * engine's driver, the engine's options under the container's own.
 */
function logConfigOf(own: HostConfig['LogConfig'], engine: LifecycleOptions['logConfig'] = { Type: 'json-file' }): { Type: string; Config: Record<string, string> } {
  const type = own?.Type || engine.Type;
  return { Type: type, Config: { ...(type === engine.Type ? engine.Config : {}), ...(own?.Config ?? {}) } };
}

/** A container's DNS: each of its own settings, else the engine's, as dockerd merges them. */
export function dnsSettings(host: Pick<HostConfig, 'Dns' | 'DnsSearch' | 'DnsOptions'>, defaults: DnsDefaults = {}): { dns?: string[]; dnsSearch?: string[]; dnsOptions?: string[] } {
  const servers = host.Dns?.length ? host.Dns : defaults.servers;
  const search = host.DnsSearch?.length ? host.DnsSearch : defaults.search;
  const options = host.DnsOptions?.length ? host.DnsOptions : defaults.options;
  return {
    ...(servers?.length ? { dns: [...servers] } : {}),
    ...(search?.length ? { dnsSearch: [...search] } : {}),
    ...(options?.length ? { dnsOptions: [...options] } : {}),
  };
}

function portSpecs(host: HostConfig, exposed: readonly string[]): PortSpec[] {
  const specs: PortSpec[] = [];
  const bound = new Set<string>();
  for (const [key, bindings] of Object.entries(host.PortBindings ?? {})) {
    const [port, proto = 'tcp'] = key.split('/');
    bound.add(`${port}/${proto}`);
    for (const b of bindings?.length ? bindings : [{}]) {
      const ip = b.HostIp && b.HostIp !== '::' ? b.HostIp : '';
      specs.push(...parsePublish(`${ip}:${b.HostPort ?? ''}:${port}/${proto}`));
    }
  }
  if (host.PublishAllPorts) {
    for (const key of exposed) {
      const [port, proto = 'tcp'] = key.split('/');
      if (!bound.has(`${port}/${proto}`)) specs.push(...parsePublish(`${port}/${proto}`));
    }
  }
  return specs;
}

/**
 * Containers from create to removal: records, names, mounts and volumes, the OCI bundle, the
 * runtime, networking, and what happens when a container's process ends. Every change to a
 * container happens under its lock; a run that ended is noticed by whoever looks first (a
 * waiter, a list, the supervisor), which records the exit and tears down what the run held.
 */
export class ContainerLifecycle {
  readonly #ctx: EngineContext;
  readonly #options: LifecycleOptions;
  readonly #beforeStart = new Map<string, Set<BeforeStartHook>>();
  readonly #waiting = new Map<string, number>();
  /** Exit codes of runs that ended here, for waiters of a container `--rm` removed at once. */
  readonly #lastExit = new Map<string, number>();

  constructor(ctx: EngineContext, options: LifecycleOptions) {
    this.#ctx = ctx;
    this.#options = options;
  }

  // ---- reading -------------------------------------------------------------------------------

  /** The record a reference names, with the runtime's view folded in. */
  async get(ref: string): Promise<ContainerRecord> {
    const id = await this.#ctx.containers.resolve(ref);
    const record = await this.#ctx.containers.read(id, ref);
    return (await this.refresh(record)) ?? (await this.#ctx.containers.read(id, ref));
  }

  /** Every container, newest first, each refreshed. */
  async listAll(): Promise<ContainerRecord[]> {
    const records = await this.#ctx.containers.list();
    const refreshed = await Promise.all(records.map((r) => this.refresh(r)));
    return refreshed.filter((r): r is ContainerRecord => r !== undefined).sort((a, b) => (a.created < b.created ? 1 : a.created > b.created ? -1 : 0));
  }

  /**
   * The record as it is now: a run whose monitor has ended is recorded as exited (and its
   * resources released) first. Undefined when that removed the container (`--rm`).
   */
  async refresh(record: ContainerRecord): Promise<ContainerRecord | undefined> {
    if (!isRunning(record)) return record;
    if (await this.#runAlive(record)) return record;
    return this.finishRun(record.id);
  }

  async #runAlive(record: ContainerRecord): Promise<boolean> {
    const s = record.state;
    if (s.monitorPid > 0) return processAlive(s.monitorPid, s.monitorStartTime);
    if (s.pid > 0) return processAlive(s.pid, '');
    return false;
  }

  // ---- create --------------------------------------------------------------------------------

  async #image(ref: string, signal?: AbortSignal): Promise<ImageDetails> {
    try {
      return await this.#ctx.images.inspect(ref, signal ? { signal } : {});
    } catch (err) {
      if (hasKind(err, 'NotFound')) {
        let shown = ref;
        try {
          shown = familiarReference(parseReference(ref));
        } catch {
          // an ID prefix or another form parseReference does not take: show it as given
        }
        throw engineError(`No such image: ${shown}`, EngineErrorCode.ImageNotFound, ErrorKind.NotFound, { cause: err });
      }
      throw err;
    }
  }

  async #networking(host: HostConfig, body: ContainerCreateRequest, signal?: AbortSignal): Promise<NetworkingRecord> {
    let mode = host.NetworkMode || 'bridge';
    if (mode === 'default') mode = 'bridge';
    // `default` names the bridge network on Linux (the docker CLI sends its endpoint under it).
    const endpoints = Object.fromEntries(Object.entries(body.NetworkingConfig?.EndpointsConfig ?? {}).map(([k, v]) => [k === 'default' ? 'bridge' : k, v]));
    const networks: Record<string, EndpointSettings> = {};
    if (mode === 'host' || mode === 'none' || mode.startsWith('container:')) {
      if (mode.startsWith('container:')) {
        const other = await this.#ctx.containers.resolve(mode.slice('container:'.length));
        mode = `container:${other}`;
      } else {
        const net = await this.#ctx.network().inspectNetwork(mode, signal ? { signal } : {});
        networks[mode] = { NetworkID: net.id, ...(endpoints[mode] ?? {}) };
      }
      return { mode, networks, ports: {}, sandboxKey: '' };
    }
    const names = [mode, ...Object.keys(endpoints).filter((n) => n !== mode)];
    for (const name of names) {
      const net = await this.#ctx.network().inspectNetwork(name, signal ? { signal } : {});
      const requested = endpoints[name] ?? {};
      if (net.isDefault) {
        if (requested.Aliases?.length) throw invalidParameter('network-scoped alias is supported only for containers in user defined networks');
        if (requested.IPAMConfig?.IPv4Address) throw invalidParameter('user specified IP address is supported on user defined networks only');
      }
      networks[net.name] = { ...requested, NetworkID: net.id };
      if (name === mode) mode = net.name;
    }
    return { mode, networks, ports: {}, sandboxKey: '' };
  }

  async #makeMounts(requests: readonly MountRequest[], created: string[]): Promise<MountRecord[]> {
    const out: MountRecord[] = [];
    for (const m of requests) {
      if (m.type === 'bind') {
        if (!m.createSource) {
          const exists = await stat(m.source).then(() => true, () => false);
          if (!exists) throw invalidParameter(`invalid mount config for type "bind": bind source path does not exist: ${m.source}`);
        }
        out.push(m);
        continue;
      }
      if (m.type === 'tmpfs') {
        out.push(m);
        continue;
      }
      const { volume, created: made } = await this.#ctx.volumes.create({
        ...(m.name ? { name: m.name } : {}),
        anonymous: !m.name,
      });
      if (made) {
        created.push(volume.Name);
        await this.#ctx.events.append({ Type: 'volume', Action: 'create', Actor: { ID: volume.Name, Attributes: { driver: 'local' } } });
      }
      out.push({ ...m, name: volume.Name, source: volume.Mountpoint, ...(m.name ? {} : { anonymous: true }) });
    }
    return out;
  }

  /** `POST /containers/create`. */
  async create(body: ContainerCreateRequest, options: CallOptions & { readonly name?: string; readonly platform?: string } = {}): Promise<ContainerCreateResponse> {
    const signal = options.signal;
    validateConfig(body);
    const rawHost = body.HostConfig ?? {};
    validateHostConfig(rawHost);
    if (!body.Image) throw invalidParameter('config.Image must be set: no image was given');
    const image = await this.#image(body.Image, signal);
    if (options.platform) {
      const [os, arch] = options.platform.split('/');
      if ((os && os !== image.config.os) || (arch && arch !== image.config.architecture)) {
        throw engineError(
          `image with reference ${body.Image} was found but does not match the specified platform: wanted ${options.platform}, actual: ${image.config.os}/${image.config.architecture}`,
          EngineErrorCode.ImageNotFound,
          ErrorKind.NotFound,
        );
      }
    }
    const id = newContainerId();
    const host: HostConfig = {
      ...rawHost,
      NetworkMode: !rawHost.NetworkMode || rawHost.NetworkMode === 'default' ? 'bridge' : rawHost.NetworkMode,
      RestartPolicy: { Name: rawHost.RestartPolicy?.Name || 'no', MaximumRetryCount: rawHost.RestartPolicy?.MaximumRetryCount ?? 0 },
      LogConfig: logConfigOf(rawHost.LogConfig, this.#options.logConfig),
    };
    if (host.NetworkMode === 'host' || host.NetworkMode?.startsWith('container:')) {
      if (body.Hostname && host.NetworkMode.startsWith('container:')) throw invalidParameter('conflicting options: hostname and the network mode');
    }
    const { HostConfig: _host, NetworkingConfig: _networking, ...bodyConfig } = body;
    const merged = mergeImageConfig(bodyConfig, image.config.config);
    const hostname = body.Hostname || (host.NetworkMode === 'host' ? hostHostname() : id.slice(0, 12));
    const config = { ...merged, Hostname: hostname, Image: body.Image };
    const { path, args } = entrypointAndArgs(config);
    const networking = await this.#networking(host, body, signal);
    const requests = mountRequests(host, config.Volumes);

    // A name, then everything else; whatever fails after the name is taken gives it back.
    let name: string;
    if (options.name) {
      name = validContainerName(options.name);
      await this.#ctx.containers.reserveName(name, id);
    } else {
      for (let attempt = 0; ; attempt++) {
        name = randomContainerName(attempt);
        try {
          await this.#ctx.containers.reserveName(name, id);
          break;
        } catch (err) {
          if (!hasCode(err, EngineErrorCode.NameInUse) || attempt > 8) throw err;
        }
      }
    }
    const createdVolumes: string[] = [];
    let snapshotMade = false;
    try {
      const mounts = await this.#makeMounts(requests, createdVolumes);
      const snapshotter = await this.#ctx.snapshotter();
      const { chainId } = await snapshotter.unpack({
        content: this.#ctx.images.content,
        layers: image.manifest.layers,
        diffIds: image.config.rootfs.diff_ids,
        ...(signal ? { signal } : {}),
      });
      throwIfAborted(signal);
      await snapshotter.prepare(id, await this.#initLayer(chainId, signal), signal ? { signal } : {});
      snapshotMade = true;
      const record: ContainerRecord = {
        id,
        name,
        created: nowRfc3339(),
        path,
        args,
        config,
        hostConfig: host,
        image: image.id,
        platform: image.config.os,
        snapshotKey: id,
        driver: snapshotter.driver === 'overlay' ? 'overlay2' : 'vfs',
        mounts,
        networking,
        state: initialState(),
        restartCount: 0,
        logPath: host.LogConfig?.Type === 'none' ? '' : this.#ctx.layout.logPath(id),
      };
      await this.#ctx.containers.create(record);
      await this.#event('create', record);
      return { Id: id, Warnings: [] };
    } catch (err) {
      if (snapshotMade) await (await this.#ctx.snapshotter()).remove(id).catch(() => {});
      for (const v of createdVolumes) await this.#ctx.volumes.remove(v, async () => []).catch(() => {});
      await this.#ctx.containers.releaseName(name, id);
      throw err;
    }
  }

  /**
   * docker's init layer: between an image and its containers, a committed snapshot holding the
   * mount points every container gets (/etc/hosts, /etc/hostname, /etc/resolv.conf, /proc,
   * /sys, /dev, ...), so that they show in no container's diff, export of changes or commit.
   * Made once per image (keyed by a digest of its chain) and shared.
   */
  async #initLayer(chainId: Digest | undefined, signal?: AbortSignal): Promise<Digest> {
    const snapshotter = await this.#ctx.snapshotter();
    const key = digestOf(`${chainId ?? ''} berth-init`);
    if (await snapshotter.stat(key)) return key;
    const temp = `init-${randomHex(8)}`;
    await mkdir(this.#ctx.layout.runRoot, { recursive: true });
    const dir = await mkdtemp(join(this.#ctx.layout.runRoot, 'init-'));
    try {
      await mountAll(await snapshotter.prepare(temp, chainId, signal ? { signal } : {}), dir, signal);
      try {
        const resolver = new RootResolver(dir);
        const ensureDir = (rel: string) => resolver.resolveDir(rel.split('/'), (r) => mkdirSync(resolver.abs(r), { mode: 0o755 }));
        for (const d of ['proc', 'sys', 'dev', 'dev/pts', 'dev/shm', 'dev/mqueue', 'etc']) ensureDir(d);
        const etc = resolver.abs(ensureDir('etc') ?? 'etc');
        for (const f of ['hosts', 'hostname', 'resolv.conf']) {
          await writeFile(join(etc, f), '', { flag: 'wx', mode: 0o644 }).catch((err: unknown) => {
            if (errnoCode(err) !== 'EEXIST') throw err;
          });
        }
        await symlink('/proc/mounts', join(etc, 'mtab')).catch(() => {});
      } finally {
        await unmount(dir);
      }
    } catch (err) {
      await snapshotter.remove(temp).catch(() => {});
      throw err;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    await snapshotter.commit(temp, key, signal ? { signal } : {});
    return key;
  }

  async #event(action: string, record: ContainerRecord, extra: Record<string, string> = {}): Promise<void> {
    await this.#ctx.events.append({
      Type: 'container',
      Action: action,
      Actor: { ID: record.id, Attributes: { ...(record.config.Labels ?? {}), image: record.config.Image ?? record.image, name: record.name, ...extra } },
    });
  }

  // ---- start ---------------------------------------------------------------------------------

  /**
   * Runs `hook` between the runtime's create and start of the container's next start in this
   * process. A hook connects to the attach socket and says whether it did: a lone hook's
   * connection is what starts the process (`CreateOptions.startOnAttach`).
   */
  addBeforeStart(id: string, hook: BeforeStartHook): () => void {
    const set = this.#beforeStart.get(id) ?? new Set();
    this.#beforeStart.set(id, set);
    set.add(hook);
    return () => {
      set.delete(hook);
      if (set.size === 0 && this.#beforeStart.get(id) === set) this.#beforeStart.delete(id);
    };
  }

  /** `POST /containers/{id}/start`: false when it already runs (docker's 304). */
  async start(ref: string, options: CallOptions = {}): Promise<boolean> {
    const id = await this.#ctx.containers.resolve(ref);
    let started: ContainerRecord | undefined;
    const result = await this.#ctx.containers.withLock(id, async () => {
      const current = await this.#ctx.containers.read(id, ref);
      const record = (await this.#refreshLocked(current)) ?? current;
      if (record.state.status === 'paused') {
        throw engineError('cannot start a paused container, try unpause instead', EngineErrorCode.ContainerPaused, ErrorKind.Conflict);
      }
      if (record.state.status === 'running') return false;
      if (record.state.status === 'removing' || record.state.status === 'dead') {
        throw engineError(`container is marked for removal and cannot be started`, EngineErrorCode.InvalidParameter, ErrorKind.Conflict);
      }
      started = await this.startLocked(record, options.signal);
      return true;
    });
    this.#ctx.watch.notify(id);
    if (started) this.#options.onStarted?.(started, (this.#waiting.get(id) ?? 0) > 0);
    return result;
  }

  async #mountRootfs(record: ContainerRecord, signal?: AbortSignal): Promise<string> {
    const rootfs = this.#ctx.layout.containerFile(record.id, 'rootfs');
    await mkdir(rootfs, { recursive: true });
    if (!(await isMountPoint(rootfs))) {
      const snapshotter = await this.#ctx.snapshotter();
      await mountAll(await runMounts(await snapshotter.mounts(record.snapshotKey), record.hostConfig.AutoRemove === true), rootfs, signal);
    }
    return rootfs;
  }

  async #unmountRootfs(id: string): Promise<void> {
    const rootfs = this.#ctx.layout.containerFile(id, 'rootfs');
    if (await isMountPoint(rootfs)) await unmount(rootfs);
  }

  /**
   * The container's root as berth-runtime mounts it inside the container (the snapshot's mounts,
   * an overlay's long lowerdir list made relative as mount(8) gets it), and its empty mount point.
   */
  async #runtimeRootfs(record: ContainerRecord): Promise<{ rootfs: string; mounts: RootfsMount[] }> {
    const rootfs = this.#ctx.layout.containerFile(record.id, 'rootfs');
    const snapshotter = await this.#ctx.snapshotter();
    mkdirSync(rootfs, { recursive: true });
    const mounts = await runMounts(await snapshotter.mounts(record.snapshotKey), record.hostConfig.AutoRemove === true);
    return {
      rootfs,
      mounts: mounts.map((m) => {
        if (m.type === 'bind') return { type: m.type, source: m.source, options: [...m.options] };
        const { data, cwd } = mountData(m);
        return { type: m.type, source: m.source, options: data.split(','), ...(cwd ? { cwd } : {}) };
      }),
    };
  }

  /**
   * Fills empty volumes from the image's content at their mount points (docker's copy-up), and
   * makes missing bind sources. `rootfs` is the root mounted here; without it (berth-runtime
   * mounts it in the container) a view is mounted only when a volume has something to copy.
   */
  async #prepareMounts(record: ContainerRecord, rootfs: string | undefined, signal?: AbortSignal): Promise<void> {
    let view: string | undefined;
    try {
      for (const m of record.mounts) {
        if (m.type === 'bind' && m.createSource) {
          await mkdir(m.source, { recursive: true });
          continue;
        }
        if (m.type === 'volume' && m.name) await this.#ctx.volumes.mountIfNeeded(m.name);
        if (m.type !== 'volume' || m.noCopy || m.subpath) continue;
        const entries = await readdir(m.source).catch(() => ['?']);
        if (entries.length > 0) continue;
        if (!rootfs && !view) {
          await mkdir(this.#ctx.layout.runRoot, { recursive: true });
          view = await mkdtemp(join(this.#ctx.layout.runRoot, 'copy-up-'));
          await mountAll(await (await this.#ctx.snapshotter()).view(record.snapshotKey), view, signal);
        }
        const resolver = new RootResolver((rootfs ?? view)!);
        const rel = resolver.resolveDir(m.destination.split('/').filter(Boolean));
        if (rel === undefined) continue;
        const from = resolver.abs(rel);
        if ((await readdir(from).catch(() => [])).length === 0) continue;
        await run('cp', ['-a', '--', `${from}/.`, `${m.source}/`]);
      }
    } finally {
      if (view) {
        if (await isMountPoint(view)) await unmount(view);
        await rm(view, { recursive: true, force: true });
      }
    }
  }

  async #etcFiles(record: ContainerRecord, signal?: AbortSignal): Promise<EtcFiles | undefined> {
    const mode = record.networking.mode;
    if (mode.startsWith('container:')) {
      const other = this.#ctx.layout.container(mode.slice('container:'.length));
      return { hostname: join(other, 'hostname'), hosts: join(other, 'hosts'), resolvConf: join(other, 'resolv.conf') };
    }
    const dir = this.#ctx.layout.container(record.id);
    const host = record.hostConfig;
    const files = await this.#ctx.network().containerFiles({
      containerId: record.id,
      hostname: record.config.Hostname ?? record.id.slice(0, 12),
      ...(record.config.Domainname ? { domainname: record.config.Domainname } : {}),
      mode: mode === 'host' ? 'host' : mode === 'none' ? 'none' : 'bridge',
      ...(host.ExtraHosts?.length ? { extraHosts: host.ExtraHosts } : {}),
      ...dnsSettings(host, this.#options.dns),
      ...(signal ? { signal } : {}),
    });
    const paths = { hostname: join(dir, 'hostname'), hosts: join(dir, 'hosts'), resolvConf: join(dir, 'resolv.conf') };
    // Written in place, not renamed: a running container has these inodes bind-mounted. Small
    // files, written synchronously at every start.
    writeFileSync(paths.hostname, files.hostname);
    writeFileSync(paths.hosts, files.hosts);
    writeFileSync(paths.resolvConf, files.resolvConf);
    return paths;
  }

  async #joinPath(ref: string, what: string): Promise<NamespaceMode> {
    const otherId = await this.#ctx.containers.resolve(ref);
    const other = await this.get(otherId);
    if (!isRunning(other)) throw engineError(`cannot join ${what} of a non running container: ${ref}`, EngineErrorCode.ContainerNotRunning, ErrorKind.Conflict);
    return { path: `/proc/${other.state.pid}/ns/${what}` };
  }

  async #namespace(mode: string | undefined, what: 'pid' | 'ipc' | 'uts'): Promise<NamespaceMode> {
    const m = namespaceMode(mode, what);
    if (typeof m === 'object' && 'container' in m) return this.#joinPath(m.container, what);
    return m;
  }

  /** Attaches a created container to its networks and publishes its ports; the live endpoints. */
  async #connect(record: ContainerRecord, pid: number, signal?: AbortSignal): Promise<NetworkingRecord> {
    const network = this.#ctx.network();
    const mode = record.networking.mode;
    if (mode === 'host' || mode === 'none' || mode.startsWith('container:')) return record.networking;
    const networks: Record<string, EndpointSettings> = {};
    for (const [name, requested] of Object.entries(record.networking.networks)) {
      const ep = await retryRace(() => network.connect({
        containerId: record.id,
        containerName: record.name,
        pid,
        network: requested.NetworkID || name,
        ...(requested.Aliases?.length ? { aliases: [...requested.Aliases] } : {}),
        ...(requested.IPAMConfig?.IPv4Address ? { ip: requested.IPAMConfig.IPv4Address } : {}),
        ...(requested.MacAddress ? { mac: requested.MacAddress } : {}),
        ...(signal ? { signal } : {}),
      }));
      networks[ep.networkName] = {
        ...requested,
        NetworkID: ep.networkId,
        EndpointID: ep.id,
        Gateway: ep.gateway,
        IPAddress: ep.ipAddress,
        IPPrefixLen: ep.prefixLength,
        MacAddress: ep.macAddress,
        DNSNames: ep.dnsNames.length ? [...ep.dnsNames] : null,
      };
    }
    const ports: Record<string, { HostIp: string; HostPort: string }[]> = {};
    const specs = portSpecs(record.hostConfig, Object.keys(record.config.ExposedPorts ?? {}));
    if (specs.length) {
      for (const p of await retryRace(() => network.publish({ containerId: record.id, ports: specs, ...(signal ? { signal } : {}) }))) {
        const key = `${p.containerPort}/${p.protocol}`;
        (ports[key] ??= []).push({ HostIp: p.hostIp, HostPort: String(p.hostPort) });
      }
    }
    return { ...record.networking, networks, ports: ports as PortMap, sandboxKey: `/proc/${pid}/ns/net` };
  }

  /** Endpoints to connect and release: none in the host's or another container's namespace, nor with `--network none` (the runtime brings up `lo`). */
  #needsNetworkSetup(record: ContainerRecord): boolean {
    const mode = record.networking.mode;
    return mode !== 'host' && mode !== 'none' && !mode.startsWith('container:');
  }

  /** Starts a container whose lock is held; returns the running record. */
  async startLocked(record: ContainerRecord, signal?: AbortSignal): Promise<ContainerRecord> {
    const id = record.id;
    const layout = this.#ctx.layout;
    const runtime = this.#ctx.runtime;
    const host = record.hostConfig;
    const initPath = host.Init ? await this.#options.initPath() : undefined;
    if (host.Init && !initPath) {
      throw engineError('--init is not available: no init binary (docker-init or tini-static) was found for this engine', EngineErrorCode.NotImplemented, ErrorKind.NotImplemented);
    }
    let runtimeCreated = false;
    let networked = false;
    try {
      // The /etc files do not need the root file system: write them while it is mounted.
      const etcFiles = this.#etcFiles(record, signal);
      etcFiles.catch(() => {});
      // berth-runtime mounts the root inside the container, where it ends with the container;
      // another runtime gets it mounted here.
      const inContainer = runtime.mountsRootfs ? await this.#runtimeRootfs(record) : undefined;
      const rootfs = inContainer?.rootfs ?? (await this.#mountRootfs(record, signal));
      await this.#prepareMounts(record, inContainer ? undefined : rootfs, signal);
      const mode = record.networking.mode;
      const network: NamespaceMode = mode === 'host' ? 'host' : mode.startsWith('container:') ? await this.#joinPath(mode.slice('container:'.length), 'net') : 'private';
      const etc = await etcFiles;
      const options = await runOptionsFor(record, {
        rootfs,
        ...(inContainer ? { rootfsMounts: inContainer.mounts } : {}),
        etc,
        network,
        pid: await this.#namespace(host.PidMode, 'pid'),
        ipc: await this.#namespace(host.IpcMode, 'ipc'),
        uts: await this.#namespace(host.UTSMode, 'uts'),
        ...(initPath ? { initPath } : {}),
      });
      const spec = await buildSpec({}, options);
      if (host.ConsoleSize && spec.process) spec.process.consoleSize = { height: host.ConsoleSize[0], width: host.ConsoleSize[1] };
      await writeJsonAtomic(layout.containerFile(id, 'config.json'), spec, { durable: false });
      mkdirSync(join(layout.runRoot, 'attach'), { recursive: true });
      const pidFile = join(layout.runRoot, 'attach', `${id.slice(0, 32)}.pid`);
      const logRotation = jsonFileLogRotation(host.LogConfig?.Config ?? {});
      // The monitor records the end there and deletes the container itself; a file from an
      // earlier run must not be taken for this run's end.
      const exitFile = runtime.deletesOnExit ? layout.exitFile(id) : undefined;
      if (exitFile) removeFile(exitFile);
      const createOptions = {
        bundle: layout.container(id),
        pidFile,
        ...(exitFile ? { exitFile, deleteOnExit: true } : {}),
        ...(record.logPath ? { logPath: record.logPath } : {}),
        ...(record.logPath && logRotation ? { logRotation } : {}),
        attachSocket: layout.attachSocket(id),
        ...(record.config.OpenStdin ? { openStdin: true } : {}),
        ...(record.config.OpenStdin && record.config.StdinOnce ? { stdinOnce: true } : {}),
        ...(signal ? { signal } : {}),
      };
      const hooks = [...(this.#beforeStart.get(id) ?? [])];
      const split = hooks.length > 0 || this.#needsNetworkSetup(record);
      // A lone attached client and nothing else between create and start: its connection starts
      // the process, and no `start` exec is needed.
      const startOnAttach = hooks.length === 1 && !this.#needsNetworkSetup(record) && runtime.startsOnAttach;
      // One runtime exec when nothing has to happen between create and start; a run that crashed
      // may have left its id in the runtime, which is deleted and the create tried again.
      const launch = () => (split ? runtime.create(id, { ...createOptions, startOnAttach }) : runtime.runDetached(id, createOptions));
      // That lone client connects while the runtime creates the container: the monitor takes it
      // as soon as it is ready and the process starts then, while this process records the start.
      // Not onto a socket that is already there: it is another (stale) monitor's.
      const early = startOnAttach && !existsSync(createOptions.attachSocket) ? new AbortController() : undefined;
      const earlyAttach = early ? hooks[0]!(createOptions.attachSocket, early.signal).catch(() => false) : undefined;
      await launch()
        .catch(async (err: unknown) => {
          if (!hasCode(err, RuntimeErrorCode.Exists)) throw err;
          await runtime.delete(id, { force: true });
          await launch();
        })
        .catch(async (err: unknown) => {
          early?.abort();
          await earlyAttach;
          throw err;
        });
      runtimeCreated = true;
      const pid = Number(readFileSync(pidFile, 'utf8').trim());
      removeFile(pidFile);
      // A short process is gone at once, and with it the way from its pid to its parent, the
      // monitor; the monitor's state says it until the monitor has deleted the container.
      const monitor = runtime.monitorOf(id);
      let networking: NetworkingRecord = mode === 'none' ? { ...record.networking, sandboxKey: `/proc/${pid}/ns/net` } : record.networking;
      if (split) {
        if (this.#needsNetworkSetup(record)) {
          networked = true;
          networking = await this.#connect(record, pid, signal);
          if (etc && !record.networking.mode.startsWith('container:')) await this.#etcFiles(record, signal);
        }
        let attached = false;
        if (earlyAttach) attached = await earlyAttach;
        else for (const hook of hooks) attached = (await hook(createOptions.attachSocket)) || attached;
        if (!startOnAttach || !attached) await runtime.start(id, signal ? { signal } : {});
      }
      // The runtime's monitor is the parent of the container's init.
      const monitorPid = monitor?.pid ?? parentPid(pid);
      const now = nowRfc3339();
      const healthcheck = record.config.Healthcheck;
      const hasHealth = healthcheck?.Test?.length && healthcheck.Test[0] !== 'NONE';
      const next: ContainerRecord = {
        ...record,
        networking,
        state: {
          ...record.state,
          status: 'running',
          pid,
          exitCode: 0,
          error: '',
          startedAt: now,
          finishedAt: record.state.hasBeenStarted ? record.state.finishedAt : zeroTime,
          oomKilled: false,
          manuallyStopped: false,
          hasBeenStarted: true,
          runCount: record.state.runCount + 1,
          monitorPid,
          monitorStartTime: monitor?.startTime ?? (await processStartTime(monitorPid)),
          ...(hasHealth ? { health: { Status: 'starting', FailingStreak: 0, Log: record.state.health?.Log ?? [] } } : {}),
        },
      };
      await this.#ctx.containers.write(next);
      await this.#event('start', next);
      return next;
    } catch (err) {
      if (runtimeCreated) await runtime.delete(id, { force: true }).catch(() => {});
      if (networked) await this.#ctx.network().releaseContainer({ containerId: id }).catch(() => {});
      await this.#unmountRootfs(id).catch(() => {});
      const failure = this.#startError(err);
      const exitCode = (isBerthError(failure) ? failure.exitCode : undefined) ?? 128;
      await this.#ctx.containers.write({ ...record, state: { ...record.state, exitCode, error: failure.message } }).catch(() => {});
      if (record.hostConfig.AutoRemove && !record.state.hasBeenStarted) await this.#removeLocked(record, true).catch(() => {});
      throw failure;
    }
  }

  #startError(err: unknown): Error {
    if (!isBerthError(err)) return err instanceof Error ? err : new Error(String(err));
    // docker's wording around the runtime's own message, which stays whole (it is the cause too).
    const message = `failed to create task for container: OCI runtime create failed: ${err.message}`;
    if (hasCode(err, RuntimeErrorCode.ExecNotFound)) {
      return engineError(message, EngineErrorCode.CommandNotFound, ErrorKind.InvalidArgument, { cause: err, exitCode: 127 });
    }
    if (hasCode(err, RuntimeErrorCode.ExecDenied)) {
      return engineError(message, EngineErrorCode.CommandNotExecutable, ErrorKind.InvalidArgument, { cause: err, exitCode: 126 });
    }
    if (hasCode(err, RuntimeErrorCode.UserNotFound) || hasCode(err, RuntimeErrorCode.InvalidSpec)) {
      return engineError(message, EngineErrorCode.InvalidParameter, ErrorKind.InvalidArgument, { cause: err, exitCode: 126 });
    }
    return err;
  }

  // ---- the end of a run ----------------------------------------------------------------------

  async #refreshLocked(record: ContainerRecord): Promise<ContainerRecord | undefined> {
    if (!isRunning(record) || (await this.#runAlive(record))) return record;
    return this.#finishRunLocked(record);
  }

  /**
   * Records the end of a container's run and releases what it held (runtime state, network,
   * rootfs mount), then removes an `--rm` container. Idempotent: whoever comes second finds the
   * run finished. Undefined when the container is gone.
   */
  async finishRun(id: string): Promise<ContainerRecord | undefined> {
    const after = await this.#ctx.containers.withLock(id, async () => {
      const record = await this.#ctx.containers.tryRead(id);
      if (!record) return undefined;
      if (!isRunning(record)) return record;
      return this.#finishRunLocked(record);
    });
    this.#ctx.watch.notify(id);
    return after;
  }

  async #finishRunLocked(record: ContainerRecord): Promise<ContainerRecord | undefined> {
    const id = record.id;
    const runtime = this.#ctx.runtime;
    let exitCode = 255;
    let oomKilled = false;
    let finishedAt = nowRfc3339();
    // The monitor records the exit before it deletes the container (runtime deleteOnExit): with
    // the record there the run is over, and the engine's own cleanup goes on while the monitor
    // finishes its. Without it the run only seems over (its attach socket closed): the monitor
    // tells its clients and ends once they have let go, so give it the moment it needs; one that
    // lives on still runs.
    const exitFile = this.#ctx.layout.exitFile(id);
    const recorded = await readExitRecord(exitFile).catch(() => undefined);
    if (!recorded && !(await this.#monitorEnded(record))) return record;
    // Without a record (no monitor, or one that was killed) the runtime's state says what it knows.
    try {
      let ended: { exitCode?: number; oomKilled?: boolean; finished?: Date } | undefined = recorded ?? (await readExitRecord(exitFile)) ?? (await runtime.exitRecord(id));
      if (!ended) {
        const state = await runtime.state(id);
        // The monitor died but the process lives (its monitor was killed): end it so its state is known.
        if (state.status !== 'stopped') await runtime.kill(id, 'SIGKILL', { all: true }).catch(() => {});
        ended = state;
      }
      this.#ctx.logger.debug('run finished', { containerId: id, exitCode: ended.exitCode, monitorPid: record.state.monitorPid });
      if (ended.exitCode !== undefined) exitCode = ended.exitCode;
      if (ended.oomKilled) oomKilled = true;
      if (ended.finished) finishedAt = utcTimestamp(ended.finished.getTime());
    } catch (err) {
      // No runtime state: the host rebooted (the run root is gone) or the monitor was killed.
      this.#ctx.logger.debug('no runtime state for a finished run', { containerId: id, error: describeError(err) });
    }
    removeFile(exitFile);
    const runtimeReleased = this.#releaseRuntime(record, recorded !== undefined);
    if (this.#needsNetworkSetup(record)) {
      await this.#ctx
        .network()
        .releaseContainer({ containerId: id })
        .catch((err: unknown) => this.#ctx.logger.warn('network release failed', { containerId: id, error: describeError(err) }));
    }
    await this.#unmountRootfs(id).catch((err: unknown) => this.#ctx.logger.warn('rootfs unmount failed', { containerId: id, error: describeError(err) }));
    const health = record.state.health;
    // Whoever notices the end records the policy's verdict, so that no restart is lost to a
    // reader that got there before the supervisor; the supervisor does the restart.
    const restart = shouldRestart(record.hostConfig.RestartPolicy, { exitCode, manuallyStopped: record.state.manuallyStopped, restartCount: record.restartCount });
    const next: ContainerRecord = {
      ...record,
      networking: { ...record.networking, ports: {}, sandboxKey: '' },
      state: {
        ...record.state,
        status: restart ? 'restarting' : 'exited',
        pid: 0,
        exitCode,
        oomKilled,
        finishedAt,
        monitorPid: 0,
        monitorStartTime: '',
        ...(health ? { health: { ...health, Status: 'unhealthy' as const } } : {}),
      },
    };
    try {
      await this.#ctx.containers.write(next);
      if (oomKilled) await this.#event('oom', next);
      await this.#event('die', next, { exitCode: String(exitCode) });
      if (record.hostConfig.AutoRemove) {
        this.#lastExit.set(id, exitCode);
        await this.#removeLocked(next, true, { rootfsUnmounted: true });
        return undefined;
      }
      return next;
    } finally {
      await runtimeReleased;
    }
  }

  /** Waits for the monitor of a run to end; false when it lives on (the container still runs). */
  async #monitorEnded(record: ContainerRecord): Promise<boolean> {
    if (record.state.monitorPid <= 0) return !(await this.#runAlive(record));
    return eventually(async () => !(await processAlive(record.state.monitorPid, record.state.monitorStartTime)));
  }

  /**
   * Deletes an ended run from the runtime, once its monitor is gone: a monitor with
   * deleteOnExit has done it by then, and is not raced. One that recorded the exit but whose pid
   * the start could not learn (it had deleted the container already) removes its attach socket last.
   */
  async #releaseRuntime(record: ContainerRecord, exitRecorded: boolean): Promise<void> {
    const id = record.id;
    try {
      if (record.state.monitorPid <= 0 && exitRecorded && this.#ctx.runtime.deletesOnExit) await eventually(async () => !existsSync(this.#ctx.layout.attachSocket(id)));
      else await this.#monitorEnded(record);
      if (await this.#ctx.runtime.exists(id).catch(() => true)) await this.#ctx.runtime.delete(id, { force: true });
    } catch (err) {
      this.#ctx.logger.warn('runtime delete failed', { containerId: id, error: describeError(err) });
    }
  }

  // ---- stop, kill, pause ---------------------------------------------------------------------

  /** Waits until the run ends (the monitor's attach socket closes) or `ms` pass; true when it ended. */
  async #awaitExit(record: ContainerRecord, ms: number): Promise<boolean> {
    const controller = new AbortController();
    const timer = ms >= 0 ? setTimeout(() => controller.abort(), ms) : undefined;
    try {
      if (this.#ctx.runtime.hasMonitor) {
        await this.#ctx.watch.monitorGone(this.#ctx.layout.attachSocket(record.id), controller.signal);
      } else {
        while (!controller.signal.aborted && (await this.#runAlive(record))) await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      if (timer) clearTimeout(timer);
    }
    // A monitor that recorded the exit may still be deleting the container: the run is over.
    if (this.#ctx.runtime.deletesOnExit && existsSync(this.#ctx.layout.exitFile(record.id))) return true;
    return !(await this.#runAlive(record));
  }

  /** `POST /containers/{id}/stop`: false when it was not running (docker's 304). */
  async stop(ref: string, options: CallOptions & { readonly timeout?: number; readonly signalName?: string } = {}): Promise<boolean> {
    const id = await this.#ctx.containers.resolve(ref);
    const record = await this.get(id);
    if (record.state.status === 'restarting') {
      // Waiting for its policy's restart: stopping it cancels that.
      await this.#ctx.containers.withLock(id, async () => {
        const now = await this.#ctx.containers.tryRead(id);
        if (now?.state.status === 'restarting') await this.#ctx.containers.write({ ...now, state: { ...now.state, status: 'exited', manuallyStopped: true } });
      });
      this.#ctx.watch.notify(id);
      return true;
    }
    if (!isRunning(record)) return false;
    const signal = parseSignal(options.signalName || record.config.StopSignal || 'SIGTERM');
    const timeout = options.timeout ?? record.config.StopTimeout ?? 10;
    await this.#markStopping(id);
    if (record.state.status === 'paused') await this.#ctx.runtime.resume(id).catch(() => {});
    await this.#ctx.runtime.kill(id, signal).catch((err: unknown) => {
      if (!hasKind(err, 'NotFound') && !hasCode(err, RuntimeErrorCode.State)) throw err;
    });
    await this.#event('kill', record, { signal: String(signal) });
    if (!(await this.#awaitExit(record, timeout < 0 ? -1 : timeout * 1000))) {
      await this.#ctx.runtime.kill(id, 'SIGKILL', { all: true }).catch(() => {});
      await this.#event('kill', record, { signal: '9' });
      await this.#awaitExit(record, -1);
    }
    await this.finishRun(id);
    await this.#event('stop', record);
    return true;
  }

  async #markStopping(id: string): Promise<void> {
    await this.#ctx.containers.withLock(id, async () => {
      const record = await this.#ctx.containers.tryRead(id);
      if (record && !record.state.manuallyStopped) await this.#ctx.containers.write({ ...record, state: { ...record.state, manuallyStopped: true } });
    });
  }

  /** `POST /containers/{id}/kill`. */
  async kill(ref: string, options: CallOptions & { readonly signalName?: string } = {}): Promise<void> {
    const signal = parseSignal(options.signalName || 'SIGKILL');
    const record = await this.get(ref);
    if (!isRunning(record)) throw engineError(`cannot kill container: ${ref}: container ${record.id} is not running`, EngineErrorCode.ContainerNotRunning, ErrorKind.Conflict);
    if (record.state.status === 'paused' && signal !== 9) throw isPaused(record.id);
    await this.#markStopping(record.id);
    await this.#ctx.runtime.kill(record.id, signal);
    await this.#event('kill', record, { signal: String(signal) });
    if (signal === 9) {
      await this.#awaitExit(record, 10_000);
      await this.finishRun(record.id);
    }
  }

  async restart(ref: string, options: CallOptions & { readonly timeout?: number; readonly signalName?: string } = {}): Promise<void> {
    const id = await this.#ctx.containers.resolve(ref);
    await this.stop(id, options);
    await this.start(id, options);
    const record = await this.#ctx.containers.tryRead(id);
    if (record) await this.#event('restart', record);
  }

  async pause(ref: string, options: CallOptions = {}): Promise<void> {
    await this.#setPaused(ref, true, options.signal);
  }

  async unpause(ref: string, options: CallOptions = {}): Promise<void> {
    await this.#setPaused(ref, false, options.signal);
  }

  async #setPaused(ref: string, paused: boolean, signal?: AbortSignal): Promise<void> {
    const id = await this.#ctx.containers.resolve(ref);
    const record = await this.#ctx.containers.withLock(id, async () => {
      const current = await this.#ctx.containers.read(id, ref);
      const record = await this.#refreshLocked(current);
      if (!record || !isRunning(record)) throw notRunning(id);
      if (paused && record.state.status === 'paused') throw engineError(`Container ${id} is already paused`, EngineErrorCode.ContainerPaused, ErrorKind.Conflict);
      if (!paused && record.state.status !== 'paused') throw engineError(`Container ${id} is not paused`, EngineErrorCode.ContainerNotRunning, ErrorKind.Conflict);
      if (paused) await this.#ctx.runtime.pause(id, signal ? { signal } : {});
      else await this.#ctx.runtime.resume(id, signal ? { signal } : {});
      const next: ContainerRecord = { ...record, state: { ...record.state, status: paused ? 'paused' : 'running' } };
      await this.#ctx.containers.write(next);
      return next;
    });
    this.#ctx.watch.notify(id);
    await this.#event(paused ? 'pause' : 'unpause', record);
  }

  // ---- remove --------------------------------------------------------------------------------

  /** `DELETE /containers/{id}`. */
  async remove(ref: string, options: CallOptions & { readonly force?: boolean; readonly volumes?: boolean } = {}): Promise<void> {
    const id = await this.#ctx.containers.resolve(ref);
    let record = await this.get(id).catch((err: unknown) => {
      if (hasKind(err, 'NotFound')) return undefined;
      throw err;
    });
    if (!record) throw engineError(`No such container: ${ref}`, EngineErrorCode.ContainerNotFound, ErrorKind.NotFound);
    if (isRunning(record)) {
      if (!options.force) {
        throw engineError(
          `cannot remove container "/${record.name}": container is ${record.state.status}: stop the container before removing or force remove`,
          EngineErrorCode.ContainerRunning,
          ErrorKind.Conflict,
        );
      }
      await this.#markStopping(id);
      if (record.state.status === 'paused') await this.#ctx.runtime.resume(id).catch(() => {});
      await this.#ctx.runtime.kill(id, 'SIGKILL', { all: true }).catch(() => {});
      await this.#event('kill', record, { signal: '9' });
      await this.#awaitExit(record, 10_000);
      record = await this.finishRun(id);
      if (!record) return;
    }
    await this.#ctx.containers.withLock(id, async () => {
      const current = await this.#ctx.containers.tryRead(id);
      if (!current) return;
      await this.#removeLocked(current, options.volumes ?? false);
    });
    this.#ctx.watch.notify(id);
  }

  /** Removes a stopped container whose lock is held: its runtime leftovers, mounts, snapshot, files, name and (with `volumes`) anonymous volumes. */
  async #removeLocked(record: ContainerRecord, volumes: boolean, options: { readonly rootfsUnmounted?: boolean } = {}): Promise<void> {
    const id = record.id;
    await this.#ctx.containers.write({ ...record, state: { ...record.state, status: 'removing' } }).catch(() => {});
    // A finished run was deleted from the runtime and its network released when it ended.
    if (record.state.status !== 'exited' && record.state.status !== 'created') {
      await this.#ctx.runtime.delete(id, { force: true }).catch(() => {});
      if (this.#needsNetworkSetup(record)) await this.#ctx.network().releaseContainer({ containerId: id }).catch(() => {});
    }
    if (!options.rootfsUnmounted) await this.#unmountRootfs(id);
    await (await this.#ctx.snapshotter()).remove(record.snapshotKey).catch((err: unknown) => {
      if (!hasKind(err, 'NotFound')) throw err;
    });
    await this.#ctx.containers.remove(id);
    await this.#ctx.containers.releaseName(record.name, id);
    await this.#removeExecs(id);
    await this.#event('destroy', record);
    if (volumes) {
      for (const m of record.mounts) {
        if (m.type !== 'volume' || !m.anonymous || !m.name) continue;
        const name = m.name;
        await this.#ctx.volumes
          .remove(name, async () => (await this.#ctx.containers.list()).filter((c) => c.mounts.some((x) => x.name === name)).map((c) => c.id))
          .then(() => this.#ctx.events.append({ Type: 'volume', Action: 'destroy', Actor: { ID: name, Attributes: { driver: 'local' } } }))
          .catch((err: unknown) => this.#ctx.logger.debug('anonymous volume kept', { volume: name, error: describeError(err) }));
      }
    }
  }

  async #removeExecs(id: string): Promise<void> {
    const dir = this.#ctx.layout.execs;
    // Usually empty: one synchronous look, at every removal.
    let names: string[] = [];
    try {
      names = readdirSync(dir);
    } catch {
      // no execs directory yet
    }
    for (const n of names) {
      const rec = await readJsonFile<{ containerId?: string }>(join(dir, n)).catch(() => undefined);
      if (rec?.containerId === id) await rm(join(dir, n), { force: true });
    }
  }

  /** `POST /containers/prune`: removes stopped containers (filters `until`, `label`, `label!`). */
  async prune(filters: Filters = {}): Promise<ContainerPruneResponse> {
    for (const key of Object.keys(filters)) {
      if (!['until', 'label', 'label!'].includes(key)) throw invalidParameter(`invalid filter '${key}'`);
    }
    const until = filters['until']?.[0];
    const untilNanos = until === undefined ? undefined : untilToNanos(until);
    const deleted: string[] = [];
    let reclaimed = 0;
    for (const record of await this.listAll()) {
      if (live.has(record.state.status)) continue;
      if (untilNanos !== undefined && !(rfc3339ToNanos(record.created) < untilNanos)) continue;
      const labels = record.config.Labels ?? {};
      if (!(filters['label'] ?? []).every((l) => labelHas(labels, l))) continue;
      if ((filters['label!'] ?? []).some((l) => labelHas(labels, l))) continue;
      const size = await this.rwSize(record).catch(() => 0);
      try {
        await this.remove(record.id, {});
        deleted.push(record.id);
        reclaimed += size;
      } catch (err) {
        this.#ctx.logger.warn('prune could not remove a container', { containerId: record.id, error: describeError(err) });
      }
    }
    return { ContainersDeleted: deleted.length ? deleted : null, SpaceReclaimed: reclaimed };
  }

  /** Bytes of the container's writable layer (docker's SizeRw). */
  async rwSize(record: ContainerRecord): Promise<number> {
    return (await (await this.#ctx.snapshotter()).usage(record.snapshotKey)).size;
  }

  // ---- wait ----------------------------------------------------------------------------------

  /** `POST /containers/{id}/wait`: registered when this returns; `result` settles on the condition. */
  async wait(ref: string, options: CallOptions & { readonly condition?: WaitCondition } = {}): Promise<ContainerWait> {
    const condition = options.condition ?? 'not-running';
    if (!['not-running', 'next-exit', 'removed'].includes(condition)) throw invalidParameter(`invalid condition: "${condition}"`);
    const id = await this.#ctx.containers.resolve(ref);
    const first = await this.#ctx.containers.read(id, ref);
    const target = isRunning(first) ? first.state.runCount : first.state.runCount + 1;
    this.#waiting.set(id, (this.#waiting.get(id) ?? 0) + 1);
    const since = Date.now() / 1000 - 1;
    const signal = options.signal ? AbortSignal.any([options.signal, this.#ctx.closing]) : this.#ctx.closing;
    const result = this.#waitLoop(id, condition, target, first.state.exitCode, since, signal).finally(() => {
      const n = (this.#waiting.get(id) ?? 1) - 1;
      if (n <= 0) {
        this.#waiting.delete(id);
        this.#lastExit.delete(id);
      } else this.#waiting.set(id, n);
    });
    result.catch(() => {});
    return { result };
  }

  /** True when a waiter of this process watches the container (it then notices its exit and does `--rm`). */
  watchedHere(id: string): boolean {
    return (this.#waiting.get(id) ?? 0) > 0;
  }

  /** The exit code of a container's last run when it is gone: known here, or from its `die` event. */
  async #goneExitCode(id: string, since: number, fallback: number): Promise<number> {
    const known = this.#lastExit.get(id);
    if (known !== undefined) return known;
    let code = fallback;
    for await (const ev of this.#ctx.events.read({ since, until: Date.now() / 1000, filters: { container: [id], event: ['die'] } })) {
      const text = ev.Actor.Attributes['exitCode'];
      if (text !== undefined && /^-?\d+$/.test(text)) code = Number(text);
    }
    return code;
  }

  async #waitLoop(id: string, condition: WaitCondition, target: number, lastExit: number, since: number, signal: AbortSignal) {
    let exitCode = lastExit;
    for (;;) {
      throwIfAborted(signal);
      const exitWatch = new AbortController();
      const stopWatch = () => exitWatch.abort();
      signal.addEventListener('abort', stopWatch, { once: true });
      let exited: Promise<void> | undefined;
      const next = this.#ctx.watch.next(id, { signal });
      try {
        const stored = await this.#ctx.containers.tryRead(id);
        const record = stored ? await this.refresh(stored) : undefined;
        if (!record) {
          return { StatusCode: await this.#goneExitCode(id, since, exitCode), Error: null };
        } else {
          if (!isRunning(record) && record.state.status !== 'restarting') {
            exitCode = record.state.exitCode;
            if (condition === 'not-running') return { StatusCode: exitCode, Error: null };
            if (condition === 'next-exit' && record.state.runCount >= target) return { StatusCode: exitCode, Error: null };
          }
          if (isRunning(record)) {
            exited = this.#ctx.runtime.hasMonitor ? this.#ctx.watch.monitorGone(this.#ctx.layout.attachSocket(id), exitWatch.signal) : undefined;
          }
        }
        if (exited) {
          // Only an ended connection means an ended run; one we dropped (the record changed) does not.
          await Promise.race([next.changed, exited.then(() => (exitWatch.signal.aborted ? undefined : this.finishRun(id)))]);
        } else {
          await next.changed;
        }
      } finally {
        signal.removeEventListener('abort', stopWatch);
        exitWatch.abort();
        next.cancel();
      }
    }
  }

  // ---- rename, update ------------------------------------------------------------------------

  async rename(ref: string, newName: string): Promise<void> {
    const name = validContainerName(newName);
    const id = await this.#ctx.containers.resolve(ref);
    const record = await this.#ctx.containers.withLock(id, async () => {
      const record = await this.#ctx.containers.read(id, ref);
      if (record.name === name) throw invalidParameter(`Renaming a container with the same name as its current name`);
      await this.#ctx.containers.reserveName(name, id);
      try {
        await this.#ctx.containers.write({ ...record, name }, { durable: true });
      } catch (err) {
        await this.#ctx.containers.releaseName(name, id);
        throw err;
      }
      await this.#ctx.containers.releaseName(record.name, id);
      return record;
    });
    this.#ctx.watch.notify(id);
    await this.#event('rename', { ...record, name }, { oldName: `/${record.name}` });
  }

  async update(ref: string, update: ContainerUpdateRequest): Promise<ContainerUpdateResponse> {
    const id = await this.#ctx.containers.resolve(ref);
    const warnings: string[] = [];
    const record = await this.#ctx.containers.withLock(id, async () => {
      const record = await this.#ctx.containers.read(id, ref);
      const { RestartPolicy, ...resources } = update;
      const host: HostConfig = { ...record.hostConfig };
      for (const [k, v] of Object.entries(resources)) if (v !== undefined && v !== null) (host as Record<string, unknown>)[k] = v;
      if (RestartPolicy) {
        validateRestartPolicy(RestartPolicy, host.AutoRemove ?? false);
        (host as { RestartPolicy?: unknown }).RestartPolicy = { Name: RestartPolicy.Name || 'no', MaximumRetryCount: RestartPolicy.MaximumRetryCount ?? 0 };
      }
      validateHostConfig(host);
      if (update.Memory && !update.MemorySwap && record.hostConfig.MemorySwap && record.hostConfig.MemorySwap > 0 && update.Memory > record.hostConfig.MemorySwap) {
        throw invalidParameter('Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time');
      }
      const next = { ...record, hostConfig: host };
      if (isRunning(record)) await this.#applyResources(next, update);
      await this.#ctx.containers.write(next, { hostConfig: true, durable: true });
      return next;
    });
    await this.#event('update', record);
    return { Warnings: warnings };
  }

  /** Applies changed limits to the running container through the runtime (`runc update`). */
  async #applyResources(record: ContainerRecord, update: ContainerUpdateRequest): Promise<void> {
    const memory: NonNullable<LinuxResources['memory']> = {};
    if (update.Memory !== undefined && update.Memory !== null) {
      memory.limit = update.Memory || -1;
      memory.swap = update.MemorySwap ?? (update.Memory ? update.Memory * 2 : -1);
    } else if (update.MemorySwap !== undefined && update.MemorySwap !== null) {
      memory.swap = update.MemorySwap;
    }
    if (update.MemoryReservation !== undefined && update.MemoryReservation !== null) memory.reservation = update.MemoryReservation;
    const cpu: NonNullable<LinuxResources['cpu']> = {};
    if (update.NanoCpus !== undefined && update.NanoCpus !== null) {
      cpu.period = 100000;
      cpu.quota = update.NanoCpus ? Math.round((update.NanoCpus * 100000) / 1e9) : -1;
    }
    if (update.CpuQuota) cpu.quota = update.CpuQuota;
    if (update.CpuPeriod) cpu.period = update.CpuPeriod;
    if (update.CpuShares) cpu.shares = update.CpuShares;
    if (update.CpusetCpus) cpu.cpus = update.CpusetCpus;
    if (update.CpusetMems) cpu.mems = update.CpusetMems;
    const resources: LinuxResources = {
      ...(Object.keys(memory).length ? { memory } : {}),
      ...(Object.keys(cpu).length ? { cpu } : {}),
      ...(update.PidsLimit !== undefined && update.PidsLimit !== null ? { pids: { limit: update.PidsLimit > 0 ? update.PidsLimit : -1 } } : {}),
      ...(update.BlkioWeight ? { blockIO: { weight: update.BlkioWeight } } : {}),
    };
    try {
      await this.#ctx.runtime.update(record.id, resources);
    } catch (err) {
      throw engineError(`Cannot update container ${record.id}: ${describeError(err)}`, EngineErrorCode.InvalidParameter, ErrorKind.InvalidArgument, { cause: err });
    }
  }
}

/** Polls `done` for about five seconds (every millisecond at first); false when it never held. */
async function eventually(done: () => Promise<boolean>): Promise<boolean> {
  for (let i = 0; !(await done()); i++) {
    if (i >= 520) return false;
    await new Promise((r) => setTimeout(r, i < 20 ? 1 : 10));
  }
  return true;
}

/**
 * Runs a network call again when an `ip` command failed: the network manager frees endpoints of
 * containers that just exited, and the kernel deletes their veths on its own at the same moment,
 * so a delete can find the device gone. The second try sees it gone and goes on.
 */
async function retryRace<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= 2 || !hasCode(err, 'ERR_NETWORK_COMMAND_FAILED')) throw err;
    }
  }
}

function labelHas(labels: Readonly<Record<string, string>>, filter: string): boolean {
  const eq = filter.indexOf('=');
  return eq < 0 ? filter in labels : labels[filter.slice(0, eq)] === filter.slice(eq + 1);
}


