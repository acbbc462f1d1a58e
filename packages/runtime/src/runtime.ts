import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, unlinkSync } from 'node:fs';
import { mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { abortError, errnoCode, hasCode, throwIfAborted } from '@berth/errors';
import { noopLogger, type Logger } from '@berth/log';
import { attachSocket, type AttachSession } from './attach.js';
import { RuntimeError, RuntimeErrorCode, buildCommand, runtimeErrorCode } from './errors.js';
import { nativeAddon } from './native-addon.js';
import { spawnProgram, type ProgramExit } from './spawn-program.js';
import type { LogRotation } from './json-file-log.js';
import type { LinuxResources, ProcessSpec, RuntimeSpec } from './oci-spec.js';
import { RuntimeAnnotation } from './spec-builder.js';
import { resolveUser } from './user.js';
import { cgroupPathsOfProcess, readCgroupStats, type CgroupLayout, type CgroupPaths, type ContainerStats } from './stats.js';

/** Which OCI runtime a `Runtime` drives: Berth's own shim, runc, crun, or a path to another. */
export type RuntimeName = 'berth-runtime' | 'runc' | 'crun' | (string & {});

/** Options of `Runtime`. */
export interface RuntimeOptions {
  /** berth-runtime (default), runc, crun, or the path of a runtime with runc's command line. */
  readonly runtime?: RuntimeName;
  /** The runtime's state directory (default /run/berth/runtime, /run/runc, /run/crun). */
  readonly root?: string;
  /** Global options put before every command (for instance `--cgroup-manager=disabled` for crun). */
  readonly runtimeArgs?: readonly string[];
  /**
   * runc, crun or another runtime: run its containers under berth-runtime's monitor, as conmon
   * does for podman, so that the json-file log (and its rotation), attach and the exit record
   * work with them too. berth-runtime then takes every command and hands it to that runtime.
   */
  readonly monitor?: boolean;
  /** With `monitor`: where berth-runtime keeps the monitor's state (default /run/berth/runtime). */
  readonly monitorRoot?: string;
  readonly logger?: Logger;
}

export type ContainerStatus = 'creating' | 'created' | 'running' | 'paused' | 'stopped';

/** What `state` reports: runc's fields, plus the exit and the monitor's paths from berth-runtime. */
export interface ContainerState {
  readonly id: string;
  /** The init's host pid; 0 when stopped. */
  readonly pid: number;
  readonly status: ContainerStatus;
  readonly bundle: string;
  readonly rootfs?: string;
  readonly created?: Date;
  readonly annotations: Readonly<Record<string, string>>;
  /** berth-runtime only: set once the process has exited. */
  readonly exitCode?: number;
  readonly exitSignal?: number;
  readonly finished?: Date;
  readonly oomKilled?: boolean;
  readonly logPath?: string;
  readonly attachSocket?: string;
  readonly monitorPid?: number;
  readonly cgroup?: CgroupPaths;
  /** berth-runtime only: the limits in force, linux.resources of the config merged with every `update`. */
  readonly resources?: LinuxResources;
}

/**
 * How `create` and `run` start a container. Without `logPath` or `attachSocket` a detached
 * container's stdio is /dev/null (the driver gives it none of its own pipes).
 */
export interface CreateOptions {
  /** The bundle directory (config.json and, usually, the rootfs). */
  readonly bundle: string;
  readonly pidFile?: string;
  /** runc's console socket: receives the pty master of a terminal container. */
  readonly consoleSocket?: string;
  readonly noPivot?: boolean;
  /**
   * berth-runtime: the container's stdout and stderr go to this file in docker's json-file
   * format. Without it (docker's `none` log driver) nothing is kept; attach still works.
   */
  readonly logPath?: string;
  /** berth-runtime: rotate `logPath` as docker's json-file driver does (`jsonFileLogRotation` reads docker's --log-opt). */
  readonly logRotation?: LogRotation;
  /** berth-runtime: serve attach on this unix socket (see `attach`). */
  readonly attachSocket?: string;
  /** berth-runtime: give the process a stdin that attached clients feed (docker's -i). */
  readonly openStdin?: boolean;
  /** berth-runtime: close that stdin when the first client that wrote to it detaches. */
  readonly stdinOnce?: boolean;
  /**
   * berth-runtime itself (`startsOnAttach`), with `attachSocket`, for `create`: the first client
   * that connects to the attach socket starts the process, as `start` would, so that an attached
   * run needs no `start`.
   */
  readonly startOnAttach?: boolean;
  /**
   * berth-runtime itself (`deletesOnExit`), for `create` and `runDetached`: the monitor also
   * records the exit in this file (`readExitRecord`), where it outlives the container's state.
   */
  readonly exitFile?: string;
  /**
   * With `exitFile`: once the process has ended, the monitor deletes the container (its
   * cgroups and state) as `delete` would, so that the end of a run needs no `delete`.
   */
  readonly deleteOnExit?: boolean;
  readonly signal?: AbortSignal;
}

/** A process the runtime runs in the foreground: `run` without detach, or `exec`. */
export interface RunningProcess {
  /** The runtime's process (its stdio is the container process's). */
  readonly child: ChildProcess;
  readonly stdin: Writable | null;
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** The exit status (128+n after signal n). Rejects with a RuntimeError when the process could not start. */
  wait(): Promise<number>;
}

/** What to run with `exec`; omitted fields come from the container's own process. */
export type ExecProcess = Partial<ProcessSpec> & { readonly args: readonly string[] };

export interface ExecOptions {
  /** Return as soon as the process runs, without waiting for it. */
  readonly detach?: boolean;
  /**
   * berth-runtime: serve the process's stdio on this unix socket (connect with `attachSocket`).
   * The process starts when the first client connects; `wait()` still gives its exit status.
   */
  readonly attachSocket?: string;
  /** Give the process a stdin pipe (otherwise /dev/null). */
  readonly stdin?: boolean;
  readonly pidFile?: string;
  /**
   * berth-runtime (runc and crun under it too), with `detach` and `pidFile`: a monitor stays the
   * parent of the process and records its exit in this file when it ends (`readExecExit`).
   */
  readonly exitFile?: string;
  readonly consoleSocket?: string;
  readonly signal?: AbortSignal;
}

interface Invocation {
  readonly code: number;
  readonly stdout: string;
}

type Kind = 'berth' | 'runc' | 'crun' | 'other';

const shimPath = fileURLToPath(new URL('../dist/native/berth-runtime', import.meta.url));
let logSequence = 0;

/** A new, already unlinked file of this user's in the temporary directory, open for reading and writing. */
function openLogFile(): number {
  for (;;) {
    const path = join(tmpdir(), `berth-runtime-log-${process.pid}-${++logSequence}`);
    let fd: number;
    try {
      fd = openSync(path, 'wx+', 0o600);
    } catch (err) {
      // Left by a killed process that had our pid.
      if (errnoCode(err) === 'EEXIST') continue;
      throw err;
    }
    unlinkSync(path);
    return fd;
  }
}

/** The last error record of a runtime's JSON log (berth-runtime, runc's logrus and crun all write these). */
function errorRecord(log: string): { msg: string; code?: string } | undefined {
  let found: { msg: string; code?: string } | undefined;
  for (const line of log.split('\n')) {
    if (!line.trim().startsWith('{')) continue;
    try {
      const rec = JSON.parse(line) as { level?: string; msg?: string; code?: string };
      if ((rec.level === 'error' || rec.level === 'fatal') && typeof rec.msg === 'string') {
        found = { msg: rec.msg, ...(typeof rec.code === 'string' ? { code: rec.code } : {}) };
      }
    } catch {
      // a partial or foreign line: not ours to interpret
    }
  }
  return found;
}

function parseDate(value: unknown): Date | undefined {
  if (typeof value !== 'string' || !value) return undefined;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

function toState(raw: Record<string, unknown>): ContainerState {
  const cgroup = raw.cgroup as { layout?: CgroupLayout; paths?: Record<string, string> } | undefined;
  const created = parseDate(raw.created);
  const finished = parseDate(raw.finished);
  return {
    id: String(raw.id),
    pid: typeof raw.pid === 'number' ? raw.pid : 0,
    status: String(raw.status) as ContainerStatus,
    bundle: String(raw.bundle ?? ''),
    ...(typeof raw.rootfs === 'string' ? { rootfs: raw.rootfs } : {}),
    ...(created ? { created } : {}),
    annotations: (raw.annotations as Record<string, string> | null) ?? {},
    ...(typeof raw.exitCode === 'number' ? { exitCode: raw.exitCode } : {}),
    ...(typeof raw.exitSignal === 'number' ? { exitSignal: raw.exitSignal } : {}),
    ...(finished ? { finished } : {}),
    ...(typeof raw.oomKilled === 'boolean' ? { oomKilled: raw.oomKilled } : {}),
    ...(typeof raw.logPath === 'string' ? { logPath: raw.logPath } : {}),
    ...(typeof raw.attachSocket === 'string' ? { attachSocket: raw.attachSocket } : {}),
    ...(typeof raw.monitorPid === 'number' ? { monitorPid: raw.monitorPid } : {}),
    ...(cgroup?.layout && cgroup.paths ? { cgroup: { layout: cgroup.layout, paths: cgroup.paths } } : {}),
    ...(raw.resources && typeof raw.resources === 'object' ? { resources: raw.resources as LinuxResources } : {}),
  };
}

/**
 * Drives an OCI runtime with runc's command line: berth-runtime by default, or runc and crun.
 * Every call runs the runtime once; errors come back as RuntimeErrors with a stable code (read
 * from the runtime's JSON log, not from its wording).
 */
export class Runtime {
  /** The runtime's name or path, as given. */
  readonly runtime: RuntimeName;
  /** The state directory passed as --root, if any. */
  readonly root: string | undefined;
  private readonly binary: string;
  private readonly kind: Kind;
  /** berth-runtime is what runs: itself, or as the monitor of the named runtime. */
  private readonly viaShim: boolean;
  private readonly globalArgs: readonly string[];
  /** Where berth-runtime (itself or as the monitor) keeps its containers' state directories. */
  private readonly monitorStateRoot: string | undefined;
  /** With `monitor`: what create and run tell berth-runtime about the runtime it wraps. */
  private readonly wrapArgs: readonly string[];
  private readonly logger: Logger;

  constructor(options: RuntimeOptions = {}) {
    const runtime = options.runtime ?? 'berth-runtime';
    if (typeof runtime !== 'string' || runtime === '') {
      throw new RuntimeError('runtime: expected a runtime name or path', RuntimeErrorCode.InvalidSpec);
    }
    if (options.root !== undefined && !options.root.startsWith('/')) {
      throw new RuntimeError(`root: ${JSON.stringify(options.root)} is not an absolute path`, RuntimeErrorCode.InvalidSpec);
    }
    const name = basename(runtime);
    this.kind = runtime === 'berth-runtime' || name === 'berth-runtime' ? 'berth' : name === 'runc' ? 'runc' : name === 'crun' ? 'crun' : 'other';
    this.runtime = runtime;
    const defaults: Record<Kind, string | undefined> = { berth: '/run/berth/runtime', runc: '/run/runc', crun: '/run/crun', other: undefined };
    this.root = options.root ?? defaults[this.kind];
    const wrapped = options.monitor === true && this.kind !== 'berth';
    if (wrapped && !this.root) throw new RuntimeError(`root: ${runtime} needs its state directory to run under the monitor`, RuntimeErrorCode.InvalidSpec);
    if (options.monitorRoot !== undefined && !options.monitorRoot.startsWith('/')) {
      throw new RuntimeError(`monitorRoot: ${JSON.stringify(options.monitorRoot)} is not an absolute path`, RuntimeErrorCode.InvalidSpec);
    }
    this.viaShim = this.kind === 'berth' || wrapped;
    this.binary = this.viaShim && (runtime === 'berth-runtime' || wrapped) ? shimPath : runtime;
    this.globalArgs = wrapped
      ? ['--root', options.monitorRoot ?? defaults.berth!]
      : [...(this.root ? ['--root', this.root] : []), ...(options.runtimeArgs ?? [])];
    this.monitorStateRoot = wrapped ? (options.monitorRoot ?? defaults.berth!) : this.kind === 'berth' ? this.root : undefined;
    this.wrapArgs = wrapped
      ? ['--oci-runtime', runtime, '--oci-runtime-root', this.root!, ...(options.runtimeArgs ?? []).flatMap((a) => ['--oci-runtime-arg', a])]
      : [];
    this.logger = (options.logger ?? noopLogger).child({ component: 'runtime', runtime: name });
  }

  /** True for berth-runtime, and for runc or crun under its monitor: the log, attach socket and exit records. */
  get hasMonitor(): boolean {
    return this.viaShim;
  }

  /**
   * True for berth-runtime itself: it mounts a container's root from the spec's rootfs mounts
   * (`RunOptions.rootfsMounts`) inside the container and looks its user up there; with runc or
   * crun the root must be mounted on the host before create.
   */
  get mountsRootfs(): boolean {
    return this.kind === 'berth';
  }

  /** True when `create` takes `startOnAttach`: berth-runtime itself, not runc or crun under it. */
  get startsOnAttach(): boolean {
    return this.kind === 'berth';
  }

  /** True when `create` and `runDetached` take `exitFile` and `deleteOnExit`: berth-runtime itself. */
  get deletesOnExit(): boolean {
    return this.kind === 'berth';
  }

  /** True while the runtime has the container (its state directory is there). */
  async exists(id: string): Promise<boolean> {
    const root = this.monitorStateRoot ?? this.root;
    if (root) return existsSync(join(root, id));
    return this.state(id).then(
      () => true,
      (err: unknown) => (hasCode(err, RuntimeErrorCode.NotFound) ? false : Promise.reject(err)),
    );
  }

  /** Creates a container that waits for `start` (or, with `startOnAttach`, its first attach client). */
  async create(id: string, options: CreateOptions): Promise<void> {
    if (options.startOnAttach && (!this.startsOnAttach || !options.attachSocket)) {
      throw new RuntimeError(`startOnAttach: needs attachSocket and berth-runtime itself, not ${this.runtime}`, RuntimeErrorCode.InvalidSpec);
    }
    await this.checkAbsent(id);
    await this.invoke(['create', ...this.createArgs(options), ...(options.startOnAttach ? ['--start-on-attach'] : []), id], options.signal);
  }

  /** Runs the process of a created container. */
  async start(id: string, options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    await this.checkPresent(id);
    await this.invoke(['start', id], options.signal);
  }

  /** Creates and starts a container and leaves it running under its monitor. */
  async runDetached(id: string, options: CreateOptions): Promise<void> {
    await this.checkAbsent(id);
    await this.invoke(['run', '--detach', ...this.createArgs(options), id], options.signal);
  }

  /**
   * Runs a container in the foreground: its stdio are the returned streams, `wait()` gives its
   * exit status, and the container is deleted when it ends.
   */
  async run(id: string, options: CreateOptions & { readonly stdin?: boolean }): Promise<RunningProcess> {
    throwIfAborted(options.signal);
    const args = ['run', ...this.createArgs(options), id];
    await this.checkAbsent(id);
    return this.foreground(args, options.stdin ?? false, options.signal);
  }

  async state(id: string, options: { readonly signal?: AbortSignal } = {}): Promise<ContainerState> {
    await this.checkPresent(id);
    const { stdout } = await this.invoke(['state', id], options.signal, true);
    return toState(JSON.parse(stdout) as Record<string, unknown>);
  }

  /**
   * How the container's last run ended, as its monitor recorded it before exiting; undefined
   * while it runs, without a monitor (runc or crun alone), or when the monitor was killed. A file
   * read rather than a `state` exec, since the end of every run asks it.
   */
  async exitRecord(id: string): Promise<ContainerExit | undefined> {
    if (!this.monitorStateRoot) return undefined;
    return readExitRecord(join(this.monitorStateRoot, id, 'exit.json'));
  }

  /**
   * The monitor of a container (berth-runtime's, which also watches runc's and crun's containers
   * under `monitor`): its pid and start time (field 22 of /proc/<pid>/stat), from the state it
   * keeps. Undefined without a monitor, or once it has deleted the container. Read from the file:
   * the monitor is the container process's parent only until that process ends.
   */
  monitorOf(id: string): { readonly pid: number; readonly startTime: string } | undefined {
    if (!this.monitorStateRoot) return undefined;
    try {
      const raw = JSON.parse(readFileSync(join(this.monitorStateRoot, id, 'state.json'), 'utf8')) as { monitorPid?: unknown; monitorStartTime?: unknown };
      if (typeof raw.monitorPid !== 'number' || raw.monitorPid <= 0) return undefined;
      return { pid: raw.monitorPid, startTime: typeof raw.monitorStartTime === 'number' && raw.monitorStartTime > 0 ? String(raw.monitorStartTime) : '' };
    } catch {
      return undefined;
    }
  }

  async list(options: { readonly signal?: AbortSignal } = {}): Promise<ContainerState[]> {
    const { stdout } = await this.invoke(['list', '--format', 'json'], options.signal, true);
    const parsed = JSON.parse(stdout.trim() || '[]') as Record<string, unknown>[] | null;
    return (parsed ?? []).map(toState);
  }

  /** Sends a signal (name or number, default SIGTERM) to the init, or with `all` to every process. */
  async kill(id: string, signal: string | number = 'SIGTERM', options: { readonly all?: boolean; readonly signal?: AbortSignal } = {}): Promise<void> {
    await this.checkPresent(id);
    await this.invoke(['kill', ...(options.all ? ['--all'] : []), id, String(signal)], options.signal);
  }

  /** Removes a stopped container; `force` kills a running one first. */
  async delete(id: string, options: { readonly force?: boolean; readonly signal?: AbortSignal } = {}): Promise<void> {
    if (!options.force) await this.checkPresent(id);
    await this.invoke(['delete', ...(options.force ? ['--force'] : []), id], options.signal);
  }

  async pause(id: string, options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    await this.checkPresent(id);
    await this.invoke(['pause', id], options.signal);
  }

  async resume(id: string, options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    await this.checkPresent(id);
    await this.invoke(['resume', id], options.signal);
  }

  /**
   * Changes the resource limits of a created, running or paused container, as `runc update -r`
   * does: what `resources` sets replaces the current value, 0 and absent fields leave it as it
   * is, -1 lifts a memory, swap, quota or pids limit. berth-runtime records the merged limits in
   * the container's state (`state().resources`); runc and crun keep them in their own state.
   */
  async update(id: string, resources: LinuxResources, options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    throwIfAborted(options.signal);
    await this.checkPresent(id);
    const dir = await mkdtemp(join(tmpdir(), 'berth-update-'));
    try {
      const file = join(dir, 'resources.json');
      await writeFile(file, JSON.stringify(resources));
      await this.invoke(['update', '--resources', file, id], options.signal);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** The host pids of the container's processes. */
  async ps(id: string, options: { readonly signal?: AbortSignal } = {}): Promise<number[]> {
    await this.checkPresent(id);
    const { stdout } = await this.invoke(['ps', '--format', 'json', id], options.signal, true);
    return (JSON.parse(stdout.trim() || '[]') as number[] | null) ?? [];
  }

  /**
   * Runs a new process in a running container. Fields the process leaves out (env, cwd, user,
   * capabilities, ...) are the container's own, from its bundle's config.json.
   */
  async exec(id: string, process: ExecProcess, options: ExecOptions & { readonly detach: true }): Promise<void>;
  async exec(id: string, process: ExecProcess, options?: ExecOptions): Promise<RunningProcess>;
  async exec(id: string, process: ExecProcess, options: ExecOptions = {}): Promise<RunningProcess | void> {
    throwIfAborted(options.signal);
    const state = await this.state(id, options.signal ? { signal: options.signal } : {});
    const config = JSON.parse(await readFile(join(state.bundle, 'config.json'), 'utf8')) as RuntimeSpec;
    const base = config.process;
    if (!base) throw new RuntimeError(`container ${id} has no process in its config.json`, RuntimeErrorCode.InvalidSpec);
    if (options.attachSocket && !this.hasMonitor) {
      throw new RuntimeError(`${this.runtime} has no attach socket for exec; use berth-runtime`, RuntimeErrorCode.NotSupported);
    }
    // A container whose user berth-runtime looked up in it: the same lookup, in its root.
    const lookup = config.annotations?.[RuntimeAnnotation.User];
    const user =
      process.user ?? (lookup !== undefined && state.pid > 0 ? await this.containerUser(state.pid, lookup, config.annotations?.[RuntimeAnnotation.GroupAdd]) : undefined);
    if (options.exitFile && (!options.detach || !options.pidFile || !this.hasMonitor)) {
      throw new RuntimeError(
        this.hasMonitor ? 'exitFile: needs detach and pidFile' : `${this.runtime} has no monitor to record a detached exec's exit; use berth-runtime`,
        this.hasMonitor ? RuntimeErrorCode.InvalidSpec : RuntimeErrorCode.NotSupported,
      );
    }
    const full: ProcessSpec = { ...base, ...process, ...(user ? { user } : {}), args: [...process.args], terminal: process.terminal ?? false };
    const dir = await mkdtemp(join(tmpdir(), 'berth-exec-'));
    const file = join(dir, 'process.json');
    await writeFile(file, JSON.stringify(full));
    const args = [
      'exec',
      '--process',
      file,
      ...(full.terminal ? ['--tty'] : []),
      ...(options.detach ? ['--detach'] : []),
      ...(options.pidFile ? ['--pid-file', options.pidFile] : []),
      ...(options.exitFile ? ['--exit-file', options.exitFile] : []),
      ...(options.consoleSocket ? ['--console-socket', options.consoleSocket] : []),
      ...(options.attachSocket ? ['--attach-socket', options.attachSocket] : []),
      id,
    ];
    const cleanup = () => rm(dir, { recursive: true, force: true });
    if (options.detach) {
      try {
        await this.invoke(args, options.signal);
      } finally {
        await cleanup();
      }
      return;
    }
    const proc = this.foreground(args, options.stdin ?? false, options.signal);
    const wait = proc.wait().finally(cleanup);
    wait.catch(() => {});
    return { ...proc, wait: () => wait };
  }

  private async containerUser(pid: number, user: string, groupAdd: string | undefined): Promise<ProcessSpec['user']> {
    const found = await resolveUser(`/proc/${pid}/root`, user, groupAdd ? groupAdd.split(',') : []);
    return { uid: found.uid, gid: found.gid, ...(found.additionalGids.length ? { additionalGids: [...found.additionalGids] } : {}) };
  }

  /** Attaches to a container created with `attachSocket` (berth-runtime only). */
  async attach(id: string, options: { readonly signal?: AbortSignal } = {}): Promise<AttachSession> {
    const state = await this.state(id, options);
    if (!state.attachSocket) {
      throw new RuntimeError(
        this.hasMonitor ? `container ${id} was created without an attach socket` : `${this.runtime} has no attach socket; use berth-runtime`,
        this.hasMonitor ? RuntimeErrorCode.State : RuntimeErrorCode.NotSupported,
      );
    }
    return attachSocket(state.attachSocket, options);
  }

  /** Memory, CPU and pids usage from the container's cgroups. */
  async readStats(id: string, options: { readonly signal?: AbortSignal } = {}): Promise<ContainerStats> {
    const state = await this.state(id, options);
    if (state.cgroup) return readCgroupStats(state.cgroup);
    if (state.pid > 0) return readCgroupStats(await cgroupPathsOfProcess(state.pid));
    throw new RuntimeError(`container ${id} is ${state.status} and its runtime records no cgroup`, RuntimeErrorCode.State);
  }

  private createArgs(o: CreateOptions): string[] {
    if (!o.bundle.startsWith('/')) throw new RuntimeError(`bundle: ${JSON.stringify(o.bundle)} is not an absolute path`, RuntimeErrorCode.InvalidSpec);
    if ((o.exitFile || o.deleteOnExit) && !this.deletesOnExit) {
      throw new RuntimeError(`exitFile and deleteOnExit need berth-runtime itself, not ${this.runtime}`, RuntimeErrorCode.NotSupported);
    }
    if (o.deleteOnExit && !o.exitFile) throw new RuntimeError('deleteOnExit: needs exitFile, where the exit is kept', RuntimeErrorCode.InvalidSpec);
    if (o.exitFile && !o.exitFile.startsWith('/')) throw new RuntimeError(`exitFile: ${JSON.stringify(o.exitFile)} is not an absolute path`, RuntimeErrorCode.InvalidSpec);
    const monitorOnly = [o.logPath && '--log-path', o.logRotation && '--log-max-size', o.attachSocket && '--attach-socket', o.openStdin && '--open-stdin', o.stdinOnce && '--stdin-once'].filter(Boolean);
    if (monitorOnly.length && !this.hasMonitor) {
      throw new RuntimeError(
        `${this.runtime} has no monitor: ${monitorOnly.join(', ')} need berth-runtime (logs and attach are unavailable with runc and crun)`,
        RuntimeErrorCode.NotSupported,
      );
    }
    const rotation = o.logRotation;
    if (rotation && this.hasMonitor) {
      if (!o.logPath) throw new RuntimeError('logRotation: needs logPath', RuntimeErrorCode.InvalidSpec);
      if (!Number.isSafeInteger(rotation.maxSize) || rotation.maxSize <= 0) {
        throw new RuntimeError(`logRotation.maxSize: ${rotation.maxSize} is not a positive number of bytes`, RuntimeErrorCode.InvalidSpec);
      }
      if (rotation.maxFiles !== undefined && (!Number.isSafeInteger(rotation.maxFiles) || rotation.maxFiles < 1)) {
        throw new RuntimeError(`logRotation.maxFiles: ${rotation.maxFiles} is less than 1`, RuntimeErrorCode.InvalidSpec);
      }
    }
    return [
      ...this.wrapArgs,
      '--bundle', o.bundle,
      ...(o.pidFile ? ['--pid-file', o.pidFile] : []),
      ...(o.consoleSocket ? ['--console-socket', o.consoleSocket] : []),
      ...(o.noPivot ? ['--no-pivot'] : []),
      ...(o.logPath ? ['--log-path', o.logPath] : []),
      ...(rotation ? ['--log-max-size', String(rotation.maxSize), '--log-max-file', String(rotation.maxFiles ?? 1)] : []),
      ...(rotation?.compress ? ['--log-compress'] : []),
      ...(o.attachSocket ? ['--attach-socket', o.attachSocket] : []),
      ...(o.openStdin ? ['--open-stdin'] : []),
      ...(o.stdinOnce ? ['--stdin-once'] : []),
      ...(o.exitFile ? ['--exit-file', o.exitFile] : []),
      ...(o.deleteOnExit ? ['--delete-on-exit'] : []),
    ];
  }

  // runc and crun name "not found" and "exists" only in their prose; their state directories say it plainly.
  private async checkPresent(id: string): Promise<void> {
    if (this.viaShim || !this.root) return;
    if (!(await stat(join(this.root, id)).catch(() => undefined))) {
      throw new RuntimeError(`container ${id} does not exist`, RuntimeErrorCode.NotFound);
    }
  }

  private async checkAbsent(id: string): Promise<void> {
    if (this.viaShim || !this.root) return;
    if (await stat(join(this.root, id)).catch(() => undefined)) {
      throw new RuntimeError(`container ${id} already exists`, RuntimeErrorCode.Exists);
    }
  }

  private checkBinary(): void {
    if (this.viaShim && this.binary === shimPath && !existsSync(shimPath)) {
      throw new RuntimeError(`berth-runtime is not built (${shimPath} is missing); build it with: ${buildCommand}`, RuntimeErrorCode.ShimMissing);
    }
  }

  /**
   * The runtime's own errors go to a JSON log apart from the container's output: a temporary
   * file, unlinked at once (nothing is left behind if we are killed) and handed over as fd 3,
   * which every runtime opens as `/proc/self/fd/3`. A file rather than a pipe: a pipe costs a
   * stream here and a wait for every holder of its write end to close it (2 ms per command),
   * where the file is read once, after the exit, only when the exit says something failed.
   */
  private runtimeLog(args: readonly string[]): { fd: number; args: string[]; read: () => string } {
    this.checkBinary();
    const fd = openLogFile();
    const full = [...this.globalArgs, '--log', '/proc/self/fd/3', '--log-format', 'json', ...args];
    this.logger.debug('exec', { args: full });
    let text: string | undefined;
    const read = () => {
      if (text === undefined) {
        const size = fstatSync(fd).size;
        const bytes = Buffer.alloc(size);
        const n = size > 0 ? readSync(fd, bytes, 0, size, 0) : 0;
        closeSync(fd);
        text = bytes.subarray(0, n).toString('utf8');
      }
      return text;
    };
    return { fd, args: full, read };
  }

  /** Starts the runtime with pipes for the streams given 'pipe' (child_process: their output is read). */
  private spawnRuntime(args: readonly string[], stdio: ('pipe' | 'ignore')[], signal: AbortSignal | undefined): { child: ChildProcess; log: () => string } {
    const log = this.runtimeLog(args);
    let child: ChildProcess;
    try {
      child = spawn(this.binary, log.args, { stdio: [...stdio, log.fd], ...(signal ? { signal, killSignal: 'SIGTERM' } : {}) });
    } catch (err) {
      closeSync(log.fd);
      throw err;
    }
    // Read (and closed) once the runtime is done, or failed to start at all.
    child.once('close', () => log.read());
    child.once('error', () => log.read());
    return { child, log: log.read };
  }

  private failure(args: readonly string[], code: number | null, log: string, stderr: string, cause?: unknown): RuntimeError {
    if (errnoCode(cause) === 'ENOENT') {
      return new RuntimeError(
        this.viaShim ? `berth-runtime is not built; build it with: ${buildCommand}` : `${this.runtime} is not installed`,
        this.viaShim ? RuntimeErrorCode.ShimMissing : RuntimeErrorCode.NotSupported,
        { cause },
      );
    }
    const rec = errorRecord(log);
    const what = `${basename(this.runtime)} ${args[0]}`;
    if (rec) return new RuntimeError(`${what}: ${rec.msg}`, runtimeErrorCode(rec.code), cause === undefined ? {} : { cause });
    const text = (stderr || log).trim() || `exit status ${code}`;
    return new RuntimeError(`${what}: ${text}`, RuntimeErrorCode.Runtime, cause === undefined ? {} : { cause });
  }

  /**
   * Runs one command to completion and returns its stdout (read only when `output` is set); a
   * non-zero exit becomes a RuntimeError. Commands that start a container get no stdout or
   * stderr of ours: the container would inherit them and keep them open for its whole life.
   */
  private async invoke(args: readonly string[], signal: AbortSignal | undefined, output = false): Promise<Invocation> {
    throwIfAborted(signal);
    if (output) return this.invokeReading(args, signal);
    // Before the log file is made: a missing addon fails here, naming the build.
    nativeAddon();
    const log = this.runtimeLog(args);
    let exit: ProgramExit;
    try {
      exit = await spawnProgram(this.binary, log.args, ['ignore', 'ignore', 'ignore', log.fd], signal).exited;
    } catch (err) {
      log.read();
      throw this.failure(args, null, '', '', err);
    }
    const text = log.read();
    if (signal?.aborted) throw abortError(signal);
    if (exit.code !== 0) throw this.failure(args, exit.code, text, '');
    return { code: 0, stdout: '' };
  }

  private invokeReading(args: readonly string[], signal: AbortSignal | undefined): Promise<Invocation> {
    return new Promise((resolve, reject) => {
      let spawned: ReturnType<Runtime['spawnRuntime']>;
      try {
        spawned = this.spawnRuntime(args, ['ignore', 'pipe', 'pipe'], signal);
      } catch (err) {
        return reject(err);
      }
      const { child, log } = spawned;
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout!.on('data', (d: Buffer) => out.push(d));
      child.stderr!.on('data', (d: Buffer) => err.push(d));
      child.on('error', (e) => {
        if (signal?.aborted) reject(abortError(signal));
        else reject(this.failure(args, null, '', '', e));
      });
      child.on('close', (code) => {
        if (signal?.aborted) return reject(abortError(signal));
        if (code !== 0) return reject(this.failure(args, code, log(), Buffer.concat(err).toString()));
        resolve({ code: 0, stdout: Buffer.concat(out).toString() });
      });
    });
  }

  private foreground(args: readonly string[], stdin: boolean, signal: AbortSignal | undefined): RunningProcess {
    const { child, log } = this.spawnRuntime(args, [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'], signal);
    const done = new Promise<number>((resolve, reject) => {
      child.on('error', (e) => {
        if (signal?.aborted) reject(abortError(signal));
        else reject(this.failure(args, null, '', '', e));
      });
      child.on('close', (code, sig) => {
        if (signal?.aborted) return reject(abortError(signal));
        // Our own error record tells a failed start from a container that exited non-zero.
        const logText = log();
        if (errorRecord(logText)) return reject(this.failure(args, code, logText, ''));
        resolve(code ?? 128 + (sig ? signalNumber(sig) : 0));
      });
    });
    // Keep an unobserved failure from surfacing as an unhandled rejection.
    done.catch(() => {});
    return { child, stdin: child.stdin, stdout: child.stdout!, stderr: child.stderr!, wait: () => done };
  }
}

function signalNumber(name: NodeJS.Signals): number {
  const numbers: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 };
  return numbers[name] ?? 0;
}

/**
 * berth-runtime as the init of `--init` containers (it runs as pid 1 under the name `docker-init`,
 * forwarding signals and reaping zombies): its path when it is built and statically linked, so
 * that it runs in any container whatever libraries it has; undefined otherwise.
 */
export async function initBinary(): Promise<string | undefined> {
  let file;
  try {
    file = await open(shimPath, 'r');
  } catch {
    return undefined;
  }
  try {
    const header = Buffer.alloc(64);
    await file.read(header, 0, 64, 0);
    // ELF64 little-endian only (x86-64, arm64); a dynamic executable has a PT_INTERP program header.
    if (header.readUInt32BE(0) !== 0x7f454c46 || header[4] !== 2 || header[5] !== 1) return undefined;
    const offset = Number(header.readBigUInt64LE(32));
    const size = header.readUInt16LE(54);
    const count = header.readUInt16LE(56);
    const table = Buffer.alloc(size * count);
    await file.read(table, 0, table.length, offset);
    for (let i = 0; i < count; i++) if (table.readUInt32LE(i * size) === 3) return undefined;
    return shimPath;
  } finally {
    await file.close();
  }
}

/** How a detached exec ended, as its monitor recorded it (`ExecOptions.exitFile`). */
export interface ExecExit {
  /** The process's status, 128+N after signal N. */
  readonly exitCode: number;
  readonly signal?: number;
  readonly finished: Date;
}

/** How a container's run ended, as its monitor recorded it (`Runtime.exitRecord`). */
export interface ContainerExit extends ExecExit {
  /** The kernel's OOM killer killed a process of the container's cgroup. */
  readonly oomKilled: boolean;
}

/** The exit a detached exec's monitor recorded in `path`; undefined while it has not ended. */
export function readExecExit(path: string): Promise<ExecExit | undefined> {
  return readExitRecord(path);
}

/** The exit a container's monitor recorded in `path` (`CreateOptions.exitFile`); undefined while it has not ended. */
export async function readExitRecord(path: string): Promise<ContainerExit | undefined> {
  let text: string;
  try {
    // A line of JSON: read synchronously, less work than a thread-pool round trip.
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
  const raw = JSON.parse(text) as Record<string, unknown>;
  if (typeof raw.exitCode !== 'number') throw new RuntimeError(`${path}: no exitCode in the exit record`, RuntimeErrorCode.Runtime);
  return {
    exitCode: raw.exitCode,
    ...(typeof raw.signal === 'number' ? { signal: raw.signal } : {}),
    finished: parseDate(raw.finished) ?? new Date(),
    oomKilled: raw.oomKilled === true,
  };
}

/** Collects a foreground process's output and status (for short commands and tests). */
export async function collectOutput(proc: RunningProcess): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  proc.stdout.on('data', (d: Buffer) => out.push(d));
  proc.stderr.on('data', (d: Buffer) => err.push(d));
  const exitCode = await proc.wait();
  return { exitCode, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}
