/**
 * Shapes shared by every part of the Engine API. Objects that the Docker Engine API defines
 * (swagger of moby v28.2.2) keep docker's casing; options of a call are camelCase.
 */

/** Options every Engine call takes. */
export interface CallOptions {
  readonly signal?: AbortSignal;
}

/**
 * Docker's filters, normalised: each key to its values (`{"label": ["a=b"], "status": ["exited"]}`).
 * The API accepts both wire forms (map of arrays, map of booleans); the Engine sees only this one.
 */
export type Filters = Readonly<Record<string, readonly string[]>>;

/** Labels as docker keeps them. */
export type Labels = Readonly<Record<string, string>>;

/**
 * Registry credentials (`AuthConfig`), as the `X-Registry-Auth` header and `POST /auth` carry them.
 * `serveraddress` names the registry (`https://index.docker.io/v1/` for Docker Hub, or `host:port`).
 */
export interface AuthConfig {
  readonly username?: string;
  readonly password?: string;
  /** base64 of `username:password`, as ~/.docker/config.json keeps it. */
  readonly auth?: string;
  readonly email?: string;
  readonly serveraddress?: string;
  readonly identitytoken?: string;
  readonly registrytoken?: string;
}

/** `{Id}`, the answer of create calls (`IdResponse`). */
export interface IdResponse {
  readonly Id: string;
}

/** The `progressDetail` of a JSON message. */
export interface ProgressDetail {
  readonly current?: number;
  readonly total?: number;
}

/**
 * One line of docker's JSON message stream (pull, push, load, import, build). The Engine's
 * progress iterables never yield `error`/`errorDetail`: a failure is thrown as a BerthError. The
 * API server writes a thrown error as `errorDetail`, and the remote client throws it again.
 */
export interface JsonMessage {
  readonly status?: string;
  readonly id?: string;
  readonly progress?: string;
  readonly progressDetail?: ProgressDetail;
  readonly stream?: string;
  /** Side results: `{"ID": "sha256:..."}` at the end of a build, `{"Tag", "Digest", "Size"}` after a push. */
  readonly aux?: Readonly<Record<string, unknown>>;
  readonly errorDetail?: { readonly code?: number; readonly message: string };
  readonly error?: string;
  /** Unix seconds. */
  readonly time?: number;
}

/** Height and width of a terminal, in characters. */
export interface TerminalSize {
  readonly height: number;
  readonly width: number;
}
