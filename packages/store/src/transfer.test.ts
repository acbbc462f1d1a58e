import { execFile } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startDockerd, dockerdUnavailable, type DockerdRig } from '@berth/tools/dockerd-rig';
import { makeBusyboxRootfs } from '@berth/tools/rootfs';
import { MediaType, digestOf, type Digest } from '@berth/oci';
import {
  ArchiveFormat,
  ImageStore,
  TarEntryType,
  TarReader,
  applyImageChanges,
  importImage,
  loadImages,
  packTar,
  saveImages,
  type TarEntry,
  type TarInput,
} from './index.js';

const run = promisify(execFile);

let dir: string;
let store: ImageStore;
let rootfsTar: Buffer;

beforeAll(async () => {
  const tmp = await mkdtemp(join(tmpdir(), 'berth-rootfs-'));
  await makeBusyboxRootfs(tmp);
  const { stdout } = await run('tar', ['-C', tmp, '--numeric-owner', '-cf', '-', '.'], { encoding: 'buffer', maxBuffer: 64 << 20 });
  rootfsTar = stdout;
  await rm(tmp, { recursive: true, force: true });
});

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-transfer-'));
  store = new ImageStore({ root: join(dir, 'root') });
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function bytes(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function importBusybox(s: ImageStore, reference = 'busybox:berth', changes: string[] = ['CMD ["sh"]']) {
  return importImage({ store: s, source: Readable.from([gzipSync(rootfsTar)]), reference, changes, message: 'from the test' });
}

describe('applyImageChanges', () => {
  it('applies the instructions docker import and commit accept', () => {
    const config = applyImageChanges({ Env: ['PATH=/bin', 'A=0'], WorkingDir: '/srv' }, [
      'CMD ["sh", "-c", "echo hi"]',
      'ENTRYPOINT /entry.sh --flag',
      'ENV A=1 B="two words"',
      'ENV LEGACY value with spaces',
      'EXPOSE 80 53/udp 8000-8002',
      'LABEL org.example="x y" other=z',
      'VOLUME ["/data", "/logs"]',
      'WORKDIR app',
      'USER 1000:1000',
      'STOPSIGNAL SIGINT',
      'onbuild RUN make',
    ]);
    expect(config).toEqual({
      Env: ['PATH=/bin', 'A=1', 'B=two words', 'LEGACY=value with spaces'],
      WorkingDir: '/srv/app',
      Cmd: ['sh', '-c', 'echo hi'],
      Entrypoint: ['/bin/sh', '-c', '/entry.sh --flag'],
      ExposedPorts: { '80/tcp': {}, '53/udp': {}, '8000-8002/tcp': {} },
      Labels: { 'org.example': 'x y', other: 'z' },
      Volumes: { '/data': {}, '/logs': {} },
      User: '1000:1000',
      StopSignal: 'SIGINT',
      OnBuild: ['RUN make'],
    });
    expect(() => applyImageChanges({}, ['RUN make'])).toThrowError(/RUN is not a valid change command/);
    expect(() => applyImageChanges({}, ['EXPOSE http'])).toThrowError(/not a port/);
    expect(() => applyImageChanges({}, ['ENV A="open'])).toThrowError(/unterminated quote/);
  });
});

describe('importImage', () => {
  it('makes a one-layer image of a root file system with changes and a message', async () => {
    const record = await importBusybox(store, 'busybox:berth', ['CMD ["sh"]', 'ENV A=1', 'EXPOSE 8080', 'WORKDIR /work']);
    expect(record.repoTags).toEqual(['busybox:berth']);
    const details = await store.inspect('busybox:berth');
    expect(details.config.config).toEqual({ Cmd: ['sh'], Env: ['A=1'], ExposedPorts: { '8080/tcp': {} }, WorkingDir: '/work' });
    expect(details.config.rootfs.diff_ids).toEqual([digestOf(rootfsTar)]);
    expect(details.config.comment).toBe('from the test');
    expect(details.config.history).toEqual([{ created: details.config.created, comment: 'from the test' }]);
    expect(details.manifest.layers[0]!.mediaType).toBe(MediaType.OciLayerGzip);
    const history = await store.history('busybox:berth');
    expect(history).toHaveLength(1);
    expect(history[0]!.comment).toBe('from the test');
  });

  it('takes an uncompressed tar and names the default message after the source', async () => {
    const record = await importImage({ store, source: Readable.from([rootfsTar]), sourceName: 'http://example/rootfs.tar' });
    expect(record.dangling).toBe(true);
    expect((await store.inspect(record.id)).config.comment).toBe('Imported from http://example/rootfs.tar');
  });

  it('refuses what is not a tar, and bad changes, keeping nothing', async () => {
    await expect(importImage({ store, source: Readable.from([Buffer.from('not a tar at all'.repeat(100))]), reference: 'bad:1' })).rejects.toMatchObject({
      code: 'ERR_INVALID_TAR',
    });
    await expect(importBusybox(store, 'bad:2', ['RUN rm -rf /'])).rejects.toMatchObject({ code: 'ERR_INVALID_CHANGE' });
    expect(await store.list()).toEqual([]);
    expect((await store.gc()).removedBlobs).toEqual([]);
  });
});

describe('save and load', () => {
  for (const format of [ArchiveFormat.Docker, ArchiveFormat.Oci]) {
    it(`round-trips images through a ${format} archive with digests intact`, async () => {
      const a = await importBusybox(store, 'busybox:berth');
      await store.tag('busybox:berth', 'localhost:5000/me/app:1');
      const b = await importBusybox(store, 'other:1', ['CMD ["echo"]']);
      const archive = await bytes(await saveImages({ store, images: ['busybox:berth', 'localhost:5000/me/app:1', b.id], format }));
      const files = await listTar(archive);
      expect(files).toEqual(expect.arrayContaining(['blobs/', 'blobs/sha256/', 'index.json', 'oci-layout']));
      if (format === ArchiveFormat.Docker) expect(files).toEqual(expect.arrayContaining(['manifest.json', 'repositories']));
      else expect(files).not.toContain('manifest.json');

      const other = new ImageStore({ root: join(dir, 'other') });
      const loaded = await loadImages({ store: other, source: Readable.from([archive]) });
      expect(loaded.map((l) => [l.record.id, [...l.names].sort()])).toEqual([
        [a.id, ['busybox:berth', 'localhost:5000/me/app:1']],
        [b.id, []],
      ]);
      const copy = await other.inspect('localhost:5000/me/app:1');
      expect(copy.manifestDigest).toBe(a.manifestDigest);
      expect(copy.repoTags).toEqual(['busybox:berth', 'localhost:5000/me/app:1']);
      expect((await other.resolve(b.id)).dangling).toBe(true);
    });
  }

  it('saves every tag of a repository named without a tag', async () => {
    await importBusybox(store, 'repo:1');
    await store.tag('repo:1', 'repo:2');
    await importBusybox(store, 'elsewhere:1', ['CMD ["x"]']);
    const archive = await bytes(await saveImages({ store, images: ['repo'] }));
    const manifest = JSON.parse(await tarFile(archive, 'manifest.json'));
    expect(manifest.map((m: { RepoTags: string[] }) => m.RepoTags)).toEqual([['repo:1', 'repo:2']]);
  });

  it('loads the docker archive layout before v25: <id>/layer.tar, <id>.json, shared layers as symlinks', async () => {
    const layer = rootfsTar;
    const config = Buffer.from(
      JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['sh'] }, rootfs: { type: 'layers', diff_ids: [digestOf(layer), digestOf(layer)] } }),
    );
    const configName = `${digestOf(config).slice(7)}.json`;
    const file = (path: string, body: Buffer): TarInput => ({ entry: { path, type: TarEntryType.File, size: body.length, mode: 0o644, uid: 0, gid: 0, mtime: 0 }, body });
    const link: TarEntry = { path: 'bbb/layer.tar', type: TarEntryType.Symlink, size: 0, mode: 0o777, uid: 0, gid: 0, mtime: 0, linkpath: '../aaa/layer.tar' };
    const manifest = Buffer.from(JSON.stringify([{ Config: configName, RepoTags: ['old:style'], Layers: ['aaa/layer.tar', 'bbb/layer.tar'] }]));
    const archive = await bytes(packTar([file('aaa/VERSION', Buffer.from('1.0')), file('aaa/layer.tar', layer), { entry: link }, file(configName, config), file('manifest.json', manifest)]));
    const [loaded] = await loadImages({ store, source: Readable.from([gzipSync(archive)]) });
    expect(loaded!.names).toEqual(['old:style']);
    expect(loaded!.record.id).toBe(digestOf(config));
    const details = await store.inspect('old:style');
    expect(details.manifest.layers.map((l) => [l.mediaType, l.digest])).toEqual([
      [MediaType.OciLayer, digestOf(layer)],
      [MediaType.OciLayer, digestOf(layer)],
    ]);
  });

  it('refuses an archive whose blob does not match its name and tags nothing', async () => {
    await importBusybox(store);
    const archive = await bytes(await saveImages({ store, images: ['busybox:berth'] }));
    const layerDigest = (await store.inspect('busybox:berth')).manifest.layers[0]!.digest;
    const corrupt = await rewriteTar(archive, `blobs/sha256/${layerDigest.slice(7)}`, (b) => {
      const c = Buffer.from(b);
      c[c.length - 10] ^= 0xff;
      return c;
    });
    const other = new ImageStore({ root: join(dir, 'other') });
    await expect(loadImages({ store: other, source: Readable.from([corrupt]) })).rejects.toMatchObject({ code: 'ERR_DIGEST_MISMATCH' });
    expect(await other.list()).toEqual([]);
    await expect(loadImages({ store: other, source: Readable.from([Buffer.from('{}')]) })).rejects.toMatchObject({ code: 'ERR_INVALID_TAR' });
  });
});

async function listTar(archive: Buffer): Promise<string[]> {
  const path = join(dir, `list-${Math.random().toString(36).slice(2)}.tar`);
  await writeFile(path, archive);
  const out = await run('tar', ['-tf', path]);
  return out.stdout.trim().split('\n');
}

async function tarFile(archive: Buffer, name: string): Promise<string> {
  const path = join(dir, `read-${Math.random().toString(36).slice(2)}.tar`);
  await writeFile(path, archive);
  return (await run('tar', ['-xOf', path, name], { maxBuffer: 64 << 20 })).stdout;
}

async function rewriteTar(archive: Buffer, name: string, change: (b: Buffer) => Buffer): Promise<Buffer> {
  const entries: TarInput[] = [];
  await pipeline(
    Readable.from([archive]),
    new TarReader((entry) => {
      const chunks: Buffer[] = [];
      return {
        write: (c) => void chunks.push(Buffer.from(c)),
        end: () => {
          const body = Buffer.concat(chunks);
          entries.push({ entry, ...(entry.type === TarEntryType.File ? { body: entry.path === name ? change(body) : body } : {}) });
        },
      };
    }),
  );
  return bytes(packTar(entries));
}

describe('skopeo interoperability', () => {
  const full = 'docker.io/library/busybox:berth';

  it('reads the store as an OCI layout: inspect and copy to dir:', async () => {
    const record = await importBusybox(store);
    const { stdout } = await run('skopeo', ['inspect', `oci:${store.root}:${full}`]);
    const inspected = JSON.parse(stdout);
    expect(inspected.Digest).toBe(record.manifestDigest);
    expect(inspected.Layers).toEqual((await store.inspect(record.id)).manifest.layers.map((l) => l.digest));
    const out = join(dir, 'dir-copy');
    await run('skopeo', ['copy', `oci:${store.root}:${full}`, `dir:${out}`]);
    const files = await readdir(out);
    expect(files).toEqual(expect.arrayContaining(['manifest.json', 'version', record.id.slice(7)]));
  });

  it('loads what skopeo wrote: an oci: layout, a docker-archive and tags it wrote into the store itself', async () => {
    const record = await importBusybox(store);
    const layout = join(dir, 'layout');
    await run('skopeo', ['copy', `oci:${store.root}:${full}`, `oci:${layout}:localhost/copied:1`]);
    const other = new ImageStore({ root: join(dir, 'other') });
    const [fromLayout] = await loadImages({ store: other, dir: layout });
    expect(fromLayout!.names).toEqual(['localhost/copied:1']);
    expect(fromLayout!.record.id).toBe(record.id);

    const dockerArchive = join(dir, 'docker.tar');
    await run('skopeo', ['copy', `oci:${store.root}:${full}`, `docker-archive:${dockerArchive}:skopeo/made:2`]);
    const [fromArchive] = await loadImages({ store: other, source: createReadStream(dockerArchive) });
    expect(fromArchive!.names).toEqual(['skopeo/made:2']);
    expect(fromArchive!.record.id).toBe(record.id);

    await run('skopeo', ['copy', `oci:${layout}:localhost/copied:1`, `oci:${store.root}:docker.io/library/via-skopeo:3`]);
    expect((await store.resolve('via-skopeo:3')).id).toBe(record.id);
    await store.tag('via-skopeo:3', 'after:skopeo');
    const index = JSON.parse(await readFile(join(store.root, 'index.json'), 'utf8'));
    expect(index.manifests.every((m: { annotations: Record<string, string> }) => m.annotations['io.berth.image.id'] === record.id)).toBe(true);
  });

  it('writes archives skopeo reads as docker-archive: and oci-archive:', async () => {
    const record = await importBusybox(store);
    const dockerTar = join(dir, 'save-docker.tar');
    await pipeline(await saveImages({ store, images: ['busybox:berth'] }), createWriteStream(dockerTar));
    // skopeo finds the image by the RepoTags of manifest.json and serves its layers uncompressed.
    const viaDocker = JSON.parse((await run('skopeo', ['inspect', `docker-archive:${dockerTar}:busybox:berth`])).stdout);
    expect(viaDocker.Layers).toEqual((await store.inspect(record.id)).config.rootfs.diff_ids);
    const copied = join(dir, 'from-docker-archive');
    await run('skopeo', ['copy', `docker-archive:${dockerTar}:busybox:berth`, `dir:${copied}`]);
    expect(await readdir(copied)).toContain(record.id.slice(7));
    const ociTar = join(dir, 'save-oci.tar');
    await pipeline(await saveImages({ store, images: ['busybox:berth'], format: ArchiveFormat.Oci }), createWriteStream(ociTar));
    const viaOci = JSON.parse((await run('skopeo', ['inspect', `oci-archive:${ociTar}:berth`])).stdout);
    expect(viaOci.Digest).toBe(record.manifestDigest);
  });
});

describe('docker interoperability', () => {
  let docker: DockerdRig | undefined;
  let skip: string | undefined;

  beforeAll(async () => {
    skip = await dockerdUnavailable();
    if (skip) return;
    try {
      docker = await startDockerd();
    } catch (err) {
      skip = `dockerd cannot start here: ${err instanceof Error ? err.message : String(err)}`;
    }
  }, 120_000);

  afterAll(async () => {
    await docker?.stop();
  }, 60_000);

  beforeEach((ctx) => {
    if (skip) {
      console.warn(`docker interoperability skipped: ${skip}`);
      ctx.skip();
    }
  });

  it('docker loads what Berth saves and runs it', async () => {
    await importBusybox(store, 'berth/saved:1', ['CMD ["echo", "hello from berth"]']);
    const archive = join(dir, 'to-docker.tar');
    await pipeline(await saveImages({ store, images: ['berth/saved:1'] }), createWriteStream(archive));
    const load = await docker!.docker(['load', '-i', archive]);
    expect(load.code, load.stderr).toBe(0);
    expect(load.stdout).toContain('Loaded image: berth/saved:1');
    const inspect = JSON.parse((await docker!.docker(['image', 'inspect', 'berth/saved:1'])).stdout);
    expect(inspect[0].Id).toBe((await store.resolve('berth/saved:1')).id);
    const ran = await docker!.docker(['run', '--rm', '--network', 'none', 'berth/saved:1']);
    expect(ran.stdout.trim(), ran.stderr).toBe('hello from berth');
  });

  it('loads what docker saves', async () => {
    const rootfs = join(dir, 'rootfs.tar');
    await writeFile(rootfs, rootfsTar);
    const imported = await docker!.docker(['import', '-c', 'CMD ["sh"]', '-m', 'docker made me', rootfs, 'made/by-docker:7']);
    expect(imported.code, imported.stderr).toBe(0);
    await mkdir(join(dir, 'saved'), { recursive: true });
    const archive = join(dir, 'saved', 'from-docker.tar');
    const saved = await docker!.docker(['save', '-o', archive, 'made/by-docker:7']);
    expect(saved.code, saved.stderr).toBe(0);
    const [loaded] = await loadImages({ store, source: createReadStream(archive) });
    expect(loaded!.names).toEqual(['made/by-docker:7']);
    const dockerId = (await docker!.docker(['image', 'inspect', '-f', '{{.Id}}', 'made/by-docker:7'])).stdout.trim();
    expect(loaded!.record.id).toBe(dockerId as Digest);
    const details = await store.inspect('made/by-docker:7');
    expect(details.config.config?.Cmd).toEqual(['sh']);
    expect(details.config.rootfs.diff_ids).toHaveLength(1);
    expect(details.manifest.layers[0]!.digest).toBe(details.config.rootfs.diff_ids[0]);
  });
});
