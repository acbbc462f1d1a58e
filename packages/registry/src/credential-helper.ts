import { spawn } from 'node:child_process';
import { abortError } from '@berth/errors';
import type { Credentials } from './credentials.js';
import { RegistryError, RegistryErrorCode } from './errors.js';

// Helpers answer `get` for an unknown server with this text on stdout and a non-zero exit
// (docker-credential-helpers' ErrCredentialsNotFound); it means "anonymous", not a failure.
const notFoundMessage = 'credentials not found in native keychain';

// docker's convention: a helper entry whose user is "<token>" holds an identity token.
const tokenUsername = '<token>';

interface HelperRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * A `docker-credential-<name>` program, speaking the credential-helper protocol: the action as
 * its argument (`get`, `store`, `erase`, `list`), the input on stdin, JSON on stdout.
 */
export class CredentialHelper {
  readonly name: string;
  readonly program: string;

  constructor(options: { readonly name: string }) {
    if (!/^[\w.-]+$/.test(options.name)) {
      throw new RegistryError(`credential helper name ${JSON.stringify(options.name)} is not a plain program suffix`, {
        code: RegistryErrorCode.InvalidOption,
        kind: 'InvalidArgument',
      });
    }
    this.name = options.name;
    this.program = `docker-credential-${options.name}`;
  }

  async #run(action: string, input: string, signal: AbortSignal | undefined): Promise<HelperRun> {
    return new Promise<HelperRun>((resolve, reject) => {
      const child = spawn(this.program, [action], { stdio: ['pipe', 'pipe', 'pipe'], ...(signal ? { signal } : {}) });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (c: Buffer) => out.push(c));
      child.stderr.on('data', (c: Buffer) => err.push(c));
      child.on('error', (e: NodeJS.ErrnoException) => {
        if (signal?.aborted) return reject(abortError(signal));
        reject(
          new RegistryError(
            e.code === 'ENOENT' ? `credential helper ${this.program} not found in PATH` : `credential helper ${this.program} ${action}: ${e.message}`,
            { code: RegistryErrorCode.CredentialHelper, kind: e.code === 'ENOENT' ? 'NotFound' : 'Unavailable', cause: e },
          ),
        );
      });
      child.on('close', (code) => {
        resolve({ code: code ?? 1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
      });
      // A helper that exits without reading stdin makes the write fail with EPIPE; its exit status says what happened.
      child.stdin.on('error', () => {});
      child.stdin.end(input);
    });
  }

  #failure(action: string, run: HelperRun): RegistryError {
    const text = (run.stdout.trim() || run.stderr.trim() || `exit status ${run.code}`).slice(0, 500);
    return new RegistryError(`credential helper ${this.program} ${action} failed: ${text}`, {
      code: RegistryErrorCode.CredentialHelper,
      kind: 'Unavailable',
    });
  }

  /** The credentials the helper keeps for `serverUrl`, undefined when it has none. */
  async get(serverUrl: string, options: { readonly signal?: AbortSignal } = {}): Promise<Credentials | undefined> {
    const run = await this.#run('get', serverUrl, options.signal);
    if (run.code !== 0) {
      if (run.stdout.includes(notFoundMessage) || run.stderr.includes(notFoundMessage)) return undefined;
      throw this.#failure('get', run);
    }
    let parsed: { Username?: unknown; Secret?: unknown };
    try {
      parsed = JSON.parse(run.stdout) as typeof parsed;
    } catch (cause) {
      throw new RegistryError(`credential helper ${this.program} get: output is not JSON`, {
        code: RegistryErrorCode.CredentialHelper,
        kind: 'Unavailable',
        cause,
      });
    }
    const username = typeof parsed.Username === 'string' ? parsed.Username : '';
    const secret = typeof parsed.Secret === 'string' ? parsed.Secret : '';
    if (username === '' && secret === '') return undefined;
    if (username === tokenUsername) return { identityToken: secret };
    return { username, password: secret };
  }

  /** Saves credentials for `serverUrl`; an identity token is stored under the user `<token>`, as docker does. */
  async store(serverUrl: string, credentials: Credentials, options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    const body = credentials.identityToken
      ? { ServerURL: serverUrl, Username: tokenUsername, Secret: credentials.identityToken }
      : { ServerURL: serverUrl, Username: credentials.username ?? '', Secret: credentials.password ?? '' };
    const run = await this.#run('store', JSON.stringify(body), options.signal);
    if (run.code !== 0) throw this.#failure('store', run);
  }

  /** Removes the credentials for `serverUrl`; false when the helper had none. */
  async erase(serverUrl: string, options: { readonly signal?: AbortSignal } = {}): Promise<boolean> {
    const run = await this.#run('erase', serverUrl, options.signal);
    if (run.code === 0) return true;
    if (run.stdout.includes(notFoundMessage) || run.stderr.includes(notFoundMessage)) return false;
    throw this.#failure('erase', run);
  }
}
