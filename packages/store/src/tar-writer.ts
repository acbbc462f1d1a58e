import { Readable } from 'node:stream';
// tar's Header alone: the package's index loads all of node-tar (pack, unpack, zlib, fs) at start.
import { Header, type HeaderData } from 'tar/header';
import { ErrorKind } from '@berth/errors';
import { StoreError, StoreErrorCode } from './errors.js';
import { TarEntryType, type TarEntry } from './tar-entry.js';

/** An entry to write and its content (files only), as bytes or chunks adding up to `entry.size`. */
export interface TarInput {
  readonly entry: TarEntry;
  readonly body?: Buffer | AsyncIterable<Buffer> | Iterable<Buffer>;
}

const block = 512;
const zeros = Buffer.alloc(2 * block);

const headerType: Record<TarEntryType, NonNullable<HeaderData['type']>> = {
  [TarEntryType.File]: 'File',
  [TarEntryType.Directory]: 'Directory',
  [TarEntryType.Symlink]: 'SymbolicLink',
  [TarEntryType.Hardlink]: 'Link',
  [TarEntryType.CharDevice]: 'CharacterDevice',
  [TarEntryType.BlockDevice]: 'BlockDevice',
  [TarEntryType.Fifo]: 'FIFO',
};

function paxRecord(key: string, value: Buffer): Buffer {
  // The length counts itself: find the number of digits that makes it consistent.
  const rest = Buffer.byteLength(key) + value.length + 3;
  let length = rest + String(rest).length;
  if (String(length).length !== String(rest).length) length = rest + String(length).length;
  return Buffer.concat([Buffer.from(`${length} ${key}=`), value, Buffer.from('\n')]);
}

const isAscii = (s: string | undefined) => s === undefined || /^[\x20-\x7e]*$/.test(s);

/**
 * The header blocks of one entry: a PAX extended header when a field does not fit ustar or
 * the entry has xattrs (written as `SCHILY.xattr.<name>`, as GNU tar and Go do), then the
 * ustar header that node-tar's Header encodes.
 */
export function encodeTarHeader(entry: TarEntry): Buffer {
  const data: HeaderData = {
    path: entry.path,
    mode: entry.mode & 0o7777,
    uid: entry.uid,
    gid: entry.gid,
    size: entry.type === TarEntryType.File ? entry.size : 0,
    mtime: new Date(Math.floor(entry.mtime) * 1000),
    type: headerType[entry.type],
    ...(entry.linkpath !== undefined ? { linkpath: entry.linkpath } : {}),
    uname: entry.uname ?? '',
    gname: entry.gname ?? '',
    devmaj: entry.devmajor ?? 0,
    devmin: entry.devminor ?? 0,
  };
  const header = new Header(data);
  const main = Buffer.alloc(block);
  const needPax = header.encode(main, 0);
  if (!needPax && !entry.xattrs?.size) return main;

  const records: Buffer[] = [paxRecord('path', Buffer.from(entry.path))];
  if (entry.linkpath !== undefined) records.push(paxRecord('linkpath', Buffer.from(entry.linkpath)));
  if (data.size! > 0o77777777777) records.push(paxRecord('size', Buffer.from(String(data.size))));
  if (entry.uid > 0o7777777) records.push(paxRecord('uid', Buffer.from(String(entry.uid))));
  if (entry.gid > 0o7777777) records.push(paxRecord('gid', Buffer.from(String(entry.gid))));
  if (!isAscii(entry.uname) || (entry.uname?.length ?? 0) > 31) records.push(paxRecord('uname', Buffer.from(entry.uname!)));
  if (!isAscii(entry.gname) || (entry.gname?.length ?? 0) > 31) records.push(paxRecord('gname', Buffer.from(entry.gname!)));
  for (const [name, value] of entry.xattrs ?? []) records.push(paxRecord(`SCHILY.xattr.${name}`, value));
  const body = Buffer.concat(records);
  const paxHeader = Buffer.alloc(block);
  const base = entry.path.replace(/\/+$/, '').split('/').pop() ?? '';
  new Header({
    path: `PaxHeaders.0/${base}`.slice(0, 99),
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: body.length,
    mtime: data.mtime!,
    type: 'ExtendedHeader',
  }).encode(paxHeader, 0);
  return Buffer.concat([paxHeader, body, Buffer.alloc((block - (body.length % block)) % block), main]);
}

async function* encodeTar(source: AsyncIterable<TarInput> | Iterable<TarInput>): AsyncGenerator<Buffer> {
  for await (const { entry, body } of source) {
    yield encodeTarHeader(entry);
    const size = entry.type === TarEntryType.File ? entry.size : 0;
    let written = 0;
    if (body !== undefined && size > 0) {
      if (Buffer.isBuffer(body)) {
        written = body.length;
        yield body;
      } else {
        for await (const chunk of body) {
          written += chunk.length;
          if (written > size) break;
          yield chunk;
        }
      }
    }
    if (written !== size) {
      throw new StoreError(`tar entry ${entry.path}: content is ${written} bytes, header says ${size} (did the file change while archived?)`, {
        code: StoreErrorCode.InvalidTar,
        kind: ErrorKind.Conflict,
      });
    }
    const pad = (block - (size % block)) % block;
    if (pad) yield zeros.subarray(0, pad);
  }
  yield zeros;
}

/** A tar stream of the given entries, ended by the two zero blocks of the format. */
export function packTar(source: AsyncIterable<TarInput> | Iterable<TarInput>): Readable {
  return Readable.from(encodeTar(source), { objectMode: false, highWaterMark: 1 << 20 });
}
