import type { BigIntStats } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '@berth/errors';
import { RuntimeError, RuntimeErrorCode } from './errors.js';
import type { LinuxDevice } from './oci-spec.js';

// What a privileged container must not get from the host's /dev: its own pts, shm and mqueue
// are mounted fresh, and the host's console is not its to take.
const skipped = new Set(['/dev/pts', '/dev/shm', '/dev/mqueue', '/dev/console', '/dev/ptmx', '/dev/fd']);

// glibc's encoding of dev_t (gnu_dev_major/minor); 64-bit, so in BigInt.
function major(rdev: bigint): number {
  return Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
}

function minor(rdev: bigint): number {
  return Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
}

/** The device node at `path` on the host, as an OCI device entry. */
export async function hostDevice(path: string): Promise<LinuxDevice> {
  let st: BigIntStats;
  try {
    st = await lstat(path, { bigint: true });
  } catch (err) {
    throw new RuntimeError(`device ${path}: not found on this host`, RuntimeErrorCode.InvalidSpec, { cause: err });
  }
  if (!st.isCharacterDevice() && !st.isBlockDevice()) {
    throw new RuntimeError(`device ${path}: not a character or block device`, RuntimeErrorCode.InvalidSpec);
  }
  return {
    path,
    type: st.isBlockDevice() ? 'b' : 'c',
    major: major(st.rdev),
    minor: minor(st.rdev),
    fileMode: Number(st.mode & 0o7777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
  };
}

/** Every character and block device under the host's /dev (what `--privileged` exposes, as docker does). */
export async function listHostDevices(dir = '/dev'): Promise<LinuxDevice[]> {
  const out: LinuxDevice[] = [];
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'EACCES') return out;
    throw err;
  }
  for (const e of entries) {
    const path = join(dir, e.name);
    if (skipped.has(path)) continue;
    if (e.isDirectory()) out.push(...(await listHostDevices(path)));
    else if (e.isCharacterDevice() || e.isBlockDevice()) out.push(await hostDevice(path));
  }
  return out;
}
