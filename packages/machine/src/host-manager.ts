import { copyFile, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BerthError, ErrorKind, describeError, hasKind, isBerthError, throwIfAborted } from '@berth/errors';
import { writeFileAtomic } from '@berth/fsutil';
import { noopLogger, type Logger } from '@berth/log';
import { certificateCovers, certificateInfo, issueCertificate, readCertificateAuthority, type AuthorityPaths } from './certificates.js';
import { MachineState, type Driver, type DriverContext, type DriverDefinition, type FlagValues } from './driver.js';
import type { DriverRegistry } from './driver-registry.js';
import { EngineClient, waitForEngine, type EngineInfo, type EngineVersion } from './engine-client.js';
import { defaultEnginePort, engineServeArgs } from './engine-service.js';
import { MachineError } from './errors.js';
import { HostFiles, HostStatus, ConfigVersion, validateHostName, type EngineOptions, type HostConfig, type HostStore, type ProvisionRecord } from './host-store.js';
import { parseOsRelease, distroFor } from './os-release.js';
import { SshProvisioner, fileSha256, type EngineBundleSource, type HostFacts } from './provisioner.js';
import { SshSession, waitForSsh, type SshConnectOptions } from './ssh-session.js';

/** The steps of creating and provisioning a host, as progress events name them. */
export const ProvisionPhase = {
  PreCreateCheck: 'pre-create-check',
  Create: 'create',
  WaitRunning: 'wait-running',
  WaitSsh: 'wait-ssh',
  Detect: 'detect',
  Packages: 'packages',
  Upload: 'upload',
  Certificates: 'certificates',
  Service: 'service',
  WaitEngine: 'wait-engine',
  Cleanup: 'cleanup',
} as const;
export type ProvisionPhase = (typeof ProvisionPhase)[keyof typeof ProvisionPhase];

/** A progress event of a long host operation: a phase starts or ends. */
export interface HostProgress {
  readonly machine: string;
  readonly phase: ProvisionPhase;
  readonly status: 'start' | 'done';
  readonly message: string;
}

/** Options of `HostManager`. */
export interface HostManagerOptions {
  readonly store: HostStore;
  readonly drivers: DriverRegistry;
  /** Where engine bundles come from (the app knows). */
  readonly bundles: EngineBundleSource;
  readonly logger?: Logger;
  /** The organization in certificate subjects (docker-machine: the user name). */
  readonly organization?: string;
  /** A CA to sign with instead of the store's own (`--tls-ca-cert`, `--tls-ca-key`). */
  readonly caCertPath?: string;
  readonly caKeyPath?: string;
  /** The ssh-agent socket, for hosts whose driver has no key of its own. */
  readonly sshAgent?: string;
  /** Private key files to offer to such hosts (the user's ~/.ssh/id_*). */
  readonly defaultSshKeys?: readonly string[];
  /** How long to wait for SSH after a host starts (default 5 minutes). */
  readonly sshTimeoutMs?: number;
  /** How long to wait for the engine to answer after it starts (default 90 s). */
  readonly engineTimeoutMs?: number;
  /** How long to wait for the package database lock (default 10 minutes). */
  readonly packageLockTimeoutMs?: number;
}

/** What `HostManager.create` takes. */
export interface CreateHostOptions {
  readonly name: string;
  /** A driver name or alias. */
  readonly driver: string;
  /** The driver's flag values (resolved by the app from argv and env). */
  readonly flags: FlagValues;
  readonly engine?: Partial<EngineOptions>;
  /** Extra names for the server certificate. */
  readonly tlsSans?: readonly string[];
  readonly signal?: AbortSignal;
  readonly progress?: (event: HostProgress) => void;
}

/** What every host operation takes. */
export interface HostCallOptions {
  readonly signal?: AbortSignal;
  readonly progress?: (event: HostProgress) => void;
}

/** A host loaded from the store, with its driver. */
export interface LoadedHost {
  readonly config: HostConfig;
  readonly definition: DriverDefinition;
  readonly driver: Driver;
  readonly dir: string;
}

/** The certificates check of `env` and `config`. */
export interface CertificateCheck {
  /** The address the engine is reached at now. */
  readonly address: string;
  /** The addresses the server certificate names. */
  readonly certified: readonly string[];
  readonly valid: boolean;
}

/** What `ls` shows for one host. */
export interface HostSummary {
  readonly name: string;
  readonly driverName: string;
  readonly state: MachineState;
  readonly url: string;
  readonly engineVersion: string;
  readonly error: string;
  /** CPUs busy / CPUs, memory used / total (bytes), when the host runs and answered. */
  readonly cpu?: { readonly used: number; readonly total: number };
  readonly memory?: { readonly used: number; readonly total: number };
  readonly labels: readonly string[];
}

const defaultOpts: EngineOptions = { env: [], labels: [], opts: [], insecureRegistries: [], registryMirrors: [] };

function hostFailed(message: string, cause: unknown, code = 'ERR_HOST_OPERATION', kind: ErrorKind = ErrorKind.FailedPrecondition, exitCode?: number): MachineError {
  return new MachineError(message, { code, kind, cause, ...(exitCode === undefined ? {} : { exitCode }) });
}

/** Race `work` against `ms`; undefined on timeout. */
async function within<T>(work: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The lifecycle of hosts: create (with the driver, then provisioning, and nothing left behind
 * when it fails), remove, start/stop/restart/kill, certificates, provisioning again, and the
 * per-host facts `ls` shows. The machine CLI is a thin layer over it.
 */
export class HostManager {
  readonly store: HostStore;
  readonly drivers: DriverRegistry;
  readonly #options: HostManagerOptions;
  readonly #logger: Logger;

  constructor(options: HostManagerOptions) {
    this.store = options.store;
    this.drivers = options.drivers;
    this.#options = options;
    this.#logger = options.logger ?? noopLogger;
  }

  /** The driver context of host `name`: its directory and a `saveConfig` that writes config.json. */
  contextFor(name: string): DriverContext {
    return {
      machineName: name,
      machineDir: this.store.hostDir(name),
      storePath: this.store.path,
      logger: this.#logger.child({ machine: name }),
      saveConfig: async (config) => {
        await this.store.update(name, (c) => ({ ...c, driver: config }));
      },
      openSsh: async (options = {}) => {
        const host = await this.load(name);
        return SshSession.connect(await this.sshOptions(host, options.signal));
      },
    };
  }

  /** Loads host `name` and re-creates its driver from the saved config. */
  async load(name: string): Promise<LoadedHost> {
    const config = await this.store.load(name);
    const definition = await this.drivers.load(config.driverName);
    const driver = definition.create({ context: this.contextFor(name), config: config.driver });
    return { config, definition, driver, dir: this.store.hostDir(name) };
  }

  /**
   * Creates host `name`: pre-create check, the driver's create, then provisioning. A failure at
   * any point removes what the driver made and the store entry; if the driver cannot remove
   * its resources, the entry stays marked `failed` with the error, for `rm -f`.
   */
  async create(options: CreateHostOptions): Promise<HostConfig> {
    const { name, signal } = options;
    validateHostName(name);
    const definition = await this.drivers.load(options.driver);
    const progress = (phase: ProvisionPhase, status: 'start' | 'done', message: string) => options.progress?.({ machine: name, phase, status, message });
    await this.#authority(signal);
    const initial: HostConfig = {
      configVersion: ConfigVersion,
      name,
      driverName: definition.name,
      driver: {},
      engine: { ...defaultOpts, ...options.engine },
      tlsSans: [...(options.tlsSans ?? [])],
      certifiedAddresses: [],
      status: HostStatus.Creating,
      createdAt: new Date().toISOString(),
    };
    await this.store.reserve(initial);
    let driver: Driver | undefined;
    const reached = { created: false, provisioned: false };
    try {
      driver = definition.create({ context: this.contextFor(name), flags: options.flags });
      progress(ProvisionPhase.PreCreateCheck, 'start', 'Running pre-create checks...');
      try {
        await driver.preCreateCheck({ signal });
      } catch (err) {
        throw hostFailed(`pre-create check failed: ${describeError(err)}`, err, 'ERR_PRECREATE_CHECK', isBerthError(err) ? err.kind : ErrorKind.FailedPrecondition, 3);
      }
      progress(ProvisionPhase.PreCreateCheck, 'done', 'Pre-create checks passed');
      await this.store.update(name, (c) => ({ ...c, driver: driver!.config() }));
      progress(ProvisionPhase.Create, 'start', `Creating the host with the ${definition.name} driver...`);
      reached.created = true;
      await driver.create({ signal });
      await this.store.update(name, (c) => ({ ...c, driver: driver!.config() }));
      progress(ProvisionPhase.Create, 'done', 'Host created');
      await this.#waitRunning(name, driver, signal, progress);
      return await this.#provision(name, definition, driver, options, reached);
    } catch (err) {
      // Cleanup runs even when the create was canceled: a half-made host is worse than a slower exit.
      await this.#cleanupFailedCreate(name, definition, driver, reached, err, progress);
      throw err;
    }
  }

  async #cleanupFailedCreate(
    name: string,
    definition: DriverDefinition,
    driver: Driver | undefined,
    reached: { created: boolean; provisioned: boolean },
    err: unknown,
    progress: (p: ProvisionPhase, s: 'start' | 'done', m: string) => void,
  ): Promise<void> {
    const reason = describeError(err);
    this.#logger.warn('create failed, cleaning up', { machine: name, error: reason });
    if (driver && reached.created) {
      progress(ProvisionPhase.Cleanup, 'start', definition.adoptsExistingHost ? 'Undoing what provisioning did on the host...' : 'Removing what the driver made...');
      try {
        // An adopted host stays: take off it what provisioning put there before the failure.
        if (definition.adoptsExistingHost && reached.provisioned) await this.#uninstallEngine(await this.load(name), undefined);
        await driver.remove();
      } catch (removeErr) {
        const message = `${reason}; cleaning up also failed: ${describeError(removeErr)}. Run \`machine rm -f ${name}\` to retry`;
        await this.store.update(name, (c) => ({ ...c, driver: driver.config(), status: HostStatus.Failed, error: message })).catch(() => undefined);
        progress(ProvisionPhase.Cleanup, 'done', `Cleanup failed; ${name} is kept in the store marked failed`);
        return;
      }
    }
    await this.store.remove(name);
    if (driver && reached.created) progress(ProvisionPhase.Cleanup, 'done', 'Cleaned up');
  }

  // Stops and removes the engine, its files and the packages provisioning installed.
  async #uninstallEngine(host: LoadedHost, signal: AbortSignal | undefined): Promise<void> {
    const session = await this.session(host, { timeoutMs: 30_000, ...(signal ? { signal } : {}) });
    try {
      const provisioner = new SshProvisioner({ session, logger: this.#logger.child({ machine: host.config.name }) });
      const facts = await this.#factsFor(host, provisioner, signal);
      await provisioner.uninstall(facts, host.config.provision?.installedPackages ?? [], { signal });
    } finally {
      session.close();
    }
  }

  async #authority(signal: AbortSignal | undefined): Promise<AuthorityPaths> {
    return this.store.ensureCertificates({
      ...(this.#options.organization ? { organization: this.#options.organization } : {}),
      ...(this.#options.caCertPath ? { caCertPath: this.#options.caCertPath } : {}),
      ...(this.#options.caKeyPath ? { caKeyPath: this.#options.caKeyPath } : {}),
      ...(signal ? { signal } : {}),
    });
  }

  async #waitRunning(name: string, driver: Driver, signal: AbortSignal | undefined, progress: (p: ProvisionPhase, s: 'start' | 'done', m: string) => void): Promise<void> {
    progress(ProvisionPhase.WaitRunning, 'start', 'Waiting for the host to be running...');
    const deadline = Date.now() + 180_000;
    let state: MachineState = MachineState.None;
    while (Date.now() < deadline) {
      throwIfAborted(signal);
      state = await driver.state({ signal });
      if (state === MachineState.Running) {
        progress(ProvisionPhase.WaitRunning, 'done', 'Host is running');
        return;
      }
      if (state === MachineState.Error) break;
      await sleep(1000, undefined, { signal }).catch(() => throwIfAborted(signal));
    }
    throw hostFailed(`host ${name} did not reach Running (state ${state})`, undefined, 'ERR_HOST_NOT_RUNNING', ErrorKind.Timeout);
  }

  /** The SSH connection options of a loaded host. */
  async sshOptions(host: LoadedHost, signal?: AbortSignal): Promise<SshConnectOptions> {
    const { driver } = host;
    const keyPath = driver.sshKeyPath();
    const keys: string[] = [];
    for (const path of keyPath ? [keyPath] : (this.#options.defaultSshKeys ?? [])) {
      try {
        keys.push(await readFile(path, 'utf8'));
      } catch (err) {
        if (keyPath) throw hostFailed(`cannot read the SSH key ${path} of ${host.config.name}`, err, 'ERR_SSH_KEY_READ', ErrorKind.NotFound);
      }
    }
    return {
      host: await driver.sshHostname({ signal }),
      port: await driver.sshPort({ signal }),
      username: driver.sshUser(),
      privateKeys: keys,
      ...(this.#options.sshAgent ? { agent: this.#options.sshAgent } : {}),
      hostKey: { knownHostsPath: join(host.dir, HostFiles.knownHosts), alias: host.config.name },
      logger: this.#logger.child({ machine: host.config.name }),
      ...(signal ? { signal } : {}),
    };
  }

  /** Opens an SSH session to a running host (waiting up to `timeoutMs` for SSH to answer). */
  async session(nameOrHost: string | LoadedHost, options: { readonly signal?: AbortSignal; readonly timeoutMs?: number } = {}): Promise<SshSession> {
    const host = typeof nameOrHost === 'string' ? await this.load(nameOrHost) : nameOrHost;
    const ssh = await this.sshOptions(host, options.signal);
    if (options.timeoutMs === 0) return SshSession.connect(ssh);
    return waitForSsh({ ...ssh, timeoutMs: options.timeoutMs ?? this.#options.sshTimeoutMs ?? 300_000 });
  }

  /** Provisions host `name` again: packages, bundle, certificates, service (`machine provision`). */
  async provision(name: string, options: HostCallOptions = {}): Promise<HostConfig> {
    const host = await this.load(name);
    return this.#provision(name, host.definition, host.driver, options, { provisioned: false });
  }

  async #provision(name: string, definition: DriverDefinition, driver: Driver, options: HostCallOptions, reached: { provisioned: boolean }): Promise<HostConfig> {
    const { signal } = options;
    const progress = (phase: ProvisionPhase, status: 'start' | 'done', message: string) => options.progress?.({ machine: name, phase, status, message });
    const host: LoadedHost = { config: await this.store.load(name), definition, driver, dir: this.store.hostDir(name) };
    progress(ProvisionPhase.WaitSsh, 'start', 'Waiting for SSH to be available...');
    const session = await this.session(host, { ...(signal ? { signal } : {}) });
    try {
      progress(ProvisionPhase.WaitSsh, 'done', 'SSH is available');
      const provisioner = new SshProvisioner({
        session,
        logger: this.#logger.child({ machine: name }),
        ...(this.#options.packageLockTimeoutMs === undefined ? {} : { packageLockTimeoutMs: this.#options.packageLockTimeoutMs }),
      });
      progress(ProvisionPhase.Detect, 'start', 'Detecting the operating system...');
      const facts = await provisioner.detect({ signal });
      reached.provisioned = true;
      progress(ProvisionPhase.Detect, 'done', `Found ${facts.os.prettyName} (${facts.arch}, ${facts.distro.packageManager}, ${facts.init})`);
      await provisioner.waitForCloudInit(facts, { signal });
      progress(ProvisionPhase.Packages, 'start', 'Installing the packages the engine needs...');
      const installed = await provisioner.installDependencies(facts, { signal });
      progress(ProvisionPhase.Packages, 'done', installed.length ? `Installed ${installed.join(' ')}` : 'Packages already present');
      // Record what was installed right away: a later failure must still let `rm` undo it.
      const record: ProvisionRecord = {
        osId: facts.os.id,
        osVersion: facts.os.versionId,
        osName: facts.os.prettyName,
        packageManager: facts.distro.packageManager,
        init: facts.init,
        installedPackages: [...new Set([...(host.config.provision?.installedPackages ?? []), ...installed])],
        engineVersion: host.config.provision?.engineVersion ?? '',
        arch: facts.arch,
        at: new Date().toISOString(),
      };
      await this.store.update(name, (c) => ({ ...c, provision: record }));
      progress(ProvisionPhase.Upload, 'start', 'Copying the engine to the host...');
      const bundle = await this.#options.bundles.resolve(facts.arch, { ...(signal ? { signal } : {}) });
      const sha256 = await fileSha256(bundle.path);
      const uploaded = await provisioner.installBundle(facts, bundle, { sha256, ...(signal ? { signal } : {}) });
      await this.store.update(name, (c) => ({ ...c, provision: { ...record, engineVersion: bundle.version } }));
      progress(ProvisionPhase.Upload, 'done', uploaded ? `Engine ${bundle.version} copied` : `Engine ${bundle.version} already there`);
      progress(ProvisionPhase.Certificates, 'start', 'Copying certificates...');
      const url = await driver.url({ signal });
      const addresses = [await driver.ip({ signal })];
      await this.#writeHostCertificates(name, driver, addresses, signal);
      const tls = await this.#engineTls(name);
      await provisioner.installTls(facts, tls, { signal });
      progress(ProvisionPhase.Certificates, 'done', `Certificates for ${addresses.join(', ')}`);
      progress(ProvisionPhase.Service, 'start', `Setting up the engine service (${facts.init})...`);
      const config = await this.store.load(name);
      const args = engineServeArgs(config.engine, { port: enginePort(url), provider: definition.name });
      await provisioner.installService(facts, args, config.engine.env, { signal });
      await provisioner.restartEngine(facts, { signal });
      progress(ProvisionPhase.Service, 'done', 'Engine service started');
      progress(ProvisionPhase.WaitEngine, 'start', 'Checking the engine answers over TLS...');
      const version = await this.#waitForNewEngine(name, url, provisioner, facts, signal);
      progress(ProvisionPhase.WaitEngine, 'done', `Engine ${version.Version} answers at ${url}`);
      return await this.store.update(name, (c) => {
        const next: HostConfig = { ...c, driver: driver.config(), status: HostStatus.Ready, certifiedAddresses: addresses };
        delete (next as { error?: string }).error;
        return next;
      });
    } finally {
      session.close();
    }
  }

  /**
   * Waits for a freshly (re)started engine to answer, watching the service meanwhile: an engine
   * that keeps crashing fails the wait at once, with its log, instead of at the timeout.
   */
  async #waitForNewEngine(name: string, url: string, provisioner: SshProvisioner, facts: HostFacts, signal: AbortSignal | undefined): Promise<EngineVersion> {
    const watch = new AbortController();
    const stop = () => watch.abort(signal?.reason);
    signal?.addEventListener('abort', stop, { once: true });
    let crashing = false;
    const watchdog = (async () => {
      while (!watch.signal.aborted) {
        await sleep(3000, undefined, { signal: watch.signal }).catch(() => undefined);
        if (watch.signal.aborted) return;
        if ((await provisioner.engineRestarts(facts).catch(() => 0)) >= 3) {
          crashing = true;
          watch.abort();
        }
      }
    })();
    try {
      return await waitForEngine(await this.engineClient(name, url), { timeoutMs: this.#options.engineTimeoutMs ?? 90_000, signal: watch.signal });
    } catch (err) {
      throwIfAborted(signal);
      const log = await provisioner.engineLog(facts).catch(() => '');
      const why = crashing ? 'it keeps exiting' : describeError(err);
      throw hostFailed(`the engine on ${name} did not come up: ${why}${log ? `\nengine log:\n${log}` : ''}`, crashing ? undefined : err, 'ERR_ENGINE_NOT_UP', ErrorKind.Unavailable);
    } finally {
      signal?.removeEventListener('abort', stop);
      watch.abort();
      await watchdog;
    }
  }

  // The server certificate names the host's IP, the name SSH reaches it by, its machine name,
  // localhost and the --tls-san values.
  async #writeHostCertificates(name: string, driver: Driver, addresses: readonly string[], signal: AbortSignal | undefined): Promise<void> {
    const authority = await this.#authority(signal);
    const ca = await readCertificateAuthority(authority);
    const config = await this.store.load(name);
    const names = [...addresses, await driver.sshHostname({ signal }), name, 'localhost', ...config.tlsSans];
    const organization = `${this.#options.organization ?? 'berth'}.${name}`;
    const server = issueCertificate({ ca, commonName: name, organization, usage: 'server', names });
    const dir = this.store.hostDir(name);
    await writeFileAtomic(join(dir, HostFiles.serverKey), server.keyPem, { mode: 0o600 });
    await writeFileAtomic(join(dir, HostFiles.serverCert), server.certPem, { mode: 0o644 });
    // DOCKER_CERT_PATH points at the host's directory: it holds the CA and client pair too.
    await copyFile(authority.caCertPath, join(dir, HostFiles.caCert));
    await copyFile(authority.clientCertPath, join(dir, HostFiles.clientCert));
    await copyFile(authority.clientKeyPath, join(dir, HostFiles.clientKey));
  }

  async #engineTls(name: string) {
    const dir = this.store.hostDir(name);
    return {
      caPem: await readFile(join(dir, HostFiles.caCert), 'utf8'),
      serverCertPem: await readFile(join(dir, HostFiles.serverCert), 'utf8'),
      serverKeyPem: await readFile(join(dir, HostFiles.serverKey), 'utf8'),
    };
  }

  /** A client for host `name`'s engine with the host's client certificate. */
  async engineClient(name: string, url?: string, timeoutMs?: number): Promise<EngineClient> {
    const dir = this.store.hostDir(name);
    const read = (file: string) => readFile(join(dir, file), 'utf8');
    const target = url ?? (await (await this.load(name)).driver.url());
    try {
      return new EngineClient({
        url: target,
        ca: await read(HostFiles.caCert),
        cert: await read(HostFiles.clientCert),
        key: await read(HostFiles.clientKey),
        ...(timeoutMs === undefined ? {} : { timeoutMs }),
      });
    } catch (err) {
      if (err instanceof BerthError) throw err;
      throw hostFailed(`host ${name} has no client certificates (was it provisioned?)`, err, 'ERR_HOST_NOT_PROVISIONED', ErrorKind.FailedPrecondition);
    }
  }

  /**
   * Checks that the server certificate names the host's current address, as `env` and `config`
   * must before pointing a client at it.
   */
  async checkCertificates(name: string, options: { readonly signal?: AbortSignal } = {}): Promise<CertificateCheck> {
    const host = await this.load(name);
    const address = await host.driver.ip(options);
    let pem: string;
    try {
      pem = await readFile(join(host.dir, HostFiles.serverCert), 'utf8');
    } catch (err) {
      throw hostFailed(`host ${name} has no server certificate yet (was it provisioned?)`, err, 'ERR_HOST_NOT_PROVISIONED');
    }
    const info = certificateInfo(pem);
    return { address, certified: [...info.ips, ...info.dnsNames], valid: certificateCovers(pem, address) };
  }

  /**
   * Makes a new server certificate for the host's current address and restarts the engine with
   * it (`regenerate-certs`); with `clientCerts`, the store's client certificate is made again first.
   */
  async regenerateCertificates(name: string, options: HostCallOptions & { readonly clientCerts?: boolean } = {}): Promise<void> {
    const { signal } = options;
    const progress = (phase: ProvisionPhase, status: 'start' | 'done', message: string) => options.progress?.({ machine: name, phase, status, message });
    if (options.clientCerts) {
      await rm(join(this.store.certsDir, 'cert.pem'), { force: true });
      await rm(join(this.store.certsDir, 'key.pem'), { force: true });
    }
    const host = await this.load(name);
    const session = await this.session(host, { ...(signal ? { signal } : {}) });
    try {
      const provisioner = new SshProvisioner({ session, logger: this.#logger.child({ machine: name }) });
      const facts = await this.#factsFor(host, provisioner, signal);
      progress(ProvisionPhase.Certificates, 'start', 'Regenerating TLS certificates...');
      const addresses = [await host.driver.ip({ signal })];
      await this.#writeHostCertificates(name, host.driver, addresses, signal);
      await provisioner.installTls(facts, await this.#engineTls(name), { signal });
      await this.store.update(name, (c) => ({ ...c, certifiedAddresses: addresses }));
      progress(ProvisionPhase.Certificates, 'done', `Certificates for ${addresses.join(', ')}`);
      progress(ProvisionPhase.Service, 'start', 'Restarting the engine...');
      await provisioner.restartEngine(facts, { signal });
      progress(ProvisionPhase.Service, 'done', 'Engine restarted');
      const url = await host.driver.url({ signal });
      progress(ProvisionPhase.WaitEngine, 'start', 'Checking the engine answers over TLS...');
      await this.#waitForNewEngine(name, url, provisioner, facts, signal);
      progress(ProvisionPhase.WaitEngine, 'done', `Engine answers at ${url}`);
    } finally {
      session.close();
    }
  }

  /** Uploads the current engine bundle and restarts the engine when it changed (`upgrade`). */
  async upgrade(name: string, options: HostCallOptions = {}): Promise<{ readonly upgraded: boolean; readonly version: string }> {
    const { signal } = options;
    const progress = (phase: ProvisionPhase, status: 'start' | 'done', message: string) => options.progress?.({ machine: name, phase, status, message });
    const host = await this.load(name);
    if ((await host.driver.state({ signal })) !== MachineState.Running) await this.start(name, options);
    const session = await this.session(host, { ...(signal ? { signal } : {}) });
    try {
      const provisioner = new SshProvisioner({ session, logger: this.#logger.child({ machine: name }) });
      const facts = await this.#factsFor(host, provisioner, signal);
      progress(ProvisionPhase.Upload, 'start', 'Copying the engine to the host...');
      const bundle = await this.#options.bundles.resolve(facts.arch, { ...(signal ? { signal } : {}) });
      const uploaded = await provisioner.installBundle(facts, bundle, { ...(signal ? { signal } : {}) });
      progress(ProvisionPhase.Upload, 'done', uploaded ? `Engine ${bundle.version} copied` : `Engine ${bundle.version} already installed`);
      if (uploaded) {
        progress(ProvisionPhase.Service, 'start', 'Restarting the engine...');
        await provisioner.restartEngine(facts, { signal });
        await this.#waitForNewEngine(name, await host.driver.url({ signal }), provisioner, facts, signal);
        progress(ProvisionPhase.Service, 'done', 'Engine restarted');
        await this.store.update(name, (c) => (c.provision ? { ...c, provision: { ...c.provision, engineVersion: bundle.version, at: new Date().toISOString() } } : c));
      }
      return { upgraded: uploaded, version: bundle.version };
    } finally {
      session.close();
    }
  }

  // The facts recorded at provisioning, re-detected when the record is missing.
  async #factsFor(host: LoadedHost, provisioner: SshProvisioner, signal: AbortSignal | undefined): Promise<HostFacts> {
    const record = host.config.provision;
    if (!record) return provisioner.detect({ ...(signal ? { signal } : {}) });
    const os = parseOsRelease(`ID=${record.osId}\nVERSION_ID=${record.osVersion}\nPRETTY_NAME="${record.osName}"`);
    const detected = await provisioner.detect({ ...(signal ? { signal } : {}) }).catch(() => undefined);
    if (detected) return detected;
    return {
      os,
      distro: distroFor(os, new Set(['apt-get', 'dnf', 'yum', 'apk', 'zypper'])),
      init: record.init as HostFacts['init'],
      arch: record.arch,
      root: host.driver.sshUser() === 'root',
      cloudInit: false,
    };
  }

  /**
   * Removes host `name`: for a driver that adopted an existing host, uninstalls what provisioning
   * installed; then the driver's resources; then the store entry. With `force`, failures of the
   * first two are logged and the entry is removed anyway.
   */
  async remove(name: string, options: HostCallOptions & { readonly force?: boolean } = {}): Promise<void> {
    const { signal } = options;
    let host: LoadedHost;
    try {
      host = await this.load(name);
    } catch (err) {
      if (options.force && !hasKind(err, ErrorKind.NotFound) && (await this.store.exists(name))) {
        this.#logger.warn('host config unreadable, removing the entry', { machine: name, error: describeError(err) });
        await this.store.remove(name);
        return;
      }
      throw err;
    }
    const progress = (phase: ProvisionPhase, status: 'start' | 'done', message: string) => options.progress?.({ machine: name, phase, status, message });
    const attempt = async (what: string, work: () => Promise<void>) => {
      try {
        await work();
      } catch (err) {
        if (!options.force) throw hostFailed(`${what} of ${name} failed: ${describeError(err)} (use -f to remove the entry anyway)`, err, 'ERR_HOST_REMOVE', isBerthError(err) ? err.kind : ErrorKind.Unavailable);
        this.#logger.warn(`${what} failed; removing anyway`, { machine: name, error: describeError(err) });
      }
    };
    if (host.definition.adoptsExistingHost && host.config.provision) {
      await attempt('uninstalling the engine', async () => {
        const state = await host.driver.state({ signal });
        if (state !== MachineState.Running) throw hostFailed(`the host is ${state}, so the engine cannot be uninstalled`, undefined, 'ERR_HOST_NOT_RUNNING');
        progress(ProvisionPhase.Cleanup, 'start', 'Uninstalling the engine from the host...');
        await this.#uninstallEngine(host, signal);
        progress(ProvisionPhase.Cleanup, 'done', 'Engine uninstalled');
      });
    }
    await attempt('removing the driver resources', () => host.driver.remove({ signal }));
    await this.store.remove(name);
  }

  /** Starts a host, waits for SSH, and reports whether its address moved off its certificate. */
  async start(name: string, options: HostCallOptions = {}): Promise<{ readonly addressChanged: boolean; readonly address: string }> {
    const host = await this.load(name);
    const { signal } = options;
    if ((await host.driver.state({ signal })) !== MachineState.Running) {
      await host.driver.start({ signal });
      await this.store.update(name, (c) => ({ ...c, driver: host.driver.config() }));
    }
    return this.#afterBoot(host, options);
  }

  /** Restarts a host (a stopped one is started), then as `start`. */
  async restart(name: string, options: HostCallOptions = {}): Promise<{ readonly addressChanged: boolean; readonly address: string }> {
    const host = await this.load(name);
    const { signal } = options;
    if ((await host.driver.state({ signal })) === MachineState.Stopped) await host.driver.start({ signal });
    else await host.driver.restart({ signal });
    await this.store.update(name, (c) => ({ ...c, driver: host.driver.config() }));
    return this.#afterBoot(host, options);
  }

  async #afterBoot(host: LoadedHost, options: HostCallOptions): Promise<{ readonly addressChanged: boolean; readonly address: string }> {
    const name = host.config.name;
    await this.#waitRunning(name, host.driver, options.signal, (phase, status, message) => options.progress?.({ machine: name, phase, status, message }));
    const address = await host.driver.ip({ ...(options.signal ? { signal: options.signal } : {}) });
    const certified = host.config.certifiedAddresses;
    const addressChanged = host.config.status === HostStatus.Ready && certified.length > 0 && !certified.includes(address);
    if (host.config.status === HostStatus.Ready) {
      options.progress?.({ machine: name, phase: ProvisionPhase.WaitSsh, status: 'start', message: 'Waiting for SSH to be available...' });
      (await this.session(host, { ...(options.signal ? { signal: options.signal } : {}) })).close();
      options.progress?.({ machine: name, phase: ProvisionPhase.WaitSsh, status: 'done', message: 'SSH is available' });
      // With a new address the old certificate cannot pass the TLS check: the caller regenerates first.
      if (!addressChanged) {
        options.progress?.({ machine: name, phase: ProvisionPhase.WaitEngine, status: 'start', message: 'Waiting for the engine...' });
        const url = await host.driver.url({ ...(options.signal ? { signal: options.signal } : {}) });
        const version = await waitForEngine(await this.engineClient(name, url), { timeoutMs: this.#options.engineTimeoutMs ?? 90_000, ...(options.signal ? { signal: options.signal } : {}) });
        options.progress?.({ machine: name, phase: ProvisionPhase.WaitEngine, status: 'done', message: `Engine ${version.Version} answers at ${url}` });
      }
    }
    return { addressChanged, address };
  }

  /** Stops a host gracefully and waits until it is Stopped. */
  async stop(name: string, options: HostCallOptions = {}): Promise<void> {
    const host = await this.load(name);
    await host.driver.stop({ ...(options.signal ? { signal: options.signal } : {}) });
    await this.#waitState(host, MachineState.Stopped, options.signal);
  }

  /** Powers a host off and waits until it is Stopped. */
  async kill(name: string, options: HostCallOptions = {}): Promise<void> {
    const host = await this.load(name);
    await host.driver.kill({ ...(options.signal ? { signal: options.signal } : {}) });
    await this.#waitState(host, MachineState.Stopped, options.signal);
  }

  async #waitState(host: LoadedHost, want: MachineState, signal: AbortSignal | undefined): Promise<void> {
    const deadline = Date.now() + 180_000;
    for (;;) {
      const state = await host.driver.state({ ...(signal ? { signal } : {}) });
      if (state === want) break;
      if (Date.now() > deadline) throw hostFailed(`host ${host.config.name} is ${state}, not ${want}`, undefined, 'ERR_HOST_STATE_TIMEOUT', ErrorKind.Timeout);
      await sleep(1000, undefined, { signal }).catch(() => throwIfAborted(signal));
    }
    await this.store.update(host.config.name, (c) => ({ ...c, driver: host.driver.config() }));
  }

  /** What `ls` shows for host `name`, gathered within `timeoutMs` (state `Timeout` past it). */
  async summary(name: string, options: { readonly timeoutMs: number; readonly resources?: boolean }): Promise<HostSummary> {
    let driverName = 'not found';
    let labels: readonly string[] = [];
    // What was learned before the deadline, for the Timeout row.
    const partial: { url?: string; engineVersion?: string } = {};
    const work = (async (): Promise<HostSummary> => {
      let host: LoadedHost;
      try {
        const config = await this.store.load(name);
        driverName = config.driverName;
        labels = config.engine.labels;
        host = await this.load(name);
      } catch (err) {
        return { name, driverName, state: MachineState.Error, url: '', engineVersion: '', error: describeError(err), labels };
      }
      const { config, driver } = host;
      if (config.status === HostStatus.Failed) return { name, driverName, state: MachineState.Error, url: '', engineVersion: '', error: config.error ?? 'create failed', labels };
      let state: MachineState;
      try {
        state = await driver.state();
      } catch (err) {
        return { name, driverName, state: MachineState.Error, url: '', engineVersion: '', error: describeError(err), labels };
      }
      if (state !== MachineState.Running) return { name, driverName, state, url: '', engineVersion: '', error: config.status === HostStatus.Creating ? 'being created' : '', labels };
      const url = await driver.url().catch(() => '');
      partial.url = url;
      let engineVersion = 'Unknown';
      let error = config.status === HostStatus.Creating ? 'being created' : '';
      let info: EngineInfo | undefined;
      if (url && config.status === HostStatus.Ready) {
        try {
          const client = await this.engineClient(name, url, options.timeoutMs);
          engineVersion = `v${(await client.version()).Version}`;
          info = await client.info();
        } catch (err) {
          error = describeError(err);
        }
      }
      partial.engineVersion = engineVersion;
      const resources = options.resources === false ? undefined : await this.#resources(host).catch(() => undefined);
      return {
        name,
        driverName,
        state,
        url,
        engineVersion,
        error,
        labels,
        ...(resources ? { cpu: { used: resources.cpuBusy, total: info?.NCPU ?? resources.cpus } } : {}),
        ...(resources ? { memory: { used: resources.memUsed, total: info?.MemTotal ?? resources.memTotal } } : {}),
      };
    })();
    const result = await within(work, options.timeoutMs);
    if (result) return result;
    return {
      name,
      driverName,
      state: MachineState.Timeout,
      url: partial.url ?? '',
      engineVersion: partial.engineVersion ?? '',
      error: `no answer within ${options.timeoutMs / 1000} s`,
      labels,
    };
  }

  // CPU busy (in CPUs, over half a second) and memory in use, read over SSH from /proc.
  async #resources(host: LoadedHost): Promise<{ cpuBusy: number; cpus: number; memUsed: number; memTotal: number }> {
    const session = await this.session(host, { timeoutMs: 0 });
    try {
      const out = await session.run("head -1 /proc/stat; grep -E '^(MemTotal|MemAvailable):' /proc/meminfo; nproc 2>/dev/null || grep -c ^processor /proc/cpuinfo; sleep 0.5; head -1 /proc/stat");
      const lines = out.trim().split('\n');
      const ticks = (line: string) => line.trim().split(/\s+/).slice(1).map(Number);
      const a = ticks(lines[0]!);
      const b = ticks(lines[lines.length - 1]!);
      const idle = (t: number[]) => (t[3] ?? 0) + (t[4] ?? 0);
      const sum = (t: number[]) => t.slice(0, 8).reduce((x, y) => x + y, 0);
      const total = sum(b) - sum(a);
      const cpus = Number(lines[3]) || 1;
      const busyFraction = total > 0 ? 1 - (idle(b) - idle(a)) / total : 0;
      const kb = (key: string) => Number(/(\d+)/.exec(lines.find((l) => l.startsWith(key)) ?? '')?.[1] ?? 0) * 1024;
      const memTotal = kb('MemTotal');
      return { cpuBusy: busyFraction * cpus, cpus, memUsed: memTotal - kb('MemAvailable'), memTotal };
    } finally {
      session.close();
    }
  }
}

function enginePort(url: string): number {
  const match = /:(\d+)\/?$/.exec(url);
  return match ? Number(match[1]) : defaultEnginePort;
}
