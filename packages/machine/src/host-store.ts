import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorKind, errnoCode } from '@berth/errors';
import { withFileLock, writeJsonAtomic } from '@berth/fsutil';
import { noopLogger, type Logger } from '@berth/log';
import { ensureCertificateAuthority, type AuthorityPaths } from './certificates.js';
import type { DriverConfig } from './driver.js';
import { MachineError } from './errors.js';

/** The `config.json` layout this version writes. Older files are migrated when read. */
export const ConfigVersion = 1;

/** How the engine on a host is set up: docker-machine's engine flags. */
export interface EngineOptions {
  /** `K=V` environment of the engine service (`--engine-env`; proxies go here). */
  readonly env: readonly string[];
  /** `k=v` engine labels (`--engine-label`); `provider=<driver>` is added when provisioning. */
  readonly labels: readonly string[];
  /** `k=v` or `k` engine flags (`--engine-opt`), passed as `--k=v`. */
  readonly opts: readonly string[];
  readonly insecureRegistries: readonly string[];
  readonly registryMirrors: readonly string[];
}

/** What provisioning found on, and did to, a host; `rm` of an adopted host undoes it. */
export interface ProvisionRecord {
  /** From /etc/os-release: `debian`, `12`, `Debian GNU/Linux 12 (bookworm)`. */
  readonly osId: string;
  readonly osVersion: string;
  readonly osName: string;
  readonly packageManager: string;
  /** How the engine runs: `systemd`, `openrc` or `supervised`. */
  readonly init: string;
  /** Packages provisioning installed because they were missing (uninstalled by `rm` of an adopted host). */
  readonly installedPackages: readonly string[];
  /** The engine bundle's version and architecture. */
  readonly engineVersion: string;
  readonly arch: string;
  /** When provisioning last finished (ISO 8601). */
  readonly at: string;
}

/** The lifecycle of a store entry: made and being created, ready, or left by a failed create. */
export const HostStatus = { Creating: 'creating', Ready: 'ready', Failed: 'failed' } as const;
export type HostStatus = (typeof HostStatus)[keyof typeof HostStatus];

/**
 * A host's `config.json`. Every path in it is relative to the host's directory (certificates
 * and keys have fixed names there), so a store can be copied to another machine or user.
 */
export interface HostConfig {
  readonly configVersion: number;
  readonly name: string;
  readonly driverName: string;
  /** The driver's own saved config. */
  readonly driver: DriverConfig;
  readonly engine: EngineOptions;
  /** Extra names for the server certificate (`--tls-san`). */
  readonly tlsSans: readonly string[];
  /** The addresses the current server certificate was made for. */
  readonly certifiedAddresses: readonly string[];
  readonly status: HostStatus;
  /** Why the create failed, for `ls` ERRORS and `inspect`. */
  readonly error?: string;
  readonly provision?: ProvisionRecord;
  readonly createdAt: string;
}

/** The files of a host in its directory. */
export const HostFiles = {
  config: 'config.json',
  knownHosts: 'known_hosts',
  caCert: 'ca.pem',
  clientCert: 'cert.pem',
  clientKey: 'key.pem',
  serverCert: 'server.pem',
  serverKey: 'server-key.pem',
} as const;

/** Options of `HostStore`. */
export interface HostStoreOptions {
  /** The store root (`MACHINE_STORAGE_PATH`, default `~/.berth/machine`, chosen by the app). */
  readonly path: string;
  readonly logger?: Logger;
}

const namePattern = /^[a-zA-Z0-9][a-zA-Z0-9.-]*$/;

/** Throws unless `name` is a valid host name (docker-machine's rule: letters, digits, `.`, `-`). */
export function validateHostName(name: string): void {
  if (!namePattern.test(name) || name.length > 63) {
    throw new MachineError(`invalid host name ${JSON.stringify(name)}: use letters, digits, "." and "-", starting with a letter or digit (at most 63)`, {
      code: 'ERR_HOST_NAME',
      kind: ErrorKind.InvalidArgument,
    });
  }
}

function notFound(name: string): MachineError {
  return new MachineError(`host ${JSON.stringify(name)} does not exist`, { code: 'ERR_HOST_NOT_FOUND', kind: ErrorKind.NotFound });
}

/** Natural order on lower-cased names (`h2` before `h10`), as docker-machine's `ls`. */
export function compareHostNames(a: string, b: string): number {
  return a.toLowerCase().localeCompare(b.toLowerCase(), 'en', { numeric: true });
}

/**
 * The machine store on disk:
 * `certs/` (the shared CA and client certificate), `cache/` (downloads), and
 * `machines/NAME/` per host (config.json, SSH keys, pinned host key, certificates).
 * Writes are atomic; changes to one host go through `update`, which holds the host's lock.
 */
export class HostStore {
  readonly path: string;
  readonly certsDir: string;
  readonly cacheDir: string;
  readonly machinesDir: string;
  readonly #logger: Logger;

  constructor(options: HostStoreOptions) {
    if (!options.path) throw new MachineError('the store path is empty', { code: 'ERR_STORE_PATH', kind: ErrorKind.InvalidArgument });
    this.path = options.path;
    this.certsDir = join(options.path, 'certs');
    this.cacheDir = join(options.path, 'cache');
    this.machinesDir = join(options.path, 'machines');
    this.#logger = options.logger ?? noopLogger;
  }

  /** The directory of host `name`. */
  hostDir(name: string): string {
    validateHostName(name);
    return join(this.machinesDir, name);
  }

  /** A file of host `name`. */
  hostFile(name: string, file: (typeof HostFiles)[keyof typeof HostFiles]): string {
    return join(this.hostDir(name), file);
  }

  /** The names of the hosts, in natural order. */
  async list(): Promise<string[]> {
    const entries = await readdir(this.machinesDir, { withFileTypes: true }).catch((err: unknown) => {
      if (errnoCode(err) === 'ENOENT') return [];
      throw err;
    });
    return entries
      .filter((e) => e.isDirectory() && namePattern.test(e.name))
      .map((e) => e.name)
      .sort(compareHostNames);
  }

  /** True when host `name` has a directory in the store. */
  async exists(name: string): Promise<boolean> {
    return stat(this.hostDir(name)).then(
      (s) => s.isDirectory(),
      () => false,
    );
  }

  /**
   * Makes the directory of a new host and writes its first config, failing with
   * ERR_HOST_EXISTS when the name is taken (also by a create running at the same moment).
   */
  async reserve(config: HostConfig): Promise<void> {
    const dir = this.hostDir(config.name);
    await mkdir(this.machinesDir, { recursive: true, mode: 0o700 });
    try {
      await mkdir(dir, { mode: 0o700 });
    } catch (err) {
      if (errnoCode(err) === 'EEXIST') {
        throw new MachineError(`host ${JSON.stringify(config.name)} already exists`, { code: 'ERR_HOST_EXISTS', kind: ErrorKind.AlreadyExists });
      }
      throw err;
    }
    await this.#write(config);
  }

  /** Reads host `name`'s config, migrating older layouts. */
  async load(name: string): Promise<HostConfig> {
    const path = this.hostFile(name, HostFiles.config);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') throw notFound(name);
      throw new MachineError(`cannot read ${path}`, { code: 'ERR_HOST_CONFIG', kind: ErrorKind.Internal, cause: err });
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new MachineError(`${path} is not valid JSON`, { code: 'ERR_HOST_CONFIG', kind: ErrorKind.Internal, cause: err });
    }
    return migrateConfig(raw, path);
  }

  /** Writes host `name`'s config as is (atomically). Prefer `update` for read-modify-write. */
  async save(config: HostConfig): Promise<void> {
    if (!(await this.exists(config.name))) throw notFound(config.name);
    await this.#write(config);
  }

  /** Reads, changes and writes host `name`'s config under the host's lock; returns the new config. */
  async update(name: string, change: (config: HostConfig) => HostConfig | Promise<HostConfig>): Promise<HostConfig> {
    return withFileLock(join(this.hostDir(name), '.lock'), async () => {
      const next = await change(await this.load(name));
      await this.#write(next);
      return next;
    });
  }

  /** Deletes host `name`'s directory. */
  async remove(name: string): Promise<void> {
    await rm(this.hostDir(name), { recursive: true, force: true });
    this.#logger.debug('removed host from store', { machine: name });
  }

  /** Makes the shared CA and client certificate if needed (once, under a lock) and returns their paths. */
  ensureCertificates(options: { readonly organization?: string; readonly caCertPath?: string; readonly caKeyPath?: string; readonly signal?: AbortSignal } = {}): Promise<AuthorityPaths> {
    return ensureCertificateAuthority({ certsDir: this.certsDir, logger: this.#logger, ...options });
  }

  async #write(config: HostConfig): Promise<void> {
    await writeJsonAtomic(this.hostFile(config.name, HostFiles.config), config, { mode: 0o600 });
  }
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}

/** Checks a parsed config.json and brings it to `ConfigVersion`. */
export function migrateConfig(raw: unknown, source: string): HostConfig {
  const bad = (what: string) => new MachineError(`${source}: ${what}`, { code: 'ERR_HOST_CONFIG', kind: ErrorKind.Internal });
  if (typeof raw !== 'object' || raw === null) throw bad('not an object');
  const config = raw as Record<string, unknown>;
  const version = config.configVersion;
  if (typeof version !== 'number') throw bad('no configVersion');
  if (version > ConfigVersion) throw bad(`configVersion ${version} was written by a newer machine (this one reads up to ${ConfigVersion})`);
  if (typeof config.name !== 'string' || typeof config.driverName !== 'string') throw bad('no name or driverName');
  if (typeof config.driver !== 'object' || config.driver === null) throw bad('no driver config');
  const engine = (config.engine ?? {}) as Record<string, unknown>;
  const list = (value: unknown) => (isStringArray(value) ? value : []);
  return {
    configVersion: ConfigVersion,
    name: config.name,
    driverName: config.driverName,
    driver: config.driver as DriverConfig,
    engine: {
      env: list(engine.env),
      labels: list(engine.labels),
      opts: list(engine.opts),
      insecureRegistries: list(engine.insecureRegistries),
      registryMirrors: list(engine.registryMirrors),
    },
    tlsSans: list(config.tlsSans),
    certifiedAddresses: list(config.certifiedAddresses),
    status: Object.values(HostStatus).includes(config.status as HostStatus) ? (config.status as HostStatus) : HostStatus.Ready,
    ...(typeof config.error === 'string' ? { error: config.error } : {}),
    ...(typeof config.provision === 'object' && config.provision !== null ? { provision: config.provision as ProvisionRecord } : {}),
    createdAt: typeof config.createdAt === 'string' ? config.createdAt : new Date(0).toISOString(),
  };
}
