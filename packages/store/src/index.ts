export type { ContentStore, ExpectedBlob, Ingest } from './content-store.js';
export { StoreError, StoreErrorCode } from './errors.js';
export { LocalContentStore } from './local-content-store.js';
export type { IngestCleanup, LocalContentStoreOptions, WriteBlobOptions } from './local-content-store.js';
export { LeaseManager } from './lease.js';
export { GcRoots } from './gc-roots.js';
export type { GcRoot, GcRootsOptions } from './gc-roots.js';
export type { Lease, LeaseManagerOptions, LeaseResources, LeasedResources } from './lease.js';
export { BerthAnnotation } from './image-index.js';
export { ImageStore } from './image-store.js';
export type {
  AddImageOptions,
  ImageDeleteRecord,
  ImageDetails,
  ImageFilters,
  ImageHistoryItem,
  ImageRecord,
  ImageStoreOptions,
  ImageSummary,
  ImageUser,
  ListImagesOptions,
  PruneImagesOptions,
  PruneImagesResult,
  RemoveImageOptions,
} from './image-store.js';
export type { GcOptions, GcResult, SnapshotCollection, SnapshotCollector } from './garbage-collection.js';
export { TarEntryType } from './tar-entry.js';
export type { TarEntry } from './tar-entry.js';
export { TarReader } from './tar-reader.js';
export type { TarEntryHandler, TarEntrySink, TarReaderOptions } from './tar-reader.js';
export { encodeTarHeader, packTar } from './tar-writer.js';
export type { TarInput } from './tar-writer.js';
export { createDecompressor, detectCompression, peekHead } from './compression.js';
export { applyImageChanges, changeInstructions } from './config-changes.js';
export { importImage } from './import-image.js';
export type { ImportImageOptions } from './import-image.js';
export { ArchiveFormat, saveImages } from './save-images.js';
export type { SaveImagesOptions } from './save-images.js';
export { loadImages } from './load-images.js';
export type { LoadImagesOptions, LoadedImage } from './load-images.js';
export { RecordStore } from './record-store.js';
export type { RecordStoreOptions } from './record-store.js';
