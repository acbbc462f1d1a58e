import { createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorKind, abortError, errnoCode, hasCode, isBerthError, throwIfAborted } from '@berth/errors';
import { withFileLock, writeFileAtomic } from '@berth/fsutil';
import { noopLogger, type Logger } from '@berth/log';
import ssh2 from 'ssh2';
import type { AnyAuthMethod, ClientChannel, ConnectConfig, SFTPWrapper } from 'ssh2';
import { SshError } from './errors.js';
import { sshFingerprint } from './ssh-key.js';

/** Where and as whom to connect. */
export interface SshTarget {
  readonly host: string;
  readonly port: number;
  readonly username: string;
  /**
   * Private keys to offer, in order (file contents, OpenSSH or PEM format). With none and no
   * agent, connecting fails with ERR_SSH_NO_CREDENTIALS.
   */
  readonly privateKeys?: readonly string[];
  /** The ssh-agent socket (`SSH_AUTH_SOCK`; `pageant` on Windows), tried after the keys. */
  readonly agent?: string;
}

/**
 * Host keys are pinned per machine: the first key a host shows is recorded under the machine's
 * name (OpenSSH `known_hosts` format, usable with `ssh -o HostKeyAlias=NAME`), and every later
 * connection must show the same key, whatever address the host has by then.
 */
export interface HostKeyPin {
  readonly knownHostsPath: string;
  /** The name the key is recorded under (the machine name). */
  readonly alias: string;
}

/** Options of `SshSession.connect`. */
export interface SshConnectOptions extends SshTarget {
  readonly hostKey: HostKeyPin;
  /** How long the TCP connect and SSH handshake may take (default 20 s). */
  readonly readyTimeoutMs?: number;
  readonly signal?: AbortSignal;
  readonly logger?: Logger;
}

/** Options of `SshSession.exec`. */
export interface SshExecOptions {
  readonly signal?: AbortSignal;
  /** Sent to the command's stdin, which is then closed; a stream is piped. */
  readonly stdin?: string | Buffer | Readable;
  /** Called with each chunk of output as it arrives. */
  readonly onStdout?: (chunk: Buffer) => void;
  readonly onStderr?: (chunk: Buffer) => void;
  /** Allocate a pseudo-terminal (stdout and stderr then arrive merged on stdout). */
  readonly pty?: SshPty;
}

/** The terminal of a pty session. */
export interface SshPty {
  readonly term: string;
  readonly rows: number;
  readonly cols: number;
}

/** How a remote command ended; `stdout`/`stderr` keep the last 1 MiB of each. */
export interface SshExecResult {
  /** The exit status, or 128 + signal number style 255 when the command died without one. */
  readonly code: number;
  /** The signal that killed the command (`KILL`), if one did. */
  readonly signal: string | undefined;
  readonly stdout: string;
  readonly stderr: string;
}

const maxKept = 1 << 20;

interface ExitHolder {
  status?: { readonly code: number; readonly signal: string | undefined };
}

// ssh2 tags errors with a level instead of a class; map it to an error kind once, here.
function wrapConnectError(err: unknown, target: string): SshError {
  if (isBerthError(err) && err instanceof SshError) return err;
  const level = typeof err === 'object' && err !== null && 'level' in err ? String((err as { level: unknown }).level) : '';
  const errno = errnoCode(err);
  if (level === 'client-authentication') {
    return new SshError(`SSH authentication to ${target} failed: no offered key was accepted`, {
      code: 'ERR_SSH_AUTH',
      kind: ErrorKind.PermissionDenied,
      cause: err,
    });
  }
  if (level === 'client-timeout' || errno === 'ETIMEDOUT') {
    return new SshError(`SSH to ${target} timed out`, { code: 'ERR_SSH_TIMEOUT', kind: ErrorKind.Timeout, cause: err });
  }
  return new SshError(`cannot connect to ${target} over SSH`, { code: 'ERR_SSH_CONNECT', kind: ErrorKind.Unavailable, cause: err });
}

/** The key type named inside an SSH public key blob (`ssh-ed25519`). */
function blobKeyType(blob: Buffer): string {
  if (blob.length < 4) return '';
  const length = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + length).toString('latin1');
}

// Algorithms that can verify a host key of a pinned type, so the handshake picks that key again.
function hostKeyAlgorithms(type: string): string[] {
  if (type === 'ssh-rsa') return ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
  return [type];
}

interface PinnedKey {
  readonly type: string;
  readonly blob: Buffer;
}

async function readPin(pin: HostKeyPin): Promise<PinnedKey | undefined> {
  let text: string;
  try {
    text = await readFile(pin.knownHostsPath, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw new SshError(`cannot read ${pin.knownHostsPath}`, { code: 'ERR_SSH_HOST_KEY', kind: ErrorKind.Internal, cause: err });
  }
  for (const line of text.split('\n')) {
    const [names, type, b64] = line.trim().split(/\s+/);
    if (!names || !type || !b64 || names.startsWith('#')) continue;
    if (names.split(',').includes(pin.alias)) return { type, blob: Buffer.from(b64, 'base64') };
  }
  return undefined;
}

async function writePin(pin: HostKeyPin, key: PinnedKey): Promise<void> {
  await withFileLock(`${pin.knownHostsPath}.lock`, async () => {
    if (await readPin(pin)) return;
    const existing = await readFile(pin.knownHostsPath, 'utf8').catch(() => '');
    await writeFileAtomic(pin.knownHostsPath, `${existing}${pin.alias} ${key.type} ${key.blob.toString('base64')}\n`, { mode: 0o600 });
  });
}

/**
 * One SSH connection to a host (ssh2), with the host key pinned per machine. Commands run with
 * `exec` (streamed output, exit status), files move over SFTP, and `shell` gives an
 * interactive channel. Close it with `close()`.
 */
export class SshSession {
  readonly target: string;
  readonly #client: ssh2.Client;
  readonly #logger: Logger;
  #sftp: Promise<SFTPWrapper> | undefined;
  #closed = false;
  readonly #pending = new Set<() => void>();

  private constructor(client: ssh2.Client, target: string, logger: Logger) {
    this.#client = client;
    this.target = target;
    this.#logger = logger;
    // ssh2 does not close the channels of a connection that ends; fail their commands here.
    client.on('close', () => {
      this.#closed = true;
      for (const lost of [...this.#pending]) lost();
    });
  }

  /** Connects and authenticates, checking (or, on first contact, recording) the host key. */
  static async connect(options: SshConnectOptions): Promise<SshSession> {
    const logger = options.logger ?? noopLogger;
    const target = `${options.username}@${options.host}:${options.port}`;
    validateTarget(options);
    throwIfAborted(options.signal);
    const pinned = await readPin(options.hostKey);
    let seen: PinnedKey | undefined;
    let mismatch: SshError | undefined;
    const client = new ssh2.Client();
    const config: ConnectConfig = {
      host: options.host,
      port: options.port,
      username: options.username,
      readyTimeout: options.readyTimeoutMs ?? 20_000,
      keepaliveInterval: 15_000,
      keepaliveCountMax: 4,
      hostVerifier: (key: Buffer) => {
        seen = { type: blobKeyType(key), blob: Buffer.from(key) };
        if (!pinned || pinned.blob.equals(key)) return true;
        mismatch = new SshError(
          `the SSH host key of ${options.hostKey.alias} (${options.host}) changed: ${sshFingerprint(key)}, pinned ${sshFingerprint(pinned.blob)}. ` +
            `If the host was reinstalled, remove its line from ${options.hostKey.knownHostsPath}`,
          { code: 'ERR_SSH_HOST_KEY_MISMATCH', kind: ErrorKind.PermissionDenied },
        );
        return false;
      },
      authHandler: authMethods(options),
    };
    if (pinned) config.algorithms = { serverHostKey: hostKeyAlgorithms(pinned.type) as never };
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        client.end();
        reject(abortError(options.signal!));
      };
      options.signal?.addEventListener('abort', onAbort, { once: true });
      const settle = () => options.signal?.removeEventListener('abort', onAbort);
      client.once('ready', () => {
        settle();
        resolve();
      });
      client.once('error', (err) => {
        settle();
        client.end();
        reject(mismatch ?? wrapConnectError(err, target));
      });
      client.connect(config);
    });
    if (!pinned && seen) await writePin(options.hostKey, seen);
    logger.debug('ssh connected', { target });
    const session = new SshSession(client, target, logger);
    // After the handshake a dropped connection surfaces on the next call; don't crash on it here.
    client.on('error', (err) => logger.debug('ssh connection error', { target, error: err }));
    return session;
  }

  /** Runs `command` (a shell command line) and resolves with its exit status and output. */
  async exec(command: string, options: SshExecOptions = {}): Promise<SshExecResult> {
    throwIfAborted(options.signal);
    this.#logger.debug('ssh exec', { target: this.target, command });
    const exit: ExitHolder = {};
    const channel = await new Promise<ClientChannel>((resolve, reject) => {
      const cb = (err: Error | undefined, ch: ClientChannel) => {
        if (err) return reject(new SshError(`cannot run a command on ${this.target}`, { code: 'ERR_SSH_EXEC', kind: ErrorKind.Unavailable, cause: err }));
        // A quick command's exit status can arrive in the same packet as the exec reply, before
        // this promise settles: listen for it now.
        ch.on('exit', (code: number | null, signal?: string) => {
          exit.status = { code: code ?? 255, signal: signal ?? undefined };
        });
        resolve(ch);
      };
      if (options.pty) this.#client.exec(command, { pty: { term: options.pty.term, rows: options.pty.rows, cols: options.pty.cols } }, cb);
      else this.#client.exec(command, cb);
    });
    return this.#drive(channel, exit, options);
  }

  /** Runs `command` and returns its stdout; throws naming the command and its stderr when it fails. */
  async run(command: string, options: SshExecOptions = {}): Promise<string> {
    const result = await this.exec(command, options);
    if (result.code !== 0) {
      const tail = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-5).join('\n');
      throw new SshError(`command on ${this.target} exited with status ${result.code}: ${shortCommand(command)}${tail ? `\n${tail}` : ''}`, {
        code: 'ERR_SSH_COMMAND_FAILED',
        kind: ErrorKind.FailedPrecondition,
      });
    }
    return result.stdout;
  }

  /**
   * Opens an interactive channel with a pty: a login shell, or `command` (as `ssh -t host cmd`).
   * The caller wires the channel to a terminal and resizes it with `setWindow`; `done` resolves
   * with the exit status once the channel closes.
   */
  async shell(pty: SshPty, options: { readonly signal?: AbortSignal; readonly command?: string } = {}): Promise<{ readonly channel: ClientChannel; readonly done: Promise<number> }> {
    throwIfAborted(options.signal);
    return new Promise((resolve, reject) => {
      const cb = (err: Error | undefined, channel: ClientChannel) => {
        if (err) return reject(new SshError(`cannot open a terminal on ${this.target}`, { code: 'ERR_SSH_EXEC', kind: ErrorKind.Unavailable, cause: err }));
        let code = 255;
        channel.on('exit', (c: number | null) => (code = c ?? 255));
        resolve({ channel, done: new Promise<number>((settle) => channel.on('close', () => settle(code))) });
      };
      const terminal = { term: pty.term, rows: pty.rows, cols: pty.cols };
      if (options.command !== undefined) this.#client.exec(options.command, { pty: terminal }, cb);
      else this.#client.shell(terminal, cb);
    });
  }

  /**
   * Copies a local file, or bytes, to `remotePath` over SFTP, then sets its mode. Files go with
   * parallel requests (`fastPut`): a sequential SFTP stream crawls at a few MB/s.
   */
  async upload(source: string | Buffer, remotePath: string, options: { readonly mode?: number; readonly signal?: AbortSignal } = {}): Promise<void> {
    throwIfAborted(options.signal);
    const sftp = await this.sftp();
    const mode = options.mode ?? 0o644;
    const transfer = new Promise<void>((resolve, reject) => {
      const done = (err: Error | null | undefined) => (err ? reject(err) : resolve());
      if (typeof source === 'string') sftp.fastPut(source, remotePath, { mode }, done);
      else sftp.writeFile(remotePath, source, { mode }, done);
    }).then(() => new Promise<void>((resolve, reject) => sftp.chmod(remotePath, mode, (err) => (err ? reject(err) : resolve()))));
    try {
      await abortable(transfer, options.signal, () => {
        // The only way to stop a transfer in flight is to drop its channel.
        sftp.end();
        this.#sftp = undefined;
      });
    } catch (err) {
      if (options.signal?.aborted) throw abortError(options.signal);
      throw new SshError(`cannot upload ${typeof source === 'string' ? source : 'data'} to ${this.target}:${remotePath}`, {
        code: 'ERR_SSH_SFTP',
        kind: ErrorKind.Unavailable,
        cause: err,
      });
    }
  }

  /** Copies `remotePath` over SFTP into the local file `localPath`. */
  async download(remotePath: string, localPath: string, options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    const sftp = await this.sftp();
    try {
      await pipeline(sftp.createReadStream(remotePath), createWriteStream(localPath), { signal: options.signal });
    } catch (err) {
      if (options.signal?.aborted) throw abortError(options.signal);
      throw new SshError(`cannot download ${this.target}:${remotePath} to ${localPath}`, { code: 'ERR_SSH_SFTP', kind: ErrorKind.Unavailable, cause: err });
    }
  }

  /** Copies a local directory tree into `remoteDir` (made if missing), keeping file modes. */
  async uploadTree(localDir: string, remoteDir: string, options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    const sftp = await this.sftp();
    const info = await stat(localDir);
    await sftpMkdir(sftp, remoteDir, info.mode & 0o7777);
    for (const entry of await readdir(localDir, { withFileTypes: true })) {
      throwIfAborted(options.signal);
      const from = join(localDir, entry.name);
      const to = posix.join(remoteDir, entry.name);
      if (entry.isDirectory()) await this.uploadTree(from, to, options);
      else if (entry.isFile()) await this.upload(from, to, { mode: (await stat(from)).mode & 0o7777, signal: options.signal });
    }
  }

  /** Copies a remote directory tree into `localDir` (made if missing), keeping file modes. */
  async downloadTree(remoteDir: string, localDir: string, options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    const sftp = await this.sftp();
    await mkdir(localDir, { recursive: true });
    const entries = await new Promise<ssh2.FileEntryWithStats[]>((resolve, reject) =>
      sftp.readdir(remoteDir, (err, list) => (err ? reject(err) : resolve(list))),
    ).catch((err: unknown) => {
      throw new SshError(`cannot list ${this.target}:${remoteDir}`, { code: 'ERR_SSH_SFTP', kind: ErrorKind.NotFound, cause: err });
    });
    for (const entry of entries) {
      throwIfAborted(options.signal);
      const from = posix.join(remoteDir, entry.filename);
      const to = join(localDir, entry.filename);
      if (entry.attrs.isDirectory()) await this.downloadTree(from, to, options);
      else if (entry.attrs.isFile()) await this.download(from, to, options);
    }
  }

  /** The file type of `remotePath` (`file`, `directory`, `other`), or undefined when it does not exist. */
  async remoteType(remotePath: string): Promise<'file' | 'directory' | 'other' | undefined> {
    const sftp = await this.sftp();
    return new Promise((resolve) =>
      sftp.stat(remotePath, (err, attrs) => resolve(err ? undefined : attrs.isDirectory() ? 'directory' : attrs.isFile() ? 'file' : 'other')),
    );
  }

  /** The session's SFTP channel, opened on first use. */
  sftp(): Promise<SFTPWrapper> {
    this.#sftp ??= new Promise<SFTPWrapper>((resolve, reject) =>
      this.#client.sftp((err, sftp) =>
        err ? reject(new SshError(`cannot open SFTP on ${this.target}`, { code: 'ERR_SSH_SFTP', kind: ErrorKind.Unavailable, cause: err })) : resolve(sftp),
      ),
    );
    return this.#sftp;
  }

  /** True once the connection has closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Closes the connection. */
  close(): void {
    this.#client.end();
  }

  async #drive(channel: ClientChannel, exit: ExitHolder, options: SshExecOptions): Promise<SshExecResult> {
    let stdout = '';
    let stderr = '';
    const keep = (kept: string, chunk: Buffer) => {
      const next = kept + chunk.toString('utf8');
      return next.length > maxKept ? next.slice(next.length - maxKept) : next;
    };
    channel.on('data', (chunk: Buffer) => {
      stdout = keep(stdout, chunk);
      options.onStdout?.(chunk);
    });
    channel.stderr.on('data', (chunk: Buffer) => {
      stderr = keep(stderr, chunk);
      options.onStderr?.(chunk);
    });
    const stdin = options.stdin;
    if (stdin === undefined) channel.end();
    else if (typeof stdin === 'string' || Buffer.isBuffer(stdin)) channel.end(stdin);
    else stdin.pipe(channel);
    return new Promise<SshExecResult>((resolve, reject) => {
      const onAbort = () => {
        this.#pending.delete(lost);
        channel.signal('KILL');
        channel.close();
        reject(abortError(options.signal!));
      };
      const lost = () => {
        this.#pending.delete(lost);
        options.signal?.removeEventListener('abort', onAbort);
        reject(new SshError(`the connection to ${this.target} closed during a command`, { code: 'ERR_SSH_CONNECTION_LOST', kind: ErrorKind.Unavailable }));
      };
      this.#pending.add(lost);
      if (options.signal?.aborted) return onAbort();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      channel.on('close', () => {
        this.#pending.delete(lost);
        options.signal?.removeEventListener('abort', onAbort);
        if (options.signal?.aborted) return;
        if (!exit.status && this.#closed) return lost();
        resolve({ code: exit.status?.code ?? 255, signal: exit.status?.signal, stdout, stderr });
      });
    });
  }
}

function validateTarget(options: SshConnectOptions): void {
  const bad = (field: string, value: unknown) =>
    new SshError(`invalid SSH ${field} ${JSON.stringify(value)}`, { code: 'ERR_SSH_INVALID_TARGET', kind: ErrorKind.InvalidArgument });
  if (!options.host) throw bad('host', options.host);
  if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535) throw bad('port', options.port);
  if (!options.username) throw bad('user', options.username);
  if (!options.privateKeys?.length && !options.agent) {
    throw new SshError(`no SSH key or agent to log in to ${options.host} with`, { code: 'ERR_SSH_NO_CREDENTIALS', kind: ErrorKind.InvalidArgument });
  }
}

// Offers each key in turn, then the agent: ssh2's `privateKey` option takes only one key.
function authMethods(target: SshTarget): AnyAuthMethod[] {
  return [
    ...(target.privateKeys ?? []).map((key): AnyAuthMethod => ({ type: 'publickey', username: target.username, key })),
    ...(target.agent ? [{ type: 'agent', username: target.username, agent: target.agent } as AnyAuthMethod] : []),
  ];
}

function abortable<T>(work: Promise<T>, signal: AbortSignal | undefined, onAbort: () => void): Promise<T> {
  if (!signal) return work;
  return new Promise<T>((resolve, reject) => {
    const abort = () => {
      onAbort();
      reject(abortError(signal));
    };
    signal.addEventListener('abort', abort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', abort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', abort);
        reject(err);
      },
    );
  });
}

async function sftpMkdir(sftp: SFTPWrapper, path: string, mode: number): Promise<void> {
  await new Promise<void>((resolve, reject) =>
    sftp.mkdir(path, { mode }, (err) => {
      if (!err) return resolve();
      sftp.stat(path, (statErr, attrs) => (!statErr && attrs.isDirectory() ? resolve() : reject(err)));
    }),
  );
}

function shortCommand(command: string): string {
  const line = command.split('\n')[0] ?? '';
  return line.length > 120 || command.includes('\n') ? `${line.slice(0, 117)}...` : line;
}

/** Options of `waitForSsh`. */
export interface WaitForSshOptions extends SshConnectOptions {
  /** Give up after this long (default 5 minutes). */
  readonly timeoutMs?: number;
  /** Pause between attempts (default 2 s). */
  readonly intervalMs?: number;
}

/**
 * Connects once SSH answers and runs `exit 0`, retrying until `timeoutMs`. Fails at once on a
 * changed host key; otherwise the timeout error names the last reason, so that "waiting for SSH"
 * never ends without saying why.
 */
export async function waitForSsh(options: WaitForSshOptions): Promise<SshSession> {
  const deadline = Date.now() + (options.timeoutMs ?? 300_000);
  const logger = options.logger ?? noopLogger;
  let last: unknown;
  for (let attempt = 1; ; attempt++) {
    throwIfAborted(options.signal);
    try {
      const session = await SshSession.connect({ ...options, readyTimeoutMs: Math.min(options.readyTimeoutMs ?? 20_000, Math.max(1000, deadline - Date.now())) });
      try {
        await session.run('exit 0', { signal: options.signal });
        return session;
      } catch (err) {
        session.close();
        throw err;
      }
    } catch (err) {
      if (hasCode(err, 'ERR_SSH_HOST_KEY_MISMATCH') || hasCode(err, 'ERR_SSH_NO_CREDENTIALS') || hasCode(err, 'ERR_SSH_INVALID_TARGET')) throw err;
      if (hasCode(err, 'ERR_CANCELED')) throw err;
      last = err;
      logger.debug('waiting for ssh', { host: options.host, attempt, error: err instanceof Error ? err.message : String(err) });
    }
    if (Date.now() + (options.intervalMs ?? 2000) > deadline) break;
    await sleep(options.intervalMs ?? 2000, undefined, { signal: options.signal }).catch(() => throwIfAborted(options.signal));
  }
  throw new SshError(`SSH on ${options.host}:${options.port} did not answer in time`, { code: 'ERR_SSH_WAIT_TIMEOUT', kind: ErrorKind.Timeout, cause: last });
}
