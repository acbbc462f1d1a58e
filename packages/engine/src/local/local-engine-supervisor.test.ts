import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTextLogger } from '@berth/log';
import { NetworkManager } from '@berth/network';
import { loadBusyboxImage } from '@berth/tools/test-images';
import { freeSubnet } from '@berth/tools/free-subnets';
import type { ContainerInspectResponse } from '../types/container.js';
import type { OutputChunk } from '../types/stream.js';
import { LocalEngine, type LocalEngineOptions } from './local-engine.js';

// What outlives one process: restart policies applied by the supervisor after a crash and at
// its start, health checks, the detached supervisor of the daemonless CLI doing --rm, a
// container surviving the process that started it, and 20 processes running --rm at once.

const exec = promisify(execFile);
const tag = `s${process.pid.toString(36)}`;
const distEngine = fileURLToPath(new URL('../../dist/local/local-engine.js', import.meta.url));
let dir = '';
let options: LocalEngineOptions;
let engine: LocalEngine;
const network = { defaultBridge: `bt${tag}0`, ruleTag: tag, defaultSubnet: '', bridgePrefix: `bt${tag}`, vethPrefix: `vt${tag}` };

async function collect(output: AsyncIterable<OutputChunk>): Promise<string> {
  let text = '';
  for await (const c of output) text += c.data.toString();
  return text;
}

/** Waits (bounded) for `check` to hold, re-reading every 100 ms. */
async function eventually<T>(what: string, read: () => Promise<T>, check: (value: T) => boolean, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (check(value)) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: last ${JSON.stringify(value)?.slice(0, 400)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const inspect = (id: string) => engine.inspectContainer(id).catch(() => undefined) as Promise<ContainerInspectResponse | undefined>;

/** Runs a script in a child Node process with the built engine (as the CLI does); resolves with its stdout. */
async function child(script: string): Promise<string> {
  const file = join(dir, `child-${Math.random().toString(16).slice(2)}.mjs`);
  await writeFile(file, `import { LocalEngine } from ${JSON.stringify(distEngine)};\nconst engine = new LocalEngine(${JSON.stringify(options)});\n${script}\nawait engine.close();\n`);
  const { stdout } = await exec(process.execPath, [file], { timeout: 60_000 });
  return stdout;
}



beforeAll(async () => {
  network.defaultSubnet = await freeSubnet();
  dir = await mkdtemp(join(tmpdir(), 'berth-les-'));
  options = { root: join(dir, 'root'), runRoot: join(dir, 'run'), network };
  engine = new LocalEngine({ ...options, ...(process.env['BERTH_TEST_DEBUG'] ? { logger: createTextLogger({ write: (l) => process.stderr.write(`${Date.now() % 100000} ${l}`), level: 'debug' }) } : {}) });
  await loadBusyboxImage(engine);
  // The default network exists before 20 processes race to use it.
  await engine.listNetworks();
});

afterAll(async () => {
  if (!engine) return;
  for (const c of await engine.listContainers({ all: true })) await engine.removeContainer(c.Id, { force: true, volumes: true }).catch(() => {});
  await engine.close();
  // The detached supervisor ends when idle; it must not outlive the test.
  const lock = await readFile(join(dir, 'run', 'supervisor', 'supervisor.lock'), 'utf8').catch(() => '');
  const pid = lock ? (JSON.parse(lock) as { pid: number }).pid : 0;
  if (pid) await eventually('the supervisor to end', async () => readFile(`/proc/${pid}/cmdline`, 'utf8').then((c) => c.includes(dir), () => false), (alive) => !alive, 15_000);
  await new NetworkManager({ ...network, stateDir: join(dir, 'root', 'network') }).removeAll();
  // Nothing may stay mounted; what did is unmounted before the directory goes, then reported.
  const leaked = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(dir));
  for (const m of leaked.reverse()) await promisify(execFile)('umount', ['-l', m]).catch(() => {});
  await rm(dir, { recursive: true, force: true });
  expect(leaked).toEqual([]);
});

describe('LocalEngine supervision', () => {
  it('restarts a container whose process was killed, and at its own start after a crash', async () => {
    const stop = new AbortController();
    const supervising = engine.supervise({ signal: stop.signal });
    try {
      const { Id } = await engine.createContainer({ Image: 'busybox', Cmd: ['sleep', '300'], HostConfig: { NetworkMode: 'none', RestartPolicy: { Name: 'always' } } }, { name: 'phoenix' });
      await engine.startContainer(Id);
      const first = (await inspect(Id))!.State.Pid;
      process.kill(first, 'SIGKILL');
      const restarted = await eventually('a restart', () => inspect(Id), (i) => !!i && i.State.Status === 'running' && i.State.Pid !== first);
      expect(restarted!.RestartCount).toBe(1);
      const failing = await engine.createContainer({ Image: 'busybox', Cmd: ['sh', '-c', 'exit 3'], HostConfig: { NetworkMode: 'none', RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 2 } } });
      await engine.startContainer(failing.Id);
      const done = await eventually('on-failure to give up', () => inspect(failing.Id), (i) => !!i && i.RestartCount === 2 && i.State.Status === 'exited');
      expect(done!.State.ExitCode).toBe(3);
      await engine.removeContainer(failing.Id);
      // A stop by hand is not undone by the policy.
      await engine.stopContainer(Id, { timeout: 1 });
      await new Promise((r) => setTimeout(r, 500));
      expect((await inspect(Id))!.State.Status).toBe('exited');
    } finally {
      stop.abort();
      await supervising;
    }
    // The host went down: process and monitor gone with nobody watching. The next supervisor starts it.
    await engine.startContainer('phoenix');
    const running = (await inspect('phoenix'))!;
    const { stdout } = await exec('ps', ['-o', 'ppid=', '-p', String(running.State.Pid)]);
    process.kill(Number(stdout.trim()), 'SIGKILL');
    process.kill(running.State.Pid, 'SIGKILL');
    const again = new AbortController();
    const boot = engine.supervise({ signal: again.signal });
    try {
      const back = await eventually('a start at boot', () => inspect('phoenix'), (i) => !!i && i.State.Status === 'running' && i.State.Pid !== running.State.Pid);
      expect(back!.State.Running).toBe(true);
    } finally {
      again.abort();
      await boot;
    }
    await engine.removeContainer('phoenix', { force: true });
  });

  it('runs health checks and shows the status in ps and inspect', async () => {
    const stop = new AbortController();
    const supervising = engine.supervise({ signal: stop.signal });
    // Created at once, while the supervisor is still starting up: it must see the start anyway.
    const { Id } = await engine.createContainer({
      Image: 'busybox',
      Cmd: ['sleep', '300'],
      Healthcheck: { Test: ['CMD-SHELL', 'test -f /tmp/ok'], Interval: 200e6, Retries: 2, Timeout: 5e9 },
      HostConfig: { NetworkMode: 'none' },
    });
    try {
      await engine.startContainer(Id);
      expect((await inspect(Id))!.State.Health?.Status).toBe('starting');
      const unhealthy = await eventually('unhealthy', () => inspect(Id), (i) => i?.State.Health?.Status === 'unhealthy');
      expect(unhealthy!.State.Health!.FailingStreak).toBeGreaterThanOrEqual(2);
      const touch = await engine.createExec(Id, { Cmd: ['touch', '/tmp/ok'], AttachStdout: true });
      await collect((await engine.startExec(touch.Id, {}))!.output);
      await eventually('healthy', () => inspect(Id), (i) => i?.State.Health?.Status === 'healthy');
      const [summary] = await engine.listContainers({ filters: { id: [Id] } });
      expect(summary!.Status).toMatch(/^Up .* \(healthy\)$/);
      expect((await engine.listContainers({ filters: { health: ['healthy'] } })).map((c) => c.Id)).toEqual([Id]);
    } finally {
      await engine.removeContainer(Id, { force: true });
      stop.abort();
      await supervising;
    }
  });

  it('keeps a container running after the process that started it exits, and removes a detached --rm one when it ends', async () => {
    const out = await child(`
      const { Id } = await engine.createContainer({ Image: 'busybox', Cmd: ['sh', '-c', 'echo started; sleep 300'], HostConfig: { NetworkMode: 'none' } }, { name: 'orphan' });
      await engine.startContainer(Id);
      const gone = await engine.createContainer({ Image: 'busybox', Cmd: ['sh', '-c', 'sleep 1; echo bye'], HostConfig: { NetworkMode: 'none', AutoRemove: true } }, { name: 'ephemeral' });
      await engine.startContainer(gone.Id);
      process.stdout.write(Id);
    `);
    const info = (await inspect('orphan'))!;
    expect(info.Id).toBe(out);
    expect(info.State.Running).toBe(true);
    expect(await collect((await engine.containerLogs('orphan', { stdout: true })).output)).toBe('started\n');
    // The CLI process is gone; the supervisor it started removes `ephemeral` when it ends.
    await eventually('the --rm container to go', async () => (await engine.listContainers({ all: true, filters: { name: ['ephemeral'] } })).length, (n) => n === 0);
    expect(await engine.stopContainer('orphan', { timeout: 1 })).toBe(true);
    await engine.removeContainer('orphan');
  });

  it('runs 20 --rm containers from 20 processes at once and leaves nothing behind', { timeout: 180_000 }, async () => {
    const runs = Array.from({ length: 20 }, (_, i) =>
      child(`
        const { Id } = await engine.createContainer({ Image: 'busybox', Cmd: ['sh', '-c', 'echo run-${i}'], HostConfig: { AutoRemove: true } });
        const stream = await engine.attachContainer(Id, { stream: true, stdout: true, stderr: true });
        const wait = await engine.waitContainer(Id, { condition: 'removed' });
        await engine.startContainer(Id);
        let text = '';
        for await (const c of stream.output) text += c.data.toString();
        const { StatusCode } = await wait.result;
        process.stdout.write(JSON.stringify({ text, StatusCode, Id }));
      `),
    );
    const results = (await Promise.all(runs)).map((r) => JSON.parse(r) as { text: string; StatusCode: number; Id: string });
    expect(results.map((r) => r.text).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `run-${i}\n`).sort());
    expect(results.every((r) => r.StatusCode === 0)).toBe(true);
    const left = await engine.listContainers({ all: true });
    if (left.length) console.log(JSON.stringify(left.map((c) => [c.Names, c.State, c.Status, c.Command])));
    expect(left).toEqual([]);
    expect(await readdir(join(dir, 'root', 'containers'))).toEqual([]);
    const { stdout } = await exec('ip', ['-br', 'link']);
    expect(stdout.split('\n').filter((l) => l.startsWith(`vt${tag}`))).toEqual([]);
    for (const r of results) await expect(readdir(`/sys/fs/cgroup/pids/berth/${r.Id}`)).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await readFile('/proc/self/mountinfo', 'utf8')).includes(join(dir, 'root', 'containers'))).toBe(false);
  });
});
