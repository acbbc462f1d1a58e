import type { Labels } from './common.js';
import type { ContainerSummary } from './container.js';
import type { BuildCacheRecord, ImageSummary } from './image.js';
import type { Volume } from './volume.js';

/** What `GET /_ping` reports in its headers. */
export interface PingResponse {
  /** The highest API version the server speaks (`Api-Version`). */
  readonly apiVersion: string;
  readonly osType: string;
  /** `1` (classic builder) or `2` (BuildKit). */
  readonly builderVersion: string;
  readonly experimental: boolean;
}

/** One component of `GET /version`. */
export interface ComponentVersion {
  readonly Name: string;
  readonly Version: string;
  readonly Details?: Readonly<Record<string, string>>;
}

/** `GET /version` (`SystemVersion`). */
export interface SystemVersion {
  readonly Platform: { readonly Name: string };
  readonly Components: readonly ComponentVersion[];
  readonly Version: string;
  readonly ApiVersion: string;
  readonly MinAPIVersion: string;
  readonly GitCommit: string;
  /** Berth reports its Node.js version here (`node v22...`). */
  readonly GoVersion: string;
  readonly Os: string;
  readonly Arch: string;
  readonly KernelVersion: string;
  readonly Experimental?: boolean;
  /** RFC 3339. */
  readonly BuildTime: string;
}

/** A runtime `/info` lists (`Runtime`). */
export interface RuntimeInfo {
  readonly path: string;
  readonly runtimeArgs?: readonly string[];
}

/** `RegistryConfig` in `/info`. */
export interface RegistryServiceConfig {
  readonly InsecureRegistryCIDRs: readonly string[];
  readonly IndexConfigs: Readonly<
    Record<string, { readonly Name: string; readonly Mirrors: readonly string[]; readonly Secure: boolean; readonly Official: boolean }>
  >;
  readonly Mirrors: readonly string[];
}

/** `GET /info` (`SystemInfo`), the fields docker and its clients read. */
export interface SystemInfo {
  readonly ID: string;
  readonly Containers: number;
  readonly ContainersRunning: number;
  readonly ContainersPaused: number;
  readonly ContainersStopped: number;
  readonly Images: number;
  /** The snapshotter: `overlayfs` or `vfs` (copying). */
  readonly Driver: string;
  readonly DriverStatus: readonly (readonly [string, string])[];
  readonly Plugins: {
    readonly Volume: readonly string[];
    readonly Network: readonly string[];
    readonly Authorization: readonly string[] | null;
    readonly Log: readonly string[];
  };
  readonly MemoryLimit: boolean;
  readonly SwapLimit: boolean;
  readonly CpuCfsPeriod: boolean;
  readonly CpuCfsQuota: boolean;
  readonly CPUShares: boolean;
  readonly CPUSet: boolean;
  readonly PidsLimit: boolean;
  readonly OomKillDisable: boolean;
  readonly IPv4Forwarding: boolean;
  readonly Debug: boolean;
  readonly NFd: number;
  readonly NGoroutines: number;
  /** RFC 3339 with nanoseconds. */
  readonly SystemTime: string;
  readonly LoggingDriver: string;
  /** `cgroupfs` or `systemd`. */
  readonly CgroupDriver: string;
  /** `1` or `2`. */
  readonly CgroupVersion: string;
  readonly NEventsListener: number;
  readonly KernelVersion: string;
  readonly OperatingSystem: string;
  readonly OSVersion: string;
  readonly OSType: string;
  readonly Architecture: string;
  readonly IndexServerAddress: string;
  readonly RegistryConfig: RegistryServiceConfig;
  readonly NCPU: number;
  readonly MemTotal: number;
  readonly DockerRootDir: string;
  readonly HttpProxy: string;
  readonly HttpsProxy: string;
  readonly NoProxy: string;
  readonly Name: string;
  /** `key=value`, from `engine serve --label`. */
  readonly Labels: readonly string[];
  readonly ExperimentalBuild: boolean;
  readonly ServerVersion: string;
  readonly Runtimes: Readonly<Record<string, RuntimeInfo>>;
  readonly DefaultRuntime: string;
  readonly Swarm: { readonly LocalNodeState: 'inactive'; readonly NodeID: string; readonly NodeAddr: string; readonly ControlAvailable: boolean; readonly Error: string; readonly RemoteManagers: null };
  readonly LiveRestoreEnabled: boolean;
  readonly Isolation: string;
  readonly InitBinary: string;
  readonly SecurityOptions: readonly string[];
  readonly Warnings: readonly string[] | null;
}

/** `GET /system/df` (`SystemDataUsageResponse`). */
export interface SystemDataUsage {
  readonly LayersSize: number;
  readonly Images: readonly ImageSummary[];
  readonly Containers: readonly ContainerSummary[];
  readonly Volumes: readonly Volume[];
  readonly BuildCache: readonly BuildCacheRecord[];
}

/** The object types events are about. */
export type EventType = 'container' | 'image' | 'volume' | 'network' | 'daemon' | 'plugin' | 'builder';

/** One event of `GET /events` (`EventMessage`). */
export interface EventMessage {
  readonly Type: EventType;
  /** `create`, `start`, `die`, `pull`, `tag`, `exec_start: sh -c ...`, `health_status: healthy`, ... */
  readonly Action: string;
  readonly Actor: { readonly ID: string; readonly Attributes: Labels };
  readonly scope: 'local' | 'swarm';
  /** Unix seconds and nanoseconds. */
  readonly time: number;
  readonly timeNano: number;
}

/** The answer of `POST /auth`. */
export interface AuthResponse {
  readonly Status: string;
  readonly IdentityToken?: string;
}
