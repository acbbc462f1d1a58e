import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Paths of a CA, a server certificate for 127.0.0.1/localhost, a client certificate, and a client from another CA. */
export interface TestCertificates {
  readonly dir: string;
  readonly ca: string;
  readonly serverCert: string;
  readonly serverKey: string;
  /** A DOCKER_CERT_PATH: ca.pem, cert.pem, key.pem of a client the CA signed. */
  readonly clientDir: string;
  /** A DOCKER_CERT_PATH whose client certificate another CA signed (the server must refuse it). */
  readonly rogueClientDir: string;
}

async function openssl(args: readonly string[], cwd: string): Promise<void> {
  await run('openssl', args, { cwd });
}

async function signed(dir: string, ca: string, name: string, cn: string, ext: string): Promise<void> {
  await openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}-key.pem`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`], dir);
  await writeFile(join(dir, `${name}.ext`), ext);
  await openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}-key.pem`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`], dir);
}

/** Makes certificates with openssl in `dir` (which must exist), as `machine` or `docker-machine` would for a host. */
export async function makeTestCertificates(dir: string): Promise<TestCertificates> {
  for (const ca of ['ca', 'rogue-ca']) {
    await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${ca}-key.pem`, '-out', `${ca}.pem`, '-days', '2', '-subj', `/CN=${ca}`], dir);
  }
  await signed(dir, 'ca', 'server', 'localhost', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  await signed(dir, 'ca', 'client', 'client', 'extendedKeyUsage=clientAuth\n');
  await signed(dir, 'rogue-ca', 'rogue', 'client', 'extendedKeyUsage=clientAuth\n');
  const clientDir = join(dir, 'client');
  const rogueClientDir = join(dir, 'rogue');
  await run('sh', ['-c', `mkdir -p client rogue && cp ca.pem client/ca.pem && cp client.pem client/cert.pem && cp client-key.pem client/key.pem && cp ca.pem rogue/ca.pem && cp rogue.pem rogue/cert.pem && cp rogue-key.pem rogue/key.pem`], { cwd: dir });
  return { dir, ca: join(dir, 'ca.pem'), serverCert: join(dir, 'server.pem'), serverKey: join(dir, 'server-key.pem'), clientDir, rogueClientDir };
}
