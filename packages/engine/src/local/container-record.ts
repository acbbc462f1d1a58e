import type { ContainerConfig, ContainerStatus, Health, HostConfig, PortMap } from '../types/container.js';
import type { EndpointSettings } from '../types/network.js';

/** A mount of a container as recorded at create: what `Mounts` in inspect shows, plus what start needs. */
export interface MountRecord {
  readonly type: 'bind' | 'volume' | 'tmpfs';
  /** The volume's name (volumes only). */
  readonly name?: string;
  /** The host path: the bind source, or the volume's `_data`; empty for tmpfs. */
  readonly source: string;
  readonly destination: string;
  /** docker's `Mode`: the options of `-v` (`ro`, `z`, ...) or empty. */
  readonly mode: string;
  readonly rw: boolean;
  /** `rprivate` for binds, empty otherwise (as docker reports). */
  readonly propagation: string;
  /** An anonymous volume made for this container (removed by `rm -v`). */
  readonly anonymous?: boolean;
  /** Do not fill an empty volume from the image (`volume-nocopy`). */
  readonly noCopy?: boolean;
  /** A sub-directory of the volume to mount instead of its root. */
  readonly subpath?: string;
  /** tmpfs mount options (`size=65536k`, `mode=1777`, ...). */
  readonly tmpfsOptions?: readonly string[];
  /** A bind without its submounts (`bind-nonrecursive`). */
  readonly nonRecursive?: boolean;
  /** Create a missing bind source as a directory (as `-v` does, unlike `--mount`). */
  readonly createSource?: boolean;
  /** `--tmpfs` mounts are not listed in inspect's Mounts; `--mount type=tmpfs` ones are. */
  readonly hidden?: boolean;
}

/** The state of a container as its record keeps it; the runtime's view is folded in when read. */
export interface ContainerStateRecord {
  readonly status: ContainerStatus;
  readonly pid: number;
  readonly exitCode: number;
  readonly error: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly oomKilled: boolean;
  /** Stopped or killed by a user: restart policies other than `no` do not restart it (docker's HasBeenManuallyStopped). */
  readonly manuallyStopped: boolean;
  /** The container has run at least once. */
  readonly hasBeenStarted: boolean;
  readonly health?: Health;
  /** Monotonic count of starts, so that a waiter for the next exit can tell runs apart. */
  readonly runCount: number;
  /** The runtime's monitor of the current run and its start time (/proc stat field 22), to tell it alive without asking the runtime. */
  readonly monitorPid: number;
  readonly monitorStartTime: string;
}

/** Where a container is attached, as requested and (while it runs) as set up. */
export interface NetworkingRecord {
  /** `bridge`, `host`, `none`, `container:<id>` or a user network's name (HostConfig.NetworkMode, `default` resolved). */
  readonly mode: string;
  /** Per network name: the endpoint as requested at create/connect, with the live values while running. */
  readonly networks: Readonly<Record<string, EndpointSettings>>;
  /** Published ports while running (docker's NetworkSettings.Ports). */
  readonly ports: PortMap;
  /** The network namespace while running (docker's SandboxKey). */
  readonly sandboxKey: string;
}

/**
 * A container as the local engine keeps it on disk: `config.v2.json` holds everything but the
 * host config, which is in `hostconfig.json` (docker's split, so `update` rewrites one small
 * file). Records are replaced atomically and changed only under the container's lock.
 */
export interface ContainerRecord {
  readonly id: string;
  /** Without docker's leading slash. */
  readonly name: string;
  /** RFC 3339 with nanoseconds. */
  readonly created: string;
  readonly path: string;
  readonly args: readonly string[];
  /** The container's config: the image's defaults merged with the create body (what inspect shows). */
  readonly config: ContainerConfig;
  readonly hostConfig: HostConfig;
  /** The image ID (`sha256:...`). */
  readonly image: string;
  readonly platform: string;
  /** The snapshot of the container's read-write layer. */
  readonly snapshotKey: string;
  /** The storage driver name docker would show (`overlay2`, or `vfs` for the copying snapshotter). */
  readonly driver: string;
  readonly mounts: readonly MountRecord[];
  readonly networking: NetworkingRecord;
  readonly state: ContainerStateRecord;
  readonly restartCount: number;
  /** When the runtime's monitor writes the json-file log; empty for `--log-driver none`. */
  readonly logPath: string;
}

/** The record fields `config.v2.json` holds (all but the host config). */
export type ContainerConfigFile = Omit<ContainerRecord, 'hostConfig'> & { readonly version: 1 };
