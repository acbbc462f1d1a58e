import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { link, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startDockerd, dockerdUnavailable, type DockerdRig } from '@berth/tools/dockerd-rig';
import { ImageStore, TarReader, loadImages } from '@berth/store';
import { CopySnapshotter, FsOps, OverlaySnapshotter, UnpackMode, exportDirectory, mountAll, probeOverlay, unmount, unpackLayer } from './index.js';

const run = promisify(execFile);

let dir: string;
const mounted: string[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-snapinterop-'));
});

afterEach(async () => {
  for (const m of mounted.splice(0).reverse()) await unmount(m).catch(() => {});
  await rm(dir, { recursive: true, force: true });
});

/** `path:content-or-link` of every file and link below root, sorted; directories by name. */
async function files(root: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const name of await readdir(join(root, rel), { withFileTypes: true })) {
    const p = rel ? `${rel}/${name.name}` : name.name;
    if (name.isDirectory()) {
      out.push(`${p}/`, ...(await files(root, p)));
    } else if (name.isSymbolicLink()) {
      out.push(`${p} -> ${await readlink(join(root, p))}`);
    } else if (name.isFile()) {
      out.push(`${p}: ${(await readFile(join(root, p))).toString('base64').slice(0, 24)}`);
    }
  }
  return out;
}

describe('exportDirectory', () => {
  it('archives a tree with hardlinks, symlinks and xattrs that unpacks to the same tree', async () => {
    const src = join(dir, 'src');
    await mkdir(join(src, 'a/b'), { recursive: true });
    await writeFile(join(src, 'a/b/file'), 'content');
    await link(join(src, 'a/b/file'), join(src, 'a/hard'));
    await symlink('b/file', join(src, 'a/sym'));
    const ops = await FsOps.start();
    await ops.setXattr(join(src, 'a/b/file'), 'user.tag', Buffer.from([0, 1, 2, 255]));
    const tar = await exportDirectory(src);
    const out = join(dir, 'out');
    await mkdir(out);
    await unpackLayer({ source: tar, target: out, mode: UnpackMode.Copy });
    expect(await files(out)).toEqual(await files(src));
    expect((await ops.getXattr(join(out, 'a/b/file'), 'user.tag'))?.equals(Buffer.from([0, 1, 2, 255]))).toBe(true);
    expect((await stat(join(out, 'a/hard'))).ino).toBe((await stat(join(out, 'a/b/file'))).ino);
    await ops.close();
  });
});

describe('docker-built images', () => {
  let docker: DockerdRig | undefined;
  let skip: string | undefined;
  let overlayOk = false;

  beforeAll(async () => {
    overlayOk = (await probeOverlay(tmpdir())).supported;
    skip = await dockerdUnavailable();
    if (skip) return;
    try {
      docker = await startDockerd({ busyboxTag: 'busybox:rig' });
    } catch (err) {
      skip = `dockerd cannot start here: ${err instanceof Error ? err.message : String(err)}`;
    }
  }, 180_000);

  afterAll(async () => {
    await docker?.stop();
  }, 60_000);

  beforeEach((ctx) => {
    if (skip) {
      console.warn(`docker-built image test skipped: ${skip}`);
      ctx.skip();
    }
  });

  it('unpack to the file system docker itself exports, whiteouts included', async () => {
    const context = join(dir, 'context');
    await mkdir(context);
    await writeFile(
      join(context, 'Dockerfile'),
      [
        'FROM busybox:rig',
        'RUN rm /etc/group /bin/vi && mkdir -p /data/keep /data/drop && echo one > /data/keep/1 && echo two > /data/drop/2 && ln /data/keep/1 /data/keep/hard',
        'RUN rm -rf /data/drop && echo three > /data/keep/3 && ln -s /data/keep/3 /data/link',
        'COPY extra.txt /srv/extra.txt',
      ].join('\n'),
    );
    await writeFile(join(context, 'extra.txt'), 'copied by docker');
    const built = await runDocker(docker!, ['build', '--network', 'none', '-t', 'berth/built:1', context], { DOCKER_BUILDKIT: '0' });
    expect(built.code, built.stderr).toBe(0);
    const archive = join(dir, 'built.tar');
    expect((await docker!.docker(['save', '-o', archive, 'berth/built:1'])).code).toBe(0);

    // What docker says the image's file system is.
    const created = (await docker!.docker(['create', '--network', 'none', 'berth/built:1', 'true'])).stdout.trim();
    const exported = join(dir, 'docker-export.tar');
    expect((await docker!.docker(['export', '-o', exported, created])).code).toBe(0);
    const dockerView = join(dir, 'docker-view');
    await mkdir(dockerView);
    await run('tar', ['-C', dockerView, '-xf', exported]);
    // Files docker's init layer adds to every container, not part of the image.
    const image = (list: string[]) => list.filter((f) => !/^(\.dockerenv|etc\/(hosts|resolv\.conf|hostname|mtab)|dev\/|proc\/|sys\/)/.test(f));

    const store = new ImageStore({ root: join(dir, 'store') });
    const [loaded] = await loadImages({ store, source: createReadStream(archive) });
    const details = await store.inspect(loaded!.record.id);
    expect(details.manifest.layers.length).toBeGreaterThanOrEqual(3);
    const drivers = [new CopySnapshotter({ root: join(dir, 'copy') }), ...(overlayOk ? [new OverlaySnapshotter({ root: join(dir, 'overlay') })] : [])];
    for (const snapshots of drivers) {
      const { chainId } = await snapshots.unpack({ content: store.content, layers: details.manifest.layers, diffIds: details.config.rootfs.diff_ids });
      const view = join(dir, `view-${snapshots.driver}`);
      await mkdir(view);
      await mountAll(await snapshots.view(chainId!), view);
      mounted.push(view);
      expect(image(await files(view)), snapshots.driver).toEqual(image(await files(dockerView)));
      expect(await readFile(join(view, 'srv/extra.txt'), 'utf8')).toBe('copied by docker');
      await expect(readFile(join(view, 'etc/group'))).rejects.toMatchObject({ code: 'ENOENT' });
      const entries: string[] = [];
      await pipeline(
        Readable.from([await streamBytes(await snapshots.export(chainId!))]),
        new TarReader((e) => void entries.push(e.path)),
      );
      expect(entries).toContain('data/keep/3');
      expect(entries).not.toContain('data/drop/');
    }
  });
});

async function streamBytes(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function runDocker(rig: DockerdRig, args: string[], env: Record<string, string>): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile('docker', ['-H', rig.host, ...args], { env: { ...process.env, ...env }, maxBuffer: 16 << 20 }, (err, _stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr });
    });
  });
}
