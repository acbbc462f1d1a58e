import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { abortError, describeError, errnoCode } from '@berth/errors';
import type { Logger } from '@berth/log';
import { Agent, type Dispatcher } from 'undici';
import { basicAuthorization, parseChallenges, parseTokenResponse, pickChallenge, tokenRequest, type BearerToken, type Challenge } from './auth.js';
import { hasCredentials, type CredentialStore, type Credentials } from './credentials.js';
import { RegistryError, RegistryErrorCode, responseError } from './errors.js';
import { registryApiHost, type InsecureRegistries } from './hosts.js';

/** TLS material for one registry, as docker keeps it in `/etc/docker/certs.d/<host>/`. */
export interface RegistryTlsOptions {
  /** Extra CA certificates (PEM) to trust for this registry. */
  readonly ca?: string | Buffer | readonly (string | Buffer)[];
  /** Client certificate and key (PEM) for mutual TLS. */
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
}

/** A registry as the transport reaches it, once its scheme and auth challenge are known. */
export interface Endpoint {
  /** The registry as references name it: `docker.io`, `127.0.0.1:5000`. */
  readonly domain: string;
  /** `https://registry-1.docker.io`, `http://127.0.0.1:5000`. */
  readonly base: URL;
  readonly insecure: boolean;
  /** What `/v2/` asked for; undefined when it answered 200 without credentials. */
  challenge: Challenge | undefined;
  readonly dispatcher: Dispatcher;
}

type HttpMethod = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';

/** One request to a registry. */
export interface SendOptions {
  readonly domain: string;
  /** Token scopes the request needs (`repository:a/b:pull`). */
  readonly scopes: readonly string[];
  readonly method: HttpMethod;
  /** A path (`/v2/a/b/manifests/latest`) or an absolute URL (an upload `Location`). */
  readonly url: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** Makes the body; called again for each retry or re-authentication, so a stream body is read afresh. */
  readonly body?: () => Readable | Buffer | string | Promise<Readable | Buffer | string>;
  /** The statuses that count as success; any other becomes a RegistryError. */
  readonly ok: readonly number[];
  /** What is being fetched, for NotFound messages (`manifest for busybox:nope`). */
  readonly subject?: string;
  /** Follow redirects (GET and HEAD only); credentials never go to another origin. */
  readonly followRedirects?: boolean;
  readonly highWaterMark?: number;
  /** Retry transient failures (default true). */
  readonly retry?: boolean;
  /** Told before each wait of a retry. */
  readonly onRetry?: (delayMs: number, reason: unknown) => void;
  readonly signal?: AbortSignal;
}

/** A successful response; the caller must consume or dump the body. */
export interface RegistryResponse {
  readonly status: number;
  readonly headers: Dispatcher.ResponseData['headers'];
  readonly body: Dispatcher.ResponseData['body'];
  /** The URL that answered, after redirects. */
  readonly url: URL;
}

/** Options of the transport; the client validates them. */
export interface TransportOptions {
  readonly credentials: CredentialStore | undefined;
  readonly insecure: InsecureRegistries;
  readonly tls: Readonly<Record<string, RegistryTlsOptions>>;
  readonly userAgent: string;
  readonly logger: Logger;
  readonly retries: number;
  readonly retryDelayMs: number;
  readonly dispatcher: Dispatcher | undefined;
}

const retryableStatuses = new Set([408, 429, 500, 502, 503, 504]);
const retryableCodes = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH',
  'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CLOSED',
]);

/** True for a network failure worth another try (reset, refused, timed out). */
export function isRetryableNetworkError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 4; depth++) {
    const code = errnoCode(e);
    if (code && retryableCodes.has(code)) return true;
    e = e instanceof Error ? e.cause : undefined;
  }
  return false;
}

/** A response header by lower-case name (the first value when repeated). */
export function responseHeader(headers: Dispatcher.ResponseData['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function retryAfterMs(headers: Dispatcher.ResponseData['headers']): number | undefined {
  const value = responseHeader(headers, 'retry-after');
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
}

const redirectStatuses = new Set([301, 302, 303, 307, 308]);
const credentialsTtlMs = 30_000;

/**
 * HTTP to registries: one undici Agent per registry with keep-alive, the scheme chosen as
 * docker does (HTTPS, then plain HTTP for insecure registries), the auth challenge of `/v2/`
 * answered with basic credentials or bearer tokens cached per (realm, service, scopes), retries
 * with backoff, and redirects followed without sending credentials to another origin.
 */
export class RegistryTransport {
  readonly #options: TransportOptions;
  readonly #endpoints = new Map<string, Promise<Endpoint>>();
  readonly #tokens = new Map<string, Promise<BearerToken>>();
  readonly #credentials = new Map<string, { readonly at: number; readonly value: Promise<Credentials | undefined> }>();
  readonly #agents: Agent[] = [];
  #external: Dispatcher | undefined;

  constructor(options: TransportOptions) {
    this.#options = options;
  }

  get logger(): Logger {
    return this.#options.logger;
  }

  /** Closes every connection. */
  async close(): Promise<void> {
    const agents = this.#agents.splice(0);
    await Promise.all(agents.map((a) => a.close()));
    this.#endpoints.clear();
  }

  #newAgent(connect: Record<string, unknown>): Agent {
    const agent = new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 300_000, connect });
    this.#agents.push(agent);
    return agent;
  }

  // Redirect targets (a CDN for Docker Hub blobs) are other hosts: verified TLS, no registry settings.
  #externalDispatcher(): Dispatcher {
    return (this.#external ??= this.#options.dispatcher ?? this.#newAgent({}));
  }

  /** Credentials for a registry, asked of the store at most every 30 s (helpers are programs). */
  credentials(domain: string, signal?: AbortSignal): Promise<Credentials | undefined> {
    const store = this.#options.credentials;
    if (!store) return Promise.resolve(undefined);
    const cached = this.#credentials.get(domain);
    if (cached && Date.now() - cached.at < credentialsTtlMs) return cached.value;
    const value = store.get(domain, signal ? { signal } : {});
    this.#credentials.set(domain, { at: Date.now(), value });
    value.catch(() => this.#credentials.delete(domain));
    return value;
  }

  /** Forgets cached credentials and tokens for `domain` (after a login or logout). */
  forget(domain: string): void {
    this.#credentials.delete(domain);
    this.#forgetTokens(domain);
  }

  #forgetTokens(domain: string): void {
    for (const key of [...this.#tokens.keys()]) if (key.startsWith(`${domain}|`)) this.#tokens.delete(key);
  }

  /** The endpoint of a registry, pinging `/v2/` on first use to choose the scheme and learn the challenge. */
  async endpoint(domain: string, signal?: AbortSignal): Promise<Endpoint> {
    let pending = this.#endpoints.get(domain);
    if (!pending) {
      pending = this.#negotiate(domain);
      this.#endpoints.set(domain, pending);
      pending.catch(() => this.#endpoints.delete(domain));
    }
    if (!signal) return pending;
    if (signal.aborted) throw abortError(signal);
    // The ping is shared between callers; one caller giving up must not cancel it for the others.
    return new Promise<Endpoint>((resolve, reject) => {
      const onAbort = () => reject(abortError(signal));
      signal.addEventListener('abort', onAbort, { once: true });
      pending.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  async #negotiate(domain: string): Promise<Endpoint> {
    const insecure = await this.#options.insecure.isInsecure(domain);
    const apiHost = registryApiHost(domain);
    const tls = this.#options.tls[domain];
    const dispatcher =
      this.#options.dispatcher ??
      this.#newAgent({
        rejectUnauthorized: !insecure,
        ...(tls?.ca ? { ca: tls.ca } : {}),
        ...(tls?.cert ? { cert: tls.cert } : {}),
        ...(tls?.key ? { key: tls.key } : {}),
      });
    const failures: string[] = [];
    for (const scheme of insecure ? ['https', 'http'] : ['https']) {
      const base = new URL(`${scheme}://${apiHost}`);
      let res: Dispatcher.ResponseData;
      try {
        res = await dispatcher.request({
          origin: base.origin,
          path: '/v2/',
          method: 'GET',
          headers: { 'user-agent': this.#options.userAgent },
          headersTimeout: 30_000,
        });
      } catch (err) {
        failures.push(`${base.origin}/v2/: ${describeError(err)}`);
        continue;
      }
      await res.body.dump();
      const challenge = res.statusCode === 401 ? pickChallenge(parseChallenges(res.headers['www-authenticate'])) : undefined;
      this.#options.logger.debug('registry endpoint', { registry: domain, base: base.origin, status: res.statusCode, auth: challenge?.scheme ?? 'none' });
      return { domain, base, insecure, challenge, dispatcher };
    }
    throw new RegistryError(`cannot reach registry ${domain}: ${failures.join('; ')}`, {
      code: RegistryErrorCode.Unavailable,
      kind: 'Unavailable',
    });
  }

  /** Drops the cached endpoint, so that the next request pings again (after connection failures). */
  #resetEndpoint(domain: string): void {
    this.#endpoints.delete(domain);
  }

  async #token(endpoint: Endpoint, challenge: Challenge, scopes: readonly string[], credentials: Credentials | undefined, signal?: AbortSignal): Promise<BearerToken> {
    const who = credentials?.username ?? (credentials?.identityToken ? createHash('sha256').update(credentials.identityToken).digest('hex').slice(0, 16) : '');
    const key = `${endpoint.domain}|${challenge.params.realm}|${challenge.params.service ?? ''}|${[...scopes].sort().join(' ')}|${who}`;
    const cached = this.#tokens.get(key);
    if (cached) {
      const token = await cached.catch(() => undefined);
      if (token && token.expiresAt - 10_000 > Date.now()) return token;
      if (this.#tokens.get(key) === cached) this.#tokens.delete(key);
    }
    let pending = this.#tokens.get(key);
    if (!pending) {
      pending = this.fetchToken(endpoint, challenge, scopes, credentials, { ...(signal ? { signal } : {}) });
      this.#tokens.set(key, pending);
      pending.catch(() => this.#tokens.delete(key));
    }
    return pending;
  }

  /** Fetches a bearer token from the challenge's realm (uncached); `offline` asks for a refresh token too. */
  async fetchToken(
    endpoint: Endpoint,
    challenge: Challenge,
    scopes: readonly string[],
    credentials: Credentials | undefined,
    options: { readonly offline?: boolean; readonly signal?: AbortSignal },
  ): Promise<BearerToken> {
    const attempt = async (forceGet: boolean) => {
      const req = tokenRequest(challenge, scopes, credentials, { ...(options.offline ? { offline: true } : {}), forceGet });
      // A realm on the registry's own host gets the registry's TLS settings; any other host verified TLS.
      const dispatcher = req.url.host === endpoint.base.host ? endpoint.dispatcher : this.#externalDispatcher();
      try {
        const res = await dispatcher.request({
          origin: req.url.origin,
          path: req.url.pathname + req.url.search,
          method: req.method,
          headers: { 'user-agent': this.#options.userAgent, ...req.headers },
          ...(req.body !== undefined ? { body: req.body } : {}),
          ...(options.signal ? { signal: options.signal } : {}),
        });
        return { req, status: res.statusCode, text: await res.body.text() };
      } catch (err) {
        if (options.signal?.aborted) throw abortError(options.signal);
        throw new RegistryError(`cannot get a token for registry ${endpoint.domain} from ${req.url.origin}${req.url.pathname}`, {
          code: RegistryErrorCode.Unavailable,
          kind: 'Unavailable',
          cause: err,
        });
      }
    };
    let result = await attempt(false);
    // Token servers without the OAuth2 POST endpoint answer 404; docker then falls back to GET.
    if (result.req.method === 'POST' && (result.status === 404 || result.status === 405)) result = await attempt(true);
    if (result.status !== 200) {
      throw responseError(result.status, result.text, {
        request: `${result.req.method} ${result.req.url.origin}${result.req.url.pathname}`,
        registry: endpoint.domain,
      });
    }
    const token = parseTokenResponse(result.text, Date.now());
    if (!token) {
      throw new RegistryError(`token server ${result.req.url.origin} for registry ${endpoint.domain} answered without a token`, {
        code: RegistryErrorCode.Protocol,
        kind: 'Internal',
      });
    }
    return token;
  }

  /** The Authorization header for a request to `endpoint` needing `scopes`, or undefined to go anonymous. */
  async authorization(endpoint: Endpoint, scopes: readonly string[], signal?: AbortSignal): Promise<string | undefined> {
    const challenge = endpoint.challenge;
    if (!challenge) return undefined;
    const credentials = await this.credentials(endpoint.domain, signal);
    if (challenge.scheme === 'basic') {
      return credentials?.username !== undefined && credentials.password !== undefined ? basicAuthorization(credentials) : undefined;
    }
    if (credentials?.registryToken) return `Bearer ${credentials.registryToken}`;
    const token = await this.#token(endpoint, challenge, scopes, hasCredentials(credentials) ? credentials : undefined, signal);
    return `Bearer ${token.token}`;
  }

  async #sendOnce(endpoint: Endpoint, options: SendOptions): Promise<{ res: Dispatcher.ResponseData; url: URL }> {
    let url = new URL(options.url, endpoint.base);
    for (let hop = 0; ; hop++) {
      const sameOrigin = url.origin === endpoint.base.origin;
      const headers: Record<string, string> = { 'user-agent': this.#options.userAgent, ...options.headers };
      if (sameOrigin) {
        const authorization = await this.authorization(endpoint, options.scopes, options.signal);
        if (authorization) headers.authorization = authorization;
      }
      const res = await (sameOrigin ? endpoint.dispatcher : this.#externalDispatcher()).request({
        origin: url.origin,
        path: url.pathname + url.search,
        method: options.method,
        headers,
        ...(hop === 0 && options.body ? { body: await options.body() } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
        ...(options.highWaterMark ? { highWaterMark: options.highWaterMark } : {}),
      });
      const location = responseHeader(res.headers, 'location');
      if (options.followRedirects && redirectStatuses.has(res.statusCode) && location && hop < 10) {
        await res.body.dump();
        url = new URL(location, url);
        continue;
      }
      return { res, url };
    }
  }

  /** Sends a request with auth, retries and redirects; returns a response whose status is in `ok`. */
  async send(options: SendOptions): Promise<RegistryResponse> {
    const { signal } = options;
    const endpoint = await this.endpoint(options.domain, signal);
    const retries = options.retry === false ? 0 : this.#options.retries;
    let reauthorized = false;
    const describe = () => `${options.method} ${new URL(options.url, endpoint.base).href}`;
    for (let attempt = 0; ; attempt++) {
      if (signal?.aborted) throw abortError(signal);
      let sent: { res: Dispatcher.ResponseData; url: URL };
      try {
        sent = await this.#sendOnce(endpoint, options);
      } catch (err) {
        if (signal?.aborted) throw abortError(signal);
        if (err instanceof RegistryError) throw err;
        if (isRetryableNetworkError(err) && attempt < retries) {
          await this.#wait(attempt, undefined, err, options);
          continue;
        }
        if (isRetryableNetworkError(err)) this.#resetEndpoint(options.domain);
        throw new RegistryError(`${describe()}: ${describeError(err)}`, { code: RegistryErrorCode.Unavailable, kind: 'Unavailable', cause: err });
      }
      const { res, url } = sent;
      const status = res.statusCode;
      if (status === 401 && !reauthorized) {
        // The token may have expired or lack a scope, or this route needs auth where /v2/ did not: ask again once.
        const challenge = pickChallenge(parseChallenges(res.headers['www-authenticate']));
        await res.body.dump();
        if (challenge) {
          endpoint.challenge = challenge;
          this.#forgetTokens(endpoint.domain);
          reauthorized = true;
          attempt--;
          continue;
        }
      }
      if (options.ok.includes(status)) return { status, headers: res.headers, body: res.body, url };
      if (retryableStatuses.has(status) && attempt < retries) {
        await res.body.dump();
        await this.#wait(attempt, retryAfterMs(res.headers), new Error(`HTTP ${status}`), options);
        continue;
      }
      const text = options.method === 'HEAD' ? '' : await readLimited(res.body, 64 << 10);
      if (options.method === 'HEAD') await res.body.dump();
      let error = responseError(status, text, {
        request: `${options.method} ${url.href}`,
        registry: endpoint.domain,
        ...(options.subject ? { subject: options.subject } : {}),
      });
      if (status === 401) {
        const credentials = await this.credentials(endpoint.domain, signal).catch(() => undefined);
        if (!hasCredentials(credentials)) {
          error = new RegistryError(`${error.message}: no credentials for ${endpoint.domain}; run 'engine login ${endpoint.domain}'`, {
            code: error.code,
            kind: error.kind,
            status,
            registryCodes: error.registryCodes,
          });
        }
      }
      throw error;
    }
  }

  async #wait(attempt: number, hinted: number | undefined, reason: unknown, options: SendOptions): Promise<void> {
    const backoff = Math.min(this.#options.retryDelayMs * 2 ** attempt, 10_000) * (0.75 + Math.random() / 2);
    const delay = Math.min(hinted ?? backoff, 60_000);
    this.#options.logger.debug('retrying registry request', { method: options.method, url: options.url, delayMs: Math.round(delay), reason: describeError(reason) });
    options.onRetry?.(delay, reason);
    try {
      await sleep(delay, undefined, options.signal ? { signal: options.signal } : {});
    } catch {
      throw abortError(options.signal!);
    }
  }
}

/** The body as text, reading at most `limit` bytes and discarding the rest. */
export async function readLimited(body: Dispatcher.ResponseData['body'], limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buf = chunk as Buffer;
    if (size < limit) chunks.push(buf.subarray(0, limit - size));
    size += buf.length;
  }
  return Buffer.concat(chunks).toString('utf8');
}
