// An npz member over 4 GiB (issue #21, "datasets of any size"): an ImageNet 64 batch whose `data`
// member is a stored zip64 entry of 4,300,800,128 bytes (350,000 images of 12,288 bytes plus the
// .npy header), as numpy writes one. The archive is built here as a sparse file: positioned
// writes of the headers, of a few known images (the first, one past 2^31, the one that straddles
// byte 2^32 of the file, the first wholly past it, one further on and the last) and of the tail
// (a `labels` member that itself starts past 4 GiB, the central directory with zip64 extra
// fields, the zip64 end record, its locator and the end record). Everything else is a hole, so the
// file takes a few MB of disk whatever its size. The stated CRC-32 is the member's real one
// (computed over the holes' zeros too), so the file is a valid archive for any zip reader, though
// spn's reader does not check CRCs (npz.ts: sizes and offsets are checked against the file).
//
// Checked: the member's exact 64-bit size and data offset, the .npy header's element count, the
// `labels` member located through its zip64 offset, the known images read by position through
// the reader's own range stream (fileRange, what memberStream uses for a stored member), and then
// the whole member streamed through the ImageNet loader into a sink that checks every image
// (known ones exactly, every other one all zeros) without writing a 4.3 GB cache.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChunkReader, fileRange } from '../../src/data/files.js';
import { resolveImagenet } from '../../src/data/imagenet.js';
import { memberStream, npyBytes as npyDataBytes, readNpyHeader, readNpzArray, zipMember } from '../../src/data/npz.js';
import type { ImageShape, SplitSink } from '../../src/data/sink.js';
import { bytes, cleanupTmp, imagenetNpz, npyBytes, tmpDir } from './fixtures.js';

const SIDE = 64;
const PLANE = SIDE * SIDE;
const COLS = 3 * PLANE; // 12,288 bytes an image
const N = 350_000; // 4,300,800,000 data bytes: past 2^32
const FOUR_GIB = 2 ** 32;

/** The .npy header numpy writes for a C-order uint8 (n, cols) array: 128 bytes, version 1.0. */
function npyHeader(shape: number[]): Buffer {
  return npyBytes('|u1', shape, new Uint8Array(0));
}

/** The zip64 extra field (id 1) holding `values` as 64-bit integers. */
function zip64Extra(values: number[]): Buffer {
  const x = Buffer.alloc(4 + 8 * values.length);
  x.writeUInt16LE(1, 0);
  x.writeUInt16LE(8 * values.length, 2);
  values.forEach((v, i) => x.writeBigUInt64LE(BigInt(v), 4 + 8 * i));
  return x;
}

interface Member {
  name: Buffer;
  crc: number;
  size: number;
  offset: number;
  /** The zip64 extra of the local header (numpy writes one for every member: both sizes). */
  localExtra: Buffer;
}

function localHeader(m: Member): Buffer {
  const lh = Buffer.alloc(30);
  lh.writeUInt32LE(0x04034b50, 0);
  lh.writeUInt16LE(45, 4); // version needed: zip64
  lh.writeUInt16LE(0, 8); // stored
  lh.writeUInt32LE(m.crc, 14);
  lh.writeUInt32LE(0xffffffff, 18);
  lh.writeUInt32LE(0xffffffff, 22);
  lh.writeUInt16LE(m.name.length, 26);
  lh.writeUInt16LE(m.localExtra.length, 28);
  return Buffer.concat([lh, m.name, m.localExtra]);
}

/** A central directory header: each of size, compressed size and offset that overflows 32 bits goes to the zip64 extra, in that order. */
function centralHeader(m: Member): Buffer {
  const big = (v: number) => v >= 0xffffffff;
  const extra = zip64Extra([...(big(m.size) ? [m.size, m.size] : []), ...(big(m.offset) ? [m.offset] : [])]);
  const ch = Buffer.alloc(46);
  ch.writeUInt32LE(0x02014b50, 0);
  ch.writeUInt16LE(45, 4);
  ch.writeUInt16LE(45, 6);
  ch.writeUInt16LE(0, 10);
  ch.writeUInt32LE(m.crc, 16);
  ch.writeUInt32LE(big(m.size) ? 0xffffffff : m.size, 20);
  ch.writeUInt32LE(big(m.size) ? 0xffffffff : m.size, 24);
  ch.writeUInt16LE(m.name.length, 28);
  ch.writeUInt16LE(extra.length, 30);
  ch.writeUInt32LE(big(m.offset) ? 0xffffffff : m.offset, 42);
  return Buffer.concat([ch, m.name, extra]);
}

/** The known images: index → its planes (R, G, B), as the release stores them. */
const KNOWN = new Map<number, Uint8Array>();
const STRADDLE = Math.floor((FOUR_GIB - (30 + 8 + 20 + 128)) / COLS); // the image holding byte 2^32 of the file
for (const [i, seed] of [[0, 1], [2 ** 31 / COLS + 1, 2], [STRADDLE, 3], [STRADDLE + 1, 4], [349_700, 5], [N - 1, 6]] as const) {
  KNOWN.set(Math.floor(i), bytes(COLS, seed));
}

/** Planes (3, side, side) → pixels (side, side, 3): what the loader yields. */
function toHwc(planes: Uint8Array): Uint8Array {
  const out = new Uint8Array(COLS);
  for (let p = 0; p < PLANE; p++) for (let c = 0; c < 3; c++) out[p * 3 + c] = planes[c * PLANE + p]!;
  return out;
}

interface Built {
  file: string;
  dir: string;
  dataAt: number;
  memberSize: number;
  labelsAt: number;
  labels: BigInt64Array;
}

/** Writes the sparse archive train_data_batch_1.npz (and a small val_data.npz) into a fresh folder. */
function buildRelease(): Built {
  const dir = tmpDir('spn-zip64-');
  const file = path.join(dir, 'train_data_batch_1.npz');
  const header = npyHeader([N, COLS]);
  const memberSize = header.length + N * COLS;
  // CRC-32 of the member: the header, then the images in order with zeros between the known ones.
  const zeros = Buffer.alloc(64 << 20);
  let crc = crc32(header);
  let at = 0; // image index the CRC has reached
  const zerosUpTo = (end: number) => {
    for (let left = (end - at) * COLS; left > 0; left -= Math.min(left, zeros.length)) crc = crc32(zeros.subarray(0, Math.min(left, zeros.length)), crc);
    at = end;
  };
  for (const i of [...KNOWN.keys()].sort((a, b) => a - b)) {
    zerosUpTo(i);
    crc = crc32(KNOWN.get(i)!, crc);
    at = i + 1;
  }
  zerosUpTo(N);
  const data: Member = { name: Buffer.from('data.npy'), crc, size: memberSize, offset: 0, localExtra: zip64Extra([memberSize, memberSize]) };
  const dataLocal = localHeader(data);
  const dataAt = dataLocal.length;
  const labels = BigInt64Array.from({ length: N }, (_, i) => BigInt((i * 7) % 1000));
  const labelsNpy = npyBytes('<i8', [N], new Uint8Array(labels.buffer));
  const labelsAt = dataAt + memberSize;
  const lab: Member = { name: Buffer.from('labels.npy'), crc: crc32(labelsNpy), size: labelsNpy.length, offset: labelsAt, localExtra: zip64Extra([labelsNpy.length, labelsNpy.length]) };
  const labLocal = localHeader(lab);
  const cdAt = labelsAt + labLocal.length + labelsNpy.length;
  const cd = Buffer.concat([centralHeader(data), centralHeader(lab)]);
  const z64At = cdAt + cd.length;
  const z64 = Buffer.alloc(56);
  z64.writeUInt32LE(0x06064b50, 0);
  z64.writeBigUInt64LE(44n, 4); // size of the rest of the record
  z64.writeUInt16LE(45, 12);
  z64.writeUInt16LE(45, 14);
  z64.writeBigUInt64LE(2n, 24); // entries on this disk
  z64.writeBigUInt64LE(2n, 32); // entries
  z64.writeBigUInt64LE(BigInt(cd.length), 40);
  z64.writeBigUInt64LE(BigInt(cdAt), 48);
  const loc = Buffer.alloc(20);
  loc.writeUInt32LE(0x07064b50, 0);
  loc.writeBigUInt64LE(BigInt(z64At), 8);
  loc.writeUInt32LE(1, 16); // disks
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(2, 8);
  eocd.writeUInt16LE(2, 10);
  eocd.writeUInt32LE(cd.length, 12);
  eocd.writeUInt32LE(0xffffffff, 16); // the directory's offset is past 4 GiB: in the zip64 record
  const fd = fs.openSync(file, 'w');
  try {
    const put = (buf: Uint8Array, pos: number) => expect(fs.writeSync(fd, buf, 0, buf.length, pos)).toBe(buf.length);
    put(Buffer.concat([dataLocal, header]), 0);
    for (const [i, img] of KNOWN) put(img, dataAt + header.length + i * COLS);
    put(Buffer.concat([labLocal, labelsNpy, cd, z64, loc, eocd]), labelsAt);
  } finally {
    fs.closeSync(fd);
  }
  fs.writeFileSync(path.join(dir, 'val_data.npz'), imagenetNpz(bytes(2 * COLS, 9), SIDE));
  return { file, dir, dataAt, memberSize, labelsAt, labels };
}

let b: Built;
beforeAll(() => {
  b = buildRelease();
});
afterAll(cleanupTmp);

describe('an npz member over 4 GiB (zip64)', () => {
  it('is a sparse file past 4 GiB', () => {
    const st = fs.statSync(b.file);
    expect(st.size).toBe(b.labelsAt + (30 + 10 + 20) + (128 + 8 * N) + (46 + 8 + 20) + (46 + 10 + 12) + 56 + 20 + 22);
    expect(st.size).toBeGreaterThan(FOUR_GIB);
    expect(st.blocks * 512).toBeLessThan(64 << 20); // holes: a few MB on disk
  });

  it('locates the member with its exact 64-bit size, and the one after it through its zip64 offset', async () => {
    const m = zipMember(b.file, 'data.npy');
    expect([m.method, m.size, m.compressedSize, m.localOffset, m.dataAt]).toEqual([0, 4_300_800_128, 4_300_800_128, 0, 58]);
    const r = ChunkReader.of(memberStream(m));
    const h = await readNpyHeader(r, 'data');
    await r.close();
    expect([h.descr, h.shape, h.fortranOrder, h.dataStart]).toEqual(['|u1', [350_000, 12_288], false, 128]);
    expect(npyDataBytes(h, 'data')).toBe(4_300_800_000);
    expect(h.dataStart + npyDataBytes(h, 'data')).toBe(m.size);
    const l = zipMember(b.file, 'labels.npy');
    expect([l.localOffset, l.dataAt, l.size]).toEqual([4_300_800_186, 4_300_800_186 + 60, 128 + 8 * N]);
    const labels = readNpzArray(b.file, 'labels');
    expect([labels.descr, labels.shape]).toEqual(['<i8', [N]]);
    expect(Buffer.from(labels.data).equals(Buffer.from(b.labels.buffer))).toBe(true);
  });

  it('reads the known images at their offsets past 2^31 and 2^32, the last included', async () => {
    const m = zipMember(b.file, 'data.npy');
    const first = m.dataAt + 128;
    expect(first + STRADDLE * COLS).toBeLessThan(FOUR_GIB);
    expect(first + (STRADDLE + 1) * COLS).toBeGreaterThan(FOUR_GIB);
    for (const [i, img] of KNOWN) {
      const parts: Uint8Array[] = [];
      for await (const c of fileRange(m.file, first + i * COLS, COLS)) parts.push(c);
      expect(Buffer.concat(parts).equals(img), `image ${i}`).toBe(true);
    }
    // the image before the last is a hole, and the member ends exactly with the last image
    const parts: Uint8Array[] = [];
    for await (const c of fileRange(m.file, first + (N - 2) * COLS, 2 * COLS)) parts.push(c);
    expect(Buffer.concat(parts).equals(Buffer.concat([Buffer.alloc(COLS), KNOWN.get(N - 1)!]))).toBe(true);
    expect(m.dataAt + m.size).toBe(first + N * COLS);
  });

  it('streams every image of the member through the ImageNet loader, each where it belongs', { timeout: 300_000 }, async () => {
    const src = resolveImagenet(b.dir);
    const seen: number[] = [];
    let n = 0;
    let zeroImages = 0;
    const bad: string[] = [];
    let zeros = Buffer.alloc(0);
    const train: SplitSink = {
      write(images: Uint8Array, count: number, s: ImageShape) {
        if (s.h !== SIDE || s.w !== SIDE || s.c !== 3 || images.length !== count * COLS) bad.push(`chunk of ${count} images of ${s.h}×${s.w}×${s.c} in ${images.length} bytes`);
        for (let k = 0; k < count; k++) {
          const want = KNOWN.get(n + k);
          if (!want) continue;
          const got = images.subarray(k * COLS, (k + 1) * COLS);
          if (!Buffer.from(got.buffer, got.byteOffset, COLS).equals(toHwc(want))) bad.push(`image ${n + k} differs`);
          seen.push(n + k);
          got.fill(0);
        }
        // every other image is all zeros (a hole): one memcmp for the chunk
        if (zeros.length < images.length) zeros = Buffer.alloc(images.length);
        if (!Buffer.from(images.buffer, images.byteOffset, images.length).equals(zeros.subarray(0, images.length))) bad.push(`non-zero bytes in images ${n}..${n + count - 1}`);
        zeroImages += count;
        n += count;
      },
    };
    const test = { n: 0, write: (_i: Uint8Array, count: number) => void (test.n += count) };
    const t0 = performance.now();
    await src.load({ train, test }, () => {});
    console.log(`streamed ${n} images (${(n * COLS) / 1e9} GB) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    expect(bad).toEqual([]);
    expect(n).toBe(N);
    expect(zeroImages).toBe(N);
    expect(seen).toEqual([...KNOWN.keys()].sort((a, c) => a - c));
    expect(test.n).toBe(2);
  });
});
