// Tiny trained runs for the codec and score tests: 8×8 images (gray from a generated IDX set, RGB
// from a generated folder of PNGs), the 'tiny' preset trained for a few steps, so every test
// reads real run folders and checkpoints as the commands do.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodePng } from '../../src/spn/images.js';
import { train, type TrainOptions } from '../../src/train/trainer.js';
import { bytes, smoothImages, tmpDir, writeIdx } from '../data/fixtures.js';

export interface Fixture {
  work: string;
  cacheDir: string;
  /** Gray 8×8 IDX dataset spec, and a folder of 8×8 RGB PNGs (train/ and test/). */
  gray: string;
  rgb: string;
}

export function makeFixture(prefix: string): Fixture {
  const work = tmpDir(prefix);
  writeIdx(path.join(work, 'train-images.gz'), [32, 8, 8], smoothImages(32, 8, 1));
  writeIdx(path.join(work, 't10k-images.gz'), [16, 8, 8], smoothImages(16, 8, 2));
  const rgbDir = path.join(work, 'rgb');
  for (const [split, n, seed] of [['train', 12, 3], ['test', 4, 4]] as const) {
    fs.mkdirSync(path.join(rgbDir, split), { recursive: true });
    const g = smoothImages(n * 3, 8, seed);
    for (let i = 0; i < n; i++) {
      const rgb = new Uint8Array(64 * 3);
      for (let p = 0; p < 64; p++) for (let c = 0; c < 3; c++) rgb[p * 3 + c] = g[(i * 3 + c) * 64 + p]!;
      fs.writeFileSync(path.join(rgbDir, split, `img-${i}.png`), encodePng({ width: 8, height: 8, rgb }));
    }
  }
  return { work, cacheDir: path.join(work, 'cache'), gray: `idx:${path.join(work, 'train-images.gz')}`, rgb: `folder:${rgbDir}` };
}

export async function trainRun(f: Fixture, name: string, o: Partial<TrainOptions> = {}): Promise<string> {
  return (await train({ data: f.gray, preset: 'tiny', out: path.join(f.work, 'runs', name), cacheDir: f.cacheDir, quiet: true, seed: 3, steps: 3, threads: 1, ...o })).dir;
}

/** Uniform random 8-bit values: images a smooth-image model finds very unlikely. */
export const noise = (n: number, seed: number): Uint8Array => bytes(n, seed);

/** Writes a gray 8×8 PNG of values. */
export function grayPng(file: string, side: number, values: Uint8Array): void {
  const rgb = new Uint8Array(side * side * 3);
  values.forEach((v, i) => rgb.fill(v, i * 3, i * 3 + 3));
  fs.writeFileSync(file, encodePng({ width: side, height: side, rgb }));
}

/** Writes a w×h PNG of values: gray (c = 1, stored as RGB with equal channels) or RGB (c = 3). */
export function writePng(file: string, width: number, height: number, values: Uint8Array, c: 1 | 3 = 1): void {
  const rgb = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) for (let k = 0; k < 3; k++) rgb[p * 3 + k] = values[p * c + (c === 3 ? k : 0)]!;
  fs.writeFileSync(file, encodePng({ width, height, rgb }));
}

/** A smooth-ish image of any size (h·w·c values): what the tiny runs were trained on, tiled. */
export function smoothImage(height: number, width: number, c: number, seed: number): Uint8Array {
  const n = bytes(height * width * c, seed);
  return Uint8Array.from(n, (v, i) => {
    const p = Math.floor(i / c);
    return Math.min(255, ((p % width) % 8 + (Math.floor(p / width) % 8)) * 16 + (v >> 3));
  });
}

/** The bytes of a PNG whose header claims width×height but that holds almost no data (a decompression bomb's shape). */
export function bombPng(width: number, height: number): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (b: Buffer) => {
    let c = 0xffffffff;
    for (const x of b) c = crcTable[(c ^ x) & 0xff]! ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, sum]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 0, 0, 0, 0], 8); // 8-bit gray
  const idat = Buffer.from([0x78, 0xda, 0x63, 0x60, 0x18, 0x05, 0x00, 0x00, 0x01, 0x00]); // a few zero bytes, deflated
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', Buffer.alloc(0))]);
}
