import { createHash, sign, type KeyObject } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';

// The few DER structures an X.509 v3 certificate needs (RFC 5280), written by hand so that the
// machine CLI signs certificates with node:crypto alone: no ASN.1 library, no polyfills.

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>>= 8) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), length(content.length), content]);
}

const sequence = (...items: Buffer[]) => tlv(0x30, Buffer.concat(items));
const set = (...items: Buffer[]) => tlv(0x31, Buffer.concat(items));
const octetString = (content: Buffer) => tlv(0x04, content);
const utf8String = (text: string) => tlv(0x0c, Buffer.from(text, 'utf8'));
const explicit = (n: number, content: Buffer) => tlv(0xa0 + n, content);
const derNull = Buffer.from([0x05, 0x00]);
const derTrue = Buffer.from([0x01, 0x01, 0xff]);

function integer(value: Buffer | number): Buffer {
  let bytes = typeof value === 'number' ? Buffer.from([value]) : value;
  while (bytes.length > 1 && bytes[0] === 0 && bytes[1]! < 0x80) bytes = bytes.subarray(1);
  if (bytes[0]! >= 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return tlv(0x02, bytes);
}

function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const bytes = [40 * parts[0]! + parts[1]!];
  for (const part of parts.slice(2)) {
    const chunk = [part & 0x7f];
    for (let v = part >>> 7; v > 0; v >>>= 7) chunk.unshift(0x80 | (v & 0x7f));
    bytes.push(...chunk);
  }
  return tlv(0x06, Buffer.from(bytes));
}

function bitString(content: Buffer, unusedBits = 0): Buffer {
  return tlv(0x03, Buffer.concat([Buffer.from([unusedBits]), content]));
}

function time(date: Date): Buffer {
  const iso = date.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';
  // UTCTime until 2049, GeneralizedTime from 2050 on (RFC 5280 4.1.2.5).
  return date.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(iso.slice(2), 'latin1')) : tlv(0x18, Buffer.from(iso, 'latin1'));
}

function ipBytes(ip: string): Buffer {
  if (isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  const [head = '', tail] = ip.split('::');
  const groups = (s: string) => (s ? s.split(':') : []);
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const words = [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return Buffer.from(words.flatMap((w) => [parseInt(w, 16) >> 8, parseInt(w, 16) & 0xff]));
}

/** Key usage bits, numbered as in RFC 5280 4.2.1.3. */
export const KeyUsage = { digitalSignature: 0, keyEncipherment: 2, keyCertSign: 5, cRLSign: 6 } as const;
export type KeyUsage = (typeof KeyUsage)[keyof typeof KeyUsage];

function keyUsageBits(bits: readonly KeyUsage[]): Buffer {
  const value = bits.reduce<number>((v, bit) => v | (0x80 >> bit), 0);
  let unused = 0;
  while (unused < 7 && !(value & (1 << unused))) unused++;
  return bitString(Buffer.from([value]), unused);
}

function extension(id: string, value: Buffer, critical = false): Buffer {
  return sequence(oid(id), ...(critical ? [derTrue] : []), octetString(value));
}

/** A distinguished name from its organization and common name. */
export function distinguishedName(organization: string, commonName: string): Buffer {
  return sequence(set(sequence(oid('2.5.4.10'), utf8String(organization))), set(sequence(oid('2.5.4.3'), utf8String(commonName))));
}

/** What `writeCertificate` puts in a certificate. */
export interface CertificateFields {
  readonly serial: Buffer;
  /** The issuer's subject, as DER (a CA's own subject for a self-signed one). */
  readonly issuer: Buffer;
  readonly subject: Buffer;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly publicKey: KeyObject;
  /** The issuer's private key (RSA or EC; the signature is SHA-256 with it). */
  readonly signingKey: KeyObject;
  readonly isCa: boolean;
  readonly keyUsage: readonly KeyUsage[];
  /** Extended key usage: server and/or client authentication. */
  readonly extendedKeyUsage?: readonly ('server' | 'client')[];
  /** Subject alternative names: IPs become iPAddress entries, the rest dNSName entries. */
  readonly names?: readonly string[];
}

/** Writes and signs an X.509 v3 certificate; returns its DER. */
export function writeCertificate(fields: CertificateFields): Buffer {
  const spki = fields.publicKey.export({ type: 'spki', format: 'der' });
  const keyBits = readSubjectPublicKeyBits(spki);
  const rsa = fields.signingKey.asymmetricKeyType === 'rsa';
  const algorithm = rsa ? sequence(oid('1.2.840.113549.1.1.11'), derNull) : sequence(oid('1.2.840.10045.4.3.2'));
  const extensions = [
    extension('2.5.29.19', fields.isCa ? sequence(derTrue, integer(0)) : sequence(), true),
    extension('2.5.29.15', keyUsageBits(fields.keyUsage), true),
    extension('2.5.29.14', octetString(createHash('sha1').update(keyBits).digest())),
  ];
  if (fields.extendedKeyUsage?.length) {
    const ids = { server: '1.3.6.1.5.5.7.3.1', client: '1.3.6.1.5.5.7.3.2' };
    extensions.push(extension('2.5.29.37', sequence(...fields.extendedKeyUsage.map((u) => oid(ids[u])))));
  }
  if (fields.names?.length) {
    const names = fields.names.map((n) => (isIPv4(n) || isIPv6(n) ? tlv(0x87, ipBytes(n)) : tlv(0x82, Buffer.from(n, 'latin1'))));
    extensions.push(extension('2.5.29.17', sequence(...names)));
  }
  const tbs = sequence(
    explicit(0, integer(2)),
    integer(fields.serial),
    algorithm,
    fields.issuer,
    sequence(time(fields.notBefore), time(fields.notAfter)),
    fields.subject,
    spki,
    explicit(3, sequence(...extensions)),
  );
  const signature = sign('sha256', tbs, fields.signingKey);
  return sequence(tbs, algorithm, bitString(signature));
}

interface Element {
  readonly tag: number;
  /** The whole element, header included. */
  readonly raw: Buffer;
  readonly content: Buffer;
}

function readElement(data: Buffer, offset: number): Element {
  const tag = data[offset]!;
  let len = data[offset + 1]!;
  let header = 2;
  if (len & 0x80) {
    const count = len & 0x7f;
    len = 0;
    for (let i = 0; i < count; i++) len = len * 256 + data[offset + 2 + i]!;
    header += count;
  }
  return { tag, raw: data.subarray(offset, offset + header + len), content: data.subarray(offset + header, offset + header + len) };
}

function children(content: Buffer): Element[] {
  const out: Element[] = [];
  for (let offset = 0; offset < content.length; ) {
    const element = readElement(content, offset);
    out.push(element);
    offset += element.raw.length;
  }
  return out;
}

/** The subject name of a DER certificate, as DER: what certificates it issues name as their issuer. */
export function readSubject(certDer: Buffer): Buffer {
  const tbs = children(readElement(certDer, 0).content)[0]!;
  const fields = children(tbs.content);
  // With an explicit version first: version, serial, signature, issuer, validity, subject.
  const subject = fields[fields[0]!.tag === 0xa0 ? 5 : 4];
  if (!subject) throw new Error('certificate has no subject');
  return subject.raw;
}

function readSubjectPublicKeyBits(spki: Buffer): Buffer {
  const bits = children(readElement(spki, 0).content)[1]!;
  return bits.content.subarray(1);
}
