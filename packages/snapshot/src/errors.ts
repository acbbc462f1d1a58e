import { BerthError } from '@berth/errors';

/** Errors of layer unpacking, snapshots and diffs. */
export class SnapshotError extends BerthError {}

/** The stable codes a SnapshotError carries. */
export const SnapshotErrorCode = {
  InvalidOptions: 'ERR_INVALID_OPTIONS',
  /** A layer entry that would land outside the root: `..`, or a link leading out. */
  LayerPathEscape: 'ERR_LAYER_PATH_ESCAPE',
  /** A layer that cannot be applied: unsupported entry, hardlink to nothing, symlink loop. */
  InvalidLayer: 'ERR_INVALID_LAYER',
  /** The uncompressed layer does not hash to the diff ID its config names. */
  DiffIdMismatch: 'ERR_DIFF_ID_MISMATCH',
  SnapshotNotFound: 'ERR_SNAPSHOT_NOT_FOUND',
  SnapshotExists: 'ERR_SNAPSHOT_EXISTS',
  /** A snapshot that others are built on, or that is in the wrong state for the call. */
  SnapshotInUse: 'ERR_SNAPSHOT_IN_USE',
  /** The berth-fsops helper is missing or failed. */
  FsOps: 'ERR_FSOPS',
  Mount: 'ERR_MOUNT',
  /** More layers than one overlay mount can name. */
  TooManyLayers: 'ERR_TOO_MANY_LAYERS',
} as const;
export type SnapshotErrorCode = (typeof SnapshotErrorCode)[keyof typeof SnapshotErrorCode];
