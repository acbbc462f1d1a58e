import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  certificateCovers,
  certificateInfo,
  ensureCertificateAuthority,
  issueCertificate,
  readCertificateAuthority,
  type CertificatePair,
} from './certificates.js';

const run = promisify(execFile);
const dist = fileURLToPath(new URL('../dist/certificates.js', import.meta.url));
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-certs-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

describe('certificates', () => {
  it('makes the CA and client certificate once, even when several processes race', async () => {
    const certsDir = join(dir, 'certs');
    const script = `import { ensureCertificateAuthority } from ${JSON.stringify(dist)};
      await ensureCertificateAuthority({ certsDir: ${JSON.stringify(certsDir)} });`;
    const children = Array.from({ length: 4 }, () => spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: 'inherit' }));
    const inProcess = [ensureCertificateAuthority({ certsDir }), ensureCertificateAuthority({ certsDir })];
    const codes = await Promise.all(children.map((c) => new Promise((r) => c.on('exit', r))));
    expect(codes).toEqual([0, 0, 0, 0]);
    await Promise.all(inProcess);
    const ca = await readFile(join(certsDir, 'ca.pem'), 'utf8');
    const client = await readFile(join(certsDir, 'cert.pem'), 'utf8');
    // Every client certificate made by a racer would be signed by its own CA: one survived and verifies.
    await run('openssl', ['verify', '-CAfile', join(certsDir, 'ca.pem'), join(certsDir, 'cert.pem')]);
    const paths = await ensureCertificateAuthority({ certsDir });
    expect(await readFile(paths.caCertPath, 'utf8')).toBe(ca);
    expect(await readFile(paths.clientCertPath, 'utf8')).toBe(client);
    expect((await run('stat', ['-c', '%a', paths.caKeyPath])).stdout.trim()).toBe('600');
  });

  it('names the host IPs and names in the server certificate, and nothing else', async () => {
    const paths = await ensureCertificateAuthority({ certsDir: join(dir, 'certs'), organization: 'me' });
    const ca = await readCertificateAuthority(paths);
    const server = issueCertificate({ ca, commonName: 'h1', organization: 'me.h1', usage: 'server', names: ['10.1.2.3', 'h1', 'localhost', 'h1.example.com'] });
    const info = certificateInfo(server.certPem);
    expect(info.ips).toEqual(['10.1.2.3']);
    expect(info.dnsNames).toEqual(['h1', 'localhost', 'h1.example.com']);
    expect(certificateCovers(server.certPem, '10.1.2.3')).toBe(true);
    expect(certificateCovers(server.certPem, '10.1.2.4')).toBe(false);
    expect(certificateCovers(server.certPem, 'h1.example.com')).toBe(true);
    const files = join(dir, 'server.pem');
    await writeFile(files, server.certPem);
    const { stdout } = await run('openssl', ['verify', '-purpose', 'sslserver', '-CAfile', paths.caCertPath, files]);
    expect(stdout).toContain('OK');
  });

  it('gives Node and the Go docker CLI a mutual TLS connection, and refuses a stranger', async () => {
    const paths = await ensureCertificateAuthority({ certsDir: join(dir, 'certs') });
    const ca = await readCertificateAuthority(paths);
    const serverPair = issueCertificate({ ca, commonName: 'engine', organization: 'berth', usage: 'server', names: ['127.0.0.1', 'localhost'] });
    const server = createServer(
      { cert: serverPair.certPem, key: serverPair.keyPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: true },
      (req, res) => {
        res.setHeader('Api-Version', '1.41');
        res.setHeader('Content-Type', 'application/json');
        if (req.url === '/_ping') return void res.end('OK');
        res.end(JSON.stringify({ Version: '0.0.0-test', ApiVersion: '1.41', MinAPIVersion: '1.24', Os: 'linux', Arch: 'amd64' }));
      },
    );
    const port = await listen(server);
    try {
      const client = { cert: await readFile(paths.clientCertPath, 'utf8'), key: await readFile(paths.clientKeyPath, 'utf8') };
      const ok = connect({ host: '127.0.0.1', port, ca: ca.certPem, ...client, servername: 'localhost' });
      await new Promise<void>((resolve, reject) => ok.once('secureConnect', resolve).once('error', reject));
      expect(ok.authorized).toBe(true);
      ok.destroy();

      const docker = await run('docker', ['--tlsverify', '--tlscacert', paths.caCertPath, '--tlscert', paths.clientCertPath, '--tlskey', paths.clientKeyPath, '-H', `tcp://127.0.0.1:${port}`, 'version', '--format', '{{.Server.Version}}'], {
        env: { ...process.env, DOCKER_CONFIG: dir, DOCKER_HOST: '', DOCKER_CONTEXT: '' },
      });
      expect(docker.stdout.trim()).toBe('0.0.0-test');

      const otherCa = await ensureCertificateAuthority({ certsDir: join(dir, 'other') });
      const stranger: CertificatePair = { certPem: await readFile(otherCa.clientCertPath, 'utf8'), keyPem: await readFile(otherCa.clientKeyPath, 'utf8') };
      const refused = connect({ host: '127.0.0.1', port, ca: ca.certPem, cert: stranger.certPem, key: stranger.keyPem, servername: 'localhost' });
      const outcome = await new Promise<string>((resolve) => {
        refused.once('error', () => resolve('refused'));
        refused.once('secureConnect', () => refused.once('data', () => resolve('served')).once('close', () => resolve('refused')).write('GET /_ping HTTP/1.0\r\n\r\n'));
      });
      expect(outcome).toBe('refused');
      refused.destroy();
    } finally {
      server.close();
    }
  });

  it('signs with a CA the user brings, RSA included, and says which file is wrong', async () => {
    const caKey = join(dir, 'my-ca-key.pem');
    const caCert = join(dir, 'my-ca.pem');
    await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', caKey, '-out', caCert, '-days', '100', '-subj', '/CN=my CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign']);
    const paths = await ensureCertificateAuthority({ certsDir: join(dir, 'certs'), caCertPath: caCert, caKeyPath: caKey });
    await run('openssl', ['verify', '-CAfile', caCert, paths.clientCertPath]);
    await expect(ensureCertificateAuthority({ certsDir: join(dir, 'c2'), caCertPath: join(dir, 'missing.pem'), caKeyPath: caKey })).rejects.toMatchObject({
      code: 'ERR_CERT_CA',
      message: expect.stringContaining('missing.pem'),
    });
  });
});
