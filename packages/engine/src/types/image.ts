import type { ContainerConfig } from './container.js';
import type { AuthConfig, Labels } from './common.js';

/** One entry of `GET /images/json` (`ImageSummary`). */
export interface ImageSummary {
  /** The image ID, `sha256:<config digest>`. */
  readonly Id: string;
  readonly ParentId: string;
  /** Familiar references (`busybox:latest`); empty for a dangling image. */
  readonly RepoTags: readonly string[];
  /** `name@sha256:<manifest digest>`. */
  readonly RepoDigests: readonly string[];
  /** Unix seconds. */
  readonly Created: number;
  /** Bytes of the unpacked layers. */
  readonly Size: number;
  /** -1 unless asked for. */
  readonly SharedSize: number;
  readonly Labels: Labels;
  /** How many containers use the image; -1 unless asked for. */
  readonly Containers: number;
}

/** `GET /images/{name}/json` (`ImageInspect`). */
export interface ImageInspect {
  readonly Id: string;
  readonly RepoTags: readonly string[];
  readonly RepoDigests: readonly string[];
  readonly Parent: string;
  readonly Comment: string;
  /** RFC 3339, or absent when the image config has none. */
  readonly Created?: string;
  readonly DockerVersion?: string;
  readonly Author: string;
  readonly Config: ContainerConfig;
  readonly Architecture: string;
  readonly Variant?: string;
  readonly Os: string;
  readonly OsVersion?: string;
  readonly Size: number;
  readonly GraphDriver: { readonly Name: string; readonly Data: Labels | null };
  readonly RootFS: { readonly Type: 'layers'; readonly Layers: readonly string[] };
  readonly Metadata: { readonly LastTagTime?: string };
}

/** One step of `GET /images/{name}/history` (`HistoryResponseItem`); the newest first. */
export interface HistoryResponseItem {
  /** The image ID for steps that are an image, `<missing>` otherwise. */
  readonly Id: string;
  /** Unix seconds. */
  readonly Created: number;
  readonly CreatedBy: string;
  readonly Tags: readonly string[] | null;
  readonly Size: number;
  readonly Comment: string;
}

/** One line of `DELETE /images/{name}` (`ImageDeleteResponseItem`). */
export interface ImageDeleteResponseItem {
  readonly Untagged?: string;
  readonly Deleted?: string;
}

/** `{ImagesDeleted, SpaceReclaimed}`. */
export interface ImagePruneResponse {
  readonly ImagesDeleted: readonly ImageDeleteResponseItem[] | null;
  readonly SpaceReclaimed: number;
}

/** `{CachesDeleted, SpaceReclaimed}` of `POST /build/prune`. */
export interface BuildCachePruneResponse {
  readonly CachesDeleted: readonly string[] | null;
  readonly SpaceReclaimed: number;
}

/** One entry of `BuildCache` in `GET /system/df`. */
export interface BuildCacheRecord {
  readonly ID: string;
  readonly Type: string;
  readonly Description: string;
  readonly InUse: boolean;
  readonly Shared: boolean;
  readonly Size: number;
  readonly CreatedAt: string;
  readonly LastUsedAt: string | null;
  readonly UsageCount: number;
}

/**
 * What `POST /build` carries in its query and headers (docker's ImageBuildOptions), for a build
 * from a context tar (plain, gzip, bzip2 or xz).
 */
export interface BuildOptions {
  /** `-t`, each a reference to tag the result with. */
  readonly tags?: readonly string[];
  /** Path of the Dockerfile inside the context (default `Dockerfile`). */
  readonly dockerfile?: string;
  /** `--build-arg`; a null value means "take it from the builder's environment", which the API leaves unset. */
  readonly buildArgs?: Readonly<Record<string, string | null>>;
  readonly target?: string;
  readonly labels?: Labels;
  readonly noCache?: boolean;
  /** Always pull the base images. */
  readonly pull?: boolean;
  /** Only the image ID in the stream, no step output. */
  readonly quiet?: boolean;
  /** `os/arch[/variant]`. */
  readonly platform?: string;
  /** Remove intermediate containers after a successful build (default true). */
  readonly remove?: boolean;
  /** Remove intermediate containers also after a failure. */
  readonly forceRemove?: boolean;
  readonly cacheFrom?: readonly string[];
  readonly networkMode?: string;
  readonly extraHosts?: readonly string[];
  readonly shmSize?: number;
  readonly memory?: number;
  readonly memorySwap?: number;
  readonly cpuShares?: number;
  readonly cpuSetCpus?: string;
  readonly cpuPeriod?: number;
  readonly cpuQuota?: number;
  /** Credentials for the registries of base images, by registry (`X-Registry-Config`). */
  readonly authConfigs?: Readonly<Record<string, AuthConfig>>;
}
