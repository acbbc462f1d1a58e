export { readJsonFile, syncDirectory, tempPathFor, writeFileAtomic, writeJsonAtomic } from './atomic.js';
export type { AtomicWriteOptions } from './atomic.js';
export { acquireFileLock, tryAcquireFileLock, withFileLock } from './lock.js';
export type { FileLock, LockOptions } from './lock.js';
export { randomBelow, randomBytes, randomHex } from './random.js';
export { removeFile, removeTree } from './remove-tree.js';
export type { RemoveTreeOptions } from './remove-tree.js';
