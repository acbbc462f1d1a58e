import type { Credentials } from './credentials.js';

/** One challenge of a `WWW-Authenticate` header: `Bearer realm="...",service="..."`. */
export interface Challenge {
  /** The scheme in lower case: `bearer`, `basic`. */
  readonly scheme: string;
  readonly params: Readonly<Record<string, string>>;
}

/**
 * Parses `WWW-Authenticate` values (RFC 7235), which may hold several challenges and quoted
 * parameters with commas inside: `Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"`.
 */
export function parseChallenges(value: string | readonly string[] | undefined): Challenge[] {
  if (value === undefined) return [];
  const values = typeof value === 'string' ? [value] : value;
  const out: { scheme: string; params: Record<string, string> }[] = [];
  for (const text of values) {
    let i = 0;
    const skipSpace = () => {
      while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === ',')) i++;
    };
    const readToken = () => {
      const start = i;
      while (i < text.length && !/[\s,=]/.test(text[i]!)) i++;
      return text.slice(start, i);
    };
    while (i < text.length) {
      skipSpace();
      const token = readToken();
      if (token === '') break;
      // A token followed by '=' is a parameter of the current challenge, otherwise a new scheme.
      let j = i;
      while (j < text.length && (text[j] === ' ' || text[j] === '\t')) j++;
      if (text[j] === '=' && out.length > 0 && text[j + 1] !== '=') {
        i = j + 1;
        while (i < text.length && (text[i] === ' ' || text[i] === '\t')) i++;
        let val = '';
        if (text[i] === '"') {
          i++;
          while (i < text.length && text[i] !== '"') {
            if (text[i] === '\\' && i + 1 < text.length) i++;
            val += text[i];
            i++;
          }
          i++;
        } else {
          val = readToken();
        }
        out.at(-1)!.params[token.toLowerCase()] = val;
      } else {
        out.push({ scheme: token.toLowerCase(), params: {} });
      }
    }
  }
  return out;
}

/** The challenge the client answers: bearer preferred over basic, others ignored. */
export function pickChallenge(challenges: readonly Challenge[]): Challenge | undefined {
  return challenges.find((c) => c.scheme === 'bearer' && c.params.realm) ?? challenges.find((c) => c.scheme === 'basic');
}

/** The access scope of a repository: `repository:library/busybox:pull,push`. */
export function repositoryScope(path: string, actions: readonly ('pull' | 'push')[]): string {
  return `repository:${path}:${actions.join(',')}`;
}

/** A bearer token and when to stop using it (ms since epoch). */
export interface BearerToken {
  readonly token: string;
  readonly expiresAt: number;
  /** An OAuth2 refresh token, when one was asked for (`engine login` keeps it as the identity token). */
  readonly refreshToken?: string;
}

/** The HTTP request that fetches a token. */
export interface TokenRequest {
  readonly method: 'GET' | 'POST';
  readonly url: URL;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string;
}

// The client id docker sends; token servers that log it will see what asked.
const clientId = 'berth';

/**
 * The token request for a bearer challenge, as docker makes it: with an identity token an
 * OAuth2 POST (`grant_type=refresh_token`), otherwise a GET with the scopes as query
 * parameters and the user's basic credentials. `offline` also asks for a refresh token.
 */
export function tokenRequest(
  challenge: Challenge,
  scopes: readonly string[],
  credentials: Credentials | undefined,
  options: { readonly offline?: boolean; readonly forceGet?: boolean } = {},
): TokenRequest {
  const url = new URL(challenge.params.realm!);
  const service = challenge.params.service;
  if (credentials?.identityToken && !options.forceGet) {
    const form = new URLSearchParams();
    form.set('grant_type', 'refresh_token');
    form.set('refresh_token', credentials.identityToken);
    if (service) form.set('service', service);
    form.set('client_id', clientId);
    if (scopes.length) form.set('scope', scopes.join(' '));
    if (options.offline) form.set('access_type', 'offline');
    return { method: 'POST', url, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() };
  }
  if (service) url.searchParams.set('service', service);
  for (const scope of scopes) url.searchParams.append('scope', scope);
  const headers: Record<string, string> = {};
  if (credentials?.username && credentials.password) {
    url.searchParams.set('account', credentials.username);
    headers.authorization = basicAuthorization(credentials);
  }
  if (options.offline) {
    url.searchParams.set('offline_token', 'true');
    url.searchParams.set('client_id', clientId);
  }
  return { method: 'GET', url, headers };
}

// Docker treats shorter lifetimes as 60 seconds; so does Berth, so that a token server that
// says 0 does not make every request fetch a new token.
const minimumLifetimeSeconds = 60;

/** Reads a token server's JSON answer; undefined when it holds no token. */
export function parseTokenResponse(body: string, now: number): BearerToken | undefined {
  let parsed: { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown; refresh_token?: unknown };
  try {
    parsed = JSON.parse(body) as typeof parsed;
  } catch {
    return undefined;
  }
  const token = typeof parsed.access_token === 'string' && parsed.access_token ? parsed.access_token : parsed.token;
  if (typeof token !== 'string' || token === '') return undefined;
  const lifetime = typeof parsed.expires_in === 'number' && parsed.expires_in > minimumLifetimeSeconds ? parsed.expires_in : minimumLifetimeSeconds;
  const issued = typeof parsed.issued_at === 'string' ? Date.parse(parsed.issued_at) : NaN;
  // Trust the server's issue time only when it is near ours: a skewed clock must not expire every token at once.
  const start = Number.isFinite(issued) && Math.abs(issued - now) < 10 * 60_000 ? issued : now;
  return {
    token,
    expiresAt: start + lifetime * 1000,
    ...(typeof parsed.refresh_token === 'string' && parsed.refresh_token ? { refreshToken: parsed.refresh_token } : {}),
  };
}

/** `Basic base64(user:password)`. */
export function basicAuthorization(credentials: Credentials): string {
  return `Basic ${Buffer.from(`${credentials.username ?? ''}:${credentials.password ?? ''}`).toString('base64')}`;
}
