import { openSync, readSync } from 'node:fs';

// Random names and ids from the kernel's generator (/dev/urandom, the source node:crypto's
// randomBytes is seeded from): loading node:crypto costs about 2 ms at every start of a command
// line tool, and a container's run needs only a few random bytes.

// Opened once (close-on-exec, as libuv opens every file) and kept: a few bytes at a time.
let urandom: number | undefined;

/** `size` random bytes. */
export function randomBytes(size: number): Buffer {
  urandom ??= openSync('/dev/urandom', 'r');
  const bytes = Buffer.alloc(size);
  for (let got = 0; got < size; ) got += readSync(urandom, bytes, got, size - got, null);
  return bytes;
}

/** `size` random bytes as lowercase hex. */
export function randomHex(size: number): string {
  return randomBytes(size).toString('hex');
}

/** A random integer in [0, max), uniformly: values of the top partial range are drawn again. */
export function randomBelow(max: number): number {
  if (!Number.isInteger(max) || max <= 0 || max > 0x100000000) throw new RangeError(`randomBelow: ${max} is not an integer in 1..2^32`);
  const limit = 0x100000000 - (0x100000000 % max);
  for (;;) {
    const value = randomBytes(4).readUInt32BE(0);
    if (value < limit) return value % max;
  }
}

