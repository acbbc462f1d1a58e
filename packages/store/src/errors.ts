import { BerthError } from '@berth/errors';

/** Errors of the state root: blobs, image records, leases, archives and JSON records. */
export class StoreError extends BerthError {}

/** The stable codes a StoreError carries. */
export const StoreErrorCode = {
  InvalidOptions: 'ERR_INVALID_OPTIONS',
  BlobNotFound: 'ERR_BLOB_NOT_FOUND',
  /** Shared with @berth/oci's DigestStream: content that does not match its descriptor. */
  DigestMismatch: 'ERR_DIGEST_MISMATCH',
  IngestClosed: 'ERR_INGEST_CLOSED',
  ImageNotFound: 'ERR_IMAGE_NOT_FOUND',
  AmbiguousImageId: 'ERR_AMBIGUOUS_IMAGE_ID',
  /** An image that containers use, or that several repositories reference, cannot go without force. */
  ImageConflict: 'ERR_IMAGE_CONFLICT',
  InvalidTag: 'ERR_INVALID_TAG',
  InvalidImage: 'ERR_INVALID_IMAGE',
  InvalidArchive: 'ERR_INVALID_ARCHIVE',
  InvalidChange: 'ERR_INVALID_CHANGE',
  InvalidTar: 'ERR_INVALID_TAR',
  LeaseReleased: 'ERR_LEASE_RELEASED',
  InvalidRecordId: 'ERR_INVALID_RECORD_ID',
  RecordNotFound: 'ERR_RECORD_NOT_FOUND',
  RecordExists: 'ERR_RECORD_EXISTS',
  InvalidRecord: 'ERR_INVALID_RECORD',
} as const;
export type StoreErrorCode = (typeof StoreErrorCode)[keyof typeof StoreErrorCode];
