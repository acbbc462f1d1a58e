export { EngineError, EngineErrorCode, engineError } from './engine.js';
export type {
  AttachOptions,
  CommitOptions,
  ContainerSupervisor,
  ContainerWait,
  Engine,
  ImportOptions,
  ListContainersOptions,
  LogsOptions,
  PullOptions,
  PushOptions,
  RemoveContainerOptions,
} from './engine.js';
export type * from './types/common.js';
export type * from './types/container.js';
export { ContainerStatus, HealthStatus } from './types/container.js';
export type * from './types/exec.js';
export type * from './types/image.js';
export type * from './types/network.js';
export type * from './types/stream.js';
export type * from './types/system.js';
export type * from './types/volume.js';
