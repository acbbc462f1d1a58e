import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetworkManager } from '@berth/network';
import { TarReader, packTar, TarEntryType, type TarEntry } from '@berth/store';
import { loadBusyboxImage } from '@berth/tools/test-images';
import { freeSubnet } from '@berth/tools/free-subnets';
import type { ContainerCreateRequest } from '../types/container.js';
import type { OutputChunk } from '../types/stream.js';
import { LocalEngine } from './local-engine.js';

// The container's file system and processes through the engine: docker cp in both directions
// (and no way out of the root), diff, export, commit, top, stats, update.

const tag = `f${process.pid.toString(36)}`;
let dir = '';
let engine: LocalEngine;
const network = { defaultBridge: `bt${tag}0`, ruleTag: tag, defaultSubnet: '', bridgePrefix: `bt${tag}`, vethPrefix: `vt${tag}` };

async function collect(output: AsyncIterable<OutputChunk>): Promise<string> {
  let text = '';
  for await (const c of output) text += c.data.toString();
  return text;
}

async function run(body: ContainerCreateRequest): Promise<{ id: string; code: number; output: string }> {
  const { Id } = await engine.createContainer({ HostConfig: { NetworkMode: 'none' }, ...body });
  const stream = await engine.attachContainer(Id, { stream: true, stdout: true, stderr: true });
  const wait = await engine.waitContainer(Id, { condition: 'next-exit' });
  await engine.startContainer(Id);
  const output = await collect(stream.output);
  return { id: Id, code: (await wait.result).StatusCode, output };
}

async function sleeper(): Promise<string> {
  const { Id } = await engine.createContainer({ Image: 'busybox', Cmd: ['sleep', '120'], HostConfig: { NetworkMode: 'none' } });
  await engine.startContainer(Id);
  return Id;
}

async function tarEntries(stream: Readable): Promise<Map<string, { entry: TarEntry; body: string }>> {
  const out = new Map<string, { entry: TarEntry; body: string }>();
  const reader = new TarReader((entry) => {
    const item = { entry, body: '' };
    out.set(entry.path, item);
    return { write: (chunk: Buffer) => void (item.body += chunk.toString()), end: () => {} };
  });
  await new Promise<void>((resolve, reject) => {
    stream.pipe(reader);
    reader.on('finish', resolve);
    reader.on('error', reject);
    stream.on('error', reject);
  });
  return out;
}

function fileEntry(path: string, body: string, mode = 0o644): { entry: TarEntry; body: Buffer } {
  return { entry: { path, type: TarEntryType.File, size: Buffer.byteLength(body), mode, uid: 1234, gid: 1234, mtime: 1_700_000_000 }, body: Buffer.from(body) };
}



beforeAll(async () => {
  network.defaultSubnet = await freeSubnet();
  dir = await mkdtemp(join(tmpdir(), 'berth-lef-'));
  engine = new LocalEngine({ root: join(dir, 'root'), runRoot: join(dir, 'run'), network });
  await loadBusyboxImage(engine);
});

afterAll(async () => {
  if (!engine) return;
  for (const c of await engine.listContainers({ all: true })) await engine.removeContainer(c.Id, { force: true, volumes: true }).catch(() => {});
  await engine.close();
  await new NetworkManager({ ...network, stateDir: join(dir, 'root', 'network') }).removeAll();
  // Nothing may stay mounted; what did is unmounted before the directory goes, then reported.
  const leaked = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(dir));
  for (const m of leaked.reverse()) await promisify(execFile)('umount', ['-l', m]).catch(() => {});
  await rm(dir, { recursive: true, force: true });
  expect(leaked).toEqual([]);
});

describe('LocalEngine container file systems', () => {
  it('copies into and out of a running container, and a symlink cannot lead out of its root', async () => {
    const id = await sleeper();
    const exec = async (cmd: string) => collect((await engine.startExec((await engine.createExec(id, { Cmd: ['sh', '-c', cmd], AttachStdout: true, AttachStderr: true })).Id, {}))!.output);
    await exec('mkdir -p /srv/in && ln -s / /srv/up && ln -s /etc /srv/etc-link');
    const archive = packTar(
      (async function* () {
        yield fileEntry('hello.txt', 'hi there\n');
        yield { entry: { path: 'sub/', type: TarEntryType.Directory, size: 0, mode: 0o755, uid: 0, gid: 0, mtime: 1_700_000_000 } };
        yield fileEntry('sub/deep.txt', 'deep\n', 0o600);
      })(),
    );
    await engine.putContainerArchive(id, '/srv/in', Readable.from(archive), { copyUIDGID: true });
    expect(await exec('cat /srv/in/hello.txt /srv/in/sub/deep.txt; stat -c "%u %a" /srv/in/sub/deep.txt')).toBe('hi there\ndeep\n1234 600\n');
    // Through the symlink to / the copy lands in the container's /, not the host's.
    const marker = `berth-cp-escape-${tag}`;
    await engine.putContainerArchive(id, '/srv/up/tmp', Readable.from(packTar((async function* () { yield fileEntry(marker, 'x'); })())));
    expect(await exec(`cat /tmp/${marker}`)).toBe('x');
    await expect(stat(`/tmp/${marker}`)).rejects.toMatchObject({ code: 'ENOENT' });
    const s = await engine.statContainerPath(id, '/srv/etc-link');
    expect(s).toMatchObject({ name: 'etc-link', linkTarget: '/etc' });
    expect(s.mode & 2 ** 27).toBeTruthy();
    const dirStat = await engine.statContainerPath(id, '/srv/in/sub');
    expect(dirStat.mode & 2 ** 31).toBeTruthy();
    const got = await engine.getContainerArchive(id, '/srv/in');
    expect(got.stat.name).toBe('in');
    const entries = await tarEntries(got.archive);
    expect(entries.get('in/hello.txt')?.body).toBe('hi there\n');
    expect(entries.get('in/sub/deep.txt')?.entry.uid).toBe(1234);
    // The host's /etc/hostname is not what the link in the container names.
    const viaLink = await tarEntries((await engine.getContainerArchive(id, '/srv/up/etc/passwd')).archive);
    expect(viaLink.get('passwd')?.body).toMatch(/^root:x:0:0:root:\/root:\/bin\/sh\nuser:x:1000/);
    await expect(engine.statContainerPath(id, '/nope')).rejects.toMatchObject({ kind: 'NotFound', message: `Could not find the file /nope in container ${id}` });
    await expect(engine.putContainerArchive(id, '/srv/in/hello.txt', Readable.from(packTar((async function* () { yield fileEntry('x', 'x'); })())))).rejects.toMatchObject({ kind: 'InvalidArgument' });
  });

  it('copies into a stopped container, lists its changes and exports it', async () => {
    const r = await run({ Image: 'busybox', Cmd: ['sh', '-c', 'echo new > /etc/added; rm /bin/ls; echo >> /etc/group'] });
    await engine.putContainerArchive(r.id, '/root', Readable.from(packTar((async function* () { yield fileEntry('copied', 'later\n'); })())));
    const changes = await engine.containerChanges(r.id);
    expect(changes.sort((a, b) => a.Path.localeCompare(b.Path))).toEqual([
      { Path: '/bin', Kind: 0 },
      { Path: '/bin/ls', Kind: 2 },
      { Path: '/etc', Kind: 0 },
      { Path: '/etc/added', Kind: 1 },
      { Path: '/etc/group', Kind: 0 },
      { Path: '/root', Kind: 0 },
      { Path: '/root/copied', Kind: 1 },
    ]);
    const exported = await tarEntries(await engine.exportContainer(r.id));
    expect(exported.get('etc/added')?.body ?? exported.get('./etc/added')?.body).toBe('new\n');
    expect([...exported.keys()].some((k) => /(^|\/)bin\/ls$/.test(k))).toBe(false);
    expect([...exported.keys()].some((k) => /(^|\/)bin\/busybox$/.test(k))).toBe(true);
  });

  it('gives an archive that loses nothing when it is read after tar has finished, and releases its view when dropped', async () => {
    const r = await run({ Image: 'busybox', Cmd: ['sh', '-c', 'echo kept > /etc/late'] });
    // A stopped container is read through a mount of its root that goes once tar has exited.
    const views = async () => (await readdir(join(dir, 'run'))).filter((n) => n.startsWith('view-'));
    const late = await engine.getContainerArchive(r.id, '/etc/late');
    for (let i = 0; i < 500 && (await views()).length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(await views()).toEqual([]);
    expect((await tarEntries(late.archive)).get('late')?.body).toBe('kept\n');
    // One that is never read to its end: destroying it ends tar and unmounts the view.
    const dropped = await engine.getContainerArchive(r.id, '/bin');
    dropped.archive.destroy();
    for (let i = 0; i < 500 && (await views()).length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(await views()).toEqual([]);
  });

  it('commits a container into an image that keeps its files and takes the changes', async () => {
    const r = await run({ Image: 'busybox', Cmd: ['sh', '-c', 'echo committed > /greeting'] });
    const { Id } = await engine.commitContainer({ container: r.id, repo: 'mine/greeter', tag: 'v1', changes: ['CMD ["cat", "/greeting"]', 'ENV WHO=world', 'VOLUME /data'], comment: 'made in a test' });
    const image = await engine.inspectImage('mine/greeter:v1');
    expect(image.Id).toBe(Id);
    expect(image.Config.Cmd).toEqual(['cat', '/greeting']);
    expect(image.Config.Env).toContain('WHO=world');
    expect(image.RootFS.Layers).toHaveLength(2);
    const again = await run({ Image: 'mine/greeter:v1' });
    expect(again.output).toBe('committed\n');
    // The image's VOLUME gives the container an anonymous volume, which rm -v removes.
    const info = await engine.inspectContainer(again.id);
    const volume = info.Mounts.find((m) => m.Destination === '/data');
    expect(volume).toMatchObject({ Type: 'volume', RW: true });
    await engine.removeContainer(again.id, { volumes: true });
    await expect(engine.inspectVolume(volume!.Name!)).rejects.toMatchObject({ kind: 'NotFound' });
    const history = await engine.imageHistory('mine/greeter:v1');
    expect(history[0]).toMatchObject({ Id, Comment: 'made in a test', CreatedBy: 'sh -c echo committed > /greeting' });
  });

  it('lists the processes of a running container and reads its stats, and updates its limits', async () => {
    const { Id } = await engine.createContainer({ Image: 'busybox', Cmd: ['sleep', '120'], HostConfig: { NetworkMode: 'none', Memory: 64 * 1024 * 1024, PidsLimit: 50 } });
    await engine.startContainer(Id);
    const top = await engine.topContainer(Id);
    expect(top.Titles).toContain('PID');
    expect(top.Processes.map((p) => p.at(-1))).toEqual(['sleep 120']);
    const samples = [];
    for await (const s of engine.containerStats(Id, { stream: false, oneShot: true })) samples.push(s);
    expect(samples).toHaveLength(1);
    expect(samples[0]!.memory_stats.limit).toBe(64 * 1024 * 1024);
    expect(samples[0]!.pids_stats).toMatchObject({ current: 1, limit: 50 });
    expect(samples[0]!.cpu_stats.online_cpus).toBeGreaterThan(0);
    await engine.updateContainer(Id, { Memory: 96 * 1024 * 1024, MemorySwap: -1 });
    for await (const s of engine.containerStats(Id, { stream: false, oneShot: true })) expect(s.memory_stats.limit).toBe(96 * 1024 * 1024);
    expect((await engine.inspectContainer(Id)).HostConfig.Memory).toBe(96 * 1024 * 1024);
    await engine.removeContainer(Id, { force: true });
  });
});
