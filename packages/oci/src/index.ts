export { OciError, OciErrorCode } from './errors.js';
export {
  Annotation,
  MediaType,
  isIndexMediaType,
  isManifestMediaType,
  isNondistributable,
  isSchema1MediaType,
  layerCompression,
  manifestAcceptTypes,
} from './media-types.js';
export type { LayerCompression } from './media-types.js';
export { DigestStream, chainIds, digestOf, isDigest, parseDigest, shortId } from './digest.js';
export type { Digest, DigestAlgorithm, ExpectedContent } from './digest.js';
export { sha256Hex } from './sha256.js';
export {
  defaultTag,
  dockerHubDomain,
  familiarName,
  familiarReference,
  formatReference,
  parseReference,
  repositoryName,
  withDigest,
  withTag,
} from './reference.js';
export type { ImageReference } from './reference.js';
export { formatPlatform, hostPlatform, normalizePlatform, parsePlatform, platformRank, selectByPlatform } from './platform.js';
export type { Platform } from './platform.js';
export { parseImageConfig, parseManifest } from './image.js';
export type { ContainerConfig, Descriptor, HealthConfig, HistoryEntry, ImageConfig, ImageIndex, ImageManifest, ParsedManifest } from './image.js';
