import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';
import type { Descriptor, Digest } from '@berth/oci';
import { RegistryClient } from '@berth/registry';
import { createSnapshotter } from '@berth/snapshot';
import { LocalContentStore } from '@berth/store';
import { dockerdUnavailable, startDockerd, type DockerdRig } from '../../dockerd-rig.js';
import { startRegistry, type RegistryRig } from '../../registry-rig.js';
import { buildBenchImage, pushImage, type TestImage } from '../../test-images.js';
import { have, sh, type BenchReport, type Timing } from '../measure.js';

// Pull (with unpack) and push of a 3-layer image of about 120 MB through a local
// docker-registry: Berth's client beside `docker pull`/`docker push` of a private dockerd and
// `skopeo copy`. Every run starts from nothing (a fresh store, an image docker has removed, a
// registry that has never seen the blobs), and that reset is not timed, which `measure` cannot
// express: hence the loop below.

interface Subject {
  readonly name: string;
  readonly skip?: string;
  /** Brings the subject back to "nothing pulled/pushed yet"; not timed. */
  readonly reset?: () => Promise<void>;
  readonly run: () => Promise<void>;
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))]!;
}

async function timeRuns(subjects: readonly Subject[], runs: number, warmup: number): Promise<Timing[]> {
  const live = subjects.filter((s) => !s.skip);
  const samples = new Map<string, number[]>(live.map((s) => [s.name, []]));
  // Interleaved, so that drift of the machine hits every subject alike.
  for (let i = 0; i < warmup + runs; i++) {
    for (const s of live) {
      await s.reset?.();
      const start = performance.now();
      await s.run();
      if (i >= warmup) samples.get(s.name)!.push(performance.now() - start);
    }
  }
  return subjects.map((s) => {
    if (s.skip) return { name: s.name, runs: 0, skip: s.skip };
    const sorted = [...samples.get(s.name)!].sort((a, b) => a - b);
    return { name: s.name, runs: sorted.length, medianMs: quantile(sorted, 0.5), p10Ms: quantile(sorted, 0.1), p90Ms: quantile(sorted, 0.9) };
  });
}

/** A directory that each reset empties and recreates. */
function scratch(base: string, name: string): { path: () => string; reset: () => Promise<void> } {
  let n = 0;
  let current = join(base, `${name}-0`);
  return {
    path: () => current,
    reset: async () => {
      await rm(current, { recursive: true, force: true });
      current = join(base, `${name}-${++n}`);
      await mkdir(current, { recursive: true });
    },
  };
}

async function importImage(image: TestImage, content: LocalContentStore): Promise<void> {
  const m = image.manifests[0]!;
  for (const d of [m.descriptor, m.config, ...m.layers]) {
    const ingest = await content.ingest({ digest: d.digest, size: d.size });
    if (ingest.offset < d.size) await pipeline(createReadStream(image.blobPath(d.digest)), ingest.writer);
    await ingest.commit();
  }
}

/** Benchmark entry: registry pull+unpack and push, Berth vs docker vs skopeo. */
export async function run({ runs }: { runs: number }): Promise<BenchReport[]> {
  const base = await mkdtemp(join(tmpdir(), 'berth-bench-registry-'));
  const rigs: RegistryRig[] = [];
  let dockerd: DockerdRig | undefined;
  try {
    const image = await buildBenchImage({ dir: join(base, 'image') });
    const m = image.manifests[0]!;
    const total = m.layers.reduce((n, l) => n + l.size, 0);
    const source = await startRegistry();
    rigs.push(source);
    await pushImage(source, image, 'bench:1');
    const ref = `${source.host}/bench:1`;

    const skopeoSkip = (await have('skopeo')) ? undefined : 'skopeo is not installed (Debian package skopeo)';
    const dockerSkip = await dockerdUnavailable();
    if (!dockerSkip) dockerd = await startDockerd();
    const docker = async (args: readonly string[]) => {
      const res = await dockerd!.docker(args);
      if (res.code !== 0) throw new Error(`docker ${args.join(' ')}: ${res.stderr.trim()}`);
    };

    // Pull: each Berth run pulls into a fresh state root; docker's image is removed between runs.
    const berthDir = scratch(base, 'berth-pull');
    const overlapDir = scratch(base, 'berth-overlap');
    const storeOnlyDir = scratch(base, 'berth-store');
    const skopeoDir = scratch(base, 'skopeo-pull');
    const pullRows = await timeRuns(
      [
        {
          name: 'docker pull',
          ...(dockerSkip ? { skip: dockerSkip } : {}),
          reset: async () => {
            await dockerd!.docker(['rmi', '-f', ref]);
          },
          run: () => docker(['pull', '-q', ref]),
        },
        {
          name: 'berth pull, then unpack (snapshotter)',
          reset: berthDir.reset,
          run: async () => {
            const client = new RegistryClient({});
            try {
              const content = new LocalContentStore({ root: join(berthDir.path(), 'content') });
              const pulled = await client.pull(ref, { content }).result;
              const snapshotter = await createSnapshotter({ root: join(berthDir.path(), 'snapshots'), driver: 'overlay' });
              await snapshotter.unpack({ content, layers: pulled.manifest.layers, diffIds: pulled.config.rootfs.diff_ids });
            } finally {
              await client.close();
            }
          },
        },
        {
          name: 'berth pull + unpack (snapshotter, as layers land)',
          reset: overlapDir.reset,
          run: async () => {
            const client = new RegistryClient({});
            try {
              const content = new LocalContentStore({ root: join(overlapDir.path(), 'content') });
              const snapshotter = await createSnapshotter({ root: join(overlapDir.path(), 'snapshots'), driver: 'overlay' });
              const layers: Descriptor[] = [];
              const diffIds: Digest[] = [];
              await client.pull(ref, {
                content,
                // Called in layer order: each call finds the layers below unpacked and adds one.
                unpackLayer: async (layer, position, { diffId, signal }) => {
                  layers[position] = layer;
                  diffIds[position] = diffId;
                  await snapshotter.unpack({ content, layers, diffIds, signal });
                },
              }).result;
            } finally {
              await client.close();
            }
          },
        },
        {
          name: 'berth pull (content store only)',
          reset: storeOnlyDir.reset,
          run: async () => {
            const client = new RegistryClient({});
            try {
              await client.pull(ref, { content: new LocalContentStore({ root: storeOnlyDir.path() }) }).result;
            } finally {
              await client.close();
            }
          },
        },
        {
          name: 'skopeo copy → oci: (no unpack)',
          ...(skopeoSkip ? { skip: skopeoSkip } : {}),
          reset: skopeoDir.reset,
          run: async () => {
            await sh('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${join(skopeoDir.path(), 'layout')}:bench`]);
          },
        },
      ],
      runs,
      1,
    );
    for (const d of [berthDir, overlapDir, storeOnlyDir, skopeoDir]) await rm(d.path(), { recursive: true, force: true });

    // Push: every run pushes to a registry that has never seen the blobs, so nothing is skipped or mounted.
    const content = new LocalContentStore({ root: join(base, 'push-store') });
    await importImage(image, content);
    if (dockerd) await docker(['pull', '-q', ref]);
    const fresh = async (): Promise<RegistryRig> => {
      const rig = await startRegistry();
      rigs.push(rig);
      return rig;
    };
    let dockerTarget: RegistryRig | undefined;
    let berthTarget: RegistryRig | undefined;
    let skopeoTarget: RegistryRig | undefined;
    const retire = async (rig: RegistryRig | undefined) => {
      if (!rig) return;
      await rig.stop();
      rigs.splice(rigs.indexOf(rig), 1);
    };
    const pushRows = await timeRuns(
      [
        {
          name: 'docker push',
          ...(dockerSkip ? { skip: dockerSkip } : {}),
          reset: async () => {
            if (dockerTarget) await dockerd!.docker(['rmi', `${dockerTarget.host}/bench:1`]);
            await retire(dockerTarget);
            dockerTarget = await fresh();
            await docker(['tag', ref, `${dockerTarget.host}/bench:1`]);
          },
          run: () => docker(['push', '-q', `${dockerTarget!.host}/bench:1`]),
        },
        {
          name: 'berth push',
          reset: async () => {
            await retire(berthTarget);
            berthTarget = await fresh();
          },
          run: async () => {
            const client = new RegistryClient({});
            try {
              await client.push(`${berthTarget!.host}/bench:1`, { content, manifestDigest: m.descriptor.digest as Digest }).result;
            } finally {
              await client.close();
            }
          },
        },
        {
          name: 'skopeo copy oci: → registry',
          ...(skopeoSkip ? { skip: skopeoSkip } : {}),
          reset: async () => {
            await retire(skopeoTarget);
            skopeoTarget = await fresh();
          },
          run: async () => {
            await sh('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${image.dir}:latest`, `docker://${skopeoTarget!.host}/bench:1`]);
          },
        },
      ],
      runs,
      1,
    );
    const size = `${(total / 1e6).toFixed(0)} MB in ${m.layers.length} gzip layers`;
    return [
      {
        title: `registry pull (+ unpack) of ${size} from a local docker-registry`,
        baseline: 'docker pull',
        rows: pullRows,
        notes: [
          'docker pull and skopeo are whole CLI processes (about 50–100 ms of start-up included); Berth runs in-process.',
          'docker pull unpacks into overlay2 as layers land; Berth does with the pull\'s unpackLayer hook, or after the download.',
        ],
      },
      {
        title: `registry push of ${size} to a fresh local docker-registry`,
        baseline: 'docker push',
        rows: pushRows,
        notes: ['docker push of a pulled image recompresses each layer for a registry it has not pushed to; Berth and skopeo send the stored blobs.'],
      },
    ];
  } finally {
    await dockerd?.stop();
    for (const r of rigs) await r.stop();
    await rm(base, { recursive: true, force: true });
  }
}
