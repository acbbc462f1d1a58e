import type { Readable } from 'node:stream';
import { createGunzip, createZstdDecompress, type Gunzip, type ZstdDecompress } from 'node:zlib';
import type { LayerCompression } from '@berth/oci';

/** How a blob is compressed, told by its first bytes (gzip and zstd magic numbers). */
export function detectCompression(head: Uint8Array): LayerCompression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}

/** Resolves with the first bytes of `source` without consuming them (empty at once-ended streams). */
export function peekHead(source: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const done = (head: Buffer) => {
      source.off('readable', onReadable);
      source.off('end', onEnd);
      source.off('error', reject);
      resolve(head);
    };
    const onReadable = () => {
      const chunk = source.read() as Buffer | null;
      if (chunk === null) return;
      source.unshift(chunk);
      done(chunk);
    };
    const onEnd = () => done(Buffer.alloc(0));
    source.on('readable', onReadable);
    source.once('end', onEnd);
    source.once('error', reject);
  });
}

/** A decompressing stream for `compression` (big output chunks: layers are large), or undefined for none. */
export function createDecompressor(compression: LayerCompression): Gunzip | ZstdDecompress | undefined {
  if (compression === 'gzip') return createGunzip({ chunkSize: 256 << 10 });
  if (compression === 'zstd') return createZstdDecompress({ chunkSize: 256 << 10 });
  return undefined;
}
