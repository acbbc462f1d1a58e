export { Runtime, collectOutput, initBinary, readExecExit, readExitRecord } from './runtime.js';
export type { ContainerExit, ContainerState, ContainerStatus, CreateOptions, ExecExit, ExecOptions, ExecProcess, RunningProcess, RuntimeName, RuntimeOptions } from './runtime.js';
export { RuntimeError, RuntimeErrorCode } from './errors.js';
export { jsonFileLogRotation, readJsonFileLog } from './json-file-log.js';
export type { JsonFileLogRecord, LogRotation, ReadJsonFileLogOptions } from './json-file-log.js';
export { RuntimeAnnotation, buildSpec, mergeEnv } from './spec-builder.js';
export type { ImageRunConfig, NamespaceMode, RootfsMount, RunMount, RunOptions } from './spec-builder.js';
export { allCapabilities, availableCapabilities, defaultCapabilities, normalizeCapability, resolveCapabilities } from './capabilities.js';
export { defaultSeccompProfile } from './seccomp-profile.js';
export { resolveUser } from './user.js';
export { hostDevice, listHostDevices } from './host-devices.js';
export type { ResolvedUser } from './user.js';
export { AttachFrame, attachSocket } from './attach.js';
export type { AttachSession } from './attach.js';
export { cgroupPathsOfProcess, readCgroupStats } from './stats.js';
export { realtimeOffsetNanos } from './wall-clock.js';
export type { CgroupLayout, CgroupPaths, ContainerStats } from './stats.js';
export type {
  CapabilitySets,
  DeviceRule,
  HookSpec,
  IdMapping,
  LinuxDevice,
  LinuxResources,
  LinuxSpec,
  MountSpec,
  NamespaceType,
  ProcessSpec,
  RuntimeSpec,
  SeccompRule,
  SeccompSpec,
} from './oci-spec.js';
