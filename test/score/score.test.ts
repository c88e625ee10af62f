// Per-image scores on a tiny trained run: they sum to `spn eval`'s exact total; the CSV and JSON
// shapes; the worst/best grids; the complexity correction with the compressor's headers removed
// (on PNG and WebP files checked byte by byte); the AUROC helper on known values.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { inflateRawSync, inflateSync } from 'node:zlib';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDataset } from '../../src/data/index.js';
import type { ImageSet } from '../../src/data/types.js';
import { memorySet, readAll, sliceSet } from '../../src/data/sets.js';
import { auroc, codeLength, complexityCorrected, decodeRaw, pngIdatBytes, scoreImages, webpVp8lBytes } from '../../src/score/index.js';
import { register as registerScore } from '../../src/cli/score.js';
import { evalRun } from '../../src/cli/eval.run.js';
import { loadModel } from '../../src/store/checkpoint.js';
import { evaluate } from '../../src/store/evaluate.js';
import { cleanupTmp } from '../data/fixtures.js';
import { cli } from '../cli/in-process.js';
import { makeFixture, noise, trainRun, type Fixture } from '../codec/fixtures.js';

let f: Fixture;
let run: string;
let test: ImageSet;

beforeAll(async () => {
  f = makeFixture('spn-score-');
  run = await trainRun(f, 'g');
  test = (await loadDataset(f.gray, { cacheDir: f.cacheDir })).test;
});
afterAll(() => cleanupTmp());

describe('scoreImages', () => {
  it("per-image bits/dim average to spn eval's exact total; each image's per-slice parts are evaluate()'s on it alone", async () => {
    const { model } = await loadModel(run);
    try {
      const r = await scoreImages(model, test, { batchSize: 64 });
      const e = evaluate(model, test, { batchSize: 64 });
      expect(r.scores.map((s) => s.index)).toEqual(Array.from({ length: 16 }, (_, i) => i));
      expect(r.eval.nats).toBe(e.nats); // same batches: the very same sums
      const mean = r.scores.reduce((a, s) => a + s.bpd, 0) / r.scores.length;
      expect(mean).toBeCloseTo(e.bpd, 12);
      // each image's numbers against evaluate() on that image alone (a batch of one: the same up to
      // float32 rounding of the batched forward pass)
      for (const s of r.scores) {
        const one = evaluate(model, sliceSet(test, s.index, 1), { batchSize: 1 });
        expect(s.per_slice_bpd).toHaveLength(4);
        s.per_slice_bpd.forEach((v, k) => expect(Math.abs(v! - one.per_slice_bpd[k]!) / one.per_slice_bpd[k]!).toBeLessThan(1e-5));
        expect(Math.abs(s.nats - one.nats) / one.nats).toBeLessThan(1e-5);
        expect(Math.abs(s.bpd - one.bpd) / one.bpd).toBeLessThan(1e-5);
      }
      // other batch sizes: the same numbers up to float32 rounding of the batched forward pass
      const small = await scoreImages(model, test, { batchSize: 5 });
      expect(Math.abs(small.eval.bpd - e.bpd) / e.bpd).toBeLessThan(1e-5);
      // any images of the right shape; bits/dim of a near-uniform tiny model lie near 8
      const noisy = await scoreImages(model, memorySet(noise(128, 9), { ...test, n: 2 }));
      for (const s of [...noisy.scores, ...r.scores]) expect(s.bpd).toBeGreaterThan(4);
      expect(new Set(r.scores.map((s) => s.bpd)).size).toBe(16);
      // the spn eval command on the same split gives the same total
      const cmd = await evalRun(run, { split: 'test', batchSize: 64, device: 'cpu', ema: true, which: 'best', cacheDir: f.cacheDir, quiet: true });
      expect(cmd.bpd).toBe(e.bpd);
    } finally {
      model.dispose();
    }
  });
});

describe('spn score', () => {
  it('streams CSV and JSON lines, with the corrected score, and writes the worst/best grids', async () => {
    const csv = (await cli([registerScore], 'score', run, f.gray, '--csv', '--ood', '--quiet', '--cache-dir', f.cacheDir)).trim().split('\n');
    expect(csv[0]).toBe('index,name,bpd,png_bpd,corrected,slice_0,slice_1,slice_2,slice_3');
    expect(csv).toHaveLength(17);
    const row = csv[1]!.split(',');
    expect(row[0]).toBe('0');
    expect(row[1]).toBe('test-00000');
    expect(Number(row[4])).toBeCloseTo(Number(row[2]) - Number(row[3]), 12);
    const json = (await cli([registerScore], 'score', run, f.gray, '--json', '--limit', '5', '--quiet', '--cache-dir', f.cacheDir, '--worst', '3', '--best', '2', '--grid', path.join(f.work, 'g'))).trim().split('\n').map((l) => JSON.parse(l));
    expect(json).toHaveLength(5);
    expect(Object.keys(json[0])).toEqual(['index', 'name', 'bpd', 'per_slice_bpd', 'nats']);
    for (const [which, n] of [['worst', 3], ['best', 2]] as const) {
      const png = PNG.sync.read(fs.readFileSync(path.join(f.work, `g-${which}.png`)));
      // grids: ceil(sqrt(n)) columns of 8×8 images scaled to 64 px, 2 px padding
      const cols = Math.ceil(Math.sqrt(n));
      expect([png.width, png.height]).toEqual([cols * 64 + (cols + 1) * 2, Math.ceil(n / cols) * 64 + (Math.ceil(n / cols) + 1) * 2]);
    }
    const plain = await cli([registerScore], 'score', run, f.gray, '--limit', '2', '--quiet', '--cache-dir', f.cacheDir);
    expect(plain).toMatch(/^test-00000\t\d\.\d{4}\ntest-00001\t\d\.\d{4}\n$/);
    await expect(cli([registerScore], 'score', run, f.gray, '--json', '--csv')).rejects.toThrow(/--json or --csv, not both/);
    await expect(cli([registerScore], 'score', run, f.gray, '--compressor', 'gif')).rejects.toThrow(/--compressor gif: expected png or webp/);
    await expect(cli([registerScore], 'score', run, f.gray, '--worst', '-1')).rejects.toThrow(/--worst -1: expected a positive integer/);
  });
});

describe('complexity correction', () => {
  const img = { data: Uint8Array.from({ length: 64 }, (_, i) => (i * 37) % 256), width: 8, height: 8, channels: 1 as const };

  it('PNG: counts the deflate stream only (IDAT payload without the zlib header and Adler-32)', async () => {
    const L = await codeLength(img, 'png');
    const file = L.file;
    // walk the chunks here, independently: signature, then length/type/data/crc
    let pos = 8;
    const idat: Buffer[] = [];
    const types: string[] = [];
    while (pos < file.length) {
      const len = file.readUInt32BE(pos);
      const type = file.subarray(pos + 4, pos + 8).toString('latin1');
      types.push(type);
      if (type === 'IDAT') idat.push(file.subarray(pos + 8, pos + 8 + len));
      pos += 12 + len;
    }
    expect(types[0]).toBe('IHDR');
    expect(types[types.length - 1]).toBe('IEND');
    const z = Buffer.concat(idat);
    expect(inflateSync(z).length).toBe(8 * (8 + 1)); // 8 rows of a filter byte + 8 gray samples
    expect(inflateRawSync(z.subarray(2, z.length - 4)).length).toBe(72); // the 6 bytes removed are zlib's wrapper
    expect(L.bits).toBe(8 * (z.length - 6));
    expect(L.fileBytes).toBe(file.length);
    expect(L.headerBytes).toBe(file.length - (z.length - 6));
    expect(L.headerBytes).toBeGreaterThanOrEqual(8 + 25 + 12 + 12 + 6); // signature, IHDR, IDAT framing, IEND, zlib
    // lossless
    expect(Array.from(await decodeRaw(file, 1))).toEqual(Array.from(img.data));
    expect(PNG.sync.read(file).depth).toBe(8);
    expect(file[8 + 8 + 9]).toBe(0); // IHDR colour type 0: a gray PNG
    // a hand-made file with two IDAT chunks
    const chunk = (type: string, data: Buffer) => {
      const b = Buffer.alloc(12 + data.length);
      b.writeUInt32BE(data.length, 0);
      b.write(type, 4, 'latin1');
      data.copy(b, 8);
      return b;
    };
    const hand = Buffer.concat([file.subarray(0, 8), chunk('IHDR', Buffer.alloc(13)), chunk('IDAT', Buffer.alloc(10)), chunk('tEXt', Buffer.alloc(5)), chunk('IDAT', Buffer.alloc(7)), chunk('IEND', Buffer.alloc(0))]);
    expect(pngIdatBytes(hand)).toBe(17);
    expect(() => pngIdatBytes(hand.subarray(0, 50))).toThrow(/chunk IDAT at byte 33 runs past the end/);
    expect(() => pngIdatBytes(hand.subarray(0, hand.length - 12))).toThrow(/ends before its IEND chunk/);
    expect(() => pngIdatBytes(Buffer.from('GIF89a'))).toThrow(/not a PNG/);
  });

  it('WebP: counts the VP8L bitstream only; lossless', async () => {
    const L = await codeLength({ ...img, channels: 1 }, 'webp');
    const f = L.file;
    expect(f.subarray(0, 4).toString()).toBe('RIFF');
    const vp8l = webpVp8lBytes(f);
    expect(L.bits).toBe(8 * (vp8l - 5));
    expect(f[f.indexOf('VP8L') + 8]).toBe(0x2f); // the VP8L signature byte is in the removed header
    expect(Array.from(await decodeRaw(f, 1))).toEqual(Array.from(img.data));
  });

  it('S(x) = model bits/dim − compressor bits/dim', () => {
    expect(complexityCorrected(3.5, 128, 64)).toBe(1.5);
  });
});

describe('auroc', () => {
  it('on known values', () => {
    expect(auroc([3, 4], [1, 2])).toBe(1);
    expect(auroc([1, 2], [3, 4])).toBe(0);
    expect(auroc([1], [1])).toBe(0.5);
    expect(auroc([0.8, 0.4, 0.6], [0.5, 0.2, 0.4])).toBeCloseTo(7.5 / 9, 15);
    expect(auroc([2, 2, 2], [2, 1])).toBeCloseTo((3 * 0.5 + 3) / 6, 15);
    expect(() => auroc([], [1])).toThrow(/at least one positive and one negative/);
    expect(() => auroc([NaN], [1])).toThrow(/not a finite number/);
  });
});

describe('bench/ood.ts data', () => {
  it('CIFAR to 28×28 gray: BT.601 luminance, then the exact area average', async () => {
    const { cifarToGray28 } = await import('../../bench/ood.js');
    const n = 2;
    const rgb = new Uint8Array(n * 32 * 32 * 3);
    for (let p = 0; p < 1024; p++) rgb.set([100, 100, 100], p * 3); // image 0: gray 100 everywhere
    for (let p = 0; p < 1024; p++) rgb.set([255, 0, 0], 3072 + p * 3); // image 1: pure red
    const g = cifarToGray28(memorySet(rgb, { n, h: 32, w: 32, c: 3 }), 10);
    expect([g.n, g.h, g.w, g.c]).toEqual([2, 28, 28, 1]);
    expect(new Set(readAll(g).subarray(0, 784))).toEqual(new Set([100]));
    expect(new Set(readAll(g).subarray(784))).toEqual(new Set([Math.round(0.299 * 255)]));
  });

  it('the mnist package: 28×28 bytes recovered exactly from its v/255 values', async () => {
    const { loadMnistPackage } = await import('../../bench/ood.js');
    const s = loadMnistPackage(20);
    expect([s.n, s.h, s.w, s.c, readAll(s).length]).toEqual([20, 28, 28, 1, 20 * 784]);
    expect(Math.max(...readAll(s))).toBeGreaterThan(200); // strokes
    expect(readAll(s).filter((v) => v === 0).length).toBeGreaterThan(20 * 784 * 0.5); // background
  });
});
