import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { access } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { ErrorKind } from '@berth/errors';
import { SnapshotError, SnapshotErrorCode } from './errors.js';

/** Where the build puts the helper: `dist/native/berth-fsops`, beside both `src/` and `dist/`. */
export const defaultFsOpsPath = fileURLToPath(new URL('../dist/native/berth-fsops', import.meta.url));

const Op = { Mknod: 1, SetXattr: 2, ListXattrs: 3, GetXattr: 4 } as const;

const errnoNames = new Map<number, string>(Object.entries(osConstants.errno).map(([name, n]) => [n, name]));

/** The errno name (`ENOENT`) a FsOpsError carries for a failed call. */
export class FsOpsError extends SnapshotError {
  readonly errno: string;

  constructor(message: string, errno: string) {
    super(message, { code: SnapshotErrorCode.FsOps, kind: errno === 'EPERM' || errno === 'EACCES' ? ErrorKind.PermissionDenied : ErrorKind.Internal });
    this.errno = errno;
  }
}

interface Pending {
  resolve(data: Buffer): void;
  reject(err: Error): void;
  what: string;
}

function frameString(value: string | Buffer): Buffer[] {
  const bytes = typeof value === 'string' ? Buffer.from(value) : value;
  const len = Buffer.alloc(4);
  len.writeUInt32LE(bytes.length);
  return [len, bytes];
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

/** What `mknod` creates. */
export interface NodeSpec {
  /** `S_IFCHR`, `S_IFBLK` or `S_IFIFO` with the permission bits. */
  readonly mode: number;
  readonly major: number;
  readonly minor: number;
  readonly uid: number;
  readonly gid: number;
  /** Seconds since the epoch (fractions kept to the nanosecond). */
  readonly mtime: number;
}

/**
 * A session with `berth-fsops`, the small C helper that makes the calls Node has no API for:
 * mknod (device nodes, fifos, overlay whiteouts) and the l*xattr family. Requests are
 * pipelined over a pipe and answered in order; one session serves one unpack or diff.
 */
export class FsOps {
  readonly #child: ChildProcessByStdio<Writable, Readable, null>;
  readonly #pending: Pending[] = [];
  #buffer: Buffer = Buffer.alloc(0);
  #failure: Error | undefined;
  #closed: Promise<void>;

  private constructor(path: string) {
    this.#child = spawn(path, [], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.#closed = new Promise((resolve) => this.#child.once('close', () => resolve()));
    this.#child.stdout.on('data', (chunk: Buffer) => this.#receive(chunk));
    this.#child.once('error', (err) => this.#fail(new SnapshotError(`cannot run ${path}`, { code: SnapshotErrorCode.FsOps, kind: ErrorKind.Unavailable, cause: err })));
    this.#child.once('exit', (code, signal) => {
      if (this.#pending.length) this.#fail(new SnapshotError(`${path} exited (${signal ?? code}) with requests pending`, { code: SnapshotErrorCode.FsOps, kind: ErrorKind.Internal }));
    });
    this.#child.stdin.on('error', (err) => this.#fail(new SnapshotError(`${path} stopped reading requests`, { code: SnapshotErrorCode.FsOps, kind: ErrorKind.Internal, cause: err })));
  }

  /** Starts the helper at `path` (default: the one the package build made). */
  static async start(path: string = defaultFsOpsPath): Promise<FsOps> {
    try {
      await access(path, fsConstants.X_OK);
    } catch (err) {
      throw new SnapshotError(`the berth-fsops helper is missing at ${path}; build it with \`npx nx run @berth/snapshot:build\``, {
        code: SnapshotErrorCode.FsOps,
        kind: ErrorKind.Unavailable,
        cause: err,
      });
    }
    return new FsOps(path);
  }

  #fail(err: Error): void {
    this.#failure ??= err;
    for (const p of this.#pending.splice(0)) p.reject(err);
  }

  #receive(chunk: Buffer): void {
    this.#buffer = this.#buffer.length ? Buffer.concat([this.#buffer, chunk]) : chunk;
    while (this.#buffer.length >= 8) {
      const status = this.#buffer.readInt32LE(0);
      const length = this.#buffer.readUInt32LE(4);
      if (this.#buffer.length < 8 + length) break;
      const data = this.#buffer.subarray(8, 8 + length);
      this.#buffer = this.#buffer.subarray(8 + length);
      const pending = this.#pending.shift();
      if (!pending) continue;
      if (status < 0) {
        const errno = errnoNames.get(-status) ?? `errno ${-status}`;
        pending.reject(new FsOpsError(`${pending.what}: ${errno}`, errno));
      } else {
        pending.resolve(Buffer.from(data));
      }
    }
  }

  #call(op: number, fields: Buffer[], what: string): Promise<Buffer> {
    if (this.#failure) return Promise.reject(this.#failure);
    const body = Buffer.concat([Buffer.from([op]), ...fields]);
    return new Promise((resolve, reject) => {
      this.#pending.push({ resolve, reject, what });
      this.#child.stdin.write(Buffer.concat([u32(body.length), body]));
    });
  }

  /** mknod, then lchown, chmod and the times, as one call. */
  async mknod(path: string, spec: NodeSpec): Promise<void> {
    const sec = Math.floor(spec.mtime);
    const nsec = Math.round((spec.mtime - sec) * 1e9) % 1e9;
    const i64 = Buffer.alloc(8);
    i64.writeBigInt64LE(BigInt(sec));
    await this.#call(
      Op.Mknod,
      [...frameString(path), u32(spec.mode), u32(spec.major), u32(spec.minor), u32(spec.uid), u32(spec.gid), i64, u32(nsec)],
      `mknod ${path}`,
    );
  }

  /** lsetxattr: sets an attribute on `path` itself, never on a symlink's target. */
  async setXattr(path: string, name: string, value: Buffer): Promise<void> {
    await this.#call(Op.SetXattr, [...frameString(path), ...frameString(name), ...frameString(value)], `setxattr ${name} on ${path}`);
  }

  /** Every extended attribute of `path` (not following a symlink); empty where the file system has none. */
  async listXattrs(path: string): Promise<Map<string, Buffer>> {
    const data = await this.#call(Op.ListXattrs, frameString(path), `listxattr ${path}`);
    const out = new Map<string, Buffer>();
    const count = data.readUInt32LE(0);
    let at = 4;
    for (let i = 0; i < count; i++) {
      const nameLen = data.readUInt32LE(at);
      const name = data.toString('utf8', at + 4, at + 4 + nameLen);
      at += 4 + nameLen;
      const valueLen = data.readUInt32LE(at);
      out.set(name, data.subarray(at + 4, at + 4 + valueLen));
      at += 4 + valueLen;
    }
    return out;
  }

  /** One attribute of `path`, or undefined when it has none of that name. */
  async getXattr(path: string, name: string): Promise<Buffer | undefined> {
    try {
      return await this.#call(Op.GetXattr, [...frameString(path), ...frameString(name)], `getxattr ${name} on ${path}`);
    } catch (err) {
      if (err instanceof FsOpsError && (err.errno === 'ENODATA' || err.errno === 'ENOTSUP')) return undefined;
      throw err;
    }
  }

  /** Ends the session once every request has been answered. */
  async close(): Promise<void> {
    this.#child.stdin.end();
    await this.#closed;
  }
}
