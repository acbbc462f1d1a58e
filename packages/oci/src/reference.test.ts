import { describe, expect, it } from 'vitest';
import { familiarName, familiarReference, formatReference, parseReference, withTag } from './index.js';

const d = 'sha256:' + 'ab'.repeat(32);

describe('parseReference', () => {
  it.each([
    ['busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['busybox:1.36', 'docker.io/library/busybox:1.36', 'busybox:1.36'],
    ['library/busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['docker.io/busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['index.docker.io/me/app:v1', 'docker.io/me/app:v1', 'me/app:v1'],
    ['me/app', 'docker.io/me/app:latest', 'me/app:latest'],
    ['me/deep/app', 'docker.io/me/deep/app:latest', 'me/deep/app:latest'],
    ['localhost/app', 'localhost/app:latest', 'localhost/app:latest'],
    ['localhost:5000/a/b:tag', 'localhost:5000/a/b:tag', 'localhost:5000/a/b:tag'],
    ['127.0.0.1:5000/app', '127.0.0.1:5000/app:latest', '127.0.0.1:5000/app:latest'],
    ['[::1]:5000/app:v2', '[::1]:5000/app:v2', '[::1]:5000/app:v2'],
    ['ghcr.io/org/img', 'ghcr.io/org/img:latest', 'ghcr.io/org/img:latest'],
    ['Registry.Example/app', 'Registry.Example/app:latest', 'Registry.Example/app:latest'],
    ['a_b-c__d---e/f.g', 'docker.io/a_b-c__d---e/f.g:latest', 'a_b-c__d---e/f.g:latest'],
    [`busybox@${d}`, `docker.io/library/busybox@${d}`, `busybox@${d}`],
    [`host:5000/a/b:tag@${d}`, `host:5000/a/b:tag@${d}`, `host:5000/a/b:tag@${d}`],
  ])('%s → %s', (input, full, familiar) => {
    const ref = parseReference(input);
    expect(formatReference(ref)).toBe(full);
    expect(familiarReference(ref)).toBe(familiar);
  });

  it.each([
    ['', 'empty'],
    ['Busybox', 'must be lowercase'],
    ['me/App', 'must be lowercase'],
    ['busybox:', 'bad tag'],
    ['busybox:-x', 'bad tag'],
    ['busybox:' + 'a'.repeat(129), 'bad tag'],
    ['busybox@sha256:abc', 'bad digest'],
    ['a//b', 'bad path component'],
    ['a/b/', 'bad path component'],
    ['-a/b', 'bad path component'],
    ['a_b.c/x', 'bad registry host'],
    ['host:5000/', 'missing repository name'],
    ['ab'.repeat(32), '64-byte hexadecimal'],
    ['a..b', 'bad path component'],
    ['docker.io/' + 'a'.repeat(250), 'longer than 255'],
  ])('refuses %j (%s)', (input, why) => {
    expect(() => parseReference(input)).toThrowError(expect.objectContaining({ code: 'ERR_INVALID_REFERENCE', kind: 'InvalidArgument', message: expect.stringContaining(why) }));
  });

  it('keeps no tag when asked, and retags', () => {
    const ref = parseReference('me/app', { defaultTag: false });
    expect(ref.tag).toBeUndefined();
    expect(familiarName(ref)).toBe('me/app');
    expect(formatReference(withTag(parseReference(`busybox@${d}`), 'x'))).toBe('docker.io/library/busybox:x');
  });
});
