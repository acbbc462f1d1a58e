/** The kinds of tar entries Berth reads and writes. */
export const TarEntryType = {
  File: 'file',
  Directory: 'directory',
  Symlink: 'symlink',
  Hardlink: 'hardlink',
  CharDevice: 'char-device',
  BlockDevice: 'block-device',
  Fifo: 'fifo',
} as const;
export type TarEntryType = (typeof TarEntryType)[keyof typeof TarEntryType];

/**
 * One entry of a tar stream, with its PAX extensions applied: long names, large sizes and
 * ids, fractional times, and extended attributes (`SCHILY.xattr.*`, values kept as bytes).
 */
export interface TarEntry {
  /** The name as archived (`./etc/passwd`, `usr/bin/`), not cleaned. */
  readonly path: string;
  readonly type: TarEntryType;
  /** Bytes of content that follow (files only). */
  readonly size: number;
  /** Permission bits with setuid, setgid and sticky (`0o7777`). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly uname?: string;
  readonly gname?: string;
  /** Seconds since the epoch, possibly fractional. */
  readonly mtime: number;
  readonly atime?: number;
  /** The target of a symlink, or the archived name a hardlink links to. */
  readonly linkpath?: string;
  readonly devmajor?: number;
  readonly devminor?: number;
  readonly xattrs?: ReadonlyMap<string, Buffer>;
}
