/**
 * A minimal ISO 9660 image holding a few files in its root directory: what cloud-init's
 * NoCloud data source reads from a CD labelled `cidata`. Written here so the driver needs no
 * genisoimage/xorriso on the user's machine (macOS, Windows). Names are stored as
 * `USER-DATA;1`; Linux presents them lower-cased without the version, as cloud-init expects.
 */

const sector = 2048;

export interface IsoFile {
  /** The name in the root directory (`user-data`); letters, digits, `-` and `_`. */
  readonly name: string;
  readonly data: Buffer;
}

function both16(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt16LE(value, 0);
  b.writeUInt16BE(value, 2);
  return b;
}

function both32(value: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(value, 0);
  b.writeUInt32BE(value, 4);
  return b;
}

function padded(text: string, length: number): Buffer {
  return Buffer.from(text.padEnd(length, ' ').slice(0, length), 'ascii');
}

// The 7-byte directory record time.
function recordTime(date: Date): Buffer {
  return Buffer.from([date.getUTCFullYear() - 1900, date.getUTCMonth() + 1, date.getUTCDate(), date.getUTCHours(), date.getUTCMinutes(), date.getUTCSeconds(), 0]);
}

// The 17-byte volume descriptor time: YYYYMMDDHHMMSScc and a zero GMT offset.
function volumeTime(date: Date): Buffer {
  const digits = date.toISOString().replace(/[-T:]/g, '').slice(0, 14) + '00';
  return Buffer.concat([Buffer.from(digits, 'ascii'), Buffer.from([0])]);
}

function directoryRecord(name: Buffer, extent: number, size: number, directory: boolean, date: Date): Buffer {
  const length = 33 + name.length + (name.length % 2 === 0 ? 1 : 0);
  const record = Buffer.alloc(length);
  record[0] = length;
  both32(extent).copy(record, 2);
  both32(size).copy(record, 10);
  recordTime(date).copy(record, 18);
  record[25] = directory ? 2 : 0;
  both16(1).copy(record, 28);
  record[32] = name.length;
  name.copy(record, 33);
  return record;
}

/** The ISO image with `files` in its root directory and volume label `label` (default `cidata`). */
export function makeSeedIso(files: readonly IsoFile[], label = 'cidata', date = new Date()): Buffer {
  for (const file of files) {
    if (!/^[A-Za-z0-9_-]{1,30}$/.test(file.name)) throw new RangeError(`ISO file name ${JSON.stringify(file.name)} is not letters, digits, - or _`);
  }
  const rootSector = 20;
  let next = rootSector + 1;
  const placed = files.map((file) => {
    const at = next;
    next += Math.max(1, Math.ceil(file.data.length / sector));
    return { ...file, at };
  });
  const totalSectors = next;
  const image = Buffer.alloc(totalSectors * sector);

  const root = [
    directoryRecord(Buffer.from([0]), rootSector, sector, true, date),
    directoryRecord(Buffer.from([1]), rootSector, sector, true, date),
    ...placed.map((f) => directoryRecord(Buffer.from(`${f.name.toUpperCase()};1`, 'ascii'), f.at, f.data.length, false, date)),
  ];
  const rootBytes = Buffer.concat(root);
  if (rootBytes.length > sector) throw new RangeError('too many files for a one-sector root directory');
  rootBytes.copy(image, rootSector * sector);
  for (const f of placed) f.data.copy(image, f.at * sector);

  // Path tables (little- and big-endian): one entry, the root.
  const pathTable = (littleEndian: boolean): Buffer => {
    const entry = Buffer.alloc(10);
    entry[0] = 1;
    if (littleEndian) {
      entry.writeUInt32LE(rootSector, 2);
      entry.writeUInt16LE(1, 6);
    } else {
      entry.writeUInt32BE(rootSector, 2);
      entry.writeUInt16BE(1, 6);
    }
    return entry;
  };
  pathTable(true).copy(image, 18 * sector);
  pathTable(false).copy(image, 19 * sector);

  const pvd = Buffer.alloc(sector);
  pvd[0] = 1;
  pvd.write('CD001', 1, 'ascii');
  pvd[6] = 1;
  padded('LINUX', 32).copy(pvd, 8);
  padded(label, 32).copy(pvd, 40);
  both32(totalSectors).copy(pvd, 80);
  both16(1).copy(pvd, 120);
  both16(1).copy(pvd, 124);
  both16(sector).copy(pvd, 128);
  both32(10).copy(pvd, 132);
  pvd.writeUInt32LE(18, 140);
  pvd.writeUInt32BE(19, 148);
  directoryRecord(Buffer.from([0]), rootSector, sector, true, date).copy(pvd, 156);
  padded('', 128).copy(pvd, 190);
  padded('', 128).copy(pvd, 318);
  padded('', 128).copy(pvd, 446);
  padded('BERTH MACHINE', 128).copy(pvd, 574);
  padded('', 37 * 3).copy(pvd, 702);
  volumeTime(date).copy(pvd, 813);
  volumeTime(date).copy(pvd, 830);
  Buffer.concat([Buffer.from('0000000000000000', 'ascii'), Buffer.from([0])]).copy(pvd, 847);
  volumeTime(date).copy(pvd, 864);
  pvd[881] = 1;
  pvd.copy(image, 16 * sector);

  const terminator = Buffer.alloc(sector);
  terminator[0] = 255;
  terminator.write('CD001', 1, 'ascii');
  terminator[6] = 1;
  terminator.copy(image, 17 * sector);
  return image;
}
