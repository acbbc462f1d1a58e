import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { ErrorKind } from '@berth/errors';
import { noopLogger, type Logger } from '@berth/log';
import {
  digestOf,
  familiarReference,
  formatPlatform,
  hostPlatform,
  formatReference,
  isDigest,
  manifestAcceptTypes,
  parseDigest,
  parseManifest,
  parseReference,
  selectByPlatform,
  type Descriptor,
  type Digest,
  type ImageIndex,
  type ImageManifest,
  type ImageReference,
  type Platform,
} from '@berth/oci';
import type { Dispatcher } from 'undici';
import { basicAuthorization, repositoryScope } from './auth.js';
import type { CredentialStore, Credentials } from './credentials.js';
import { RegistryError, RegistryErrorCode, responseError } from './errors.js';
import { InsecureRegistries } from './hosts.js';
import { startOperation, type Operation } from './progress.js';
import { runPull, type PullOptions, type PullResult } from './pull.js';
import { runPush, type PushOptions, type PushResult } from './push.js';
import { readLimited, RegistryTransport, responseHeader, type RegistryTlsOptions } from './transport.js';

/** Options of `RegistryClient`. */
export interface RegistryClientOptions {
  /** Where credentials come from (default: none, anonymous). */
  readonly credentials?: CredentialStore;
  /** `--insecure-registry` values: `host[:port]` or CIDRs; loopback is always insecure, as in docker. */
  readonly insecureRegistries?: readonly string[];
  /** Resolves host names for the insecure-CIDR check (default: the system resolver). */
  readonly resolveHost?: (host: string) => Promise<readonly string[]>;
  /** Per-registry TLS material (docker's certs.d), keyed by `host[:port]`. */
  readonly tls?: Readonly<Record<string, RegistryTlsOptions>>;
  /** Default `berth/<version>`. */
  readonly userAgent?: string;
  readonly logger?: Logger;
  /** Layer downloads at once (default 3, as docker). */
  readonly maxConcurrentDownloads?: number;
  /** Blob uploads at once (default 5, as docker). */
  readonly maxConcurrentUploads?: number;
  /** Retries of a failed request or blob transfer (default 4). */
  readonly retries?: number;
  /** First retry delay in ms, doubled each time (default 500). */
  readonly retryDelayMs?: number;
  /** How blobs are uploaded: one PUT (default), or PATCH chunks of `chunkSize` then PUT. */
  readonly uploadMode?: 'monolithic' | 'chunked';
  /** Chunk size of chunked uploads (default 16 MiB). */
  readonly chunkSize?: number;
  /** An undici dispatcher for every request instead of the client's own agents (proxies, tests). */
  readonly dispatcher?: Dispatcher;
}

/** How `/v2/` of a registry answered. */
export interface PingResult {
  readonly registry: string;
  /** The base URL chosen: `https://...`, or `http://...` for an insecure registry without TLS. */
  readonly url: string;
  readonly auth: 'none' | 'basic' | 'bearer';
  readonly realm?: string;
  readonly service?: string;
}

/** A manifest or index as fetched, with its raw bytes (never re-serialised before hashing). */
export interface FetchedManifest {
  readonly descriptor: Descriptor;
  readonly bytes: Buffer;
  readonly parsed: ReturnType<typeof parseManifest>;
}

/** What a reference resolves to for one platform. */
export interface ResolvedImage {
  readonly reference: ImageReference;
  /** The index the reference named, when it named one. */
  readonly index?: { readonly descriptor: Descriptor; readonly bytes: Buffer; readonly index: ImageIndex };
  readonly manifest: { readonly descriptor: Descriptor; readonly bytes: Buffer; readonly manifest: ImageManifest };
}

/** A blob response: its body from `start` on. */
export interface BlobResponse {
  /** 206 when the registry honoured the Range, otherwise 200 (the body starts at 0). */
  readonly status: 200 | 206;
  readonly start: number;
  readonly body: Readable;
}

/** Options of blob uploads. */
export interface PushBlobOptions {
  readonly signal?: AbortSignal;
  readonly onProgress?: (bytes: number) => void;
  /** Overrides the client's upload mode for this blob. */
  readonly mode?: 'monolithic' | 'chunked';
  /** Token scopes to use instead of `pull,push` on the target (a push shares one token for all its requests). */
  readonly scopes?: readonly string[];
  /** An upload session already started (by a mount attempt that the registry turned into an upload). */
  readonly location?: string;
}

/** Registries refuse manifests above 4 MiB; so does the client, so that a hostile server cannot exhaust memory. */
const maxManifestSize = 4 << 20;

// Reference as the API's path wants it: the tag or the digest.
function referencePart(ref: ImageReference): string {
  const part = ref.digest ?? ref.tag;
  if (!part) throw new RegistryError(`reference ${formatReference(ref)} has neither tag nor digest`, { code: RegistryErrorCode.InvalidOption, kind: 'InvalidArgument' });
  return part;
}

function toReference(ref: ImageReference | string): ImageReference {
  return typeof ref === 'string' ? parseReference(ref) : ref;
}

function positiveInteger(name: string, value: number | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min) {
    throw new RegistryError(`RegistryClient option ${name} must be an integer >= ${min}, got ${value}`, {
      code: RegistryErrorCode.InvalidOption,
      kind: ErrorKind.InvalidArgument,
    });
  }
  return value;
}

/** The shared view pull and push have of the client. */
export interface ClientInternals {
  readonly transport: RegistryTransport;
  readonly logger: Logger;
  readonly maxConcurrentDownloads: number;
  readonly maxConcurrentUploads: number;
  readonly retries: number;
  readonly retryDelayMs: number;
  /** Repositories per registry that a blob was last seen in, for cross-repository mounts. */
  rememberSource(domain: string, path: string, digest: Digest): void;
  knownSources(domain: string, digest: Digest): readonly string[];
}

/**
 * A client of the OCI distribution API (docker registry v2): auth, manifests, blobs, tags,
 * and whole-image `pull` and `push` with docker's progress messages. One client keeps
 * connections, tokens and endpoints per registry; `close()` it when done.
 */
export class RegistryClient {
  readonly #transport: RegistryTransport;
  readonly #logger: Logger;
  readonly #uploadMode: 'monolithic' | 'chunked';
  readonly #chunkSize: number;
  readonly #internals: ClientInternals;
  readonly #sources = new Map<string, Map<Digest, string[]>>();

  constructor(options: RegistryClientOptions = {}) {
    this.#logger = (options.logger ?? noopLogger).child({ component: 'registry' });
    const retries = positiveInteger('retries', options.retries, 4, 0);
    const retryDelayMs = positiveInteger('retryDelayMs', options.retryDelayMs, 500, 0);
    if (options.uploadMode !== undefined && options.uploadMode !== 'monolithic' && options.uploadMode !== 'chunked') {
      throw new RegistryError(`RegistryClient option uploadMode must be 'monolithic' or 'chunked', got ${JSON.stringify(options.uploadMode)}`, {
        code: RegistryErrorCode.InvalidOption,
        kind: ErrorKind.InvalidArgument,
      });
    }
    this.#uploadMode = options.uploadMode ?? 'monolithic';
    this.#chunkSize = positiveInteger('chunkSize', options.chunkSize, 16 << 20);
    this.#transport = new RegistryTransport({
      credentials: options.credentials,
      insecure: new InsecureRegistries({
        ...(options.insecureRegistries ? { registries: options.insecureRegistries } : {}),
        ...(options.resolveHost ? { resolve: options.resolveHost } : {}),
      }),
      tls: options.tls ?? {},
      userAgent: options.userAgent ?? 'berth/0.1.0',
      logger: this.#logger,
      retries,
      retryDelayMs,
      dispatcher: options.dispatcher,
    });
    const sources = this.#sources;
    this.#internals = {
      transport: this.#transport,
      logger: this.#logger,
      maxConcurrentDownloads: positiveInteger('maxConcurrentDownloads', options.maxConcurrentDownloads, 3),
      maxConcurrentUploads: positiveInteger('maxConcurrentUploads', options.maxConcurrentUploads, 5),
      retries,
      retryDelayMs,
      rememberSource(domain, path, digest) {
        let byDigest = sources.get(domain);
        if (!byDigest) sources.set(domain, (byDigest = new Map()));
        const paths = byDigest.get(digest) ?? [];
        byDigest.set(digest, [path, ...paths.filter((p) => p !== path)].slice(0, 4));
      },
      knownSources(domain, digest) {
        return sources.get(domain)?.get(digest) ?? [];
      },
    };
  }

  /** Closes the client's connections. */
  async close(): Promise<void> {
    await this.#transport.close();
  }

  /** Pings `/v2/` of a registry (`docker.io`, `127.0.0.1:5000`): which scheme answers, and which auth it wants. */
  async ping(registry: string, options: { readonly signal?: AbortSignal } = {}): Promise<PingResult> {
    const endpoint = await this.#transport.endpoint(registry, options.signal);
    const challenge = endpoint.challenge;
    return {
      registry,
      url: endpoint.base.origin,
      auth: challenge?.scheme === 'bearer' ? 'bearer' : challenge?.scheme === 'basic' ? 'basic' : 'none',
      ...(challenge?.params.realm ? { realm: challenge.params.realm } : {}),
      ...(challenge?.params.service ? { service: challenge.params.service } : {}),
    };
  }

  /**
   * Checks credentials against a registry as `docker login` does: basic auth on `/v2/`, or a
   * token (with a refresh token asked for) that `/v2/` then accepts. Returns the identity token
   * to keep instead of the password when the token server gave one.
   */
  async login(registry: string, credentials: Credentials, options: { readonly signal?: AbortSignal } = {}): Promise<{ readonly identityToken?: string }> {
    this.#transport.forget(registry);
    const endpoint = await this.#transport.endpoint(registry, options.signal);
    const challenge = endpoint.challenge;
    let authorization: string | undefined;
    let identityToken: string | undefined;
    if (challenge?.scheme === 'basic') {
      authorization = basicAuthorization(credentials);
    } else if (challenge?.scheme === 'bearer') {
      const token = await this.#transport.fetchToken(endpoint, challenge, [], credentials, { offline: true, ...(options.signal ? { signal: options.signal } : {}) });
      authorization = `Bearer ${token.token}`;
      identityToken = token.refreshToken;
    } else {
      return {};
    }
    const res = await endpoint.dispatcher.request({
      origin: endpoint.base.origin,
      path: '/v2/',
      method: 'GET',
      headers: { authorization },
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const text = await readLimited(res.body, 64 << 10);
    if (res.statusCode !== 200) {
      throw responseError(res.statusCode, text, { request: `GET ${endpoint.base.origin}/v2/`, registry });
    }
    return identityToken ? { identityToken } : {};
  }

  /** Forgets cached credentials and tokens of a registry (after `engine login`/`logout` changed them). */
  forgetCredentials(registry: string): void {
    this.#transport.forget(registry);
  }

  /**
   * Fetches a manifest or index by tag or digest with its raw bytes. The digest is computed from
   * the bytes; a digest in the reference (or the registry's Docker-Content-Digest) must match.
   */
  async getManifest(
    refInput: ImageReference | string,
    options: { readonly accept?: readonly string[]; readonly signal?: AbortSignal } = {},
  ): Promise<FetchedManifest> {
    const ref = toReference(refInput);
    const part = referencePart(ref);
    const res = await this.#transport.send({
      domain: ref.domain,
      scopes: [repositoryScope(ref.path, ['pull'])],
      method: 'GET',
      url: `/v2/${ref.path}/manifests/${part}`,
      headers: { accept: (options.accept ?? manifestAcceptTypes).join(', ') },
      ok: [200],
      subject: `manifest for ${familiarReference(ref)}`,
      followRedirects: true,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const length = Number(responseHeader(res.headers, 'content-length') ?? NaN);
    if (length > maxManifestSize) {
      await res.body.dump();
      throw new RegistryError(`manifest for ${familiarReference(ref)} is ${length} bytes, more than the ${maxManifestSize} a manifest may have`, {
        code: RegistryErrorCode.Protocol,
        kind: 'InvalidArgument',
      });
    }
    const bytes = await readBounded(res.body, maxManifestSize, `manifest for ${familiarReference(ref)}`);
    const contentType = responseHeader(res.headers, 'content-type')?.split(';')[0]?.trim();
    const expected = ref.digest ?? responseHeader(res.headers, 'docker-content-digest');
    const algorithm = expected && isDigest(expected) ? parseDigest(expected).algorithm : 'sha256';
    const digest = digestOf(bytes, algorithm);
    if (expected && isDigest(expected) && expected !== digest) {
      throw new RegistryError(`manifest for ${familiarReference(ref)}: content has digest ${digest}, want ${expected}`, {
        code: RegistryErrorCode.DigestMismatch,
        kind: 'InvalidArgument',
      });
    }
    const parsed = parseManifest(bytes, contentType);
    return { descriptor: { mediaType: parsed.mediaType, digest, size: bytes.length }, bytes, parsed };
  }

  /** The descriptor of a manifest (HEAD), or undefined when the registry does not have it. */
  async headManifest(refInput: ImageReference | string, options: { readonly signal?: AbortSignal; readonly scopes?: readonly string[] } = {}): Promise<Descriptor | undefined> {
    const ref = toReference(refInput);
    const res = await this.#transport.send({
      domain: ref.domain,
      scopes: options.scopes ?? [repositoryScope(ref.path, ['pull'])],
      method: 'HEAD',
      url: `/v2/${ref.path}/manifests/${referencePart(ref)}`,
      headers: { accept: manifestAcceptTypes.join(', ') },
      ok: [200, 404],
      followRedirects: true,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    await res.body.dump();
    if (res.status === 404) return undefined;
    const digest = responseHeader(res.headers, 'docker-content-digest') ?? ref.digest;
    const size = Number(responseHeader(res.headers, 'content-length'));
    const mediaType = responseHeader(res.headers, 'content-type')?.split(';')[0]?.trim() ?? '';
    if (!digest || !isDigest(digest) || !Number.isSafeInteger(size)) return undefined;
    return { mediaType, digest, size };
  }

  /**
   * Resolves a reference to the manifest for `platform` (default: this host's): fetches what
   * the reference names and, when it is an index or manifest list, picks the best entry.
   */
  async resolve(
    refInput: ImageReference | string,
    options: { readonly platform?: Platform; readonly signal?: AbortSignal } = {},
  ): Promise<ResolvedImage> {
    const ref = toReference(refInput);
    const platform = options.platform ?? hostPlatform();
    const top = await this.getManifest(ref, options.signal ? { signal: options.signal } : {});
    if (top.parsed.kind === 'manifest') {
      return { reference: ref, manifest: { descriptor: top.descriptor, bytes: top.bytes, manifest: top.parsed.manifest } };
    }
    const index = top.parsed.index;
    const chosen = selectByPlatform(index.manifests, platform);
    if (!chosen) {
      const available = index.manifests.filter((m) => m.platform).map((m) => formatPlatform(m.platform!));
      throw new RegistryError(
        `no matching manifest for ${formatPlatform(platform)} in the manifest list entries of ${familiarReference(ref)} (available: ${available.join(', ') || 'none'})`,
        { code: RegistryErrorCode.NoMatchingPlatform, kind: 'NotFound' },
      );
    }
    const child = await this.getManifest({ domain: ref.domain, path: ref.path, digest: chosen.digest }, options.signal ? { signal: options.signal } : {});
    if (child.parsed.kind !== 'manifest') {
      throw new RegistryError(`index entry ${chosen.digest} of ${familiarReference(ref)} is itself an index`, { code: RegistryErrorCode.Protocol, kind: 'InvalidArgument' });
    }
    return {
      reference: ref,
      index: { descriptor: top.descriptor, bytes: top.bytes, index },
      manifest: { descriptor: { ...child.descriptor, platform: chosen.platform! }, bytes: child.bytes, manifest: child.parsed.manifest },
    };
  }

  /**
   * Opens a blob for reading from `start` (a Range request when > 0). Redirects (a CDN) are
   * followed without credentials. The caller verifies the content (the store does at commit).
   */
  async fetchBlob(
    refInput: ImageReference | string,
    digest: Digest,
    options: { readonly start?: number; readonly signal?: AbortSignal; readonly onRetry?: (delayMs: number, reason: unknown) => void } = {},
  ): Promise<BlobResponse> {
    const ref = toReference(refInput);
    const start = options.start ?? 0;
    const res = await this.#transport.send({
      domain: ref.domain,
      scopes: [repositoryScope(ref.path, ['pull'])],
      method: 'GET',
      url: `/v2/${ref.path}/blobs/${digest}`,
      ...(start > 0 ? { headers: { range: `bytes=${start}-` } } : {}),
      ok: start > 0 ? [200, 206] : [200],
      subject: `blob ${digest} in ${ref.domain}/${ref.path}`,
      followRedirects: true,
      highWaterMark: 1 << 20,
      ...(options.onRetry ? { onRetry: options.onRetry } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    if (res.status === 206) {
      const range = /^bytes (\d+)-/.exec(responseHeader(res.headers, 'content-range') ?? '');
      if (!range || Number(range[1]) !== start) {
        res.body.destroy();
        throw new RegistryError(`blob ${digest}: asked for bytes from ${start}, got Content-Range ${responseHeader(res.headers, 'content-range')}`, {
          code: RegistryErrorCode.Protocol,
          kind: 'Internal',
        });
      }
      return { status: 206, start, body: res.body };
    }
    return { status: 200, start: 0, body: res.body };
  }

  /** Reads a small blob (a config) whole and verifies it against its digest. */
  async fetchBlobBytes(refInput: ImageReference | string, descriptor: Descriptor, options: { readonly signal?: AbortSignal } = {}): Promise<Buffer> {
    const blob = await this.fetchBlob(refInput, descriptor.digest, options);
    const bytes = await readBounded(blob.body, descriptor.size, `blob ${descriptor.digest}`, true);
    const digest = digestOf(bytes, parseDigest(descriptor.digest).algorithm);
    if (digest !== descriptor.digest || bytes.length !== descriptor.size) {
      throw new RegistryError(`blob ${descriptor.digest}: content has digest ${digest} and ${bytes.length} bytes, want ${descriptor.size}`, {
        code: RegistryErrorCode.DigestMismatch,
        kind: 'InvalidArgument',
      });
    }
    return bytes;
  }

  /** The size of a blob in a repository (HEAD), or undefined when the repository does not have it. */
  async blobExists(refInput: ImageReference | string, digest: Digest, options: { readonly signal?: AbortSignal; readonly scopes?: readonly string[] } = {}): Promise<{ readonly size: number } | undefined> {
    const ref = toReference(refInput);
    const res = await this.#transport.send({
      domain: ref.domain,
      scopes: options.scopes ?? [repositoryScope(ref.path, ['pull'])],
      method: 'HEAD',
      url: `/v2/${ref.path}/blobs/${digest}`,
      ok: [200, 404],
      followRedirects: true,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    await res.body.dump();
    if (res.status === 404) return undefined;
    return { size: Number(responseHeader(res.headers, 'content-length') ?? -1) };
  }

  /**
   * Asks the registry to mount a blob from another repository of the same registry.
   * Returns `mounted`, or the upload session the registry started instead (use it to upload).
   */
  async mountBlob(
    refInput: ImageReference | string,
    from: string,
    digest: Digest,
    options: { readonly signal?: AbortSignal; readonly scopes?: readonly string[] } = {},
  ): Promise<{ readonly mounted: true } | { readonly mounted: false; readonly location: string }> {
    const ref = toReference(refInput);
    const res = await this.#transport.send({
      domain: ref.domain,
      scopes: options.scopes ?? [repositoryScope(ref.path, ['pull', 'push']), repositoryScope(from, ['pull'])],
      method: 'POST',
      url: `/v2/${ref.path}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`,
      headers: { 'content-length': '0' },
      ok: [201, 202],
      ...(options.signal ? { signal: options.signal } : {}),
    });
    await res.body.dump();
    if (res.status === 201) return { mounted: true };
    return { mounted: false, location: this.#location(res.headers, ref) };
  }

  #location(headers: Dispatcher.ResponseData['headers'], ref: ImageReference): string {
    const location = responseHeader(headers, 'location');
    if (!location) {
      throw new RegistryError(`registry ${ref.domain} started an upload to ${ref.path} without a Location`, { code: RegistryErrorCode.Protocol, kind: 'Internal' });
    }
    return location;
  }

  /**
   * Uploads a blob: starts a session (or uses `options.location`), then one PUT with the whole
   * body, or PATCH chunks then a closing PUT. `open` is called once per attempt.
   */
  async pushBlob(
    refInput: ImageReference | string,
    descriptor: Descriptor,
    open: () => Promise<Readable>,
    options: PushBlobOptions = {},
  ): Promise<void> {
    const ref = toReference(refInput);
    const scopes = options.scopes ?? [repositoryScope(ref.path, ['pull', 'push'])];
    const signal = options.signal;
    const mode = options.mode ?? this.#uploadMode;
    let location = options.location;
    if (!location) {
      const started = await this.#transport.send({
        domain: ref.domain,
        scopes,
        method: 'POST',
        url: `/v2/${ref.path}/blobs/uploads/`,
        headers: { 'content-length': '0' },
        ok: [202],
        ...(signal ? { signal } : {}),
      });
      await started.body.dump();
      location = this.#location(started.headers, ref);
    }
    const counted = (source: Readable) => {
      let sent = 0;
      return source.pipe(
        new Transform({
          highWaterMark: 1 << 20,
          transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
            sent += chunk.length;
            options.onProgress?.(sent);
            cb(null, chunk);
          },
        }),
      );
    };
    // Each send (a re-authentication after a 401 too) reads the blob from its start.
    let source: Readable | undefined;
    const reopen = async () => {
      source?.destroy();
      source = await open();
      return source;
    };
    try {
      if (mode === 'monolithic') {
        const url = withQuery(location, ref, { digest: descriptor.digest });
        const res = await this.#transport.send({
          domain: ref.domain,
          scopes,
          method: 'PUT',
          url,
          headers: { 'content-type': 'application/octet-stream', 'content-length': String(descriptor.size) },
          body: async () => counted(await reopen()),
          ok: [201, 204],
          // A failed PUT may have left the session half-written; the caller starts a new one.
          retry: false,
          subject: `blob ${descriptor.digest}`,
          ...(signal ? { signal } : {}),
        });
        await res.body.dump();
        return;
      }
      let offset = 0;
      for await (const chunk of chunksOf(await reopen(), this.#chunkSize)) {
        const res = await this.#transport.send({
          domain: ref.domain,
          scopes,
          method: 'PATCH',
          url: location,
          headers: {
            'content-type': 'application/octet-stream',
            'content-length': String(chunk.length),
            'content-range': `${offset}-${offset + chunk.length - 1}`,
          },
          body: () => chunk,
          ok: [202],
          subject: `blob ${descriptor.digest}`,
          ...(signal ? { signal } : {}),
        });
        await res.body.dump();
        offset += chunk.length;
        options.onProgress?.(offset);
        location = this.#location(res.headers, ref);
      }
      const res = await this.#transport.send({
        domain: ref.domain,
        scopes,
        method: 'PUT',
        url: withQuery(location, ref, { digest: descriptor.digest }),
        headers: { 'content-length': '0' },
        ok: [201, 204],
        subject: `blob ${descriptor.digest}`,
        ...(signal ? { signal } : {}),
      });
      await res.body.dump();
    } finally {
      source?.destroy();
    }
  }

  /** Uploads a manifest or index under a tag or digest; returns the digest the registry recorded. */
  async putManifest(
    refInput: ImageReference | string,
    mediaType: string,
    bytes: Uint8Array,
    options: { readonly signal?: AbortSignal; readonly scopes?: readonly string[] } = {},
  ): Promise<Digest> {
    const ref = toReference(refInput);
    const digest = digestOf(bytes);
    const res = await this.#transport.send({
      domain: ref.domain,
      scopes: options.scopes ?? [repositoryScope(ref.path, ['pull', 'push'])],
      method: 'PUT',
      url: `/v2/${ref.path}/manifests/${referencePart(ref)}`,
      headers: { 'content-type': mediaType },
      body: () => Buffer.from(bytes),
      ok: [201, 200, 204],
      subject: `manifest for ${familiarReference(ref)}`,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    await res.body.dump();
    const recorded = responseHeader(res.headers, 'docker-content-digest');
    if (recorded && isDigest(recorded) && parseDigest(recorded).algorithm === 'sha256' && recorded !== digest) {
      throw new RegistryError(`registry ${ref.domain} recorded manifest ${familiarReference(ref)} as ${recorded}, but it has digest ${digest}`, {
        code: RegistryErrorCode.DigestMismatch,
        kind: 'Internal',
      });
    }
    return digest;
  }

  /** Every tag of a repository, following the registry's pagination (`Link: <...>; rel="next"`). */
  async listTags(refInput: ImageReference | string, options: { readonly signal?: AbortSignal } = {}): Promise<string[]> {
    const ref = toReference(refInput);
    const tags: string[] = [];
    let url: string | undefined = `/v2/${ref.path}/tags/list`;
    for (let page = 0; url && page < 1000; page++) {
      const res = await this.#transport.send({
        domain: ref.domain,
        scopes: [repositoryScope(ref.path, ['pull'])],
        method: 'GET',
        url,
        ok: [200],
        subject: `repository ${ref.domain}/${ref.path}`,
        followRedirects: true,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      const body = JSON.parse(await readLimited(res.body, 16 << 20)) as { tags?: unknown };
      if (Array.isArray(body.tags)) for (const t of body.tags) if (typeof t === 'string') tags.push(t);
      url = /<([^>]+)>;\s*rel="?next"?/.exec(responseHeader(res.headers, 'link') ?? '')?.[1];
    }
    return tags;
  }

  /**
   * Pulls an image into a content store: resolves the platform, downloads config and layers in
   * parallel (each verified at commit, resumed with Range after an interruption, retried),
   * skips what the store already has, then stores the manifest and index. Iterate the
   * operation for docker's progress messages.
   */
  pull(ref: ImageReference | string, options: PullOptions): Operation<PullResult> {
    return startOperation((emit) => runPull(this, this.#internals, toReference(ref), options, emit));
  }

  /**
   * Pushes an image from a content store: blobs the repository lacks (mounted from another
   * repository of the registry when one is known to have them), then manifests, then the tag.
   */
  push(ref: ImageReference | string, options: PushOptions): Operation<PushResult> {
    return startOperation((emit) => runPush(this, this.#internals, toReference(ref), options, emit));
  }
}

function withQuery(location: string, ref: ImageReference, params: Record<string, string>): string {
  // Location may be relative, absolute, and already carry a query (`?_state=...`): keep it.
  const url = new URL(location, `http://${ref.domain}`);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return /^[a-z]+:\/\//i.test(location) ? url.href : url.pathname + url.search;
}

/** Reads a body whole, refusing more than `limit` bytes (or a different length when `exact`). */
async function readBounded(body: Readable, limit: number, what: string, exact = false): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      body.destroy();
      throw new RegistryError(`${what}: more than ${limit} bytes`, {
        code: exact ? RegistryErrorCode.DigestMismatch : RegistryErrorCode.Protocol,
        kind: 'InvalidArgument',
      });
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, size);
}

/** Splits a stream into Buffers of `size` bytes (the last one shorter), for chunked uploads. */
async function* chunksOf(source: Readable, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let have = 0;
  for await (const data of source) {
    let chunk = data as Buffer;
    while (have + chunk.length >= size) {
      const take = size - have;
      parts.push(chunk.subarray(0, take));
      yield Buffer.concat(parts, size);
      chunk = chunk.subarray(take);
      parts = [];
      have = 0;
    }
    if (chunk.length) {
      parts.push(chunk);
      have += chunk.length;
    }
  }
  if (have) yield Buffer.concat(parts, have);
}
