import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorKind, describeError, isBerthError } from '@berth/errors';
import { readJsonFile, writeJsonAtomic } from '@berth/fsutil';
import type { Writable } from 'node:stream';
import { allCapabilities, attachSocket, readExecExit, resolveUser, type AttachSession, type ExecProcess, type RunningProcess } from '@berth/runtime';
import { EngineErrorCode, engineError } from '../engine.js';
import type { CallOptions, IdResponse, TerminalSize } from '../types/common.js';
import type { ExecConfig, ExecInspectResponse, ExecStartConfig } from '../types/exec.js';
import type { ContainerStream } from '../types/stream.js';
import { mergeEnv } from './container-config.js';
import { isRunning, type ContainerLifecycle } from './container-lifecycle.js';
import { invalidParameter, isPaused, noSuchExec, notRunning } from './docker-errors.js';
import type { EngineContext } from './engine-context.js';
import { OutputQueue } from './output-queue.js';
import { processAlive, processStartTime } from './process-liveness.js';

/** An exec as recorded under the run root (`execs/<id>.json`), so that another process can inspect it. */
interface ExecRecord {
  readonly id: string;
  readonly containerId: string;
  readonly config: ExecConfig;
  readonly started: boolean;
  readonly running: boolean;
  readonly exitCode: number | null;
  readonly pid: number;
  readonly pidStartTime: string;
  /** Started with `Detach`: the runtime's exec monitor records its end in `exitFile`. */
  readonly detached: boolean;
  readonly exitFile?: string;
}

const execIdPattern = /^[0-9a-f]{64}$/;

/** `docker exec`: processes started in running containers through the runtime. */
export class ExecService {
  readonly #ctx: EngineContext;
  readonly #lifecycle: ContainerLifecycle;
  readonly #sessions = new Map<string, AttachSession>();

  constructor(ctx: EngineContext, lifecycle: ContainerLifecycle) {
    this.#ctx = ctx;
    this.#lifecycle = lifecycle;
  }

  #path(id: string): string {
    return join(this.#ctx.layout.execs, `${id}.json`);
  }

  async #read(id: string): Promise<ExecRecord> {
    const record = execIdPattern.test(id) ? await readJsonFile<ExecRecord>(this.#path(id)) : undefined;
    if (!record) throw noSuchExec(id);
    return record;
  }

  async #write(record: ExecRecord): Promise<void> {
    await writeJsonAtomic(this.#path(record.id), record, { durable: false });
  }

  /** The exec IDs of a container, for inspect's ExecIDs. */
  async idsOf(containerId: string): Promise<string[]> {
    const out: string[] = [];
    for (const name of await readdir(this.#ctx.layout.execs).catch(() => [] as string[])) {
      const r = await readJsonFile<ExecRecord>(join(this.#ctx.layout.execs, name)).catch(() => undefined);
      if (r?.containerId === containerId) out.push(r.id);
    }
    return out;
  }

  async create(containerRef: string, config: ExecConfig, _options: CallOptions = {}): Promise<IdResponse> {
    const container = await this.#lifecycle.get(containerRef);
    if (!isRunning(container)) throw notRunning(container.id);
    if (container.state.status === 'paused') throw isPaused(container.id);
    if (!config.Cmd?.length) throw invalidParameter('No exec command specified');
    const id = randomBytes(32).toString('hex');
    await mkdir(this.#ctx.layout.execs, { recursive: true });
    await this.#write({ id, containerId: container.id, config, started: false, running: false, exitCode: null, pid: 0, pidStartTime: '', detached: false });
    await this.#ctx.events.append({
      Type: 'container',
      Action: `exec_create: ${config.Cmd.join(' ')}`,
      Actor: { ID: container.id, Attributes: { execID: id, image: container.config.Image ?? container.image, name: container.name } },
    });
    return { Id: id };
  }

  async #process(containerId: string, config: ExecConfig, tty: boolean, size: readonly [number, number] | null | undefined): Promise<ExecProcess> {
    const container = await this.#lifecycle.get(containerId);
    // The running container's own root: berth-runtime mounts it where only the container sees it.
    const rootfs = `/proc/${container.state.pid}/root`;
    const userText = config.User || container.config.User || '';
    const user = await resolveUser(rootfs, userText, container.hostConfig.GroupAdd ?? []);
    let env = mergeEnv(container.config.Env ?? [], [`HOSTNAME=${container.config.Hostname ?? container.id.slice(0, 12)}`]);
    if (tty) env = mergeEnv(env, ['TERM=xterm']);
    env = mergeEnv(env, config.Env ?? []);
    if (!env.some((e) => e.startsWith('HOME='))) env.push(`HOME=${user.home}`);
    return {
      args: [...config.Cmd],
      env,
      cwd: config.WorkingDir || container.config.WorkingDir || '/',
      terminal: tty,
      user: { uid: user.uid, gid: user.gid, ...(user.additionalGids.length ? { additionalGids: [...user.additionalGids] } : {}) },
      ...(tty && size ? { consoleSize: { height: size[0], width: size[1] } } : {}),
      ...(config.Privileged
        ? { capabilities: { bounding: [...allCapabilities], effective: [...allCapabilities], permitted: [...allCapabilities] } }
        : {}),
    };
  }

  async start(execId: string, start: ExecStartConfig, options: CallOptions = {}): Promise<ContainerStream | undefined> {
    const record = await this.#read(execId);
    if (record.started) throw engineError(`Exec command ${execId} has already run`, EngineErrorCode.InvalidParameter, ErrorKind.Conflict);
    const container = await this.#lifecycle.get(record.containerId);
    if (!isRunning(container)) throw notRunning(container.id);
    if (container.state.status === 'paused') throw isPaused(container.id);
    const tty = start.Tty ?? record.config.Tty ?? false;
    const process = await this.#process(container.id, record.config, tty, start.ConsoleSize ?? record.config.ConsoleSize);
    const detach = start.Detach ?? false;
    const cmd = record.config.Cmd.join(' ');
    const attributes = { execID: execId, image: container.config.Image ?? container.image, name: container.name };
    await this.#write({ ...record, started: true, running: true, detached: detach });
    await this.#ctx.events.append({ Type: 'container', Action: `exec_start: ${cmd}`, Actor: { ID: container.id, Attributes: attributes } });

    if (detach) {
      const pidFile = join(this.#ctx.layout.execs, `${execId}.pid`);
      // Beside the container's files, so that it goes with the container even when never read.
      const exitFile = this.#ctx.runtime.hasMonitor ? this.#ctx.layout.containerFile(container.id, `exec-${execId}.exit`) : undefined;
      try {
        await this.#ctx.runtime.exec(container.id, process, { detach: true, pidFile, ...(exitFile ? { exitFile } : {}), ...(options.signal ? { signal: options.signal } : {}) });
      } catch (err) {
        await this.#write({ ...record, started: true, running: false, exitCode: isBerthError(err) ? (err.exitCode ?? 126) : 126, detached: true });
        throw err;
      }
      const pid = Number((await readFile(pidFile, 'utf8').catch(() => '0')).trim()) || 0;
      await rm(pidFile, { force: true });
      await this.#write({ ...record, started: true, running: true, pid, pidStartTime: await processStartTime(pid), detached: true, ...(exitFile ? { exitFile } : {}) });
      return undefined;
    }

    const wantStdin = record.config.AttachStdin ?? false;
    const queue = new OutputQueue();
    const hold = queue.hold();
    let proc: RunningProcess;
    let stdin: Writable | undefined;
    let session: AttachSession | undefined;
    if (tty && this.#ctx.runtime.hasMonitor) {
      // A terminal exec is served on an attach socket, which carries resizes; it starts when we connect.
      await mkdir(join(this.#ctx.layout.runRoot, 'attach'), { recursive: true });
      const socket = join(this.#ctx.layout.runRoot, 'attach', `exec-${execId.slice(0, 24)}.sock`);
      proc = await this.#ctx.runtime.exec(container.id, process, { attachSocket: socket, ...(options.signal ? { signal: options.signal } : {}) });
      proc.stdout.resume();
      proc.stderr.resume();
      session = await this.#connectWhenListening(socket, proc);
      if (record.config.AttachStdout ?? true) queue.add(session.stdout, 'stdout');
      else session.stdout.resume();
      session.stderr.resume();
      stdin = wantStdin ? session.stdin : undefined;
      this.#sessions.set(execId, session);
    } else {
      proc = await this.#ctx.runtime.exec(container.id, process, { stdin: wantStdin, ...(options.signal ? { signal: options.signal } : {}) });
      if (record.config.AttachStdout ?? true) queue.add(proc.stdout, 'stdout');
      else proc.stdout.resume();
      if ((record.config.AttachStderr ?? true) && !tty) queue.add(proc.stderr, 'stderr');
      else if (tty && (record.config.AttachStderr ?? true)) queue.add(proc.stderr, 'stdout');
      else proc.stderr.resume();
      stdin = wantStdin ? (proc.stdin ?? undefined) : undefined;
    }
    const pid = proc.child.pid ?? 0;
    void this.#write({ ...record, started: true, running: true, pid, pidStartTime: await processStartTime(pid), detached: false }).catch(() => {});
    void (async () => {
      let exitCode: number;
      try {
        exitCode = await proc.wait();
      } catch (err) {
        exitCode = isBerthError(err) && err.exitCode !== undefined ? err.exitCode : 126;
        const text = describeError(err).replace(/^berth-runtime exec: /, '');
        queue.push({ stream: tty ? 'stdout' : 'stderr', data: Buffer.from(`OCI runtime exec failed: exec failed: ${text}: unknown${tty ? '\r\n' : '\n'}`) });
      }
      this.#sessions.delete(execId);
      await this.#write({ ...record, started: true, running: false, exitCode, pid: 0, pidStartTime: '', detached: false }).catch(() => {});
      await this.#ctx.events.append({ Type: 'container', Action: 'exec_die', Actor: { ID: container.id, Attributes: { ...attributes, exitCode: String(exitCode) } } });
      hold();
    })();
    return {
      tty,
      output: queue,
      stdin,
      resize: async (size: TerminalSize) => session?.resize(size.height, size.width),
      close: () => {
        session?.close();
        queue.stop();
      },
    };
  }

  /** Connects to an exec's attach socket once the runtime listens there (or fails when it ends first). */
  async #connectWhenListening(socket: string, proc: RunningProcess): Promise<AttachSession> {
    let ended = false;
    void proc.wait().then(
      () => (ended = true),
      () => (ended = true),
    );
    for (let attempt = 0; ; attempt++) {
      try {
        return await attachSocket(socket);
      } catch (err) {
        if (ended) {
          await proc.wait();
          throw err;
        }
        // The runtime binds the socket right after it starts; give it a moment.
        await new Promise((r) => setTimeout(r, Math.min(2 + attempt, 20)));
      }
    }
  }

  /** Resizes an exec's terminal; only the process that started it holds the session. */
  async resize(execId: string, size: TerminalSize): Promise<void> {
    const record = await this.#read(execId);
    if (!record.running) throw engineError(`Exec ${execId} is not running`, EngineErrorCode.ContainerNotRunning, ErrorKind.Conflict);
    this.#sessions.get(execId)?.resize(size.height, size.width);
  }

  /** A detached exec that has ended, as its monitor recorded it: written down (once) with its exec_die event. */
  async #detachedEnd(record: ExecRecord): Promise<ExecRecord | undefined> {
    if (!record.exitFile) return undefined;
    let exit = await readExecExit(record.exitFile);
    // The monitor writes the record the moment the process is reaped: a dead pid without it is that moment.
    for (let i = 0; !exit && i < 100 && !(await processAlive(record.pid, record.pidStartTime)); i++) {
      await new Promise((r) => setTimeout(r, 10));
      exit = await readExecExit(record.exitFile);
    }
    if (!exit) return undefined;
    const ended: ExecRecord = { ...record, running: false, exitCode: exit.exitCode, pid: 0, pidStartTime: '' };
    await this.#write(ended);
    // Whoever removes the monitor's record tells of the end; a reader at the same moment does not.
    const claimed = await unlink(record.exitFile).then(() => true, () => false);
    if (!claimed) return ended;
    const container = await this.#ctx.containers.tryRead(record.containerId);
    await this.#ctx.events.append({
      Type: 'container',
      Action: 'exec_die',
      Actor: { ID: record.containerId, Attributes: { execID: record.id, exitCode: String(exit.exitCode), ...(container ? { image: container.config.Image ?? container.image, name: container.name } : {}) } },
    });
    return ended;
  }

  async inspect(execId: string): Promise<ExecInspectResponse> {
    let record = await this.#read(execId);
    if (record.running && record.detached) record = (await this.#detachedEnd(record)) ?? record;
    if (record.running && (record.detached || record.pid > 0) && !(await processAlive(record.pid, record.pidStartTime))) {
      // A detached exec reaped since the look above has its record on the way: look again. Gone
      // without one (a runtime without a monitor, or one killed with it), its status is not known.
      const ended = record.detached ? await this.#detachedEnd(record) : undefined;
      record = ended ?? { ...record, running: false, exitCode: record.detached ? null : record.exitCode };
    }
    const cmd = record.config.Cmd;
    return {
      ID: record.id,
      Running: record.running,
      ExitCode: record.running ? null : record.exitCode,
      ProcessConfig: {
        privileged: record.config.Privileged ?? false,
        user: record.config.User ?? '',
        tty: record.config.Tty ?? false,
        entrypoint: cmd[0] ?? '',
        arguments: cmd.slice(1),
      },
      OpenStdin: record.config.AttachStdin ?? false,
      OpenStderr: record.config.AttachStderr ?? false,
      OpenStdout: record.config.AttachStdout ?? false,
      CanRemove: !record.running,
      ContainerID: record.containerId,
      DetachKeys: record.config.DetachKeys ?? '',
      Pid: record.running ? record.pid : 0,
    };
  }
}
