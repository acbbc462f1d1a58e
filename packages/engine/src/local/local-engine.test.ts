import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTextLogger } from '@berth/log';
import { NetworkManager } from '@berth/network';
import { initBinary } from '@berth/runtime';
import { loadBusyboxImage } from '@berth/tools/test-images';
import { freeSubnet } from '@berth/tools/free-subnets';
import type { OutputChunk } from '../types/stream.js';
import { LocalEngine } from './local-engine.js';

// Real containers through the in-process engine: its own state root, run root, bridge, subnet
// and rule tag; the busybox image is built from Debian's static busybox and loaded as a tar.

const tag = `l${process.pid.toString(36)}`;
let dir = '';
let engine: LocalEngine;
const network = { defaultBridge: `bt${tag}0`, ruleTag: tag, defaultSubnet: '', bridgePrefix: `bt${tag}`, vethPrefix: `vt${tag}` };

async function collect(output: AsyncIterable<OutputChunk>): Promise<{ stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  for await (const c of output) {
    if (c.stream === 'stdout') stdout += c.data.toString();
    else stderr += c.data.toString();
  }
  return { stdout, stderr };
}


/** Creates, attaches to and starts a container; resolves with its exit code and output. */
async function run(body: Parameters<LocalEngine['createContainer']>[0], name?: string) {
  const { Id } = await engine.createContainer({ HostConfig: { NetworkMode: 'none' }, ...body }, name ? { name } : {});
  const stream = await engine.attachContainer(Id, { stream: true, stdout: true, stderr: true });
  const wait = await engine.waitContainer(Id, { condition: 'next-exit' });
  await engine.startContainer(Id);
  const output = await collect(stream.output);
  const { StatusCode } = await wait.result;
  return { id: Id, code: StatusCode, ...output };
}

/** Waits until the container has logged `text` (a shell that is ready for signals says so). */
async function logged(id: string, text: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const { stdout } = await collect((await engine.containerLogs(id, { stdout: true })).output);
    if (stdout.includes(text)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`container ${id} never logged ${text}`);
}



beforeAll(async () => {
  network.defaultSubnet = await freeSubnet();
  dir = await mkdtemp(join(tmpdir(), 'berth-le-'));
  engine = new LocalEngine({
    ...(process.env['BERTH_TEST_DEBUG'] ? { logger: createTextLogger({ write: (l) => process.stderr.write(l), level: 'debug' }) } : {}),
    root: join(dir, 'root'),
    runRoot: join(dir, 'run'),
    network,
  });
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

describe('LocalEngine containers', () => {
  it('runs a container to its exit and keeps its log', async () => {
    const r = await run({ Image: 'busybox', Cmd: ['sh', '-c', 'echo hello; echo err >&2; exit 3'] }, 'first');
    expect(r).toMatchObject({ code: 3, stdout: 'hello\n', stderr: 'err\n' });
    const logs = await engine.containerLogs('first', { stdout: true, stderr: true });
    expect(await collect(logs.output)).toEqual({ stdout: 'hello\n', stderr: 'err\n' });
    const info = await engine.inspectContainer(r.id);
    expect(info.State).toMatchObject({ Status: 'exited', ExitCode: 3, Running: false });
    expect(info.Name).toBe('/first');
    const [summary] = await engine.listContainers({ all: true, filters: { name: ['first'] } });
    expect(summary?.Status).toMatch(/^Exited \(3\) (Less than a second|\d+ seconds) ago$/);
    await engine.removeContainer(r.id);
    await expect(engine.inspectContainer(r.id)).rejects.toMatchObject({ message: `No such container: ${r.id}` });
    // --rm: the container is gone when the wait for its removal returns, with its exit status.
    const gone = await engine.createContainer({ Image: 'busybox', Cmd: ['sh', '-c', 'exit 3'], HostConfig: { NetworkMode: 'none', AutoRemove: true } });
    const removed = await engine.waitContainer(gone.Id, { condition: 'removed' });
    await engine.startContainer(gone.Id);
    expect((await removed.result).StatusCode).toBe(3);
    await expect(engine.inspectContainer(gone.Id)).rejects.toMatchObject({ kind: 'NotFound' });
  });

  it('mounts the root inside the container with berth-runtime: nothing on the host, volatile for --rm, mountable again after a run', async () => {
    const [major = 0, minor = 0] = release().split('.').map(Number);
    const volatile = major > 5 || (major === 5 && minor >= 10);
    const rootOf = (out: string) => out.split('\n').find((l) => l.split(' ')[1] === '/') ?? '';
    const { Id } = await engine.createContainer({ Image: 'busybox', Cmd: ['sh', '-c', 'grep " / " /proc/mounts; echo x >> /kept; cat /kept; sleep 30'], HostConfig: { NetworkMode: 'none' } });
    const first = await engine.attachContainer(Id, { stream: true, stdout: true });
    await engine.startContainer(Id);
    await logged(Id, 'x\n');
    // The host sees no mount of it: the root lives and ends in the container's mount namespace.
    expect(await readFile('/proc/self/mountinfo', 'utf8')).not.toContain(join(dir, 'root', 'containers', Id));
    await engine.stopContainer(Id, { timeout: 0 });
    const kept = await collect(first.output);
    expect(rootOf(kept.stdout)).toMatch(/^overlay \/ overlay /);
    expect(rootOf(kept.stdout)).not.toContain('volatile');
    // Started again, the same upper dir mounts with what the first run wrote.
    const again = await engine.attachContainer(Id, { stream: true, stdout: true });
    await engine.startContainer(Id);
    await logged(Id, 'x\nx\n');
    await engine.removeContainer(Id, { force: true });
    expect((await collect(again.output)).stdout).toContain('x\nx\n');
    const rm = await run({ Image: 'busybox', Cmd: ['grep', ' / ', '/proc/mounts'], HostConfig: { NetworkMode: 'none', AutoRemove: true } });
    expect(rm.code).toBe(0);
    expect(rootOf(rm.stdout).includes('volatile')).toBe(volatile);
  });

  it('applies env, user, working dir, entrypoint and hostname as docker does', async () => {
    const r = await run({
      Image: 'busybox',
      Entrypoint: ['sh', '-c'],
      Cmd: ['echo "$FOO $(id -u):$(id -g) $(pwd) $(hostname)"'],
      Env: ['FOO=bar'],
      User: 'nobody',
      WorkingDir: '/tmp',
      Hostname: 'boxy',
    });
    expect(r.stdout).toBe('bar 65534:65534 /tmp boxy\n');
  });

  it('gives docker 127 and 126 for a command that is missing or cannot run', async () => {
    const { Id } = await engine.createContainer({ Image: 'busybox', Cmd: ['nope'], HostConfig: { NetworkMode: 'none' } });
    await expect(engine.startContainer(Id)).rejects.toMatchObject({ exitCode: 127, message: expect.stringContaining('exec: "nope": executable file not found in $PATH') });
    expect((await engine.inspectContainer(Id)).State).toMatchObject({ ExitCode: 127, Error: expect.stringContaining('executable file not found') });
    const denied = await engine.createContainer({ Image: 'busybox', Cmd: ['/etc/passwd'], HostConfig: { NetworkMode: 'none' } });
    await expect(engine.startContainer(denied.Id)).rejects.toMatchObject({ exitCode: 126 });
  });

  it('refuses a taken name and removing a running container, with docker messages', async () => {
    const { Id } = await engine.createContainer({ Image: 'busybox', Cmd: ['sleep', '60'], HostConfig: { NetworkMode: 'none' } }, { name: 'sleeper' });
    await expect(engine.createContainer({ Image: 'busybox' }, { name: 'sleeper' })).rejects.toMatchObject({
      kind: 'Conflict',
      message: `Conflict. The container name "/sleeper" is already in use by container "${Id}". You have to remove (or rename) that container to be able to reuse that name.`,
    });
    await engine.startContainer(Id);
    expect(await engine.startContainer(Id)).toBe(false);
    await expect(engine.removeContainer('sleeper')).rejects.toMatchObject({
      kind: 'Conflict',
      message: 'cannot remove container "/sleeper": container is running: stop the container before removing or force remove',
    });
    const info = await engine.inspectContainer('sleeper');
    expect(info.State.Running).toBe(true);
    expect(info.State.Pid).toBeGreaterThan(0);
    await engine.removeContainer('sleeper', { force: true });
    await expect(engine.inspectContainer(Id)).rejects.toMatchObject({ kind: 'NotFound' });
    await expect(engine.inspectContainer('nothing-here')).rejects.toMatchObject({ message: 'No such container: nothing-here' });
  });

  it('stops with the stop signal, then kills after the timeout', async () => {
    const { Id } = await engine.createContainer({ Image: 'busybox', Cmd: ['sh', '-c', 'trap "exit 7" USR1; echo ready; while true; do sleep 0.1; done'], StopSignal: 'SIGUSR1', HostConfig: { NetworkMode: 'none' } });
    await engine.startContainer(Id);
    await logged(Id, 'ready');
    expect(await engine.stopContainer(Id, { timeout: 10 })).toBe(true);
    expect((await engine.inspectContainer(Id)).State).toMatchObject({ Status: 'exited', ExitCode: 7 });
    expect(await engine.stopContainer(Id)).toBe(false);
    const stubborn = await engine.createContainer({ Image: 'busybox', Cmd: ['sh', '-c', 'trap "" TERM; echo ready; while true; do sleep 0.1; done'], HostConfig: { NetworkMode: 'none' } });
    await engine.startContainer(stubborn.Id);
    await logged(stubborn.Id, 'ready');
    await engine.stopContainer(stubborn.Id, { timeout: 1 });
    expect((await engine.inspectContainer(stubborn.Id)).State).toMatchObject({ Status: 'exited', ExitCode: 137 });
  });

  it("runs --init with berth-runtime's own init as pid 1: it reaps orphans and forwards signals", async (ctx) => {
    const own = await initBinary();
    if (!own) return ctx.skip('berth-runtime is linked dynamically (built without libseccomp.a): it cannot be an init in any container');
    // What each process of the container is: "pid state name", from /proc.
    const processes = async (id: string) => {
      const exec = await engine.createExec(id, { Cmd: ['sh', '-c', 'for d in /proc/[0-9]*; do echo "${d#/proc/} $(sed -n "s/^State:\\t\\(.\\).*/\\1/p" $d/status) $(cat $d/comm)"; done'], AttachStdout: true });
      return (await collect((await engine.startExec(exec.Id, {}))!.output)).stdout.split('\n').filter(Boolean);
    };
    const orphans = ['sh', '-c', '(sleep 0.1 &); echo ready; exec sleep 60'];
    const settle = async (id: string, done: (ps: string[]) => boolean) => {
      let ps = await processes(id);
      for (let i = 0; i < 200 && !done(ps); i++) ps = await new Promise((r) => setTimeout(r, 25)).then(() => processes(id));
      return ps;
    };
    const sleeperGone = (ps: string[]) => !ps.some((p) => / S sleep$/.test(p) && !p.startsWith('2 '));
    // Without an init the orphan of `sleep 0.1` stays a zombie under a pid 1 that never waits.
    const bare = await engine.createContainer({ Image: 'busybox', Cmd: orphans, HostConfig: { NetworkMode: 'none' } });
    await engine.startContainer(bare.Id);
    await logged(bare.Id, 'ready');
    expect((await settle(bare.Id, (ps) => ps.some((p) => p.endsWith(' Z sleep')))).filter((p) => p.endsWith(' Z sleep'))).toHaveLength(1);
    await engine.removeContainer(bare.Id, { force: true });

    const init = await engine.createContainer({ Image: 'busybox', Cmd: orphans, HostConfig: { NetworkMode: 'none', Init: true } });
    await engine.startContainer(init.Id);
    await logged(init.Id, 'ready');
    const ps = await settle(init.Id, (p) => sleeperGone(p) && !p.some((x) => x.includes(' Z ')));
    expect(ps).toEqual(expect.arrayContaining(['1 S docker-init', '2 S sleep']));
    expect(ps.filter((p) => p.includes(' Z '))).toEqual([]);
    expect((await engine.inspectContainer(init.Id)).Path).toBe('sh');
    // The init is berth-runtime's own (the host's docker-init is not asked for).
    const size = await engine.createExec(init.Id, { Cmd: ['sh', '-c', 'wc -c < /sbin/docker-init'], AttachStdout: true });
    expect(Number((await collect((await engine.startExec(size.Id, {}))!.output)).stdout.trim())).toBe((await stat(own)).size);
    await engine.removeContainer(init.Id, { force: true });

    // Signals reach the command, which is not pid 1 and so has no immunity to them.
    const trapping = await engine.createContainer({ Image: 'busybox', Cmd: ['sh', '-c', 'trap "echo got usr1; exit 7" USR1; echo ready; while true; do sleep 0.1; done'], HostConfig: { NetworkMode: 'none', Init: true } });
    await engine.startContainer(trapping.Id);
    await logged(trapping.Id, 'ready');
    const exited = await engine.waitContainer(trapping.Id);
    await engine.killContainer(trapping.Id, { signalName: 'USR1' });
    expect((await exited.result).StatusCode).toBe(7);
    await logged(trapping.Id, 'got usr1');
    const stopped = await engine.createContainer({ Image: 'busybox', Cmd: ['sleep', '60'], HostConfig: { NetworkMode: 'none', Init: true } });
    await engine.startContainer(stopped.Id);
    await engine.stopContainer(stopped.Id, { timeout: 30 });
    // SIGTERM ended sleep itself (128+15); without an init docker stop would have had to SIGKILL pid 1.
    expect((await engine.inspectContainer(stopped.Id)).State.ExitCode).toBe(143);
  });

  it('execs in a running container with env, user and working dir, and reports the exit code', async () => {
    const { Id } = await engine.createContainer({ Image: 'busybox', Cmd: ['sleep', '60'], HostConfig: { NetworkMode: 'none' } });
    await engine.startContainer(Id);
    const exec = await engine.createExec(Id, { Cmd: ['sh', '-c', 'echo $X $(id -u) $(pwd); echo oops >&2; exit 4'], Env: ['X=y'], User: '1000', WorkingDir: '/home', AttachStdout: true, AttachStderr: true });
    const stream = await engine.startExec(exec.Id, {});
    expect(await collect(stream!.output)).toEqual({ stdout: 'y 1000 /home\n', stderr: 'oops\n' });
    let inspected = await engine.inspectExec(exec.Id);
    for (let i = 0; inspected.Running && i < 50; i++) inspected = await engine.inspectExec(exec.Id);
    expect(inspected).toMatchObject({ Running: false, ExitCode: 4, ContainerID: Id });
    const background = await engine.createExec(Id, { Cmd: ['sh', '-c', 'sleep 0.2; echo done > /tmp/bg; exit 3'] });
    expect(await engine.startExec(background.Id, { Detach: true })).toBeUndefined();
    expect((await engine.inspectExec(background.Id)).Running).toBe(true);
    expect((await engine.inspectContainer(Id)).ExecIDs).toEqual(expect.arrayContaining([exec.Id, background.Id]));
    let bg = await engine.inspectExec(background.Id);
    for (let i = 0; bg.Running && i < 100; i++) {
      await new Promise((r) => setTimeout(r, 20));
      bg = await engine.inspectExec(background.Id);
    }
    // Its exit code, as the runtime's exec monitor recorded it (docker's exec -d, then exec inspect).
    expect(bg).toMatchObject({ Running: false, ExitCode: 3, Pid: 0 });
    const check = await engine.createExec(Id, { Cmd: ['cat', '/tmp/bg'], AttachStdout: true });
    expect((await collect((await engine.startExec(check.Id, {}))!.output)).stdout).toBe('done\n');
    const piped = await engine.createExec(Id, { Cmd: ['sh', '-c', 'read line; echo "got $line"'], AttachStdin: true, AttachStdout: true });
    const s2 = await engine.startExec(piped.Id, {});
    s2!.stdin!.end('hi\n');
    expect((await collect(s2!.output)).stdout).toBe('got hi\n');
    await engine.removeContainer(Id, { force: true });
  });

  it('attaches stdin before start (docker run -i)', async () => {
    const { Id } = await engine.createContainer({ Image: 'busybox', Cmd: ['sh', '-c', 'read a; echo "in:$a"'], OpenStdin: true, StdinOnce: true, AttachStdin: true, HostConfig: { NetworkMode: 'none' } });
    const stream = await engine.attachContainer(Id, { stream: true, stdin: true, stdout: true, stderr: true });
    const wait = await engine.waitContainer(Id, { condition: 'next-exit' });
    await engine.startContainer(Id);
    stream.stdin!.end('abc\n');
    expect((await collect(stream.output)).stdout).toBe('in:abc\n');
    expect((await wait.result).StatusCode).toBe(0);
  });

  it('reads logs with tail, since, until and timestamps, and follows until the container stops', async () => {
    const { Id } = await engine.createContainer({ Image: 'busybox', Cmd: ['sh', '-c', 'for i in 1 2 3 4; do echo line$i; done; sleep 1; echo late'], HostConfig: { NetworkMode: 'none' } });
    await engine.startContainer(Id);
    const followed = await engine.containerLogs(Id, { stdout: true, stderr: true, follow: true });
    expect((await collect(followed.output)).stdout).toBe('line1\nline2\nline3\nline4\nlate\n');
    const tail = await engine.containerLogs(Id, { stdout: true, tail: 2 });
    expect((await collect(tail.output)).stdout).toBe('line4\nlate\n');
    const stamped = await engine.containerLogs(Id, { stdout: true, timestamps: true, tail: 1 });
    expect((await collect(stamped.output)).stdout).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z late\n$/);
    const future = await engine.containerLogs(Id, { stdout: true, since: Date.now() / 1000 + 60 });
    expect((await collect(future.output)).stdout).toBe('');
    await expect(engine.containerLogs(Id, {})).rejects.toMatchObject({ message: 'Bad parameters: you must choose at least one stream' });
  });

  it('pauses, unpauses, kills with a signal and renames', async () => {
    const { Id } = await engine.createContainer({ Image: 'busybox', Cmd: ['sh', '-c', 'trap "exit 5" HUP; echo ready; while true; do sleep 0.1; done'], HostConfig: { NetworkMode: 'none' } }, { name: 'pausable' });
    await engine.startContainer(Id);
    await logged(Id, 'ready');
    await engine.pauseContainer(Id);
    expect((await engine.inspectContainer(Id)).State).toMatchObject({ Status: 'paused', Paused: true, Running: true });
    expect((await engine.listContainers({ filters: { status: ['paused'] } })).map((c) => c.Id)).toEqual([Id]);
    await engine.unpauseContainer(Id);
    await engine.renameContainer('pausable', 'renamed');
    expect((await engine.inspectContainer('renamed')).Name).toBe('/renamed');
    await expect(engine.inspectContainer('pausable')).rejects.toMatchObject({ kind: 'NotFound' });
    const wait = await engine.waitContainer('renamed');
    await engine.killContainer('renamed', { signalName: 'HUP' });
    expect((await wait.result).StatusCode).toBe(5);
    await expect(engine.killContainer('renamed')).rejects.toMatchObject({ kind: 'Conflict' });
  });

  it('fills a named volume from the image on first use, mounts binds read-only and tmpfs', async () => {
    const bind = join(dir, 'bind');
    await mkdir(bind);
    await writeFile(join(bind, 'f'), 'from host\n');
    const r = await run({
      Image: 'busybox',
      Cmd: ['sh', '-c', 'cat /etc/group | head -1 && cat /src/f && (touch /src/x 2>/dev/null || echo ro) && mount | grep " /scratch " | cut -d" " -f1,5'],
      HostConfig: { NetworkMode: 'none', Binds: ['filled:/etc', `${bind}:/src:ro`], Tmpfs: { '/scratch': 'size=1m' } },
    });
    expect(r.stdout).toBe('root:x:0:\nfrom host\nro\ntmpfs tmpfs\n');
    const volume = await engine.inspectVolume('filled');
    expect(volume.Mountpoint).toMatch(/volumes\/filled\/_data$/);
    expect(await readFile(join(volume.Mountpoint, 'passwd'), 'utf8')).toMatch(/^root:x:0:0:/);
    await expect(engine.removeVolume('filled')).rejects.toMatchObject({ kind: 'Conflict', message: `remove filled: volume is in use - [${r.id}]` });
    await engine.removeContainer(r.id);
    await engine.removeVolume('filled');
    await expect(engine.inspectVolume('filled')).rejects.toMatchObject({ message: 'get filled: no such volume' });
  });

  it('keeps the read-only root read-only', async () => {
    const r = await run({ Image: 'busybox', Cmd: ['sh', '-c', 'touch /x || echo denied'], HostConfig: { NetworkMode: 'none', ReadonlyRootfs: true } });
    expect(r.stdout).toBe('denied\n');
  });

  it('gives a real terminal with resize to a container and to an exec (docker run -it, exec -it)', async () => {
    const { Id } = await engine.createContainer({
      Image: 'busybox',
      Cmd: ['sh', '-c', 'read x; stty size; echo "got $x"; sleep 60'],
      Tty: true,
      OpenStdin: true,
      AttachStdin: true,
      HostConfig: { NetworkMode: 'none' },
    });
    const stream = await engine.attachContainer(Id, { stream: true, stdin: true, stdout: true, stderr: true });
    expect(stream.tty).toBe(true);
    await engine.startContainer(Id);
    await stream.resize({ height: 30, width: 100 });
    stream.stdin!.write('hi\r');
    let text = '';
    for await (const c of stream.output) {
      expect(c.stream).toBe('stdout');
      text += c.data.toString();
      if (text.includes('got hi')) break;
    }
    expect(text).toContain('30 100\r\n');
    stream.close();
    const ex = await engine.createExec(Id, { Cmd: ['sh', '-c', 'read x; stty size; tty'], Tty: true, AttachStdin: true, AttachStdout: true });
    const es = await engine.startExec(ex.Id, { Tty: true });
    await engine.resizeExec(ex.Id, { height: 40, width: 120 });
    es!.stdin!.write('go\r');
    let out = '';
    for await (const c of es!.output) out += c.data.toString();
    expect(out).toMatch(/40 120\r\n\/dev\/pts\/\d+\r\n/);
    await engine.removeContainer(Id, { force: true });
  });

  it('runs an init as pid 1 with --init, which forwards the stop signal and reaps', async () => {
    const { Id } = await engine.createContainer({ Image: 'busybox', Cmd: ['sleep', '300'], HostConfig: { NetworkMode: 'none', Init: true } });
    await engine.startContainer(Id);
    const ex = await engine.createExec(Id, { Cmd: ['sh', '-c', 'cat /proc/1/cmdline | tr "\\0" " "'], AttachStdout: true });
    expect(await collect((await engine.startExec(ex.Id, {}))!.output)).toEqual({ stdout: '/sbin/docker-init -- sleep 300 ', stderr: '' });
    // sleep as pid 1 would ignore SIGTERM and be killed after the timeout (137); the init forwards it.
    await engine.stopContainer(Id, { timeout: 20 });
    expect((await engine.inspectContainer(Id)).State.ExitCode).toBe(143);
  });

  it('manages volumes: driver options, filters and prune of anonymous ones', async () => {
    await engine.createVolume({ Name: 'ramdisk', DriverOpts: { type: 'tmpfs', device: 'tmpfs', o: 'size=4m' }, Labels: { kind: 'ram' } });
    await expect(engine.createVolume({ Name: 'xy', DriverOpts: { bogus: '1' } })).rejects.toMatchObject({ kind: 'InvalidArgument', message: 'create xy: invalid option: "bogus"' });
    await expect(engine.createVolume({ Name: 'x' })).rejects.toMatchObject({ message: 'create x: volume name is too short, names should be at least two alphanumeric characters' });
    const r = await run({ Image: 'busybox', Cmd: ['sh', '-c', 'mount | grep " /v " | cut -d" " -f1,5; echo hi > /v/f; cat /v/f'], HostConfig: { NetworkMode: 'none', Binds: ['ramdisk:/v'] } });
    expect(r.stdout).toBe('tmpfs tmpfs\nhi\n');
    const anon = await engine.createVolume({});
    expect(anon.Name).toMatch(/^[0-9a-f]{64}$/);
    expect((await engine.listVolumes({ filters: { label: ['kind=ram'] } })).Volumes.map((v) => v.Name)).toEqual(['ramdisk']);
    expect((await engine.listVolumes({ filters: { dangling: ['true'] } })).Volumes.map((v) => v.Name)).toEqual([anon.Name]);
    await engine.removeContainer(r.id);
    // Named volumes stay unless `all=true`; unused anonymous ones go.
    expect((await engine.pruneVolumes()).VolumesDeleted).toBeNull();
    await engine.removeVolume(anon.Name);
    const made = await engine.createContainer({ Image: 'busybox', Volumes: { '/anon': {} }, HostConfig: { NetworkMode: 'none' } });
    const anonName = (await engine.inspectContainer(made.Id)).Mounts.find((m) => m.Destination === '/anon')!.Name!;
    expect((await engine.pruneVolumes()).VolumesDeleted).toBeNull();
    await engine.removeContainer(made.Id);
    expect((await engine.pruneVolumes()).VolumesDeleted).toEqual([anonName]);
    expect((await engine.pruneVolumes({ filters: { all: ['true'] } })).VolumesDeleted).toEqual(['ramdisk']);
    expect((await readFile('/proc/self/mountinfo', 'utf8')).includes(join(dir, 'root', 'volumes'))).toBe(false);
  });

  it('applies --mount, capabilities, privileged, cpus, memory, labels and log driver none', async () => {
    const src = join(dir, 'mount-src');
    await mkdir(src);
    await writeFile(join(src, 'data'), 'bound\n');
    const mounted = await run({
      Image: 'busybox',
      Labels: { team: 'berth' },
      Cmd: ['sh', '-c', 'cat /b/data; touch /b/x 2>/dev/null || echo ro; echo v > /v/f && cat /v/f; mount | grep " /t " | cut -d" " -f5; grep -q 1048576 /proc/self/mountinfo || true'],
      HostConfig: {
        NetworkMode: 'none',
        Mounts: [
          { Type: 'bind', Source: src, Target: '/b', ReadOnly: true },
          { Type: 'volume', Source: 'mounted-vol', Target: '/v' },
          { Type: 'tmpfs', Target: '/t', TmpfsOptions: { SizeBytes: 1 << 20 } },
        ],
      },
    });
    expect(mounted.stdout).toBe('bound\nro\nv\ntmpfs\n');
    const info = await engine.inspectContainer(mounted.id);
    expect(info.Mounts.map((m) => `${m.Type}:${m.Destination}:${m.RW}`).sort()).toEqual(['bind:/b:false', 'tmpfs:/t:true', 'volume:/v:true']);
    expect((await engine.listContainers({ all: true, filters: { label: ['team=berth'] } })).map((c) => c.Id)).toEqual([mounted.id]);
    expect((await engine.listContainers({ all: true, filters: { volume: ['mounted-vol'] } })).map((c) => c.Id)).toEqual([mounted.id]);
    await expect(engine.createContainer({ Image: 'busybox', HostConfig: { Mounts: [{ Type: 'bind', Source: join(dir, 'nope'), Target: '/x' }] } })).rejects.toMatchObject({
      message: `invalid mount config for type "bind": bind source path does not exist: ${join(dir, 'nope')}`,
    });
    await engine.removeContainer(mounted.id, { volumes: true });
    await engine.removeVolume('mounted-vol');

    // CAP_CHOWN dropped: chown fails; NET_ADMIN added: bringing lo down works.
    const caps = await run({ Image: 'busybox', Cmd: ['sh', '-c', 'chown 1 /tmp 2>/dev/null || echo no-chown; ip link set lo down && echo net-admin'], HostConfig: { NetworkMode: 'none', CapDrop: ['CHOWN'], CapAdd: ['NET_ADMIN'] } });
    expect(caps.stdout).toBe('no-chown\nnet-admin\n');
    const unprivileged = await run({ Image: 'busybox', Cmd: ['sh', '-c', 'mount -t tmpfs none /tmp 2>/dev/null && echo mounted || echo denied'], HostConfig: { NetworkMode: 'none' } });
    expect(unprivileged.stdout).toBe('denied\n');
    const privileged = await run({ Image: 'busybox', Cmd: ['sh', '-c', 'mount -t tmpfs none /tmp && echo mounted; ls /dev | grep -c .'], HostConfig: { NetworkMode: 'none', Privileged: true } });
    expect(privileged.stdout.split('\n')[0], privileged.stderr).toBe('mounted');
    expect(Number(privileged.stdout.split('\n')[1])).toBeGreaterThan(unprivileged.stdout.length > 0 ? 10 : 0);

    const { Id } = await engine.createContainer({ Image: 'busybox', Cmd: ['sleep', '60'], StopTimeout: 1, HostConfig: { NetworkMode: 'none', NanoCpus: 500_000_000, Memory: 32 * 1024 * 1024, LogConfig: { Type: 'none' } } });
    await engine.startContainer(Id);
    const cg = await promisify(execFile)('sh', ['-c', `cat /sys/fs/cgroup/cpu/berth/${Id}/cpu.cfs_quota_us /sys/fs/cgroup/cpu/berth/${Id}/cpu.cfs_period_us /sys/fs/cgroup/memory/berth/${Id}/memory.limit_in_bytes 2>/dev/null || true`]);
    if (cg.stdout.trim()) expect(cg.stdout.split('\n').slice(0, 3)).toEqual(['50000', '100000', String(32 * 1024 * 1024)]);
    await expect(engine.containerLogs(Id, { stdout: true })).rejects.toMatchObject({ message: 'configured logging driver does not support reading' });
    // sleep as pid 1 ignores SIGTERM: after StopTimeout (1 s) it is killed.
    await engine.stopContainer(Id);
    expect((await engine.inspectContainer(Id)).State.ExitCode).toBe(137);
  });

  it('reports system info, version and disk usage from the real host', async () => {
    const info = await engine.info();
    expect(info).toMatchObject({ OSType: 'linux', DockerRootDir: join(dir, 'root'), Driver: expect.stringMatching(/^(overlay2|vfs)$/), CgroupDriver: 'cgroupfs' });
    expect(info.NCPU).toBeGreaterThan(0);
    expect(info.MemTotal).toBeGreaterThan(0);
    expect(info.Images).toBeGreaterThanOrEqual(1);
    expect(info.SecurityOptions).toContain('name=seccomp,profile=builtin');
    expect(info.ID).toBe((await engine.info()).ID);
    const version = await engine.version();
    expect(version.ApiVersion).toBe('1.47');
    expect(version.Components[0]!.Name).toBe('Engine');
    const df = await engine.dataUsage();
    expect(df.Images.length).toBeGreaterThanOrEqual(1);
    expect(df.Images[0]!.Containers).toBeGreaterThanOrEqual(0);
    expect(df.LayersSize).toBeGreaterThan(0);
  });

  it('runs containers with runc under berth-runtime\'s monitor (logs, attach, exec)', async () => {
    const runcDir = await mkdtemp(join(tmpdir(), 'berth-le-runc-'));
    const runc = new LocalEngine({ root: join(runcDir, 'root'), runRoot: join(runcDir, 'run'), runtime: 'runc', network });
    try {
      await loadBusyboxImage(runc);
      const { Id } = await runc.createContainer({ Image: 'busybox', Cmd: ['sh', '-c', 'echo from-runc; sleep 60'], HostConfig: { NetworkMode: 'none' } });
      await runc.startContainer(Id);
      const ex = await runc.createExec(Id, { Cmd: ['sh', '-c', 'echo exec-$((1+1))'], AttachStdout: true });
      expect(await collect((await runc.startExec(ex.Id, {}))!.output)).toEqual({ stdout: 'exec-2\n', stderr: '' });
      for (let i = 0; i < 100; i++) {
        const { stdout } = await collect((await runc.containerLogs(Id, { stdout: true })).output);
        if (stdout === 'from-runc\n') break;
        await new Promise((r) => setTimeout(r, 20));
      }
      expect((await collect((await runc.containerLogs(Id, { stdout: true })).output)).stdout).toBe('from-runc\n');
      await runc.stopContainer(Id, { timeout: 1 });
      expect((await runc.inspectContainer(Id)).State).toMatchObject({ Status: 'exited', ExitCode: 137 });
      await runc.removeContainer(Id);
    } finally {
      await runc.close();
      await rm(runcDir, { recursive: true, force: true });
    }
  });
});
