import { lookup } from 'node:dns/promises';
import { connect, isIP, isIPv6 } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorKind, throwIfAborted } from '@berth/errors';
import {
  DriverError,
  DriverErrorCode,
  MachineState,
  SshKeyPair,
  invalidOption,
  numberFlag,
  requiredStringFlag,
  shellQuote,
  sshKeyFileName,
  stringFlag,
  type Driver,
  type DriverCallOptions,
  type DriverConfig,
  type DriverContext,
  type DriverDefinition,
  type DriverOptions,
  type FlagDefinition,
} from '@berth/machine';

/** The generic driver's saved config. The key file name is relative to the host's directory. */
export type GenericConfig = {
  readonly ipAddress: string;
  readonly sshUser: string;
  readonly sshPort: number;
  /** The copied private key's file name in the host's directory, or undefined for agent/default keys. */
  readonly sshKeyFile?: string;
  readonly enginePort: number;
};

/** The generic driver's flags, with docker-machine's names, defaults and env vars. */
export const genericFlags: readonly FlagDefinition[] = [
  { name: 'generic-ip-address', type: 'string', usage: 'IP address or DNS name of the host', envVar: 'GENERIC_IP_ADDRESS', required: true },
  { name: 'generic-ssh-user', type: 'string', usage: 'SSH user (root, or one with passwordless sudo)', envVar: 'GENERIC_SSH_USER', default: 'root' },
  {
    name: 'generic-ssh-key',
    type: 'string',
    usage: 'SSH private key to log in with, copied into the store (default: your ssh-agent and ~/.ssh keys)',
    envVar: 'GENERIC_SSH_KEY',
  },
  { name: 'generic-ssh-port', type: 'number', usage: 'SSH port', envVar: 'GENERIC_SSH_PORT', default: 22 },
  { name: 'generic-engine-port', type: 'number', usage: 'Port the engine listens on (TLS)', envVar: 'GENERIC_ENGINE_PORT', default: 2376 },
];

function port(value: number | undefined, flag: string): number {
  if (value === undefined || !Number.isInteger(value) || value < 1 || value > 65535) throw invalidOption(`--${flag} ${value} is not a port (1-65535)`);
  return value;
}

function readConfig(raw: DriverConfig): GenericConfig {
  const { ipAddress, sshUser, sshPort, sshKeyFile, enginePort } = raw;
  if (typeof ipAddress !== 'string' || typeof sshUser !== 'string' || typeof sshPort !== 'number' || typeof enginePort !== 'number') {
    throw new DriverError('the saved generic driver config lacks ipAddress, sshUser, sshPort or enginePort', { code: DriverErrorCode.InvalidOption, kind: ErrorKind.Internal });
  }
  return { ipAddress, sshUser, sshPort, enginePort, ...(typeof sshKeyFile === 'string' ? { sshKeyFile } : {}) };
}

/** True when a TCP connection to host:port opens within `timeoutMs`. */
function answers(host: string, portNumber: number, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port: portNumber, signal });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * An existing host reached over SSH (docker-machine's generic driver). `create` only copies the
 * SSH key; provisioning does the rest, and `rm` uninstalls what provisioning installed. The host
 * is Running when its SSH port answers. Its address may be a DNS name: SSH uses the name, the
 * engine URL the IP the name resolves to now, so that a renumbered host is noticed. Unlike docker-machine, `stop`, `kill` and `restart` work,
 * through the host itself (power off, reboot); `start` cannot power a host on, so it only checks
 * that the host is back.
 */
export class GenericDriver implements Driver {
  readonly driverName = 'generic';
  #config: GenericConfig;
  /** Where to copy the key from on `create` (a new host only). */
  readonly #sourceKey: string | undefined;
  readonly #context: DriverContext;

  constructor(options: DriverOptions) {
    this.#context = options.context;
    if (options.config) {
      this.#config = readConfig(options.config);
      this.#sourceKey = undefined;
      return;
    }
    const flags = options.flags;
    const ipAddress = requiredStringFlag(flags, 'generic-ip-address').trim();
    this.#config = {
      ipAddress,
      sshUser: stringFlag(flags, 'generic-ssh-user') || 'root',
      sshPort: port(numberFlag(flags, 'generic-ssh-port') ?? 22, 'generic-ssh-port'),
      enginePort: port(numberFlag(flags, 'generic-engine-port') ?? 2376, 'generic-engine-port'),
    };
    this.#sourceKey = stringFlag(flags, 'generic-ssh-key') || undefined;
  }

  config(): DriverConfig {
    return { ...this.#config };
  }

  async preCreateCheck(options: DriverCallOptions = {}): Promise<void> {
    throwIfAborted(options.signal);
    if (/\s/.test(this.#config.ipAddress) || !this.#config.ipAddress) throw invalidOption(`--generic-ip-address ${JSON.stringify(this.#config.ipAddress)} is not an address`);
    if (this.#sourceKey) await SshKeyPair.read(this.#sourceKey, options);
  }

  async create(options: DriverCallOptions = {}): Promise<void> {
    if (!this.#sourceKey) return;
    const pair = await SshKeyPair.read(this.#sourceKey, options);
    const file = sshKeyFileName(pair.type);
    await pair.write(join(this.#context.machineDir, file));
    this.#config = { ...this.#config, sshKeyFile: file };
    await this.#context.saveConfig(this.config(), options);
  }

  /** Nothing remote to remove: the host is not ours (the host manager uninstalls the engine first). */
  async remove(): Promise<void> {}

  async start(options: DriverCallOptions = {}): Promise<void> {
    if ((await this.state(options)) === MachineState.Running) return;
    throw new DriverError(
      `the generic driver cannot power on ${this.#config.ipAddress}: power the host on, then run \`machine start ${this.#context.machineName}\` again`,
      { code: DriverErrorCode.Unsupported, kind: ErrorKind.FailedPrecondition },
    );
  }

  async stop(options: DriverCallOptions = {}): Promise<void> {
    await this.#shutdown('systemctl poweroff 2>/dev/null || poweroff 2>/dev/null || shutdown -h now', options);
  }

  async kill(options: DriverCallOptions = {}): Promise<void> {
    await this.#shutdown('systemctl poweroff --force --force 2>/dev/null || poweroff -f 2>/dev/null || halt -f', options);
  }

  async restart(options: DriverCallOptions = {}): Promise<void> {
    await this.#shutdown('systemctl reboot 2>/dev/null || reboot 2>/dev/null || shutdown -r now', options);
  }

  // Runs a power command in the background (so the SSH call returns before the connection
  // drops), then waits until SSH stops answering: after this the host is really going down.
  async #shutdown(command: string, options: DriverCallOptions): Promise<void> {
    if (!this.#context.openSsh) throw new DriverError('the generic driver needs SSH access to the host for this', { code: DriverErrorCode.Unsupported, kind: ErrorKind.NotImplemented });
    if ((await this.state(options)) !== MachineState.Running) return;
    const session = await this.#context.openSsh(options);
    try {
      const sudo = this.#config.sshUser === 'root' ? '' : 'sudo -n ';
      await session.run(`${sudo}sh -c ${shellQuote(`(sleep 1; ${command}) >/dev/null 2>&1 </dev/null &`)}`, options);
    } finally {
      session.close();
    }
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      throwIfAborted(options.signal);
      if (!(await answers(this.#config.ipAddress, this.#config.sshPort, 2000, options.signal))) return;
      await sleep(500, undefined, { signal: options.signal }).catch(() => throwIfAborted(options.signal));
    }
    throw new DriverError(`${this.#config.ipAddress} still answers on SSH two minutes after \`${command.split(' ')[0]}\``, {
      code: DriverErrorCode.StateTimeout,
      kind: ErrorKind.Timeout,
    });
  }

  async state(options: DriverCallOptions = {}): Promise<MachineState> {
    return (await answers(this.#config.ipAddress, this.#config.sshPort, 5000, options.signal)) ? MachineState.Running : MachineState.Stopped;
  }

  /** The host's IP: the address as given, or what its DNS name resolves to now. */
  async ip(): Promise<string> {
    const address = this.#config.ipAddress;
    if (isIP(address)) return address;
    try {
      return (await lookup(address)).address;
    } catch (err) {
      throw new DriverError(`cannot resolve ${address}, the address of ${this.#context.machineName}`, { code: DriverErrorCode.HostGone, kind: ErrorKind.Unavailable, cause: err });
    }
  }

  async sshHostname(): Promise<string> {
    return this.#config.ipAddress;
  }

  async sshPort(): Promise<number> {
    return this.#config.sshPort;
  }

  sshUser(): string {
    return this.#config.sshUser;
  }

  sshKeyPath(): string | undefined {
    return this.#config.sshKeyFile ? join(this.#context.machineDir, this.#config.sshKeyFile) : undefined;
  }

  /** `tcp://IP:PORT`, with the IP as `ip()` finds it, as docker-machine's DOCKER_HOST. */
  async url(): Promise<string> {
    const ip = await this.ip();
    return `tcp://${isIPv6(ip) ? `[${ip}]` : ip}:${this.#config.enginePort}`;
  }
}

/** The generic driver, as the machine CLI's registry loads it. */
export const driver: DriverDefinition = {
  name: 'generic',
  aliases: [],
  description: 'An existing Linux host reached over SSH',
  flags: genericFlags,
  adoptsExistingHost: true,
  create: (options) => new GenericDriver(options),
};
