import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { Parser, type ReadEntry } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chainIds } from '@berth/oci';
import { RegistryClient } from '@berth/registry';
import { Runtime } from '@berth/runtime';
import { createSnapshotter, type Snapshotter } from '@berth/snapshot';
import { ImageStore } from '@berth/store';
import { dockerdUnavailable, startDockerd, type DockerdRig } from '@berth/tools/dockerd-rig';
import { startRegistry, type RegistryRig } from '@berth/tools/registry-rig';
import { pushBusyboxImage } from '@berth/tools/test-images';
import { buildImage } from './build-image.js';

const run = promisify(execFile);
const unavailable = await dockerdUnavailable();

let dir: string;
let registry: RegistryRig;
let dockerd: DockerdRig;
let images: ImageStore;
let snapshotter: Snapshotter;
let runtime: Runtime;
let client: RegistryClient;
let base: string;

/** The docker CLI against the rig's dockerd, with the classic builder (what `POST /build` version 1 is). */
function docker(args: readonly string[], input?: Readable): Promise<{ stdout: Buffer; stderr: string; code: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn('docker', ['-H', dockerd.host, ...args], { env: { ...process.env, DOCKER_BUILDKIT: '0' }, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ stdout: Buffer.concat(out), stderr, code: code ?? 128 }));
    if (input) input.pipe(child.stdin);
    else child.stdin.end();
  });
}

beforeAll(async () => {
  if (unavailable) return;
  dir = await mkdtemp(join(tmpdir(), 'berth-build-docker-'));
  await chmod(dir, 0o755);
  registry = await startRegistry();
  await pushBusyboxImage(registry, 'busybox:latest');
  base = `${registry.host}/busybox:latest`;
  dockerd = await startDockerd();
  // Both builders start from the same image: dockerd pulls it from the rig (loopback is insecure by default).
  const pulled = await docker(['pull', base]);
  if (pulled.code !== 0) throw new Error(`docker pull ${base}: ${pulled.stderr}`);
  images = new ImageStore({ root: join(dir, 'root') });
  snapshotter = await createSnapshotter({ root: join(dir, 'root', 'snapshots') });
  runtime = new Runtime({ root: join(dir, 'runtime') });
  client = new RegistryClient({ retries: 0 });
}, 180_000);

afterAll(async () => {
  if (unavailable) return;
  for (const c of await runtime.list().catch(() => [])) await runtime.delete(c.id, { force: true }).catch(() => {});
  await client?.close();
  await dockerd?.stop();
  await registry?.stop();
  const mounts = await readFile('/proc/self/mountinfo', 'utf8');
  for (const target of mounts.split('\n').map((l) => l.split(' ')[4] ?? '').filter((t) => t.startsWith(dir)).sort().reverse()) {
    await run('umount', ['-l', target]).catch(() => {});
  }
  await rm(dir, { recursive: true, force: true });
});

interface TreeEntry {
  readonly type: string;
  readonly mode: string;
  readonly uid: number;
  readonly gid: number;
  readonly link?: string;
  readonly sha256?: string;
}

// Paths docker's export shows that belong to the container, not the image: its init layer.
const containerOnly = /^(\.dockerenv|etc\/(hosts|hostname|resolv\.conf|mtab)|dev\/.+)$/;

/** Every entry of a root file system tar: type, permission bits, owner, link target, content digest. */
async function readTree(tar: Readable): Promise<Map<string, TreeEntry>> {
  const entries = new Map<string, TreeEntry>();
  const parser = new Parser({
    onReadEntry: (entry: ReadEntry) => {
      const path = entry.path.replace(/^\.?\//, '').replace(/\/$/, '');
      const hash = createHash('sha256');
      entry.on('data', (d: Buffer) => hash.update(d));
      entry.on('end', () => {
        if (path === '' || path === '.' || containerOnly.test(path)) return;
        entries.set(path, {
          type: entry.type,
          mode: ((entry.mode ?? 0) & 0o7777).toString(8),
          uid: entry.uid ?? 0,
          gid: entry.gid ?? 0,
          ...(entry.linkpath ? { link: entry.linkpath } : {}),
          ...(entry.type === 'File' || entry.type === 'OldFile' ? { sha256: hash.digest('hex') } : {}),
        });
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    parser.on('end', resolve);
    parser.on('error', reject);
    tar.on('error', reject);
    tar.pipe(parser);
  });
  return entries;
}

async function context(files: Record<string, string>): Promise<string> {
  const ctx = join(dir, 'ctx');
  for (const [name, content] of Object.entries(files)) {
    await mkdir(dirname(join(ctx, name)), { recursive: true });
    await writeFile(join(ctx, name), content);
  }
  return ctx;
}

const configFields = ['Env', 'Cmd', 'Entrypoint', 'WorkingDir', 'User', 'ExposedPorts', 'Volumes', 'Labels', 'StopSignal', 'Healthcheck'] as const;

describe.skipIf(unavailable)('the same Dockerfile built by docker and by Berth', () => {
  it('gives the same files and the same image config', async () => {
    const ctx = await context({
      Dockerfile: [
        `FROM ${base} AS tools`,
        'RUN mkdir -p /opt/tool && echo tool > /opt/tool/bin && chmod 4755 /opt/tool/bin',
        `FROM ${base}`,
        'ARG VERSION=1.0',
        'ENV APP_HOME=/srv/app PATH=/srv/app/bin:$PATH',
        'LABEL org.example.version=$VERSION maintainer="someone"',
        'RUN mkdir -p $APP_HOME/data && echo "v$VERSION" > $APP_HOME/version && ln -s version $APP_HOME/current \\',
        '    && chown -R 1000:1000 $APP_HOME/data && rm /etc/group && chmod 700 /root && touch /etc/created-by-run',
        'COPY single.txt $APP_HOME/',
        'COPY dir/ $APP_HOME/dir/',
        'COPY dir $APP_HOME/copied',
        'COPY single.txt dir/nested/deep.txt /multi/',
        'COPY --chown=1000:1000 dir/nested /owned/',
        'COPY link.txt /links/',
        'ADD bundle.tar.gz /unpacked/',
        'COPY --from=tools /opt/tool /opt/tool',
        'WORKDIR $APP_HOME/work',
        'RUN echo working > here.txt',
        'USER 1000:1000',
        'EXPOSE 8080 53/udp',
        'VOLUME ["/srv/app/data"]',
        'STOPSIGNAL SIGQUIT',
        'HEALTHCHECK --interval=30s --timeout=3s --retries=2 CMD test -f /srv/app/version',
        'ENTRYPOINT ["/bin/sh", "-c"]',
        'CMD ["cat /srv/app/version"]',
      ].join('\n'),
      '.dockerignore': 'ignored/\n**/*.tmp\n',
      'single.txt': 'single\n',
      'dir/a.txt': 'a\n',
      'dir/nested/deep.txt': 'deep\n',
      'dir/skip.tmp': 'temporary\n',
      'ignored/secret.txt': 'secret\n',
    });
    await chmod(join(ctx, 'dir/a.txt'), 0o640);
    await symlink('single.txt', join(ctx, 'link.txt'));
    await mkdir(join(ctx, 'dir/empty'));
    const tarDir = join(dir, 'tarsrc');
    await mkdir(join(tarDir, 'pkg/sub'), { recursive: true });
    await writeFile(join(tarDir, 'pkg/file'), 'from the archive\n');
    await writeFile(join(tarDir, 'pkg/sub/x'), 'x\n');
    await run('tar', ['-C', tarDir, '--owner=1234', '--group=4321', '-czf', join(ctx, 'bundle.tar.gz'), 'pkg']);

    const dockerBuild = await docker(['build', '-q', '-t', 'diff:docker', ctx]);
    expect(dockerBuild.stderr).not.toMatch(/error/i);
    expect(dockerBuild.code).toBe(0);

    const operation = buildImage({ context: { dir: ctx }, images, snapshotter, runtime, registry: client, workDir: join(dir, 'work'), tags: ['diff:berth'] });
    for await (const _ of operation) void _;
    const result = await operation.result;

    const created = await docker(['create', 'diff:docker']);
    const container = created.stdout.toString().trim();
    const exported = spawn('docker', ['-H', dockerd.host, 'export', container], { stdio: ['ignore', 'pipe', 'inherit'] });
    const dockerTree = await readTree(exported.stdout);
    await docker(['rm', container]);
    const berthTree = await readTree(await snapshotter.export(chainIds(result.config.rootfs.diff_ids).at(-1)!));

    expect([...berthTree.keys()].sort()).toEqual([...dockerTree.keys()].sort());
    for (const [path, entry] of dockerTree) expect({ path, ...berthTree.get(path) }).toEqual({ path, ...entry });
    // The cases the Dockerfile means to cover are in the trees.
    expect(dockerTree.get('unpacked/pkg/file')).toMatchObject({ uid: 1234, gid: 4321 });
    expect(dockerTree.get('opt/tool/bin')).toMatchObject({ mode: '4755' });
    expect(dockerTree.has('etc/group')).toBe(false);
    expect(dockerTree.has('srv/app/dir/skip.tmp')).toBe(false);

    const inspected = JSON.parse((await docker(['image', 'inspect', 'diff:docker'])).stdout.toString()) as [{ Config: Record<string, unknown> }];
    const berthConfig = (await images.inspect('diff:berth')).config.config as Record<string, unknown>;
    for (const field of configFields) expect({ field, value: berthConfig[field] ?? null }).toEqual({ field, value: inspected[0].Config[field] ?? null });
    expect(berthConfig['Labels']).toMatchObject({ 'org.example.version': '1.0', maintainer: 'someone' });
  });
});

