import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { OciError, OciErrorCode } from './errors.js';
import { sha256Hex } from './sha256.js';

/** The digest algorithms OCI registers; Berth writes sha256 and reads both. */
export type DigestAlgorithm = 'sha256' | 'sha512';

/** A content digest, `algorithm:hex` (`sha256:9f86d0...`). */
export type Digest = `${DigestAlgorithm}:${string}`;

const hexLength: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };

/** The algorithm and hex of a digest, after checking its form. */
export function parseDigest(value: string): { algorithm: DigestAlgorithm; hex: string } {
  const colon = value.indexOf(':');
  const algorithm = value.slice(0, colon);
  const hex = value.slice(colon + 1);
  if (colon < 0 || !(algorithm in hexLength)) {
    throw new OciError(`invalid digest ${JSON.stringify(value)}: unsupported algorithm (want sha256 or sha512)`, {
      code: OciErrorCode.InvalidDigest,
      kind: 'InvalidArgument',
    });
  }
  const alg = algorithm as DigestAlgorithm;
  if (hex.length !== hexLength[alg] || !/^[a-f0-9]+$/.test(hex)) {
    throw new OciError(`invalid digest ${JSON.stringify(value)}: want ${hexLength[alg]} lowercase hex characters`, {
      code: OciErrorCode.InvalidDigest,
      kind: 'InvalidArgument',
    });
  }
  return { algorithm: alg, hex };
}

/** True when `value` is a well-formed digest. */
export function isDigest(value: string): value is Digest {
  try {
    parseDigest(value);
    return true;
  } catch {
    return false;
  }
}

/** Up to this many bytes (or UTF-16 units of a string) a SHA-256 is computed without node:crypto. */
const shortInput = 1024;

/** The digest of some bytes (a string is hashed as UTF-8). */
export function digestOf(data: string | Uint8Array, algorithm: DigestAlgorithm = 'sha256'): Digest {
  if (algorithm === 'sha256' && data.length <= shortInput) return `sha256:${sha256Hex(data)}`;
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}

/** The first 12 hex characters of a digest, as docker shows image and container ids. */
export function shortId(digest: string): string {
  const colon = digest.indexOf(':');
  return digest.slice(colon + 1, colon + 13);
}

/** What a DigestStream checks its content against when it ends. */
export interface ExpectedContent {
  readonly digest: string;
  readonly size?: number;
}

/**
 * A pass-through stream that hashes and counts what flows through it. With `expected`, it
 * fails with ERR_DIGEST_MISMATCH at the end when the content differs, so a pipeline that
 * writes to a temporary file never commits bad content.
 */
export class DigestStream extends Transform {
  readonly #hash: Hash;
  readonly #algorithm: DigestAlgorithm;
  readonly #expected: ExpectedContent | undefined;
  #size = 0;
  #digest: Digest | undefined;

  constructor(options: { algorithm?: DigestAlgorithm; expected?: ExpectedContent } = {}) {
    super();
    this.#expected = options.expected;
    this.#algorithm = options.expected ? parseDigest(options.expected.digest).algorithm : (options.algorithm ?? 'sha256');
    this.#hash = createHash(this.#algorithm);
  }

  /** Bytes seen so far. */
  get size(): number {
    return this.#size;
  }

  /** The digest of everything seen; available once the stream has ended. */
  get digest(): Digest {
    if (!this.#digest) throw new OciError('digest read before the stream ended', { code: 'ERR_STREAM_NOT_ENDED', kind: 'Internal' });
    return this.#digest;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#hash.update(chunk);
    this.#size += chunk.length;
    const max = this.#expected?.size;
    if (max !== undefined && this.#size > max) {
      callback(mismatch(this.#expected!, `more than ${max} bytes`));
      return;
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.#digest = `${this.#algorithm}:${this.#hash.digest('hex')}`;
    const expected = this.#expected;
    if (expected && expected.size !== undefined && expected.size !== this.#size) {
      callback(mismatch(expected, `${this.#size} bytes, want ${expected.size}`));
    } else if (expected && expected.digest !== this.#digest) {
      callback(mismatch(expected, `content has digest ${this.#digest}`));
    } else {
      callback();
    }
  }
}

function mismatch(expected: ExpectedContent, what: string): OciError {
  return new OciError(`digest mismatch for ${expected.digest}: ${what}`, { code: OciErrorCode.DigestMismatch, kind: 'InvalidArgument' });
}

/**
 * The chain IDs of a layer stack: ChainID(L0) = DiffID(L0), ChainID(L0..n) =
 * sha256(ChainID(L0..n-1) + " " + DiffID(Ln)). Snapshots are keyed by them.
 */
export function chainIds(diffIds: readonly string[]): Digest[] {
  const out: Digest[] = [];
  for (const diffId of diffIds) {
    parseDigest(diffId);
    const parent = out.at(-1);
    out.push(parent ? digestOf(`${parent} ${diffId}`) : (diffId as Digest));
  }
  return out;
}
