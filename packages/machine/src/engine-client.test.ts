import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ensureCertificateAuthority, issueCertificate, readCertificateAuthority } from './certificates.js';
import { EngineClient, waitForEngine } from './engine-client.js';

// The provisioner's "does the engine answer" step, against a real HTTPS server with mutual TLS.
let dir: string;
let servers: Server[];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-engine-client-'));
  servers = [];
});
afterEach(async () => {
  for (const s of servers) s.close();
  await rm(dir, { recursive: true, force: true });
});

async function pki(certsDir: string, names: string[]) {
  const paths = await ensureCertificateAuthority({ certsDir });
  const ca = await readCertificateAuthority(paths);
  const server = issueCertificate({ ca, commonName: 'engine', organization: 'test', usage: 'server', names });
  return { ca: ca.certPem, server, cert: await readFile(paths.clientCertPath, 'utf8'), key: await readFile(paths.clientKeyPath, 'utf8') };
}

function serve(tls: { ca: string; server: { certPem: string; keyPem: string } }, port = 0): Promise<number> {
  const server = createServer({ ca: tls.ca, cert: tls.server.certPem, key: tls.server.keyPem, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    res.setHeader('Content-Type', 'application/json');
    if (req.url === '/_ping') return void res.end('OK');
    if (req.url === '/version') return void res.end(JSON.stringify({ Version: '9.9.9', ApiVersion: '1.47' }));
    if (req.url === '/info') return void res.end(JSON.stringify({ NCPU: 3, MemTotal: 1024 }));
    res.statusCode = 404;
    res.end('{"message":"page not found"}');
  });
  servers.push(server);
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

describe('EngineClient', () => {
  it('talks mutual TLS to an engine: ping, version, info', async () => {
    const tls = await pki(join(dir, 'certs'), ['127.0.0.1']);
    const port = await serve(tls);
    const client = new EngineClient({ url: `tcp://127.0.0.1:${port}`, ca: tls.ca, cert: tls.cert, key: tls.key });
    await client.ping();
    expect((await client.version()).Version).toBe('9.9.9');
    expect(await client.info()).toEqual({ NCPU: 3, MemTotal: 1024 });
  });

  it('waits until the engine starts listening', async () => {
    const tls = await pki(join(dir, 'certs'), ['127.0.0.1']);
    const port = await serve(tls);
    servers.pop()!.close();
    const client = new EngineClient({ url: `tcp://127.0.0.1:${port}`, ca: tls.ca, cert: tls.cert, key: tls.key });
    const waiting = waitForEngine(client, { timeoutMs: 20_000, intervalMs: 100 });
    await new Promise((r) => setTimeout(r, 400));
    await serve(tls, port);
    expect((await waiting).Version).toBe('9.9.9');
    await expect(waitForEngine(new EngineClient({ url: 'tcp://127.0.0.1:1', ca: tls.ca, cert: tls.cert, key: tls.key }), { timeoutMs: 300, intervalMs: 100 })).rejects.toMatchObject({
      code: 'ERR_ENGINE_WAIT_TIMEOUT',
      cause: expect.objectContaining({ code: 'ERR_ENGINE_UNAVAILABLE' }),
    });
  });

  it('fails at once when the certificate does not name the address or comes from another CA', async () => {
    const tls = await pki(join(dir, 'certs'), ['10.9.9.9']);
    const port = await serve(tls);
    const wrongName = new EngineClient({ url: `tcp://127.0.0.1:${port}`, ca: tls.ca, cert: tls.cert, key: tls.key });
    await expect(waitForEngine(wrongName, { timeoutMs: 20_000 })).rejects.toMatchObject({ code: 'ERR_ENGINE_TLS', message: expect.stringContaining('127.0.0.1') });
    const other = await pki(join(dir, 'other'), ['127.0.0.1']);
    const stranger = new EngineClient({ url: `tcp://127.0.0.1:${port}`, ca: tls.ca, cert: other.cert, key: other.key });
    await expect(stranger.ping()).rejects.toMatchObject({ kind: expect.stringMatching(/Unavailable|FailedPrecondition/) });
    expect(() => new EngineClient({ url: 'unix:///run/x.sock', ca: '', cert: '', key: '' })).toThrow(/tcp:\/\/HOST:PORT/);
  });
});
