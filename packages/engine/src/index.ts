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
export { EngineApiHandler, listenEngineApi } from './api/engine-api-server.js';
export type { EngineApiHandlerOptions, EngineApiServer, EngineApiServerOptions, EngineApiTls } from './api/engine-api-server.js';
export { maxApiVersion, minApiVersion, compareApiVersions } from './api/api-version.js';
export { httpStatusOf, kindOfHttpStatus } from './api/error-status.js';
export { StdType, StdcopyDemuxer, encodeFrame, frameChunk } from './api/stdcopy.js';
export { formatFilters, parseFilters } from './api/filters.js';
export { decodeRegistryAuth, encodeAuthHeader } from './api/registry-auth.js';
export { RemoteEngine } from './remote/remote-engine.js';
export type { RemoteEngineOptions } from './remote/remote-engine.js';
export type { RemoteTls } from './remote/api-transport.js';
export { LocalEngine, runDetachedSupervisor, type LocalEngineOptions, type LocalNetworkOptions } from './local/local-engine.js';
