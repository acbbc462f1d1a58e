import type { ContainerConfig as ImageRunConfig, HealthConfig } from '@berth/oci';
import type { Labels } from './common.js';
import type { EndpointSettings } from './network.js';

export type { HealthConfig };

/** A set as docker writes it: each key maps to `{}` (`ExposedPorts`, `Volumes`). */
export type KeySet = Readonly<Record<string, Readonly<Record<string, never>>>>;

/**
 * A container's configuration (`ContainerConfig`): the image's run defaults plus what belongs
 * to one container. `Image` is the reference the user gave.
 */
export interface ContainerConfig extends Omit<ImageRunConfig, 'ExposedPorts' | 'Volumes' | 'Env' | 'Labels'> {
  readonly Hostname?: string;
  readonly Domainname?: string;
  readonly AttachStdin?: boolean;
  readonly AttachStdout?: boolean;
  readonly AttachStderr?: boolean;
  readonly ExposedPorts?: KeySet | null;
  /** `KEY=value`; docker's CLI sends null for none. */
  readonly Env?: readonly string[] | null;
  readonly Labels?: Labels | null;
  readonly Tty?: boolean;
  readonly OpenStdin?: boolean;
  readonly StdinOnce?: boolean;
  readonly Image?: string;
  readonly Volumes?: KeySet | null;
  readonly NetworkDisabled?: boolean;
  /** Deprecated since API 1.44 (moved to the endpoint), still sent by old clients. */
  readonly MacAddress?: string;
  /** Seconds to wait after the stop signal before SIGKILL. */
  readonly StopTimeout?: number | null;
}

/** `{HostIp, HostPort}`: where a container port is published on the host. */
export interface PortBinding {
  readonly HostIp?: string;
  readonly HostPort?: string;
}

/** `"80/tcp"` → its bindings (`null` for an exposed but unpublished port in inspect). */
export type PortMap = Readonly<Record<string, readonly PortBinding[] | null>>;

/** `no`, `always`, `unless-stopped`, `on-failure` (with `MaximumRetryCount`); `""` means `no`. */
export interface RestartPolicy {
  readonly Name?: '' | 'no' | 'always' | 'unless-stopped' | 'on-failure';
  readonly MaximumRetryCount?: number;
}

/** A `--mount` (`Mount` in HostConfig.Mounts). */
export interface Mount {
  readonly Target?: string;
  readonly Source?: string;
  readonly Type?: 'bind' | 'volume' | 'tmpfs' | 'image' | 'npipe' | 'cluster';
  readonly ReadOnly?: boolean;
  readonly Consistency?: string;
  readonly BindOptions?: {
    readonly Propagation?: 'private' | 'rprivate' | 'shared' | 'rshared' | 'slave' | 'rslave';
    readonly NonRecursive?: boolean;
    readonly CreateMountpoint?: boolean;
    readonly ReadOnlyNonRecursive?: boolean;
    readonly ReadOnlyForceRecursive?: boolean;
  };
  readonly VolumeOptions?: {
    readonly NoCopy?: boolean;
    readonly Labels?: Labels;
    readonly DriverConfig?: { readonly Name?: string; readonly Options?: Labels };
    readonly Subpath?: string;
  };
  readonly TmpfsOptions?: {
    readonly SizeBytes?: number;
    readonly Mode?: number;
    readonly Options?: readonly (readonly string[])[];
  };
}

/** One `--ulimit`. */
export interface Ulimit {
  readonly Name: string;
  readonly Soft: number;
  readonly Hard: number;
}

/** A per-device blkio weight (`--blkio-weight-device`). */
export interface WeightDevice {
  readonly Path: string;
  readonly Weight: number;
}

/** A per-device rate limit (`--device-read-bps` and friends). */
export interface ThrottleDevice {
  readonly Path: string;
  readonly Rate: number;
}

/** A device mapped into the container. */
export interface DeviceMapping {
  readonly PathOnHost: string;
  readonly PathInContainer: string;
  readonly CgroupPermissions?: string;
}

/** The resource limits of a container (`Resources`), shared by create and update. */
export interface Resources {
  readonly CpuShares?: number;
  /** Bytes; 0 is unlimited. */
  readonly Memory?: number;
  readonly CgroupParent?: string;
  readonly BlkioWeight?: number;
  readonly BlkioWeightDevice?: readonly WeightDevice[] | null;
  readonly BlkioDeviceReadBps?: readonly ThrottleDevice[] | null;
  readonly BlkioDeviceWriteBps?: readonly ThrottleDevice[] | null;
  readonly BlkioDeviceReadIOps?: readonly ThrottleDevice[] | null;
  readonly BlkioDeviceWriteIOps?: readonly ThrottleDevice[] | null;
  readonly CpuPeriod?: number;
  readonly CpuQuota?: number;
  readonly CpuRealtimePeriod?: number;
  readonly CpuRealtimeRuntime?: number;
  readonly CpusetCpus?: string;
  readonly CpusetMems?: string;
  readonly Devices?: readonly DeviceMapping[] | null;
  readonly DeviceCgroupRules?: readonly string[] | null;
  /** GPU requests (`--gpus`); Berth has no device drivers and accepts only none. */
  readonly DeviceRequests?: readonly Readonly<Record<string, unknown>>[] | null;
  readonly MemoryReservation?: number;
  /** Memory plus swap in bytes; -1 is unlimited swap. */
  readonly MemorySwap?: number;
  readonly MemorySwappiness?: number | null;
  /** CPU quota in units of 1e-9 CPUs (`--cpus 1.5` is 1500000000). */
  readonly NanoCpus?: number;
  readonly OomKillDisable?: boolean | null;
  /** Run an init (tini-like) as pid 1 (`--init`). */
  readonly Init?: boolean | null;
  /** 0 or -1 is unlimited; null keeps the current value on update. */
  readonly PidsLimit?: number | null;
  readonly Ulimits?: readonly Ulimit[] | null;
  /** Windows-only in docker; always 0 on Linux. */
  readonly CpuCount?: number;
  readonly CpuPercent?: number;
  readonly IOMaximumIOps?: number;
  readonly IOMaximumBandwidth?: number;
}

/** `--log-driver` and `--log-opt`. Berth knows `json-file` and `none`. */
export interface LogConfig {
  readonly Type?: string;
  readonly Config?: Labels;
}

/** The host side of a container (`HostConfig`). */
export interface HostConfig extends Resources {
  /** `-v` in docker's text form: `/host:/ctr[:ro]`, `volume:/ctr[:ro]`. */
  readonly Binds?: readonly string[] | null;
  readonly ContainerIDFile?: string;
  readonly LogConfig?: LogConfig;
  /** `default`, `bridge`, `host`, `none`, `container:<id>` or a network's name. */
  readonly NetworkMode?: string;
  readonly PortBindings?: PortMap | null;
  readonly RestartPolicy?: RestartPolicy;
  readonly AutoRemove?: boolean;
  readonly VolumeDriver?: string;
  readonly VolumesFrom?: readonly string[] | null;
  readonly Mounts?: readonly Mount[] | null;
  readonly ConsoleSize?: readonly [number, number] | null;
  readonly Annotations?: Labels | null;
  readonly CapAdd?: readonly string[] | null;
  readonly CapDrop?: readonly string[] | null;
  readonly CgroupnsMode?: '' | 'private' | 'host';
  readonly Dns?: readonly string[] | null;
  readonly DnsOptions?: readonly string[] | null;
  readonly DnsSearch?: readonly string[] | null;
  readonly ExtraHosts?: readonly string[] | null;
  readonly GroupAdd?: readonly string[] | null;
  readonly IpcMode?: string;
  readonly Cgroup?: string;
  readonly Links?: readonly string[] | null;
  readonly OomScoreAdj?: number;
  readonly PidMode?: string;
  readonly Privileged?: boolean;
  /** `-P`: publish every exposed port on a free host port. */
  readonly PublishAllPorts?: boolean;
  readonly ReadonlyRootfs?: boolean;
  readonly SecurityOpt?: readonly string[] | null;
  readonly StorageOpt?: Labels | null;
  /** `--tmpfs`: mount point → options (`size=64m,mode=1777`). */
  readonly Tmpfs?: Labels | null;
  readonly UTSMode?: string;
  readonly UsernsMode?: string;
  readonly ShmSize?: number;
  readonly Sysctls?: Labels | null;
  readonly Runtime?: string;
  readonly Isolation?: string;
  readonly MaskedPaths?: readonly string[] | null;
  readonly ReadonlyPaths?: readonly string[] | null;
}

/** `NetworkingConfig`: the endpoint of each network to connect at create. */
export interface NetworkingConfig {
  readonly EndpointsConfig?: Readonly<Record<string, EndpointSettings>> | null;
}

/** The body of `POST /containers/create`. */
export interface ContainerCreateRequest extends ContainerConfig {
  readonly HostConfig?: HostConfig;
  readonly NetworkingConfig?: NetworkingConfig;
}

/** `{Id, Warnings}`, the answer of create. */
export interface ContainerCreateResponse {
  readonly Id: string;
  readonly Warnings: readonly string[];
}

/** A published or exposed port in a container list (`Port`). */
export interface Port {
  readonly IP?: string;
  readonly PrivatePort: number;
  readonly PublicPort?: number;
  readonly Type: 'tcp' | 'udp' | 'sctp';
}

/** A mount as inspect and list report it (`MountPoint`). */
export interface MountPoint {
  readonly Type: 'bind' | 'volume' | 'tmpfs' | 'image' | 'npipe' | 'cluster';
  /** The volume's name (volumes only). */
  readonly Name?: string;
  readonly Source: string;
  readonly Destination: string;
  readonly Driver?: string;
  readonly Mode: string;
  readonly RW: boolean;
  readonly Propagation: string;
}

/** A container's state names, as docker prints them. */
export const ContainerStatus = {
  Created: 'created',
  Running: 'running',
  Paused: 'paused',
  Restarting: 'restarting',
  Removing: 'removing',
  Exited: 'exited',
  Dead: 'dead',
} as const;
export type ContainerStatus = (typeof ContainerStatus)[keyof typeof ContainerStatus];

/** The health status names. */
export const HealthStatus = {
  None: 'none',
  Starting: 'starting',
  Healthy: 'healthy',
  Unhealthy: 'unhealthy',
} as const;
export type HealthStatus = (typeof HealthStatus)[keyof typeof HealthStatus];

/** One run of a health check (`HealthcheckResult`); times are RFC 3339. */
export interface HealthcheckResult {
  readonly Start: string;
  readonly End: string;
  readonly ExitCode: number;
  readonly Output: string;
}

/** A container's health (`Health`): status, consecutive failures, the last few results. */
export interface Health {
  readonly Status: HealthStatus;
  readonly FailingStreak: number;
  readonly Log: readonly HealthcheckResult[];
}

/** `ContainerState` of inspect. Times are RFC 3339 with nanoseconds; `0001-01-01T00:00:00Z` when unset. */
export interface ContainerState {
  readonly Status: ContainerStatus;
  readonly Running: boolean;
  readonly Paused: boolean;
  readonly Restarting: boolean;
  readonly OOMKilled: boolean;
  readonly Dead: boolean;
  readonly Pid: number;
  readonly ExitCode: number;
  readonly Error: string;
  readonly StartedAt: string;
  readonly FinishedAt: string;
  readonly Health?: Health;
}

/** `NetworkSettings` of inspect: the legacy top-level fields mirror the default bridge endpoint. */
export interface NetworkSettings {
  readonly Bridge: string;
  readonly SandboxID: string;
  readonly SandboxKey: string;
  readonly Ports: PortMap;
  readonly HairpinMode?: boolean;
  readonly LinkLocalIPv6Address?: string;
  readonly LinkLocalIPv6PrefixLen?: number;
  readonly SecondaryIPAddresses?: readonly { readonly Addr: string; readonly PrefixLen: number }[] | null;
  readonly SecondaryIPv6Addresses?: readonly { readonly Addr: string; readonly PrefixLen: number }[] | null;
  readonly EndpointID: string;
  readonly Gateway: string;
  readonly GlobalIPv6Address: string;
  readonly GlobalIPv6PrefixLen: number;
  readonly IPAddress: string;
  readonly IPPrefixLen: number;
  readonly IPv6Gateway: string;
  readonly MacAddress: string;
  readonly Networks: Readonly<Record<string, EndpointSettings>>;
}

/** `GET /containers/{id}/json`. */
export interface ContainerInspectResponse {
  readonly Id: string;
  /** RFC 3339 with nanoseconds. */
  readonly Created: string;
  readonly Path: string;
  readonly Args: readonly string[];
  readonly State: ContainerState;
  /** The image ID (`sha256:...`). */
  readonly Image: string;
  readonly ResolvConfPath: string;
  readonly HostnamePath: string;
  readonly HostsPath: string;
  readonly LogPath: string;
  /** With docker's leading slash: `/name`. */
  readonly Name: string;
  readonly RestartCount: number;
  readonly Driver: string;
  readonly Platform: string;
  readonly MountLabel: string;
  readonly ProcessLabel: string;
  readonly AppArmorProfile: string;
  readonly ExecIDs: readonly string[] | null;
  readonly HostConfig: HostConfig;
  readonly GraphDriver: { readonly Name: string; readonly Data: Labels | null };
  readonly SizeRw?: number;
  readonly SizeRootFs?: number;
  readonly Mounts: readonly MountPoint[];
  readonly Config: ContainerConfig;
  readonly NetworkSettings: NetworkSettings;
}

/** One entry of `GET /containers/json` (`ContainerSummary`). */
export interface ContainerSummary {
  readonly Id: string;
  /** With docker's leading slash. */
  readonly Names: readonly string[];
  /** The reference the container was created from (or the image ID when that tag is gone). */
  readonly Image: string;
  readonly ImageID: string;
  readonly Command: string;
  /** Unix seconds. */
  readonly Created: number;
  readonly Ports: readonly Port[];
  readonly SizeRw?: number;
  readonly SizeRootFs?: number;
  readonly Labels: Labels;
  readonly State: ContainerStatus;
  /** `Up 5 minutes (healthy)`, `Exited (0) 2 minutes ago`, `Created`. */
  readonly Status: string;
  readonly HostConfig: { readonly NetworkMode: string; readonly Annotations?: Labels };
  readonly NetworkSettings: { readonly Networks: Readonly<Record<string, EndpointSettings>> };
  readonly Mounts: readonly MountPoint[];
}

/** `not-running` (default), `next-exit` or `removed`. */
export type WaitCondition = 'not-running' | 'next-exit' | 'removed';

/** `{StatusCode, Error}`, the answer of wait. */
export interface ContainerWaitResponse {
  readonly StatusCode: number;
  readonly Error?: { readonly Message: string } | null;
}

/** `GET /containers/{id}/top`: ps columns and rows. */
export interface ContainerTopResponse {
  readonly Titles: readonly string[];
  readonly Processes: readonly (readonly string[])[];
}

/** The body of `POST /containers/{id}/update`. */
export interface ContainerUpdateRequest extends Resources {
  readonly RestartPolicy?: RestartPolicy;
}

/** `{Warnings}`, the answer of update. */
export interface ContainerUpdateResponse {
  readonly Warnings: readonly string[];
}

/** One changed path (`FilesystemChange`): Kind 0 modified, 1 added, 2 deleted. */
export interface FilesystemChange {
  readonly Path: string;
  readonly Kind: 0 | 1 | 2;
}

/** The stat of a path in a container, as `X-Docker-Container-Path-Stat` carries it (base64 JSON). */
export interface ContainerPathStat {
  readonly name: string;
  readonly size: number;
  /** Go's os.FileMode bits: permission bits plus type bits (dir 1<<31, symlink 1<<27, ...). */
  readonly mode: number;
  /** RFC 3339. */
  readonly mtime: string;
  readonly linkTarget: string;
}

/** `{ContainersDeleted, SpaceReclaimed}`. */
export interface ContainerPruneResponse {
  readonly ContainersDeleted: readonly string[] | null;
  readonly SpaceReclaimed: number;
}

/** CPU counters of a stats sample (nanoseconds). */
export interface CpuStats {
  readonly cpu_usage: {
    readonly total_usage: number;
    readonly percpu_usage?: readonly number[];
    readonly usage_in_kernelmode: number;
    readonly usage_in_usermode: number;
  };
  readonly system_cpu_usage?: number;
  readonly online_cpus?: number;
  readonly throttling_data?: { readonly periods: number; readonly throttled_periods: number; readonly throttled_time: number };
}

/** Network counters of one interface in a stats sample. */
export interface NetworkStats {
  readonly rx_bytes: number;
  readonly rx_packets: number;
  readonly rx_errors: number;
  readonly rx_dropped: number;
  readonly tx_bytes: number;
  readonly tx_packets: number;
  readonly tx_errors: number;
  readonly tx_dropped: number;
}

/** One blkio counter of a stats sample. */
export interface BlkioStatEntry {
  readonly major: number;
  readonly minor: number;
  readonly op: string;
  readonly value: number;
}

/** One sample of `GET /containers/{id}/stats` (`ContainerStatsResponse`). */
export interface ContainerStatsResponse {
  readonly name: string;
  readonly id: string;
  /** RFC 3339 times of this and the previous sample. */
  readonly read: string;
  readonly preread: string;
  readonly pids_stats: { readonly current?: number; readonly limit?: number };
  readonly blkio_stats: {
    readonly io_service_bytes_recursive: readonly BlkioStatEntry[] | null;
    readonly io_serviced_recursive?: readonly BlkioStatEntry[] | null;
  };
  readonly num_procs: number;
  readonly cpu_stats: CpuStats;
  readonly precpu_stats: CpuStats;
  readonly memory_stats: {
    readonly usage?: number;
    readonly max_usage?: number;
    readonly stats?: Readonly<Record<string, number>>;
    readonly failcnt?: number;
    readonly limit?: number;
  };
  readonly networks?: Readonly<Record<string, NetworkStats>>;
}
