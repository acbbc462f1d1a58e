import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { removeTree } from '@berth/fsutil';
import type { TarInput } from '@berth/store';
import { DirectorySnapshotter, type SnapshotRecord, type SnapshotterOptions } from './directory-snapshotter.js';
import type { Mount } from './mount.js';
import { SnapshotKind } from './snapshotter.js';
import { overlayEntries, type WalkContext } from './tree-entries.js';
import { UnpackMode } from './unpack-layer.js';

/** Options of an OverlaySnapshotter. */
export interface OverlaySnapshotterOptions extends SnapshotterOptions {
  /**
   * Extra overlay mount options. `createSnapshotter` passes `index=off,redirect_dir=off,metacopy=off`
   * where the kernel takes them: an upper directory then holds whole files and plain
   * whiteouts, which is what `diff` reads back as a layer.
   */
  readonly mountOptions?: readonly string[];
}

/**
 * Each layer unpacked once into its own directory, with whiteouts as overlayfs whiteouts;
 * a container's root is an overlay mount of the layers (through short `l/` links, so 100+
 * layers fit the kernel's one-page option limit) under its own upper directory.
 */
export class OverlaySnapshotter extends DirectorySnapshotter {
  readonly driver = 'overlay';
  protected readonly unpackMode = UnpackMode.Overlay;
  readonly #options: readonly string[];

  constructor(options: OverlaySnapshotterOptions) {
    super(options);
    this.#options = options.mountOptions ?? [];
  }

  protected async populate(fs: string): Promise<void> {
    mkdirSync(fs, { mode: 0o755 });
  }

  protected async prepareDirs(dir: string): Promise<void> {
    mkdirSync(join(dir, 'work'), { mode: 0o700 });
  }

  protected lowerDirs(chain: readonly SnapshotRecord[]): string[] {
    return chain.map((r) => this.fsOf(r));
  }

  #overlay(lowers: readonly SnapshotRecord[], upper?: SnapshotRecord): Mount {
    const options = [`lowerdir=${lowers.map((r) => this.linkPath(r)).join(':')}`];
    if (upper) options.push(`upperdir=${this.fsOf(upper)}`, `workdir=${join(this.dirOf(upper.name), 'work')}`);
    return { type: 'overlay', source: 'overlay', options: [...options, ...this.#options] };
  }

  protected mountsOf(record: SnapshotRecord, parents: readonly SnapshotRecord[]): Mount[] {
    if (record.kind === SnapshotKind.Active) {
      if (parents.length === 0) return [{ type: 'bind', source: this.fsOf(record), options: ['rbind', 'rw'] }];
      return [this.#overlay(parents, record)];
    }
    return this.viewOf(record, parents);
  }

  protected viewOf(record: SnapshotRecord, parents: readonly SnapshotRecord[]): Mount[] {
    if (parents.length === 0) return [{ type: 'bind', source: this.fsOf(record), options: ['rbind', 'ro'] }];
    // An active snapshot's upper directory serves as a lower one: overlay reads its whiteouts
    // the same way, and the view does not touch the work directory a running container uses.
    return [this.#overlay([record, ...parents])];
  }

  protected changes(record: SnapshotRecord, _parents: readonly SnapshotRecord[], ctx: WalkContext): AsyncIterable<TarInput> {
    return overlayEntries(this.fsOf(record), ctx);
  }

  protected async beforeCommit(dir: string): Promise<void> {
    await removeTree(join(dir, 'work'));
  }
}
