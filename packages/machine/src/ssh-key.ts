import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ErrorKind, errnoCode, throwIfAborted } from '@berth/errors';
import { writeFileAtomic } from '@berth/fsutil';
import ssh2 from 'ssh2';
import { SshError } from './errors.js';

/** The SSH key types Berth makes: ed25519 by default, RSA for clouds or hosts that want it. */
export const SshKeyType = { Ed25519: 'ed25519', Rsa: 'rsa' } as const;
export type SshKeyType = (typeof SshKeyType)[keyof typeof SshKeyType];

/** Options of `SshKeyPair.generate`. */
export interface SshKeyGenerateOptions {
  /** Default ed25519. */
  readonly type?: SshKeyType;
  /** RSA modulus size, 2048 to 16384 (default 3072, OpenSSH's default). Ignored for ed25519. */
  readonly bits?: number;
  /** The comment at the end of the public key line (default none). */
  readonly comment?: string;
  readonly signal?: AbortSignal;
}

/** The usual file name of a private key of `type` (`id_ed25519`, `id_rsa`). */
export function sshKeyFileName(type: SshKeyType): string {
  return type === SshKeyType.Rsa ? 'id_rsa' : 'id_ed25519';
}

/**
 * An SSH key pair: the private key in OpenSSH format (what `ssh -i` and ssh2 read) and the
 * public key as an authorized_keys line (what clouds import: `ssh-ed25519 AAAA... comment`).
 */
export class SshKeyPair {
  readonly type: SshKeyType;
  readonly privateKey: string;
  readonly publicKey: string;

  private constructor(type: SshKeyType, privateKey: string, publicKey: string) {
    this.type = type;
    this.privateKey = privateKey;
    this.publicKey = publicKey;
  }

  /** Makes a new key pair. */
  static async generate(options: SshKeyGenerateOptions = {}): Promise<SshKeyPair> {
    const type = options.type ?? SshKeyType.Ed25519;
    if (!Object.values(SshKeyType).includes(type)) {
      throw new SshError(`unknown SSH key type ${JSON.stringify(type)} (want ed25519 or rsa)`, {
        code: 'ERR_SSH_KEY_TYPE',
        kind: ErrorKind.InvalidArgument,
      });
    }
    const bits = options.bits ?? 3072;
    if (type === SshKeyType.Rsa && (!Number.isInteger(bits) || bits < 2048 || bits > 16384)) {
      throw new SshError(`RSA key size ${bits} is out of range (2048 to 16384)`, { code: 'ERR_SSH_KEY_TYPE', kind: ErrorKind.InvalidArgument });
    }
    throwIfAborted(options.signal);
    const comment = options.comment ?? '';
    const pair = await new Promise<{ private: string; public: string }>((resolve, reject) => {
      const done = (err: Error | null, keys: { private: string; public: string }) => (err ? reject(err) : resolve(keys));
      if (type === SshKeyType.Rsa) ssh2.utils.generateKeyPair('rsa', { bits, comment }, done);
      else ssh2.utils.generateKeyPair('ed25519', { comment }, done);
    });
    return new SshKeyPair(type, pair.private, pair.public.trim());
  }

  /**
   * Reads a private key file (and its `.pub` when present; otherwise the public key is derived).
   * Throws when the file is missing, encrypted or not an ed25519/RSA key.
   */
  static async read(path: string, options: { readonly signal?: AbortSignal } = {}): Promise<SshKeyPair> {
    let privateKey: string;
    try {
      privateKey = await readFile(path, { encoding: 'utf8', signal: options.signal });
    } catch (err) {
      throw new SshError(`cannot read SSH key ${path}`, {
        code: 'ERR_SSH_KEY_READ',
        kind: errnoCode(err) === 'ENOENT' ? ErrorKind.NotFound : ErrorKind.PermissionDenied,
        cause: err,
      });
    }
    const parsed = ssh2.utils.parseKey(privateKey);
    const key = Array.isArray(parsed) ? parsed[0] : parsed;
    if (key === undefined || key instanceof Error || !key.isPrivateKey()) {
      throw new SshError(`${path} is not an unencrypted SSH private key`, {
        code: 'ERR_SSH_KEY_READ',
        kind: ErrorKind.InvalidArgument,
        cause: key instanceof Error ? key : undefined,
      });
    }
    const type = key.type === 'ssh-ed25519' ? SshKeyType.Ed25519 : key.type === 'ssh-rsa' ? SshKeyType.Rsa : undefined;
    if (type === undefined) {
      throw new SshError(`${path} holds a ${key.type} key; Berth uses ed25519 or RSA keys`, {
        code: 'ERR_SSH_KEY_TYPE',
        kind: ErrorKind.InvalidArgument,
      });
    }
    const derived = `${key.type} ${key.getPublicSSH().toString('base64')}${key.comment ? ` ${key.comment}` : ''}`;
    const publicKey = await readFile(`${path}.pub`, 'utf8').then(
      (text) => text.trim(),
      () => derived,
    );
    return new SshKeyPair(type, privateKey, publicKey);
  }

  /** Writes the private key to `path` (mode 0600) and the public key to `path.pub`, atomically. */
  async write(path: string): Promise<void> {
    await writeFileAtomic(path, this.privateKey, { mode: 0o600 });
    await writeFileAtomic(`${path}.pub`, this.publicKey + '\n', { mode: 0o644 });
  }

  /** OpenSSH's fingerprint of the public key: `SHA256:` and unpadded base64. */
  fingerprint(): string {
    return sshFingerprint(Buffer.from(this.publicKey.split(/\s+/)[1] ?? '', 'base64'));
  }
}

/** OpenSSH's SHA256 fingerprint of a public key blob (the wire-format key). */
export function sshFingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}
