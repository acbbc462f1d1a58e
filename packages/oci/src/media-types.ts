/** The media types Berth reads and writes: OCI's and their Docker schema2 equivalents. */
export const MediaType = {
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  OciConfig: 'application/vnd.oci.image.config.v1+json',
  OciLayer: 'application/vnd.oci.image.layer.v1.tar',
  OciLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OciLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  OciLayerNondistributable: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  OciLayerNondistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  OciLayerNondistributableZstd: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  OciEmpty: 'application/vnd.oci.empty.v1+json',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerConfig: 'application/vnd.docker.container.image.v1+json',
  DockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  DockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DockerLayerForeignGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  DockerManifestSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  DockerManifestSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;
export type MediaType = (typeof MediaType)[keyof typeof MediaType];

/** Well-known annotation keys. */
export const Annotation = {
  /** The tag of a manifest in an OCI layout's index.json (`latest`, or a full reference). */
  RefName: 'org.opencontainers.image.ref.name',
  /** The full image name docker and containerd put beside RefName. */
  ContainerdImageName: 'io.containerd.image.name',
  Created: 'org.opencontainers.image.created',
} as const;

/** The `Accept` list for fetching a manifest by tag: single-platform and multi-platform, OCI and Docker. */
export const manifestAcceptTypes: readonly string[] = [
  MediaType.OciIndex,
  MediaType.DockerManifestList,
  MediaType.OciManifest,
  MediaType.DockerManifest,
];

export function isIndexMediaType(mediaType: string): boolean {
  return mediaType === MediaType.OciIndex || mediaType === MediaType.DockerManifestList;
}

export function isManifestMediaType(mediaType: string): boolean {
  return mediaType === MediaType.OciManifest || mediaType === MediaType.DockerManifest;
}

export function isSchema1MediaType(mediaType: string): boolean {
  return mediaType === MediaType.DockerManifestSchema1 || mediaType === MediaType.DockerManifestSchema1Signed;
}

/** How a layer blob is compressed. */
export type LayerCompression = 'none' | 'gzip' | 'zstd';

const layerTypes: Record<string, LayerCompression> = {
  [MediaType.OciLayer]: 'none',
  [MediaType.OciLayerGzip]: 'gzip',
  [MediaType.OciLayerZstd]: 'zstd',
  [MediaType.OciLayerNondistributable]: 'none',
  [MediaType.OciLayerNondistributableGzip]: 'gzip',
  [MediaType.OciLayerNondistributableZstd]: 'zstd',
  [MediaType.DockerLayer]: 'none',
  [MediaType.DockerLayerGzip]: 'gzip',
  [MediaType.DockerLayerForeignGzip]: 'gzip',
};

/** The compression of a layer media type, or undefined when it is not a layer type Berth knows. */
export function layerCompression(mediaType: string): LayerCompression | undefined {
  return layerTypes[mediaType];
}

/** True for the layer types that say "do not push this blob" (Windows base layers). */
export function isNondistributable(mediaType: string): boolean {
  return mediaType.includes('nondistributable') || mediaType === MediaType.DockerLayerForeignGzip;
}
