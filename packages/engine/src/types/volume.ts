import type { Labels } from './common.js';

/** A volume (`Volume`). */
export interface Volume {
  readonly Name: string;
  readonly Driver: string;
  readonly Mountpoint: string;
  /** RFC 3339. */
  readonly CreatedAt?: string;
  readonly Status?: Readonly<Record<string, string>>;
  readonly Labels: Labels | null;
  readonly Scope: 'local' | 'global';
  readonly Options: Labels | null;
  /** Filled by `GET /system/df` only: size in bytes (-1 unknown) and how many containers use it. */
  readonly UsageData?: { readonly Size: number; readonly RefCount: number } | null;
}

/** The body of `POST /volumes/create` (`VolumeCreateOptions`). An empty name asks for a generated one. */
export interface VolumeCreateRequest {
  readonly Name?: string;
  readonly Driver?: string;
  readonly DriverOpts?: Labels;
  readonly Labels?: Labels;
}

/** `GET /volumes`. */
export interface VolumeListResponse {
  readonly Volumes: readonly Volume[];
  readonly Warnings: readonly string[] | null;
}

/** `{VolumesDeleted, SpaceReclaimed}`. */
export interface VolumePruneResponse {
  readonly VolumesDeleted: readonly string[] | null;
  readonly SpaceReclaimed: number;
}
