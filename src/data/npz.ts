// A minimal reader for NumPy .npz files: zip archives (stored or deflated entries, zip64 as
// numpy writes it) of .npy arrays. Reads by position through a file descriptor, so it never
// holds more than the one entry it is asked for.
import * as fs from 'node:fs';
import { inflateRawSync } from 'node:zlib';
import { DataError } from '../errors.js';

export interface NpyArray {
  /** NumPy dtype string, e.g. `|u1` or `<i8`. */
  descr: string;
  shape: number[];
  fortranOrder: boolean;
  /** The raw element bytes, C or Fortran order as `fortranOrder` says. */
  data: Uint8Array;
}

export interface ZipEntry {
  name: string;
  method: number;
  compressedSize: number;
  size: number;
  localOffset: number;
}

const NPY_MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/** Parses one .npy file held in memory. */
export function parseNpy(buf: Uint8Array, what = 'npy'): NpyArray {
  if (buf.length < 10 || NPY_MAGIC.some((b, i) => buf[i] !== b)) {
    throw new DataError(`${what}: not a .npy array (missing the \\x93NUMPY magic)`);
  }
  const major = buf[6]!;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let headerLen: number;
  let start: number;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    start = 10;
  } else if (major === 2 || major === 3) {
    headerLen = view.getUint32(8, true);
    start = 12;
  } else {
    throw new DataError(`${what}: unsupported .npy format version ${major}`);
  }
  const header = Buffer.from(buf.buffer, buf.byteOffset + start, Math.min(headerLen, buf.length - start)).toString('latin1');
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new DataError(`${what}: cannot parse the .npy header ${JSON.stringify(header.trim())}`);
  }
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => Number(s.replace(/L$/, '')));
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new DataError(`${what}: bad shape (${shapeText}) in the .npy header`);
  }
  const itemSize = Number(/\d+$/.exec(descr)?.[0] ?? NaN);
  const count = shape.reduce((a, b) => a * b, 1);
  const dataStart = start + headerLen;
  if (!Number.isFinite(itemSize) || buf.length - dataStart < count * itemSize) {
    throw new DataError(
      `${what}: holds ${buf.length - dataStart} data bytes, but shape (${shape.join(', ')}) of ${descr} needs ${count * itemSize}`,
    );
  }
  return { descr, shape, fortranOrder: fortran === 'True', data: buf.subarray(dataStart, dataStart + count * itemSize) };
}

function readAt(fd: number, pos: number, len: number): Buffer {
  const buf = Buffer.allocUnsafe(len);
  let done = 0;
  while (done < len) {
    // readSync takes at most 2 GiB at once.
    const n = fs.readSync(fd, buf, done, Math.min(len - done, 1 << 30), pos + done);
    if (n === 0) break;
    done += n;
  }
  if (done < len) throw new DataError(`unexpected end of file at byte ${pos + done}`);
  return buf;
}

function u64(b: Buffer, off: number): number {
  return Number(b.readBigUInt64LE(off));
}

/** The entries of a zip archive, from its central directory. */
export function listZip(file: string): ZipEntry[] {
  const fd = fs.openSync(file, 'r');
  try {
    return listZipFd(fd, file);
  } finally {
    fs.closeSync(fd);
  }
}

function listZipFd(fd: number, file: string): ZipEntry[] {
  const size = fs.fstatSync(fd).size;
  const tailLen = Math.min(size, 22 + 0xffff);
  const tail = readAt(fd, size - tailLen, tailLen);
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new DataError(`${file}: not a zip/npz archive (no end-of-central-directory record)`);
  let count = tail.readUInt16LE(eocd + 10);
  let cdSize = tail.readUInt32LE(eocd + 12);
  let cdOffset = tail.readUInt32LE(eocd + 16);
  const locAt = eocd - 20;
  if (locAt >= 0 && tail.readUInt32LE(locAt) === 0x07064b50) {
    const z = readAt(fd, u64(tail, locAt + 8), 56);
    if (z.readUInt32LE(0) !== 0x06064b50) throw new DataError(`${file}: corrupt zip64 end-of-central-directory record`);
    count = u64(z, 32);
    cdSize = u64(z, 40);
    cdOffset = u64(z, 48);
  }
  const cd = readAt(fd, cdOffset, cdSize);
  const entries: ZipEntry[] = [];
  let p = 0;
  for (let e = 0; e < count; e++) {
    if (cd.readUInt32LE(p) !== 0x02014b50) throw new DataError(`${file}: corrupt zip central directory`);
    const method = cd.readUInt16LE(p + 10);
    let compressedSize = cd.readUInt32LE(p + 20);
    let size = cd.readUInt32LE(p + 24);
    const nameLen = cd.readUInt16LE(p + 28);
    const extraLen = cd.readUInt16LE(p + 30);
    const commentLen = cd.readUInt16LE(p + 32);
    let localOffset = cd.readUInt32LE(p + 42);
    const name = cd.toString('utf8', p + 46, p + 46 + nameLen);
    // A zip64 extra field carries, in this order, whichever of the sizes and offset overflowed.
    let x = p + 46 + nameLen;
    const xEnd = x + extraLen;
    while (x + 4 <= xEnd) {
      const id = cd.readUInt16LE(x);
      const len = cd.readUInt16LE(x + 2);
      if (id === 0x0001) {
        let q = x + 4;
        if (size === 0xffffffff) {
          size = u64(cd, q);
          q += 8;
        }
        if (compressedSize === 0xffffffff) {
          compressedSize = u64(cd, q);
          q += 8;
        }
        if (localOffset === 0xffffffff) localOffset = u64(cd, q);
      }
      x += 4 + len;
    }
    entries.push({ name, method, compressedSize, size, localOffset });
    p = xEnd + commentLen;
  }
  return entries;
}

/** The uncompressed bytes of one zip entry. */
export function readZipEntry(file: string, name: string): Uint8Array {
  const fd = fs.openSync(file, 'r');
  try {
    const entries = listZipFd(fd, file);
    const e = entries.find((x) => x.name === name);
    if (!e) {
      throw new DataError(`${file}: no entry ${name} (entries: ${entries.map((x) => x.name).join(', ') || 'none'})`);
    }
    const local = readAt(fd, e.localOffset, 30);
    if (local.readUInt32LE(0) !== 0x04034b50) throw new DataError(`${file}: corrupt local header of ${name}`);
    const dataAt = e.localOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
    const raw = readAt(fd, dataAt, e.compressedSize);
    if (e.method === 0) return raw;
    if (e.method === 8) {
      try {
        return inflateRawSync(raw);
      } catch (err) {
        throw new DataError(`${file}: cannot inflate ${name} (${(err as Error).message})`, { cause: err });
      }
    }
    throw new DataError(`${file}: entry ${name} uses compression method ${e.method}; only stored (0) and deflate (8) are supported`);
  } finally {
    fs.closeSync(fd);
  }
}

/** One array of an .npz file, by key (`data` reads the entry `data.npy`). */
export function readNpzArray(file: string, key: string): NpyArray {
  return parseNpy(readZipEntry(file, `${key}.npy`), `${file}:${key}`);
}
