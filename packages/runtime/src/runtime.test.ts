import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { access, chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hasCode, hasKind } from '@berth/errors';
import { makeBusyboxRootfs } from '@berth/tools/rootfs';
import { attachSocket } from './attach.js';
import { RuntimeErrorCode } from './errors.js';
import { readJsonFileLog } from './json-file-log.js';
import { collectOutput, readExecExit, readExitRecord, Runtime } from './runtime.js';
import { buildSpec, type RunOptions } from './spec-builder.js';

const exec = promisify(execFile);

let dir: string;
let rootfs: string;
let runtime: Runtime;
let seq = 0;
const ids: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-rt-'));
  await chmod(dir, 0o755);
  rootfs = join(dir, 'rootfs');
  await makeBusyboxRootfs(rootfs);
  runtime = new Runtime({ root: join(dir, 'state') });
});

afterEach(async () => {
  for (const id of ids.splice(0)) await runtime.delete(id, { force: true }).catch(() => {});
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function newId(): string {
  const id = `rt-${process.pid}-${++seq}`;
  ids.push(id);
  return id;
}

async function bundle(id: string, args: string[], extra: Partial<RunOptions> = {}, edit?: (spec: Record<string, unknown>) => void): Promise<string> {
  const b = join(dir, 'bundles', id);
  await mkdir(b, { recursive: true });
  const spec = await buildSpec({ Cmd: args }, { rootfs, id, readOnlyRootfs: true, ...extra });
  edit?.(spec as unknown as Record<string, unknown>);
  await writeFile(join(b, 'config.json'), JSON.stringify(spec));
  return b;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 500; i++) {
    const v = await probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const stopped = (id: string) => until(`${id} to stop`, async () => ((await runtime.state(id)).status === 'stopped' ? true : undefined));

/** The fields of /proc/<pid>/stat after the command name (the state first). */
function statFields(pid: number): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

async function cgroupExists(id: string): Promise<boolean> {
  return access(`/sys/fs/cgroup/pids/berth/${id}`).then(() => true, () => false);
}

async function mountedUnder(path: string): Promise<boolean> {
  return (await readFile('/proc/self/mountinfo', 'utf8')).includes(path);
}

describe('lifecycle', () => {
  it('create, start, state, kill, delete, with the cgroup removed', async () => {
    const id = newId();
    await runtime.create(id, { bundle: await bundle(id, ['sh', '-c', 'trap "exit 9" TERM; sleep 30 & wait']) });
    const created = await runtime.state(id);
    expect(created.status).toBe('created');
    expect(created.pid).toBeGreaterThan(1);
    expect(created.monitorPid).toBeGreaterThan(1);
    expect(created.cgroup?.layout).toMatch(/v1|v2|hybrid/);
    expect(await cgroupExists(id)).toBe(true);
    expect((await runtime.list()).map((s) => s.id)).toContain(id);
    await expect(runtime.delete(id)).resolves.toBeUndefined(); // a created container can be deleted ...
    expect(await cgroupExists(id)).toBe(false);
    await expect(runtime.state(id)).rejects.toSatisfy((e) => hasCode(e, RuntimeErrorCode.NotFound) && hasKind(e, 'NotFound'));

    const id2 = newId();
    await runtime.create(id2, { bundle: await bundle(id2, ['sh', '-c', 'trap "exit 9" TERM; sleep 30 & wait']) });
    await runtime.start(id2);
    expect((await runtime.state(id2)).status).toBe('running');
    await expect(runtime.start(id2)).rejects.toSatisfy((e) => hasCode(e, RuntimeErrorCode.State));
    await expect(runtime.delete(id2)).rejects.toSatisfy((e) => hasCode(e, RuntimeErrorCode.State) && hasKind(e, 'FailedPrecondition'));
    expect(await runtime.exitRecord(id2)).toBeUndefined();
    await runtime.kill(id2, 'TERM');
    await stopped(id2);
    const after = await runtime.state(id2);
    expect(after.exitCode).toBe(9);
    // The monitor's record, read without an exec of the runtime, says the same.
    expect(await runtime.exitRecord(id2)).toEqual({ exitCode: 9, finished: after.finished, oomKilled: false });
    expect(after.finished).toBeInstanceOf(Date);
    expect(after.pid).toBe(0);
    await expect(runtime.kill(id2, 'KILL')).rejects.toSatisfy((e) => hasCode(e, RuntimeErrorCode.State));
    await runtime.delete(id2);
    expect(await cgroupExists(id2)).toBe(false);
  });

  it('records the exit, reaps the process and deletes a running container with force', async () => {
    const id = newId();
    await runtime.runDetached(id, { bundle: await bundle(id, ['sh', '-c', 'exit 3']) });
    const { pid } = await runtime.state(id).catch(() => ({ pid: 0 }));
    await stopped(id);
    expect((await runtime.state(id)).exitCode).toBe(3);
    // No zombie: the monitor waited for it.
    if (pid) await expect(access(`/proc/${pid}`)).rejects.toThrow();

    const id2 = newId();
    await runtime.runDetached(id2, { bundle: await bundle(id2, ['sleep', '30']) });
    await runtime.delete(id2, { force: true });
    await expect(runtime.state(id2)).rejects.toSatisfy((e) => hasCode(e, RuntimeErrorCode.NotFound));
    expect(await cgroupExists(id2)).toBe(false);
  });

  it('pauses and resumes every process', async () => {
    const id = newId();
    await runtime.runDetached(id, { bundle: await bundle(id, ['sh', '-c', 'sleep 30 & sleep 30']) });
    const pids = await until('both sleeps', async () => {
      const p = await runtime.ps(id);
      return p.length === 2 ? p : undefined;
    });
    await runtime.pause(id);
    expect((await runtime.state(id)).status).toBe('paused');
    for (const pid of pids) expect(await readFile(`/proc/${pid}/status`, 'utf8')).toMatch(/^State:\s+[DS]/m);
    await expect(runtime.pause(id)).rejects.toSatisfy((e) => hasCode(e, RuntimeErrorCode.State));
    await runtime.resume(id);
    expect((await runtime.state(id)).status).toBe('running');
    // A paused container is thawed before a forced delete kills it.
    await runtime.pause(id);
    await runtime.delete(id, { force: true });
  });
});

describe('monitor', () => {
  it('keeps a detached container and its json-file log after the caller exits', async () => {
    const id = newId();
    const log = join(dir, `${id}.log`);
    // The caller is a shell that exits right after `run -d`.
    const shim = new URL('../dist/native/berth-runtime', import.meta.url).pathname;
    await exec('sh', ['-c', `"${shim}" --root "${runtime.root}" run -d --bundle "$1" --log-path "$2" "$3"; echo $? > "$2.rc"`, 'sh',
      await bundle(id, ['sh', '-c', 'echo out; echo err >&2; printf "no newline"; sleep 30']), log, id]);
    expect((await readFile(`${log}.rc`, 'utf8')).trim()).toBe('0');
    const state = await runtime.state(id);
    expect(state.status).toBe('running');
    expect(state.logPath).toBe(log);
    const ppid = Number((await readFile(`/proc/${state.pid}/stat`, 'utf8')).split(') ')[1]!.split(' ')[1]);
    expect(ppid).toBe(state.monitorPid);
    const lines = await until('three log lines', async () => {
      const text = await readFile(log, 'utf8').catch(() => '');
      const ls = text.split('\n').filter(Boolean);
      return ls.length >= 2 ? ls.map((l) => JSON.parse(l) as { log: string; stream: string; time: string }) : undefined;
    });
    expect(lines.slice(0, 2).map((l) => [l.stream, l.log]).sort()).toEqual([['stderr', 'err\n'], ['stdout', 'out\n']]);
    expect(lines[0]!.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    // The partial line is flushed when the process ends.
    await runtime.kill(id, 'KILL');
    await stopped(id);
    const all = (await readFile(log, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { log: string });
    expect(all.map((l) => l.log)).toContain('no newline');
  });

  it('serves attach: stdin in, output out, exit code at the end', async () => {
    const id = newId();
    const socket = join(dir, `${id}.sock`);
    const log = join(dir, `${id}.log`);
    await runtime.create(id, { bundle: await bundle(id, ['sh', '-c', 'read a; echo "hello $a"; echo oops >&2; cat; exit 4']), attachSocket: socket, logPath: log, openStdin: true });
    const session = await runtime.attach(id);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    session.stdout.on('data', (d: Buffer) => out.push(d));
    session.stderr.on('data', (d: Buffer) => err.push(d));
    await runtime.start(id);
    session.stdin.write('world\n');
    session.stdin.write('more\n');
    session.stdin.end();
    expect(await session.exit).toBe(4);
    expect(Buffer.concat(out).toString()).toBe('hello world\nmore\n');
    expect(Buffer.concat(err).toString()).toBe('oops\n');
    await stopped(id);
    expect((await runtime.state(id)).exitCode).toBe(4);
    await expect(access(socket)).rejects.toThrow();
  });

  it('startOnAttach: the first attach client starts the process, and nothing it writes is missed', async () => {
    const id = newId();
    const socket = join(dir, `${id}.sock`);
    await runtime.create(id, { bundle: await bundle(id, ['sh', '-c', 'echo first; exit 5']), attachSocket: socket, startOnAttach: true });
    await new Promise((r) => setTimeout(r, 100));
    expect((await runtime.state(id)).status).toBe('created');
    const session = await runtime.attach(id);
    const out: Buffer[] = [];
    session.stdout.on('data', (d: Buffer) => out.push(d));
    expect(await session.exit).toBe(5);
    expect(Buffer.concat(out).toString()).toBe('first\n');
    await stopped(id);
    expect(await runtime.exitRecord(id)).toMatchObject({ exitCode: 5 });

    // `start` still starts such a container that no client attached to.
    const id2 = newId();
    await runtime.create(id2, { bundle: await bundle(id2, ['sh', '-c', 'exit 6']), attachSocket: join(dir, `${id2}.sock`), startOnAttach: true });
    await runtime.start(id2);
    await stopped(id2);
    expect((await runtime.state(id2)).exitCode).toBe(6);

    await expect(runtime.create(newId(), { bundle: await bundle(id2, ['true']), startOnAttach: true })).rejects.toSatisfy((e) => hasCode(e, RuntimeErrorCode.InvalidSpec));
    const shim = new URL('../dist/native/berth-runtime', import.meta.url).pathname;
    const usage = await exec(shim, ['--root', runtime.root!, 'run', '-d', '--start-on-attach', '--attach-socket', join(dir, 'x.sock'), '--bundle', join(dir, 'bundles', id2), newId()]).catch((e: { code: number; stderr: string }) => e);
    expect(usage).toMatchObject({ code: 2 });
    expect((usage as { stderr: string }).stderr).toContain('--start-on-attach is for create');
  });

  it('monitorOf: the monitor a container has from its create on, also once its process has ended', async () => {
    const id = newId();
    await runtime.create(id, { bundle: await bundle(id, ['true']), attachSocket: join(dir, `${id}.sock`), startOnAttach: true });
    const state = await runtime.state(id);
    const monitor = runtime.monitorOf(id);
    // The init's parent while it lives, and /proc's start time of that process.
    const parent = Number(statFields(state.pid)[1]);
    expect(monitor).toEqual({ pid: parent, startTime: statFields(parent)[19] });
    expect(state.monitorPid).toBe(monitor?.pid);
    const session = await runtime.attach(id);
    session.stdout.resume();
    expect(await session.exit).toBe(0);
    await stopped(id);
    // The init is gone and with it the way from its pid to its parent; the monitor's state says it.
    expect(runtime.monitorOf(id)).toEqual(monitor);
    await runtime.delete(id);
    expect(runtime.monitorOf(id)).toBeUndefined();
    expect(new Runtime({ runtime: 'runc', root: join(dir, 'runc') }).monitorOf(id)).toBeUndefined();
  });

  it('leaves no log file behind: the runtime writes its own to an unlinked temporary file', async () => {
    const mine = async () => (await readdir(tmpdir())).filter((n) => n.startsWith(`berth-runtime-log-${process.pid}-`));
    const before = await mine();
    const id = newId();
    await runtime.runDetached(id, { bundle: await bundle(id, ['true']) });
    await stopped(id);
    await expect(runtime.start(id)).rejects.toSatisfy((e) => hasCode(e, RuntimeErrorCode.State));
    await runtime.delete(id);
    expect(await mine()).toEqual(before);
  });

  it('deleteOnExit: the monitor records the exit in exitFile and deletes the container, cgroups included', async () => {
    const id = newId();
    const exitFile = join(dir, `${id}.exit.json`);
    await runtime.runDetached(id, { bundle: await bundle(id, ['sh', '-c', 'sleep 0.2; exit 7']), exitFile, deleteOnExit: true });
    expect(await runtime.exists(id)).toBe(true);
    expect(await readExitRecord(exitFile)).toBeUndefined();
    await until(`${id} to be deleted`, async () => ((await runtime.exists(id)) ? undefined : true));
    expect(await readExitRecord(exitFile)).toMatchObject({ exitCode: 7, oomKilled: false });
    expect(await cgroupExists(id)).toBe(false);
    await expect(runtime.state(id)).rejects.toSatisfy((e) => hasCode(e, RuntimeErrorCode.NotFound));

    // Without a pid namespace of its own the init's children outlive it: the monitor kills them.
    const host = newId();
    const log = join(dir, `${host}.log`);
    await runtime.runDetached(host, { bundle: await bundle(host, ['sh', '-c', 'sleep 300 & echo $!'], { pid: 'host' }), logPath: log, exitFile: join(dir, `${host}.exit.json`), deleteOnExit: true });
    await until(`${host} to be deleted`, async () => ((await runtime.exists(host)) ? undefined : true));
    const records = [];
    for await (const r of readJsonFileLog(log)) records.push(r.log);
    const child = Number(records.join('').trim());
    expect(child).toBeGreaterThan(1);
    const gone = async (pid: number) => (await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => ') Z ')).includes(') Z ');
    await until(`the leftover ${child} to be gone`, async () => ((await gone(child)) ? true : undefined));
    expect(await cgroupExists(host)).toBe(false);

    await expect(runtime.create(newId(), { bundle: await bundle(id, ['true']), deleteOnExit: true })).rejects.toSatisfy((e) => hasCode(e, RuntimeErrorCode.InvalidSpec));
    const shim = new URL('../dist/native/berth-runtime', import.meta.url).pathname;
    const usage = await exec(shim, ['--root', runtime.root!, 'create', '--delete-on-exit', '--bundle', join(dir, 'bundles', id), newId()]).catch((e: { code: number; stderr: string }) => e);
    expect(usage).toMatchObject({ code: 2 });
    expect((usage as { stderr: string }).stderr).toContain('--delete-on-exit needs --exit-file');
  });

  it("log driver none: without a log path nothing is written, attach still gets the output", async () => {
    const id = newId();
    const own = join(dir, `${id}-none`);
    await mkdir(own);
    const socket = join(own, 'attach.sock');
    const b = await bundle(id, ['sh', '-c', 'read go; echo out; echo err >&2']);
    await runtime.create(id, { bundle: b, attachSocket: socket, openStdin: true });
    expect((await runtime.state(id)).logPath).toBeUndefined();
    const session = await runtime.attach(id);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    session.stdout.on('data', (d: Buffer) => out.push(d));
    session.stderr.on('data', (d: Buffer) => err.push(d));
    await runtime.start(id);
    session.stdin.end('go\n');
    expect(await session.exit).toBe(0);
    expect([Buffer.concat(out).toString(), Buffer.concat(err).toString()]).toEqual(['out\n', 'err\n']);
    await stopped(id);
    // Nothing in the bundle, the state directory or beside the socket looks like a log.
    const { stdout } = await exec('find', [b, join(runtime.root!, id), own, '-maxdepth', '1', '-name', '*log*']);
    expect(stdout).toBe('');
  });

  it('relays a tty over attach and resizes it', async () => {
    const id = newId();
    const socket = join(dir, `${id}.sock`);
    await runtime.create(id, { bundle: await bundle(id, ['sh', '-c', 'read go; stty size; tty'], { tty: true }), attachSocket: socket, openStdin: true });
    const session = await runtime.attach(id);
    const out: Buffer[] = [];
    session.stdout.on('data', (d: Buffer) => out.push(d));
    session.resize(33, 111);
    await runtime.start(id);
    session.stdin.write('go\r');
    expect(await session.exit).toBe(0);
    const text = Buffer.concat(out).toString();
    expect(text).toContain('33 111\r\n');
    expect(text).toContain('/dev/pts/0\r\n');
  });

  it('runs a tty container in the foreground through pipes', async () => {
    const id = newId();
    const r = await collectOutput(await runtime.run(id, { bundle: await bundle(id, ['sh', '-c', 'tty; echo $TERM; exit 2'], { tty: true }) }));
    expect(r.stdout).toBe('/dev/pts/0\r\nxterm\r\n');
    expect(r.exitCode).toBe(2);
  });
});

describe('exec', () => {
  it('runs with the container settings, its own env, cwd and user, and returns the exit code', async () => {
    const id = newId();
    await runtime.runDetached(id, { bundle: await bundle(id, ['sleep', '30'], { env: ['FROM=container'] }) });
    const r = await collectOutput(await runtime.exec(id, { args: ['sh', '-c', 'echo $FROM $X; pwd; id -u; grep NoNewPrivs /proc/self/status; exit 6'], env: ['FROM=exec', 'X=1', 'PATH=/bin'], cwd: '/tmp', user: { uid: 1000, gid: 1000 } }));
    expect(r.stdout).toBe('exec 1\n/tmp\n1000\nNoNewPrivs:\t0\n');
    expect(r.exitCode).toBe(6);
    const tty = await collectOutput(await runtime.exec(id, { args: ['tty'], terminal: true }));
    expect(tty.stdout).toMatch(/^\/dev\/pts\/\d+\r\n$/);
    const piped = await runtime.exec(id, { args: ['sh', '-c', 'read x; echo "[$x]"'] }, { stdin: true });
    piped.stdin!.end('abc\n');
    expect((await collectOutput(piped)).stdout).toBe('[abc]\n');
  });

  it('serves an exec over an attach socket: tty, resize, stdin and the exit code', async () => {
    const id = newId();
    await runtime.runDetached(id, { bundle: await bundle(id, ['sleep', '30']) });
    const socket = join(dir, `${id}-exec.sock`);
    const proc = await runtime.exec(id, { args: ['sh', '-c', 'read x; stty size; echo "got $x"; exit 3'], terminal: true }, { attachSocket: socket });
    const session = await until('the exec attach socket', () => attachSocket(socket).catch(() => undefined));
    const out: Buffer[] = [];
    session.stdout.on('data', (d: Buffer) => out.push(d));
    session.resize(21, 77);
    session.stdin.write('ping\r');
    expect(await session.exit).toBe(3);
    expect(await proc.wait()).toBe(3);
    const text = Buffer.concat(out).toString();
    expect(text).toContain('21 77\r\n');
    expect(text).toContain('got ping\r\n');
    await expect(access(socket)).rejects.toThrow();

    // Without a tty: separate streams, and closing stdin ends `cat`.
    const socket2 = join(dir, `${id}-exec2.sock`);
    const proc2 = await runtime.exec(id, { args: ['sh', '-c', 'cat; echo done >&2'] }, { attachSocket: socket2 });
    const s2 = await until('the second attach socket', () => attachSocket(socket2).catch(() => undefined));
    const o2: Buffer[] = [];
    const e2: Buffer[] = [];
    s2.stdout.on('data', (d: Buffer) => o2.push(d));
    s2.stderr.on('data', (d: Buffer) => e2.push(d));
    s2.stdin.end('echoed\n');
    expect(await s2.exit).toBe(0);
    expect(await proc2.wait()).toBe(0);
    expect(Buffer.concat(o2).toString()).toBe('echoed\n');
    expect(Buffer.concat(e2).toString()).toBe('done\n');
  });

  it('records a detached exec\'s exit through its monitor, also when a signal or the container ends it', async () => {
    const id = newId();
    await runtime.runDetached(id, { bundle: await bundle(id, ['sleep', '30']) });
    const detached = async (args: string[]) => {
      const n = ++seq;
      const pidFile = join(dir, `${id}-${n}.pid`);
      const exitFile = join(dir, `${id}-${n}.exit`);
      // The call returns while the process runs (it sleeps), with its pid.
      await runtime.exec(id, { args }, { detach: true, pidFile, exitFile });
      const pid = Number((await readFile(pidFile, 'utf8')).trim());
      return { pid, exitFile };
    };
    const exited = (exitFile: string) => until(`${exitFile}`, () => readExecExit(exitFile));
    const seven = await detached(['sh', '-c', 'sleep 0.3; exit 7']);
    expect(await readExecExit(seven.exitFile)).toBeUndefined();
    expect(await exited(seven.exitFile)).toMatchObject({ exitCode: 7, finished: expect.any(Date) });
    const killed = await detached(['sleep', '30']);
    process.kill(killed.pid, 'SIGTERM');
    expect(await exited(killed.exitFile)).toMatchObject({ exitCode: 143, signal: 15 });
    // The exec's monitor is no process of the container: stopping the container ends the exec, which is recorded.
    const orphan = await detached(['sleep', '30']);
    await runtime.kill(id, 'KILL', { all: true });
    await stopped(id);
    expect(await exited(orphan.exitFile)).toMatchObject({ exitCode: 137, signal: 9 });
    await expect(runtime.exec(id, { args: ['true'] }, { detach: true, pidFile: join(dir, 'x.pid'), exitFile: join(dir, 'x.exit') })).rejects.toSatisfy((e) => hasCode(e, RuntimeErrorCode.State));
  });

  it('reports a missing program as ERR_EXEC_NOT_FOUND (127) and refuses stopped containers', async () => {
    const id = newId();
    await runtime.runDetached(id, { bundle: await bundle(id, ['sleep', '30']) });
    const proc = await runtime.exec(id, { args: ['nosuchprogram'] });
    await expect(proc.wait()).rejects.toSatisfy((e) => hasCode(e, RuntimeErrorCode.ExecNotFound) && (e as { exitCode?: number }).exitCode === 127);
    await runtime.kill(id, 'KILL');
    await stopped(id);
    await expect(runtime.exec(id, { args: ['true'] }).then((p) => p.wait())).rejects.toSatisfy((e) => hasCode(e, RuntimeErrorCode.State));
  });
});

describe('process settings', () => {
  it('applies capabilities, no_new_privs, rlimits, oom_score_adj, sysctls, umask and the user', async () => {
    const id = newId();
    const r = await collectOutput(
      await runtime.run(id, {
        bundle: await bundle(id, ['sh', '-c', 'grep -E "^Cap(Bnd|Eff|Prm|Inh)|NoNewPrivs" /proc/self/status; ulimit -n; cat /proc/self/oom_score_adj /proc/sys/net/ipv4/ip_forward; id; umask'], {
          user: 'user',
          groupAdd: ['tty'],
          noNewPrivileges: true,
          ulimits: [{ name: 'nofile', soft: 123, hard: 456 }],
          oomScoreAdj: 321,
          sysctls: { 'net.ipv4.ip_forward': '1' },
        }),
      }),
    );
    expect(r.stderr).toBe('');
    // Docker's 14 capabilities in the bounding set; a non-root user has no effective ones.
    expect(r.stdout).toContain('CapBnd:\t00000000a80425fb');
    expect(r.stdout).toContain('CapEff:\t0000000000000000');
    expect(r.stdout).toContain('NoNewPrivs:\t1');
    expect(r.stdout).toContain('\n123\n321\n1\n');
    expect(r.stdout).toContain('uid=1000(user) gid=1000(user) groups=5(tty)');
    expect(r.stdout.trim().endsWith('0022')).toBe(true);
  });

  it('enforces a seccomp profile from the spec: action, errno and arguments', async () => {
    const id = newId();
    const seccomp = {
      defaultAction: 'SCMP_ACT_ALLOW',
      architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
      syscalls: [
        { names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 },
        // chmod(…, 0700) only: the argument filter lets other modes through (the mode is
        // chmod's second argument and fchmodat's third).
        { names: ['chmod'], action: 'SCMP_ACT_ERRNO', errnoRet: 1, args: [{ index: 1, value: 0o700, op: 'SCMP_CMP_EQ' }] },
        { names: ['fchmodat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1, args: [{ index: 2, value: 0o700, op: 'SCMP_CMP_EQ' }] },
      ],
    };
    const r = await collectOutput(
      await runtime.run(id, {
        bundle: await bundle(id, ['sh', '-c', 'mkdir /tmp/d; touch /tmp/f; chmod 600 /tmp/f && echo 600ok; chmod 700 /tmp/f && echo 700ok; exit 0'], {
          seccomp,
          readOnlyRootfs: false,
          mounts: [{ type: 'tmpfs', target: '/tmp' }],
        }),
      }),
    );
    expect(r.stderr).toMatch(/mkdir: can't create directory '\/tmp\/d': Permission denied/);
    expect(r.stdout).toBe('600ok\n');
    expect(r.stderr).toMatch(/chmod: \/tmp\/f: Operation not permitted/);
  });

  it("docker's default profile refuses namespaces to unprivileged containers", async () => {
    const id = newId();
    const r = await collectOutput(await runtime.run(id, { bundle: await bundle(id, ['unshare', '-U', 'true']) }));
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/Operation not permitted/);
    const id2 = newId();
    const open = await collectOutput(await runtime.run(id2, { bundle: await bundle(id2, ['unshare', '-U', 'true'], { seccomp: 'unconfined', capAdd: ['SYS_ADMIN'] }) }));
    expect(open.exitCode).toBe(0);
  });

  it('mounts binds (ro and rw) and tmpfs, creates a missing cwd, keeps the root read-only', async () => {
    const id = newId();
    const data = join(dir, `${id}-data`);
    await mkdir(data, { recursive: true });
    await writeFile(join(data, 'in'), 'from host\n');
    const r = await collectOutput(
      await runtime.run(id, {
        bundle: await bundle(id, ['sh', '-c', 'cat /ro/in; echo x > /ro/y; echo made > /rw/out; pwd; touch /file; df -t tmpfs /scratch | tail -1 | tr -s " " | cut -d" " -f2'], {
          mounts: [
            { type: 'bind', source: data, target: '/ro', readOnly: true },
            { type: 'bind', source: data, target: '/rw' },
            { type: 'tmpfs', target: '/scratch', tmpfsSize: 4 << 20 },
          ],
          workdir: '/work/dir',
        }),
      }),
    );
    expect(r.stdout).toBe('from host\n/work/dir\n4096\n');
    expect(r.stderr).toMatch(/\/ro\/y: Read-only file system/);
    expect(r.stderr).toMatch(/touch: \/file: Read-only file system/);
    expect(await readFile(join(data, 'out'), 'utf8')).toBe('made\n');
  });

  it('honours bind-mount propagation: rslave sees a host mount made later, rprivate does not', async () => {
    const id = newId();
    const src = join(dir, `${id}-prop`);
    await mkdir(join(src, 'sub'), { recursive: true });
    // A shared host mount, so that mounts under it propagate to its slaves.
    await exec('mount', ['--bind', src, src]);
    try {
      await exec('mount', ['--make-shared', src]);
      await runtime.runDetached(id, {
        bundle: await bundle(id, ['sleep', '30'], {
          mounts: [
            { type: 'bind', source: src, target: '/slave', propagation: 'rslave' },
            { type: 'bind', source: src, target: '/private', propagation: 'rprivate' },
          ],
        }),
      });
      await exec('mount', ['-t', 'tmpfs', 'tmpfs', join(src, 'sub')]);
      await writeFile(join(src, 'sub', 'marker'), 'x');
      const r = await collectOutput(await runtime.exec(id, { args: ['sh', '-c', 'echo slave: $(ls /slave/sub); echo private: $(ls /private/sub)'] }));
      expect(r.stdout).toBe('slave: marker\nprivate:\n');
    } finally {
      await runtime.delete(id, { force: true }).catch(() => {});
      await exec('umount', ['-l', join(src, 'sub')]).catch(() => {});
      await exec('umount', ['-l', src]).catch(() => {});
    }
  });

  it('works without pivot_root (move and chroot) and still hides the host', async () => {
    const id = newId();
    const r = await collectOutput(await runtime.run(id, { bundle: await bundle(id, ['sh', '-c', 'cut -d" " -f5 /proc/self/mountinfo; ls /']), noPivot: true }));
    expect(r.exitCode).toBe(0);
    expect(r.stdout.split('\n').filter((m) => m.startsWith('/work') || m.startsWith('/tmp'))).toEqual([]);
    expect(r.stdout).toContain('bin\n');
  });
});

describe('berth extensions', () => {
  it('compiles a seccomp profile once: later containers load the cached program, a damaged one is compiled again', async () => {
    const seccomp = { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64'], syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }] };
    const cache = join(runtime.root!, '.seccomp');
    const denied = async () => {
      const id = newId();
      const r = await collectOutput(await runtime.run(id, { bundle: await bundle(id, ['mkdir', '/tmp/d'], { seccomp, readOnlyRootfs: false, mounts: [{ type: 'tmpfs', target: '/tmp' }] }) }));
      expect(r.stderr).toMatch(/can't create directory '\/tmp\/d': Permission denied/);
    };
    const before = new Set(await readdir(cache).catch(() => [] as string[]));
    await denied();
    const added = (await readdir(cache)).filter((f) => !before.has(f));
    expect(added).toHaveLength(1);
    const file = join(cache, added[0]!);
    const compiled = await readFile(file);
    await denied();
    expect(await readFile(file)).toEqual(compiled);
    await writeFile(file, 'not a program');
    await denied();
    expect(await readFile(file)).toEqual(compiled);
  });

  it('brings up lo in a network namespace it creates', async () => {
    const id = newId();
    const r = await collectOutput(await runtime.run(id, { bundle: await bundle(id, ['cat', '/sys/class/net/lo/flags']) }));
    expect(Number(r.stdout.trim()) & 0x1).toBe(1);
  });

  it('mounts the root from the rootfs mounts inside the container only and looks the user up there', async () => {
    const id = newId();
    const layers = join(dir, `${id}-layers`);
    const target = join(dir, `${id}-root`);
    for (const d of [join(layers, 'upper'), join(layers, 'work'), target]) await mkdir(d, { recursive: true });
    await exec('cp', ['-a', rootfs, join(layers, 'lower')]);
    const rootfsMounts = [{ type: 'overlay', source: 'overlay', options: ['lowerdir=lower', `upperdir=${layers}/upper`, `workdir=${layers}/work`], cwd: layers }];
    const b = await bundle(id, ['sh', '-c', 'id; echo "HOME=$HOME"; echo written > /tmp/file; cat /tmp/file'], { rootfs: target, rootfsMounts, user: 'user', groupAdd: ['tty'], readOnlyRootfs: false });
    await runtime.create(id, { bundle: b, logPath: join(dir, `${id}.log`) });
    // The overlay is in the container's mount namespace, not the host's.
    expect(await mountedUnder(target)).toBe(false);
    await runtime.start(id);
    await stopped(id);
    const log = (await readFile(join(dir, `${id}.log`), 'utf8')).split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { log: string }).log).join('');
    expect(log).toBe('uid=1000(user) gid=1000(user) groups=5(tty)\nHOME=/home/user\nwritten\n');
    expect(await readFile(join(layers, 'upper', 'tmp', 'file'), 'utf8')).toBe('written\n');
    expect(await readdir(target)).toEqual([]);

    const missing = newId();
    const bad = await bundle(missing, ['true'], { rootfs: target, rootfsMounts, user: 'nosuch' });
    await expect(runtime.create(missing, { bundle: bad })).rejects.toSatisfy(
      (e) => hasCode(e, RuntimeErrorCode.UserNotFound) && /unable to find user nosuch: no matching entries in passwd file/.test((e as Error).message),
    );
  });

  it('runs an exec as the user the container looked up, unless it names its own', async () => {
    const id = newId();
    const layers = join(dir, `${id}-layers`);
    const target = join(dir, `${id}-root`);
    await mkdir(target, { recursive: true });
    await mkdir(layers, { recursive: true });
    await exec('cp', ['-a', rootfs, join(layers, 'lower')]);
    const rootfsMounts = [{ type: 'bind', source: join(layers, 'lower'), options: ['rbind', 'ro'] }];
    await runtime.runDetached(id, { bundle: await bundle(id, ['sleep', '30'], { rootfs: target, rootfsMounts, user: 'user', groupAdd: ['tty'] }) });
    const own = await collectOutput(await runtime.exec(id, { args: ['id'] }));
    expect(own.stdout).toBe('uid=1000(user) gid=1000(user) groups=5(tty)\n');
    const named = await collectOutput(await runtime.exec(id, { args: ['id', '-u'], user: { uid: 0, gid: 0 } }));
    expect(named.stdout).toBe('0\n');
    // A read-only bind: the root cannot be written even by root.
    const write = await collectOutput(await runtime.exec(id, { args: ['touch', '/x'], user: { uid: 0, gid: 0 } }));
    expect(write.stderr).toMatch(/Read-only file system/);
  });
});

describe('privileged', () => {
  it('gets every capability, the host devices, no seccomp and a writable /sys', async () => {
    const id = newId();
    const r = await collectOutput(
      await runtime.run(id, { bundle: await bundle(id, ['sh', '-c', 'grep CapBnd /proc/self/status; ls /dev/vda /dev/null; grep Seccomp: /proc/self/status; mount -t tmpfs none /tmp && echo mounted'], { privileged: true }) }),
    );
    const host = /CapBnd:\t([0-9a-f]+)/.exec(await readFile('/proc/self/status', 'utf8'))![1];
    expect(r.stdout).toContain(`CapBnd:\t${host}`);
    expect(r.stdout).toContain('/dev/null\n/dev/vda\n');
    expect(r.stdout).toContain('Seccomp:\t0');
    expect(r.stdout).toContain('mounted');
    // And the unprivileged control: docker's filter (mode 2) and no host disk.
    const id2 = newId();
    const plain = await collectOutput(await runtime.run(id2, { bundle: await bundle(id2, ['sh', '-c', 'grep Seccomp: /proc/self/status; ls /dev/vda']) }));
    expect(plain.stdout).toBe('Seccomp:\t2\n');
  });

  it('passes a single host device with --device', async () => {
    const id = newId();
    const r = await collectOutput(
      await runtime.run(id, { bundle: await bundle(id, ['sh', '-c', 'ls -l /dev/xnull; echo hi > /dev/xnull && echo wrote'], { devices: [{ pathOnHost: '/dev/null', pathInContainer: '/dev/xnull', permissions: 'rw' }] }) }),
    );
    expect(r.stdout).toMatch(/^crw-rw-rw-\s+1 root\s+root\s+1,\s+3 .* \/dev\/xnull\nwrote\n$/);
  });
});

describe('resources', () => {
  it('writes memory, cpu, cpuset, pids and device limits to the cgroup files', async () => {
    const id = newId();
    await runtime.runDetached(id, {
      bundle: await bundle(id, ['sleep', '30'], {
        memory: 96 << 20,
        memoryReservation: 48 << 20,
        memorySwap: 128 << 20,
        cpuShares: 512,
        cpuQuota: 50000,
        cpuPeriod: 100000,
        cpusetCpus: '0',
        pidsLimit: 33,
      }),
    });
    const { cgroup } = await runtime.state(id);
    const read = (controller: string, file: string) => {
      const key = Object.keys(cgroup!.paths).find((k) => k.split(',').includes(controller))!;
      return readFile(join(cgroup!.paths[key]!, file), 'utf8').then((t) => t.trim());
    };
    if (cgroup!.layout === 'v2') {
      expect(await read('unified', 'memory.max')).toBe(String(96 << 20));
      expect(await read('unified', 'cpu.max')).toBe('50000 100000');
      return;
    }
    expect(await read('memory', 'memory.limit_in_bytes')).toBe(String(96 << 20));
    expect(await read('memory', 'memory.soft_limit_in_bytes')).toBe(String(48 << 20));
    expect(await read('memory', 'memory.memsw.limit_in_bytes')).toBe(String(128 << 20));
    expect(await read('cpu', 'cpu.shares')).toBe('512');
    expect(await read('cpu', 'cpu.cfs_quota_us')).toBe('50000');
    expect(await read('cpu', 'cpu.cfs_period_us')).toBe('100000');
    expect(await read('cpuset', 'cpuset.cpus')).toBe('0');
    expect(await read('pids', 'pids.max')).toBe('33');
    // docker's device rules: nothing but the standard nodes, the ptys and mknod.
    const devices = (await read('devices', 'devices.list')).split('\n');
    expect(devices).toContain('c 1:3 rwm');
    expect(devices).toContain('c 136:* rwm');
    expect(devices).not.toContain('a *:* rwm');
    const pid = (await runtime.state(id)).pid;
    expect(await readFile(`/proc/${pid}/cgroup`, 'utf8')).toContain(`/berth/${id}`);
  });
});

describe('cgroup membership', () => {
  // The init joins v1 hierarchies itself (0 to `tasks`) and is born in the v2 cgroup (clone3),
  // not moved by cgroup.procs: each of its cgroups, in every hierarchy, must be the container's.
  const expectInContainerCgroups = async (pid: number, id: string) => {
    const { cgroup } = await runtime.state(id);
    const lines = (await readFile(`/proc/${pid}/cgroup`, 'utf8')).trim().split('\n');
    const own = lines.filter((line) => line.endsWith(`/berth/${id}`));
    expect(own, lines.join('\n')).toHaveLength(lines.length);
    expect(own.length).toBe(Object.keys(cgroup!.paths).length);
  };

  it('puts the init and an exec in the container cgroup of every hierarchy', async () => {
    const id = newId();
    await runtime.runDetached(id, { bundle: await bundle(id, ['sleep', '30']) });
    await expectInContainerCgroups((await runtime.state(id)).pid, id);
    const r = await collectOutput(await runtime.exec(id, { args: ['sh', '-c', 'echo $$; cat /proc/self/cgroup'] }));
    const init = (await readFile(`/proc/${(await runtime.state(id)).pid}/cgroup`, 'utf8')).trim();
    expect(r.stdout.trim().split('\n').slice(1).join('\n')).toBe(init);
  });

  it('does so for an init cloned into an existing network namespace and a new user namespace', async () => {
    const id = newId();
    const netns = `berth-cgj-${process.pid}`;
    await exec('ip', ['netns', 'add', netns]);
    try {
      const maps = { uidMappings: [{ containerID: 0, hostID: 300000, size: 65536 }], gidMappings: [{ containerID: 0, hostID: 300000, size: 65536 }] };
      await runtime.runDetached(id, { bundle: await bundle(id, ['sleep', '30'], { userNamespace: maps, network: { path: `/run/netns/${netns}` } }) });
      const { pid } = await runtime.state(id);
      await expectInContainerCgroups(pid, id);
      expect(await readFile(`/proc/${pid}/status`, 'utf8')).toMatch(/^Uid:\s+300000\s/m);
      await runtime.delete(id, { force: true });
    } finally {
      await exec('ip', ['netns', 'delete', netns]);
    }
  });
});

describe('update', () => {
  const cgroupFile = async (id: string, controller: string, file: string) => {
    const { cgroup } = await runtime.state(id);
    const key = Object.keys(cgroup!.paths).find((k) => k.split(',').includes(controller))!;
    return (await readFile(join(cgroup!.paths[key]!, file), 'utf8')).trim();
  };
  // The recorded limits apart from the device rules (docker's standard list, which update never changes).
  const limits = async (id: string) => Object.fromEntries(Object.entries((await runtime.state(id)).resources ?? {}).filter(([k]) => k !== 'devices'));
  // dd's block is one allocation it fills: 40 MiB of the container's memory, then exit 0.
  const allocate40m = ['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=40M', 'count=1'];

  it('lowers and raises the memory limit of a running container: an OOM kill follows the new limit', async () => {
    const id = newId();
    await runtime.runDetached(id, { bundle: await bundle(id, ['sleep', '300'], { memory: 64 << 20, memorySwap: 64 << 20 }) });
    expect((await collectOutput(await runtime.exec(id, { args: allocate40m }))).exitCode).toBe(0);

    await runtime.update(id, { memory: { limit: 24 << 20, swap: 24 << 20 } });
    const state = await runtime.state(id);
    expect(state.resources?.memory).toEqual({ limit: 24 << 20, swap: 24 << 20 });
    expect((await runtime.readStats(id)).memory.limit).toBe(24 << 20);
    if (state.cgroup!.layout !== 'v2') expect(await cgroupFile(id, 'memory', 'memory.limit_in_bytes')).toBe(String(24 << 20));
    const killed = await collectOutput(await runtime.exec(id, { args: allocate40m }));
    expect(killed.exitCode).toBe(137);
    expect((await runtime.readStats(id)).memory.oomKills).toBeGreaterThan(0);
    expect((await runtime.state(id)).status).toBe('running');

    // Raising above the old memory+swap limit needs the swap limit written first: runc's order.
    await runtime.update(id, { memory: { limit: 96 << 20, swap: 96 << 20 } });
    expect((await collectOutput(await runtime.exec(id, { args: allocate40m }))).exitCode).toBe(0);
    await runtime.kill(id, 'KILL');
    await stopped(id);
    expect((await runtime.state(id)).oomKilled).toBe(true);
  });

  it('changes the pids limit: forks fail at the new limit, and -1 lifts it', async () => {
    const id = newId();
    await runtime.runDetached(id, { bundle: await bundle(id, ['sleep', '300'], { pidsLimit: 50 }) });
    // sleep, the exec'd sh and its four background sleeps: six tasks fit under 50 ...
    const forks = ['sh', '-c', 'for i in 1 2 3 4; do sleep 5 >/dev/null 2>&1 & done 2>/dev/null; jobs -p | wc -l'];
    expect((await collectOutput(await runtime.exec(id, { args: forks }))).stdout.trim()).toBe('4');
    await runtime.update(id, { pids: { limit: 3 } });
    expect((await runtime.readStats(id)).pids.limit).toBe(3);
    expect((await runtime.state(id)).resources?.pids).toEqual({ limit: 3 });
    // ... but not under 3 (the leftover sleeps of the first exec count too).
    const limited = await collectOutput(await runtime.exec(id, { args: forks }));
    expect(limited.stdout.trim()).not.toBe('4');
    await runtime.update(id, { pids: { limit: -1 } });
    expect((await runtime.readStats(id)).pids.limit).toBeUndefined();
  });

  it('merges into the recorded limits: cpu, cpuset and the unchanged memory limits', async () => {
    const id = newId();
    await runtime.create(id, { bundle: await bundle(id, ['sleep', '300'], { memory: 64 << 20, cpuShares: 512 }) });
    await runtime.update(id, { cpu: { quota: 25000, period: 50000, cpus: '0' } });
    await runtime.update(id, { cpu: { shares: 256, quota: 0 } }); // 0: unchanged
    expect(await limits(id)).toEqual({ memory: { limit: 64 << 20, swap: 128 << 20 }, cpu: { shares: 256, quota: 25000, period: 50000, cpus: '0' } });
    const { cgroup } = await runtime.state(id);
    if (cgroup!.layout === 'v2') return;
    expect(await cgroupFile(id, 'cpu', 'cpu.shares')).toBe('256');
    expect(await cgroupFile(id, 'cpu', 'cpu.cfs_quota_us')).toBe('25000');
    expect(await cgroupFile(id, 'cpu', 'cpu.cfs_period_us')).toBe('50000');
    expect(await cgroupFile(id, 'cpuset', 'cpuset.cpus')).toBe('0');
    expect(await cgroupFile(id, 'memory', 'memory.limit_in_bytes')).toBe(String(64 << 20));
  });

  it('refuses bad values and stopped containers, leaving the limits as they were', async () => {
    const id = newId();
    await runtime.runDetached(id, { bundle: await bundle(id, ['sleep', '300'], { memory: 64 << 20, memorySwap: 64 << 20 }) });
    await expect(runtime.update(id, { memory: { limit: 128 << 20 } })).rejects.toSatisfy(
      (e) => hasCode(e, RuntimeErrorCode.InvalidSpec) && /swap 67108864 is below the memory limit 134217728/.test((e as Error).message),
    );
    await expect(runtime.update(id, { cpu: { period: 10 } })).rejects.toSatisfy((e) => hasKind(e, 'InvalidArgument') && /cpu\.period/.test((e as Error).message));
    expect(await limits(id)).toEqual({ memory: { limit: 64 << 20, swap: 64 << 20 } });
    expect((await runtime.readStats(id)).memory.limit).toBe(64 << 20);
    await expect(runtime.update('no-such-container', { pids: { limit: 5 } })).rejects.toSatisfy((e) => hasCode(e, RuntimeErrorCode.NotFound));
    await runtime.kill(id, 'KILL');
    await stopped(id);
    await expect(runtime.update(id, { pids: { limit: 5 } })).rejects.toSatisfy((e) => hasCode(e, RuntimeErrorCode.State));
  });

  it('drives runc update the same way', async (ctx) => {
    if (!(await exec('runc', ['--version']).then(() => true, () => false))) return ctx.skip('runc is not installed');
    const runc = new Runtime({ runtime: 'runc', root: join(dir, 'runc-update-state') });
    const id = newId();
    await runc.runDetached(id, { bundle: await bundle(id, ['sleep', '300'], { memory: 64 << 20, pidsLimit: 30 }) });
    try {
      await runc.update(id, { memory: { limit: 32 << 20 }, pids: { limit: 7 } });
      const stats = await runc.readStats(id);
      expect(stats.memory.limit).toBe(32 << 20);
      expect(stats.pids.limit).toBe(7);
    } finally {
      await runc.delete(id, { force: true });
    }
  });
});

describe('stats', () => {
  it('reads memory, cpu and pids from the cgroup, and records an OOM kill', async () => {
    const id = newId();
    await runtime.runDetached(id, { bundle: await bundle(id, ['sh', '-c', 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; sleep 30'], { memory: 64 << 20, pidsLimit: 20 }) });
    const stats = await until('cpu time', async () => {
      const s = await runtime.readStats(id);
      return s.cpu.usageNs > 1e6 ? s : undefined;
    });
    expect(stats.memory.limit).toBe(64 << 20);
    expect(stats.memory.usage).toBeGreaterThan(0);
    expect(stats.pids.limit).toBe(20);
    expect(stats.pids.current).toBeGreaterThanOrEqual(1);
    expect(stats.cpu.systemUsageNs).toBeGreaterThan(stats.cpu.usageNs);

    const oom = newId();
    await runtime.runDetached(oom, { bundle: await bundle(oom, ['tail', '/dev/zero'], { memory: 16 << 20 }) });
    await stopped(oom);
    const state = await runtime.state(oom);
    expect(state.exitCode).toBe(137);
    expect(state.oomKilled).toBe(true);
    expect(await runtime.exitRecord(oom)).toMatchObject({ exitCode: 137, signal: 9, oomKilled: true });
  });
});

describe('bad input', () => {
  async function leftovers(id: string, b: string): Promise<void> {
    await expect(runtime.state(id)).rejects.toSatisfy((e) => hasCode(e, RuntimeErrorCode.NotFound));
    expect(await cgroupExists(id)).toBe(false);
    expect(await mountedUnder(b)).toBe(false);
    await expect(access(join(runtime.root!, id))).rejects.toThrow();
  }

  it('missing rootfs', async () => {
    const id = newId();
    const b = await bundle(id, ['true'], {}, (s) => ((s.root as { path: string }).path = join(dir, 'nope')));
    await expect(runtime.create(id, { bundle: b })).rejects.toSatisfy((e) => hasCode(e, RuntimeErrorCode.InvalidSpec) && /root\.path.*nope.*No such file/.test((e as Error).message));
    await leftovers(id, b);
  });

  it('bad JSON', async () => {
    const id = newId();
    const b = join(dir, 'bundles', id);
    await mkdir(b, { recursive: true });
    await writeFile(join(b, 'config.json'), '{"ociVersion": "1.0.2",\n  "root": {"path": "rootfs",}\n}');
    await expect(runtime.create(id, { bundle: b })).rejects.toSatisfy((e) => hasKind(e, 'InvalidArgument') && /config\.json: invalid JSON at line 2 column 29/.test((e as Error).message));
    await leftovers(id, b);
  });

  it('unknown namespace type', async () => {
    const id = newId();
    const b = await bundle(id, ['true'], {}, (s) => (s.linux as { namespaces: { type: string }[] }).namespaces.push({ type: 'bogus' }));
    await expect(runtime.run(id, { bundle: b }).then((p) => p.wait())).rejects.toSatisfy((e) => hasCode(e, RuntimeErrorCode.InvalidSpec) && /linux\.namespaces\[\d\]\.type: unknown namespace type `bogus`/.test((e as Error).message));
    await leftovers(id, b);
  });

  it('a failure half-way through setup (a bind source that does not exist) leaves nothing behind', async () => {
    const id = newId();
    const b = await bundle(id, ['true'], { mounts: [{ type: 'bind', source: join(dir, 'missing-source'), target: '/x' }] });
    await expect(runtime.create(id, { bundle: b })).rejects.toSatisfy((e) => hasCode(e, RuntimeErrorCode.InvalidSpec) && /missing-source/.test((e as Error).message));
    await leftovers(id, b);
  });

  it('a missing program is ERR_EXEC_NOT_FOUND at create', async () => {
    const id = newId();
    const b = await bundle(id, ['/bin/nosuch']);
    await expect(runtime.create(id, { bundle: b })).rejects.toSatisfy((e) => hasCode(e, RuntimeErrorCode.ExecNotFound));
    await leftovers(id, b);
  });

  it('a duplicate id is refused and the existing container is untouched', async () => {
    const id = newId();
    const b = await bundle(id, ['sleep', '30']);
    await runtime.runDetached(id, { bundle: b });
    const before = await runtime.state(id);
    await expect(runtime.create(id, { bundle: b })).rejects.toSatisfy((e) => hasCode(e, RuntimeErrorCode.Exists) && hasKind(e, 'AlreadyExists'));
    const after = await runtime.state(id);
    expect(after.status).toBe('running');
    expect(after.pid).toBe(before.pid);
    expect(await cgroupExists(id)).toBe(true);
  });

  it('runc and crun cannot keep logs: a typed error instead of silence', async () => {
    const runc = new Runtime({ runtime: 'runc', root: join(dir, 'runc-state') });
    await expect(runc.create('x', { bundle: dir, logPath: join(dir, 'x.log') })).rejects.toSatisfy((e) => hasCode(e, RuntimeErrorCode.NotSupported) && hasKind(e, 'NotImplemented'));
  });

  it('a missing shim is ERR_SHIM_MISSING with the build command', async () => {
    const missing = new Runtime({ runtime: join(dir, 'no-such-dir', 'berth-runtime'), root: join(dir, 'state') });
    await expect(missing.list()).rejects.toSatisfy((e) => hasCode(e, RuntimeErrorCode.ShimMissing) && /nx run @berth\/runtime:build/.test((e as Error).message));
  });
});
