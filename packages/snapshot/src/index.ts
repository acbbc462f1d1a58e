export { SnapshotError, SnapshotErrorCode } from './errors.js';
export { FsOps, FsOpsError, defaultFsOpsPath } from './fs-ops.js';
export type { NodeSpec } from './fs-ops.js';
export { RootResolver, cleanLayerPath } from './root-resolver.js';
export { UnpackMode, unpackLayer } from './unpack-layer.js';
export type { UnpackLayerOptions, UnpackResult } from './unpack-layer.js';
