import { createReadStream, createWriteStream } from 'node:fs';
import { link, mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createHash } from 'node:crypto';
import { MediaType, type Descriptor, type Digest } from '@berth/oci';
import { OverlaySnapshotter, UnpackMode, probeOverlay, unpackLayer } from '@berth/snapshot';
import { LocalContentStore } from '@berth/store';
import { makeBusyboxRootfs } from '../../rootfs.js';
import { pseudoRandom } from '../../test-images.js';
import { measure, sh, type BenchReport } from '../measure.js';

// Unpack throughput: the three gzip layers of a ~120 MB image made here from busybox and
// generated files (a distribution-like mix: thousands of small compressible text files and
// some incompressible binaries per layer), unpacked by GNU tar and by Berth into fresh
// directories. The same .tar.gz files feed every subject.
const layers = 3;
const textFilesPerLayer = 6000;
const binariesPerLayer = 48;
const binaryBytes = 512 << 10;

/** Deterministic word soup: compresses about as well as documentation and source do. */
function text(seed: number, size: number): Buffer {
  const words = ['the', 'layer', 'container', 'image', 'overlay', 'digest', 'config', 'runtime', 'snapshot', 'registry', 'manifest', 'volume', 'network', 'mount', 'process'];
  let x = seed * 2654435761 + 1;
  const out: string[] = [];
  let length = 0;
  while (length < size) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const w = words[Math.abs(x) % words.length]! + (Math.abs(x >> 8) % 97).toString(36);
    out.push(w);
    length += w.length + 1;
  }
  return Buffer.from(out.join(' ').slice(0, size));
}

interface Dataset {
  readonly dir: string;
  readonly files: readonly string[];
  readonly diffIds: readonly Digest[];
  readonly compressedBytes: number;
  readonly uncompressedBytes: number;
  readonly entries: number;
}

async function sha256File(path: string): Promise<Digest> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

async function makeDataset(): Promise<Dataset> {
  const dir = join(tmpdir(), 'berth-bench-unpack');
  const files = Array.from({ length: layers }, (_, i) => join(dir, `layer${i}.tar.gz`));
  const done = join(dir, '.complete');
  if (!(await stat(done).catch(() => undefined))) {
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    for (let l = 0; l < layers; l++) {
      const tree = join(dir, `tree${l}`);
      await mkdir(tree, { recursive: true });
      if (l === 0) await makeBusyboxRootfs(tree);
      for (let i = 0; i < textFilesPerLayer; i++) {
        const sub = join(tree, 'usr', 'share', `pkg${l}-${i % 120}`);
        await mkdir(sub, { recursive: true });
        await writeFile(join(sub, `doc${i}.txt`), text(l * 100_000 + i, 2000 + ((i * 7919) % 14000)));
      }
      await mkdir(join(tree, 'usr', 'lib', `l${l}`), { recursive: true });
      for (let i = 0; i < binariesPerLayer; i++) {
        await pipeline(pseudoRandom(`unpack-${l}-${i}`, binaryBytes), createWriteStream(join(tree, 'usr', 'lib', `l${l}`, `lib${i}.so`)));
      }
      await sh('tar', ['--sort=name', '--numeric-owner', '-C', tree, '-czf', files[l]!, '.']);
      await rm(tree, { recursive: true, force: true });
    }
    await writeFile(done, '');
  }
  const diffIds: Digest[] = [];
  let compressedBytes = 0;
  for (const f of files) {
    compressedBytes += (await stat(f)).size;
    const tar = `${f.slice(0, -'.gz'.length)}`;
    await rm(tar, { force: true });
    await sh('sh', ['-c', `gzip -dc "${f}" > "${tar}"`]);
    diffIds.push(await sha256File(tar));
    await rm(tar, { force: true });
  }
  let uncompressedBytes = 0;
  let entries = 0;
  for (const f of files) {
    const listing = await sh('tar', ['-tvzf', f]);
    for (const line of listing.trim().split('\n')) {
      entries++;
      uncompressedBytes += Number(line.split(/\s+/)[2]) || 0;
    }
  }
  return { dir, files, diffIds, compressedBytes, uncompressedBytes, entries };
}

export async function run(options: { readonly runs: number }): Promise<BenchReport[]> {
  const data = await makeDataset();
  const work = join(tmpdir(), `berth-bench-unpack-out-${process.pid}`);
  let n = 0;
  const fresh = async () => {
    const d = join(work, String(n++));
    await mkdir(d, { recursive: true });
    return d;
  };

  // The Berth snapshotter reads the same files as blobs of a content store.
  const content = new LocalContentStore({ root: join(work, 'content') });
  const layerDescs: Descriptor[] = [];
  for (const f of data.files) {
    const digest = await sha256File(f);
    await mkdir(join(work, 'content', 'blobs', 'sha256'), { recursive: true });
    await link(f, content.blobPath(digest)).catch(() => undefined);
    layerDescs.push({ mediaType: MediaType.OciLayerGzip, digest, size: (await stat(f)).size });
  }
  const overlay = await probeOverlay(tmpdir());

  const timings = await measure(
    [
      {
        name: 'GNU tar -xzf',
        run: async () => {
          const out = await fresh();
          for (let l = 0; l < data.files.length; l++) {
            await mkdir(join(out, String(l)));
            await sh('tar', ['-C', join(out, String(l)), '-xzf', data.files[l]!]);
          }
        },
      },
      {
        name: 'Berth unpackLayer',
        run: async () => {
          const out = await fresh();
          const lowers: string[] = [];
          for (let l = 0; l < data.files.length; l++) {
            const target = join(out, String(l));
            await mkdir(target);
            await unpackLayer({
              source: createReadStream(data.files[l]!, { highWaterMark: 1 << 20 }) as Readable,
              target,
              mode: UnpackMode.Overlay,
              compression: 'gzip',
              diffId: data.diffIds[l]!,
              lowerDirs: [...lowers],
            });
            lowers.unshift(target);
          }
        },
      },
      {
        name: 'Berth snapshotter.unpack (overlay)',
        ...(overlay.supported ? {} : { skip: `overlay unavailable: ${overlay.reason}` }),
        run: async () => {
          const snapshots = new OverlaySnapshotter({ root: await fresh() });
          await snapshots.unpack({ content, layers: layerDescs, diffIds: data.diffIds });
        },
      },
    ],
    options.runs,
    1,
  );
  const leftover = (await readdir(work)).length;
  await rm(work, { recursive: true, force: true });
  const mb = (b: number) => `${(b / 1e6).toFixed(0)} MB`;
  return [
    {
      title: 'Layer unpack: 3 gzip layers, busybox + generated files',
      baseline: 'GNU tar -xzf',
      rows: timings,
      notes: [
        `Image: ${mb(data.compressedBytes)} of gzip layers, ${mb(data.uncompressedBytes)} of files in ${data.entries} entries; ${leftover - 1} output trees written (fresh directory per run, removed afterwards).`,
        'Berth unpackLayer verifies each diff ID (sha256 of the uncompressed stream) and resolves every path inside the root; the snapshotter row adds its bookkeeping (temp dir, info.json, lowerdir links, rename).',
      ],
    },
  ];
}
