import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { ErrorKind } from '@berth/errors';
import { writeJsonAtomic } from '@berth/fsutil';
import { buildSpec, type NamespaceMode, type RunMount, type Runtime } from '@berth/runtime';
import { BuildError, BuilderErrorCode } from './errors.js';

/** What `docker build` lets one limit in RUN containers (`--memory`, `--cpu-shares`, `--shm-size`, ...). */
export interface RunLimits {
  /** Memory limit in bytes. */
  readonly memory?: number;
  /** Memory plus swap in bytes, -1 for unlimited swap. */
  readonly memorySwap?: number;
  readonly cpuShares?: number;
  readonly cpusetCpus?: string;
  readonly cpuPeriod?: number;
  readonly cpuQuota?: number;
  /** /dev/shm size in bytes. */
  readonly shmSize?: number;
}

/** The /etc files a build container gets: its hosts and resolv.conf (hostname is its id). */
export interface EtcFiles {
  readonly hosts: string;
  readonly resolvConf: string;
}

/** Options of `runBuildContainer`. */
export interface RunBuildContainerOptions {
  readonly runtime: Runtime;
  /** The container id: 64 hex digits, shown shortened as docker does (` ---> Running in 1a2b3c4d5e6f`). */
  readonly id: string;
  /** The mounted root file system of the step. */
  readonly rootfs: string;
  /** A directory of the step for config.json and the /etc files. */
  readonly bundle: string;
  readonly argv: readonly string[];
  readonly env: readonly string[];
  readonly user: string;
  readonly workdir: string;
  readonly mounts: readonly RunMount[];
  readonly network: NamespaceMode;
  readonly etc: EtcFiles;
  readonly limits?: RunLimits;
  /** Receives the process's output as it comes (stderr flagged). */
  readonly output: (text: string, stderr: boolean) => void;
  readonly signal?: AbortSignal;
}

/** The /etc files of a build container on a network it shares with the host, or none. */
export async function defaultEtcFiles(hostname: string): Promise<EtcFiles> {
  const resolvConf = await readFile('/etc/resolv.conf', 'utf8').catch(() => '');
  return { hosts: `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.0.1\t${hostname}\n`, resolvConf };
}

/**
 * Runs a RUN's process in a container of the step's root file system, through the runtime's
 * `run` (create, start and wait in one call of the shim), in its own cgroup. Returns the exit
 * status; the container is gone when this returns, also after a failure or an abort.
 */
export async function runBuildContainer(o: RunBuildContainerOptions): Promise<number> {
  const hostname = o.id.slice(0, 12);
  const files = { hosts: join(o.bundle, 'hosts'), hostname: join(o.bundle, 'hostname'), resolvConf: join(o.bundle, 'resolv.conf') };
  await Promise.all([writeFile(files.hosts, o.etc.hosts), writeFile(files.hostname, `${hostname}\n`), writeFile(files.resolvConf, o.etc.resolvConf)]);
  let spec;
  try {
    spec = await buildSpec(
      {},
      {
        rootfs: o.rootfs,
        id: o.id,
        hostname,
        cmd: o.argv,
        entrypoint: [],
        env: o.env,
        user: o.user,
        workdir: o.workdir,
        network: o.network,
        ...(o.limits ?? {}),
        mounts: [
          { type: 'bind', source: files.hosts, target: '/etc/hosts' },
          { type: 'bind', source: files.hostname, target: '/etc/hostname' },
          { type: 'bind', source: files.resolvConf, target: '/etc/resolv.conf' },
          ...o.mounts,
        ],
      },
    );
  } catch (err) {
    throw new BuildError(`cannot run ${o.argv.join(' ')}: ${err instanceof Error ? err.message : String(err)}`, { code: BuilderErrorCode.RunFailed, kind: ErrorKind.InvalidArgument, cause: err });
  }
  await writeJsonAtomic(join(o.bundle, 'config.json'), spec, { durable: false });
  try {
    const proc = await o.runtime.run(o.id, { bundle: o.bundle, ...(o.signal ? { signal: o.signal } : {}) });
    const forward = (stream: NodeJS.ReadableStream, stderr: boolean): Promise<void> =>
      new Promise((resolve) => {
        const decoder = new StringDecoder('utf8');
        stream.on('data', (chunk: Buffer) => {
          const text = decoder.write(chunk);
          if (text) o.output(text, stderr);
        });
        stream.on('end', () => {
          const rest = decoder.end();
          if (rest) o.output(rest, stderr);
          resolve();
        });
        stream.on('error', () => resolve());
      });
    const streams = Promise.all([forward(proc.stdout, false), forward(proc.stderr, true)]);
    const code = await proc.wait();
    await streams;
    return code;
  } finally {
    // `run` deletes a container that ended; one left by an abort or a failed start goes here.
    await o.runtime.delete(o.id, { force: true }).catch(() => {});
  }
}
