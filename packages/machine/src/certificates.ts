import { X509Certificate, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { ErrorKind, errnoCode, throwIfAborted } from '@berth/errors';
import { withFileLock, writeFileAtomic } from '@berth/fsutil';
import { noopLogger, type Logger } from '@berth/log';
import { CertificateError } from './errors.js';
import { KeyUsage, distinguishedName, readSubject, writeCertificate } from './x509-der.js';

const day = 24 * 60 * 60 * 1000;
/** Certificates this close to expiry are made again. */
const renewBeforeMs = 30 * day;

/** A certificate and its private key, both PEM. */
export interface CertificatePair {
  readonly certPem: string;
  readonly keyPem: string;
}

/** The shared CA and client certificate of a store, as file paths. */
export interface AuthorityPaths {
  readonly caCertPath: string;
  readonly caKeyPath: string;
  readonly clientCertPath: string;
  readonly clientKeyPath: string;
}

/** Options of `ensureCertificateAuthority`. */
export interface EnsureAuthorityOptions {
  /** The directory of the shared CA and client certificate (`<store>/certs`). */
  readonly certsDir: string;
  /** The organization in the subjects (docker-machine uses the user name). Default `berth`. */
  readonly organization?: string;
  /** Use this CA instead of `certsDir/ca.pem` (docker-machine's `--tls-ca-cert`). */
  readonly caCertPath?: string;
  readonly caKeyPath?: string;
  readonly signal?: AbortSignal;
  readonly logger?: Logger;
}

function toPem(der: Buffer): string {
  return `-----BEGIN CERTIFICATE-----\n${der.toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`;
}

// P-256 keys: quick to make, and accepted by Go's crypto/tls (the docker CLI) and by Node.
function newKey(): KeyObject {
  return generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
}

function exportKey(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** Reads a PEM private key (PKCS#1, SEC1 or PKCS#8; RSA or EC) to sign with. */
function signingKey(pem: string, source: string): KeyObject {
  try {
    const key = createPrivateKey(pem);
    if (key.asymmetricKeyType !== 'rsa' && key.asymmetricKeyType !== 'ec') throw new Error(`unsupported key type ${key.asymmetricKeyType}`);
    return key;
  } catch (err) {
    throw new CertificateError(`cannot use the private key ${source}: it must be an unencrypted RSA or EC key`, {
      code: 'ERR_CERT_KEY',
      kind: ErrorKind.InvalidArgument,
      cause: err,
    });
  }
}

function serialNumber(): Buffer {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x40; // positive, and no leading zero byte
  return bytes;
}

function validity(days: number): { notBefore: Date; notAfter: Date } {
  // Backdated a little, so that a host whose clock is slightly behind accepts the certificate.
  const now = Date.now();
  return { notBefore: new Date(now - 60 * 60 * 1000), notAfter: new Date(now + days * day) };
}

/** Makes a self-signed CA certificate valid for ten years. */
export function createCertificateAuthority(organization: string): CertificatePair {
  const key = newKey();
  const name = distinguishedName(organization, 'berth machine CA');
  const der = writeCertificate({
    serial: serialNumber(),
    issuer: name,
    subject: name,
    ...validity(3650),
    publicKey: createPublicKey(key),
    signingKey: key,
    isCa: true,
    keyUsage: [KeyUsage.digitalSignature, KeyUsage.keyCertSign, KeyUsage.cRLSign],
  });
  return { certPem: toPem(der), keyPem: exportKey(key) };
}

/** Options of `issueCertificate`. */
export interface IssueCertificateOptions {
  readonly ca: CertificatePair;
  readonly commonName: string;
  readonly organization: string;
  /** `server` for an engine (serverAuth), `client` for the CLI (clientAuth). */
  readonly usage: 'server' | 'client';
  /** Subject alternative names: IP addresses and DNS names, mixed. */
  readonly names?: readonly string[];
  /** Validity in days (default 1095, three years). */
  readonly days?: number;
}

/** Makes a P-256 key and a certificate for it, signed by `ca`. */
export function issueCertificate(options: IssueCertificateOptions): CertificatePair {
  const caKey = signingKey(options.ca.keyPem, 'of the CA');
  let issuer: Buffer;
  try {
    issuer = readSubject(new X509Certificate(options.ca.certPem).raw);
  } catch (err) {
    throw new CertificateError('cannot read the CA certificate', { code: 'ERR_CERT_READ', kind: ErrorKind.InvalidArgument, cause: err });
  }
  const key = newKey();
  const der = writeCertificate({
    serial: serialNumber(),
    issuer,
    subject: distinguishedName(options.organization, options.commonName),
    ...validity(options.days ?? 1095),
    publicKey: createPublicKey(key),
    signingKey: caKey,
    isCa: false,
    keyUsage: [KeyUsage.digitalSignature],
    extendedKeyUsage: [options.usage],
    names: [...new Set(options.names ?? [])].filter(Boolean),
  });
  return { certPem: toPem(der), keyPem: exportKey(key) };
}

/** What a certificate says about itself, read with Node's X509Certificate. */
export interface CertificateInfo {
  readonly subject: string;
  readonly ips: readonly string[];
  readonly dnsNames: readonly string[];
  readonly notAfter: Date;
}

/** Reads the names and expiry of a PEM certificate. */
export function certificateInfo(certPem: string): CertificateInfo {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (err) {
    throw new CertificateError('not a PEM certificate', { code: 'ERR_CERT_READ', kind: ErrorKind.InvalidArgument, cause: err });
  }
  const ips: string[] = [];
  const dnsNames: string[] = [];
  for (const entry of (cert.subjectAltName ?? '').split(/,\s*/)) {
    if (entry.startsWith('IP Address:')) ips.push(entry.slice('IP Address:'.length));
    else if (entry.startsWith('DNS:')) dnsNames.push(entry.slice('DNS:'.length));
  }
  return { subject: cert.subject, ips, dnsNames, notAfter: new Date(cert.validTo) };
}

/** True when the certificate names `address` (an IP or a DNS name) among its subject alternative names. */
export function certificateCovers(certPem: string, address: string): boolean {
  const cert = new X509Certificate(certPem);
  return isIP(address) ? cert.checkIP(address) !== undefined : cert.checkHost(address) !== undefined;
}

async function readPair(certPath: string, keyPath: string): Promise<CertificatePair | undefined> {
  try {
    return { certPem: await readFile(certPath, 'utf8'), keyPem: await readFile(keyPath, 'utf8') };
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw new CertificateError(`cannot read ${certPath}`, { code: 'ERR_CERT_READ', kind: ErrorKind.PermissionDenied, cause: err });
  }
}

function usable(pair: CertificatePair | undefined, issuer?: CertificatePair): pair is CertificatePair {
  if (!pair) return false;
  try {
    const cert = new X509Certificate(pair.certPem);
    if (new Date(cert.validTo).getTime() - Date.now() < renewBeforeMs) return false;
    if (!cert.checkPrivateKey(createPrivateKey(pair.keyPem))) return false;
    return issuer ? cert.verify(new X509Certificate(issuer.certPem).publicKey) : true;
  } catch {
    return false;
  }
}

async function writePair(certPath: string, keyPath: string, pair: CertificatePair): Promise<void> {
  await writeFileAtomic(keyPath, pair.keyPem, { mode: 0o600 });
  await writeFileAtomic(certPath, pair.certPem, { mode: 0o644 });
}

/**
 * Makes the store's CA (`ca.pem`, `ca-key.pem`) and client certificate (`cert.pem`, `key.pem`)
 * when they are missing, unreadable or about to expire, and returns their paths. Runs under a
 * lock in `certsDir`, so that parallel creates (in one process or many) make them once.
 */
export async function ensureCertificateAuthority(options: EnsureAuthorityOptions): Promise<AuthorityPaths> {
  const logger = options.logger ?? noopLogger;
  const organization = options.organization ?? 'berth';
  const dir = options.certsDir;
  const paths: AuthorityPaths = {
    caCertPath: options.caCertPath ?? join(dir, 'ca.pem'),
    caKeyPath: options.caKeyPath ?? join(dir, 'ca-key.pem'),
    clientCertPath: join(dir, 'cert.pem'),
    clientKeyPath: join(dir, 'key.pem'),
  };
  throwIfAborted(options.signal);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await withFileLock(
    join(dir, '.lock'),
    async () => {
      let ca = await readPair(paths.caCertPath, paths.caKeyPath);
      if (!usable(ca)) {
        if (options.caCertPath) {
          throw new CertificateError(`the CA ${options.caCertPath} is missing, expired or does not match its key ${paths.caKeyPath}`, {
            code: 'ERR_CERT_CA',
            kind: ErrorKind.FailedPrecondition,
          });
        }
        logger.info('creating the CA certificate', { path: paths.caCertPath });
        ca = createCertificateAuthority(organization);
        await writePair(paths.caCertPath, paths.caKeyPath, ca);
      }
      const client = await readPair(paths.clientCertPath, paths.clientKeyPath);
      if (!usable(client, ca)) {
        logger.info('creating the client certificate', { path: paths.clientCertPath });
        await writePair(paths.clientCertPath, paths.clientKeyPath, issueCertificate({ ca, commonName: 'client', organization, usage: 'client' }));
      }
    },
    { signal: options.signal },
  );
  return paths;
}

/** Reads the CA pair at `paths`. */
export async function readCertificateAuthority(paths: Pick<AuthorityPaths, 'caCertPath' | 'caKeyPath'>): Promise<CertificatePair> {
  const pair = await readPair(paths.caCertPath, paths.caKeyPath);
  if (!pair) {
    throw new CertificateError(`the CA certificate ${paths.caCertPath} is missing`, { code: 'ERR_CERT_CA', kind: ErrorKind.NotFound });
  }
  return pair;
}
