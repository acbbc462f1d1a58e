import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, sign, createPrivateKey, type KeyObject } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** How the rig's registry authenticates clients. */
export type RegistryAuth = 'none' | 'basic' | 'token';

/** One scope a client asked the token server for, and what it was granted. */
export interface TokenRequest {
  /** The user the request authenticated as (basic auth or refresh token), undefined when anonymous. */
  readonly user: string | undefined;
  readonly service: string;
  readonly method: 'GET' | 'POST';
  /** The scopes as sent, `repository:a/b:pull,push`. */
  readonly scopes: readonly string[];
  /** The `access` claim the token carries. */
  readonly granted: readonly { readonly type: string; readonly name: string; readonly actions: readonly string[] }[];
}

/** Options of `startRegistry`. */
export interface RegistryRigOptions {
  /** Default 'none'. */
  readonly auth?: RegistryAuth;
  /** Users for 'basic' and 'token' (default: one user `berth` with a random password). */
  readonly users?: Readonly<Record<string, string>>;
  /**
   * Which actions the token server grants `user` (undefined when anonymous) on a repository. Default: a known user gets
   * what it asked for, anonymous gets nothing.
   */
  readonly grant?: (user: string | undefined, repository: string, requested: readonly string[]) => readonly string[];
  /** Serve HTTPS with a self-signed certificate for 127.0.0.1 (the certificate is in `caFile`). Default false. */
  readonly tls?: boolean;
}

/** A running registry: Debian's docker-registry on 127.0.0.1 with its own port and storage. */
export interface RegistryRig {
  /** `127.0.0.1:PORT`, as an image reference names it. */
  readonly host: string;
  /** `http://127.0.0.1:PORT` (https with `tls`). */
  readonly url: string;
  /** The filesystem driver's root: `docker/registry/v2/blobs/sha256/<2>/<hex>/data` are the blobs. */
  readonly storageDir: string;
  readonly auth: RegistryAuth;
  readonly users: Readonly<Record<string, string>>;
  /** The registry's log (stdout and stderr). */
  readonly logFile: string;
  /** The PEM certificate the registry serves with `tls`. */
  readonly caFile?: string;
  /** What the token server was asked, in order (empty unless auth is 'token'). */
  readonly tokenRequests: readonly TokenRequest[];
  /** `user:password` of the first user, for skopeo's `--creds`. */
  readonly creds: string | undefined;
  /** The path of a blob's data file in the registry's storage. */
  blobPath(digest: string): string;
  /** Kills the registry and the token server and removes every file of the rig. */
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export async function freePort(): Promise<number> {
  const server = createNetServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  if (typeof address !== 'object' || address === null) throw new Error('no port from listen(0)');
  return address.port;
}

function yamlString(value: string): string {
  return JSON.stringify(value);
}

interface TokenServer {
  readonly realm: string;
  readonly certFile: string;
  readonly requests: TokenRequest[];
  close(): Promise<void>;
}

const service = 'berth-test-registry';
const issuer = 'berth-test-token-issuer';

function base64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url');
}

function parseBasic(header: string | undefined): { user: string; password: string } | undefined {
  if (!header?.startsWith('Basic ')) return undefined;
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

// docker-registry checks the token's x5c chain against `rootcertbundle`; a self-signed
// certificate that is itself the bundle is the shortest valid chain.
async function startTokenServer(
  dir: string,
  users: Readonly<Record<string, string>>,
  grant: NonNullable<RegistryRigOptions['grant']>,
): Promise<TokenServer> {
  const keyFile = join(dir, 'token.key');
  const certFile = join(dir, 'token.crt');
  await run('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=berth-test-token-issuer',
  ]);
  const key: KeyObject = createPrivateKey(await readFile(keyFile));
  const certPem = await readFile(certFile, 'utf8');
  const certDer = certPem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s/g, '');
  const refreshTokens = new Map<string, string>();
  const requests: TokenRequest[] = [];

  const issue = (user: string | undefined, scopes: readonly string[]) => {
    const granted = scopes.flatMap((scope) => {
      // repository:name:actions; the name may itself hold a colon (host:port) only in other
      // registries' conventions, so split from both ends.
      const first = scope.indexOf(':');
      const last = scope.lastIndexOf(':');
      if (first < 0 || last === first) return [];
      const type = scope.slice(0, first);
      const name = scope.slice(first + 1, last);
      const requested = scope.slice(last + 1).split(',').filter(Boolean);
      const actions = type === 'repository' ? grant(user, name, requested).filter((a) => requested.includes(a) || requested.includes('*')) : [];
      return [{ type, name, actions }];
    });
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'ES256', x5c: [certDer] };
    const claims = {
      iss: issuer, sub: user ?? '', aud: service, exp: now + 300, nbf: now - 10, iat: now,
      jti: randomBytes(12).toString('hex'), access: granted,
    };
    const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
    const signature = sign('sha256', Buffer.from(signingInput), { key, dsaEncoding: 'ieee-p1363' });
    return { token: `${signingInput}.${base64url(signature)}`, granted };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://token');
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (url.pathname !== '/token') return reply(404, { error: 'not found' });
    let user: string | undefined;
    let params = url.searchParams;
    if (req.method === 'POST') {
      // The OAuth2 form docker uses with an identity token (grant_type=refresh_token) or a password.
      params = new URLSearchParams(await readBody(req));
      const grantType = params.get('grant_type');
      if (grantType === 'refresh_token') {
        user = refreshTokens.get(params.get('refresh_token') ?? '');
        if (!user) return reply(401, { error: 'invalid_grant' });
      } else if (grantType === 'password') {
        const name = params.get('username') ?? '';
        if (users[name] === undefined || users[name] !== params.get('password')) return reply(401, { error: 'invalid_grant' });
        user = name;
      } else {
        return reply(400, { error: 'unsupported_grant_type' });
      }
    } else {
      const basic = parseBasic(req.headers.authorization);
      if (basic) {
        if (users[basic.user] === undefined || users[basic.user] !== basic.password) {
          return reply(401, { errors: [{ code: 'UNAUTHORIZED', message: 'invalid username or password' }] });
        }
        user = basic.user;
      }
    }
    if (params.get('service') !== service) return reply(400, { errors: [{ code: 'DENIED', message: `unknown service ${params.get('service')}` }] });
    const scopes = params.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
    const { token, granted } = issue(user, scopes);
    requests.push({ user, service, method: req.method === 'POST' ? 'POST' : 'GET', scopes, granted });
    const body: Record<string, unknown> = { token, access_token: token, expires_in: 300, issued_at: new Date().toISOString() };
    const wantsRefresh = params.get('offline_token') === 'true' || params.get('access_type') === 'offline';
    if (user && wantsRefresh) {
      const refresh = randomBytes(16).toString('hex');
      refreshTokens.set(refresh, user);
      body.refresh_token = refresh;
    }
    reply(200, body);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      res.writeHead(500);
      res.end(String(err));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('token server has no address');
  return {
    realm: `http://127.0.0.1:${address.port}/token`,
    certFile,
    requests,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

async function waitUntilServing(url: string, child: ChildProcess, logFile: string, ca: string | undefined): Promise<void> {
  const request = url.startsWith('https') ? httpsRequest : httpRequest;
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null || child.signalCode !== null) break;
    const answered = await new Promise<boolean>((resolve) => {
      const req = request(`${url}/v2/`, { method: 'GET', ...(ca ? { ca } : {}) }, (res) => {
        res.resume();
        resolve(res.statusCode === 200 || res.statusCode === 401);
      });
      req.on('error', () => resolve(false));
      req.end();
    });
    if (answered) return;
    await sleep(25);
  }
  const log = await readFile(logFile, 'utf8').catch(() => '');
  throw new Error(`docker-registry did not start at ${url}:\n${log.slice(-2000)}`);
}

function killOnExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // A test worker that dies without its afterEach must not leave registries behind.
  process.once('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

/**
 * Starts Debian's `docker-registry` on 127.0.0.1 with a free port and storage in a fresh
 * temp dir, optionally behind htpasswd basic auth or a token server. Waits until `/v2/`
 * answers. Call `stop()` in a finally/afterEach.
 */
export async function startRegistry(options: RegistryRigOptions = {}): Promise<RegistryRig> {
  const auth = options.auth ?? 'none';
  const users = options.users ?? { berth: randomBytes(9).toString('base64url') };
  const grant = options.grant ?? ((user, _repository, requested) => (user === undefined ? [] : requested));
  const dir = await mkdtemp(join(tmpdir(), 'berth-registry-'));
  const storageDir = join(dir, 'storage');
  const logFile = join(dir, 'registry.log');
  let token: TokenServer | undefined;
  let child: ChildProcess | undefined;
  try {
    let authYaml = '';
    if (auth === 'basic') {
      const lines: string[] = [];
      for (const [user, password] of Object.entries(users)) {
        const { stdout } = await run('htpasswd', ['-Bbn', user, password]);
        lines.push(stdout.trim());
      }
      await writeFile(join(dir, 'htpasswd'), lines.join('\n') + '\n');
      authYaml = `auth:\n  htpasswd:\n    realm: berth-test\n    path: ${yamlString(join(dir, 'htpasswd'))}\n`;
    } else if (auth === 'token') {
      token = await startTokenServer(dir, users, grant);
      authYaml =
        `auth:\n  token:\n    realm: ${yamlString(token.realm)}\n    service: ${service}\n    issuer: ${issuer}\n` +
        `    rootcertbundle: ${yamlString(token.certFile)}\n`;
    }
    let caFile: string | undefined;
    let tlsYaml = '';
    if (options.tls) {
      caFile = join(dir, 'tls.crt');
      const tlsKey = join(dir, 'tls.key');
      await run('openssl', [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', tlsKey,
        '-out', caFile, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
      ]);
      tlsYaml = `  tls:\n    certificate: ${yamlString(caFile)}\n    key: ${yamlString(tlsKey)}\n`;
    }
    const ca = caFile ? await readFile(caFile, 'utf8') : undefined;
    // The port is free when chosen but another test may take it first: retry on a bind failure.
    for (let attempt = 0; ; attempt++) {
      const port = await freePort();
      const config =
        `version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\n` +
        `storage:\n  filesystem:\n    rootdirectory: ${yamlString(storageDir)}\n  delete:\n    enabled: true\n` +
        `  maintenance:\n    uploadpurging:\n      enabled: false\n` +
        `http:\n  addr: 127.0.0.1:${port}\n  secret: ${randomBytes(16).toString('hex')}\n${tlsYaml}` +
        authYaml;
      const configFile = join(dir, 'config.yml');
      await writeFile(configFile, config);
      const log = await open(logFile, 'a');
      try {
        child = spawn('docker-registry', ['serve', configFile], { stdio: ['ignore', log.fd, log.fd] });
      } finally {
        await log.close();
      }
      live.add(child);
      killOnExit();
      const started = child;
      child.once('exit', () => live.delete(started));
      const url = `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
      try {
        await waitUntilServing(url, child, logFile, ca);
      } catch (err) {
        const text = await readFile(logFile, 'utf8').catch(() => '');
        child.kill('SIGKILL');
        if (attempt < 3 && text.includes('address already in use')) continue;
        throw err;
      }
      const tokenServer = token;
      const running = child;
      const rig: RegistryRig = {
        host: `127.0.0.1:${port}`,
        url,
        storageDir,
        auth,
        users,
        logFile,
        ...(caFile ? { caFile } : {}),
        tokenRequests: tokenServer?.requests ?? [],
        creds: Object.entries(users).map(([u, p]) => `${u}:${p}`)[0],
        blobPath: (digest) => {
          const [algorithm, hex] = digest.split(':') as [string, string];
          return join(storageDir, 'docker/registry/v2/blobs', algorithm, hex.slice(0, 2), hex, 'data');
        },
        stop: async () => {
          if (running.exitCode === null && running.signalCode === null) {
            running.kill('SIGKILL');
            await once(running, 'exit');
          }
          await tokenServer?.close();
          await rm(dir, { recursive: true, force: true });
        },
      };
      return rig;
    }
  } catch (err) {
    child?.kill('SIGKILL');
    await token?.close();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
