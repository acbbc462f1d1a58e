import { BerthError } from '@berth/errors';

/** Errors of the OCI helpers: invalid references, digests, manifests and platforms. */
export class OciError extends BerthError {}

export const OciErrorCode = {
  InvalidReference: 'ERR_INVALID_REFERENCE',
  InvalidDigest: 'ERR_INVALID_DIGEST',
  DigestMismatch: 'ERR_DIGEST_MISMATCH',
  InvalidManifest: 'ERR_INVALID_MANIFEST',
  UnsupportedMediaType: 'ERR_UNSUPPORTED_MEDIA_TYPE',
  InvalidPlatform: 'ERR_INVALID_PLATFORM',
  NoMatchingPlatform: 'ERR_NO_MATCHING_PLATFORM',
} as const;
