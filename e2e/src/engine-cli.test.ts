import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as pty from 'node-pty';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry } from '@berth/tools/registry-rig';
import { pushBusyboxImage } from '@berth/tools/test-images';
import { docker, engine, engineBin, engineEnv, engineUnavailable, eventually, makeEngineHome, startServe, type EngineHome } from './engine-harness.js';

// The `engine` CLI daemonless (the local engine in the CLI process) with real containers: every
// command's lifecycle, docker's flags and exit codes, containers outliving the CLI, restart
// policies under `engine serve`, and many CLIs at once.
let skip: string | undefined;
let home: EngineHome | undefined;
const none = ['--network', 'none'];

beforeAll(async () => {
  skip = engineUnavailable();
  if (!skip) home = await makeEngineHome({ busyboxTag: 'busybox:latest' });
}, 120_000);

afterAll(async () => {
  await home?.destroy();
});

const e = (args: readonly string[], input?: string) => engine(home!, args, input === undefined ? {} : { input });

describe('engine run', () => {
  it('returns the container’s status and docker’s 125/126/127', async (ctx) => {
    if (skip) ctx.skip(skip);
    expect(await e(['run', '--rm', ...none, 'busybox', 'sh', '-c', 'echo out; echo err >&2; exit 3'])).toEqual({ code: 3, stdout: 'out\n', stderr: 'err\n' });
    expect((await e(['run', '--rm', ...none, 'busybox', 'no-such-command'])).code).toBe(127);
    expect((await e(['run', '--rm', ...none, 'busybox', '/etc'])).code).toBe(126);
    expect((await e(['run', '--rm', ...none, '--pull', 'never', 'no-such-image'])).code).toBe(125);
    expect((await e(['run', '--bogus-flag', 'busybox'])).code).toBe(125);
  });

  it('applies docker’s run flags', async (ctx) => {
    if (skip) ctx.skip(skip);
    const dir = join(home!.dir, 'flags');
    await mkdir(join(dir, 'bind'), { recursive: true });
    await writeFile(join(dir, 'bind', 'in.txt'), 'from host\n');
    await writeFile(join(dir, 'env.list'), '# comment\nFROM_FILE=yes\n');
    const script = [
      'echo "env=$A $FROM_FILE"',
      'echo "cwd=$(pwd) user=$(id -u):$(id -g) host=$(hostname)"',
      'cat /bind/in.txt',
      'touch /bind/ro 2>/dev/null && echo bind-writable || echo bind-readonly',
      'touch /rootfile 2>/dev/null && echo root-writable || echo root-readonly',
      'echo tmpfs=$(grep " /scratch " /proc/mounts | cut -d" " -f3)',
      'echo mnt=$(cat /m/in.txt)',
    ].join('; ');
    const r = await e([
      'run', '--rm', ...none, '-e', 'A=1', '--env-file', join(dir, 'env.list'), '-w', '/tmp', '-u', '1000:1000', '--hostname', 'flaghost',
      '-v', `${join(dir, 'bind')}:/bind:ro`, '--mount', `type=bind,source=${join(dir, 'bind')},target=/m,readonly`, '--tmpfs', '/scratch', '--read-only',
      '--entrypoint', 'sh', 'busybox', '-c', script,
    ]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('env=1 yes\ncwd=/tmp user=1000:1000 host=flaghost\nfrom host\nbind-readonly\nroot-readonly\ntmpfs=tmpfs\nmnt=from host\n');
    const limits = await e(['run', '--rm', ...none, '--memory', '64m', '--pids-limit', '20', '--cpus', '0.5', 'busybox', 'sh', '-c', 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max']);
    expect(limits.stdout).toBe(`${64 * 1024 * 1024}\n20\n`);
    const caps = await e(['run', '--rm', ...none, '--cap-drop', 'ALL', '--cap-add', 'NET_RAW', 'busybox', 'sh', '-c', 'grep CapEff /proc/self/status']);
    expect(caps.stdout).toBe('CapEff:\t0000000000002000\n');
    const init = await e(['run', '--rm', ...none, '--init', 'busybox', 'sh', '-c', 'cat /proc/1/comm']);
    expect(init.stdout).not.toBe('sh\n');
  });

  it('keeps named volumes, seeded from the image path on first use', async (ctx) => {
    if (skip) ctx.skip(skip);
    expect((await e(['run', '--rm', ...none, '-v', 'seeded:/etc', 'busybox', 'cat', '/etc/hostname'])).stdout).toBe('busybox\n');
    expect((await e(['run', '--rm', ...none, '-v', 'seeded:/data', 'busybox', 'sh', '-c', 'echo more >> /data/hostname; cat /data/hostname'])).stdout).toBe('busybox\nmore\n');
    expect((await e(['volume', 'ls', '-q'])).stdout).toContain('seeded');
    expect((await e(['volume', 'inspect', '-f', '{{.Name}} {{.Driver}}', 'seeded'])).stdout).toBe('seeded local\n');
    expect((await e(['volume', 'rm', 'seeded'])).code).toBe(0);
  });

  it('gives -it a terminal that follows the window', async (ctx) => {
    if (skip) ctx.skip(skip);
    const term = pty.spawn(process.execPath, [engineBin, 'run', '--rm', '-it', ...none, 'busybox', 'sh'], { cols: 77, rows: 22, env: engineEnv(home!, { TERM: 'xterm' }) as Record<string, string> });
    let screen = '';
    term.onData((s) => (screen += s));
    const exited = new Promise<number>((resolve) => term.onExit((x) => resolve(x.exitCode)));
    const waitFor = async (re: RegExp) => {
      for (let i = 0; i < 200 && !re.test(screen); i++) await new Promise((r) => setTimeout(r, 50));
      expect(screen).toMatch(re);
    };
    await waitFor(/# /);
    term.write('stty size\r');
    await waitFor(/22 77/);
    term.resize(101, 33);
    await new Promise((r) => setTimeout(r, 300));
    term.write('stty size\r');
    await waitFor(/33 101/);
    term.write('exit 9\r');
    expect(await exited).toBe(9);
  });

  it('detaches from -it on ctrl-p ctrl-q and leaves the container running', async (ctx) => {
    if (skip) ctx.skip(skip);
    const term = pty.spawn(process.execPath, [engineBin, 'run', '-it', '--name', 'detachable', ...none, 'busybox', 'sh'], { cols: 80, rows: 24, env: engineEnv(home!, { TERM: 'xterm' }) as Record<string, string> });
    let screen = '';
    term.onData((s) => (screen += s));
    const exited = new Promise<number>((resolve) => term.onExit((x) => resolve(x.exitCode)));
    for (let i = 0; i < 200 && !/# /.test(screen); i++) await new Promise((r) => setTimeout(r, 50));
    term.write('\x10\x11');
    const status = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('still attached after 10 s'), 10_000))]);
    if (typeof status === 'string') term.kill();
    try {
      expect(status).toBe(0);
      expect((await e(['inspect', '-f', '{{.State.Running}}', 'detachable'])).stdout).toBe('true\n');
      // Back in with attach, out again with keys of its own.
      const again = pty.spawn(process.execPath, [engineBin, 'attach', '--detach-keys', 'ctrl-x', 'detachable'], { cols: 80, rows: 24, env: engineEnv(home!, { TERM: 'xterm' }) as Record<string, string> });
      let seen = '';
      again.onData((x) => (seen += x));
      const left = new Promise<number>((resolve) => again.onExit((x) => resolve(x.exitCode)));
      again.write('echo back-$((20+1))\r');
      for (let i = 0; i < 200 && !seen.includes('back-21'); i++) await new Promise((r) => setTimeout(r, 50));
      again.write('\x18');
      const attachStatus = await Promise.race([left, new Promise<string>((r) => setTimeout(() => r('still attached after 10 s'), 10_000))]);
      if (typeof attachStatus === 'string') again.kill();
      expect(seen).toContain('back-21');
      expect(attachStatus).toBe(0);
      expect((await e(['inspect', '-f', '{{.State.Running}}', 'detachable'])).stdout).toBe('true\n');
    } finally {
      await e(['rm', '-f', 'detachable']);
    }
  });
});

describe('container lifecycle', () => {
  it('creates, starts, stops, restarts, pauses, kills, renames, updates and removes', async (ctx) => {
    if (skip) ctx.skip(skip);
    const id = (await e(['create', ...none, '--name', 'life', '--stop-signal', 'SIGUSR1', '--stop-timeout', '2', 'busybox', 'sh', '-c', 'trap "echo usr1; exit 5" USR1; while true; do sleep 0.1; done'])).stdout.trim();
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    expect((await e(['ps', '-a', '--filter', 'name=life', '--format', '{{.State}}'])).stdout).toBe('created\n');
    expect((await e(['start', 'life'])).stdout).toBe('life\n');
    expect((await e(['pause', 'life'])).code).toBe(0);
    expect((await e(['inspect', '-f', '{{.State.Status}}', 'life'])).stdout).toBe('paused\n');
    expect((await e(['unpause', 'life'])).code).toBe(0);
    expect((await e(['stop', 'life'])).code).toBe(0);
    expect((await e(['inspect', '-f', '{{.State.ExitCode}}', 'life'])).stdout).toBe('5\n');
    expect((await e(['logs', 'life'])).stdout).toBe('usr1\n');
    expect((await e(['restart', '-t', '1', 'life'])).code).toBe(0);
    expect((await e(['update', '--memory', '32m', 'life'])).code).toBe(0);
    expect((await e(['inspect', '-f', '{{.HostConfig.Memory}}', 'life'])).stdout).toBe(`${32 * 1024 * 1024}\n`);
    expect((await e(['rename', 'life', 'life2'])).code).toBe(0);
    expect((await e(['kill', 'life2'])).code).toBe(0);
    expect((await e(['wait', 'life2'])).stdout).toBe('137\n');
    const again = await e(['kill', 'life2']);
    expect(again.code).toBe(1);
    expect((await e(['rm', 'life2'])).stdout).toBe('life2\n');
    expect((await e(['inspect', 'life2'])).code).toBe(1);
  });

  it('keeps a detached container running after the CLI exits, with exec, attach, top, stats and logs', async (ctx) => {
    if (skip) ctx.skip(skip);
    await e(['run', '-d', ...none, '--name', 'bg', '-l', 'role=bg', 'busybox', 'sh', '-c', 'i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done']);
    const running = await eventually(async () => (await e(['ps', '--filter', 'label=role=bg', '--format', '{{.Names}} {{.State}}'])).stdout === 'bg running\n');
    expect(running).toBe(true);
    expect(await e(['exec', '-e', 'X=1', '-u', '1000', '-w', '/tmp', 'bg', 'sh', '-c', 'echo $X $(id -u) $(pwd); exit 4'])).toMatchObject({ code: 4, stdout: '1 1000 /tmp\n' });
    expect((await e(['exec', '-d', 'bg', 'touch', '/tmp/by-detached-exec'])).code).toBe(0);
    expect(await eventually(async () => (await e(['exec', 'bg', 'ls', '/tmp/by-detached-exec'])).code === 0)).toBe(true);
    const top = await e(['top', 'bg']);
    expect(top.stdout).toMatch(/PID/);
    expect(top.stdout).toContain('while true');
    const stats = await e(['stats', '--no-stream', '--format', '{{.Name}} {{.PIDs}}', 'bg']);
    expect(stats.stdout).toMatch(/^bg [1-9]\d*\n$/);
    const logs = await e(['logs', '--tail', '2', 'bg']);
    expect(logs.stdout.split('\n').filter(Boolean)).toHaveLength(2);
    const stamped = await e(['logs', '-t', '--tail', '1', 'bg']);
    expect(stamped.stdout).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z tick \d+\n$/);
    const since = await e(['logs', '--since', '1s', 'bg']);
    expect(since.stdout.split('\n').filter(Boolean).length).toBeLessThan(10);
    const follow = spawn(process.execPath, [engineBin, 'logs', '-f', '--tail', '0', 'bg'], { env: engineEnv(home!) });
    let followed = '';
    follow.stdout.on('data', (d: Buffer) => (followed += d.toString()));
    expect(await eventually(async () => /tick \d+\n/.test(followed))).toBe(true);
    follow.kill('SIGINT');
    await once(follow, 'exit');
    expect((await e(['rm', '-f', 'bg'])).code).toBe(0);
  });

  it('copies into and out of a container without escaping its root, and commits, diffs and exports', async (ctx) => {
    if (skip) ctx.skip(skip);
    const dir = join(home!.dir, 'cp');
    await mkdir(join(dir, 'tree', 'sub'), { recursive: true });
    await writeFile(join(dir, 'tree', 'sub', 'file'), 'copied\n');
    await writeFile(join(dir, 'evil'), 'should stay inside\n');
    await e(['run', '-d', ...none, '--name', 'fs', 'busybox', 'sh', '-c', 'ln -s / /tmp/to-root; ln -s ../../../../../ /tmp/up; sleep 300']);
    await eventually(async () => (await e(['exec', 'fs', 'ls', '/tmp/up'])).code === 0);
    expect((await e(['cp', join(dir, 'tree'), 'fs:/tmp/tree'])).code).toBe(0);
    expect((await e(['exec', 'fs', 'cat', '/tmp/tree/sub/file'])).stdout).toBe('copied\n');
    expect((await e(['cp', join(dir, 'evil'), 'fs:/tmp/to-root/evil-through-link'])).code).toBe(0);
    expect((await e(['cp', join(dir, 'evil'), 'fs:/tmp/up/evil-through-dotdot'])).code).toBe(0);
    expect(existsSync('/evil-through-link')).toBe(false);
    expect(existsSync('/evil-through-dotdot')).toBe(false);
    expect((await e(['exec', 'fs', 'cat', '/evil-through-link', '/evil-through-dotdot'])).stdout).toBe('should stay inside\nshould stay inside\n');
    expect((await e(['cp', 'fs:/tmp/tree', join(dir, 'back')])).code).toBe(0);
    expect(await readFile(join(dir, 'back', 'sub', 'file'), 'utf8')).toBe('copied\n');
    expect((await e(['cp', 'fs:/tmp/to-root/etc/hostname', join(dir, 'hostname')])).code).toBe(0);
    expect(await readFile(join(dir, 'hostname'), 'utf8')).not.toBe(await readFile('/etc/hostname', 'utf8').catch(() => ''));
    const diff = await e(['diff', 'fs']);
    expect(diff.stdout).toContain('A /tmp/tree');
    expect(diff.stdout).toContain('A /tmp/to-root');
    const commit = await e(['commit', '-c', 'CMD ["cat","/tmp/tree/sub/file"]', 'fs', 'committed:1']);
    expect(commit.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
    expect((await e(['run', '--rm', ...none, 'committed:1'])).stdout).toBe('copied\n');
    expect((await e(['export', '-o', join(dir, 'fs.tar'), 'fs'])).code).toBe(0);
    expect((await readFile(join(dir, 'fs.tar'))).length).toBeGreaterThan(500_000);
    await e(['rm', '-f', 'fs']);
  });
});

describe('images', () => {
  it('tags, lists, inspects, saves, loads, imports and removes', async (ctx) => {
    if (skip) ctx.skip(skip);
    expect((await e(['tag', 'busybox', 'mirror/box:v1'])).code).toBe(0);
    const list = await e(['images', '--format', '{{.Repository}}:{{.Tag}}']);
    expect(list.stdout.split('\n')).toEqual(expect.arrayContaining(['busybox:latest', 'mirror/box:v1']));
    expect((await e(['images', '-q', 'mirror/box'])).stdout).toMatch(/^[0-9a-f]{12}\n$/);
    expect((await e(['image', 'inspect', '-f', '{{.Os}}/{{.Architecture}} {{json .Config.Cmd}}', 'mirror/box:v1'])).stdout).toMatch(/^linux\/\w+ \["sh"\]\n$/);
    const tar = join(home!.dir, 'saved.tar');
    expect((await e(['save', '-o', tar, 'mirror/box:v1'])).code).toBe(0);
    expect((await e(['rmi', 'mirror/box:v1'])).stdout).toBe('Untagged: mirror/box:v1\n');
    expect((await e(['load', '-i', tar])).stdout).toBe('Loaded image: mirror/box:v1\n');
    expect((await e(['history', '-q', 'mirror/box:v1'])).stdout.split('\n')[0]).toMatch(/^[0-9a-f]{12}$/);
    const rootfs = join(home!.dir, 'busybox.tar');
    expect((await e(['import', '-m', 'imported', rootfs, 'imported:1'])).stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
    expect((await e(['rmi', 'imported:1', 'mirror/box:v1'])).code).toBe(0);
  });

  it('builds with docker’s build flags, --output and --iidfile', async (ctx) => {
    if (skip) ctx.skip(skip);
    const context = join(home!.dir, 'ctx');
    await mkdir(context, { recursive: true });
    await writeFile(join(context, 'Dockerfile'), 'FROM busybox AS base\nARG WHO=nobody\nRUN echo "hello $WHO" > /greeting\nFROM base AS final\nLABEL stage=final\nCMD ["cat", "/greeting"]\n');
    await writeFile(join(context, '.dockerignore'), 'secret\n');
    await writeFile(join(context, 'secret'), 'no');
    const iid = join(home!.dir, 'iid');
    const build = await e(['build', '-t', 'built:1', '-t', 'built:latest', '--build-arg', 'WHO=berth', '--label', 'by=e2e', '--iidfile', iid, context]);
    expect(build.code).toBe(0);
    // docker's classic builder makes --label one more step at the end.
    expect(build.stdout).toContain('Step 1/7 : FROM busybox AS base');
    expect(build.stdout).toContain('Step 7/7 : LABEL by=e2e');
    expect((await readFile(iid, 'utf8'))).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect((await e(['run', '--rm', ...none, 'built:1'])).stdout).toBe('hello berth\n');
    expect((await e(['inspect', '-f', '{{index .Config.Labels "by"}} {{index .Config.Labels "stage"}}', 'built:latest'])).stdout).toBe('e2e final\n');
    const quiet = await e(['build', '-q', '--target', 'base', context]);
    expect(quiet.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
    const out = join(home!.dir, 'out');
    expect((await e(['build', '--output', `type=local,dest=${out}`, context])).code).toBe(0);
    expect(await readFile(join(out, 'greeting'), 'utf8')).toBe('hello nobody\n');
    expect((await readdir(out)).includes('secret')).toBe(false);
    const bad = await e(['build', '-f', join(context, 'nope'), context]);
    expect(bad.code).toBe(1);
  });
});

describe('registries', () => {
  it('logs in, pulls and pushes with the stored credentials, and logs out', async (ctx) => {
    if (skip) ctx.skip(skip);
    const registry = await startRegistry({ auth: 'token' });
    try {
      const [user, password] = Object.entries(registry.users)[0]!;
      await pushBusyboxImage(registry, 'private/box:1');
      const ref = `${registry.host}/private/box:1`;
      const denied = await e(['pull', ref]);
      expect(denied.code).toBe(1);
      expect(denied.stderr).toMatch(/^engine: /);
      const bad = await engine(home!, ['login', '-u', user, '--password-stdin', registry.host], { input: 'wrong-password\n' });
      expect(bad.code).toBe(1);
      const login = await engine(home!, ['login', '-u', user, '--password-stdin', registry.host], { input: `${password}\n` });
      expect(login).toMatchObject({ code: 0, stdout: 'Login Succeeded\n' });
      // As docker stores it: the password, or (when the registry hands one out) an identity token instead.
      const config = JSON.parse(await readFile(join(home!.home, '.docker', 'config.json'), 'utf8')) as { auths: Record<string, { auth: string; identitytoken?: string }> };
      const entry = config.auths[registry.host]!;
      expect(Buffer.from(entry.auth, 'base64').toString()).toBe(entry.identitytoken ? `${user}:` : `${user}:${password}`);
      const pulled = await e(['pull', ref]);
      expect(pulled.code).toBe(0);
      expect(pulled.stdout.split('\n').filter(Boolean).pop()).toBe(ref);
      expect((await e(['tag', ref, `${registry.host}/private/copy:2`])).code).toBe(0);
      const pushed = await e(['push', `${registry.host}/private/copy:2`]);
      expect(pushed.code).toBe(0);
      expect(pushed.stdout).toMatch(/2: digest: sha256:[0-9a-f]{64} size: \d+/);
      // run pulls an image it does not have, as docker does (from dist/run.cjs, the run bundle).
      expect((await e(['rmi', ref])).code).toBe(0);
      const ran = await e(['run', '--rm', ...none, ref, 'echo', 'pulled-and-ran']);
      expect(ran).toMatchObject({ code: 0, stdout: 'pulled-and-ran\n' });
      expect(ran.stderr).toContain(`Unable to find image '${ref}' locally`);
      expect((await e(['logout', registry.host])).stdout).toBe(`Removing login credentials for ${registry.host}\n`);
      expect((await e(['rmi', ref, `${registry.host}/private/copy:2`])).code).toBe(0);
      expect((await e(['pull', ref])).code).toBe(1);
    } finally {
      await registry.stop();
    }
  });
});

describe('several engines at once', () => {
  it('runs 20 `engine run --rm` in parallel, all succeed, nothing is left', async (ctx) => {
    if (skip) ctx.skip(skip);
    const before = (await e(['ps', '-aq'])).stdout;
    const runs = await Promise.all(Array.from({ length: 20 }, (_x, i) => e(['--log-level', 'debug', 'run', '--rm', ...none, 'busybox', 'sh', '-c', `echo run-${i}`])));
    runs.forEach((r, i) => expect(r).toMatchObject({ code: 0, stdout: `run-${i}\n` }));
    // Each container's monitor deletes it from the runtime: no run execs the runtime's `delete`,
    // which would race that monitor. (The engine knows the monitor from the runtime's state, also
    // when the process ended before the start recorded it, as these do under load.)
    for (const r of runs) expect(r.stderr).not.toMatch(/"delete"/);
    expect((await e(['ps', '-aq'])).stdout).toBe(before);
    const mounts = (await readFile('/proc/self/mounts', 'utf8')).split('\n').filter((l) => l.includes(home!.root) && l.includes('/containers/'));
    expect(mounts).toEqual([]);
  });

  it('keeps state whole with CLIs and a server working side by side', async (ctx) => {
    if (skip) ctx.skip(skip);
    const serve = await startServe(home!);
    try {
      const host = `unix://${serve.socket}`;
      const work = [
        ...Array.from({ length: 8 }, (_x, i) => e(['run', '--rm', ...none, '--name', `side-cli-${i}`, 'busybox', 'echo', `cli-${i}`])),
        ...Array.from({ length: 8 }, (_x, i) => docker(host, ['run', '--rm', ...none, '--name', `side-api-${i}`, 'busybox', 'echo', `api-${i}`], { home: home!.home })),
        ...Array.from({ length: 4 }, (_x, i) => e(['volume', 'create', `side-vol-${i}`])),
      ];
      const results = await Promise.all(work);
      for (const r of results) expect(r.code).toBe(0);
      expect(results.slice(0, 16).map((r) => r.stdout.trim()).sort()).toEqual([...Array.from({ length: 8 }, (_x, i) => `api-${i}`), ...Array.from({ length: 8 }, (_x, i) => `cli-${i}`)].sort());
      expect((await e(['ps', '-a', '--filter', 'name=side-', '-q'])).stdout).toBe('');
      expect((await e(['volume', 'ls', '-q', '--filter', 'name=side-vol-'])).stdout.split('\n').filter(Boolean).sort()).toEqual(['side-vol-0', 'side-vol-1', 'side-vol-2', 'side-vol-3']);
      expect((await docker(host, ['volume', 'ls', '-q', '--filter', 'name=side-vol-'], { home: home!.home })).stdout.split('\n').filter(Boolean)).toHaveLength(4);
      await e(['volume', 'rm', 'side-vol-0', 'side-vol-1', 'side-vol-2', 'side-vol-3']);
    } finally {
      await serve.stop();
    }
  });
});

describe('engine serve', () => {
  it('restarts containers by policy, under the server and without it', async (ctx) => {
    if (skip) ctx.skip(skip);
    const serve = await startServe(home!);
    const remote = (args: readonly string[]) => engine(home!, args, { env: { DOCKER_HOST: `unix://${serve.socket}` } });
    try {
      await remote(['run', '-d', ...none, '--name', 'flaky', '--restart', 'on-failure:2', 'busybox', 'sh', '-c', 'sleep 0.3; exit 1']);
      const restarted = await eventually(async () => (await remote(['inspect', '-f', '{{.RestartCount}} {{.State.Status}}', 'flaky'])).stdout === '2 exited\n', 150, 200);
      expect(restarted).toBe(true);
      await remote(['run', '-d', ...none, '--name', 'always', '--restart', 'always', 'busybox', 'sh', '-c', 'sleep 0.3; exit 0']);
      expect(await eventually(async () => Number((await remote(['inspect', '-f', '{{.RestartCount}}', 'always'])).stdout) >= 2, 150, 200)).toBe(true);
    } finally {
      await serve.stop();
    }
    await e(['rm', '-f', 'always']);
    // Without a server, the daemonless supervisor the CLI leaves behind applies the policy.
    await e(['run', '-d', ...none, '--name', 'revive', '--restart', 'on-failure:1', 'busybox', 'sh', '-c', 'sleep 0.2; exit 3']);
    expect(await eventually(async () => (await e(['inspect', '-f', '{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}', 'revive'])).stdout === '1 exited 3\n', 150, 200)).toBe(true);
    await e(['rm', '-f', 'flaky', 'revive']);
  });
});
