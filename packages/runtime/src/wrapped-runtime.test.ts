import { execFile } from 'node:child_process';
import { access, chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hasCode } from '@berth/errors';
import { makeBusyboxRootfs } from '@berth/tools/rootfs';
import { attachSocket } from './attach.js';
import { RuntimeErrorCode } from './errors.js';
import { readJsonFileLog } from './json-file-log.js';
import { collectOutput, readExecExit, Runtime } from './runtime.js';
import { buildSpec, type RunOptions } from './spec-builder.js';

// runc and crun under berth-runtime's monitor (conmon's role): the monitor runs their create
// and start with its own pipes or console socket, adopts the container's init, and keeps the
// log, attach and exit record. crun refuses this host's hybrid cgroups, so it runs behind the
// same wrapper as in isolation.test.ts (a private mount namespace hiding the v2 hierarchy).

const exec = promisify(execFile);
const has = async (cmd: string) => exec('sh', ['-c', `command -v ${cmd}`]).then(() => true, () => false);

let dir: string;
let rootfs: string;
let seq = 0;
const created: { runtime: Runtime; id: string }[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-wrap-'));
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
  { name: 'runc', runtime: () => 'runc', needs: 'runc' },
  { name: 'crun', runtime: () => join(dir, 'crun'), needs: 'crun' },
];

describe.each(runtimes)('$name under the monitor', ({ name, runtime: path, needs }) => {
  let runtime: Runtime;
  let available = true;

  beforeAll(async () => {
    available = await has(needs);
    if (available) runtime = new Runtime({ runtime: path(), root: join(dir, `state-${name}`), monitor: true, monitorRoot: join(dir, `monitor-${name}`) });
  });

  async function container(args: string[], extra: Partial<RunOptions> = {}): Promise<{ id: string; bundle: string }> {
    const id = `wr-${name}-${process.pid}-${++seq}`;
    const bundle = join(dir, id);
    await mkdir(bundle, { recursive: true });
    await writeFile(join(bundle, 'config.json'), JSON.stringify(await buildSpec({ Cmd: args }, { rootfs, id, readOnlyRootfs: true, ...extra })));
    created.push({ runtime, id });
    return { id, bundle };
  }

  async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
    for (let i = 0; i < 1000; i++) {
      const v = await probe();
      if (v !== undefined) return v;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  const stopped = (id: string) => until(`${id} to stop`, async () => ((await runtime.state(id)).status === 'stopped' ? true : undefined));

  it('keeps the json-file log and the exit code, and adopts the init', async (ctx) => {
    if (!available) return ctx.skip(`${needs} is not installed`);
    const { id, bundle } = await container(['sh', '-c', 'echo out; echo err >&2; read x; exit 7'], {});
    const log = join(dir, `${id}.log`);
    await runtime.runDetached(id, { bundle, logPath: log, openStdin: true, attachSocket: join(dir, `${id}.sock`) });
    const state = await runtime.state(id);
    expect(state).toMatchObject({ id, status: 'running', bundle, logPath: log });
    // The init's parent is the monitor, not the runtime that created it (which has exited).
    const ppid = Number((await readFile(`/proc/${state.pid}/stat`, 'utf8')).split(') ')[1]!.split(' ')[1]);
    expect(ppid).toBe(state.monitorPid);
    expect(await readdir(join(dir, `state-${name}`))).toContain(id);
    const session = await runtime.attach(id);
    session.stdin.end('go\n');
    expect(await session.exit).toBe(7);
    await stopped(id);
    expect(await runtime.state(id)).toMatchObject({ status: 'stopped', exitCode: 7, pid: 0 });
    expect(await runtime.exitRecord(id)).toMatchObject({ exitCode: 7, oomKilled: false });
    const records = [];
    for await (const r of readJsonFileLog(log)) records.push([r.stream, r.log]);
    expect(records.sort()).toEqual([['stderr', 'err\n'], ['stdout', 'out\n']]);
    await expect(runtime.kill(id, 'KILL')).rejects.toSatisfy((e) => hasCode(e, RuntimeErrorCode.State));
    await runtime.delete(id);
    await expect(runtime.state(id)).rejects.toSatisfy((e) => hasCode(e, RuntimeErrorCode.NotFound));
    expect(await readdir(join(dir, `state-${name}`))).not.toContain(id);
  });

  it('create, attach, start: a tty with resize, and exec through the runtime (plain and over an attach socket)', async (ctx) => {
    if (!available) return ctx.skip(`${needs} is not installed`);
    const { id, bundle } = await container(['sh', '-c', 'read go; stty size; sleep 300'], { tty: true });
    await runtime.create(id, { bundle, attachSocket: join(dir, `${id}.sock`), openStdin: true });
    expect((await runtime.state(id)).status).toBe('created');
    const session = await runtime.attach(id);
    const out: Buffer[] = [];
    session.stdout.on('data', (d: Buffer) => out.push(d));
    session.resize(27, 91);
    await runtime.start(id);
    await expect(runtime.start(id)).rejects.toSatisfy((e) => hasCode(e, RuntimeErrorCode.State));
    session.stdin.write('go\r');
    await until('the size', async () => (Buffer.concat(out).toString().includes('27 91') ? true : undefined));

    const plain = await collectOutput(await runtime.exec(id, { args: ['sh', '-c', 'echo in-$(hostname); exit 4'] }));
    expect(plain.exitCode).toBe(4);
    expect(plain.stdout).toMatch(/^in-\S+\n$/);

    const socket = join(dir, `${id}-exec.sock`);
    const proc = await runtime.exec(id, { args: ['sh', '-c', 'read x; stty size; echo "got $x"; exit 3'], terminal: true }, { attachSocket: socket });
    const execSession = await until('the exec attach socket', () => attachSocket(socket).catch(() => undefined));
    const execOut: Buffer[] = [];
    execSession.stdout.on('data', (d: Buffer) => execOut.push(d));
    execSession.resize(13, 57);
    execSession.stdin.write('ping\r');
    expect(await execSession.exit).toBe(3);
    expect(await proc.wait()).toBe(3);
    expect(Buffer.concat(execOut).toString()).toContain('13 57\r\n');
    expect(Buffer.concat(execOut).toString()).toContain('got ping\r\n');
    await expect(access(socket)).rejects.toThrow();

    await runtime.pause(id);
    expect((await runtime.state(id)).status).toBe('paused');
    await runtime.resume(id);
    expect((await runtime.state(id)).status).toBe('running');
    await runtime.update(id, { pids: { limit: 42 } });
    expect((await runtime.readStats(id)).pids.limit).toBe(42);
    await runtime.delete(id, { force: true });
    await expect(runtime.state(id)).rejects.toSatisfy((e) => hasCode(e, RuntimeErrorCode.NotFound));
    session.close();
  });

  it("records a detached exec's exit: the exec's monitor adopts what the runtime started", async (ctx) => {
    if (!available) return ctx.skip(`${needs} is not installed`);
    const { id, bundle } = await container(['sleep', '300']);
    await runtime.runDetached(id, { bundle });
    const pidFile = join(dir, `${id}-exec.pid`);
    const exitFile = join(dir, `${id}-exec.exit`);
    await runtime.exec(id, { args: ['sh', '-c', 'sleep 0.3; exit 5'] }, { detach: true, pidFile, exitFile });
    expect(Number((await readFile(pidFile, 'utf8')).trim())).toBeGreaterThan(0);
    expect(await until('the exec to be recorded', () => readExecExit(exitFile))).toMatchObject({ exitCode: 5 });
  });

  it("starts a foreground run from a terminal at that terminal's size", async (ctx) => {
    if (!available) return ctx.skip(`${needs} is not installed`);
    if (!(await has('script'))) return ctx.skip('script(1) is not installed');
    const { id, bundle } = await container(['stty', 'size'], { tty: true });
    // script(1) gives the shim a terminal of its own, 22 rows by 66 columns.
    const shim = fileURLToPath(new URL('../dist/native/berth-runtime', import.meta.url));
    const run = [shim, '--root', join(dir, `monitor-${name}`), 'run', '--oci-runtime', path(), '--oci-runtime-root', join(dir, `state-${name}`), '--bundle', bundle, id];
    const { stdout } = await exec('script', ['-qec', `stty cols 66 rows 22; ${run.map((a) => `'${a}'`).join(' ')}`, '/dev/null']);
    expect(stdout).toContain('22 66');
  });

  it('rotates the log and reports a failed create as an error, leaving nothing behind', async (ctx) => {
    if (!available) return ctx.skip(`${needs} is not installed`);
    const { id, bundle } = await container(['sh', '-c', 'i=0; while [ $i -lt 500 ]; do echo line-$i; i=$((i+1)); done']);
    const logDir = join(dir, `${id}-logs`);
    await mkdir(logDir);
    const log = join(logDir, 'c.log');
    await runtime.runDetached(id, { bundle, logPath: log, logRotation: { maxSize: 2_000, maxFiles: 2 } });
    await stopped(id);
    expect((await readdir(logDir)).sort()).toEqual(['c.log', 'c.log.1']);
    const lines = [];
    for await (const r of readJsonFileLog(log)) lines.push(r.log);
    expect(lines.at(-1)).toBe('line-499\n');

    const bad = await container(['/no/such/program']);
    await expect(runtime.runDetached(bad.id, { bundle: bad.bundle, logPath: join(dir, `${bad.id}.log`) })).rejects.toSatisfy((e) => hasCode(e, RuntimeErrorCode.Runtime));
    await expect(runtime.state(bad.id)).rejects.toSatisfy((e) => hasCode(e, RuntimeErrorCode.NotFound));
    expect(await readdir(join(dir, `state-${name}`))).not.toContain(bad.id);
  });
});
