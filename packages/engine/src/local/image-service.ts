import { Readable } from 'node:stream';
import { ErrorKind, hasKind, throwIfAborted } from '@berth/errors';
import { chainIds, familiarName, familiarReference, parseReference, parsePlatform, type Digest, type ImageConfig } from '@berth/oci';
import type { Credentials, CredentialStore, RegistryClient, RegistryClientOptions } from '@berth/registry';
import { importImage, loadImages, saveImages, type ImageUser, type ImageRecord } from '@berth/store';
import { EngineErrorCode, engineError, type ImportOptions, type PullOptions, type PushOptions } from '../engine.js';
import type { AuthConfig, CallOptions, Filters, JsonMessage } from '../types/common.js';
import type { ContainerConfig } from '../types/container.js';
import type { HistoryResponseItem, ImageDeleteResponseItem, ImageInspect, ImagePruneResponse, ImageSummary } from '../types/image.js';
import type { AuthResponse } from '../types/system.js';
import { invalidParameter } from './docker-errors.js';
import { untilToNanos } from './docker-time.js';
import { progressMessage } from './docker-progress.js';
import type { EngineContext } from './engine-context.js';
import type { RegistryMirror } from './registry-mirror.js';

const listFilterKeys = new Set(['dangling', 'label', 'reference', 'before', 'since', 'until']);

/** How the image service reaches registries and what it knows of containers. */
export interface ImageServiceOptions {
  /** The containers that exist, for rmi/prune conflicts and `Containers` counts. */
  readonly users: () => Promise<readonly ImageUser[]>;
  /** Snapshot keys containers hold (their read-write layers), which garbage collection must keep. */
  readonly containerSnapshots: () => Promise<readonly string[]>;
  readonly dockerConfigPath: string | undefined;
  readonly insecureRegistries: readonly string[];
  /** Docker Hub mirrors tried before Docker Hub itself, in order (dockerd's `--registry-mirror`). */
  readonly registryMirrors: readonly RegistryMirror[];
  /** Layer downloads and uploads at once (dockerd's `--max-concurrent-downloads`/`-uploads`); the client's defaults when unset. */
  readonly maxConcurrentDownloads?: number;
  readonly maxConcurrentUploads?: number;
  readonly userAgent: string;
}

function boolValue(values: readonly string[] | undefined, key: string): boolean | undefined {
  const v = values?.[0];
  if (v === undefined) return undefined;
  if (['1', 'true'].includes(v.toLowerCase())) return true;
  if (['0', 'false'].includes(v.toLowerCase())) return false;
  throw invalidParameter(`Invalid filter '${key}=${v}'`);
}

/** docker's reference filter pattern (path.Match: `*` within a path segment, `?` one character). */
function globPattern(pattern: string): RegExp {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]');
  return new RegExp(`^${re}$`);
}

/** `repo` of `repo:tag` or `repo@sha256:...`. */
function repositoryOf(ref: string): string {
  const at = ref.indexOf('@');
  if (at >= 0) return ref.slice(0, at);
  const colon = ref.lastIndexOf(':');
  return colon > ref.lastIndexOf('/') ? ref.slice(0, colon) : ref;
}

function unixSeconds(rfc3339: string | undefined): number {
  const ms = rfc3339 ? Date.parse(rfc3339) : NaN;
  return Number.isNaN(ms) ? 0 : Math.floor(ms / 1000);
}

/** The image's run config as docker's image inspect shows it (every field present). */
function inspectConfig(config: ImageConfig): ContainerConfig {
  const c = config.config ?? {};
  return {
    Hostname: '',
    Domainname: '',
    User: c.User ?? '',
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    ...(c.ExposedPorts ? { ExposedPorts: c.ExposedPorts as ContainerConfig['ExposedPorts'] } : {}),
    Tty: false,
    OpenStdin: false,
    StdinOnce: false,
    Env: c.Env ?? null,
    Cmd: c.Cmd ?? null,
    ...(c.Healthcheck ? { Healthcheck: c.Healthcheck } : {}),
    ...(c.ArgsEscaped ? { ArgsEscaped: true } : {}),
    Image: '',
    Volumes: (c.Volumes as ContainerConfig['Volumes']) ?? null,
    WorkingDir: c.WorkingDir ?? '',
    Entrypoint: c.Entrypoint ?? null,
    OnBuild: c.OnBuild ?? null,
    Labels: c.Labels ?? null,
    ...(c.StopSignal ? { StopSignal: c.StopSignal } : {}),
    ...(c.Shell ? { Shell: c.Shell } : {}),
  } as ContainerConfig;
}

/** The registry credentials an API AuthConfig carries (`auth` is base64 of user:password), if any. */
function authCredentials(auth: AuthConfig | undefined): Credentials | undefined {
  if (!auth) return undefined;
  let username = auth.username;
  let password = auth.password;
  if ((!username || !password) && auth.auth) {
    const decoded = Buffer.from(auth.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    username = decoded.slice(0, colon);
    password = decoded.slice(colon + 1);
  }
  const creds: Credentials = {
    ...(username ? { username } : {}),
    ...(password ? { password } : {}),
    ...(auth.identitytoken ? { identityToken: auth.identitytoken } : {}),
    ...(auth.registrytoken ? { registryToken: auth.registrytoken } : {}),
  };
  return Object.keys(creds).length ? creds : undefined;
}

function deleteItem(r: { readonly untagged: string } | { readonly deleted: Digest }): ImageDeleteResponseItem {
  return 'untagged' in r ? { Untagged: r.untagged } : { Deleted: r.deleted };
}

/** Images: the store's list, inspect, tag, rmi, prune, save, load and import, and pull/push through the registry client. */
export class ImageService {
  readonly #ctx: EngineContext;
  readonly #options: ImageServiceOptions;
  readonly #sizes = new Map<Digest, number>();
  #registry: Promise<{ client: RegistryClient; credentials: CredentialStore | undefined }> | undefined;

  constructor(ctx: EngineContext, options: ImageServiceOptions) {
    this.#ctx = ctx;
    this.#options = options;
  }

  /** The registry client, made on first use: undici is loaded only by commands that talk to registries. */
  async registry(): Promise<{ client: RegistryClient; credentials: CredentialStore | undefined }> {
    this.#registry ??= (async () => {
      const { DockerConfigCredentials } = await import('@berth/registry');
      const credentials = this.#options.dockerConfigPath ? new DockerConfigCredentials({ configFile: this.#options.dockerConfigPath }) : undefined;
      return { client: await this.#newClient(credentials), credentials };
    })();
    return this.#registry;
  }

  /** A registry client with the engine's settings (insecure registries, mirrors, concurrency) and these credentials. */
  async #newClient(credentials: CredentialStore | undefined): Promise<RegistryClient> {
    const o = this.#options;
    const options: RegistryClientOptions = {
      ...(credentials ? { credentials } : {}),
      insecureRegistries: o.insecureRegistries,
      userAgent: o.userAgent,
      logger: this.#ctx.logger,
      ...(o.maxConcurrentDownloads ? { maxConcurrentDownloads: o.maxConcurrentDownloads } : {}),
      ...(o.maxConcurrentUploads ? { maxConcurrentUploads: o.maxConcurrentUploads } : {}),
    };
    if (o.registryMirrors.length) {
      const { MirroringRegistryClient } = await import('./mirroring-registry-client.js');
      return new MirroringRegistryClient({ ...options, mirrors: o.registryMirrors });
    }
    const { RegistryClient } = await import('@berth/registry');
    return new RegistryClient(options);
  }

  /**
   * The client for one call: with credentials from the API (`X-Registry-Auth`) a client of its
   * own that uses them for `registry`, else the shared one (credentials from the docker config).
   */
  async #client(auth: AuthConfig | undefined, registry: string): Promise<{ client: RegistryClient; done: () => Promise<void> }> {
    const creds = authCredentials(auth);
    if (!creds) return { client: (await this.registry()).client, done: async () => {} };
    const { StaticCredentials } = await import('@berth/registry');
    const client = await this.#newClient(new StaticCredentials({ entries: { [registry]: creds } }));
    return { client, done: () => client.close() };
  }

  /**
   * A registry client for a build: with the credentials `POST /build` carries per registry
   * (`X-Registry-Config`), a client of its own; else the shared one. `done` closes an own one.
   */
  async buildClient(authConfigs: Readonly<Record<string, AuthConfig>> | undefined): Promise<{ client: RegistryClient; done: () => Promise<void> }> {
    const entries: Record<string, Credentials> = {};
    for (const [registry, auth] of Object.entries(authConfigs ?? {})) {
      const creds = authCredentials(auth);
      if (creds) entries[registry] = creds;
    }
    if (Object.keys(entries).length === 0) return { client: (await this.registry()).client, done: async () => {} };
    const { StaticCredentials } = await import('@berth/registry');
    const client = await this.#newClient(new StaticCredentials({ entries }));
    return { client, done: () => client.close() };
  }

  async close(): Promise<void> {
    const registry = this.#registry;
    this.#registry = undefined;
    if (registry) await (await registry).client.close();
  }

  async #gcOptions(): Promise<{ snapshots: Awaited<ReturnType<EngineContext['snapshotter']>>; keepSnapshots: readonly string[] }> {
    return { snapshots: await this.#ctx.snapshotter(), keepSnapshots: await this.#options.containerSnapshots() };
  }

  /** Unpacked size of an image (its layers' snapshots), falling back to the stored blobs' size. */
  async #size(record: ImageRecord): Promise<number> {
    const cached = this.#sizes.get(record.id);
    if (cached !== undefined) return cached;
    let size = record.size;
    try {
      const details = await this.#ctx.images.inspect(record.id);
      const snapshotter = await this.#ctx.snapshotter();
      let sum = 0;
      for (const chain of chainIds(details.config.rootfs.diff_ids)) {
        const info = await snapshotter.stat(chain);
        if (info?.size === undefined) {
          sum = -1;
          break;
        }
        sum += info.size;
      }
      if (sum >= 0) size = sum;
    } catch {
      // Unreadable image data: the blob size stands.
    }
    this.#sizes.set(record.id, size);
    return size;
  }

  async list(options: CallOptions & { readonly all?: boolean; readonly filters?: Filters; readonly containers?: boolean } = {}): Promise<ImageSummary[]> {
    const f = options.filters ?? {};
    for (const key of Object.keys(f)) if (!listFilterKeys.has(key)) throw invalidParameter(`invalid filter '${key}'`);
    const dangling = boolValue(f['dangling'], 'dangling');
    const until = f['until']?.[0];
    const users = options.containers ? await this.#options.users() : [];
    const images = await this.#ctx.images.list({
      filters: {
        ...(dangling !== undefined ? { dangling } : {}),
        ...(f['label']?.length ? { label: f['label'] } : {}),
        ...(f['reference']?.length ? { reference: f['reference'] } : {}),
        ...(f['before']?.[0] ? { before: f['before'][0] } : {}),
        ...(f['since']?.[0] ? { since: f['since'][0] } : {}),
        ...(until ? { until: new Date(Number(untilToNanos(until) / 1_000_000n)) } : {}),
      },
      containers: users,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    // As docker: with a reference filter an image lists only the names that match it.
    const patterns = (f['reference'] ?? []).map(globPattern);
    const keep = (refs: readonly string[]) => (patterns.length ? refs.filter((r) => patterns.some((p) => p.test(r) || p.test(repositoryOf(r)))) : refs);
    const out: ImageSummary[] = [];
    for (const image of images) {
      out.push({
        Id: image.id,
        ParentId: '',
        RepoTags: keep(image.repoTags),
        RepoDigests: keep(image.repoDigests),
        Created: unixSeconds(image.created),
        Size: await this.#size(image),
        SharedSize: -1,
        Labels: image.labels,
        Containers: options.containers ? image.containers : -1,
      });
    }
    return out;
  }

  async #resolve(name: string, signal?: AbortSignal): Promise<ImageRecord> {
    try {
      return await this.#ctx.images.resolve(name, signal ? { signal } : {});
    } catch (err) {
      if (hasKind(err, 'NotFound')) throw engineError(`No such image: ${name}`, EngineErrorCode.ImageNotFound, ErrorKind.NotFound, { cause: err });
      throw err;
    }
  }

  async inspect(name: string, options: CallOptions = {}): Promise<ImageInspect> {
    const record = await this.#resolve(name, options.signal);
    const d = await this.#ctx.images.inspect(record.id, options.signal ? { signal: options.signal } : {});
    return {
      Id: d.id,
      RepoTags: d.repoTags,
      RepoDigests: d.repoDigests,
      Parent: '',
      Comment: d.config.comment ?? d.config.history?.at(-1)?.comment ?? '',
      ...(d.config.created ? { Created: d.config.created } : {}),
      ...(d.config.docker_version ? { DockerVersion: d.config.docker_version } : {}),
      Author: d.config.author ?? '',
      Config: inspectConfig(d.config),
      Architecture: d.config.architecture,
      ...(d.config.variant ? { Variant: d.config.variant } : {}),
      Os: d.config.os,
      ...(d.config['os.version'] ? { OsVersion: d.config['os.version'] } : {}),
      Size: await this.#size(record),
      GraphDriver: { Name: (await this.#ctx.snapshotter()).driver === 'overlay' ? 'overlay2' : 'vfs', Data: null },
      RootFS: { Type: 'layers', Layers: d.config.rootfs.diff_ids },
      Metadata: { ...(d.lastTagTime ? { LastTagTime: d.lastTagTime } : {}) },
    };
  }

  async history(name: string, options: CallOptions = {}): Promise<HistoryResponseItem[]> {
    const record = await this.#resolve(name, options.signal);
    const rows = await this.#ctx.images.history(record.id, options.signal ? { signal: options.signal } : {});
    return rows.map((r) => ({
      Id: r.id ?? '<missing>',
      Created: unixSeconds(r.created),
      CreatedBy: r.createdBy,
      Tags: r.id ? [...r.tags] : null,
      Size: r.size,
      Comment: r.comment,
    }));
  }

  async tag(name: string, target: { readonly repo: string; readonly tag?: string }, options: CallOptions = {}): Promise<void> {
    const record = await this.#resolve(name, options.signal);
    let ref: string;
    try {
      const parsed = parseReference(target.tag ? `${target.repo}:${target.tag}` : target.repo);
      ref = familiarReference(parsed);
    } catch (err) {
      throw invalidParameter(`invalid reference format: ${target.repo}${target.tag ? `:${target.tag}` : ''}`, err);
    }
    await this.#ctx.images.tag(record.id, ref, options.signal ? { signal: options.signal } : {});
    await this.#ctx.events.append({ Type: 'image', Action: 'tag', Actor: { ID: record.id, Attributes: { name: ref } } });
  }

  async remove(name: string, options: CallOptions & { readonly force?: boolean; readonly noprune?: boolean } = {}): Promise<ImageDeleteResponseItem[]> {
    await this.#resolve(name, options.signal);
    const records = await this.#ctx.images.remove(name, {
      ...(options.force ? { force: true } : {}),
      containers: await this.#options.users(),
      gc: options.noprune ? false : await this.#gcOptions(),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    for (const r of records) {
      await this.#ctx.events.append(
        'untagged' in r
          ? { Type: 'image', Action: 'untag', Actor: { ID: name, Attributes: { name: r.untagged } } }
          : { Type: 'image', Action: 'delete', Actor: { ID: r.deleted, Attributes: { name } } },
      );
    }
    return records.map(deleteItem);
  }

  async prune(options: CallOptions & { readonly filters?: Filters } = {}): Promise<ImagePruneResponse> {
    const f = options.filters ?? {};
    for (const key of Object.keys(f)) if (!['dangling', 'until', 'label', 'label!'].includes(key)) throw invalidParameter(`invalid filter '${key}'`);
    const dangling = boolValue(f['dangling'], 'dangling') ?? true;
    const until = f['until']?.[0];
    const result = await this.#ctx.images.prune({
      all: !dangling,
      containers: await this.#options.users(),
      filters: {
        ...(until ? { until: new Date(Number(untilToNanos(until) / 1_000_000n)) } : {}),
        ...(f['label']?.length ? { label: f['label'] } : {}),
      },
      gc: await this.#gcOptions(),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    for (const r of result.records) {
      if ('deleted' in r) await this.#ctx.events.append({ Type: 'image', Action: 'delete', Actor: { ID: r.deleted, Attributes: {} } });
    }
    return { ImagesDeleted: result.records.length ? result.records.map(deleteItem) : null, SpaceReclaimed: result.reclaimedBytes };
  }

  async save(names: readonly string[], options: CallOptions = {}): Promise<Readable> {
    for (const n of names) await this.#resolve(n, options.signal);
    const stream = await saveImages({ store: this.#ctx.images, images: names, ...(options.signal ? { signal: options.signal } : {}) });
    for (const n of names) await this.#ctx.events.append({ Type: 'image', Action: 'save', Actor: { ID: n, Attributes: { name: n } } });
    return stream;
  }

  async *load(archive: Readable, options: CallOptions & { readonly quiet?: boolean; readonly platform?: string } = {}): AsyncGenerator<JsonMessage> {
    const loaded = await loadImages({
      store: this.#ctx.images,
      source: archive,
      ...(options.platform ? { platform: parsePlatform(options.platform) } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    for (const image of loaded) {
      const names = image.names.map((n) => familiarReference(parseReference(n)));
      for (const n of names.length ? names : [image.record.id]) {
        await this.#ctx.events.append({ Type: 'image', Action: 'load', Actor: { ID: image.record.id, Attributes: { name: n } } });
      }
      if (names.length === 0) yield { stream: `Loaded image ID: ${image.record.id}\n` };
      for (const n of names) yield { stream: `Loaded image: ${n}\n` };
    }
  }

  async *import(options: ImportOptions): AsyncGenerator<JsonMessage> {
    const signal = options.signal;
    let source: Readable;
    let sourceName = '-';
    if (typeof options.source === 'string') {
      sourceName = options.source;
      const res = await fetch(options.source, signal ? { signal } : {});
      if (!res.ok || !res.body) throw invalidParameter(`import from ${options.source}: HTTP ${res.status}`);
      source = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream);
      yield { status: 'Downloading from', progressDetail: {}, id: options.source };
    } else {
      source = options.source;
    }
    const reference = options.repo ? (options.tag ? `${options.repo}:${options.tag}` : options.repo) : undefined;
    const record = await importImage({
      store: this.#ctx.images,
      source,
      ...(reference ? { reference } : {}),
      ...(options.changes?.length ? { changes: options.changes } : {}),
      ...(options.message ? { message: options.message } : {}),
      sourceName,
      ...(options.platform ? { platform: parsePlatform(options.platform) } : {}),
      ...(signal ? { signal } : {}),
    });
    await this.#ctx.events.append({ Type: 'image', Action: 'import', Actor: { ID: record.id, Attributes: { name: reference ?? record.id } } });
    yield { status: record.id };
  }

  async *pull(options: PullOptions): AsyncGenerator<JsonMessage> {
    const signal = options.signal;
    const refText = options.tag && !options.fromImage.includes('@') && !/:[^/]+$/.test(options.fromImage) ? `${options.fromImage}:${options.tag}` : options.fromImage;
    let ref;
    try {
      ref = parseReference(refText);
    } catch (err) {
      throw invalidParameter(`invalid reference format: ${refText}`, err);
    }
    if (options.allTags) throw engineError('pulling every tag of a repository is not supported', EngineErrorCode.NotImplemented, ErrorKind.NotImplemented);
    const { client, done } = await this.#client(options.auth, ref.domain);
    const snapshotter = await this.#ctx.snapshotter();
    const platform = options.platform ? parsePlatform(options.platform) : undefined;
    const lease = await this.#ctx.images.createLease(signal ? { signal } : {});
    try {
      const layers: Parameters<typeof snapshotter.unpack>[0]['layers'][number][] = [];
      const diffIds: Digest[] = [];
      const operation = client.pull(ref, {
        content: lease.content,
        ...(platform ? { platform } : {}),
        ...(signal ? { signal } : {}),
        unpackLayer: async (layer, position, hook) => {
          layers[position] = layer;
          diffIds[position] = hook.diffId;
          await snapshotter.unpack({ content: lease.content, layers: layers.slice(0, position + 1), diffIds: diffIds.slice(0, position + 1), signal: hook.signal });
        },
      });
      for await (const event of operation) yield progressMessage(event);
      const result = await operation.result;
      throwIfAborted(signal);
      const name = familiarReference(result.reference);
      // As docker: the tag and the digest reference (RepoDigests) both name the pulled image.
      const byDigest = `${familiarName(result.reference)}@${result.descriptor.digest}`;
      const names = result.reference.digest ? [name] : [name, byDigest];
      await this.#ctx.images.add({ target: result.descriptor, names, ...(platform ? { platform } : {}), ...(signal ? { signal } : {}) });
      this.#sizes.delete(result.configDescriptor.digest);
      await this.#ctx.events.append({ Type: 'image', Action: 'pull', Actor: { ID: name, Attributes: { name } } });
    } finally {
      await lease.release();
      await done();
    }
  }

  async *push(name: string, options: PushOptions = {}): AsyncGenerator<JsonMessage> {
    const signal = options.signal;
    const full = options.tag ? `${name}:${options.tag}` : name;
    const refs: string[] = [];
    const parsed = parseReference(full);
    if (parsed.tag === 'latest' && !/:[^/]+$/.test(full) && !options.tag) {
      // Without a tag docker pushes every tag of the repository.
      const repo = `${parsed.domain}/${parsed.path}`;
      for (const image of await this.#ctx.images.list(signal ? { signal } : {})) {
        for (const r of image.references) if (`${r.domain}/${r.path}` === repo && r.tag) refs.push(familiarReference(r));
      }
      if (refs.length === 0) throw engineError(`An image does not exist locally with the tag: ${familiarReference(parsed).replace(/:latest$/, '')}`, EngineErrorCode.ImageNotFound, ErrorKind.NotFound);
    } else {
      refs.push(familiarReference(parsed));
    }
    const { client, done } = await this.#client(options.auth, parsed.domain);
    try {
      for (const ref of refs) {
        const record = await this.#ctx.images.find(ref, signal ? { signal } : {});
        if (!record) throw engineError(`An image does not exist locally with the tag: ${ref}`, EngineErrorCode.ImageNotFound, ErrorKind.NotFound);
        const operation = client.push(ref, {
          content: this.#ctx.images.content,
          manifestDigest: record.target.digest,
          mediaType: record.target.mediaType,
          ...(signal ? { signal } : {}),
        });
        for await (const event of operation) yield progressMessage(event);
        const result = await operation.result;
        const tag = parseReference(ref).tag ?? 'latest';
        yield { progressDetail: {}, aux: { Tag: tag, Digest: result.digest, Size: result.size } };
        await this.#ctx.events.append({ Type: 'image', Action: 'push', Actor: { ID: ref, Attributes: { name: ref } } });
      }
    } finally {
      await done();
    }
  }

  async login(auth: AuthConfig, options: CallOptions = {}): Promise<AuthResponse> {
    const { client } = await this.registry();
    const creds = authCredentials(auth);
    if (!creds) throw invalidParameter('login needs a username and password or an identity token');
    const server = auth.serveraddress || 'https://index.docker.io/v1/';
    const result = await client.login(server, creds, options.signal ? { signal: options.signal } : {});
    return { Status: 'Login Succeeded', ...(result.identityToken ? { IdentityToken: result.identityToken } : {}) };
  }
}
