import { randomUUID } from 'node:crypto';
import { readFile, readdir, stat } from 'node:fs/promises';
import { arch, cpus, hostname, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '@berth/fsutil';
import { maxApiVersion, minApiVersion } from '../api/api-version.js';
import type { SystemInfo, SystemVersion } from '../types/system.js';
import type { EngineContext } from './engine-context.js';
import { nowRfc3339 } from './docker-time.js';

/** What `info` and `version` report that only the app knows. */
export interface SystemServiceOptions {
  readonly version: string;
  readonly gitCommit: string;
  readonly labels: readonly string[];
  readonly insecureRegistries: readonly string[];
  /** Docker Hub mirrors, as URLs (`https://mirror.example.com/`). */
  readonly registryMirrors: readonly string[];
  readonly runtimeName: string;
  readonly initPath: string | undefined;
  /** When this build of Berth was made (RFC 3339). */
  readonly buildTime: string;
}

/** Container counts by state, for `info`. */
export interface ContainerCounts {
  readonly total: number;
  readonly running: number;
  readonly paused: number;
  readonly stopped: number;
}

const goArch: Readonly<Record<string, string>> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
const unameArch: Readonly<Record<string, string>> = { x64: 'x86_64', arm64: 'aarch64', arm: 'armv7l', ia32: 'i686', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

async function osRelease(): Promise<{ pretty: string; version: string }> {
  const text = await readFile('/etc/os-release', 'utf8').catch(() => readFile('/usr/lib/os-release', 'utf8').catch(() => ''));
  const field = (key: string) => new RegExp(`^${key}=("?)(.*)\\1$`, 'm').exec(text)?.[2] ?? '';
  return { pretty: field('PRETTY_NAME') || 'Linux', version: field('VERSION_ID') };
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

/** The file system type of a directory, from /proc/self/mountinfo (the longest mount prefix). */
async function fsType(dir: string): Promise<string> {
  const text = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  let best = '';
  let type = 'unknown';
  for (const line of text.split('\n')) {
    const [left, right] = line.split(' - ');
    const mountPoint = left?.split(' ')[4];
    const fs = right?.split(' ')[0];
    if (!mountPoint || !fs) continue;
    if ((dir === mountPoint || dir.startsWith(mountPoint.endsWith('/') ? mountPoint : `${mountPoint}/`)) && mountPoint.length >= best.length) {
      best = mountPoint;
      type = fs;
    }
  }
  return type;
}

/** `info` and `version`: what docker reports about the host and the engine, from the real host. */
export class SystemService {
  readonly #ctx: EngineContext;
  readonly #options: SystemServiceOptions;
  #id: string | undefined;

  constructor(ctx: EngineContext, options: SystemServiceOptions) {
    this.#ctx = ctx;
    this.#options = options;
  }

  /** A stable ID of this state root (docker's engine ID), made once. */
  async engineId(): Promise<string> {
    if (this.#id) return this.#id;
    const path = join(this.#ctx.layout.root, 'engine-id');
    let id = (await readFile(path, 'utf8').catch(() => '')).trim();
    if (!id) {
      id = randomUUID();
      await writeFileAtomic(path, `${id}\n`);
    }
    this.#id = id;
    return id;
  }

  async info(counts: ContainerCounts, images: number): Promise<SystemInfo> {
    const cgroupV2 = await exists('/sys/fs/cgroup/cgroup.controllers');
    const memoryDir = cgroupV2 ? '/sys/fs/cgroup' : '/sys/fs/cgroup/memory';
    const swapLimit = cgroupV2 ? await exists('/sys/fs/cgroup/cgroup.controllers') : await exists(join(memoryDir, 'memory.memsw.limit_in_bytes'));
    const forwarding = (await readFile('/proc/sys/net/ipv4/ip_forward', 'utf8').catch(() => '0')).trim() === '1';
    const os = await osRelease();
    const snapshotter = await this.#ctx.snapshotter();
    const overlay = snapshotter.driver === 'overlay';
    const backing = await fsType(this.#ctx.layout.root);
    const fds = (await readdir('/proc/self/fd').catch(() => [])).length;
    const insecure = ['127.0.0.0/8', ...this.#options.insecureRegistries.filter((r) => /\/\d+$/.test(r))];
    const indexConfigs: Record<string, { Name: string; Mirrors: string[]; Secure: boolean; Official: boolean }> = {
      'docker.io': { Name: 'docker.io', Mirrors: [...this.#options.registryMirrors], Secure: true, Official: true },
    };
    for (const r of this.#options.insecureRegistries.filter((r) => !/\/\d+$/.test(r))) indexConfigs[r] = { Name: r, Mirrors: [], Secure: false, Official: false };
    const runtime = this.#ctx.runtime;
    const warnings: string[] = [];
    if (!swapLimit) warnings.push('WARNING: No swap limit support');
    if (!forwarding) warnings.push('WARNING: IPv4 forwarding is disabled');
    return {
      ID: await this.engineId(),
      Containers: counts.total,
      ContainersRunning: counts.running,
      ContainersPaused: counts.paused,
      ContainersStopped: counts.stopped,
      Images: images,
      Driver: overlay ? 'overlay2' : 'vfs',
      DriverStatus: overlay
        ? [['Backing Filesystem', backing], ['Supports d_type', 'true'], ['Using metacopy', 'false'], ['Native Overlay Diff', 'true'], ['userxattr', 'false']]
        : [['Backing Filesystem', backing]],
      Plugins: { Volume: ['local'], Network: ['bridge', 'host', 'null'], Authorization: null, Log: ['json-file', 'none'] },
      MemoryLimit: true,
      SwapLimit: swapLimit,
      CpuCfsPeriod: true,
      CpuCfsQuota: true,
      CPUShares: true,
      CPUSet: true,
      PidsLimit: true,
      OomKillDisable: !cgroupV2,
      IPv4Forwarding: forwarding,
      Debug: false,
      NFd: fds,
      NGoroutines: 1,
      SystemTime: nowRfc3339(),
      LoggingDriver: 'json-file',
      CgroupDriver: 'cgroupfs',
      CgroupVersion: cgroupV2 ? '2' : '1',
      NEventsListener: 0,
      KernelVersion: release(),
      OperatingSystem: os.pretty,
      OSVersion: os.version,
      OSType: 'linux',
      Architecture: unameArch[arch()] ?? arch(),
      IndexServerAddress: 'https://index.docker.io/v1/',
      RegistryConfig: { InsecureRegistryCIDRs: insecure, IndexConfigs: indexConfigs, Mirrors: [...this.#options.registryMirrors] },
      NCPU: cpus().length,
      MemTotal: totalmem(),
      DockerRootDir: this.#ctx.layout.root,
      HttpProxy: '',
      HttpsProxy: '',
      NoProxy: '',
      Name: hostname(),
      Labels: [...this.#options.labels],
      ExperimentalBuild: false,
      ServerVersion: this.#options.version,
      Runtimes: {
        'berth-runtime': { path: 'berth-runtime' },
        runc: { path: 'runc' },
        crun: { path: 'crun' },
      },
      DefaultRuntime: this.#options.runtimeName.includes('/') ? this.#options.runtimeName : runtime.runtime,
      Swarm: { LocalNodeState: 'inactive', NodeID: '', NodeAddr: '', ControlAvailable: false, Error: '', RemoteManagers: null },
      LiveRestoreEnabled: true,
      Isolation: '',
      InitBinary: this.#options.initPath ?? '',
      SecurityOptions: ['name=seccomp,profile=builtin', ...(cgroupV2 ? ['name=cgroupns'] : [])],
      Warnings: warnings.length ? warnings : null,
    };
  }

  async version(): Promise<SystemVersion> {
    const buildTime = this.#options.buildTime;
    const details = {
      ApiVersion: maxApiVersion,
      MinAPIVersion: minApiVersion,
      GitCommit: this.#options.gitCommit,
      GoVersion: `node ${process.version}`,
      Os: 'linux',
      Arch: goArch[arch()] ?? arch(),
      KernelVersion: release(),
      BuildTime: buildTime,
      Experimental: 'false',
    };
    return {
      Platform: { Name: 'Berth Engine' },
      Components: [
        { Name: 'Engine', Version: this.#options.version, Details: details },
        { Name: this.#ctx.runtime.runtime, Version: this.#options.version, Details: { GitCommit: this.#options.gitCommit } },
      ],
      Version: this.#options.version,
      ApiVersion: maxApiVersion,
      MinAPIVersion: minApiVersion,
      GitCommit: this.#options.gitCommit,
      GoVersion: `node ${process.version}`,
      Os: 'linux',
      Arch: goArch[arch()] ?? arch(),
      KernelVersion: release(),
      Experimental: false,
      BuildTime: buildTime,
    };
  }
}
