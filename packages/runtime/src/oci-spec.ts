/**
 * The OCI runtime-spec config.json (runtime-spec 1.x), as far as Linux containers use it. Field
 * names follow the spec exactly, so a value of this type is what goes into config.json.
 */
export interface RuntimeSpec {
  ociVersion: string;
  root: { path: string; readonly?: boolean };
  process?: ProcessSpec;
  hostname?: string;
  domainname?: string;
  mounts?: MountSpec[];
  hooks?: Partial<Record<'prestart' | 'createRuntime' | 'poststart' | 'poststop', HookSpec[]>>;
  annotations?: Record<string, string>;
  linux?: LinuxSpec;
}

/** The process of a container, or of an exec into it. */
export interface ProcessSpec {
  terminal?: boolean;
  consoleSize?: { height: number; width: number };
  user: { uid: number; gid: number; umask?: number; additionalGids?: number[] };
  args: string[];
  env?: string[];
  cwd: string;
  capabilities?: CapabilitySets;
  rlimits?: { type: string; hard: number; soft: number }[];
  noNewPrivileges?: boolean;
  apparmorProfile?: string;
  oomScoreAdj?: number;
}

/** The five capability sets, by names such as `CAP_CHOWN`. */
export interface CapabilitySets {
  bounding?: string[];
  effective?: string[];
  inheritable?: string[];
  permitted?: string[];
  ambient?: string[];
}

export interface MountSpec {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
}

export interface HookSpec {
  path: string;
  args?: string[];
  env?: string[];
  timeout?: number;
}

export type NamespaceType = 'pid' | 'network' | 'mount' | 'ipc' | 'uts' | 'user' | 'cgroup';

export interface IdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

export interface DeviceRule {
  allow: boolean;
  type?: 'a' | 'c' | 'b';
  major?: number;
  minor?: number;
  access?: string;
}

export interface LinuxDevice {
  path: string;
  type: 'c' | 'b' | 'u' | 'p';
  major: number;
  minor: number;
  fileMode?: number;
  uid?: number;
  gid?: number;
}

export interface LinuxResources {
  devices?: DeviceRule[];
  memory?: { limit?: number; reservation?: number; swap?: number; swappiness?: number; disableOOMKiller?: boolean };
  cpu?: { shares?: number; quota?: number; period?: number; idle?: number; cpus?: string; mems?: string };
  pids?: { limit: number };
  blockIO?: { weight?: number };
  unified?: Record<string, string>;
}

export interface SeccompSpec {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  flags?: string[];
  syscalls?: SeccompRule[];
}

export interface SeccompRule {
  names: string[];
  action: string;
  errnoRet?: number;
  args?: { index: number; value: number; valueTwo?: number; op: string }[];
}

export interface LinuxSpec {
  namespaces?: { type: NamespaceType; path?: string }[];
  uidMappings?: IdMapping[];
  gidMappings?: IdMapping[];
  devices?: LinuxDevice[];
  cgroupsPath?: string;
  resources?: LinuxResources;
  sysctl?: Record<string, string>;
  seccomp?: SeccompSpec;
  rootfsPropagation?: string;
  maskedPaths?: string[];
  readonlyPaths?: string[];
}
