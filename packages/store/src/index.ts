export type { ContentStore, ExpectedBlob, Ingest } from './content-store.js';
