import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { LocalContentStore } from '@berth/store';
import { dockerdUnavailable, startDockerd } from '@berth/tools/dockerd-rig';
import { startRegistry, type RegistryRig } from '@berth/tools/registry-rig';
import { buildBusyboxImage, pushBusyboxImage, type TestImage } from '@berth/tools/test-images';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RegistryClient, StaticCredentials } from './index.js';

const run = promisify(execFile);
const skopeo = (args: readonly string[]) => run('skopeo', args, { maxBuffer: 32 << 20 });
const skopeoMissing = await run('skopeo', ['--version']).then(
  () => undefined,
  () => 'skopeo is not installed (Debian package skopeo)',
);

let dir: string;
let content: LocalContentStore;
const rigs: RegistryRig[] = [];
const clients: RegistryClient[] = [];
const images: TestImage[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-interop-test-'));
  content = new LocalContentStore({ root: join(dir, 'store') });
});

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  for (const r of rigs.splice(0)) await r.stop();
  for (const i of images.splice(0)) await i.remove();
  await rm(dir, { recursive: true, force: true });
});

async function rig(options: Parameters<typeof startRegistry>[0] = {}): Promise<RegistryRig> {
  const r = await startRegistry(options);
  rigs.push(r);
  return r;
}

function client(options: ConstructorParameters<typeof RegistryClient>[0] = {}): RegistryClient {
  const c = new RegistryClient({ retryDelayMs: 10, ...options });
  clients.push(c);
  return c;
}

async function built(options: Parameters<typeof buildBusyboxImage>[0]): Promise<TestImage> {
  const image = await buildBusyboxImage(options);
  images.push(image);
  return image;
}

describe.skipIf(skopeoMissing)(`skopeo interop${skopeoMissing ? ` (skipped: ${skopeoMissing})` : ''}`, () => {
  it('pulls what skopeo copied from an OCI layout into the registry', async () => {
    const r = await rig({ auth: 'basic' });
    const image = await built({ layers: 2, platforms: ['linux/amd64', 'linux/arm64'] });
    await skopeo(['copy', '--quiet', '--all', '--preserve-digests', '--dest-tls-verify=false', '--dest-creds', r.creds!, `oci:${image.dir}:latest`, `docker://${r.host}/from-skopeo:1`]);
    const [username, password] = r.creds!.split(':') as [string, string];
    const result = await client({ credentials: new StaticCredentials({ entries: { [r.host]: { username, password } } }) }).pull(`${r.host}/from-skopeo:1`, { content }).result;
    expect(result.indexDescriptor?.digest).toBe(image.index!.descriptor.digest);
    const amd64 = image.manifests.find((m) => m.platform === 'linux/amd64')!;
    expect(result.manifestDescriptor.digest).toBe(amd64.descriptor.digest);
    for (const l of amd64.layers) expect(await content.stat(l.digest)).toEqual({ size: l.size });
  });

  it('pushes what skopeo inspect and skopeo copy read back', async () => {
    const r = await rig();
    const image = await built({ layers: 3, layerBytes: 100_000 });
    const m = image.manifests[0]!;
    for (const d of [m.descriptor, m.config, ...m.layers]) {
      const ingest = await content.ingest({ digest: d.digest, size: d.size });
      await pipeline(createReadStream(image.blobPath(d.digest)), ingest.writer);
      await ingest.commit();
    }
    await client().push(`${r.host}/from-berth:v1`, { content, manifestDigest: m.descriptor.digest }).result;

    const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${r.host}/from-berth:v1`]);
    expect(Buffer.from(raw.stdout).equals(m.bytes)).toBe(true);
    const inspected = JSON.parse((await skopeo(['inspect', '--tls-verify=false', `docker://${r.host}/from-berth:v1`])).stdout) as {
      Digest: string;
      Architecture: string;
      Os: string;
      Layers: string[];
    };
    expect(inspected).toMatchObject({ Digest: m.descriptor.digest, Architecture: 'amd64', Os: 'linux', Layers: m.layers.map((l) => l.digest) });

    const out = join(dir, 'copied');
    await skopeo(['copy', '--quiet', '--src-tls-verify=false', `docker://${r.host}/from-berth:v1`, `oci:${out}:v1`]);
    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    expect(index.manifests[0]!.digest).toBe(m.descriptor.digest);
    for (const l of m.layers) expect((await stat(join(out, 'blobs', 'sha256', l.digest.slice(7)))).size).toBe(l.size);
  });
});

const dockerMissing = await dockerdUnavailable();

describe.skipIf(dockerMissing)(`docker CLI interop${dockerMissing ? ` (skipped: ${dockerMissing})` : ''}`, () => {
  it('docker pulls what Berth pushed, and Berth pulls what docker pushed', async () => {
    const r = await rig();
    const dockerd = await startDockerd({ busyboxTag: 'berth-busybox:latest' });
    try {
      const image = await built({ layers: 2, mediaTypes: 'docker' });
      const m = image.manifests[0]!;
      for (const d of [m.descriptor, m.config, ...m.layers]) {
        const ingest = await content.ingest({ digest: d.digest, size: d.size });
        await pipeline(createReadStream(image.blobPath(d.digest)), ingest.writer);
        await ingest.commit();
      }
      await client().push(`${r.host}/berth-made:1`, { content, manifestDigest: m.descriptor.digest }).result;
      const pulled = await dockerd.docker(['pull', `${r.host}/berth-made:1`]);
      expect(pulled.code, pulled.stderr).toBe(0);
      expect(pulled.stdout).toContain(`Digest: ${m.descriptor.digest}`);
      const id = await dockerd.docker(['image', 'inspect', '--format', '{{.Id}}', `${r.host}/berth-made:1`]);
      expect(id.stdout.trim()).toBe(m.config.digest);

      const tagged = await dockerd.docker(['tag', 'berth-busybox:latest', `${r.host}/docker-made:1`]);
      expect(tagged.code, tagged.stderr).toBe(0);
      const pushed = await dockerd.docker(['push', `${r.host}/docker-made:1`]);
      expect(pushed.code, pushed.stderr).toBe(0);
      const digest = /digest: (sha256:[0-9a-f]{64})/.exec(pushed.stdout)?.[1];
      const result = await client().pull(`${r.host}/docker-made:1`, { content }).result;
      expect(result.descriptor.digest).toBe(digest);
      expect(result.manifestDescriptor.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
      const dockerId = await dockerd.docker(['image', 'inspect', '--format', '{{.Id}}', 'berth-busybox:latest']);
      expect(result.configDescriptor.digest).toBe(dockerId.stdout.trim());
    } finally {
      await dockerd.stop();
    }
  });
});

describe('transport', () => {
  it('speaks HTTPS to an insecure registry that has TLS, and falls back to HTTP for one without', async () => {
    const tls = await rig({ tls: true });
    const plain = await rig();
    const c = client();
    expect((await c.ping(tls.host)).url).toBe(`https://${tls.host}`);
    expect(await c.ping(plain.host)).toEqual({ registry: plain.host, url: `http://${plain.host}`, auth: 'none' });
    images.push(await pushBusyboxImage(plain, 'over-http:1'));
    await c.pull(`${plain.host}/over-http:1`, { content }).result;
  });

  it('verifies TLS with the CA given for the registry when it is not insecure', async () => {
    const tls = await rig({ tls: true });
    const ca = await readFile(tls.caFile!, 'utf8');
    // A resolver that puts the name outside loopback makes the registry "secure": TLS must verify.
    const resolveHost = async () => ['192.0.2.1'];
    const host = `localhost:${tls.host.split(':')[1]}`;
    await expect(client({ resolveHost }).ping(host)).rejects.toMatchObject({ code: 'ERR_REGISTRY_UNAVAILABLE' });
    expect((await client({ resolveHost, tls: { [host]: { ca } } }).ping(host)).url).toBe(`https://${host}`);
  });

  it('follows blob redirects to another host (a CDN, as Docker Hub does) without sending it the credentials', async () => {
    const r = await rig({ auth: 'basic' });
    images.push(await pushBusyboxImage(r, 'hub/like:1', { layers: 2 }));
    const [upHost, upPort] = r.host.split(':') as [string, string];
    const cdnSaw: IncomingHttpHeaders[] = [];
    const servers: Server[] = [];
    const listen = async (server: Server) => {
      servers.push(server);
      server.listen(0, '127.0.0.1');
      await new Promise((resolve) => server.once('listening', resolve));
      return (server.address() as { port: number }).port;
    };
    try {
      const cdnPort = await listen(
        createServer((req, res) => {
          cdnSaw.push(req.headers);
          const digest = /\/blobs\/(sha256:[0-9a-f]{64})/.exec(req.url ?? '')?.[1];
          if (!digest) return void res.writeHead(404).end();
          res.writeHead(200, { 'content-type': 'application/octet-stream' });
          createReadStream(r.blobPath(digest)).pipe(res);
        }),
      );
      // The registry's front: blob GETs answer 307 to the CDN, everything else goes to the registry.
      const frontPort = await listen(
        createServer((req, res) => {
          const blob = /^\/v2\/.+\/blobs\/(sha256:[0-9a-f]{64})$/.exec(req.url ?? '');
          if (req.method === 'GET' && blob) {
            if (!req.headers.authorization) return void res.writeHead(401, { 'www-authenticate': 'Basic realm="front"' }).end();
            return void res.writeHead(307, { location: `http://127.0.0.1:${cdnPort}/cdn/blobs/${blob[1]}?expires=1` }).end();
          }
          const up = httpRequest({ host: upHost, port: Number(upPort), method: req.method, path: req.url, headers: req.headers }, (upRes) => {
            res.writeHead(upRes.statusCode ?? 502, upRes.headers);
            upRes.pipe(res);
          });
          req.pipe(up);
        }),
      );
      const front = `127.0.0.1:${frontPort}`;
      const [username, password] = r.creds!.split(':') as [string, string];
      const c = client({ credentials: new StaticCredentials({ entries: { [front]: { username, password } } }) });
      const result = await c.pull(`${front}/hub/like:1`, { content }).result;
      expect(cdnSaw).toHaveLength(result.manifest.layers.length + 1);
      expect(cdnSaw.every((h) => h.authorization === undefined)).toBe(true);
      for (const l of result.manifest.layers) expect(await content.stat(l.digest)).toEqual({ size: l.size });
    } finally {
      for (const s of servers) {
        s.closeAllConnections();
        await new Promise((resolve) => s.close(resolve));
      }
    }
  });

  it('reports an unreachable registry as Unavailable, naming it', async () => {
    const r = await rig();
    const host = r.host;
    await r.stop();
    rigs.splice(rigs.indexOf(r), 1);
    const err = await client().pull(`${host}/gone:1`, { content }).result.catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_REGISTRY_UNAVAILABLE', kind: 'Unavailable' });
    expect((err as Error).message).toContain(`cannot reach registry ${host}`);
  });
});
