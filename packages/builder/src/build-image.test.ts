import { execFile } from 'node:child_process';
import { chmod, lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasCode } from '@berth/errors';
import { chainIds, shortId } from '@berth/oci';
import { RegistryClient } from '@berth/registry';
import { Runtime } from '@berth/runtime';
import { createSnapshotter, type Snapshotter } from '@berth/snapshot';
import { ImageStore } from '@berth/store';
import { startRegistry, type RegistryRig } from '@berth/tools/registry-rig';
import { pushBusyboxImage } from '@berth/tools/test-images';
import { buildImage, type BuildImageOptions } from './build-image.js';
import type { BuildMessage } from './build-messages.js';
import { BuilderErrorCode } from './errors.js';
import { listBuildCache, pruneBuildCache } from './build-cache.js';

const run = promisify(execFile);

let dir: string;
let registry: RegistryRig;
let images: ImageStore;
let snapshotter: Snapshotter;
let runtime: Runtime;
let client: RegistryClient;
let base: string;
let seq = 0;

const skip = process.getuid?.() !== 0 ? 'builds need root (mounts, namespaces)' : undefined;

beforeAll(async () => {
  if (skip) return;
  dir = await mkdtemp(join(tmpdir(), 'berth-build-'));
  await chmod(dir, 0o755);
  registry = await startRegistry();
  await pushBusyboxImage(registry, 'busybox:latest');
  base = `${registry.host}/busybox:latest`;
  images = new ImageStore({ root: join(dir, 'root') });
  snapshotter = await createSnapshotter({ root: join(dir, 'root', 'snapshots') });
  runtime = new Runtime({ root: join(dir, 'runtime') });
  client = new RegistryClient({ retries: 0 });
});

afterAll(async () => {
  if (skip) return;
  await client?.close();
  await registry?.stop();
  const mounts = await readFile('/proc/self/mountinfo', 'utf8');
  for (const target of mounts.split('\n').map((l) => l.split(' ')[4] ?? '').filter((t) => t.startsWith(dir)).sort().reverse()) {
    await run('umount', ['-l', target]).catch(() => {});
  }
  await rm(dir, { recursive: true, force: true });
});

interface Built {
  readonly messages: BuildMessage[];
  readonly text: string;
  readonly imageId?: string;
  readonly error?: unknown;
}

async function context(files: Record<string, string>): Promise<string> {
  const ctx = join(dir, `ctx-${++seq}`);
  for (const [name, content] of Object.entries(files)) {
    await mkdir(dirname(join(ctx, name)), { recursive: true });
    await writeFile(join(ctx, name), content);
  }
  await mkdir(ctx, { recursive: true });
  return ctx;
}

async function build(ctx: string, options: Partial<BuildImageOptions> = {}): Promise<Built> {
  const operation = buildImage({
    context: { dir: ctx },
    images,
    snapshotter,
    runtime,
    registry: client,
    workDir: join(dir, 'work'),
    ...options,
  });
  const messages: BuildMessage[] = [];
  try {
    for await (const m of operation) messages.push(m);
    const result = await operation.result;
    return { messages, text: messages.map((m) => m.stream ?? '').join(''), imageId: result.imageId };
  } catch (error) {
    return { messages, text: messages.map((m) => m.stream ?? '').join(''), error };
  }
}

describe.skipIf(skip)('buildImage', () => {
  it('builds RUN, COPY, WORKDIR and metadata steps into an image with docker history', async () => {
    const ctx = await context({
      Dockerfile: `FROM ${base}\nENV GREETING=hello\nRUN echo "$GREETING" > /greeting && echo out && echo err >&2\nCOPY app.txt /app/\nWORKDIR /app/sub\nCMD ["cat", "/greeting"]\n`,
      'app.txt': 'the app\n',
    });
    const built = await build(ctx, { tags: ['smoke:1'] });
    expect(built.error).toBeUndefined();
    expect(built.text).toMatch(/^Step 1\/6 : FROM /m);
    expect(built.text).toContain('Step 3/6 : RUN echo "$GREETING" > /greeting && echo out && echo err >&2\n ---> Running in ');
    expect(built.text).toContain('out\n');
    expect(built.text).toContain('\u001b[91merr\n\u001b[0m');
    expect(built.text).toContain(`Successfully built ${shortId(built.imageId!)}\nSuccessfully tagged smoke:1\n`);
    const details = await images.inspect('smoke:1');
    expect(details.id).toBe(built.imageId);
    expect(details.config.config?.Cmd).toEqual(['cat', '/greeting']);
    expect(details.config.config?.WorkingDir).toBe('/app/sub');
    const history = details.config.history!.slice(-5);
    expect(history.map((h) => h.created_by)).toEqual([
      '/bin/sh -c #(nop)  ENV GREETING=hello',
      '/bin/sh -c echo "$GREETING" > /greeting && echo out && echo err >&2',
      expect.stringMatching(/^\/bin\/sh -c #\(nop\) COPY file:[0-9a-f]{64} in \/app\/ $/),
      '/bin/sh -c #(nop) WORKDIR /app/sub',
      '/bin/sh -c #(nop)  CMD ["cat" "/greeting"]',
    ]);
    expect(history.map((h) => h.empty_layer ?? false)).toEqual([true, false, false, false, true]);
    expect(details.config.rootfs.diff_ids).toHaveLength(4);
    const chain = chainIds(details.config.rootfs.diff_ids).at(-1)!;
    const view = join(dir, `view-${++seq}`);
    await mkdir(view);
    const { mountAll, unmount } = await import('@berth/snapshot');
    await mountAll(await snapshotter.view(chain), view);
    try {
      expect(await readFile(join(view, 'greeting'), 'utf8')).toBe('hello\n');
      expect(await readFile(join(view, 'app/app.txt'), 'utf8')).toBe('the app\n');
      expect((await stat(join(view, 'app/sub'))).isDirectory()).toBe(true);
      // The mount points of the RUN container stay out of its layer.
      await expect(lstat(join(view, 'etc/resolv.conf'))).rejects.toMatchObject({ code: 'ENOENT' });
      await expect(lstat(join(view, 'etc/hosts'))).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      await unmount(view);
    }
  });
});

void readdir;
void readlink;
void hasCode;
void BuilderErrorCode;
void listBuildCache;
void pruneBuildCache;
