import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContentHashCache, hashCopySources, parseDockerfile, planBuild, readBuildContext, StageExpander, stepCacheKey } from '@berth/builder';
import { have, measure, sh, type BenchReport } from '../measure.js';

// The builder's share of a cached build: parse and plan the Dockerfile, walk the context
// through .dockerignore, hash what COPY reads and derive every step's key. GNU tar packing the
// same context is the reference row: the least a docker CLI does before any cache lookup.
const files = 600;

function dockerfile(): string {
  const lines = ['# syntax=docker/dockerfile:1', 'ARG BASE=busybox', 'FROM ${BASE} AS deps', 'WORKDIR /src', 'COPY pkg/ ./pkg/', 'RUN --mount=type=cache,target=/root/.cache echo deps'];
  for (let i = 0; i < 60; i++) lines.push(`ENV VAR_${i}=value-${i}`, `RUN echo step ${i} \\`, `    && true`);
  lines.push('FROM deps AS build', 'COPY . .', 'RUN echo build', 'FROM scratch', 'COPY --from=build /src/pkg /pkg', 'CMD ["/pkg"]');
  return lines.join('\n') + '\n';
}

async function makeContext(dir: string): Promise<void> {
  await writeFile(join(dir, 'Dockerfile'), dockerfile());
  await writeFile(join(dir, '.dockerignore'), 'node_modules\n**/*.log\n!keep.log\n');
  for (let i = 0; i < files; i++) {
    const sub = join(dir, i % 3 === 0 ? 'pkg' : 'src', `d${i % 20}`);
    await mkdir(sub, { recursive: true });
    await writeFile(join(sub, `f${i}.txt`), `file ${i}\n`.repeat(40 + (i % 50)));
  }
  await mkdir(join(dir, 'node_modules/x'), { recursive: true });
  for (let i = 0; i < 200; i++) await writeFile(join(dir, 'node_modules/x', `m${i}.js`), 'module\n');
}

async function cachedBuildKeys(dir: string, text: string, cache?: ContentHashCache): Promise<void> {
  const df = parseDockerfile(text);
  const plan = planBuild(df);
  const context = await readBuildContext({ dir });
  const keys = new Map<number, string>();
  for (const planned of plan.stages) {
    const expander = new StageExpander({ metaArgs: plan.metaArgs, escapeToken: df.directives.escape });
    let parent = planned.base.kind === 'stage' ? keys.get(planned.base.index)! : 'sha256:base';
    for (const instruction of planned.stage.instructions) {
      const step = expander.expand(instruction);
      let sources: string | undefined;
      if (step.instruction.kind === 'COPY' && step.instruction.from === undefined) {
        sources = (await hashCopySources(context, step.instruction.sources, cache ? { cache } : {})).digest;
      }
      parent = stepCacheKey({ parent, step, ...(sources ? { sources } : {}) });
    }
    keys.set(planned.index, parent);
  }
}

/** Benchmark entry: the builder's cache-key work on a 600-file context beside GNU tar. */
export async function run({ runs }: { runs: number }): Promise<BenchReport[]> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-bench-builder-'));
  try {
    await makeContext(dir);
    const text = dockerfile();
    const cache = new ContentHashCache();
    const rows = await measure(
      [
        {
          name: 'tar -c context (GNU tar)',
          ...((await have('tar')) ? {} : { skip: 'tar not installed' }),
          // Through a pipe: GNU tar skips reading file contents when the archive is /dev/null.
          run: async () => void (await sh('sh', ['-c', `tar -C '${dir}' --exclude=node_modules -cf - . | cat > /dev/null`])),
        },
        { name: 'berth: parse+plan+walk+hash+keys (cold)', run: () => cachedBuildKeys(dir, text) },
        { name: 'berth: same, content-hash cache warm (rebuild)', run: () => cachedBuildKeys(dir, text, cache) },
        { name: 'berth: parse+plan only (200-line Dockerfile)', run: async () => void planBuild(parseDockerfile(text)) },
      ],
      runs,
    );
    return [
      {
        title: `builder: cache keys for a cached build (${files} context files, 200 ignored)`,
        baseline: 'tar -c context (GNU tar)',
        rows,
        notes: ['The docker comparison (cached `docker build` ≤ 0.5× docker) needs the executor; this suite times the part that exists.'],
      },
    ];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
