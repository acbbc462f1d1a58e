import { setTimeout as sleep } from 'node:timers/promises';
import { abortError, hasKind } from '@berth/errors';
import {
  digestOf,
  formatPlatform,
  isNondistributable,
  parseManifest,
  repositoryName,
  shortId,
  type Descriptor,
  type Digest,
  type ImageManifest,
  type ImageReference,
} from '@berth/oci';
import type { ContentStore } from '@berth/store';
import { repositoryScope } from './auth.js';
import type { ClientInternals, RegistryClient } from './client.js';
import { RegistryError, RegistryErrorCode } from './errors.js';
import { createTaskLimit, progressReporter, type ProgressEvent } from './progress.js';
import { isRetryableNetworkError } from './transport.js';

/** Options of `RegistryClient.push`. */
export interface PushOptions {
  /** Where the manifest, config and layers are read from. */
  readonly content: ContentStore;
  /** The manifest or index to push (what the local tag points to); default the reference's digest. */
  readonly manifestDigest?: Digest;
  /** Its media type, when the bytes do not say (an OCI manifest may omit `mediaType`). */
  readonly mediaType?: string;
  /** Repositories of the same registry to try to mount missing blobs from, besides those the client has seen them in. */
  readonly mountFrom?: readonly string[];
  readonly signal?: AbortSignal;
}

/** What a push put in the registry. */
export interface PushResult {
  readonly reference: ImageReference;
  /** The digest of what the tag now names (printed as `<tag>: digest: ... size: N`). */
  readonly digest: Digest;
  readonly size: number;
  readonly mediaType: string;
}

interface LocalManifest {
  readonly descriptor: Descriptor;
  readonly bytes: Buffer;
  readonly manifest: ImageManifest;
}

/** The push behind `RegistryClient.push`. */
export async function runPush(
  client: RegistryClient,
  internals: ClientInternals,
  ref: ImageReference,
  options: PushOptions,
  emit: (event: ProgressEvent) => void,
): Promise<PushResult> {
  const { content } = options;
  const outer = options.signal;
  if (outer?.aborted) throw abortError(outer);
  const stop = new AbortController();
  const signal = outer ? AbortSignal.any([outer, stop.signal]) : stop.signal;
  const topDigest = options.manifestDigest ?? ref.digest;
  if (!topDigest) {
    throw new RegistryError(`push of ${repositoryName(ref)}: no manifest digest given and the reference has no digest`, {
      code: RegistryErrorCode.InvalidOption,
      kind: 'InvalidArgument',
    });
  }
  emit({ status: `The push refers to repository [${repositoryName(ref)}]` });

  const readManifest = async (digest: Digest, mediaType?: string) => {
    const bytes = await content.readBytes(digest, { signal });
    if (digestOf(bytes) !== digest) {
      throw new RegistryError(`local manifest ${digest} has content with digest ${digestOf(bytes)}`, { code: RegistryErrorCode.DigestMismatch, kind: 'Internal' });
    }
    return { bytes, parsed: parseManifest(bytes, mediaType) };
  };
  const top = await readManifest(topDigest, options.mediaType);
  const topDescriptor: Descriptor = { mediaType: top.parsed.mediaType, digest: topDigest, size: top.bytes.length };

  const manifests: LocalManifest[] = [];
  if (top.parsed.kind === 'manifest') {
    manifests.push({ descriptor: topDescriptor, bytes: top.bytes, manifest: top.parsed.manifest });
  } else {
    // An index pulled for one platform holds only that platform's manifest locally; the others
    // may already be in the target repository (a re-push), otherwise the push cannot be complete.
    for (const entry of top.parsed.index.manifests) {
      if ((await content.stat(entry.digest))?.size === entry.size) {
        const child = await readManifest(entry.digest, entry.mediaType);
        if (child.parsed.kind !== 'manifest') {
          throw new RegistryError(`index ${topDigest} nests another index (${entry.digest}); Berth pushes one level of index`, {
            code: RegistryErrorCode.Protocol,
            kind: 'NotImplemented',
          });
        }
        manifests.push({ descriptor: entry, bytes: child.bytes, manifest: child.parsed.manifest });
      } else if (!(await client.headManifest({ domain: ref.domain, path: ref.path, digest: entry.digest }, { signal, scopes: [repositoryScope(ref.path, ['pull', 'push'])] }))) {
        const platform = entry.platform ? ` (${formatPlatform(entry.platform)})` : '';
        throw new RegistryError(
          `manifest ${entry.digest}${platform} of index ${topDigest} is neither in the local store nor in ${repositoryName(ref)}; pull it with --platform or push by the platform's manifest`,
          { code: RegistryErrorCode.MissingContent, kind: 'FailedPrecondition' },
        );
      }
    }
  }

  const layers = new Map<Digest, Descriptor>();
  const configs = new Map<Digest, Descriptor>();
  for (const m of manifests) {
    configs.set(m.manifest.config.digest, m.manifest.config);
    for (const l of m.manifest.layers) if (!isNondistributable(l.mediaType)) layers.set(l.digest, l);
  }
  for (const digest of layers.keys()) configs.delete(digest);

  const candidates = (digest: Digest) =>
    [...new Set([...(options.mountFrom ?? []), ...internals.knownSources(ref.domain, digest)])].filter((p) => p !== ref.path);
  // One token for the whole push: push on the target, pull on every repository a blob may be mounted from.
  const sourceRepos = new Set<string>();
  for (const d of [...layers.keys(), ...configs.keys()]) for (const p of candidates(d)) sourceRepos.add(p);
  const scopes = [repositoryScope(ref.path, ['pull', 'push']), ...[...sourceRepos].sort().map((p) => repositoryScope(p, ['pull']))];

  for (const l of layers.values()) emit({ id: shortId(l.digest), status: 'Preparing' });
  [...layers.values()].slice(internals.maxConcurrentUploads).forEach((l) => emit({ id: shortId(l.digest), status: 'Waiting' }));

  const upload = async (blob: Descriptor, visible: boolean) => {
    const id = shortId(blob.digest);
    const say = (event: Omit<ProgressEvent, 'id'>) => {
      if (visible) emit({ id, ...event });
    };
    const local = await content.stat(blob.digest);
    const remote = await client.blobExists(ref, blob.digest, { signal, scopes });
    if (remote) {
      say({ status: 'Layer already exists' });
      return;
    }
    if (local?.size !== blob.size) {
      throw new RegistryError(`blob ${blob.digest} is neither in the local store nor in ${repositoryName(ref)}`, {
        code: RegistryErrorCode.MissingContent,
        kind: 'FailedPrecondition',
      });
    }
    let location: string | undefined;
    for (const from of candidates(blob.digest)) {
      try {
        const mount = await client.mountBlob(ref, from, blob.digest, { signal, scopes });
        if (mount.mounted) {
          say({ status: `Mounted from ${from}` });
          return;
        }
        location = mount.location;
        break;
      } catch (err) {
        // A source we may not read is no reason to fail: the blob is uploaded instead.
        if (!hasKind(err, 'PermissionDenied') && !hasKind(err, 'NotFound')) throw err;
        internals.logger.debug('cross-repository mount refused', { digest: blob.digest, from, error: String(err) });
      }
    }
    const report = progressReporter(blob.size, (current) => say({ status: 'Pushing', current, total: blob.size }));
    for (let attempt = 0; ; attempt++) {
      try {
        await client.pushBlob(ref, blob, () => content.read(blob.digest, { signal }), {
          signal,
          scopes,
          onProgress: report,
          ...(location ? { location } : {}),
        });
        break;
      } catch (err) {
        location = undefined;
        if (signal.aborted) throw outer?.aborted ? abortError(outer) : err;
        const transient = isRetryableNetworkError(err) || hasKind(err, 'Unavailable');
        if (!transient || attempt >= internals.retries) throw err;
        const delay = Math.min(internals.retryDelayMs * 2 ** attempt, 10_000);
        const seconds = Math.max(1, Math.round(delay / 1000));
        say({ status: `Retrying in ${seconds} second${seconds > 1 ? 's' : ''}` });
        await sleep(delay, undefined, { signal }).catch(() => {
          throw abortError(signal);
        });
      }
    }
    say({ status: 'Pushed' });
  };

  const limit = createTaskLimit(internals.maxConcurrentUploads);
  const work = [...[...layers.values()].map((l) => limit(() => upload(l, true))), ...[...configs.values()].map((c) => limit(() => upload(c, false)))];
  let cause: { error: unknown } | undefined;
  work.forEach((p) =>
    p.catch((error: unknown) => {
      cause ??= { error };
      stop.abort();
    }),
  );
  await Promise.allSettled(work);
  if (outer?.aborted) throw abortError(outer);
  if (cause) throw cause.error;

  if (top.parsed.kind === 'index') {
    for (const m of manifests) {
      await client.putManifest({ domain: ref.domain, path: ref.path, digest: m.descriptor.digest }, m.descriptor.mediaType, m.bytes, { signal, scopes });
    }
  }
  const target: ImageReference = ref.tag ? { domain: ref.domain, path: ref.path, tag: ref.tag } : { domain: ref.domain, path: ref.path, digest: topDigest };
  await client.putManifest(target, topDescriptor.mediaType, top.bytes, { signal, scopes });

  for (const m of manifests) for (const d of [m.manifest.config, ...m.manifest.layers]) internals.rememberSource(ref.domain, ref.path, d.digest);
  emit({ status: `${ref.tag ? `${ref.tag}: ` : ''}digest: ${topDigest} size: ${top.bytes.length}` });
  return { reference: ref, digest: topDigest, size: top.bytes.length, mediaType: topDescriptor.mediaType };
}
