import { mkdir, readFile, realpath } from 'node:fs/promises';
import { dirname } from 'node:path';
import { errnoCode } from '@berth/errors';
import { withFileLock, writeFileAtomic } from '@berth/fsutil';
import { noopLogger, type Logger } from '@berth/log';
import { CredentialHelper } from './credential-helper.js';
import type { Credentials, WritableCredentialStore } from './credentials.js';
import { RegistryError, RegistryErrorCode } from './errors.js';
import { credentialKey, normalizeRegistryName } from './hosts.js';

/** One entry of `auths` in config.json. */
interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  registrytoken?: string;
  email?: string;
  [other: string]: unknown;
}

/** The parts of docker's config.json this class reads; every other field is kept as it is. */
interface DockerConfigFile {
  auths?: Record<string, AuthEntry>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
  [other: string]: unknown;
}

/** Options of `DockerConfigCredentials`. */
export interface DockerConfigCredentialsOptions {
  /** The config file: the app resolves `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`. */
  readonly configFile: string;
  readonly logger?: Logger;
}

/** Where credentials for one registry live: a helper program, or the file's `auths`. */
type Source = { readonly kind: 'helper'; readonly helper: CredentialHelper } | { readonly kind: 'file' };

function decodeAuth(entry: AuthEntry, configFile: string, key: string): Credentials | undefined {
  let username = entry.username;
  let password = entry.password;
  if (typeof entry.auth === 'string' && entry.auth !== '') {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) {
      throw new RegistryError(`${configFile}: auths[${JSON.stringify(key)}].auth is not base64 of "user:password"`, {
        code: RegistryErrorCode.Config,
        kind: 'InvalidArgument',
      });
    }
    username = decoded.slice(0, colon);
    password = decoded.slice(colon + 1);
  }
  const out: { -readonly [K in keyof Credentials]: Credentials[K] } = {};
  if (username) out.username = username;
  if (password) out.password = password;
  if (entry.identitytoken) out.identityToken = entry.identitytoken;
  if (entry.registrytoken) out.registryToken = entry.registrytoken;
  return Object.keys(out).length ? out : undefined;
}

// docker matches config keys loosely: `https://host/`, `http://host`, and `host` name the same registry.
function findKey<T>(map: Record<string, T> | undefined, registry: string): string | undefined {
  if (!map) return undefined;
  const exact = credentialKey(registry);
  if (exact in map) return exact;
  const name = normalizeRegistryName(registry);
  return Object.keys(map).find((k) => normalizeRegistryName(k) === name);
}

/**
 * Credentials from docker's config.json, as the docker CLI reads and writes them: `auths`
 * (base64 `user:password`, identity tokens), `credsStore` for every registry, `credHelpers`
 * per registry, with the helpers run as `docker-credential-<name>`. Writes keep every field
 * the class does not know, indent with tabs like docker, and are atomic with mode 0600.
 */
export class DockerConfigCredentials implements WritableCredentialStore {
  readonly configFile: string;
  readonly #logger: Logger;

  constructor(options: DockerConfigCredentialsOptions) {
    if (typeof options?.configFile !== 'string' || options.configFile === '') {
      throw new RegistryError('DockerConfigCredentials: configFile is required', { code: RegistryErrorCode.InvalidOption, kind: 'InvalidArgument' });
    }
    this.configFile = options.configFile;
    this.#logger = (options.logger ?? noopLogger).child({ component: 'docker-config' });
  }

  async #read(): Promise<DockerConfigFile> {
    let text: string;
    try {
      text = await readFile(this.configFile, 'utf8');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return {};
      throw new RegistryError(`cannot read ${this.configFile}`, { code: RegistryErrorCode.Config, kind: 'Unavailable', cause: err });
    }
    if (text.trim() === '') return {};
    try {
      const parsed = JSON.parse(text) as unknown;
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
      return parsed as DockerConfigFile;
    } catch (cause) {
      throw new RegistryError(`${this.configFile} is not valid JSON`, { code: RegistryErrorCode.Config, kind: 'InvalidArgument', cause });
    }
  }

  #source(config: DockerConfigFile, registry: string): Source {
    const helperKey = findKey(config.credHelpers, registry);
    const name = helperKey !== undefined ? config.credHelpers![helperKey] : config.credsStore;
    return name ? { kind: 'helper', helper: new CredentialHelper({ name }) } : { kind: 'file' };
  }

  // Read-modify-write under a lock beside the file, so that two logins at once do not lose one.
  async #update(change: (config: DockerConfigFile) => boolean): Promise<void> {
    const target = await realpath(this.configFile).catch(() => this.configFile);
    await mkdir(dirname(target), { recursive: true, mode: 0o700 });
    await withFileLock(`${target}.lock`, async () => {
      const config = await this.#read();
      if (!change(config)) return;
      try {
        await writeFileAtomic(target, JSON.stringify(config, null, '\t') + '\n', { mode: 0o600 });
      } catch (cause) {
        throw new RegistryError(`cannot write ${target}`, { code: RegistryErrorCode.Config, kind: 'Unavailable', cause });
      }
    });
  }

  async get(registry: string, options: { readonly signal?: AbortSignal } = {}): Promise<Credentials | undefined> {
    const config = await this.#read();
    const source = this.#source(config, registry);
    if (source.kind === 'helper') {
      this.#logger.debug('credentials from helper', { registry, helper: source.helper.program });
      return source.helper.get(credentialKey(registry), options);
    }
    const key = findKey(config.auths, registry);
    return key === undefined ? undefined : decodeAuth(config.auths![key]!, this.configFile, key);
  }

  /** Saves credentials as `docker login` does: in the helper (leaving an empty `auths` entry) or base64 in `auths`. */
  async store(registry: string, credentials: Credentials, options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    const key = credentialKey(registry);
    const source = this.#source(await this.#read(), registry);
    if (source.kind === 'helper') await source.helper.store(key, credentials, options);
    await this.#update((config) => {
      const auths = (config.auths ??= {});
      const old = findKey(auths, registry);
      if (old !== undefined && old !== key) delete auths[old];
      const entry: AuthEntry = {};
      if (source.kind === 'file') {
        if (credentials.identityToken) {
          entry.identitytoken = credentials.identityToken;
          if (credentials.username) entry.auth = Buffer.from(`${credentials.username}:`).toString('base64');
        } else {
          entry.auth = Buffer.from(`${credentials.username ?? ''}:${credentials.password ?? ''}`).toString('base64');
        }
      }
      auths[key] = entry;
      return true;
    });
  }

  /** Removes the credentials as `docker logout` does; false when there were none. */
  async erase(registry: string, options: { readonly signal?: AbortSignal } = {}): Promise<boolean> {
    const source = this.#source(await this.#read(), registry);
    let removed = false;
    if (source.kind === 'helper') removed = await source.helper.erase(credentialKey(registry), options);
    await this.#update((config) => {
      let changed = false;
      for (let key = findKey(config.auths, registry); key !== undefined; key = findKey(config.auths, registry)) {
        delete config.auths![key];
        changed = true;
      }
      removed ||= changed;
      return changed;
    });
    return removed;
  }
}
