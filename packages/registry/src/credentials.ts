import { normalizeRegistryName } from './hosts.js';

/**
 * What a client authenticates to a registry with: a user and password, or an identity token
 * (an OAuth2 refresh token, docker's `identitytoken`), or a ready bearer token (`registrytoken`).
 */
export interface Credentials {
  readonly username?: string;
  readonly password?: string;
  readonly identityToken?: string;
  readonly registryToken?: string;
}

/** Where the client finds credentials for a registry. */
export interface CredentialStore {
  /**
   * Credentials for `registry` (a reference domain: `docker.io`, `127.0.0.1:5000`), or
   * undefined to go anonymous.
   */
  get(registry: string, options?: { readonly signal?: AbortSignal }): Promise<Credentials | undefined>;
}

/** A credential store that `engine login` / `engine logout` can also write. */
export interface WritableCredentialStore extends CredentialStore {
  /** Saves credentials for `registry`, as `docker login` does. */
  store(registry: string, credentials: Credentials, options?: { readonly signal?: AbortSignal }): Promise<void>;
  /** Removes them; false when there were none. */
  erase(registry: string, options?: { readonly signal?: AbortSignal }): Promise<boolean>;
}

/**
 * Fixed credentials per registry: for the Docker API's `X-Registry-Auth` header, flags such as
 * `--creds`, and tests. Keys may be written as config.json keys (`https://index.docker.io/v1/`).
 */
export class StaticCredentials implements CredentialStore {
  readonly #entries = new Map<string, Credentials>();

  constructor(options: { readonly entries: Readonly<Record<string, Credentials>> }) {
    for (const [key, value] of Object.entries(options.entries)) this.#entries.set(normalizeRegistryName(key), value);
  }

  async get(registry: string): Promise<Credentials | undefined> {
    return this.#entries.get(normalizeRegistryName(registry));
  }
}

/** True when the credentials carry anything to authenticate with. */
export function hasCredentials(c: Credentials | undefined): c is Credentials {
  return !!c && !!(c.username || c.password || c.identityToken || c.registryToken);
}
