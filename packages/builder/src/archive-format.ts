import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { Duplex, PassThrough } from 'node:stream';
import { createGunzip, gunzipSync } from 'node:zlib';
import { ErrorKind } from '@berth/errors';
import { BuildContextError, BuilderErrorCode } from './errors.js';

/** The compressions docker recognises on build contexts and ADD archives. */
export type Compression = 'none' | 'gzip' | 'bzip2' | 'xz' | 'zstd';

/** The compression of a stream, from its first bytes (magic numbers). */
export function detectCompression(head: Uint8Array): Compression {
  const starts = (...bytes: number[]) => bytes.every((b, i) => head[i] === b);
  if (starts(0x1f, 0x8b, 0x08)) return 'gzip';
  if (starts(0x42, 0x5a, 0x68)) return 'bzip2';
  if (starts(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) return 'xz';
  if (starts(0x28, 0xb5, 0x2f, 0xfd)) return 'zstd';
  return 'none';
}

const tools: Record<Exclude<Compression, 'none' | 'gzip'>, string> = { bzip2: 'bzip2', xz: 'xz', zstd: 'zstd' };

/**
 * A stream that decompresses `compression`: gzip in-process, bzip2, xz and zstd through the
 * system's `bzip2`, `xz` and `zstd` (as docker does for xz).
 */
export function decompressStream(compression: Compression, signal?: AbortSignal): Duplex {
  if (compression === 'none') return new PassThrough();
  if (compression === 'gzip') return createGunzip();
  const tool = tools[compression];
  const child = spawn(tool, ['-d', '-c', '-q'], { stdio: ['pipe', 'pipe', 'pipe'], ...(signal ? { signal } : {}) });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const duplex = Duplex.from({ writable: child.stdin, readable: child.stdout });
  child.on('error', (err) =>
    duplex.destroy(new BuildContextError(`cannot decompress ${compression}: ${tool} is not available`, { code: BuilderErrorCode.InvalidContext, kind: ErrorKind.Unavailable, cause: err })),
  );
  child.on('exit', (code) => {
    if (code !== 0 && code !== null) duplex.destroy(new BuildContextError(`${tool} failed (exit ${code}): ${stderr.trim()}`, { code: BuilderErrorCode.InvalidContext, kind: ErrorKind.InvalidArgument }));
  });
  return duplex;
}

/** True when a 512-byte block is a tar header: its checksum field matches its bytes. */
export function isTarHeader(block: Uint8Array): boolean {
  if (block.length < 512) return false;
  const field = Buffer.from(block.subarray(148, 156)).toString('latin1').replace(/\0.*$/, '').trim();
  if (!/^[0-7]+$/.test(field)) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
  return sum === parseInt(field, 8);
}

async function readHead(path: string, length: number): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, length, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/**
 * Whether ADD should unpack a local file: it is a tar archive, plain or compressed, as docker
 * decides (by content, never by file name). Remote sources are never unpacked.
 */
export async function isTarArchive(path: string, signal?: AbortSignal): Promise<boolean> {
  const head = await readHead(path, 64 * 1024);
  const compression = detectCompression(head);
  if (compression === 'none') return isTarHeader(head);
  if (compression === 'gzip') {
    try {
      return isTarHeader(gunzipSync(head, { finishFlush: 2 /* Z_SYNC_FLUSH: a truncated stream is fine */ }));
    } catch {
      return false;
    }
  }
  // bzip2 needs whole blocks (up to 900 kB), so feed the file until 512 bytes come out.
  const input = createReadStream(path);
  const out = decompressStream(compression, signal);
  const chunks: Buffer[] = [];
  let size = 0;
  const block = await new Promise<Buffer>((resolve) => {
    out.on('data', (d: Buffer) => {
      chunks.push(d);
      size += d.length;
      if (size >= 512) resolve(Buffer.concat(chunks));
    });
    out.on('end', () => resolve(Buffer.concat(chunks)));
    out.on('error', () => resolve(Buffer.concat(chunks)));
    input.on('error', () => resolve(Buffer.concat(chunks)));
    input.pipe(out);
  });
  input.destroy();
  out.destroy();
  return isTarHeader(block);
}
