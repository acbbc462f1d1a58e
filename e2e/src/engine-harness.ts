import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { makeBusyboxRootfs } from '@berth/tools/rootfs';

const run = promisify(execFile);

/** The built CLI: the launcher and the bundle it runs (tests drive dist/, as users do). */
export const engineBin = fileURLToPath(new URL('../../apps/engine/bin/engine.js', import.meta.url));
const bundle = fileURLToPath(new URL('../../apps/engine/dist/cli.cjs', import.meta.url));
const shim = fileURLToPath(new URL('../../apps/engine/dist/native/berth-runtime', import.meta.url));

/** Why the engine e2e cannot run here, or undefined. */
export function engineUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'the engine e2e needs root (namespaces, mounts, cgroups)';
  if (!existsSync(bundle)) return `${bundle} is not built: npx nx run @berth/engine-cli:build`;
  if (!existsSync(shim)) return `${shim} is not built: npx nx run @berth/engine-cli:build`;
  return undefined;
}

// Servers started for a home, stopped by its destroy() even when a test that started one timed out.
const servesOf = new Map<string, Set<ServeProcess>>();

/** A private engine: its own state root, runtime root, HOME (docker config), bridge and rule tag. */
export interface EngineHome {
  readonly dir: string;
  readonly root: string;
  readonly runroot: string;
  readonly home: string;
  /** Name of its default bridge and tag of its links and firewall rules, unique to this home. */
  readonly bridge: string;
  readonly networkTag: string;
  /** Removes every container, mount and file of this engine. */
  destroy(): Promise<void>;
}

/** The outcome of one command. */
export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a program to its end with `input` on stdin. */
export function runProgram(cmd: string, args: readonly string[], options: { env: NodeJS.ProcessEnv; input?: string | Buffer; cwd?: string }): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: options.env, ...(options.cwd ? { cwd: options.cwd } : {}) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input);
  });
}

/** The environment of a command: PATH, this engine's HOME, nothing inherited by accident. */
export function engineEnv(home: EngineHome, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env['PATH'],
    HOME: home.home,
    BERTH_ROOT: home.root,
    BERTH_RUNROOT: home.runroot,
    BERTH_BRIDGE: home.bridge,
    BERTH_NETWORK_TAG: home.networkTag,
    ...extra,
  };
}

/** `engine ARGS` against this engine, daemonless. */
export function engine(home: EngineHome, args: readonly string[], options: { input?: string | Buffer; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<CommandResult> {
  return runProgram(process.execPath, [engineBin, ...args], { env: engineEnv(home, options.env), ...(options.input === undefined ? {} : { input: options.input }), ...(options.cwd ? { cwd: options.cwd } : {}) });
}

/** `docker ARGS` against a server. */
export function docker(host: string, args: readonly string[], options: { input?: string; env?: NodeJS.ProcessEnv; home: string }): Promise<CommandResult> {
  return runProgram('docker', ['-H', host, ...args], { env: { PATH: process.env['PATH'], HOME: options.home, ...options.env }, ...(options.input === undefined ? {} : { input: options.input }) });
}

/** Makes a fresh engine home and imports a busybox image into it as `tag`. */
export async function makeEngineHome(options: { busyboxTag?: string } = {}): Promise<EngineHome> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-e2e-'));
  const suffix = randomBytes(3).toString('hex');
  const home: EngineHome = {
    dir,
    root: join(dir, 'root'),
    runroot: join(dir, 'run'),
    home: join(dir, 'home'),
    bridge: `be2e${suffix}`,
    networkTag: `e2e${suffix}`,
    destroy: async () => {
      for (const serve of servesOf.get(dir) ?? []) await serve.stop();
      servesOf.delete(dir);
      const ids = await engine(home, ['ps', '-aq']).catch(() => undefined);
      const list = ids?.stdout.split('\n').filter(Boolean) ?? [];
      if (list.length) await engine(home, ['rm', '-f', ...list]).catch(() => undefined);
      // The default network's bridge, links, rules and helper of this home's tag.
      const { NetworkManager } = await import('@berth/network');
      const network = new NetworkManager({ stateDir: join(home.root, 'network'), defaultBridge: home.bridge, ruleTag: home.networkTag });
      await network.removeAll().catch(() => undefined);
      const mounts = (await readFile('/proc/self/mounts', 'utf8'))
        .split('\n')
        .map((l) => l.split(' ')[1] ?? '')
        .filter((t) => t.startsWith(dir))
        .sort((a, b) => b.length - a.length);
      for (const m of mounts) await run('umount', ['-l', m]).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
  await mkdir(home.home, { recursive: true });
  if (options.busyboxTag) {
    const rootfs = join(dir, 'busybox-rootfs');
    await makeBusyboxRootfs(rootfs);
    await run('tar', ['-C', rootfs, '-cf', join(dir, 'busybox.tar'), '.']);
    const imported = await engine(home, ['import', '-c', 'CMD ["sh"]', join(dir, 'busybox.tar'), options.busyboxTag]);
    if (imported.code !== 0) throw new Error(`engine import failed: ${imported.stderr}`);
    await rm(rootfs, { recursive: true, force: true });
  }
  return home;
}

function ping(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/_ping' }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** A running `engine serve`. */
export interface ServeProcess {
  readonly child: ChildProcess;
  readonly socket: string;
  readonly log: () => string;
  stop(): Promise<void>;
}

/** Starts `engine serve` on a unix socket in the home (plus `extra` arguments) and waits until it answers. */
export async function startServe(home: EngineHome, extra: readonly string[] = []): Promise<ServeProcess> {
  const socket = join(home.dir, 'berth.sock');
  const child = spawn(process.execPath, [engineBin, 'serve', '-H', `unix://${socket}`, ...extra], { env: engineEnv(home), stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  for (let i = 0; !(await ping(socket)); i++) {
    if (child.exitCode !== null) throw new Error(`engine serve exited ${child.exitCode}: ${log}`);
    if (i > 300) throw new Error(`engine serve did not answer: ${log}`);
    await sleep(50);
  }
  const serve: ServeProcess = {
    child,
    socket,
    log: () => log,
    stop: async () => {
      servesOf.get(home.dir)?.delete(serve);
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await Promise.race([once(child, 'exit'), sleep(15_000)]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
  servesOf.set(home.dir, (servesOf.get(home.dir) ?? new Set()).add(serve));
  return serve;
}

/** Polls `check` until it holds (or `tries` run out), for things that happen in the background. */
export async function eventually<T>(check: () => Promise<T | undefined | false>, tries = 100, delayMs = 100): Promise<T | undefined> {
  for (let i = 0; i < tries; i++) {
    const v = await check();
    if (v) return v;
    await sleep(delayMs);
  }
  return undefined;
}
