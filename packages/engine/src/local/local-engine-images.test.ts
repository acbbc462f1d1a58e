import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTextLogger } from '@berth/log';
import { NetworkManager } from '@berth/network';
import { packTar, TarEntryType } from '@berth/store';
import { freePort, startRegistry, type RegistryRig } from '@berth/tools/registry-rig';
import { buildBusyboxImage, pushBusyboxImage, tarOfDirectory } from '@berth/tools/test-images';
import { freeSubnet } from '@berth/tools/free-subnets';
import type { JsonMessage } from '../types/common.js';
import type { EventMessage } from '../types/system.js';
import { LocalEngine } from './local-engine.js';

// Images through the engine: pull from and push to a real registry (docker-registry, with
// basic auth), docker's rmi semantics with containers, save/load, import, history, prune, and
// events recorded by one engine read back from another.

const tag = `i${process.pid.toString(36)}`;
let dir = '';
let engine: LocalEngine;
let registry: RegistryRig;
const network = { defaultBridge: `bt${tag}0`, ruleTag: tag, defaultSubnet: '', bridgePrefix: `bt${tag}`, vethPrefix: `vt${tag}` };

async function drain(messages: AsyncIterable<JsonMessage>): Promise<JsonMessage[]> {
  const out: JsonMessage[] = [];
  for await (const m of messages) out.push(m);
  return out;
}




beforeAll(async () => {
  network.defaultSubnet = await freeSubnet();
  dir = await mkdtemp(join(tmpdir(), 'berth-lei-'));
  registry = await startRegistry({ auth: 'basic' });
  await writeFile(join(dir, 'config.json'), '{}');
  engine = new LocalEngine({
    ...(process.env['BERTH_TEST_DEBUG'] ? { logger: createTextLogger({ write: (l) => process.stderr.write(l), level: 'debug' }) } : {}),
    root: join(dir, 'root'),
    runRoot: join(dir, 'run'),
    network,
    dockerConfigPath: join(dir, 'config.json'),
    ...(process.env['BERTH_TEST_RUNTIME'] ? { runtime: process.env['BERTH_TEST_RUNTIME'] } : {}),
  });
  await pushBusyboxImage(registry, 'library/busybox:1.36', { layers: 2 });
});

afterAll(async () => {
  if (engine) {
    for (const c of await engine.listContainers({ all: true })) await engine.removeContainer(c.Id, { force: true }).catch(() => {});
    await engine.close();
    await new NetworkManager({ ...network, stateDir: join(dir, 'root', 'network') }).removeAll();
  }
  await registry?.stop();
  // Nothing may stay mounted; what did is unmounted before the directory goes, then reported.
  const leaked = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(dir));
  for (const m of leaked.reverse()) await promisify(execFile)('umount', ['-l', m]).catch(() => {});
  await rm(dir, { recursive: true, force: true });
  expect(leaked).toEqual([]);
});

describe('LocalEngine images', () => {
  it('logs in, pulls with docker progress messages, runs, tags and pushes back', async () => {
    const auth = { username: 'berth', password: registry.users['berth']!, serveraddress: registry.host };
    await expect(engine.login({ ...auth, password: 'wrong' })).rejects.toMatchObject({ kind: 'PermissionDenied' });
    expect(await engine.login(auth)).toMatchObject({ Status: 'Login Succeeded' });
    const ref = `${registry.host}/library/busybox`;
    const messages = await drain(engine.pullImage({ fromImage: ref, tag: '1.36', auth }));
    const statuses = messages.map((m) => m.status ?? '');
    expect(statuses[0]).toBe('Pulling from library/busybox');
    expect(statuses).toContain('Pull complete');
    expect(statuses.some((s) => s.startsWith('Digest: sha256:'))).toBe(true);
    expect(statuses.at(-1)).toBe(`Status: Downloaded newer image for ${ref}:1.36`);
    expect(messages.some((m) => m.status === 'Downloading' && m.progressDetail?.total && m.progress?.startsWith('['))).toBe(true);
    const again = await drain(engine.pullImage({ fromImage: `${ref}:1.36`, auth }));
    expect(again.at(-1)?.status).toBe(`Status: Image is up to date for ${ref}:1.36`);
    // As docker: a reference filter with a tag keeps only that name (its digest reference does not match it).
    const [tagged] = await engine.listImages({ filters: { reference: [`${ref}:1.36`] } });
    expect(tagged).toMatchObject({ RepoTags: [`${ref}:1.36`], RepoDigests: [] });
    const [image] = await engine.listImages({ filters: { reference: [ref] } });
    expect(image!.RepoTags).toEqual([`${ref}:1.36`]);
    expect(image!.RepoDigests[0]).toMatch(new RegExp(`^${ref.replace(/\./g, '\\.')}@sha256:[0-9a-f]{64}$`));
    expect(image!.Size).toBeGreaterThan(1_000_000);

    const { Id } = await engine.createContainer({ Image: `${ref}:1.36`, Cmd: ['cat', '/etc/layer-1'], HostConfig: { NetworkMode: 'none' } });
    const wait = await engine.waitContainer(Id, { condition: 'next-exit' });
    await engine.startContainer(Id);
    expect((await wait.result).StatusCode).toBe(0);

    await engine.tagImage(`${ref}:1.36`, { repo: `${registry.host}/mine/box`, tag: 'v2' });
    const pushed = await drain(engine.pushImage(`${registry.host}/mine/box`, { tag: 'v2', auth }));
    expect(pushed[0]!.status).toBe(`The push refers to repository [${registry.host}/mine/box]`);
    const aux = pushed.find((m) => m.aux)?.aux;
    expect(aux).toMatchObject({ Tag: 'v2', Digest: expect.stringMatching(/^sha256:/) });
    const manifest = await fetch(`${registry.url}/v2/mine/box/manifests/v2`, {
      headers: { authorization: `Basic ${Buffer.from(`berth:${registry.users['berth']}`).toString('base64')}`, accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(manifest.status).toBe(200);
    await engine.removeContainer(Id);
  });

  it('follows docker rmi: untag, refuse an image a container uses, force, prune', async () => {
    const image = await buildBusyboxImage({ seed: 'rmi' });
    let loaded = '';
    for await (const m of engine.loadImages(tarOfDirectory(image.dir))) loaded += m.stream ?? '';
    await image.remove();
    const id = /sha256:[0-9a-f]{64}/.exec(loaded)![0];
    await engine.tagImage(id, { repo: 'one', tag: 'a' });
    await engine.tagImage(id, { repo: 'two', tag: 'b' });
    expect(await engine.removeImage('two:b')).toEqual([{ Untagged: 'two:b' }]);
    const { Id } = await engine.createContainer({ Image: 'one:a', Cmd: ['true'], HostConfig: { NetworkMode: 'none' } });
    await expect(engine.removeImage(id)).rejects.toMatchObject({ kind: 'Conflict', message: `conflict: unable to delete ${id.slice(7, 19)} (must be forced) - image is being used by stopped container ${Id.slice(0, 12)}` });
    await expect(engine.removeImage('one:a')).rejects.toMatchObject({
      kind: 'Conflict',
      message: `conflict: unable to remove repository reference "one:a" (must force) - container ${Id.slice(0, 12)} is using its referenced image ${id.slice(7, 19)}`,
    });
    // Forced, a stopped container's image goes as docker does; the container still starts.
    expect(await engine.removeImage('one:a', { force: true })).toEqual([{ Untagged: 'one:a' }, { Deleted: id }]);
    const wait = await engine.waitContainer(Id, { condition: 'next-exit' });
    await engine.startContainer(Id);
    expect((await wait.result).StatusCode).toBe(0);
    await engine.removeContainer(Id);

    // A dangling image a container uses survives prune until the container goes.
    const second = await buildBusyboxImage({ seed: 'prune' });
    let text = '';
    for await (const m of engine.loadImages(tarOfDirectory(second.dir))) text += m.stream ?? '';
    await second.remove();
    const other = /sha256:[0-9a-f]{64}/.exec(text)![0];
    await engine.tagImage(other, { repo: 'moving', tag: 'latest' });
    const user = await engine.createContainer({ Image: 'moving', Cmd: ['true'], HostConfig: { NetworkMode: 'none' } });
    const third = await buildBusyboxImage({ seed: 'prune-2' });
    text = '';
    for await (const m of engine.loadImages(tarOfDirectory(third.dir))) text += m.stream ?? '';
    await third.remove();
    await engine.tagImage(/sha256:[0-9a-f]{64}/.exec(text)![0], { repo: 'moving', tag: 'latest' });
    expect((await engine.listImages({ filters: { dangling: ['true'] } })).map((i) => i.Id)).toContain(other);
    expect((await engine.pruneImages()).ImagesDeleted).toBeNull();
    await engine.removeContainer(user.Id);
    expect((await engine.pruneImages()).ImagesDeleted).toEqual([{ Deleted: other }]);
    await expect(engine.inspectImage(other)).rejects.toMatchObject({ kind: 'NotFound', message: `No such image: ${other}` });
  });

  it('saves and loads an image, imports a root file system with changes, and shows history', async () => {
    const [pulled] = await engine.listImages({ filters: { reference: [`${registry.host}/library/busybox:1.36`] } });
    const archive = await engine.saveImages([`${registry.host}/library/busybox:1.36`]);
    const chunks: Buffer[] = [];
    for await (const c of archive) chunks.push(c as Buffer);
    await engine.removeImage(`${registry.host}/mine/box:v2`);
    await engine.removeImage(`${registry.host}/library/busybox:1.36`);
    const loaded = await drain(engine.loadImages(Readable.from(Buffer.concat(chunks))));
    expect(loaded.map((m) => m.stream)).toEqual([`Loaded image: ${registry.host}/library/busybox:1.36\n`]);
    expect((await engine.inspectImage(`${registry.host}/library/busybox:1.36`)).Id).toBe(pulled!.Id);

    const rootfs = packTar(
      (async function* () {
        yield { entry: { path: 'hello', type: TarEntryType.File, size: 6, mode: 0o755, uid: 0, gid: 0, mtime: 1_700_000_000 }, body: Buffer.from('hello\n') };
      })(),
    );
    const imported = await drain(engine.importImage({ source: Readable.from(rootfs), repo: 'imported', tag: 'v1', message: 'from a test', changes: ['CMD ["/hello"]', 'ENV A=b'] }));
    const importedId = imported.at(-1)!.status!;
    expect(importedId).toMatch(/^sha256:[0-9a-f]{64}$/);
    const info = await engine.inspectImage('imported:v1');
    expect(info).toMatchObject({ Id: importedId, Comment: 'from a test' });
    expect(info.Config.Cmd).toEqual(['/hello']);
    expect(info.Config.Env).toContain('A=b');
    const history = await engine.imageHistory(`${registry.host}/library/busybox:1.36`);
    expect(history.map((h) => h.CreatedBy)).toEqual(['berth test layer 1', 'berth test layer 0']);
    expect(history[0]!.Id).toBe(pulled!.Id);
    expect(history[1]!.Id).toBe('<missing>');
  });

  it('records events that another engine on the same root reads with since and filters', async () => {
    const since = Date.now() / 1000;
    await engine.createVolume({ Name: `ev-${tag}`, Labels: { test: tag } });
    await engine.removeVolume(`ev-${tag}`);
    const other = new LocalEngine({ root: join(dir, 'root'), runRoot: join(dir, 'run'), network });
    const seen: EventMessage[] = [];
    for await (const ev of other.events({ since, until: Date.now() / 1000 + 0.5, filters: { type: ['volume'] } })) seen.push(ev);
    expect(seen.map((e) => `${e.Action} ${e.Actor.ID}`)).toEqual([`create ev-${tag}`, `destroy ev-${tag}`]);
    // Live: an event made after the reader started arrives.
    const controller = new AbortController();
    const live = (async () => {
      for await (const ev of other.events({ signal: controller.signal, filters: { event: ['tag'] } })) return ev;
      return undefined;
    })();
    await new Promise((r) => setTimeout(r, 100));
    await engine.tagImage('imported:v1', { repo: 'imported', tag: 'v2' });
    const ev = await live;
    controller.abort();
    expect(ev).toMatchObject({ Type: 'image', Action: 'tag', Actor: { Attributes: { name: 'imported:v2' } } });
    await other.close();
  });

  it('builds from a context tar with docker\'s step messages, runs RUN on the bridge, caches and prunes', { timeout: 120_000 }, async () => {
    const dockerfile = `FROM ${registry.host}/library/busybox:1.36\nARG WHO=nobody\nRUN echo "hi $WHO" > /greeting && ip route | grep -c default > /routes\nCMD ["cat", "/greeting", "/routes"]\n`;
    const context = () =>
      Readable.from(
        packTar(
          (async function* () {
            yield { entry: { path: 'Dockerfile', type: TarEntryType.File, size: Buffer.byteLength(dockerfile), mode: 0o644, uid: 0, gid: 0, mtime: 1_700_000_000 }, body: Buffer.from(dockerfile) };
          })(),
        ),
      );
    const authConfigs = { [registry.host]: { username: 'berth', password: registry.users['berth']!, serveraddress: registry.host } };
    const messages = await drain(engine.buildImage(context(), { tags: ['built:1'], buildArgs: { WHO: 'engine' }, authConfigs }));
    const text = messages.map((m) => m.stream ?? '').join('');
    expect(text).toContain(`Step 1/4 : FROM ${registry.host}/library/busybox:1.36`);
    expect(text).toContain('Step 3/4 : RUN echo "hi $WHO" > /greeting');
    expect(text).toContain('Successfully tagged built:1');
    const id = messages.find((m) => m.aux)?.aux?.['ID'];
    expect(id).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect((await engine.inspectImage('built:1')).Id).toBe(id);
    const { Id } = await engine.createContainer({ Image: 'built:1', HostConfig: { NetworkMode: 'none' } });
    const stream = await engine.attachContainer(Id, { stream: true, stdout: true });
    const wait = await engine.waitContainer(Id, { condition: 'next-exit' });
    await engine.startContainer(Id);
    let out = '';
    for await (const c of stream.output) out += c.data.toString();
    expect(out).toBe('hi engine\n1\n');
    await wait.result;
    await engine.removeContainer(Id);
    const again = (await drain(engine.buildImage(context(), { tags: ['built:1'], buildArgs: { WHO: 'engine' }, authConfigs }))).map((m) => m.stream ?? '').join('');
    expect(again).toContain(' ---> Using cache');
    await expect(drain(engine.buildImage(Readable.from(packTar((async function* () {
      const df = `FROM ${registry.host}/library/busybox:1.36\nRUN exit 3\n`;
      yield { entry: { path: 'Dockerfile', type: TarEntryType.File, size: df.length, mode: 0o644, uid: 0, gid: 0, mtime: 1_700_000_000 }, body: Buffer.from(df) };
    })())), { authConfigs }))).rejects.toMatchObject({ exitCode: 3 });
    // The daemonless CLI's context: the engine reads the directory, and the tar stream is never read.
    const contextDir = join(dir, 'build-context');
    await mkdir(contextDir);
    await writeFile(join(contextDir, 'Dockerfile'), `FROM ${registry.host}/library/busybox:1.36\nCOPY f.txt /f.txt\n`);
    await writeFile(join(contextDir, 'f.txt'), 'from the directory\n');
    const { directoryContext } = await import('@berth/builder');
    const fromDir = await directoryContext({ dir: contextDir });
    const dirText = (await drain(engine.buildImage(fromDir.stream, { dockerfile: fromDir.dockerfile, tags: ['built:dir'], authConfigs }))).map((m) => m.stream ?? '').join('');
    expect(dirText).toContain('Step 2/2 : COPY f.txt /f.txt');
    expect(dirText).toContain('Successfully tagged built:dir');
    expect(fromDir.stream.readableDidRead).toBe(false);
    expect((await engine.dataUsage({ types: ['build-cache'] })).BuildCache.length).toBeGreaterThan(0);
    const pruned = await engine.pruneBuildCache({ all: true });
    expect(pruned.CachesDeleted?.length).toBeGreaterThan(0);
  });

  it('pulls Docker Hub images through registry mirrors in order, for pull and a build\'s FROM, under the Docker Hub name', async () => {
    const mirror = await startRegistry();
    const mirrored = new LocalEngine({ root: join(dir, 'mirrored-root'), runRoot: join(dir, 'mirrored-run'), network, registryMirrors: [`http://127.0.0.1:${await freePort()}`, mirror.url] });
    try {
      await pushBusyboxImage(mirror, 'library/busybox:mirrored');
      await pushBusyboxImage(mirror, 'library/busybox:base', { seed: 'base' });
      // The first mirror does not answer: the second serves it; Docker Hub is never asked (nor reachable here).
      const messages = await drain(mirrored.pullImage({ fromImage: 'busybox', tag: 'mirrored' }));
      expect(messages.at(-1)?.status).toBe('Status: Downloaded newer image for busybox:mirrored');
      expect((await mirrored.listImages()).flatMap((i) => i.RepoTags)).toEqual(['busybox:mirrored']);
      const context = packTar(
        (async function* () {
          yield { entry: { path: 'Dockerfile', type: TarEntryType.File, size: 36, mode: 0o644, uid: 0, gid: 0, mtime: 1_700_000_000 }, body: Buffer.from('FROM busybox:base\nCMD ["cat", "/x"]\n') };
        })(),
      );
      await drain(mirrored.buildImage(Readable.from(context), { tags: ['from-mirror:1'], networkMode: 'none' }));
      expect((await mirrored.listImages({ filters: { reference: ['busybox'] } })).flatMap((i) => i.RepoTags).sort()).toEqual(['busybox:base', 'busybox:mirrored']);
      expect((await mirrored.inspectImage('from-mirror:1')).Config.Cmd).toEqual(['cat', '/x']);
      expect((await mirrored.info()).RegistryConfig.Mirrors).toHaveLength(2);
    } finally {
      await mirrored.close();
      await mirror.stop();
    }
  });
});
