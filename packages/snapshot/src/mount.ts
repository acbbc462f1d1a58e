import { execFile } from 'node:child_process';
import { basename, dirname } from 'node:path';
import { promisify } from 'node:util';
import { ErrorKind } from '@berth/errors';
import { SnapshotError, SnapshotErrorCode } from './errors.js';

const run = promisify(execFile);

/** A file system to mount at a container's root, as the OCI runtime spec describes mounts. */
export interface Mount {
  /** `overlay` or `bind`. */
  readonly type: string;
  readonly source: string;
  readonly options: readonly string[];
}

// The kernel copies mount data into one page; longer option strings are cut off.
export const maxMountDataLength = 4095;

/**
 * The `-o` string of a mount and the directory to mount from. When the absolute lowerdirs
 * make the options longer than a page, and they all sit in one directory (the snapshotter's
 * `l/`), they are given relative to it and the mount runs there, as docker's overlay2 does.
 */
export function mountData(mount: Mount): { readonly data: string; readonly cwd?: string } {
  const data = mount.options.join(',');
  if (Buffer.byteLength(data) <= maxMountDataLength) return { data };
  const lowerOption = mount.options.find((o) => o.startsWith('lowerdir='));
  const lowers = lowerOption?.slice('lowerdir='.length).split(':') ?? [];
  const dirs = new Set(lowers.map((l) => dirname(l)));
  const cwd = [...dirs][0];
  if (lowerOption && dirs.size === 1 && cwd) {
    const relative = mount.options.map((o) => (o === lowerOption ? `lowerdir=${lowers.map((l) => basename(l)).join(':')}` : o)).join(',');
    if (Buffer.byteLength(relative) <= maxMountDataLength) return { data: relative, cwd };
  }
  throw new SnapshotError(`overlay options of ${Buffer.byteLength(data)} bytes exceed the kernel's ${maxMountDataLength}: too many layers (${lowers.length}) for one mount`, {
    code: SnapshotErrorCode.TooManyLayers,
    kind: ErrorKind.FailedPrecondition,
  });
}

async function mountCommand(args: string[], signal?: AbortSignal, cwd?: string): Promise<void> {
  try {
    await run('mount', args, { ...(signal ? { signal } : {}), ...(cwd ? { cwd } : {}) });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim();
    throw new SnapshotError(`mount ${args.join(' ')} failed${stderr ? `: ${stderr}` : ''}`, { code: SnapshotErrorCode.Mount, kind: ErrorKind.Internal, cause: err });
  }
}

/**
 * Mounts `mounts` (as `Snapshotter.mounts` returns them) at `target` with mount(8): how the
 * engine mounts a container's root before handing it to the runtime, as containerd's shim and
 * docker do, and how it makes views for export. Absolute paths in `mounts` keep them usable
 * elsewhere; here an overlay of more layers than one page of options can name is mounted
 * from the link directory with relative lowerdirs.
 */
export async function mountAll(mounts: readonly Mount[], target: string, signal?: AbortSignal): Promise<void> {
  for (const m of mounts) {
    if (m.type === 'bind') {
      const readonly = m.options.includes('ro');
      await mountCommand(['--bind', m.source, target], signal);
      if (readonly) await mountCommand(['-o', 'remount,bind,ro', target], signal);
    } else {
      const { data, cwd } = mountData(m);
      await mountCommand(['-t', m.type, m.source, '-o', data, target], signal, cwd);
    }
  }
}

/** Unmounts `target`; lazily when it is busy, so a failing caller cannot leak it. */
export async function unmount(target: string): Promise<void> {
  try {
    await run('umount', [target]);
  } catch {
    try {
      await run('umount', ['-l', target]);
    } catch (err) {
      throw new SnapshotError(`umount ${target} failed`, { code: SnapshotErrorCode.Mount, kind: ErrorKind.Internal, cause: err });
    }
  }
}
