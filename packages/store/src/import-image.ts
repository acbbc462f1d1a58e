import { PassThrough, Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { ErrorKind, throwIfAborted } from '@berth/errors';
import { DigestStream, MediaType, hostPlatform, parseReference, type ImageConfig, type ImageManifest, type Platform } from '@berth/oci';
import { createDecompressor, detectCompression, peekHead } from './compression.js';
import { applyImageChanges } from './config-changes.js';
import { StoreError, StoreErrorCode } from './errors.js';
import type { ImageRecord, ImageStore } from './image-store.js';
import { TarReader } from './tar-reader.js';

/** Options of `importImage`, docker's `import`. */
export interface ImportImageOptions {
  readonly store: ImageStore;
  /** A root file system as a tar, plain or gzip/zstd-compressed. */
  readonly source: Readable;
  /** `repo[:tag]` to name the image; none leaves it untagged. */
  readonly reference?: string;
  /** Dockerfile instructions applied to the config (`CMD ["sh"]`, `ENV A=1`, ...). */
  readonly changes?: readonly string[];
  /** The commit message; docker's default is "Imported from <source>". */
  readonly message?: string;
  /** What the tar came from, for that default message (default `-`, stdin). */
  readonly sourceName?: string;
  /** The platform recorded in the config (default: this host's). */
  readonly platform?: Platform;
  readonly signal?: AbortSignal;
}

/** Passes a stream through while a TarReader checks it is a whole tar archive. */
class TarCheck extends Transform {
  readonly #reader = new TarReader(() => undefined);

  constructor() {
    super({ highWaterMark: 1 << 20 });
    this.#reader.on('error', (err) => this.destroy(err));
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#reader.write(chunk, (err) => callback(err ?? null, chunk));
  }

  override _flush(callback: TransformCallback): void {
    this.#reader.end((err?: Error | null) => callback(err ?? null));
  }
}

/**
 * Makes a one-layer image from a root file system tar, as `docker import` does: the tar is
 * checked, stored as a gzip layer (its diff ID hashed on the way), and described by a config
 * whose run settings come from `changes` and whose history and comment carry the message.
 */
export async function importImage(options: ImportImageOptions): Promise<ImageRecord> {
  const { store, signal } = options;
  throwIfAborted(signal);
  if (options.reference !== undefined && parseReference(options.reference).digest) {
    throw new StoreError(`refusing to import under a digest reference: ${options.reference}`, { code: StoreErrorCode.InvalidTag, kind: ErrorKind.InvalidArgument });
  }
  const config0 = applyImageChanges(undefined, options.changes ?? []);
  const platform = options.platform ?? hostPlatform();
  const compression = detectCompression(await peekHead(options.source));
  const decompress = createDecompressor(compression);
  return store.withLease(async (lease) => {
    const diffId = new DigestStream();
    const gzip = createGzip();
    const layerOut = new PassThrough({ highWaterMark: 1 << 20 });
    const streamOptions = signal ? { signal } : {};
    const produced = decompress
      ? pipeline(options.source, decompress, new TarCheck(), diffId, gzip, layerOut, streamOptions)
      : pipeline(options.source, new TarCheck(), diffId, gzip, layerOut, streamOptions);
    const [layer] = await Promise.all([lease.writeBlob(layerOut, streamOptions), produced]);

    const created = new Date().toISOString();
    const comment = options.message || `Imported from ${options.sourceName ?? '-'}`;
    const config: ImageConfig = {
      created,
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      config: config0,
      rootfs: { type: 'layers', diff_ids: [diffId.digest] },
      history: [{ created, comment }],
      comment,
    };
    const configBlob = await lease.content.put(Buffer.from(JSON.stringify(config)), undefined, streamOptions);
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, ...configBlob },
      layers: [{ mediaType: MediaType.OciLayerGzip, ...layer }],
    };
    const manifestBlob = await lease.content.put(Buffer.from(JSON.stringify(manifest)), undefined, streamOptions);
    return store.add({
      target: { mediaType: MediaType.OciManifest, ...manifestBlob },
      names: options.reference ? [options.reference] : [],
      platform,
      ...(signal ? { signal } : {}),
    });
  }, signal ? { signal } : {});
}
