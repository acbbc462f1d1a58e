import { mkdirSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorKind } from '@berth/errors';
import { randomHex, readJsonFile, writeJsonAtomic } from '@berth/fsutil';
import { CopySnapshotter } from './copy-snapshotter.js';
import type { SnapshotterOptions } from './directory-snapshotter.js';
import { SnapshotError, SnapshotErrorCode } from './errors.js';
import { mountAll, unmount } from './mount.js';
import { OverlaySnapshotter } from './overlay-snapshotter.js';
import type { Snapshotter } from './snapshotter.js';

/** The overlay options Berth wants: an upper directory of whole files and plain whiteouts. */
const preferredOverlayOptions = ['index=off', 'redirect_dir=off', 'metacopy=off'];

/** Whether overlay mounts work on a file system, and with which options. */
export interface OverlayProbe {
  readonly supported: boolean;
  readonly options: readonly string[];
  /** Why not, when not. */
  readonly reason?: string;
}

/**
 * Tries an overlay mount (with a whiteout and an opaque directory in its upper layer) in a
 * scratch directory under `dir`, first with Berth's preferred options, then without.
 */
export async function probeOverlay(dir: string): Promise<OverlayProbe> {
  const scratch = join(dir, `overlay-probe-${randomHex(4)}`);
  const [lower, upper, work, merged] = ['lower', 'upper', 'work', 'merged'].map((d) => join(scratch, d)) as [string, string, string, string];
  let reason = '';
  try {
    for (const d of [lower, upper, work, merged]) await mkdir(d, { recursive: true });
    for (const extra of [preferredOverlayOptions, []]) {
      try {
        await mountAll([{ type: 'overlay', source: 'overlay', options: [`lowerdir=${lower}`, `upperdir=${upper}`, `workdir=${work}`, ...extra] }], merged);
        await unmount(merged);
        return { supported: true, options: extra };
      } catch (err) {
        reason = err instanceof Error ? err.message : String(err);
      }
    }
    return { supported: false, options: [], reason };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

export const SnapshotDriver = { Auto: 'auto', Overlay: 'overlay', Copy: 'copy' } as const;
export type SnapshotDriver = (typeof SnapshotDriver)[keyof typeof SnapshotDriver];

export interface CreateSnapshotterOptions extends SnapshotterOptions {
  /** Default `auto`: overlay where it works, else copy. A root keeps the driver it was made with. */
  readonly driver?: SnapshotDriver;
}

interface DriverFile {
  readonly driver: 'overlay' | 'copy';
  readonly mountOptions?: readonly string[];
}

/**
 * The snapshotter for a state directory: the driver recorded in `<root>/driver.json`, or on a
 * fresh root the one asked for (`auto` probes overlay on that file system and falls back to
 * copying). Snapshots of one driver cannot be read by the other, so the choice sticks.
 */
export async function createSnapshotter(options: CreateSnapshotterOptions): Promise<Snapshotter> {
  if (typeof options?.root !== 'string' || options.root === '') {
    throw new SnapshotError('createSnapshotter needs a root directory', { code: SnapshotErrorCode.InvalidOptions, kind: ErrorKind.InvalidArgument });
  }
  const wanted = options.driver ?? SnapshotDriver.Auto;
  if (!Object.values(SnapshotDriver).includes(wanted)) {
    throw new SnapshotError(`unknown snapshot driver ${JSON.stringify(wanted)} (want auto, overlay or copy)`, { code: SnapshotErrorCode.InvalidOptions, kind: ErrorKind.InvalidArgument });
  }
  mkdirSync(options.root, { recursive: true });
  const file = join(options.root, 'driver.json');
  let chosen = await readJsonFile<DriverFile>(file);
  if (chosen && wanted !== SnapshotDriver.Auto && wanted !== chosen.driver) {
    throw new SnapshotError(`${options.root} holds ${chosen.driver} snapshots; it cannot be used with the ${wanted} driver`, {
      code: SnapshotErrorCode.InvalidOptions,
      kind: ErrorKind.FailedPrecondition,
    });
  }
  if (!chosen) {
    if (wanted === SnapshotDriver.Copy) {
      chosen = { driver: 'copy' };
    } else {
      const probe = await probeOverlay(options.root);
      if (!probe.supported && wanted === SnapshotDriver.Overlay) {
        throw new SnapshotError(`overlay mounts do not work on ${options.root}: ${probe.reason}`, { code: SnapshotErrorCode.Mount, kind: ErrorKind.Unavailable });
      }
      if (!probe.supported) options.logger?.warn('overlay unavailable, snapshots are full copies', { root: options.root, reason: probe.reason });
      chosen = probe.supported ? { driver: 'overlay', mountOptions: probe.options } : { driver: 'copy' };
    }
    await writeJsonAtomic(file, chosen);
  }
  return chosen.driver === 'overlay'
    ? new OverlaySnapshotter({ ...options, mountOptions: chosen.mountOptions ?? [] })
    : new CopySnapshotter(options);
}
