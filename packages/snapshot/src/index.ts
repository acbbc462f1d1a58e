export { SnapshotError, SnapshotErrorCode } from './errors.js';
export { FsOps, FsOpsError, defaultFsOpsPath } from './fs-ops.js';
export type { NodeSpec } from './fs-ops.js';
export { RootResolver, cleanLayerPath } from './root-resolver.js';
export { UnpackMode, unpackLayer } from './unpack-layer.js';
export type { UnpackLayerOptions, UnpackResult } from './unpack-layer.js';
export { maxMountDataLength, mountAll, mountData, unmount } from './mount.js';
export type { Mount } from './mount.js';
export { SnapshotKind } from './snapshotter.js';
export type {
  DiffOptions,
  DiffResult,
  LayerDiff,
  SnapshotInfo,
  Snapshotter,
  UnpackImageOptions,
  UnpackImageResult,
  UnpackProgress,
} from './snapshotter.js';
export { DirectorySnapshotter, snapshotName } from './directory-snapshotter.js';
export type { SnapshotRecord, SnapshotterOptions } from './directory-snapshotter.js';
export { OverlaySnapshotter } from './overlay-snapshotter.js';
export type { OverlaySnapshotterOptions } from './overlay-snapshotter.js';
export { CopySnapshotter } from './copy-snapshotter.js';
export { SnapshotDriver, createSnapshotter, probeOverlay } from './create-snapshotter.js';
export type { CreateSnapshotterOptions, OverlayProbe } from './create-snapshotter.js';
export { exportDirectory } from './export-directory.js';
export type { ExportDirectoryOptions } from './export-directory.js';
