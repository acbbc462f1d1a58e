import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalContentStore } from '@berth/store';
import { startRegistry, type RegistryRig } from '@berth/tools/registry-rig';
import { pushBusyboxImage, type TestImage } from '@berth/tools/test-images';
import { Agent } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RegistryClient, StaticCredentials, type ProgressEvent } from './index.js';

// Docker Hub cannot be reached from here. This stands in for its three hosts with one local
// server that speaks their wire protocol (the registry API backed by a real docker-registry,
// the auth.docker.io token service, the CDN that blob GETs redirect to), and an undici agent
// whose connector sends every host to it: the client under test does exactly what it would do
// on the internet, down to the Host headers.

interface Seen {
  readonly host: string;
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
}

let registry: RegistryRig;
let image: TestImage;
let hub: Server;
let agent: Agent;
let dir: string;
let seen: Seen[];
const issued = new Map<string, { scope: string; account: string | undefined }>();

beforeEach(async () => {
  seen = [];
  issued.clear();
  registry = await startRegistry();
  image = await pushBusyboxImage(registry, 'library/busybox:latest', { layers: 2 });
  dir = await mkdtemp(join(tmpdir(), 'berth-hub-test-'));
  const [upHost, upPort] = registry.host.split(':') as [string, string];
  hub = createServer((req, res) => {
    const host = req.headers.host ?? '';
    seen.push({ host, method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    const url = new URL(req.url ?? '/', `https://${host}`);
    if (host === 'auth.docker.io' && url.pathname === '/token') {
      const scope = url.searchParams.getAll('scope').join(' ');
      const token = `hub-token-${issued.size}`;
      const basic = req.headers.authorization?.startsWith('Basic ') ? Buffer.from(req.headers.authorization.slice(6), 'base64').toString() : undefined;
      issued.set(token, { scope, account: basic?.split(':')[0] });
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify({ token, access_token: token, expires_in: 300, issued_at: new Date().toISOString() }));
    }
    if (host === 'production.cloudflare.docker.com') {
      const digest = /\/(sha256:[0-9a-f]{64})$/.exec(url.pathname)?.[1];
      if (!digest) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      return void createReadStream(registry.blobPath(digest)).pipe(res);
    }
    if (host !== 'registry-1.docker.io') return void res.writeHead(502).end();
    const challenge = 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io"';
    const token = req.headers.authorization?.replace(/^Bearer /, '');
    const repo = /^\/v2\/(.+?)\/(manifests|blobs)\//.exec(url.pathname)?.[1];
    if (url.pathname === '/v2/' || !token || !issued.get(token)?.scope.includes(`repository:${repo}:pull`)) {
      const scope = repo ? `,scope="repository:${repo}:pull"` : '';
      res.writeHead(401, { 'www-authenticate': challenge + scope, 'content-type': 'application/json' });
      return void res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
    }
    const blob = /\/blobs\/(sha256:[0-9a-f]{64})$/.exec(url.pathname)?.[1];
    if (blob && req.method === 'GET') {
      res.writeHead(307, { location: `https://production.cloudflare.docker.com/registry-v2/docker/registry/v2/blobs/${blob}` });
      return void res.end();
    }
    const headers = { ...req.headers, host: registry.host };
    delete headers.authorization;
    const up = httpRequest({ host: upHost, port: Number(upPort), method: req.method, path: req.url, headers }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    });
    req.pipe(up);
  });
  hub.listen(0, '127.0.0.1');
  await new Promise((resolve) => hub.once('listening', resolve));
  const port = (hub.address() as { port: number }).port;
  agent = new Agent({
    connect: (_options, callback) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => callback(null, socket));
      socket.once('error', (err) => callback(err, null));
    },
  });
});

afterEach(async () => {
  await agent.close();
  hub.closeAllConnections();
  await new Promise((resolve) => hub.close(resolve));
  await registry.stop();
  await image.remove();
  await rm(dir, { recursive: true, force: true });
});

describe('Docker Hub', () => {
  it('pulls busybox as docker does: registry-1.docker.io, a token for library/busybox:pull, blobs from the CDN without credentials', async () => {
    const credentials = new StaticCredentials({ entries: { 'https://index.docker.io/v1/': { username: 'hubuser', password: 'hubpass' } } });
    const client = new RegistryClient({ dispatcher: agent, credentials, resolveHost: async () => [] });
    const events: ProgressEvent[] = [];
    try {
      const op = client.pull('busybox', { content: new LocalContentStore({ root: join(dir, 'store') }) });
      for await (const e of op) events.push(e);
      const result = await op.result;
      expect(result.manifestDescriptor.digest).toBe(image.target.digest);
    } finally {
      await client.close();
    }
    expect(events[0]).toEqual({ id: 'latest', status: 'Pulling from library/busybox' });
    expect(events.at(-1)).toEqual({ status: 'Status: Downloaded newer image for busybox:latest' });

    expect(new Set(seen.map((s) => s.host))).toEqual(new Set(['registry-1.docker.io', 'auth.docker.io', 'production.cloudflare.docker.com']));
    const tokens = seen.filter((s) => s.host === 'auth.docker.io');
    expect(tokens).toHaveLength(1);
    const query = new URL(tokens[0]!.url, 'https://auth.docker.io').searchParams;
    expect(query.get('service')).toBe('registry.docker.io');
    expect(query.getAll('scope')).toEqual(['repository:library/busybox:pull']);
    expect(query.get('account')).toBe('hubuser');
    expect(tokens[0]!.headers.authorization).toBe(`Basic ${Buffer.from('hubuser:hubpass').toString('base64')}`);

    const cdn = seen.filter((s) => s.host === 'production.cloudflare.docker.com');
    expect(cdn).toHaveLength(image.manifests[0]!.layers.length + 1);
    expect(cdn.every((s) => s.headers.authorization === undefined)).toBe(true);
    const api = seen.filter((s) => s.host === 'registry-1.docker.io' && s.url !== '/v2/');
    expect(api.every((s) => s.headers.authorization === 'Bearer hub-token-0')).toBe(true);
  });
});
