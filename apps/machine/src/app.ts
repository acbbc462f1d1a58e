import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { ErrorKind, describeError, isBerthError } from '@berth/errors';
import { createTextLogger, type Logger } from '@berth/log';
import { DriverRegistry, HostManager, HostStore, LocalBundleSource, MachineError, engineBundleFileName, type HostProgress } from '@berth/machine';
import { driverEntries } from './drivers.js';

/** The process around a command: streams, environment, and the signal that Ctrl-C fires. */
export interface Io {
  readonly stdin: Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  readonly stdout: Writable & { isTTY?: boolean; columns?: number; rows?: number };
  readonly stderr: Writable;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly platform: NodeJS.Platform;
  /** The command name as typed, for hints (`machine`). */
  readonly argv0: string;
  /** The arguments after it. */
  readonly args: readonly string[];
  readonly signal: AbortSignal;
}

/** The global options, after flags and env (flags > env > defaults). */
export interface GlobalOptions {
  readonly storagePath: string;
  readonly debug: boolean;
  readonly tlsCaCert?: string;
  readonly tlsCaKey?: string;
  readonly engineBundle?: string;
}

/** The default store: `~/.berth/machine`. */
export function defaultStoragePath(): string {
  return join(homedir(), '.berth', 'machine');
}

// Where `tools/src/engine-bundle.ts` puts bundles by default: beside this app's dist output.
function builtBundleDirs(): string[] {
  const here = dirname(fileURLToPath(import.meta.url));
  return [join(here, 'bundles'), join(here, '..', 'bundles'), join(here, '..', 'dist', 'bundles'), join(here, '..', '..', 'dist', 'bundles')];
}

/** Everything a command needs, made once per run. */
export class App {
  readonly io: Io;
  readonly options: GlobalOptions;
  readonly logger: Logger;
  readonly store: HostStore;
  readonly registry: DriverRegistry;
  #manager: HostManager | undefined;

  constructor(io: Io, options: GlobalOptions) {
    this.io = io;
    this.options = options;
    this.logger = options.debug ? createTextLogger({ write: (l) => io.stderr.write(l), level: 'debug' }) : createTextLogger({ write: (l) => io.stderr.write(l), level: 'warn' });
    this.store = new HostStore({ path: resolve(options.storagePath), logger: this.logger });
    this.registry = new DriverRegistry({ entries: driverEntries });
  }

  /** The host manager, with SSH credentials and bundle lookup from this user's environment. */
  get manager(): HostManager {
    if (!this.#manager) {
      const env = this.io.env;
      const home = homedir();
      const bundlePaths = [
        ...(this.options.engineBundle ? [resolve(this.options.engineBundle)] : []),
        join(this.store.cacheDir, 'bundles'),
        ...builtBundleDirs(),
      ];
      this.#manager = new HostManager({
        store: this.store,
        drivers: this.registry,
        bundles: new LocalBundleSource({
          paths: bundlePaths,
          hint: `Pass --engine-bundle FILE (or set MACHINE_ENGINE_BUNDLE), put ${engineBundleFileName('<arch>')} in ${join(this.store.cacheDir, 'bundles')}, or build one in the Berth repository with \`npx nx run @berth/tools:build && node tools/dist/engine-bundle.js\``,
        }),
        logger: this.logger,
        organization: env.USER ?? env.USERNAME ?? 'berth',
        ...(this.options.tlsCaCert ? { caCertPath: resolve(this.options.tlsCaCert) } : {}),
        ...(this.options.tlsCaKey ? { caKeyPath: resolve(this.options.tlsCaKey) } : {}),
        ...(env.SSH_AUTH_SOCK ? { sshAgent: env.SSH_AUTH_SOCK } : this.io.platform === 'win32' ? { sshAgent: 'pageant' } : {}),
        defaultSshKeys: ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((f) => join(home, '.ssh', f)),
        ...(env.MACHINE_SSH_TIMEOUT ? { sshTimeoutMs: Number(env.MACHINE_SSH_TIMEOUT) * 1000 } : {}),
      });
    }
    return this.#manager;
  }

  /** Writes a result line to stdout. */
  out(text: string): void {
    this.io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  /** Writes a diagnostic line to stderr. */
  note(text: string): void {
    this.io.stderr.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  /** Prints progress events as docker-machine does, prefixed with the host's name. */
  progress = (event: HostProgress): void => {
    const telling: readonly string[] = ['detect', 'packages', 'upload', 'wait-engine', 'cleanup'];
    if (event.status === 'start' || this.options.debug || telling.includes(event.phase)) {
      this.note(`(${event.machine}) ${event.message}`);
    }
  };

  /** The host name a command acts on: the given one, or `default` when it exists (docker-machine). */
  async targetName(name: string | undefined): Promise<string> {
    if (name) return name;
    if (await this.store.exists('default')) return 'default';
    throw new MachineError('no host name given, and there is no host named "default"', { code: 'ERR_USAGE', kind: ErrorKind.InvalidArgument, exitCode: 1 });
  }

  /** Runs `work` for each name at once; reports each failure, and fails if any did. */
  async forEach(names: readonly string[], work: (name: string) => Promise<void>): Promise<void> {
    const results = await Promise.allSettled(names.map((name) => work(name)));
    const failures = results
      .map((r, i) => (r.status === 'rejected' ? { name: names[i]!, error: r.reason as unknown } : undefined))
      .filter((f): f is { name: string; error: unknown } => f !== undefined);
    if (failures.length === 0) return;
    if (names.length === 1) throw failures[0]!.error;
    for (const f of failures) this.note(`machine: ${f.name}: ${describeError(f.error)}`);
    const exitCode = failures.some((f) => isBerthError(f.error) && f.error.exitCode === 3) ? 3 : 1;
    throw new MachineError(`${failures.length} of ${names.length} hosts failed: ${failures.map((f) => f.name).join(', ')}`, {
      code: 'ERR_SOME_FAILED',
      kind: ErrorKind.Internal,
      exitCode,
    });
  }

  /** Asks a yes/no question on stderr and reads the answer from stdin. */
  async confirm(question: string): Promise<boolean> {
    this.io.stderr.write(`${question} (y/n): `);
    const answer = await readLine(this.io.stdin);
    return /^y(es)?$/i.test(answer.trim());
  }
}

function readLine(stream: Readable): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const onData = (chunk: Buffer | string) => {
      text += chunk.toString();
      const at = text.indexOf('\n');
      if (at >= 0) done(text.slice(0, at));
    };
    const onEnd = () => done(text);
    const done = (line: string) => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.pause();
      resolve(line);
    };
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.resume();
  });
}
