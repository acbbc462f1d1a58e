import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildEngineBundle, missingBundleInputs, type BuiltEngineBundle } from './engine-bundle.js';
import { busyboxApplets, busyboxPath } from './rootfs.js';

/**
 * Runs the built `machine` CLI (apps/machine/bin/machine.js, as users do) for the e2e tests and
 * the benchmark, each run with its own store, and builds the engine bundle it installs.
 */

/** The machine launcher. */
export const machineBin = fileURLToPath(new URL('../../apps/machine/bin/machine.js', import.meta.url));
const machineBundle = fileURLToPath(new URL('../../apps/machine/dist/machine.mjs', import.meta.url));
/** The engine launcher (remote mode through DOCKER_HOST, as `machine env` sets it). */
export const engineBin = fileURLToPath(new URL('../../apps/engine/bin/engine.js', import.meta.url));

/** The outcome of one command. */
export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Options of `runCli`. */
export interface CliOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly input?: string | Buffer;
  /** Run inside a private mount namespace whose /etc/hosts is this file (for DNS-named hosts). */
  readonly hostsFile?: string;
}

/** Runs a program to its end and collects its output. */
export function runCli(cmd: string, args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...options.env };
  const argv = options.hostsFile
    ? ['unshare', ['--mount', '--propagation', 'private', 'sh', '-c', 'mount --bind "$0" /etc/hosts && exec "$@"', options.hostsFile, cmd, ...args]] as const
    : ([cmd, args] as const);
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv[1], { env });
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

/** Runs `machine -s STORE ARGS...`. */
export function runMachine(store: string, args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  return runCli(process.execPath, [machineBin, '-s', store, ...args], options);
}

/** Why the machine CLI cannot run here, or undefined. */
export function machineUnavailable(): string | undefined {
  if (!existsSync(machineBundle)) return `${machineBundle} is not built: npx nx run @berth/machine-cli:build`;
  return undefined;
}

/** Why no engine bundle can be built here (the engine app is not built), or undefined. */
export async function engineBundleUnavailable(): Promise<string | undefined> {
  const missing = await missingBundleInputs();
  return missing.length ? `the engine bundle needs ${missing.join(' and ')}` : undefined;
}

/** Builds an engine bundle for this machine's architecture into a fresh directory. */
export async function buildTestBundle(): Promise<BuiltEngineBundle & { readonly dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-bundle-test-'));
  return { ...(await buildEngineBundle({ outDir: dir })), dir };
}

/**
 * A directory with a busybox root filesystem and its tar (`rootfs.tar`), to `docker import` as
 * an image on a provisioned engine: no registry, no Docker Hub.
 */
export async function busyboxImportTar(): Promise<{ readonly dir: string; readonly tar: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-busybox-'));
  const root = join(dir, 'rootfs');
  for (const sub of ['bin', 'etc', 'proc', 'sys', 'dev', 'tmp']) await mkdir(join(root, sub), { recursive: true });
  await copyFile(busyboxPath, join(root, 'bin/busybox'));
  for (const applet of await busyboxApplets()) if (applet !== 'busybox') await symlink('busybox', join(root, 'bin', applet)).catch(() => undefined);
  const tar = join(dir, 'rootfs.tar');
  const result = await runCli('tar', ['-C', root, '-cf', tar, '.']);
  if (result.code !== 0 || !(await stat(tar).catch(() => undefined))) throw new Error(`machine-cli: tar failed: ${result.stderr}`);
  return { dir, tar, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
