import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { promisify } from 'node:util';
import { ErrorKind } from '@berth/errors';
import type { TarInput } from '@berth/store';
import { DirectorySnapshotter, type SnapshotRecord } from './directory-snapshotter.js';
import { SnapshotError, SnapshotErrorCode } from './errors.js';
import type { Mount } from './mount.js';
import { SnapshotKind } from './snapshotter.js';
import { treeChanges, treeEntries, type WalkContext } from './tree-entries.js';
import { UnpackMode } from './unpack-layer.js';

const run = promisify(execFile);

/**
 * The fallback where overlay mounts do not work (a file system overlay refuses as upper, a
 * user namespace without the right): every snapshot is a full copy of its parent's tree
 * (`cp -a`, reflinked where the file system can), whiteouts are applied by deleting, and
 * `diff` compares a tree with its parent's as docker's vfs driver does. Slower and larger, but
 * it runs anywhere.
 */
export class CopySnapshotter extends DirectorySnapshotter {
  readonly driver = 'copy';
  protected readonly unpackMode = UnpackMode.Copy;

  protected async populate(fs: string, chain: readonly SnapshotRecord[], signal?: AbortSignal): Promise<void> {
    const parent = chain[0];
    if (!parent) {
      await mkdir(fs, { mode: 0o755 });
      return;
    }
    try {
      await run('cp', ['-a', '--reflink=auto', this.fsOf(parent), fs], signal ? { signal } : {});
    } catch (err) {
      const stderr = (err as { stderr?: string }).stderr?.trim();
      throw new SnapshotError(`copying snapshot ${parent.key} failed${stderr ? `: ${stderr}` : ''}`, { code: SnapshotErrorCode.InvalidLayer, kind: ErrorKind.Internal, cause: err });
    }
  }

  protected async prepareDirs(): Promise<void> {}

  protected lowerDirs(): string[] {
    return [];
  }

  protected mountsOf(record: SnapshotRecord): Mount[] {
    return [{ type: 'bind', source: this.fsOf(record), options: ['rbind', record.kind === SnapshotKind.Active ? 'rw' : 'ro'] }];
  }

  protected viewOf(record: SnapshotRecord): Mount[] {
    return [{ type: 'bind', source: this.fsOf(record), options: ['rbind', 'ro'] }];
  }

  protected changes(record: SnapshotRecord, parents: readonly SnapshotRecord[], ctx: WalkContext): AsyncIterable<TarInput> {
    const parent = parents[0];
    return parent ? treeChanges(this.fsOf(parent), this.fsOf(record), ctx) : treeEntries(this.fsOf(record), ctx);
  }

  protected async beforeCommit(): Promise<void> {}
}
