import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { UnpackMode, unpackLayer } from '@berth/snapshot';
import type { BuildSession } from './build-image.js';
import type { ImageState } from './image-state.js';

/**
 * docker build's `--output`: the result's file system as a directory or a tar, written to a
 * file or to a stream (which is left open for the caller, as stdout must be).
 */
export type BuildOutput = { readonly type: 'local'; readonly dest: string } | { readonly type: 'tar'; readonly dest: string | Writable };

/** Writes the whole file system of `state` where `output` says. */
export async function exportImageState(state: ImageState, output: BuildOutput, options: { readonly session: BuildSession; readonly signal: AbortSignal }): Promise<void> {
  const { session, signal } = options;
  let tar: Readable;
  if (state.chainId) {
    await session.ensureSnapshot(state);
    tar = await session.options.snapshotter.export(state.chainId, { signal });
  } else {
    // Nothing but metadata: an empty file system is an empty archive.
    tar = Readable.from([Buffer.alloc(1024)]);
  }
  if (output.type === 'local') {
    await mkdir(output.dest, { recursive: true });
    await unpackLayer({ source: tar, target: output.dest, mode: UnpackMode.Copy, compression: 'none', signal });
    return;
  }
  if (typeof output.dest === 'string') await pipeline(tar, createWriteStream(output.dest), { signal });
  else await pipeline(tar, output.dest, { signal, end: false });
}
