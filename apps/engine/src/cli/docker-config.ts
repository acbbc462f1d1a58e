import { execFile } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { AuthConfig } from '@berth/engine';
import { writeJsonAtomic } from '@berth/fsutil';
import { dockerHubDomain, parseReference } from '@berth/oci';

const run = promisify(execFile);

/** The key docker's config.json uses for Docker Hub. */
export const dockerHubAuthKey = 'https://index.docker.io/v1/';

/** The parts of ~/.docker/config.json that credentials live in. */
interface DockerConfigFile {
  auths?: Record<string, { auth?: string; identitytoken?: string; username?: string; password?: string }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
  [key: string]: unknown;
}

/** The config.json key of the registry an image reference points to. */
export function registryKeyOf(reference: string): string {
  const domain = parseReference(reference).domain;
  return domain === dockerHubDomain ? dockerHubAuthKey : domain;
}

/** The config.json key for a server given to login/logout (a host, a URL, or nothing for Docker Hub). */
export function registryKeyOfServer(server: string | undefined): string {
  if (!server) return dockerHubAuthKey;
  const host = server.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
  return host === dockerHubDomain || host === 'index.docker.io' || host === 'registry-1.docker.io' ? dockerHubAuthKey : host;
}

/**
 * Docker's client credentials (`--config`, DOCKER_CONFIG, ~/.docker): what `login` stores and
 * pull/push/build send, including credential helpers (`docker-credential-<name>`).
 */
export class DockerConfig {
  readonly #path: string;

  constructor(dir: string) {
    this.#path = join(dir, 'config.json');
  }

  get path(): string {
    return this.#path;
  }

  async #read(): Promise<DockerConfigFile> {
    try {
      return JSON.parse(await readFile(this.#path, 'utf8')) as DockerConfigFile;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw err;
    }
  }

  /** The credentials stored for a registry key, or undefined. */
  async credentials(key: string): Promise<AuthConfig | undefined> {
    const config = await this.#read();
    const helper = config.credHelpers?.[key] ?? config.credsStore;
    if (helper) {
      try {
        const child = run(`docker-credential-${helper}`, ['get']);
        child.child.stdin?.end(key);
        const { stdout } = await child;
        const found = JSON.parse(stdout) as { Username: string; Secret: string };
        return found.Username === '<token>' ? { identitytoken: found.Secret, serveraddress: key } : { username: found.Username, password: found.Secret, serveraddress: key };
      } catch {
        return undefined;
      }
    }
    const entry = config.auths?.[key];
    if (!entry) return undefined;
    if (entry.identitytoken) return { identitytoken: entry.identitytoken, serveraddress: key };
    if (entry.auth) {
      const text = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = text.indexOf(':');
      return { username: text.slice(0, colon), password: text.slice(colon + 1), serveraddress: key };
    }
    if (entry.username !== undefined) return { username: entry.username, password: entry.password ?? '', serveraddress: key };
    return undefined;
  }

  /** Every stored credential, by registry key (what `build` sends as X-Registry-Config). */
  async allCredentials(): Promise<Record<string, AuthConfig>> {
    const config = await this.#read();
    const out: Record<string, AuthConfig> = {};
    for (const key of Object.keys(config.auths ?? {})) {
      const creds = await this.credentials(key);
      if (creds) out[key] = creds;
    }
    return out;
  }

  /** Stores credentials for a registry, as `docker login` does (base64 `user:password`). */
  async store(key: string, auth: { readonly username: string; readonly password: string; readonly identityToken?: string }): Promise<void> {
    const config = await this.#read();
    const auths = { ...(config.auths ?? {}) };
    auths[key] = auth.identityToken
      ? { auth: Buffer.from(`${auth.username}:`).toString('base64'), identitytoken: auth.identityToken }
      : { auth: Buffer.from(`${auth.username}:${auth.password}`).toString('base64') };
    await mkdir(join(this.#path, '..'), { recursive: true, mode: 0o700 });
    await writeJsonAtomic(this.#path, { ...config, auths }, { mode: 0o600 });
  }

  /** Removes stored credentials; false when there were none. */
  async remove(key: string): Promise<boolean> {
    const config = await this.#read();
    if (!config.auths?.[key]) return false;
    const auths = { ...config.auths };
    delete auths[key];
    await writeJsonAtomic(this.#path, { ...config, auths }, { mode: 0o600 });
    return true;
  }
}
