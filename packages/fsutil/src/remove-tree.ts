import { readdirSync, rmdirSync, unlinkSync, type Dirent } from 'node:fs';
import { errnoCode } from '@berth/errors';

/** Options of `removeTree`. */
export interface RemoveTreeOptions {
  /** Entries removed between two yields to the event loop (default 256). */
  readonly batch?: number;
}

/**
 * Removes a file or a directory tree, as `rm -rf` does (a missing path is fine). The calls are
 * synchronous, in batches with a yield to the event loop between them: fs.rm makes one
 * thread-pool round trip per call, and the tree of a container or snapshot that wrote little is
 * gone in a fraction of the time, while a large tree still lets a server answer others.
 */
export async function removeTree(path: string, options: RemoveTreeOptions = {}): Promise<void> {
  const batch = Math.max(1, options.batch ?? 256);
  let left = batch;
  const removed = async (): Promise<void> => {
    if (--left > 0) return;
    left = batch;
    await new Promise<void>((resolve) => setImmediate(resolve));
  };
  const remove = async (dir: string): Promise<void> => {
    let entries: Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch (err) {
      if (errnoCode(err) === 'ENOTDIR') return ignoreMissing(() => unlinkSync(dir));
      if (errnoCode(err) === 'ENOENT') return;
      throw err;
    }
    for (const entry of entries) {
      const child = `${dir}/${entry.name}`;
      if (entry.isDirectory()) await remove(child);
      else ignoreMissing(() => unlinkSync(child));
      await removed();
    }
    ignoreMissing(() => rmdirSync(dir));
  };
  await remove(path);
}

/**
 * Removes a file, as `rm -f` does (a missing one is fine). fs.rmSync does the same but loads its
 * recursive machinery at the first call (a quarter of a millisecond of a short command).
 */
export function removeFile(path: string): void {
  ignoreMissing(() => unlinkSync(path));
}

function ignoreMissing(remove: () => void): void {
  try {
    remove();
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
}
