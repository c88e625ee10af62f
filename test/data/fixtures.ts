// Small generated dataset files for the loader tests: IDX, CIFAR-10 binary, npz (a zip we write
// ourselves, stored or deflated, optionally with numpy's zip64 fields), and temp folders.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { crc32, deflateRawSync, gzipSync } from 'node:zlib';

const made: string[] = [];

export function tmpDir(prefix = 'spn-data-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(d);
  return d;
}

export function cleanupTmp(): void {
  for (const d of made.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}

/** Deterministic pseudo-random bytes. */
export function bytes(n: number, seed: number): Uint8Array {
  const a = new Uint8Array(n);
  let s = seed * 2654435761 + 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    a[i] = s >>> 24;
  }
  return a;
}

/** An IDX ubyte file of shape dims holding `data`. */
export function idxBytes(dims: number[], data: Uint8Array, magicType = 0x08): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header[2] = magicType;
  header[3] = dims.length;
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, data]);
}

export function writeIdx(file: string, dims: number[], data: Uint8Array, gzip = true): void {
  const raw = idxBytes(dims, data);
  fs.writeFileSync(file, gzip ? gzipSync(raw) : raw);
}

/** CIFAR-10 records from HWC images (n, 32, 32, 3). */
export function cifarBytes(hwc: Uint8Array): Buffer {
  const n = hwc.length / 3072;
  const out = Buffer.alloc(n * 3073);
  for (let i = 0; i < n; i++) {
    out[i * 3073] = i % 10;
    for (let p = 0; p < 1024; p++) {
      for (let c = 0; c < 3; c++) out[i * 3073 + 1 + c * 1024 + p] = hwc[i * 3072 + p * 3 + c]!;
    }
  }
  return out;
}

export function npyBytes(descr: string, shape: number[], data: Uint8Array): Buffer {
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  // numpy pads the header with spaces to a multiple of 64 bytes, ending in a newline.
  const unpadded = 10 + dict.length + 1;
  const header = dict + ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const pre = Buffer.alloc(10);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(pre);
  pre.writeUInt16LE(header.length, 8);
  return Buffer.concat([pre, Buffer.from(header, 'latin1'), data]);
}

/** A zip archive; `zip64` writes sizes as 0xFFFFFFFF plus zip64 extra fields, as numpy does. */
export function zipBytes(entries: { name: string; data: Uint8Array; deflate?: boolean }[], zip64 = false): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const body = e.deflate ? deflateRawSync(e.data) : Buffer.from(e.data);
    const name = Buffer.from(e.name);
    const crc = crc32(e.data);
    const extra = Buffer.alloc(zip64 ? 20 : 0);
    if (zip64) {
      extra.writeUInt16LE(1, 0);
      extra.writeUInt16LE(16, 2);
      extra.writeBigUInt64LE(BigInt(e.data.length), 4);
      extra.writeBigUInt64LE(BigInt(body.length), 12);
    }
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0);
    lh.writeUInt16LE(zip64 ? 45 : 20, 4);
    lh.writeUInt16LE(e.deflate ? 8 : 0, 8);
    lh.writeUInt32LE(crc, 14);
    lh.writeUInt32LE(zip64 ? 0xffffffff : body.length, 18);
    lh.writeUInt32LE(zip64 ? 0xffffffff : e.data.length, 22);
    lh.writeUInt16LE(name.length, 26);
    lh.writeUInt16LE(extra.length, 28);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0);
    ch.writeUInt16LE(45, 4);
    ch.writeUInt16LE(zip64 ? 45 : 20, 6);
    ch.writeUInt16LE(e.deflate ? 8 : 0, 10);
    ch.writeUInt32LE(crc, 16);
    ch.writeUInt32LE(zip64 ? 0xffffffff : body.length, 20);
    ch.writeUInt32LE(zip64 ? 0xffffffff : e.data.length, 24);
    ch.writeUInt16LE(name.length, 28);
    ch.writeUInt16LE(extra.length, 30);
    ch.writeUInt32LE(offset, 42);
    locals.push(lh, name, extra, body);
    centrals.push(ch, name, extra);
    offset += 30 + name.length + extra.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(entries.length, 8);
  eocd.writeUInt16LE(entries.length, 10);
  eocd.writeUInt32LE(cd.length, 12);
  eocd.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, eocd]);
}

/** An ImageNet-style npz batch from HWC images (n, side, side, 3). */
export function imagenetNpz(hwc: Uint8Array, side: number, opts: { deflate?: boolean; zip64?: boolean } = {}): Buffer {
  const n = hwc.length / (3 * side * side);
  const plane = side * side;
  const planes = new Uint8Array(hwc.length);
  for (let i = 0; i < n; i++) {
    for (let p = 0; p < plane; p++) {
      for (let c = 0; c < 3; c++) planes[i * 3 * plane + c * plane + p] = hwc[i * 3 * plane + p * 3 + c]!;
    }
  }
  const labels = new Uint8Array(8 * n);
  return zipBytes(
    [
      { name: 'data.npy', data: npyBytes('|u1', [n, 3 * plane], planes), deflate: opts.deflate },
      { name: 'labels.npy', data: npyBytes('<i8', [n], labels), deflate: opts.deflate },
    ],
    opts.zip64,
  );
}

/** Smooth-ish 8-bit images (a gradient plus noise), so a model has something to learn. */
export function smoothImages(n: number, side: number, seed: number): Uint8Array {
  const noise = bytes(n * side * side, seed);
  const out = new Uint8Array(n * side * side);
  for (let i = 0; i < out.length; i++) {
    const p = i % (side * side);
    out[i] = Math.min(255, ((p % side) + Math.floor(p / side)) * 16 + (noise[i]! >> 3));
  }
  return out;
}
