import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { makeBusyboxRootfs } from './rootfs.js';

const run = promisify(execFile);

/** A private dockerd: its own data root, exec root, containerd namespace and unix socket. */
export interface DockerdRig {
  /** `unix:///tmp/.../docker.sock`, for DOCKER_HOST or `-H`. */
  readonly host: string;
  readonly socketPath: string;
  readonly dir: string;
  /** Runs the docker CLI against this daemon. */
  docker(args: readonly string[], options?: { readonly input?: string }): Promise<{ stdout: string; stderr: string; code: number }>;
  /** Stops the daemon (and its containerd) and removes every file and mount of the rig. */
  stop(): Promise<void>;
}

/** Options of `startDockerd`. */
export interface DockerdRigOptions {
  /** Import a busybox image under this tag (from Debian's static busybox), e.g. `busybox:latest`. */
  readonly busyboxTag?: string;
}

/** Why a private dockerd cannot run here, or undefined when it can. */
export async function dockerdUnavailable(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'a private dockerd needs root';
  for (const cmd of ['dockerd', 'docker', 'containerd']) {
    try {
      await run('sh', ['-c', `command -v ${cmd}`]);
    } catch {
      return `${cmd} is not installed (Debian package docker.io)`;
    }
  }
  return undefined;
}

function ping(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/_ping', method: 'GET', timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/**
 * Starts dockerd without networking of its own (`--bridge=none --iptables=false`), so that it
 * touches nothing shared on the machine, and waits until it answers.
 */
export async function startDockerd(options: DockerdRigOptions = {}): Promise<DockerdRig> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-dockerd-'));
  const socketPath = join(dir, 'docker.sock');
  const tag = dir.slice(-6).toLowerCase().replace(/[^a-z0-9]/g, 'x');
  const child: ChildProcess = spawn(
    'dockerd',
    [
      '--iptables=false',
      '--ip6tables=false',
      '--bridge=none',
      '--data-root', join(dir, 'data'),
      '--exec-root', join(dir, 'exec'),
      '--pidfile', join(dir, 'dockerd.pid'),
      '--containerd-namespace', `berth-${tag}`,
      '--containerd-plugins-namespace', `berth-${tag}-p`,
      '-H', `unix://${socketPath}`,
    ],
    { stdio: ['ignore', 'ignore', 'ignore'], detached: false },
  );
  const exited = once(child, 'exit');
  const docker: DockerdRig['docker'] = (args, opts = {}) =>
    new Promise((resolve, reject) => {
      const p = spawn('docker', ['-H', `unix://${socketPath}`, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      p.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      p.on('error', reject);
      p.on('close', (code) => resolve({ stdout, stderr, code: code ?? 128 }));
      p.stdin.end(opts.input);
    });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(20_000)]);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    }
    // Overlay mounts of containers that were still up, and the exec root's namespaces.
    const mounts = await readFile('/proc/self/mounts', 'utf8');
    const ours = mounts
      .split('\n')
      .map((line) => line.split(' ')[1] ?? '')
      .filter((target) => target.startsWith(dir))
      .sort((a, b) => b.length - a.length);
    for (const target of ours) await run('umount', ['-l', target]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; !(await ping(socketPath)); i++) {
      if (child.exitCode !== null) throw new Error(`dockerd exited with ${child.exitCode} before answering`);
      if (i > 300) throw new Error('dockerd did not answer within 30 s');
      await sleep(100);
    }
    if (options.busyboxTag) {
      const rootfs = join(dir, 'busybox-rootfs');
      await makeBusyboxRootfs(rootfs);
      await run('sh', ['-c', `tar -C "${rootfs}" -c . | docker -H "unix://${socketPath}" import -c 'CMD ["sh"]' - "${options.busyboxTag}"`]);
      await rm(rootfs, { recursive: true, force: true });
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { host: `unix://${socketPath}`, socketPath, dir, docker, stop };
}
