import { Writable } from 'node:stream';
// tar's Header alone: the package's index loads all of node-tar (pack, unpack, zlib, fs) at start.
import { Header } from 'tar/header';
import { ErrorKind } from '@berth/errors';
import { StoreError, StoreErrorCode } from './errors.js';
import { TarEntryType, type TarEntry } from './tar-entry.js';

/** Receives the content of one entry. `write` and `end` may return a promise to apply backpressure. */
export interface TarEntrySink {
  write(chunk: Buffer): void | Promise<void>;
  end(): void | Promise<void>;
}

/**
 * Called for each entry in order; returns where its content goes, or undefined to skip it.
 * Returning synchronously keeps the reader on its fast path.
 */
export type TarEntryHandler = (entry: TarEntry) => TarEntrySink | undefined | Promise<TarEntrySink | undefined>;

/** Options of a TarReader. */
export interface TarReaderOptions {
  /** Largest PAX or GNU long-name record accepted (default 1 MiB): a bound on memory. */
  readonly maxMetaSize?: number;
}

const block = 512;

const typeByFlag: Record<string, TarEntryType> = {
  '0': TarEntryType.File,
  '': TarEntryType.File,
  '7': TarEntryType.File,
  '1': TarEntryType.Hardlink,
  '2': TarEntryType.Symlink,
  '3': TarEntryType.CharDevice,
  '4': TarEntryType.BlockDevice,
  '5': TarEntryType.Directory,
  '6': TarEntryType.Fifo,
};

/** The PAX records of a header, parsed byte-wise: values are bytes, so binary xattrs survive. */
interface PaxRecords {
  fields: Map<string, string>;
  xattrs: Map<string, Buffer>;
}

function invalidTar(message: string): StoreError {
  return new StoreError(`invalid tar stream: ${message}`, { code: StoreErrorCode.InvalidTar, kind: ErrorKind.InvalidArgument });
}

function parsePax(body: Buffer, into: PaxRecords): void {
  let at = 0;
  while (at < body.length) {
    if (body[at] === 0) break;
    const space = body.indexOf(0x20, at);
    if (space < 0) throw invalidTar('PAX record without a length');
    const length = Number(body.toString('latin1', at, space));
    if (!Number.isSafeInteger(length) || length <= space - at || at + length > body.length) throw invalidTar('PAX record length out of range');
    const record = body.subarray(space + 1, at + length - 1);
    const eq = record.indexOf(0x3d);
    if (eq < 0) throw invalidTar('PAX record without =');
    const key = record.toString('utf8', 0, eq);
    const value = record.subarray(eq + 1);
    if (key.startsWith('SCHILY.xattr.')) {
      into.xattrs.set(key.slice('SCHILY.xattr.'.length), Buffer.from(value));
    } else if (key.startsWith('LIBARCHIVE.xattr.')) {
      into.xattrs.set(decodeURIComponent(key.slice('LIBARCHIVE.xattr.'.length)), Buffer.from(value.toString('latin1'), 'base64'));
    } else {
      into.fields.set(key, value.toString('utf8'));
    }
    at += length;
  }
}

function cString(buf: Buffer): string {
  const nul = buf.indexOf(0);
  return buf.toString('utf8', 0, nul < 0 ? buf.length : nul);
}

type State = 'header' | 'body' | 'meta' | 'skip' | 'padding' | 'end';

/**
 * A streaming tar parser (ustar, PAX and GNU long names) that hands each entry to a handler
 * and its content, as slices of the input without copies, to the sink the handler returns.
 * node-tar's Header decodes the 512-byte blocks; the extension records are parsed here because
 * node-tar reads PAX values as text and keeps no xattrs.
 */
export class TarReader extends Writable {
  readonly #handler: TarEntryHandler;
  readonly #maxMeta: number;
  #state: State = 'header';
  #pending: Buffer | undefined;
  #remaining = 0;
  #padding = 0;
  #sink: TarEntrySink | undefined;
  #meta: Buffer[] = [];
  #metaType = '';
  #pax: PaxRecords = { fields: new Map(), xattrs: new Map() };
  #globalPax = new Map<string, string>();
  #longName: string | undefined;
  #longLink: string | undefined;
  #zeroBlocks = 0;
  #entries = 0;

  constructor(handler: TarEntryHandler, options: TarReaderOptions = {}) {
    super({ highWaterMark: 1 << 20 });
    this.#handler = handler;
    this.#maxMeta = options.maxMetaSize ?? 1 << 20;
  }

  /** Entries seen so far. */
  get entries(): number {
    return this.#entries;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#consume(chunk).then(
      () => callback(),
      (err: Error) => callback(err),
    );
  }

  override _final(callback: (error?: Error | null) => void): void {
    const between = this.#state === 'header' && !this.#pending;
    // Like GNU tar, accept a stream whose end-of-archive blocks are missing after a whole entry.
    if (this.#state === 'end' || (between && (this.#entries > 0 || this.#zeroBlocks > 0))) callback();
    else callback(invalidTar(between ? 'empty stream' : `stream ended inside an entry (${this.#state})`));
  }

  async #consume(input: Buffer): Promise<void> {
    let chunk = input;
    if (this.#pending) {
      chunk = Buffer.concat([this.#pending, chunk]);
      this.#pending = undefined;
    }
    let at = 0;
    while (at < chunk.length) {
      switch (this.#state) {
        case 'end':
          return;
        case 'header': {
          if (chunk.length - at < block) {
            this.#pending = Buffer.from(chunk.subarray(at));
            return;
          }
          const header = chunk.subarray(at, at + block);
          at += block;
          const started = this.#header(header);
          if (started) await started;
          break;
        }
        case 'body': {
          const n = Math.min(this.#remaining, chunk.length - at);
          if (this.#sink) {
            const w = this.#sink.write(chunk.subarray(at, at + n));
            if (w) await w;
          }
          at += n;
          this.#remaining -= n;
          if (this.#remaining === 0) await this.#endEntry();
          break;
        }
        case 'skip': {
          const n = Math.min(this.#remaining, chunk.length - at);
          at += n;
          this.#remaining -= n;
          if (this.#remaining === 0) this.#state = this.#padding ? 'padding' : 'header';
          break;
        }
        case 'meta': {
          const n = Math.min(this.#remaining, chunk.length - at);
          this.#meta.push(Buffer.from(chunk.subarray(at, at + n)));
          at += n;
          this.#remaining -= n;
          if (this.#remaining === 0) {
            this.#applyMeta(Buffer.concat(this.#meta));
            this.#meta = [];
            this.#state = this.#padding ? 'padding' : 'header';
          }
          break;
        }
        case 'padding': {
          const n = Math.min(this.#padding, chunk.length - at);
          at += n;
          this.#padding -= n;
          if (this.#padding === 0) this.#state = 'header';
          break;
        }
      }
    }
  }

  #header(buf: Buffer): Promise<void> | undefined {
    if (buf.every((b) => b === 0)) {
      if (++this.#zeroBlocks === 2) this.#state = 'end';
      return undefined;
    }
    this.#zeroBlocks = 0;
    const header = new Header(buf);
    if (!header.cksumValid) throw invalidTar(`bad header checksum after ${this.#entries} entries`);
    const flag = String.fromCharCode(buf[156]!).replace('\0', '');
    const size = header.size ?? 0;
    const pax = this.#pax.fields;
    const bodySize = pax.has('size') && typeByFlag[flag] !== undefined ? Number(pax.get('size')) : size;
    if (!Number.isSafeInteger(bodySize) || bodySize < 0) throw invalidTar(`bad entry size ${pax.get('size') ?? size}`);
    this.#padding = (block - (bodySize % block)) % block;

    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      if (bodySize > this.#maxMeta) throw invalidTar(`extension record of ${bodySize} bytes exceeds ${this.#maxMeta}`);
      this.#metaType = flag;
      this.#remaining = bodySize;
      this.#state = bodySize ? 'meta' : 'header';
      if (!bodySize) this.#applyMeta(Buffer.alloc(0));
      return undefined;
    }
    let type = typeByFlag[flag];
    if (type === TarEntryType.File && flag !== '7' && (header.path ?? '').endsWith('/')) type = TarEntryType.Directory;
    if (type === undefined) {
      // Vendor records (Solaris ACLs, GNU dump dirs, sparse files...): skipped with their data.
      if (flag === 'S') throw invalidTar(`sparse file ${header.path ?? ''} is not supported`);
      this.#resetExtensions();
      this.#remaining = bodySize;
      this.#state = bodySize ? 'skip' : 'header';
      return undefined;
    }

    const num = (key: string, fallback: number | undefined): number | undefined => {
      const v = pax.get(key) ?? this.#globalPax.get(key);
      return v !== undefined && v !== '' && Number.isFinite(Number(v)) ? Number(v) : fallback;
    };
    const str = (key: string, fallback: string | undefined): string | undefined => pax.get(key) ?? this.#globalPax.get(key) ?? fallback;
    const path = str('path', this.#longName ?? header.path ?? '')!;
    const linkRaw = type === TarEntryType.Symlink || type === TarEntryType.Hardlink ? str('linkpath', this.#longLink ?? cString(buf.subarray(157, 257))) : undefined;
    const entry: TarEntry = {
      path,
      type,
      size: type === TarEntryType.File ? bodySize : 0,
      mode: (header.mode ?? 0o644) & 0o7777,
      uid: num('uid', header.uid ?? 0)!,
      gid: num('gid', header.gid ?? 0)!,
      ...(str('uname', header.uname) ? { uname: str('uname', header.uname)! } : {}),
      ...(str('gname', header.gname) ? { gname: str('gname', header.gname)! } : {}),
      mtime: num('mtime', header.mtime ? header.mtime.getTime() / 1000 : 0)!,
      ...(num('atime', undefined) !== undefined ? { atime: num('atime', undefined)! } : {}),
      ...(linkRaw !== undefined ? { linkpath: linkRaw } : {}),
      ...(type === TarEntryType.CharDevice || type === TarEntryType.BlockDevice ? { devmajor: header.devmaj, devminor: header.devmin } : {}),
      ...(this.#pax.xattrs.size ? { xattrs: this.#pax.xattrs } : {}),
    };
    this.#resetExtensions();
    this.#entries++;
    // Directory and link entries carry no content even when a writer put a size in them.
    this.#remaining = type === TarEntryType.File ? bodySize : 0;
    const skipBytes = type === TarEntryType.File ? 0 : bodySize;

    const r = this.#handler(entry);
    if (r instanceof Promise) {
      return r.then((sink) => this.#startBody(sink, skipBytes));
    }
    const done = this.#startBody(r, skipBytes);
    return done;
  }

  #startBody(sink: TarEntrySink | undefined, skipBytes: number): Promise<void> | undefined {
    this.#sink = sink;
    if (this.#remaining > 0) {
      this.#state = 'body';
      return undefined;
    }
    if (skipBytes > 0) {
      this.#remaining = skipBytes;
      this.#state = 'skip';
      const end = sink?.end();
      this.#sink = undefined;
      return end instanceof Promise ? end : undefined;
    }
    return this.#endEntry();
  }

  #endEntry(): Promise<void> | undefined {
    const sink = this.#sink;
    this.#sink = undefined;
    this.#state = this.#padding ? 'padding' : 'header';
    const end = sink?.end();
    return end instanceof Promise ? end : undefined;
  }

  #applyMeta(body: Buffer): void {
    switch (this.#metaType) {
      case 'x':
        parsePax(body, this.#pax);
        break;
      case 'g': {
        const global: PaxRecords = { fields: new Map(), xattrs: new Map() };
        parsePax(body, global);
        for (const [k, v] of global.fields) this.#globalPax.set(k, v);
        break;
      }
      case 'L':
        this.#longName = cString(body);
        break;
      case 'K':
        this.#longLink = cString(body);
        break;
    }
  }

  #resetExtensions(): void {
    this.#pax = { fields: new Map(), xattrs: new Map() };
    this.#longName = undefined;
    this.#longLink = undefined;
  }
}
