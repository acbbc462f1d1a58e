import type { Readable } from 'node:stream';
import { packTar } from '@berth/store';
import { FsOps } from './fs-ops.js';
import { closing, treeEntries } from './tree-entries.js';

export interface ExportDirectoryOptions {
  /** The berth-fsops helper (default: the one the package build made). */
  readonly fsOpsPath?: string;
  readonly signal?: AbortSignal;
}

/**
 * A directory tree as a tar stream, as `docker export` writes a container's root: every file
 * with owner, mode, mtime and xattrs, hardlinks as links, devices, fifos and symlinks as they
 * are. For a running container, pass its mounted root; `Snapshotter.export` serves stopped ones.
 */
export async function exportDirectory(dir: string, options: ExportDirectoryOptions = {}): Promise<Readable> {
  const ops = await FsOps.start(options.fsOpsPath);
  return packTar(closing(treeEntries(dir, { ops, links: new Map(), ...(options.signal ? { signal: options.signal } : {}) }), () => ops.close()));
}
