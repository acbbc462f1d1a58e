import { isDigest, type Digest } from './digest.js';
import { OciError, OciErrorCode } from './errors.js';
import { isIndexMediaType, isManifestMediaType, isSchema1MediaType, MediaType } from './media-types.js';
import type { Platform } from './platform.js';

/** A pointer to content: its media type, digest and size. */
export interface Descriptor {
  readonly mediaType: string;
  readonly digest: Digest;
  readonly size: number;
  readonly urls?: readonly string[];
  readonly annotations?: Readonly<Record<string, string>>;
  readonly platform?: Platform;
  readonly artifactType?: string;
  readonly data?: string;
}

/** A single-platform image manifest (OCI or Docker schema2). */
export interface ImageManifest {
  readonly schemaVersion: 2;
  readonly mediaType?: string;
  readonly artifactType?: string;
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
  readonly subject?: Descriptor;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** A multi-platform index (OCI image index or Docker manifest list); also the shape of index.json. */
export interface ImageIndex {
  readonly schemaVersion: 2;
  readonly mediaType?: string;
  readonly artifactType?: string;
  readonly manifests: readonly Descriptor[];
  readonly subject?: Descriptor;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** Docker's health check settings; durations in nanoseconds, `Test` as `["CMD", ...]`, `["CMD-SHELL", cmd]` or `["NONE"]`. */
export interface HealthConfig {
  readonly Test?: readonly string[];
  readonly Interval?: number;
  readonly Timeout?: number;
  readonly StartPeriod?: number;
  readonly StartInterval?: number;
  readonly Retries?: number;
}

/** The run defaults of an image (the `config` member of the image config), in Docker's casing. */
export interface ContainerConfig {
  readonly User?: string;
  readonly ExposedPorts?: Readonly<Record<string, object>>;
  readonly Env?: readonly string[];
  readonly Entrypoint?: readonly string[] | null;
  readonly Cmd?: readonly string[] | null;
  readonly Volumes?: Readonly<Record<string, object>>;
  readonly WorkingDir?: string;
  readonly Labels?: Readonly<Record<string, string>>;
  readonly StopSignal?: string;
  readonly ArgsEscaped?: boolean;
  readonly Healthcheck?: HealthConfig;
  readonly OnBuild?: readonly string[] | null;
  readonly Shell?: readonly string[];
}

/** One step of an image's history. */
export interface HistoryEntry {
  readonly created?: string;
  readonly created_by?: string;
  readonly author?: string;
  readonly comment?: string;
  readonly empty_layer?: boolean;
}

/** The image configuration blob. Its digest is the image ID. */
export interface ImageConfig {
  readonly created?: string;
  readonly author?: string;
  readonly architecture: string;
  readonly os: string;
  readonly variant?: string;
  readonly 'os.version'?: string;
  readonly 'os.features'?: readonly string[];
  readonly config?: ContainerConfig;
  readonly rootfs: { readonly type: 'layers'; readonly diff_ids: readonly Digest[] };
  readonly history?: readonly HistoryEntry[];
  // Docker-only fields, kept so that what docker wrote round-trips.
  readonly container?: string;
  readonly container_config?: ContainerConfig;
  readonly docker_version?: string;
  readonly comment?: string;
}

/** What a manifest-shaped blob turned out to be. */
export type ParsedManifest =
  | { readonly kind: 'manifest'; readonly mediaType: string; readonly manifest: ImageManifest }
  | { readonly kind: 'index'; readonly mediaType: string; readonly index: ImageIndex };

function bad(what: string, why: string): OciError {
  return new OciError(`invalid ${what}: ${why}`, { code: OciErrorCode.InvalidManifest, kind: 'InvalidArgument' });
}

function parseJsonObject(data: string | Uint8Array, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(typeof data === 'string' ? data : Buffer.from(data).toString('utf8'));
  } catch (err) {
    throw new OciError(`invalid ${what}: not JSON`, { code: OciErrorCode.InvalidManifest, kind: 'InvalidArgument', cause: err });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(what, 'not a JSON object');
  return value as Record<string, unknown>;
}

function checkDescriptor(value: unknown, where: string): Descriptor {
  if (typeof value !== 'object' || value === null) throw bad('descriptor', `${where} is not an object`);
  const d = value as Record<string, unknown>;
  if (typeof d.mediaType !== 'string' || d.mediaType === '') throw bad('descriptor', `${where}.mediaType missing`);
  if (typeof d.digest !== 'string' || !isDigest(d.digest)) throw bad('descriptor', `${where}.digest ${JSON.stringify(d.digest)} is not a digest`);
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) throw bad('descriptor', `${where}.size must be a non-negative integer`);
  return value as Descriptor;
}

/**
 * Parses manifest-shaped bytes, telling a manifest from an index by the `mediaType` the
 * server sent (or the field inside). Refuses Docker schema 1, which registries stopped serving.
 */
export function parseManifest(data: string | Uint8Array, contentType?: string): ParsedManifest {
  const json = parseJsonObject(data, 'manifest');
  const declared = typeof json.mediaType === 'string' ? json.mediaType : undefined;
  const type = declared ?? (contentType && contentType !== 'application/json' ? contentType.split(';')[0]!.trim() : undefined);
  if (json.schemaVersion === 1 || (type && isSchema1MediaType(type))) {
    throw new OciError('Docker schema 1 manifests are not supported; push the image again with a current client', {
      code: OciErrorCode.UnsupportedMediaType,
      kind: 'InvalidArgument',
    });
  }
  if (json.schemaVersion !== 2) throw bad('manifest', `schemaVersion ${JSON.stringify(json.schemaVersion)}, want 2`);
  const isIndex = type ? isIndexMediaType(type) : Array.isArray(json.manifests);
  if (isIndex) {
    if (!Array.isArray(json.manifests)) throw bad('index', 'manifests must be an array');
    json.manifests.forEach((m, i) => checkDescriptor(m, `manifests[${i}]`));
    return { kind: 'index', mediaType: type ?? MediaType.OciIndex, index: json as unknown as ImageIndex };
  }
  if (type && !isManifestMediaType(type)) {
    throw new OciError(`unsupported manifest media type ${type}`, { code: OciErrorCode.UnsupportedMediaType, kind: 'InvalidArgument' });
  }
  checkDescriptor(json.config, 'config');
  if (!Array.isArray(json.layers)) throw bad('manifest', 'layers must be an array');
  json.layers.forEach((l, i) => checkDescriptor(l, `layers[${i}]`));
  return { kind: 'manifest', mediaType: type ?? MediaType.OciManifest, manifest: json as unknown as ImageManifest };
}

/** Parses an image config blob, checking the fields every image needs. */
export function parseImageConfig(data: string | Uint8Array): ImageConfig {
  const json = parseJsonObject(data, 'image config');
  if (typeof json.architecture !== 'string' || json.architecture === '') throw bad('image config', 'architecture missing');
  if (typeof json.os !== 'string' || json.os === '') throw bad('image config', 'os missing');
  const rootfs = json.rootfs as Record<string, unknown> | undefined;
  if (!rootfs || rootfs.type !== 'layers' || !Array.isArray(rootfs.diff_ids)) throw bad('image config', 'rootfs must be {type: "layers", diff_ids: [...]}');
  rootfs.diff_ids.forEach((d, i) => {
    if (typeof d !== 'string' || !isDigest(d)) throw bad('image config', `rootfs.diff_ids[${i}] is not a digest`);
  });
  return json as unknown as ImageConfig;
}
