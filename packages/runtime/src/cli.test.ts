import { execFile, spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBusyboxBundle, makeBusyboxRootfs } from '@berth/tools/rootfs';

// berth-runtime's command line as runc users call it.
const exec = promisify(execFile);
const shim = fileURLToPath(new URL('../dist/native/berth-runtime', import.meta.url));
const recvtty = fileURLToPath(new URL('../dist/native/tests/recvtty', import.meta.url));

let dir: string;
let root: string;
let rootfs: string;
let seq = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-cli-'));
  await chmod(dir, 0o755);
  root = join(dir, 'state');
  rootfs = join(dir, 'rootfs');
  await makeBusyboxRootfs(rootfs);
});

afterAll(async () => {
  const { stdout } = await exec(shim, ['--root', root, 'list', '-q']).catch(() => ({ stdout: '' }));
  for (const id of stdout.split('\n').filter(Boolean)) await exec(shim, ['--root', root, 'delete', '--force', id]).catch(() => {});
  await rm(dir, { recursive: true, force: true });
});

function cli(...args: string[]) {
  return exec(shim, ['--root', root, ...args]);
}

// create and run -d hand their stdio to the container (as runc does): a caller that waits for
// its pipes to close would wait for the container. So: no pipes, and the exit status.
async function detached(...args: string[]): Promise<number> {
  const log = join(dir, `detached-${++seq}.log`);
  const code = await new Promise<number>((resolve, reject) => {
    const child = spawn(shim, ['--root', root, '--log', log, ...args], { stdio: 'ignore' });
    child.on('error', reject);
    child.on('exit', (c) => resolve(c ?? -1));
  });
  if (code !== 0) throw new Error(`berth-runtime ${args.join(' ')}: ${await readFile(log, 'utf8').catch(() => `exit ${code}`)}`);
  return code;
}

/** Polls `probe` until it returns something (the container side has no event to wait on). */
async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 1000; i++) {
    const v = await probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const pidsOf = async (id: string) => JSON.parse((await cli('ps', '--format', 'json', id)).stdout) as number[];
const statusOf = async (id: string) => (JSON.parse((await cli('state', id)).stdout) as { status: string }).status;

interface Config {
  process: Record<string, unknown>;
  hooks?: Record<string, unknown>;
  root?: unknown;
}

async function bundle(args: string[], edit?: (config: Config) => void): Promise<{ id: string; path: string }> {
  const id = `cli-${process.pid}-${++seq}`;
  const path = await makeBusyboxBundle(join(dir, id), { args, rootfs });
  if (edit) {
    const config = JSON.parse(await readFile(join(path, 'config.json'), 'utf8')) as Config;
    edit(config);
    await writeFile(join(path, 'config.json'), JSON.stringify(config));
  }
  return { id, path };
}

describe('berth-runtime command line', () => {
  it('prints its version and usage; bad usage exits 2', async () => {
    expect((await exec(shim, ['--version'])).stdout).toMatch(/^berth-runtime version \d+\.\d+\.\d+\nspec: 1\.0\.2\n(zlib: [\d.]+\n)?$/);
    expect((await exec(shim, ['--help'])).stdout).toContain('--attach-socket');
    await expect(exec(shim, ['frobnicate'])).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining('unknown command `frobnicate`') });
    await expect(exec(shim, ['run', '--bogus', 'x'])).rejects.toMatchObject({ code: 2 });
    await expect(exec(shim, ['--systemd-cgroup', 'list'])).rejects.toMatchObject({ code: 2 });
  });

  it('writes a default spec that runc-style tools can edit and run', async () => {
    const b = join(dir, 'from-spec');
    await mkdir(b, { recursive: true });
    await exec(shim, ['spec', '--bundle', b]);
    const config = JSON.parse(await readFile(join(b, 'config.json'), 'utf8')) as Config;
    expect(config.process.terminal).toBe(true);
    expect(config.root).toEqual({ path: 'rootfs', readonly: true });
    await expect(exec(shim, ['spec', '--bundle', b])).rejects.toMatchObject({ stderr: expect.stringContaining('exists') });
    config.process.terminal = false;
    config.process.args = ['sh', '-c', 'echo $(hostname)'];
    await writeFile(join(b, 'config.json'), JSON.stringify(config));
    await exec('ln', ['-s', rootfs, join(b, 'rootfs')]);
    expect((await cli('run', '--bundle', b, `spec-${process.pid}`)).stdout).toBe('berth\n');
  });

  it('create with --pid-file, state and list formats, kill by name, delete', async () => {
    const { id, path } = await bundle(['sh', '-c', 'trap "exit 5" USR1; sleep 30 & wait']);
    expect(await detached('create', '--bundle', path, '--pid-file', join(dir, `${id}.pid`), id)).toBe(0);
    const pid = Number(await readFile(join(dir, `${id}.pid`), 'utf8'));
    const state = JSON.parse((await cli('state', id)).stdout) as Record<string, unknown>;
    expect(state).toMatchObject({ ociVersion: '1.0.2', id, pid, status: 'created', bundle: path, rootfs });
    expect((await cli('state', id)).stdout).toMatch(/^{\n  "ociVersion": "1.0.2",\n  "id": /);
    const table = (await cli('list')).stdout.split('\n');
    expect(table[0]).toMatch(/^ID\s+PID\s+STATUS\s+BUNDLE\s+CREATED\s+OWNER$/);
    expect(table.find((l) => l.startsWith(`${id} `))).toMatch(new RegExp(`^${id}\\s+${pid}\\s+created\\s+${path}`));
    expect((await cli('list', '-q')).stdout.split('\n')).toContain(id);
    await cli('start', id);
    // pid 1 drops signals it has no handler for: wait until the trap is set (sleep is running).
    await until('the trap', async () => ((await pidsOf(id)).length === 2 ? true : undefined));
    await cli('kill', id, 'SIGUSR1');
    await until('the exit', async () => ((await statusOf(id)) === 'stopped' ? true : undefined));
    expect(JSON.parse((await cli('state', id)).stdout)).toMatchObject({ status: 'stopped', exitCode: 5, pid: 0 });
    await cli('delete', id);
    await expect(cli('state', id)).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining(`container \`${id}\` does not exist`) });
    // runc: delete --force of a container that is not there succeeds.
    await cli('delete', '--force', id);
    await expect(cli('delete', id)).rejects.toMatchObject({ code: 1 });
  });

  it('ps lists the container processes, as a table or JSON', async () => {
    const { id, path } = await bundle(['sh', '-c', 'sleep 31 & sleep 32']);
    expect(await detached('run', '-d', '--bundle', path, id)).toBe(0);
    const pids = await until('both sleeps', async () => {
      const p = await pidsOf(id);
      return p.length === 2 ? p : undefined;
    });
    const table = (await cli('ps', id)).stdout.split('\n').filter(Boolean);
    expect(table[0]).toMatch(/PID/);
    expect(table.slice(1).map((l) => /sleep 3[12]/.test(l))).toEqual([true, true]);
    // The table's PID column is the host pid, as the JSON lists them.
    for (const pid of pids) expect(table.some((l) => l.split(/\s+/).includes(String(pid)))).toBe(true);
    await cli('delete', '--force', id);
  });

  it('sends the pty master to a --console-socket', async () => {
    const { id, path } = await bundle(['sh', '-c', 'tty; read x; echo "got $x"'], (c) => (c.process.terminal = true));
    const socket = join(dir, `${id}.sock`);
    const receiver = spawn(recvtty, [socket], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = createInterface({ input: receiver.stdout! });
    const seen: string[] = [];
    const listening = new Promise<void>((resolve) => lines.on('line', (l) => (seen.push(l), l === 'listening' && resolve())));
    await listening;
    expect(await detached('run', '-d', '--console-socket', socket, '--bundle', path, id)).toBe(0);
    receiver.stdin!.write('hello\r');
    await new Promise((r) => receiver.once('exit', r));
    expect(seen).toContain('got /dev/pts/0');
    expect(seen.some((l) => l.includes('/dev/pts/0'))).toBe(true);
    expect(seen.some((l) => l.includes('got hello'))).toBe(true);
    await cli('delete', '--force', id);
  });

  it('runs the host hooks with the state on stdin', async () => {
    const log = join(dir, 'hooks.log');
    const hook = (name: string) => ({ path: '/bin/sh', args: ['sh', '-c', `printf "${name} " >> ${log}; cat >> ${log}; echo >> ${log}`] });
    const { id, path } = await bundle(['true'], (c) => {
      c.hooks = { prestart: [hook('prestart')], createRuntime: [hook('createRuntime')], poststart: [hook('poststart')], poststop: [hook('poststop')] };
    });
    await cli('run', '--bundle', path, id);
    const lines = (await readFile(log, 'utf8')).trim().split('\n');
    expect(lines.map((l) => l.split(' ')[0])).toEqual(['prestart', 'createRuntime', 'poststart', 'poststop']);
    const state = JSON.parse(lines[0]!.slice('prestart '.length)) as Record<string, unknown>;
    expect(state).toMatchObject({ id, status: 'creating', bundle: path });
    expect(state.pid).toBeGreaterThan(1);
  });

  it('runs poststart hooks at start for a created container', async () => {
    const log = join(dir, 'poststart.log');
    const { id, path } = await bundle(['sleep', '30'], (c) => {
      c.hooks = { poststart: [{ path: '/bin/sh', args: ['sh', '-c', `cat > ${log}`] }] };
    });
    expect(await detached('create', '--bundle', path, id)).toBe(0);
    await expect(readFile(log)).rejects.toThrow();
    await cli('start', id);
    expect(JSON.parse(await readFile(log, 'utf8'))).toMatchObject({ id, status: 'running' });
    await cli('delete', '--force', id);
  });

  it('refuses hooks it cannot run and a failing hook stops the create', async () => {
    const unsupported = await bundle(['true'], (c) => (c.hooks = { createContainer: [{ path: '/bin/true' }] }));
    await expect(cli('run', '--bundle', unsupported.path, unsupported.id)).rejects.toMatchObject({ stderr: expect.stringContaining('hooks.createContainer') });
    const failing = await bundle(['true'], (c) => (c.hooks = { prestart: [{ path: '/bin/false' }] }));
    await expect(cli('run', '--bundle', failing.path, failing.id)).rejects.toMatchObject({ stderr: expect.stringContaining('hooks.prestart[0] (/bin/false) failed') });
    await expect(cli('state', failing.id)).rejects.toMatchObject({ code: 1 });
  });

  it('raises ambient capabilities for a non-root user', async () => {
    const caps = ['CAP_NET_BIND_SERVICE'];
    const { id, path } = await bundle(['sh', '-c', 'grep -E "^Cap(Eff|Amb)" /proc/self/status'], (c) => {
      c.process.user = { uid: 1000, gid: 1000 };
      c.process.capabilities = { bounding: caps, effective: caps, permitted: caps, inheritable: caps, ambient: caps };
    });
    expect((await cli('run', '--bundle', path, id)).stdout).toBe('CapEff:\t0000000000000400\nCapAmb:\t0000000000000400\n');
  });

  it("update takes runc's flags (sizes with units, -1) or -r with a resources JSON on stdin", async () => {
    const { id, path } = await bundle(['sleep', '30'], (c) => {
      (c as Config & { linux: { resources?: unknown } }).linux.resources = { memory: { limit: 64 << 20 }, pids: { limit: 40 } };
    });
    expect(await detached('run', '-d', '--bundle', path, id)).toBe(0);
    const state = JSON.parse((await cli('state', id)).stdout) as { cgroup: { layout: string; paths: Record<string, string> }; resources: unknown };
    expect(state.resources).toEqual({ memory: { limit: 64 << 20 }, pids: { limit: 40 } });
    const file = (controller: string, name: string) => {
      const key = Object.keys(state.cgroup.paths).find((k) => k.split(',').includes(controller))!;
      return readFile(join(state.cgroup.paths[key]!, name), 'utf8').then((t) => t.trim());
    };
    await cli('update', '--memory', '32m', '--memory-reservation', '16MiB', '--pids-limit', '9', '--cpu-share', '300', id);
    let now = JSON.parse((await cli('state', id)).stdout) as { resources: unknown };
    expect(now.resources).toEqual({ memory: { limit: 32 << 20, reservation: 16 << 20 }, cpu: { shares: 300 }, pids: { limit: 9 } });
    if (state.cgroup.layout !== 'v2') {
      expect(await file('memory', 'memory.limit_in_bytes')).toBe(String(32 << 20));
      expect(await file('memory', 'memory.soft_limit_in_bytes')).toBe(String(16 << 20));
      expect(await file('pids', 'pids.max')).toBe('9');
      expect(await file('cpu', 'cpu.shares')).toBe('300');
    }
    const piped = spawn(shim, ['--root', root, 'update', '-r', '-', id], { stdio: ['pipe', 'ignore', 'pipe'] });
    const pipedErr: Buffer[] = [];
    piped.stderr!.on('data', (d: Buffer) => pipedErr.push(d));
    piped.stdin!.end(JSON.stringify({ memory: { limit: -1 }, pids: { limit: -1 } }));
    // Node's stdin pipe is a socket: the runtime reads fd 0, it cannot reopen /dev/stdin.
    expect([await new Promise((r) => piped.once('close', r)), Buffer.concat(pipedErr).toString()]).toEqual([0, '']);
    now = JSON.parse((await cli('state', id)).stdout) as { resources: unknown };
    expect(now.resources).toEqual({ memory: { limit: -1, reservation: 16 << 20, swap: -1 }, cpu: { shares: 300 }, pids: { limit: -1 } });
    if (state.cgroup.layout !== 'v2') expect(await file('pids', 'pids.max')).toBe('max');
    await expect(cli('update', '--memory', '12q', id)).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining('--memory: unknown unit in `12q`') });
    await expect(cli('update', '--cpu-rt-runtime', '100', id)).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining('not supported') });
    await expect(cli('update', '--memory', '1g')).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining('missing container id') });
    await cli('delete', '--force', id);
  });

  it('exec joins the cgroup and every namespace of the container', async () => {
    const { id, path } = await bundle(['sleep', '30']);
    expect(await detached('run', '-d', '--bundle', path, id)).toBe(0);
    const inside = (await cli('exec', id, 'sh', '-c', 'cat /proc/self/cgroup; for n in net pid uts ipc; do readlink /proc/self/ns/$n; done')).stdout;
    const pid = (JSON.parse((await cli('state', id)).stdout) as { pid: number }).pid;
    const init = (await readFile(`/proc/${pid}/cgroup`, 'utf8')).trim();
    const ns = await Promise.all(['net', 'pid', 'uts', 'ipc'].map((n) => exec('readlink', [`/proc/${pid}/ns/${n}`]).then((r) => r.stdout.trim())));
    expect(inside.trim()).toBe(`${init}\n${ns.join('\n')}`);
    await cli('delete', '--force', id);
  });
});
