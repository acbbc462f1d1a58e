import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { DigestStream, chainIds, digestOf, parseDigest, shortId } from './index.js';

const sha = (s: string) => 'sha256:' + createHash('sha256').update(s).digest('hex');
const sink = () => new Writable({ write: (_c, _e, cb) => cb() });

describe('digests', () => {
  it('computes, parses and shortens', () => {
    expect(digestOf('hello')).toBe('sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824');
    expect(parseDigest(digestOf('x', 'sha512')).algorithm).toBe('sha512');
    expect(shortId('sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e')).toBe('2cf24dba5fb0');
    expect(() => parseDigest('md5:abc')).toThrowError(/unsupported algorithm/);
    expect(() => parseDigest('sha256:ABC')).toThrowError(/64 lowercase hex/);
  });

  it('streams through a DigestStream and reports digest and size', async () => {
    const ds = new DigestStream();
    await pipeline(Readable.from([Buffer.from('hel'), Buffer.from('lo')]), ds, sink());
    expect(ds.digest).toBe(digestOf('hello'));
    expect(ds.size).toBe(5);
  });

  it('fails a pipeline whose content does not match the expected digest or size', async () => {
    const wrong = new DigestStream({ expected: { digest: digestOf('other'), size: 5 } });
    await expect(pipeline(Readable.from([Buffer.from('hello')]), wrong, sink())).rejects.toMatchObject({ code: 'ERR_DIGEST_MISMATCH' });
    const short = new DigestStream({ expected: { digest: digestOf('hello'), size: 6 } });
    await expect(pipeline(Readable.from([Buffer.from('hello')]), short, sink())).rejects.toThrowError(/5 bytes, want 6/);
    const long = new DigestStream({ expected: { digest: digestOf('hello'), size: 2 } });
    await expect(pipeline(Readable.from([Buffer.from('hello')]), long, sink())).rejects.toThrowError(/more than 2 bytes/);
  });

  it('derives chain IDs as the image spec defines them', () => {
    const [a, b, c] = [sha('a'), sha('b'), sha('c')];
    const ab = sha(`${a} ${b}`);
    expect(chainIds([a, b, c])).toEqual([a, ab, sha(`${ab} ${c}`)]);
    expect(chainIds([])).toEqual([]);
  });
});
