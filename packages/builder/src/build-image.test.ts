import { execFile } from 'node:child_process';
import { chmod, lstat, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chainIds, shortId } from '@berth/oci';
import { RegistryClient } from '@berth/registry';
import { Runtime } from '@berth/runtime';
import { createSnapshotter, type Snapshotter } from '@berth/snapshot';
import { ImageStore } from '@berth/store';
import { startRegistry, type RegistryRig } from '@berth/tools/registry-rig';
import { pushBusyboxImage, tarOfDirectory } from '@berth/tools/test-images';
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
  // Whatever a failed test left: containers of this file's runtime root, then mounts under its dir.
  for (const c of await runtime.list().catch(() => [])) await runtime.delete(c.id, { force: true }).catch(() => {});
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

  it('reuses unchanged steps and rebuilds only what follows a changed COPY, across store instances', async () => {
    const ctx = await context({
      Dockerfile: `FROM ${base}\nRUN echo one > /one\nCOPY a.txt /a.txt\nRUN cat /a.txt > /copy\nCOPY b.txt /b.txt\nRUN echo done\n`,
      'a.txt': 'a1\n',
      'b.txt': 'b1\n',
    });
    const first = await build(ctx);
    expect(first.error).toBeUndefined();
    expect(first.text).not.toContain('Using cache');

    // A second build from fresh handles on the same root: the cache is on disk, not in memory.
    const fresh = { images: new ImageStore({ root: join(dir, 'root') }), snapshotter: await createSnapshotter({ root: join(dir, 'root', 'snapshots') }) };
    const again = await build(ctx, fresh);
    expect(again.imageId).toBe(first.imageId);
    expect(again.text.match(/Using cache/g)).toHaveLength(5);
    expect(again.text).not.toContain('Running in');

    await writeFile(join(ctx, 'b.txt'), 'b2\n');
    const changed = await build(ctx);
    expect(changed.error).toBeUndefined();
    const steps = changed.text.split(/^Step /m).slice(1);
    expect(steps.map((st) => st.includes('Using cache'))).toEqual([false, true, true, true, false, false]);
    expect(changed.imageId).not.toBe(first.imageId);

    await writeFile(join(ctx, 'a.txt'), 'a2\n');
    const earlier = await build(ctx);
    const steps2 = earlier.text.split(/^Step /m).slice(1);
    expect(steps2.map((st) => st.includes('Using cache'))).toEqual([false, true, false, false, false, false]);

    const noCache = await build(ctx, { noCache: true });
    expect(noCache.text).not.toContain('Using cache');
  });

  it('builds only the stages the target needs, in parallel, with COPY --from a stage and an image', async () => {
    // Stage a waits for a file stage b writes into a shared cache mount: built one after the other, a would give up.
    const ctx = await context({
      Dockerfile: [
        `FROM ${base} AS a`,
        'RUN --mount=type=cache,target=/sync,id=parallel-${SEED} i=0; while [ ! -f /sync/b ]; do i=$((i+1)); [ $i -gt 300 ] && exit 7; sleep 0.1; done; echo from-a > /a.txt',
        `FROM ${base} AS b`,
        'RUN --mount=type=cache,target=/sync,id=parallel-${SEED} echo from-b > /b.txt && touch /sync/b',
        `FROM ${base} AS unused`,
        'RUN exit 9',
        `FROM ${base} AS final`,
        'COPY --from=a /a.txt /out/',
        'COPY --from=1 /b.txt /out/',
        `COPY --from=${base} /etc/passwd /out/passwd`,
        'FROM final AS later',
        'RUN exit 8',
      ].join('\n').replaceAll('${SEED}', String(Date.now())),
    });
    const built = await build(ctx, { target: 'final', tags: ['multi:1'] });
    expect(built.error).toBeUndefined();
    expect(built.text).not.toContain('exit 9');
    expect(built.text).not.toContain('exit 8');
    expect(built.text).toMatch(/^Step 1\/8 : FROM \S+ AS a$/m);
    expect(built.text).toMatch(/^Step 5\/8 : FROM \S+ AS final$/m);
    const out = await exportFiles('multi:1', ['out/a.txt', 'out/b.txt', 'out/passwd']);
    expect(out).toEqual({ 'out/a.txt': 'from-a\n', 'out/b.txt': 'from-b\n', 'out/passwd': expect.stringContaining('root:x:0:0') });
  });

  it('fails a RUN with docker\'s message and exit code, tags nothing and leaves nothing behind', async () => {
    const ctx = await context({ Dockerfile: `FROM ${base}\nRUN echo before\nRUN echo failing; exit 3\nRUN echo never\n` });
    const built = await build(ctx, { tags: ['failing:1'] });
    expect(built.error).toMatchObject({ code: BuilderErrorCode.RunFailed, exitCode: 3, message: "The command '/bin/sh -c echo failing; exit 3' returned a non-zero code: 3" });
    expect(built.text).toContain('failing\n');
    expect(built.text).not.toContain('never');
    expect(await images.find('failing:1')).toBeUndefined();
    await expectNothingLeft();
  });

  it('names the file and line of a bad Dockerfile', async () => {
    const ctx = await context({ Dockerfile: `FROM ${base}\nRUN true\nFORM x\n` });
    const built = await build(ctx);
    expect(built.error).toMatchObject({ code: 'ERR_DOCKERFILE_SYNTAX', message: 'Dockerfile:3: unknown instruction: FORM (did you mean FROM?)' });
    const bad = await context({ Dockerfile: `FROM ${base}\nEXPOSE 80/tcpx\n` });
    expect((await build(bad)).error).toMatchObject({ message: expect.stringMatching(/^Dockerfile:2: /) });
  });

  it('reads a lower-case dockerfile when none is named, as the docker CLI looks for it', async () => {
    const ctx = await context({ dockerfile: `FROM ${base}\nLABEL case=lower\n` });
    const built = await build(ctx);
    expect(built.error).toBeUndefined();
    expect((await images.inspect(built.imageId!)).config.config?.Labels).toMatchObject({ case: 'lower' });
    expect((await build(await context({ 'other.txt': 'x\n' }))).error).toMatchObject({ code: 'ERR_BUILD_CONTEXT_INVALID', message: expect.stringContaining('Dockerfile') });
  });

  it('applies .dockerignore and build args, and keys the cache on the args a step reads', async () => {
    const ctx = await context({
      Dockerfile: `ARG BASE=${base}\nFROM $BASE\nARG FLAVOR=plain\nARG UNUSED_HERE\nCOPY . /ctx/\nRUN echo "$FLAVOR" > /flavor\nRUN echo constant > /constant\n`,
      '.dockerignore': '*.log\nsecret/\n!secret/keep.txt\n',
      'keep.txt': 'keep\n',
      'debug.log': 'log\n',
      'secret/key': 'key\n',
      'secret/keep.txt': 'kept\n',
    });
    const plain = await build(ctx, { tags: ['args:plain'], buildArgs: { NOT_DECLARED: 'x' } });
    expect(plain.error).toBeUndefined();
    expect(plain.text).toContain('[Warning] One or more build-args [NOT_DECLARED] were not consumed\n');
    const files = await exportFiles('args:plain', ['flavor', 'ctx/keep.txt', 'ctx/secret/keep.txt']);
    expect(files).toEqual({ flavor: 'plain\n', 'ctx/keep.txt': 'keep\n', 'ctx/secret/keep.txt': 'kept\n' });
    await expect(exportFiles('args:plain', ['ctx/debug.log'])).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(exportFiles('args:plain', ['ctx/secret/key'])).rejects.toMatchObject({ code: 'ENOENT' });
    const history = (await images.inspect('args:plain')).config.history!;
    // Only args with a value are in the environment, as docker records them.
    expect(history.at(-2)!.created_by).toBe('|1 FLAVOR=plain /bin/sh -c echo "$FLAVOR" > /flavor');

    const fancy = await build(ctx, { tags: ['args:fancy'], buildArgs: { FLAVOR: 'fancy' } });
    expect((await exportFiles('args:fancy', ['flavor'])).flavor).toBe('fancy\n');
    // ARG (as written) and COPY read nothing that changed; both RUNs have FLAVOR in their environment.
    const steps = fancy.text.split(/^Step /m).slice(1);
    expect(steps.map((st) => st.includes('Using cache'))).toEqual([false, true, true, true, false, false]);
  });

  it('keeps RUN cache mounts between builds, and bind-mounts the context read-only', async () => {
    const id = `counter-${Date.now()}`;
    const ctx = await context({
      Dockerfile: `FROM ${base}\nARG RUN_NO\nRUN --mount=type=cache,target=/cache,id=${id} --mount=type=bind,source=input,target=/input echo "$RUN_NO" >> /cache/runs && cp /cache/runs /runs && cat /input/data >> /runs && ! touch /input/new 2>/dev/null\nRUN --mount=type=tmpfs,target=/scratch touch /scratch/x && ls /scratch > /tmpfs-seen\n`,
      'input/data': 'input\n',
    });
    expect((await build(ctx, { tags: ['cachemount:1'], buildArgs: { RUN_NO: '1' } })).error).toBeUndefined();
    expect((await build(ctx, { tags: ['cachemount:2'], buildArgs: { RUN_NO: '2' } })).error).toBeUndefined();
    expect(await exportFiles('cachemount:2', ['runs', 'tmpfs-seen'])).toEqual({ runs: '1\n2\ninput\n', 'tmpfs-seen': 'x\n' });
    // The mount targets are no part of the image.
    await expect(exportFiles('cachemount:2', ['cache/runs'])).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(exportFiles('cachemount:2', ['input/data'])).rejects.toMatchObject({ code: 'ENOENT' });
    const records = await listBuildCache({ images });
    expect(records.some((r) => r.type === 'exec.cachemount')).toBe(true);
  });

  it('writes --output as a directory and as a tar, and --iidfile', async () => {
    const ctx = await context({ Dockerfile: `FROM ${base} AS build\nRUN mkdir /dist && echo artifact > /dist/app\nFROM scratch\nCOPY --from=build /dist /\n`, 'unused.txt': 'x' });
    const local = join(dir, `out-${++seq}`);
    const tarFile = join(dir, `out-${++seq}.tar`);
    const iid = join(dir, `iid-${++seq}`);
    const { PassThrough } = await import('node:stream');
    const stream = new PassThrough();
    const chunks: Buffer[] = [];
    stream.on('data', (d: Buffer) => chunks.push(d));
    const built = await build(ctx, { outputs: [{ type: 'local', dest: local }, { type: 'tar', dest: tarFile }, { type: 'tar', dest: stream }], iidFile: iid });
    expect(built.error).toBeUndefined();
    // A stream is left open (stdout must be), with the same archive in it.
    expect(stream.writableEnded).toBe(false);
    expect(Buffer.concat(chunks).equals(await readFile(tarFile))).toBe(true);
    expect(await readFile(join(local, 'app'), 'utf8')).toBe('artifact\n');
    expect(await readdir(local)).toEqual(['app']);
    const { stdout } = await run('tar', ['-tf', tarFile]);
    expect(stdout.split('\n').filter(Boolean).map((l) => l.replace(/^\.\//, ''))).toEqual(['app']);
    expect(await readFile(iid, 'utf8')).toBe(built.imageId);
  });

  it('cleans up containers, mounts and snapshots when the build is aborted mid-RUN', async () => {
    const ctx = await context({ Dockerfile: `FROM ${base}\nRUN --mount=type=cache,target=/c,id=abort-${Date.now()} echo started && sleep 60\n` });
    const controller = new AbortController();
    const operation = buildImage({ context: { dir: ctx }, images, snapshotter, runtime, registry: client, workDir: join(dir, 'work'), signal: controller.signal });
    const seen: string[] = [];
    let error: unknown;
    try {
      for await (const m of operation) {
        if (m.stream) seen.push(m.stream);
        if (m.stream === 'started\n') controller.abort();
      }
    } catch (err) {
      error = err;
    }
    expect(seen).toContain('started\n');
    expect(error).toMatchObject({ kind: 'Canceled' });
    await expect(operation.result).rejects.toMatchObject({ kind: 'Canceled' });
    await expectNothingLeft();
  });

  it('keeps the cache through garbage collection until builder prune removes it', async () => {
    const ctx = await context({ Dockerfile: `FROM ${base}\nRUN echo gc-${Date.now()} > /gc\n` });
    const first = await build(ctx);
    expect(first.error).toBeUndefined();
    await images.gc({ snapshots: snapshotter });
    const cached = await build(ctx);
    expect(cached.text).toContain('Using cache');
    expect(cached.imageId).toBe(first.imageId);
    const pruned = await pruneBuildCache({ images, gc: { snapshots: snapshotter } });
    expect(pruned.removed.length).toBeGreaterThan(0);
    expect((await listBuildCache({ images })).filter((r) => r.type === 'regular')).toEqual([]);
    const rebuilt = await build(ctx);
    expect(rebuilt.text).not.toContain('Using cache');
  });

  it('runs ONBUILD triggers of the base image, heredocs, USER and --network=none', async () => {
    const parent = await context({ Dockerfile: `FROM ${base}\nONBUILD RUN echo triggered > /triggered\nONBUILD COPY child.txt /child.txt\n` });
    expect((await build(parent, { tags: ['onbuild-parent:1'] })).error).toBeUndefined();
    expect((await images.inspect('onbuild-parent:1')).config.config?.OnBuild).toEqual(['RUN echo triggered > /triggered', 'COPY child.txt /child.txt']);
    const child = await context({
      Dockerfile: [
        'FROM onbuild-parent:1',
        'RUN <<EOF',
        'echo line one > /heredoc',
        'echo line two >> /heredoc',
        'EOF',
        'RUN <<EOF',
        '#!/bin/sh',
        'echo "script $0" > /script',
        'EOF',
        'ENV WHO=world',
        'COPY <<EOF /inline.txt',
        'inline $WHO',
        'EOF',
        'RUN mkdir -m 777 /shared',
        'USER 1000:1000',
        'RUN id -u > /shared/uid && touch /shared/owned',
        'RUN --network=none wc -l < /proc/net/dev > /shared/netdev-lines',
        'RUN grep extra-host /etc/hosts > /shared/hosts-line; cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max 2>/dev/null | head -1 > /shared/memory',
        'SHELL ["/bin/sh", "-ec"]',
        'RUN echo "$-" > /shared/shell-flags',
      ].join('\n'),
      'child.txt': 'child\n',
    });
    const built = await build(child, { tags: ['onbuild-child:1'], extraHosts: ['extra-host:10.1.2.3'], runLimits: { memory: 64 << 20 } });
    expect(built.error).toBeUndefined();
    expect(built.text).toContain('# Executing 2 build triggers\n');
    const files = await exportFiles('onbuild-child:1', ['triggered', 'child.txt', 'heredoc', 'script', 'inline.txt', 'shared/uid', 'shared/netdev-lines', 'shared/hosts-line', 'shared/memory']);
    expect(files).toEqual({
      triggered: 'triggered\n',
      'child.txt': 'child\n',
      heredoc: 'line one\nline two\n',
      script: 'script /dev/pipes/EOF\n',
      'inline.txt': 'inline world\n',
      'shared/uid': '1000\n',
      // A header of two lines and the loopback device: nothing else in a network of its own.
      'shared/netdev-lines': '3\n',
      'shared/hosts-line': '10.1.2.3\textra-host\n',
      'shared/memory': `${64 << 20}\n`,
    });
    const details = await images.inspect('onbuild-child:1');
    expect(details.config.config?.OnBuild ?? null).toBeNull();
    // SHELL: the RUN after it ran under -e, and docker's history names that shell.
    expect((await exportFiles('onbuild-child:1', ['shared/shell-flags']))['shared/shell-flags']).toContain('e');
    expect(details.config.config?.Shell).toEqual(['/bin/sh', '-ec']);
    expect(details.config.history!.at(-1)!.created_by).toBe('/bin/sh -ec echo "$-" > /shared/shell-flags');
    expect(details.config.history!.at(-2)!.created_by).toBe('/bin/sh -ec #(nop)  SHELL [/bin/sh -ec]');
    expect(details.config.config?.User).toBe('1000:1000');
  });

  it('downloads ADD URLs with --checksum, unpacks local archives, and applies --chown and --chmod', async () => {
    const { createServer } = await import('node:http');
    let requests = 0;
    const server = createServer((req, res) => {
      requests++;
      if (req.url === '/files/data.bin') res.end('remote data\n');
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const { createHash } = await import('node:crypto');
      const sum = `sha256:${createHash('sha256').update('remote data\n').digest('hex')}`;
      const ctx = await context({
        Dockerfile: [
          `FROM ${base}`,
          `ADD --checksum=${sum} http://127.0.0.1:${port}/files/data.bin /downloads/`,
          'ADD bundle.tar /unpacked',
          'COPY --chown=user:nogroup --chmod=640 plain.txt /owned/plain.txt',
          'COPY --chown=1000 plain.txt /owned/numeric.txt',
          'RUN stat -c "%U %G %a" /owned/plain.txt > /modes && stat -c "%u %g %a" /owned/numeric.txt /owned /downloads/data.bin >> /modes',
        ].join('\n'),
        'plain.txt': 'plain\n',
      });
      const tarDir = join(dir, `tarsrc-${++seq}`);
      await mkdir(join(tarDir, 'pkg'), { recursive: true });
      await writeFile(join(tarDir, 'pkg/inside'), 'inside\n');
      await run('tar', ['-C', tarDir, '--owner=7', '--group=8', '-cf', join(ctx, 'bundle.tar'), 'pkg']);
      const built = await build(ctx, { tags: ['add:1'] });
      expect(built.error).toBeUndefined();
      const files = await exportFiles('add:1', ['downloads/data.bin', 'unpacked/pkg/inside', 'modes']);
      expect(files).toEqual({
        'downloads/data.bin': 'remote data\n',
        'unpacked/pkg/inside': 'inside\n',
        // The directory made for the first --chown copy is that owner's, as docker makes it.
        modes: 'user nogroup 640\n1000 1000 644\n1000 65534 755\n0 0 600\n',
      });
      // With --checksum the key needs no download: a cached build fetches nothing.
      const before = requests;
      const again = await build(ctx);
      expect(again.imageId).toBe(built.imageId);
      expect(requests).toBe(before);

      const wrong = await context({ Dockerfile: `FROM ${base}\nADD --checksum=sha256:${'0'.repeat(64)} http://127.0.0.1:${port}/files/data.bin /x\n` });
      expect((await build(wrong)).error).toMatchObject({ code: BuilderErrorCode.ChecksumMismatch });
      await expectNothingLeft();
    } finally {
      server.close();
    }
  });

  it('takes a context tar as POST /build sends it, adds --label steps, and with -q shows only the ID', async () => {
    const ctx = await context({ 'build/Dockerfile.app': `FROM ${base}\nCOPY app.txt /\n`, 'app.txt': 'app\n' });
    const { packContext } = await import('./context-tar.js');
    const packed = await packContext({ dir: ctx, dockerfile: { path: 'build/Dockerfile.app' } });
    const built = await build(ctx, { context: { tar: packed.stream }, dockerfile: packed.dockerfile, labels: { 'z.label': 'last', 'a.label': 'first $HOME' }, quiet: true, tags: ['tarctx:1'] });
    expect(built.error).toBeUndefined();
    expect(built.messages).toEqual([{ aux: { ID: built.imageId } }, { stream: `${built.imageId}\n` }]);
    const details = await images.inspect('tarctx:1');
    expect(details.config.config?.Labels).toMatchObject({ 'a.label': 'first $HOME', 'z.label': 'last' });
    expect(details.config.history!.slice(-2).map((h) => h.created_by)).toEqual(['/bin/sh -c #(nop)  LABEL a.label=first $HOME', '/bin/sh -c #(nop)  LABEL z.label=last']);
    expect(await exportFiles('tarctx:1', ['app.txt'])).toEqual({ 'app.txt': 'app\n' });
  });

  it('keeps a COPY --link layer when the steps below it change, with --exclude, --parents and globs', async () => {
    const ctx = await context({
      Dockerfile: `FROM ${base}\nARG BELOW\nRUN echo "$BELOW" > /below\nCOPY --link --exclude=*.skip site/ /srv/site/\nCOPY --parents src/*/main.txt /tree/\nCOPY src/*/main.txt /flat/\n`,
      'site/index.html': '<h1>hi</h1>\n',
      'site/draft.skip': 'draft\n',
      'src/a/main.txt': 'a\n',
      'src/b/main.txt': 'b\n',
    });
    const one = await build(ctx, { tags: ['link:1'], buildArgs: { BELOW: 'one' } });
    const two = await build(ctx, { tags: ['link:2'], buildArgs: { BELOW: 'two' } });
    expect(one.error).toBeUndefined();
    expect(two.error).toBeUndefined();
    const [c1, c2] = [await images.inspect('link:1'), await images.inspect('link:2')];
    // The RUN below differs; the linked layer is the same blob.
    expect(c1.config.rootfs.diff_ids[1]).not.toBe(c2.config.rootfs.diff_ids[1]);
    expect(c1.config.rootfs.diff_ids[2]).toBe(c2.config.rootfs.diff_ids[2]);
    expect(c1.manifest.layers[2]!.digest).toBe(c2.manifest.layers[2]!.digest);
    expect(await exportFiles('link:2', ['below', 'srv/site/index.html', 'tree/src/a/main.txt', 'tree/src/b/main.txt', 'flat/main.txt'])).toMatchObject({
      below: 'two\n',
      'srv/site/index.html': '<h1>hi</h1>\n',
      'tree/src/a/main.txt': 'a\n',
      'tree/src/b/main.txt': 'b\n',
    });
    await expect(exportFiles('link:2', ['srv/site/draft.skip'])).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('binds a stage into a RUN, serialises sharing=locked cache mounts, and RUN --network=host sees the host', async () => {
    const id = `locked-${Date.now()}`;
    const ctx = await context({
      Dockerfile: [
        `FROM ${base} AS data`,
        'RUN mkdir /data && echo from-stage > /data/file',
        `FROM ${base} AS one`,
        `RUN --mount=type=cache,target=/c,id=${id},sharing=locked [ ! -e /c/busy ] && touch /c/busy && sleep 0.5 && rm /c/busy && echo one >> /c/log`,
        `FROM ${base} AS two`,
        `RUN --mount=type=cache,target=/c,id=${id},sharing=locked [ ! -e /c/busy ] && touch /c/busy && sleep 0.5 && rm /c/busy && echo two >> /c/log`,
        // Two RUNs at once on a private cache: each gets an instance of its own.
        `FROM ${base} AS p1`,
        `RUN --mount=type=cache,target=/p,id=${id}-private,sharing=private echo p1 > /p/who && sleep 0.5 && cat /p/who > /seen`,
        `FROM ${base} AS p2`,
        `RUN --mount=type=cache,target=/p,id=${id}-private,sharing=private echo p2 > /p/who && sleep 0.5 && cat /p/who > /seen`,
        `FROM ${base}`,
        'COPY --from=one /etc/passwd /one',
        'COPY --from=two /etc/passwd /two',
        'COPY --from=p1 /seen /p1-seen',
        'COPY --from=p2 /seen /p2-seen',
        'RUN --mount=type=bind,from=data,source=/data,target=/mnt cat /mnt/file > /bound',
        'RUN --network=host cat /proc/net/dev > /host-netdev',
      ].join('\n'),
    });
    const built = await build(ctx, { tags: ['mounts:1'] });
    expect(built.error).toBeUndefined();
    const files = await exportFiles('mounts:1', ['bound', 'host-netdev', 'p1-seen', 'p2-seen']);
    expect(files.bound).toBe('from-stage\n');
    expect([files['p1-seen'], files['p2-seen']]).toEqual(['p1\n', 'p2\n']);
    // The interface of the host's default route is there (others come and go as other tests run).
    const route = (await readFile('/proc/net/route', 'utf8')).split('\n').find((l) => l.split('\t')[1] === '00000000');
    expect(files['host-netdev']).toContain(`${route!.split('\t')[0]}:`);
  });

  it('pulls again with --pull, refuses another platform, and builds an image the registry client pushes', async () => {
    const ctx = await context({ Dockerfile: `FROM ${base}\nRUN echo pushed > /pushed\n` });
    const pulled = await build(ctx, { pull: true, tags: [`${registry.host}/built/app:1`] });
    expect(pulled.error).toBeUndefined();
    expect(pulled.messages.some((m) => m.status !== undefined)).toBe(true);
    const other = (await import('@berth/oci')).hostPlatform().architecture === 'arm64' ? 'linux/amd64' : 'linux/arm64';
    expect((await build(ctx, { platform: other })).error).toMatchObject({ code: BuilderErrorCode.Unsupported });

    const record = await images.resolve(`${registry.host}/built/app:1`);
    const push = client.push(`${registry.host}/built/app:1`, { content: images.content, manifestDigest: record.target.digest, mediaType: record.target.mediaType });
    for await (const _ of push) void _;
    const pushed = await push.result;
    expect(pushed.digest).toBe(record.target.digest);
    // What the registry serves is the image the build made, config and all.
    const res = await fetch(`${registry.url}/v2/built/app/manifests/1`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    const manifest = (await res.json()) as { config: { digest: string }; layers: unknown[] };
    expect(manifest.config.digest).toBe(pulled.imageId);
    expect(manifest.layers).toHaveLength((await images.inspect(record.id)).config.rootfs.diff_ids.length);
  });

  it('keeps RUN mount points out of layers with the copying snapshotter too', async () => {
    const root = join(dir, `copy-root-${++seq}`);
    const copying = await createSnapshotter({ root: join(root, 'snapshots'), driver: 'copy' });
    const store = new ImageStore({ root });
    const ctx = await context({ Dockerfile: `FROM ${base}\nRUN --mount=type=tmpfs,target=/newdir/tmp echo copied > /copied && cat /etc/hosts > /hosts-seen\n` });
    const built = await build(ctx, { images: store, snapshotter: copying, tags: ['copydriver:1'] });
    expect(built.error).toBeUndefined();
    const details = await store.inspect('copydriver:1');
    const view = join(dir, `view-${++seq}`);
    await mkdir(view);
    const { mountAll, unmount } = await import('@berth/snapshot');
    await mountAll(await copying.view(chainIds(details.config.rootfs.diff_ids).at(-1)!), view);
    try {
      expect(await readFile(join(view, 'copied'), 'utf8')).toBe('copied\n');
      expect(await readFile(join(view, 'hosts-seen'), 'utf8')).toContain('localhost');
      await expect(lstat(join(view, 'etc/hosts'))).rejects.toMatchObject({ code: 'ENOENT' });
      await expect(lstat(join(view, 'newdir'))).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      await unmount(view);
    }
    // The step's layer holds what the RUN wrote and nothing else: no stub, no touched /etc.
    const blob = await store.content.readBytes(details.manifest.layers.at(-1)!.digest);
    const { gunzipSync } = await import('node:zlib');
    const names: string[] = [];
    const { Parser } = await import('tar');
    const parser = new Parser({ onReadEntry: (e) => (names.push(e.path), e.resume()) });
    parser.end(gunzipSync(blob));
    expect(names.sort()).toEqual(['copied', 'hosts-seen']);
    expect((await copying.list()).filter((s) => s.kind === 'active')).toEqual([]);
  });

  it('reuses in one process the cache another process filled', async () => {
    const ctx = await context({ Dockerfile: `FROM ${base}\nRUN echo "made in $$" > /pid\nCOPY f.txt /\n`, 'f.txt': 'f\n' });
    const child = `
      import { buildImage } from '@berth/builder';
      import { ImageStore } from '@berth/store';
      import { createSnapshotter } from '@berth/snapshot';
      import { Runtime } from '@berth/runtime';
      const [root, work, context, runtimeRoot] = process.argv.slice(1);
      const { RegistryClient } = await import('@berth/registry');
      const registry = new RegistryClient({ retries: 0 });
      const build = buildImage({ context: { dir: context }, images: new ImageStore({ root }), snapshotter: await createSnapshotter({ root: root + '/snapshots' }), runtime: new Runtime({ root: runtimeRoot }), registry, workDir: work });
      for await (const m of build) void m;
      process.stdout.write((await build.result).imageId);
      await registry.close();
    `;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', child, join(dir, 'root'), join(dir, 'work'), ctx, join(dir, 'runtime')], { cwd: join(import.meta.dirname, '..') });
    const here = await build(ctx);
    expect(here.imageId).toBe(stdout);
    expect(here.text.match(/Using cache/g)).toHaveLength(2);
  });

  it('names a COPY source that is missing or ignored', async () => {
    const ctx = await context({ Dockerfile: `FROM ${base}\nCOPY present.txt missing.txt /dst/\n`, 'present.txt': 'x', '.dockerignore': 'present.txt\n' });
    const built = await build(ctx);
    expect(built.error).toMatchObject({ code: BuilderErrorCode.SourceNotFound, message: expect.stringContaining('"present.txt": not found in the build context') });
    await expectNothingLeft();
  });

  it('builds from a context tar without unpacking it, unless a RUN binds the context', async () => {
    const ctx = await context({
      Dockerfile: `FROM ${base}\nCOPY src/ /src/\nADD bundle.tar /unpacked/\nRUN --mount=type=bind,target=/ctx find /ctx -type f | sort > /listing\n`,
      '.dockerignore': 'secret.txt\n',
      'secret.txt': 'secret\n',
      'src/a.txt': 'a\n',
      'src/deep/b.txt': 'b\n',
    });
    const tarDir = join(dir, `tarsrc-${++seq}`);
    await mkdir(join(tarDir, 'pkg'), { recursive: true });
    await writeFile(join(tarDir, 'pkg/inside'), 'inside\n');
    await run('tar', ['-C', tarDir, '-cf', join(ctx, 'bundle.tar'), 'pkg']);
    // A tar as a client may send it: .dockerignore not applied yet, the daemon applies it.
    const built = await build(ctx, { context: { tar: tarOfDirectory(ctx) }, tags: ['spooled:1'] });
    expect(built.error).toBeUndefined();
    const files = await exportFiles('spooled:1', ['src/a.txt', 'src/deep/b.txt', 'unpacked/pkg/inside', 'listing']);
    expect(files['src/a.txt']).toBe('a\n');
    expect(files['src/deep/b.txt']).toBe('b\n');
    expect(files['unpacked/pkg/inside']).toBe('inside\n');
    expect(files.listing.split('\n').filter(Boolean)).toEqual(['/ctx/.dockerignore', '/ctx/Dockerfile', '/ctx/bundle.tar', '/ctx/src/a.txt', '/ctx/src/deep/b.txt']);
    await expectNothingLeft();
  });
});

async function exportFiles(image: string, paths: readonly string[]): Promise<Record<string, string>> {
  const details = await images.inspect(image);
  const view = join(dir, `view-${++seq}`);
  await mkdir(view);
  const { mountAll, unmount } = await import('@berth/snapshot');
  await mountAll(await snapshotter.view(chainIds(details.config.rootfs.diff_ids).at(-1)!), view);
  try {
    const out: Record<string, string> = {};
    for (const p of paths) out[p] = await readFile(join(view, p), 'utf8');
    return out;
  } finally {
    await unmount(view);
    await rm(view, { recursive: true });
  }
}

// No build container in the runtime, no mount under the work dir, no active snapshot.
async function expectNothingLeft(): Promise<void> {
  expect(await runtime.list()).toEqual([]);
  const mounts = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').map((l) => l.split(' ')[4] ?? '');
  expect(mounts.filter((m) => m.startsWith(join(dir, 'work')))).toEqual([]);
  expect((await snapshotter.list()).filter((s) => s.kind === 'active')).toEqual([]);
  expect(await readdir(join(dir, 'work'))).toEqual([]);
}

