import { ErrorKind } from '@berth/errors';
import type { Logger } from '@berth/log';
import { DriverError, DriverErrorCode } from './errors.js';
import type { SshSession } from './ssh-session.js';

/**
 * The states of a host, with docker-machine's names. `Timeout` is never returned by a driver:
 * `ls` and `active` show it for a host that did not answer in time.
 */
export const MachineState = {
  None: 'None',
  Running: 'Running',
  Paused: 'Paused',
  Saved: 'Saved',
  Stopped: 'Stopped',
  Stopping: 'Stopping',
  Starting: 'Starting',
  Error: 'Error',
  Timeout: 'Timeout',
} as const;
export type MachineState = (typeof MachineState)[keyof typeof MachineState];

/** True when `value` is one of the state names. */
export function isMachineState(value: unknown): value is MachineState {
  return typeof value === 'string' && Object.hasOwn(MachineState, value);
}

/** A value a create flag can take. */
export type FlagValue = string | number | boolean | readonly string[];

interface FlagBase {
  /**
   * The full flag name without dashes, prefixed by the driver's name: `generic-ip-address`,
   * `aws-region`. Flag names are unique across all drivers because of the prefix.
   */
  readonly name: string;
  /** One line for `machine create -d DRIVER --help`. */
  readonly usage: string;
  /** The environment variable read when the flag is not on the command line (`AWS_DEFAULT_REGION`). */
  readonly envVar?: string;
  /**
   * Other names the flag is accepted under, without dashes, such as docker-machine's spelling
   * (`amazonec2-region` for `aws-region`). Help lists them as deprecated.
   */
  readonly aliases?: readonly string[];
  /** `create` fails with a usage error when neither the flag, its env var nor a default gives a value. */
  readonly required?: boolean;
  /** The value is a secret: help shows whether it is set, never the value. */
  readonly secret?: boolean;
}

/** A flag taking one string; `choices` restricts it to a closed set. */
export interface StringFlag extends FlagBase {
  readonly type: 'string';
  readonly default?: string;
  readonly choices?: readonly string[];
}

/** A flag taking a number (integer or not; the driver checks its range). */
export interface NumberFlag extends FlagBase {
  readonly type: 'number';
  readonly default?: number;
}

/** A flag that is on or off (`--x`, `--no-x`, `--x=false`); its env var takes 1/0/true/false. */
export interface BooleanFlag extends FlagBase {
  readonly type: 'boolean';
  readonly default?: boolean;
}

/** A flag given any number of times; its env var takes a comma-separated list. */
export interface StringListFlag extends FlagBase {
  readonly type: 'string[]';
  readonly default?: readonly string[];
}

/** The definition of one driver create flag. Drivers declare these; the CLI maps argv and env to them. */
export type FlagDefinition = StringFlag | NumberFlag | BooleanFlag | StringListFlag;

/**
 * The values of a driver's flags by canonical flag name (never an alias), with env vars and
 * defaults already applied. A flag with no value and no default is absent.
 */
export type FlagValues = Readonly<Record<string, FlagValue>>;

/** JSON data. `undefined` members are allowed and dropped when saved. */
export type JsonValue = string | number | boolean | null | undefined | readonly JsonValue[] | JsonObject;
/** A JSON object. Declare a driver's config as a `type` alias (an interface has no index signature). */
export type JsonObject = { readonly [key: string]: JsonValue };

/**
 * The driver's own state, saved as `Driver` in the host's `config.json` and handed back to
 * `DriverDefinition.create({ config })` to re-create the driver. Paths in it are relative to the
 * host's directory (`DriverContext.machineDir`), so that the store can be moved or shared.
 */
export type DriverConfig = JsonObject;

/** What every blocking driver call takes. */
export interface DriverCallOptions {
  readonly signal?: AbortSignal;
}

/** What the store gives a driver about the host it drives. */
export interface DriverContext {
  /** The host's name (`h1`). */
  readonly machineName: string;
  /** The host's directory in the store (absolute). Keys and other files of the driver go here. */
  readonly machineDir: string;
  /** The store's root (absolute). Shared downloads go under `<storePath>/cache`. */
  readonly storePath: string;
  readonly logger: Logger;
  /**
   * Saves `config` as the driver's part of `config.json` right away. Call it each time `create`
   * has made a remote resource, so that `rm` can remove it even after the CLI crashed mid-create.
   */
  saveConfig(config: DriverConfig, options?: DriverCallOptions): Promise<void>;
  /**
   * An SSH session to the host as the driver describes it (`sshHostname`, `sshPort`, `sshUser`,
   * `sshKeyPath`, or the user's agent and keys), with the store's pinned host key. Drivers that
   * act through the host itself (generic: reboot, power off) use it; close it when done.
   */
  openSsh?(options?: DriverCallOptions): Promise<SshSession>;
}

/**
 * One host as a driver sees it: docker-machine's driver operations. A driver is made by its
 * `DriverDefinition.create`, either from flag values (a new host: `preCreateCheck`, then
 * `create`) or from its saved config (any later command). After `create` and after any change
 * to what `config()` returns, the caller saves `config()` in the store.
 *
 * Operations a driver cannot do throw a `DriverError` with code `ERR_DRIVER_UNSUPPORTED`
 * (`unsupportedOperation`). `remove` is idempotent: resources already gone are not an error,
 * so that `rm` after a half-failed create always ends with nothing left.
 */
export interface Driver {
  /** The canonical driver name (`generic`, `aws`). */
  readonly driverName: string;
  /** The config to save now; JSON only, paths relative to the host's directory. */
  config(): DriverConfig;
  /** Checks credentials, quotas, tools and flag values before anything is made. */
  preCreateCheck(options?: DriverCallOptions): Promise<void>;
  /** Makes the host and returns once it is running (SSH may not answer yet). */
  create(options?: DriverCallOptions): Promise<void>;
  /** Removes everything `create` made. */
  remove(options?: DriverCallOptions): Promise<void>;
  start(options?: DriverCallOptions): Promise<void>;
  /** A graceful stop. */
  stop(options?: DriverCallOptions): Promise<void>;
  restart(options?: DriverCallOptions): Promise<void>;
  /** A forced stop (power off). */
  kill(options?: DriverCallOptions): Promise<void>;
  state(options?: DriverCallOptions): Promise<MachineState>;
  /** The address clients use to reach the host (IP, or a DNS name). */
  ip(options?: DriverCallOptions): Promise<string>;
  /** Where SSH connects: usually `ip()`; `127.0.0.1` behind a NAT port forward. */
  sshHostname(options?: DriverCallOptions): Promise<string>;
  sshPort(options?: DriverCallOptions): Promise<number>;
  sshUser(): string;
  /** The private key file (absolute path), or undefined to use the user's agent and default keys. */
  sshKeyPath(): string | undefined;
  /** The engine's URL, `tcp://IP:2376`. */
  url(options?: DriverCallOptions): Promise<string>;
}

/** What `DriverDefinition.create` takes: the context, and flag values for a new host or the saved config. */
export type DriverOptions = { readonly context: DriverContext } & (
  | { readonly flags: FlagValues; readonly config?: undefined }
  | { readonly config: DriverConfig; readonly flags?: undefined }
);

/**
 * What a driver package exports as `driver` from its index.ts. Importing a driver package
 * must stay cheap: cloud SDKs load with `await import()` inside the driver's methods.
 */
export interface DriverDefinition {
  /** The name users type after `-d` (`generic`, `aws`). */
  readonly name: string;
  /** Other names accepted after `-d`, such as docker-machine's (`amazonec2`). */
  readonly aliases: readonly string[];
  /** One line for help and `ls`. */
  readonly description: string;
  readonly flags: readonly FlagDefinition[];
  /**
   * True when the driver takes over a host that exists without it (generic): the host outlives
   * `rm`, so `rm` uninstalls what provisioning installed before calling `remove`.
   */
  readonly adoptsExistingHost?: boolean;
  create(options: DriverOptions): Driver;
}

/**
 * An entry of the app's driver registry (apps/machine/src/drivers.ts): the names it answers
 * to, and how to load the driver package, lazily so that unused drivers cost nothing.
 */
export interface DriverEntry {
  readonly name: string;
  readonly aliases?: readonly string[];
  load(): Promise<DriverDefinition>;
}

/** The error for an operation the driver cannot do, e.g. `unsupportedOperation('generic', 'stop')`. */
export function unsupportedOperation(driverName: string, operation: string): DriverError {
  return new DriverError(`the ${driverName} driver does not support ${operation}`, {
    code: DriverErrorCode.Unsupported,
    kind: ErrorKind.NotImplemented,
  });
}

/**
 * The error for a flag or option value that is missing or malformed (`ERR_DRIVER_INVALID_OPTION`,
 * kind InvalidArgument); `cause` is what failed to read or parse it.
 */
export function invalidOption(message: string, options: { readonly cause?: unknown } = {}): DriverError {
  return new DriverError(message, { code: DriverErrorCode.InvalidOption, kind: ErrorKind.InvalidArgument, cause: options.cause });
}

function flagTypeError(name: string, expected: string, value: unknown): DriverError {
  return invalidOption(`flag --${name} must be ${expected}, got ${JSON.stringify(value)}`);
}

/** The string value of flag `name`, or undefined; throws when the value is of another type. */
export function stringFlag(values: FlagValues, name: string): string | undefined {
  const value = values[name];
  if (value === undefined || typeof value === 'string') return value;
  throw flagTypeError(name, 'a string', value);
}

/** The number value of flag `name`, or undefined; throws when the value is of another type. */
export function numberFlag(values: FlagValues, name: string): number | undefined {
  const value = values[name];
  if (value === undefined || (typeof value === 'number' && Number.isFinite(value))) return value;
  throw flagTypeError(name, 'a number', value);
}

/** The boolean value of flag `name`, or undefined; throws when the value is of another type. */
export function booleanFlag(values: FlagValues, name: string): boolean | undefined {
  const value = values[name];
  if (value === undefined || typeof value === 'boolean') return value;
  throw flagTypeError(name, 'true or false', value);
}

/** The list value of flag `name`, or undefined; throws when the value is of another type. */
export function stringListFlag(values: FlagValues, name: string): readonly string[] | undefined {
  const value = values[name];
  if (value === undefined) return undefined;
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value as readonly string[];
  throw flagTypeError(name, 'a list of strings', value);
}

/**
 * The ports of a driver's `--<driver>-open-port` flag `name`, each given as `8080` (TCP) or
 * `53/udp`, as docker-machine took them; empty when the flag is absent.
 */
export function openPortsFlag(values: FlagValues, name: string): { port: number; protocol: string }[] {
  return (stringListFlag(values, name) ?? []).map((value) => {
    const match = /^(\d{1,5})(?:\/(tcp|udp))?$/.exec(value);
    const port = Number(match?.[1]);
    if (!match || port < 1 || port > 65535) throw invalidOption(`flag --${name} takes PORT or PORT/tcp|udp, got ${JSON.stringify(value)}`);
    return { port, protocol: match[2] ?? 'tcp' };
  });
}

/** The string value of a required flag; throws naming the flag when it is missing. */
export function requiredStringFlag(values: FlagValues, name: string): string {
  const value = stringFlag(values, name);
  if (value === undefined || value === '') {
    throw invalidOption(`flag --${name} is required`);
  }
  return value;
}
