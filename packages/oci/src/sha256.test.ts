import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { digestOf, sha256Hex } from './index.js';

const reference = (data: string | Uint8Array) => createHash('sha256').update(data).digest('hex');

describe('sha256Hex', () => {
  it('gives the FIPS 180-4 examples', () => {
    expect(sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(sha256Hex('')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(sha256Hex('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')).toBe('248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1');
  });

  it("agrees with node:crypto on every length around the block edges, on bytes and on UTF-8 text", () => {
    for (let length = 0; length <= 200; length++) {
      const bytes = randomBytes(length);
      expect(sha256Hex(bytes)).toBe(reference(bytes));
    }
    for (const text of ['/var/lib/berth', 'sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 berth-init', 'ünïcødé ✓ 容器 🐳'.repeat(7)]) {
      expect(sha256Hex(text)).toBe(reference(text));
    }
  });

  it('backs digestOf for short input; longer input and sha512 give the same digests as node:crypto', () => {
    for (const data of ['x', 'y'.repeat(1024), 'z'.repeat(1025), randomBytes(5000)]) expect(digestOf(data)).toBe(`sha256:${reference(data)}`);
    expect(digestOf('abc', 'sha512')).toBe(`sha512:${createHash('sha512').update('abc').digest('hex')}`);
  });
});
