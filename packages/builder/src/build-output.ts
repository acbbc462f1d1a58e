import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { UnpackMode, unpackLayer } from '@berth/snapshot';
import type { BuildSession } from './build-image.js';
import type { ImageState } from './image-state.js';

/** docker build's `--output`: the result's file system as a directory or a tar (a file path or a stream). */
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
  const sink = typeof output.dest === 'string' ? createWriteStream(output.dest) : output.dest;
  await pipeline(tar, sink, { signal });
}
