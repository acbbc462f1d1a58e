import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorKind, throwIfAborted } from '@berth/errors';
import { noopLogger, type Logger } from '@berth/log';
import { EnginePaths, InitSystem, engineEnvFile, serviceScripts, writeFileScript } from './engine-service.js';
import { ProvisionError } from './errors.js';
import { distroFor, parseOsRelease, type Distro, type OsRelease } from './os-release.js';
import { packageCommands, shellQuote } from './package-manager.js';
import type { SshSession } from './ssh-session.js';

/** What provisioning learns about a host before changing it. */
export interface HostFacts {
  readonly os: OsRelease;
  readonly distro: Distro;
  readonly init: InitSystem;
  /** Node's name for the CPU architecture (`x64`, `arm64`), which picks the engine bundle. */
  readonly arch: string;
  /** True when the SSH user is root; otherwise commands go through `sudo -n`. */
  readonly root: boolean;
  readonly cloudInit: boolean;
}

/** An engine bundle on this machine: the tar.gz that `tools/src/engine-bundle.ts` builds. */
export interface EngineBundle {
  readonly path: string;
  readonly version: string;
  readonly arch: string;
}

/** Finds the engine bundle for an architecture (the app decides where bundles live). */
export interface EngineBundleSource {
  resolve(arch: string, options: { readonly signal?: AbortSignal }): Promise<EngineBundle>;
}

/** The TLS files an engine serves with. */
export interface EngineTls {
  readonly caPem: string;
  readonly serverCertPem: string;
  readonly serverKeyPem: string;
}

/** Options of `SshProvisioner`. */
export interface SshProvisionerOptions {
  readonly session: SshSession;
  readonly logger?: Logger;
  /** How long to wait for another package manager run (cloud-init, unattended-upgrades) to finish. Default 10 minutes. */
  readonly packageLockTimeoutMs?: number;
  /** Pause between install attempts while the package database is locked (default 3 s). */
  readonly retryPauseMs?: number;
}

const archNames: Record<string, string> = { x86_64: 'x64', amd64: 'x64', aarch64: 'arm64', arm64: 'arm64', armv7l: 'armv7l', ppc64le: 'ppc64le', s390x: 's390x' };
const separator = '---berth---';

function failed(code: string, message: string, cause?: unknown): ProvisionError {
  return new ProvisionError(message, { code, kind: ErrorKind.FailedPrecondition, cause });
}

/** The SHA-256 of a local file, hex. */
export async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Provisions the Berth engine on a host over SSH, step by step: detect the OS, install the
 * packages the engine needs (waiting out package-manager locks), upload and unpack the engine
 * bundle, install the TLS files and the service, and undo all of it for `rm`. Each step is
 * idempotent, so re-provisioning an existing host is safe.
 */
export class SshProvisioner {
  readonly #session: SshSession;
  readonly #logger: Logger;
  readonly #lockTimeoutMs: number;
  readonly #retryPauseMs: number;

  constructor(options: SshProvisionerOptions) {
    this.#session = options.session;
    this.#logger = options.logger ?? noopLogger;
    this.#lockTimeoutMs = options.packageLockTimeoutMs ?? 600_000;
    this.#retryPauseMs = options.retryPauseMs ?? 3000;
  }

  /** Reads /etc/os-release, the architecture, the init system and the tools the host has. */
  async detect(options: { readonly signal?: AbortSignal } = {}): Promise<HostFacts> {
    const script = [
      'cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null',
      `echo ${separator}`,
      'uname -m',
      `echo ${separator}`,
      'for c in apt-get dnf yum apk zypper systemctl openrc rc-service sudo cloud-init; do command -v $c >/dev/null 2>&1 && echo $c; done',
      `echo ${separator}`,
      // sd_booted(3): systemd is the running init when this directory exists.
      '[ -d /run/systemd/system ] && echo systemd',
      '{ [ -d /run/openrc ] || [ -f /run/openrc/softlevel ]; } && command -v openrc-run >/dev/null 2>&1 && echo openrc',
      `echo ${separator}`,
      'id -u',
    ].join('\n');
    const out = await this.#session.run(script, { signal: options.signal });
    const [osText = '', unameText = '', commandsText = '', initText = '', uidText = ''] = out.split(`${separator}\n`);
    if (!osText.trim()) throw failed('ERR_PROVISION_DETECT', `${this.#session.target} has no /etc/os-release: cannot tell its OS`);
    const os = parseOsRelease(osText);
    const commands = new Set(commandsText.split('\n').filter(Boolean));
    const distro = distroFor(os, commands);
    const machine = unameText.trim();
    const arch = archNames[machine];
    if (!arch) throw failed('ERR_PROVISION_ARCH', `${os.prettyName} on ${machine}: no engine build for this CPU architecture`);
    const inits = initText.split('\n');
    const init = inits.includes('systemd') ? InitSystem.Systemd : inits.includes('openrc') ? InitSystem.OpenRc : InitSystem.Supervised;
    const root = uidText.trim() === '0';
    if (!root) {
      if (!commands.has('sudo')) throw failed('ERR_PROVISION_SUDO', `the SSH user on ${this.#session.target} is not root and the host has no sudo`);
      const check = await this.#session.exec('sudo -n true', { signal: options.signal });
      if (check.code !== 0) {
        throw failed('ERR_PROVISION_SUDO', `the SSH user on ${this.#session.target} cannot run sudo without a password: ${check.stderr.trim()}`);
      }
    }
    const facts: HostFacts = { os, distro, init, arch, root, cloudInit: commands.has('cloud-init') };
    this.#logger.debug('host detected', { host: this.#session.target, os: os.prettyName, packageManager: distro.packageManager, init, arch });
    return facts;
  }

  /** Runs `script` as root (through `sudo -n` for another user), in the C locale. */
  async root(facts: Pick<HostFacts, 'root'>, script: string, options: { readonly signal?: AbortSignal } = {}) {
    const wrapped = `export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; ${script}`;
    return this.#session.exec(facts.root ? `sh -c ${shellQuote(wrapped)}` : `sudo -n sh -c ${shellQuote(wrapped)}`, { signal: options.signal });
  }

  async #rootOk(facts: Pick<HostFacts, 'root'>, script: string, what: string, signal: AbortSignal | undefined): Promise<string> {
    const result = await this.root(facts, script, { signal });
    if (result.code !== 0) {
      const tail = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-6).join('\n');
      throw failed('ERR_PROVISION_STEP', `${what} failed on ${this.#session.target} (exit status ${result.code})${tail ? `:\n${tail}` : ''}`);
    }
    return result.stdout;
  }

  /** On a cloud-init host, waits until cloud-init is done, so that it is not racing us for the package manager. */
  async waitForCloudInit(facts: HostFacts, options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    if (!facts.cloudInit) return;
    this.#logger.info('waiting for cloud-init to finish', { host: this.#session.target });
    await this.root(facts, 'timeout 600 cloud-init status --wait >/dev/null 2>&1 || true', options);
  }

  /** The names of `packages` that are not installed. */
  async missingPackages(facts: HostFacts, packages: readonly string[], options: { readonly signal?: AbortSignal } = {}): Promise<string[]> {
    if (packages.length === 0) return [];
    const out = await this.#rootOk(facts, packageCommands(facts.distro.packageManager).missing(packages), 'checking installed packages', options.signal);
    return out.split('\n').map((l) => l.trim()).filter(Boolean);
  }

  /**
   * Installs whichever of the engine's dependencies are missing and returns their names. A
   * failed install is retried while another run holds the package database (found through the
   * lock files, not through localized error text), up to the lock timeout.
   */
  async installDependencies(facts: HostFacts, options: { readonly signal?: AbortSignal; readonly extra?: readonly string[] } = {}): Promise<string[]> {
    const wanted = [...facts.distro.engineDependencies, ...(options.extra ?? [])];
    const missing = await this.missingPackages(facts, wanted, options);
    if (missing.length === 0) return [];
    const commands = packageCommands(facts.distro.packageManager);
    this.#logger.info('installing packages', { host: this.#session.target, packages: missing.join(' ') });
    const refresh = commands.refresh();
    if (refresh) await this.#withLockRetry(facts, refresh, 'refreshing the package index', options.signal, true);
    await this.#withLockRetry(facts, commands.install(missing), `installing ${missing.join(' ')}`, options.signal, false);
    const still = await this.missingPackages(facts, missing, options);
    if (still.length) throw failed('ERR_PROVISION_PACKAGES', `${still.join(', ')} still missing on ${this.#session.target} after the install`);
    return missing;
  }

  /**
   * Removes packages that provisioning installed, unless something installed since needs them;
   * returns the ones it kept.
   */
  async removePackages(facts: HostFacts, packages: readonly string[], options: { readonly signal?: AbortSignal } = {}): Promise<string[]> {
    if (packages.length === 0) return [];
    const removed = new Set((await this.#rootOk(facts, packageCommands(facts.distro.packageManager).remove(packages), 'removing packages', options.signal)).split('\n').filter(Boolean));
    const kept = packages.filter((p) => !removed.has(p));
    if (kept.length) this.#logger.warn('packages kept because other packages need them', { host: this.#session.target, packages: kept.join(' ') });
    return kept;
  }

  async #withLockRetry(facts: HostFacts, script: string, what: string, signal: AbortSignal | undefined, soft: boolean): Promise<void> {
    const deadline = Date.now() + this.#lockTimeoutMs;
    const commands = packageCommands(facts.distro.packageManager);
    let unexplained = 0;
    for (let attempt = 1; ; attempt++) {
      throwIfAborted(signal);
      const result = await this.root(facts, script, { signal });
      if (result.code === 0) return;
      const holder = (await this.root(facts, commands.lockHolder(), { signal })).stdout.trim();
      // A lock released between the failure and the probe looks like no lock: allow two of those.
      const retry = holder ? Date.now() < deadline : ++unexplained <= 2;
      if (!retry) {
        const tail = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-6).join('\n');
        if (soft) {
          this.#logger.warn(`${what} failed; installing from the current index`, { host: this.#session.target, status: result.code, output: tail });
          return;
        }
        throw failed(
          holder ? 'ERR_PROVISION_PACKAGE_LOCK' : 'ERR_PROVISION_PACKAGES',
          holder
            ? `${what} on ${this.#session.target}: ${holder} stayed locked for ${Math.round(this.#lockTimeoutMs / 1000)} s`
            : `${what} failed on ${this.#session.target} (exit status ${result.code})${tail ? `:\n${tail}` : ''}`,
        );
      }
      this.#logger.info(holder ? `package database busy (${holder}), retrying` : `${what} failed, retrying`, { host: this.#session.target, attempt });
      await sleep(this.#retryPauseMs, undefined, { signal }).catch(() => throwIfAborted(signal));
    }
  }

  /**
   * Uploads the bundle and unpacks it into /opt/berth, unless the same bundle (by SHA-256) is
   * already there. The old tree is swapped out atomically; a running engine keeps its files
   * until it restarts. Returns true when it uploaded.
   */
  async installBundle(facts: HostFacts, bundle: EngineBundle, options: { readonly signal?: AbortSignal; readonly sha256?: string } = {}): Promise<boolean> {
    if (bundle.arch !== facts.arch) {
      throw failed('ERR_PROVISION_ARCH', `engine bundle ${bundle.path} is for ${bundle.arch}, ${this.#session.target} is ${facts.arch}`);
    }
    const sha = options.sha256 ?? (await fileSha256(bundle.path));
    const current = await this.root(facts, `cat ${EnginePaths.prefix}/.bundle-sha256 2>/dev/null`, options);
    if (current.stdout.trim() === sha && (await this.root(facts, `test -x ${EnginePaths.binary}`, options)).code === 0) {
      this.#logger.debug('engine bundle already installed', { host: this.#session.target, version: bundle.version });
      return false;
    }
    const tmp = `/tmp/berth-engine-${randomBytes(6).toString('hex')}.tar.gz`;
    await this.#session.upload(bundle.path, tmp, { mode: 0o600, signal: options.signal });
    const prefix = EnginePaths.prefix;
    try {
      await this.#rootOk(
        facts,
        [
          'set -e',
          `rm -rf ${prefix}.new ${prefix}.old`,
          `mkdir -p ${prefix}.new`,
          `tar -xzf ${tmp} -C ${prefix}.new --strip-components=1 --no-same-owner`,
          `test -x ${prefix}.new/bin/engine`,
          `echo ${sha} > ${prefix}.new/.bundle-sha256`,
          `if [ -e ${prefix} ]; then mv ${prefix} ${prefix}.old; fi`,
          `mv ${prefix}.new ${prefix}`,
          `rm -rf ${prefix}.old`,
          `mkdir -p "$(dirname ${EnginePaths.link})" && ln -sfn ${EnginePaths.binary} ${EnginePaths.link}`,
        ].join('\n'),
        `unpacking the engine bundle into ${prefix}`,
        options.signal,
      );
    } finally {
      await this.#session.exec(`rm -f ${tmp}`).catch(() => undefined);
    }
    return true;
  }

  /** Writes the CA, server certificate and key to /etc/berth (the key 0600). */
  async installTls(facts: HostFacts, tls: EngineTls, options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    await this.#rootOk(
      facts,
      [
        `mkdir -p ${EnginePaths.configDir} && chmod 755 ${EnginePaths.configDir}`,
        writeFileScript(EnginePaths.caCert, tls.caPem, '644'),
        writeFileScript(EnginePaths.serverCert, tls.serverCertPem, '644'),
        writeFileScript(EnginePaths.serverKey, tls.serverKeyPem, '600'),
      ].join(' && '),
      'writing the TLS certificates',
      options.signal,
    );
  }

  /** Writes the engine's environment file and its service for `facts.init`, enabled at boot. */
  async installService(facts: HostFacts, args: readonly string[], env: readonly string[], options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    const rcLocal = await this.#rcLocal(facts, options.signal);
    await this.#rootOk(
      facts,
      [writeFileScript(EnginePaths.envFile, engineEnvFile(env), '600'), serviceScripts(facts.init, args, rcLocal).install].join(' && '),
      `installing the ${facts.init} service`,
      options.signal,
    );
  }

  /** (Re)starts the engine service. */
  async restartEngine(facts: HostFacts, options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    await this.#rootOk(facts, serviceScripts(facts.init, [], undefined).restart, 'starting the engine', options.signal);
  }

  /** Stops the engine service (containers keep running). */
  async stopEngine(facts: HostFacts, options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    await this.#rootOk(facts, serviceScripts(facts.init, [], undefined).stop, 'stopping the engine', options.signal);
  }

  /** How many times the service restarted the engine since it started: a crash loop shows here. */
  async engineRestarts(facts: HostFacts, options: { readonly signal?: AbortSignal } = {}): Promise<number> {
    const result = await this.root(facts, serviceScripts(facts.init, [], undefined).restarts, options);
    return Number(result.stdout.trim()) || 0;
  }

  /** The engine's recent log, for error messages. */
  async engineLog(facts: HostFacts, options: { readonly signal?: AbortSignal } = {}): Promise<string> {
    const script = facts.init === InitSystem.Systemd ? 'journalctl -u berth-engine -n 20 --no-pager 2>/dev/null' : `tail -n 20 ${EnginePaths.log} 2>/dev/null`;
    return (await this.root(facts, script, options)).stdout.trim();
  }

  /**
   * Undoes provisioning: stops and removes the service, the bundle, /etc/berth and the log, and
   * removes `packages` (those provisioning installed) that nothing else needs; returns the ones
   * kept. The engine's data in /var/lib/berth stays, as a package manager keeps data on remove.
   */
  async uninstall(facts: HostFacts, packages: readonly string[], options: { readonly signal?: AbortSignal } = {}): Promise<string[]> {
    const rcLocal = await this.#rcLocal(facts, options.signal);
    await this.#rootOk(
      facts,
      [
        serviceScripts(facts.init, [], rcLocal).uninstall,
        // Scripts of the other inits, in case the host changed init since it was provisioned.
        `rm -f ${EnginePaths.systemdUnit} ${EnginePaths.openrcScript}`,
        `if [ "$(readlink ${EnginePaths.link} 2>/dev/null)" = ${EnginePaths.binary} ]; then rm -f ${EnginePaths.link}; fi`,
        `rm -rf ${EnginePaths.prefix} ${EnginePaths.prefix}.new ${EnginePaths.prefix}.old ${EnginePaths.configDir} ${EnginePaths.log}`,
      ].join('\n'),
      'removing the engine',
      options.signal,
    );
    return this.removePackages(facts, packages, options);
  }

  async #rcLocal(facts: HostFacts, signal: AbortSignal | undefined): Promise<string | undefined> {
    if (facts.init !== InitSystem.Supervised) return undefined;
    const result = await this.root(facts, `cat ${EnginePaths.rcLocal}`, { signal });
    return result.code === 0 ? result.stdout : undefined;
  }
}
