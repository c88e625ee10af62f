// A minimal reader for NumPy .npz files: zip archives (stored or deflated entries, zip64 as
// numpy writes it) of .npy arrays. Reads by position through a file descriptor. Every size and
// offset the archive states is checked against the file before anything is allocated, read or
// inflated by it: the central directory must lie inside the file, each entry's data too, and an
// entry inflates to at most its declared size. A member can be read whole (small arrays: labels)
// or streamed a chunk at a time (the image data, which may be many GB: zip64 sizes and offsets
// are JS Numbers, exact to 2^53).
import * as fs from 'node:fs';
import { inflateRawSync } from 'node:zlib';
import { DataError } from '../errors.js';
import { ChunkReader, fileRange, inflateRange, statSource } from './files.js';

export interface NpyArray {
  /** NumPy dtype string, e.g. `|u1` or `<i8`. */
  descr: string;
  shape: number[];
  fortranOrder: boolean;
  /** The raw element bytes, C or Fortran order as `fortranOrder` says. */
  data: Uint8Array;
}

export interface NpyHeader {
  descr: string;
  shape: number[];
  fortranOrder: boolean;
  /** Bytes before the data. */
  dataStart: number;
  itemSize: number;
}

export interface ZipEntry {
  name: string;
  method: number;
  compressedSize: number;
  size: number;
  localOffset: number;
}

const NPY_MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
/** numpy writes headers of a few hundred bytes; anything larger is not a header. */
const MAX_NPY_HEADER = 1 << 20;

/** The length of the .npy preamble (magic, version, header length) and of its header, from its first 12 bytes. */
function npyPreamble(buf: Uint8Array, what: string): { start: number; headerLen: number } {
  if (buf.length < 10 || NPY_MAGIC.some((b, i) => buf[i] !== b)) {
    throw new DataError(`${what}: not a .npy array (missing the \\x93NUMPY magic)`);
  }
  const major = buf[6]!;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (major === 1) return { start: 10, headerLen: view.getUint16(8, true) };
  if (major === 2 || major === 3) {
    if (buf.length < 12) throw new DataError(`${what}: .npy header truncated`);
    const headerLen = view.getUint32(8, true);
    if (headerLen > MAX_NPY_HEADER) throw new DataError(`${what}: .npy header of ${headerLen} bytes; expected at most ${MAX_NPY_HEADER}`);
    return { start: 12, headerLen };
  }
  throw new DataError(`${what}: unsupported .npy format version ${major}`);
}

function parseNpyDict(text: string, start: number, headerLen: number, what: string): NpyHeader {
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(text)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(text)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(text)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new DataError(`${what}: cannot parse the .npy header ${JSON.stringify(text.trim().slice(0, 200))}`);
  }
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => Number(s.replace(/L$/, '')));
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw new DataError(`${what}: bad shape (${shapeText}) in the .npy header`);
  }
  const itemSize = Number(/\d+$/.exec(descr)?.[0] ?? NaN);
  if (!Number.isInteger(itemSize) || itemSize < 1) throw new DataError(`${what}: unsupported dtype ${descr}`);
  return { descr, shape, fortranOrder: fortran === 'True', dataStart: start + headerLen, itemSize };
}

/** Bytes of an array's data; an error when the shape's product is not a safe integer. */
export function npyBytes(h: NpyHeader, what: string): number {
  const count = h.shape.reduce((a, b) => a * b, 1);
  const bytes = count * h.itemSize;
  if (!Number.isSafeInteger(bytes)) throw new DataError(`${what}: shape (${h.shape.join(', ')}) is too large for any file`);
  return bytes;
}

/** Parses one .npy file held in memory. */
export function parseNpy(buf: Uint8Array, what = 'npy'): NpyArray {
  const { start, headerLen } = npyPreamble(buf, what);
  const text = Buffer.from(buf.buffer, buf.byteOffset + start, Math.max(0, Math.min(headerLen, buf.length - start))).toString('latin1');
  const h = parseNpyDict(text, start, headerLen, what);
  const bytes = npyBytes(h, what);
  if (buf.length - h.dataStart < bytes) {
    throw new DataError(`${what}: holds ${Math.max(0, buf.length - h.dataStart)} data bytes, but shape (${h.shape.join(', ')}) of ${h.descr} needs ${bytes}`);
  }
  return { descr: h.descr, shape: h.shape, fortranOrder: h.fortranOrder, data: buf.subarray(h.dataStart, h.dataStart + bytes) };
}

/** Reads a .npy header from the front of a stream, leaving the reader at the first data byte. */
export async function readNpyHeader(r: ChunkReader, what: string): Promise<NpyHeader> {
  const pre = await r.take(10);
  const first = pre.length === 10 && pre[6]! >= 2 ? Uint8Array.from([...pre, ...(await r.take(2))]) : pre;
  const { start, headerLen } = npyPreamble(first, what);
  const text = await r.take(headerLen);
  if (text.length < headerLen) throw new DataError(`${what}: .npy header truncated`);
  return parseNpyDict(Buffer.from(text).toString('latin1'), start, headerLen, what);
}

function readAt(fd: number, pos: number, len: number, file: string, what: string): Buffer {
  const buf = Buffer.allocUnsafe(len);
  let done = 0;
  while (done < len) {
    const n = fs.readSync(fd, buf, done, Math.min(len - done, 1 << 30), pos + done);
    if (n === 0) break;
    done += n;
  }
  if (done < len) throw new DataError(`${file}: ${what} (bytes ${pos}..${pos + len}) runs past the end of the file at byte ${pos + done}`);
  return buf;
}

/** A 64-bit little-endian field; an error naming the file when it does not fit a safe integer. */
function u64(buf: Buffer, at: number, file: string, what: string): number {
  const v = buf.readBigUInt64LE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new DataError(`${file}: the zip64 ${what} ${v} is larger than any file`);
  return Number(v);
}

/** The central directory's entries; the directory is checked to lie inside the file. */
function listZipFd(fd: number, file: string, fileSize: number): ZipEntry[] {
  const tailLen = Math.min(fileSize, 22 + 65535);
  const tail = readAt(fd, fileSize - tailLen, tailLen, file, 'the end of the archive');
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new DataError(`${file}: not a zip/npz archive (no end-of-central-directory record: truncated, or another format)`);
  let count = tail.readUInt16LE(eocd + 10);
  let cdSize = tail.readUInt32LE(eocd + 12);
  let cdOffset = tail.readUInt32LE(eocd + 16);
  const locAt = eocd - 20;
  if (locAt >= 0 && tail.readUInt32LE(locAt) === 0x07064b50) {
    const zAt = u64(tail, locAt + 8, file, 'end record offset');
    if (zAt + 56 > fileSize) throw new DataError(`${file}: the zip64 end record at byte ${zAt} lies past the end of the file (${fileSize} bytes)`);
    const z = readAt(fd, zAt, 56, file, 'the zip64 end record');
    if (z.readUInt32LE(0) !== 0x06064b50) throw new DataError(`${file}: corrupt zip64 end-of-central-directory record`);
    count = u64(z, 32, file, 'entry count');
    cdSize = u64(z, 40, file, 'central directory size');
    cdOffset = u64(z, 48, file, 'central directory offset');
  }
  if (cdOffset + cdSize > fileSize) {
    throw new DataError(`${file}: the zip central directory (bytes ${cdOffset}..${cdOffset + cdSize}) lies past the end of the file (${fileSize} bytes); the file is truncated or corrupt`);
  }
  if (count * 46 > cdSize) throw new DataError(`${file}: the zip directory claims ${count} entries in ${cdSize} bytes; each takes at least 46`);
  const cd = readAt(fd, cdOffset, cdSize, file, 'the zip central directory');
  const entries: ZipEntry[] = [];
  const corrupt = () => new DataError(`${file}: corrupt zip central directory`);
  let p = 0;
  for (let e = 0; e < count; e++) {
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== 0x02014b50) throw corrupt();
    const method = cd.readUInt16LE(p + 10);
    let compressedSize = cd.readUInt32LE(p + 20);
    let size = cd.readUInt32LE(p + 24);
    const nameLen = cd.readUInt16LE(p + 28);
    const extraLen = cd.readUInt16LE(p + 30);
    const commentLen = cd.readUInt16LE(p + 32);
    let localOffset = cd.readUInt32LE(p + 42);
    if (p + 46 + nameLen + extraLen + commentLen > cd.length) throw corrupt();
    const name = cd.toString('utf8', p + 46, p + 46 + nameLen);
    // A zip64 extra field carries, in this order, whichever of the sizes and offset overflowed.
    let x = p + 46 + nameLen;
    const xEnd = x + extraLen;
    while (x + 4 <= xEnd) {
      const id = cd.readUInt16LE(x);
      const len = cd.readUInt16LE(x + 2);
      if (id === 0x0001) {
        let q = x + 4;
        const need = (k: number) => {
          if (q + 8 > Math.min(xEnd, x + 4 + len)) throw corrupt();
          const v = u64(cd, q, file, k === 0 ? 'entry size' : k === 1 ? 'compressed size' : 'entry offset');
          q += 8;
          return v;
        };
        if (size === 0xffffffff) size = need(0);
        if (compressedSize === 0xffffffff) compressedSize = need(1);
        if (localOffset === 0xffffffff) localOffset = need(2);
      }
      x += 4 + len;
    }
    entries.push({ name, method, compressedSize, size, localOffset });
    p = xEnd + commentLen;
  }
  return entries;
}

/** An entry of an archive and where its data lie, checked against the file. */
export interface ZipMember extends ZipEntry {
  file: string;
  dataAt: number;
}

/** Finds entry `name` in an archive; its data are checked to lie inside the file. */
export function zipMember(file: string, name: string): ZipMember {
  const fileSize = statSource(file).size;
  const fd = fs.openSync(file, 'r');
  try {
    const entries = listZipFd(fd, file, fileSize);
    const e = entries.find((x) => x.name === name);
    if (!e) {
      throw new DataError(`${file}: no entry ${name} (entries: ${entries.map((x) => x.name).join(', ') || 'none'})`);
    }
    if (e.localOffset + 30 > fileSize) throw new DataError(`${file}: the local header of ${name} lies past the end of the file`);
    const local = readAt(fd, e.localOffset, 30, file, `the local header of ${name}`);
    if (local.readUInt32LE(0) !== 0x04034b50) throw new DataError(`${file}: corrupt local header of ${name}`);
    const dataAt = e.localOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
    if (dataAt + e.compressedSize > fileSize) {
      throw new DataError(`${file}: ${name}'s ${e.compressedSize} bytes (from byte ${dataAt}) run past the end of the file (${fileSize} bytes); the file is truncated`);
    }
    if (e.method !== 0 && e.method !== 8) {
      throw new DataError(`${file}: entry ${name} uses compression method ${e.method}; only stored (0) and deflate (8) are supported`);
    }
    if (e.method === 0 && e.compressedSize !== e.size) throw new DataError(`${file}: stored entry ${name} states ${e.size} bytes but holds ${e.compressedSize}`);
    return { ...e, file, dataAt };
  } finally {
    fs.closeSync(fd);
  }
}

/** The bytes of a member as a stream of chunks, never more than its declared size. */
export function memberStream(m: ZipMember): AsyncGenerator<Uint8Array> {
  if (m.method === 0) return fileRange(m.file, m.dataAt, m.size);
  return inflateRange(m.file, m.dataAt, m.compressedSize, 'deflate', m.size, `${m.file}: ${m.name}`);
}

/** The uncompressed bytes of one (small) zip entry, inflated to at most its declared size. */
export function readZipEntry(file: string, name: string): Uint8Array {
  const m = zipMember(file, name);
  const fd = fs.openSync(file, 'r');
  let raw: Buffer;
  try {
    raw = readAt(fd, m.dataAt, m.compressedSize, file, name);
  } finally {
    fs.closeSync(fd);
  }
  if (m.method === 0) return raw;
  let out: Buffer;
  try {
    // maxOutputLength: inflation stops at the declared size instead of filling memory
    out = inflateRawSync(raw, { maxOutputLength: Math.max(1, m.size) });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ERR_BUFFER_TOO_LARGE') throw new DataError(`${file}: ${name} inflates to more than the ${m.size} bytes its header declares`);
    throw new DataError(`${file}: cannot inflate ${name} (${(err as Error).message})`, { cause: err });
  }
  if (out.length !== m.size) throw new DataError(`${file}: ${name} inflates to ${out.length} bytes, its header declares ${m.size}`);
  return out;
}

/** One (small) array of an .npz file, by key (`labels` reads the entry `labels.npy`). */
export function readNpzArray(file: string, key: string): NpyArray {
  return parseNpy(readZipEntry(file, `${key}.npy`), `${file}:${key}`);
}
