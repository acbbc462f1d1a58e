import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { abortError, errnoCode, hasCode, hasKind } from '@berth/errors';
import {
  familiarReference,
  formatPlatform,
  hostPlatform,
  normalizePlatform,
  parseImageConfig,
  platformRank,
  shortId,
  type Descriptor,
  type Digest,
  type ImageConfig,
  type ImageIndex,
  type ImageManifest,
  type ImageReference,
  type Platform,
} from '@berth/oci';
import type { ContentStore } from '@berth/store';
import type { ClientInternals, RegistryClient } from './client.js';
import { RegistryError, RegistryErrorCode } from './errors.js';
import { createTaskLimit, progressReporter, type ProgressEvent } from './progress.js';
import { isRetryableNetworkError } from './transport.js';

/** Options of `RegistryClient.pull`. */
export interface PullOptions {
  /** Where config, layers and manifests are written (through `ingest`/`put`). */
  readonly content: ContentStore;
  /**
   * The platform to pull (`--platform`); default this host's. When given, a single-platform
   * image of another platform is refused; without it docker only warns, and so does Berth.
   */
  readonly platform?: Platform;
  readonly signal?: AbortSignal;
  /**
   * Called for each layer in order, as soon as it and every layer below it are stored: the
   * engine unpacks there, so extraction overlaps the downloads as in docker. Progress then
   * shows `Extracting` and `Pull complete` around it.
   */
  readonly unpackLayer?: (layer: Descriptor, position: number, options: UnpackLayerHookOptions) => Promise<void>;
}

/** What `unpackLayer` is told besides the layer: the diff ID the config names for it. */
export interface UnpackLayerHookOptions {
  readonly diffId: Digest;
  readonly signal: AbortSignal;
}

/** What a pull stored. The caller tags `descriptor` in its image store. */
export interface PullResult {
  readonly reference: ImageReference;
  /** What the reference names: the index when it named one, otherwise the manifest. Its digest is the `Digest:` line. */
  readonly descriptor: Descriptor;
  readonly indexDescriptor?: Descriptor;
  readonly index?: ImageIndex;
  /** The manifest for the platform, with `platform` set when it came from an index. */
  readonly manifestDescriptor: Descriptor;
  readonly manifest: ImageManifest;
  readonly configDescriptor: Descriptor;
  readonly config: ImageConfig;
  readonly configBytes: Buffer;
  /** The platform of the image pulled, from its config. */
  readonly platform: Platform;
  /** False when the store already had everything ("Image is up to date"). */
  readonly downloaded: boolean;
  /** Things docker prints as WARNING (a platform mismatch without `--platform`). */
  readonly warnings: readonly string[];
}

// Mid-body failures worth resuming: the connection dropped or the body stalled.
function isInterruptedTransfer(err: unknown): boolean {
  if (isRetryableNetworkError(err)) return true;
  const code = errnoCode(err);
  return code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' || hasKind(err, 'Unavailable');
}

/** Drops the first `skip` bytes (a registry that ignored our Range) and counts the rest. */
function skipAndCount(skip: number, onBytes: (n: number) => void): Transform {
  let left = skip;
  return new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      if (left > 0) {
        if (chunk.length <= left) {
          left -= chunk.length;
          cb();
          return;
        }
        chunk = chunk.subarray(left);
        left = 0;
      }
      onBytes(chunk.length);
      cb(null, chunk);
    },
  });
}

function platformOf(config: ImageConfig): Platform {
  return normalizePlatform({ os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) });
}

/** The pull behind `RegistryClient.pull`. */
export async function runPull(
  client: RegistryClient,
  internals: ClientInternals,
  ref: ImageReference,
  options: PullOptions,
  emit: (event: ProgressEvent) => void,
): Promise<PullResult> {
  const { content } = options;
  const outer = options.signal;
  if (outer?.aborted) throw abortError(outer);
  // One failed layer stops the others; the caller's signal stops everything.
  const stop = new AbortController();
  const signal = outer ? AbortSignal.any([outer, stop.signal]) : stop.signal;
  const wanted = options.platform ? normalizePlatform(options.platform) : hostPlatform();
  const warnings: string[] = [];

  emit({ id: ref.digest ?? ref.tag ?? 'latest', status: `Pulling from ${ref.path}` });
  const resolved = await client.resolve(ref, { platform: wanted, signal });
  const { manifest } = resolved.manifest;
  let downloaded = false;

  // A manifest may list a layer twice (an empty layer); fetch each digest once.
  const unique = [...new Map(manifest.layers.map((l) => [l.digest, l])).values()];
  const present = await Promise.all(unique.map(async (l) => (await content.stat(l.digest))?.size === l.size));
  const missing = unique.filter((_, i) => !present[i]);
  for (const [i, layer] of unique.entries()) {
    emit({ id: shortId(layer.digest), status: present[i] ? 'Already exists' : 'Pulling fs layer' });
  }
  missing.slice(internals.maxConcurrentDownloads).forEach((l) => emit({ id: shortId(l.digest), status: 'Waiting' }));

  const download = async (layer: Descriptor) => {
    const id = shortId(layer.digest);
    const expected = { digest: layer.digest, size: layer.size, mediaType: layer.mediaType };
    let restarted = false;
    for (let attempt = 0; ; attempt++) {
      // The signal may cancel the wait for another writer of this blob, but once the ingest is
      // ours the pull aborts it itself, keeping the partial bytes only when there are some.
      const waiting = new AbortController();
      const cancelWait = () => waiting.abort(signal.reason);
      signal.addEventListener('abort', cancelWait, { once: true });
      let ingest: Awaited<ReturnType<ContentStore['ingest']>>;
      try {
        ingest = await content.ingest(expected, { signal: waiting.signal });
      } finally {
        signal.removeEventListener('abort', cancelWait);
      }
      const offset = ingest.offset;
      let current = offset;
      const report = progressReporter(layer.size, (c) => emit({ id, status: 'Downloading', current: c, total: layer.size }));
      try {
        if (offset < layer.size) {
          const blob = await client.fetchBlob(ref, layer.digest, {
            start: offset,
            signal,
            onRetry: (delay) => emit({ id, status: `Retrying in ${Math.max(1, Math.round(delay / 1000))} second${Math.round(delay / 1000) > 1 ? 's' : ''}` }),
          });
          internals.logger.debug('downloading layer', { digest: layer.digest, from: blob.start, resume: offset, size: layer.size });
          await pipeline(
            blob.body,
            skipAndCount(offset - blob.start, (n) => {
              current += n;
              report(current);
            }),
            ingest.writer,
            { signal },
          );
        }
        emit({ id, status: 'Verifying Checksum' });
        await ingest.commit();
        emit({ id, status: 'Download complete' });
        if (!options.unpackLayer) emit({ id, status: 'Pull complete' });
        return;
      } catch (err) {
        if (signal.aborted) {
          await ingest.abort({ keep: current > 0 }).catch(() => {});
          throw outer?.aborted ? abortError(outer) : err;
        }
        if (hasCode(err, RegistryErrorCode.DigestMismatch)) {
          await ingest.abort({ keep: false }).catch(() => {});
          // Bytes kept from an earlier attempt may be what is wrong: start this blob over once, as docker does.
          if (offset > 0 && !restarted) {
            restarted = true;
            continue;
          }
          throw new RegistryError(`filesystem layer verification failed for digest ${layer.digest} (${familiarReference(ref)})`, {
            code: RegistryErrorCode.DigestMismatch,
            kind: 'InvalidArgument',
            cause: err,
          });
        }
        await ingest.abort({ keep: current > 0 }).catch(() => {});
        if (attempt < internals.retries && isInterruptedTransfer(err)) {
          const delay = Math.min(internals.retryDelayMs * 2 ** attempt, 10_000);
          const seconds = Math.max(1, Math.round(delay / 1000));
          emit({ id, status: `Retrying in ${seconds} second${seconds > 1 ? 's' : ''}` });
          internals.logger.debug('layer download interrupted, resuming', { digest: layer.digest, kept: current, error: String(err) });
          await sleep(delay, undefined, { signal }).catch(() => {
            throw abortError(signal);
          });
          continue;
        }
        throw err;
      }
    }
  };

  const limit = createTaskLimit(internals.maxConcurrentDownloads);
  const config = (async () => {
    const descriptor = manifest.config;
    let bytes: Buffer;
    if ((await content.stat(descriptor.digest))?.size === descriptor.size) {
      bytes = await content.readBytes(descriptor.digest, { signal });
    } else {
      bytes = await client.fetchBlobBytes(ref, descriptor, { signal });
      await content.put(bytes, { digest: descriptor.digest, size: descriptor.size, mediaType: descriptor.mediaType }, { signal });
      downloaded = true;
    }
    const parsed = parseImageConfig(bytes);
    if (parsed.rootfs.diff_ids.length !== manifest.layers.length) {
      throw new RegistryError(
        `image ${familiarReference(ref)}: config lists ${parsed.rootfs.diff_ids.length} diff IDs for ${manifest.layers.length} layers`,
        { code: RegistryErrorCode.Protocol, kind: 'InvalidArgument' },
      );
    }
    // Checked before the layers finish, so a wrong platform stops the downloads early.
    const platform = platformOf(parsed);
    if (platformRank(wanted, platform) === undefined) {
      if (options.platform) {
        throw new RegistryError(
          `image with reference ${familiarReference(ref)} was found but does not match the specified platform: wanted ${formatPlatform(wanted)}, actual: ${formatPlatform(platform)}`,
          { code: RegistryErrorCode.NoMatchingPlatform, kind: 'NotFound' },
        );
      }
      warnings.push(
        `The requested image's platform (${formatPlatform(platform)}) does not match the detected host platform (${formatPlatform(wanted)}) and no specific platform was requested`,
      );
    }
    return { bytes, config: parsed, platform };
  })();
  const downloads = new Map(missing.map((l) => [l.digest, limit(() => download(l))]));
  if (missing.length) downloaded = true;
  const unpacked = (async () => {
    if (!options.unpackLayer) return;
    const diffIds = (await config).config.rootfs.diff_ids;
    for (const [position, layer] of manifest.layers.entries()) {
      await downloads.get(layer.digest);
      const id = shortId(layer.digest);
      const fresh = downloads.has(layer.digest);
      if (fresh) emit({ id, status: 'Extracting', current: 0, total: layer.size });
      await options.unpackLayer(layer, position, { diffId: diffIds[position]!, signal });
      if (fresh) emit({ id, status: 'Pull complete' });
    }
  })();

  const work = [config, unpacked, ...downloads.values()];
  // The first failure is the cause; the others are the tasks it stopped. Every task settles
  // before the pull returns, so no ingest is left open behind an error.
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

  const { bytes: configBytes, config: imageConfig, platform } = await config;
  // Manifests go in last, bottom up: a failed pull leaves no manifest pointing at missing content.
  const putIfMissing = async (descriptor: Descriptor, bytes: Buffer) => {
    if ((await content.stat(descriptor.digest))?.size === descriptor.size) return;
    await content.put(bytes, { digest: descriptor.digest, size: descriptor.size, mediaType: descriptor.mediaType }, { signal });
    downloaded = true;
  };
  await putIfMissing(resolved.manifest.descriptor, resolved.manifest.bytes);
  if (resolved.index) await putIfMissing(resolved.index.descriptor, resolved.index.bytes);

  for (const d of [manifest.config, ...unique]) internals.rememberSource(ref.domain, ref.path, d.digest);
  const top = resolved.index?.descriptor ?? resolved.manifest.descriptor;
  emit({ status: `Digest: ${top.digest}` });
  emit({ status: `Status: ${downloaded ? 'Downloaded newer image' : 'Image is up to date'} for ${familiarReference(ref)}` });
  return {
    reference: ref,
    descriptor: top,
    ...(resolved.index ? { indexDescriptor: resolved.index.descriptor, index: resolved.index.index } : {}),
    manifestDescriptor: resolved.manifest.descriptor,
    manifest,
    configDescriptor: manifest.config,
    config: imageConfig,
    configBytes,
    platform,
    downloaded,
    warnings,
  };
}
