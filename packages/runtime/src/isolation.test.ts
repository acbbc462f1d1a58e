import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeBusyboxRootfs } from '@berth/tools/rootfs';
import { collectOutput, Runtime } from './runtime.js';
import { buildSpec, type RunOptions } from './spec-builder.js';

// The same isolation checks against berth-runtime and the reference runtimes, through the
// Runtime class. crun refuses this host's hybrid cgroup layout ("cgroups in hybrid mode not
// supported"), so it runs behind a wrapper that gives it a private mount namespace with a tmpfs
// over /sys/fs/cgroup/unified: crun then sees plain cgroup v1 and works.

const exec = promisify(execFile);
const has = async (cmd: string) => exec('sh', ['-c', `command -v ${cmd}`]).then(() => true, () => false);

let dir: string;
let rootfs: string;
let seq = 0;
const created: { runtime: Runtime; id: string }[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-iso-'));
  // Container root in a user namespace is an unprivileged host uid: it must be able to reach the rootfs.
  await chmod(dir, 0o755);
  rootfs = join(dir, 'rootfs');
  await makeBusyboxRootfs(rootfs);
  await writeFile(join(dir, 'crun'), '#!/bin/sh\nexec unshare -m sh -c \'mount -t tmpfs tmpfs /sys/fs/cgroup/unified && exec crun "$@"\' crun "$@"\n');
  await chmod(join(dir, 'crun'), 0o755);
});

afterEach(async () => {
  for (const { runtime, id } of created.splice(0)) await runtime.delete(id, { force: true }).catch(() => {});
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const runtimes = [
  { name: 'berth-runtime', make: () => new Runtime({ root: join(dir, 'state-berth') }), skip: '' },
  { name: 'runc', make: () => new Runtime({ runtime: 'runc', root: join(dir, 'state-runc') }), skip: 'runc' },
  { name: 'crun', make: () => new Runtime({ runtime: join(dir, 'crun'), root: join(dir, 'state-crun') }), skip: 'crun' },
];

describe.each(runtimes)('isolation with $name', ({ name, make, skip }) => {
  let runtime: Runtime;
  let available = true;

  beforeAll(async () => {
    available = !skip || (await has(skip));
    if (available) runtime = make();
  });

  function id(): string {
    return `iso-${name.slice(0, 4)}-${process.pid}-${++seq}`;
  }

  async function bundle(containerId: string, script: string, extra: Partial<RunOptions> = {}): Promise<string> {
    const b = join(dir, containerId);
    await mkdir(b, { recursive: true });
    const spec = await buildSpec({ Cmd: ['/bin/sh', '-c', script] }, { rootfs, id: containerId, readOnlyRootfs: true, ...extra });
    await writeFile(join(b, 'config.json'), JSON.stringify(spec));
    return b;
  }

  async function run(script: string, extra: Partial<RunOptions> = {}) {
    const cid = id();
    const proc = await runtime.run(cid, { bundle: await bundle(cid, script, extra) });
    return collectOutput(proc);
  }

  async function detached(script: string, extra: Partial<RunOptions> = {}) {
    const cid = id();
    await runtime.runDetached(cid, { bundle: await bundle(cid, script, extra) });
    created.push({ runtime, id: cid });
    return cid;
  }

  it('runs the process as pid 1 with its own hostname', async (ctx) => {
    if (!available) ctx.skip(`${skip} is not installed`);
    const r = await run('echo pid=$$; hostname', { hostname: 'boxy' });
    expect(r.stdout).toBe('pid=1\nboxy\n');
    expect(r.exitCode).toBe(0);
  });

  it('hides host processes and host mounts', async (ctx) => {
    if (!available) ctx.skip(`${skip} is not installed`);
    const r = await run(`ls /proc | grep -c '^[0-9]'; test -e /proc/${process.pid} && echo host-visible; cut -d' ' -f5 /proc/self/mountinfo`);
    const [count, ...mounts] = r.stdout.trim().split('\n');
    // sh, ls and grep at most.
    expect(Number(count)).toBeLessThanOrEqual(3);
    expect(r.stdout).not.toContain('host-visible');
    expect(mounts).toContain('/');
    for (const m of ['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/sys/fs/cgroup']) expect(mounts).toContain(m);
    expect(mounts.filter((m) => m.startsWith('/work') || m.startsWith('/run') || m.startsWith('/tmp') || m.startsWith('/var'))).toEqual([]);
  });

  it('makes /proc/sys read-only and masks /proc/interrupts and /proc/acpi', async (ctx) => {
    if (!available) ctx.skip(`${skip} is not installed`);
    const r = await run('echo x > /proc/sys/kernel/domainname; echo status=$?; wc -c < /proc/interrupts; ls /proc/acpi | wc -l');
    expect(r.stderr).toMatch(/Read-only file system/);
    expect(r.stdout).toBe('status=1\n0\n0\n');
  });

  it('refuses mknod without CAP_MKNOD and mount without CAP_SYS_ADMIN', async (ctx) => {
    if (!available) ctx.skip(`${skip} is not installed`);
    const denied = await run('mknod /dev/x c 1 3 && echo made; mount -t tmpfs none /tmp && echo mounted; exit 0', { capDrop: ['MKNOD'] });
    expect(denied.stdout).toBe('');
    expect(denied.stderr).toMatch(/mknod: \/dev\/x: Operation not permitted/);
    expect(denied.stderr).toMatch(/mount: .*(Operation not permitted|permission denied)/i);
    // With the capabilities (and docker's seccomp profile, which follows them) both work.
    const allowed = await run('mknod /dev/x c 1 3 && echo made; mount -t tmpfs none /tmp && echo mounted', { capAdd: ['SYS_ADMIN'] });
    expect(allowed.stdout).toBe('made\nmounted\n');
  });

  it('propagates exit codes and signals', async (ctx) => {
    if (!available) ctx.skip(`${skip} is not installed`);
    expect((await run('exit 7')).exitCode).toBe(7);
    // pid 1 ignores signals it has no handler for; the trap gives it one.
    const cid = id();
    const proc = await runtime.run(cid, { bundle: await bundle(cid, 'trap "exit 42" TERM; echo ready; sleep 30 & wait') });
    const out = collectOutput(proc);
    await new Promise<void>((resolve) => proc.stdout.once('data', () => resolve()));
    proc.child.kill('SIGTERM');
    expect((await out).exitCode).toBe(42);
    const killed = await detached('sleep 30');
    await runtime.kill(killed, 'KILL');
    await waitStopped(runtime, killed);
  });

  it('stops a fork bomb at the pids limit', async (ctx) => {
    if (!available) ctx.skip(`${skip} is not installed`);
    // The shell dies at its first failed fork; counting afterwards uses builtins only (no fork).
    const script = [
      '(for i in $(seq 1 40); do sleep 2 & echo ok; done) >/tmp/ok 2>/tmp/err',
      'n=0; while read l; do n=$((n+1)); done </tmp/ok; echo started=$n',
      'e=0; while read l; do case "$l" in *"can\'t fork"*) e=$((e+1));; esac; done </tmp/err; echo failed=$e',
    ].join('\n');
    const r = await run(script, {
      pidsLimit: 10,
      readOnlyRootfs: false,
      mounts: [{ type: 'tmpfs', target: '/tmp' }],
    });
    const started = Number(/started=(\d+)/.exec(r.stdout)?.[1]);
    expect(started).toBeGreaterThan(0);
    expect(started).toBeLessThan(10);
    expect(r.stdout).toMatch(/failed=[1-9]/);
  });

  it('OOM-kills a process above the memory limit (137)', async (ctx) => {
    if (!available) ctx.skip(`${skip} is not installed`);
    // tail keeps every "line" of /dev/zero, which has no newline: it grows until killed.
    const r = await run('tail /dev/zero', { memory: 32 << 20 });
    expect(r.exitCode).toBe(137);
  });

  it('maps root to an unprivileged host uid in a user namespace', async (ctx) => {
    if (!available) ctx.skip(`${skip} is not installed`);
    const maps = { uidMappings: [{ containerID: 0, hostID: 200000, size: 65536 }], gidMappings: [{ containerID: 0, hostID: 200000, size: 65536 }] };
    const r = await run('id -u; cat /proc/self/uid_map', { userNamespace: maps });
    expect(r.stdout.split(/\s+/).filter(Boolean)).toEqual(['0', '0', '200000', '65536']);
    const cid = await detached('sleep 30', { userNamespace: maps });
    const state = await runtime.state(cid);
    const status = await readFile(`/proc/${state.pid}/status`, 'utf8');
    expect(status).toMatch(/^Uid:\s+200000\s+200000\s+200000\s+200000$/m);
  });

  it('reads the cgroup stats of its container', async (ctx) => {
    if (!available) ctx.skip(`${skip} is not installed`);
    const cid = await detached('sleep 30', { memory: 48 << 20, pidsLimit: 7 });
    const stats = await runtime.readStats(cid);
    expect(stats.memory.limit).toBe(48 << 20);
    expect(stats.pids).toEqual({ current: 1, limit: 7 });
  });

  it('lets exec see the container pid namespace', async (ctx) => {
    if (!available) ctx.skip(`${skip} is not installed`);
    const cid = await detached('sleep 30');
    const r = await collectOutput(await runtime.exec(cid, { args: ['sh', '-c', 'cat /proc/1/cmdline | tr "\\0" " "; echo; echo $$; exit 5'] }));
    const [cmdline, pid] = r.stdout.trim().split('\n');
    expect(cmdline?.trim()).toBe('sleep 30');
    expect(Number(pid)).toBeGreaterThan(1);
    expect(Number(pid)).toBeLessThan(20);
    expect(r.exitCode).toBe(5);
  });
});

async function waitStopped(runtime: Runtime, id: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if ((await runtime.state(id)).status === 'stopped') return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`${id} did not stop`);
}
