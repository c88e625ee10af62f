// Training on crops (src/data/crop.ts): random crops are exact sub-blocks drawn reproducibly from
// the batch position; the test split's tiles cover each image in raster order; and a run trained
// with --crop reads its crops, is tested on the tiles, and resumes on the same crops.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkCrop, randomCrops, tileSet } from '../../src/data/crop.js';
import { memorySet } from '../../src/data/sets.js';
import { loadRunSplit } from '../../src/store/data.js';
import { readRunConfig } from '../../src/store/run.js';
import { train, type TrainOptions } from '../../src/train/trainer.js';
import { cleanupTmp, smoothImages, tmpDir, writeIdx } from './fixtures.js';

/** n images of h×w×c whose every value says where it is: image i, row y, column x, channel k. */
function coordImages(n: number, h: number, w: number, c: number): Uint8Array {
  const a = new Uint8Array(n * h * w * c);
  for (let i = 0; i < n; i++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) a[((i * h + y) * w + x) * c + k] = (i * 64 + y * 8 + x + k * 3) & 255;
  return a;
}

describe('randomCrops', () => {
  const [n, h, w, c, crop] = [3, 8, 7, 2, 4];
  const images = coordImages(n, h, w, c);

  it('cuts each image at one offset: the crop is the source block there, exactly', () => {
    const out = randomCrops(images, n, { h, w, c }, crop, { seed: 5, epoch: 2, index: 10 });
    expect(out.length).toBe(n * crop * crop * c);
    for (let i = 0; i < n; i++) {
      // Find the offset from the crop's first value, then compare every value of the block.
      const v0 = out[i * crop * crop * c]! - i * 64;
      const [y0, x0] = [Math.floor(v0 / 8), v0 % 8];
      expect(y0).toBeLessThanOrEqual(h - crop);
      expect(x0).toBeLessThanOrEqual(w - crop);
      for (let y = 0; y < crop; y++) for (let x = 0; x < crop; x++) for (let k = 0; k < c; k++) {
        expect(out[((i * crop + y) * crop + x) * c + k]).toBe(images[((i * h + y0 + y) * w + x0 + x) * c + k]);
      }
    }
  });

  it('draws from (seed, epoch, position): the same position repeats its crops, others differ', () => {
    const at = { seed: 5, epoch: 2, index: 10 };
    const a = randomCrops(images, n, { h, w, c }, crop, at);
    expect(randomCrops(images, n, { h, w, c }, crop, at)).toEqual(a);
    const offsets = new Set<string>();
    for (let index = 0; index < 40; index++) offsets.add(Array.from(randomCrops(images, 1, { h, w, c }, crop, { ...at, index }).subarray(0, 1)).join());
    expect(offsets.size).toBeGreaterThan(5); // (8-4+1)·(7-4+1) = 20 offsets: many are drawn
    expect(randomCrops(images, n, { h, w, c }, crop, { ...at, epoch: 3 })).not.toEqual(a);
  });

  it('refuses a crop larger than the images, naming both', () => {
    expect(() => checkCrop(9, 8, 16, 'data idx:x')).toThrow(/^--crop 9: data idx:x has images of 8×16, smaller than the crop$/);
    expect(() => randomCrops(images, n, { h, w, c }, 8, { seed: 0, epoch: 0, index: 0 })).toThrow(/--crop 8: the training split has images of 8×7/);
  });
});

describe('tileSet', () => {
  it('cuts every image into its whole tiles in raster order, the edge remainder dropped', () => {
    const [n, h, w, c] = [2, 8, 7, 1];
    const set = tileSet(memorySet(coordImages(n, h, w, c), { n, h, w, c }), 3);
    expect([set.n, set.h, set.w, set.c]).toEqual([2 * 2 * 2, 3, 3, 1]); // floor(8/3)·floor(7/3) = 4 tiles per image
    const all = set.read(0, set.n);
    for (let t = 0; t < set.n; t++) {
      const [i, k] = [Math.floor(t / 4), t % 4];
      const [ty, tx] = [Math.floor(k / 2) * 3, (k % 2) * 3];
      for (let y = 0; y < 3; y++) for (let x = 0; x < 3; x++) expect(all[(t * 3 + y) * 3 + x]).toBe((i * 64 + (ty + y) * 8 + tx + x) & 255);
    }
    // Reads across an image boundary and gathers agree with the whole read.
    expect(set.read(3, 2)).toEqual(all.subarray(3 * 9, 5 * 9));
    expect(set.gather([7, 0, 5])).toEqual(new Uint8Array([...all.subarray(63, 72), ...all.subarray(0, 9), ...all.subarray(45, 54)]));
  });
});

describe('spn train --crop', () => {
  let work = '';
  let spec = '';
  beforeAll(() => {
    work = tmpDir('spn-crop-');
    writeIdx(path.join(work, 'train-images.gz'), [24, 16, 16], smoothImages(24, 16, 1));
    writeIdx(path.join(work, 't10k-images.gz'), [3, 16, 16], smoothImages(3, 16, 2));
    spec = `idx:${path.join(work, 'train-images.gz')}`;
  });
  afterAll(() => cleanupTmp());

  const opts = (name: string, o: Partial<TrainOptions> = {}): TrainOptions => ({
    data: spec, preset: 'tiny', out: path.join(work, name), cacheDir: path.join(work, 'cache'), quiet: true, seed: 3, crop: 8, batchSize: 8, steps: 12, ...o,
  });

  it('trains a model of the crop size, tests on the tiles, and resumes on the same crops', async () => {
    const losses: number[] = [];
    const whole = await train(opts('whole', { onStep: (_, l) => losses.push(l) }));
    expect(whole.state).toBe('done');
    const cfg = readRunConfig(whole.dir);
    expect([cfg.crop, cfg.model.height, cfg.model.width]).toEqual([8, 8, 8]);
    // The run's own test split, as eval, score and compress read it: 3 images × 4 tiles of 8×8.
    const { set } = await loadRunSplit(cfg, { cacheDir: path.join(work, 'cache') });
    expect([set.n, set.h, set.w]).toEqual([12, 8, 8]);
    // Stopped at step 5 and resumed: the same crops, so the same losses.
    const first: number[] = [];
    await train(opts('parts', { interruptAtStep: 5, onStep: (_, l) => first.push(l) }));
    const second: number[] = [];
    const resumed = await train({ out: path.join(work, 'parts'), resume: true, quiet: true, cacheDir: path.join(work, 'cache'), onStep: (_, l) => second.push(l) });
    expect(resumed.step).toBe(12);
    expect([...first, ...second]).toEqual(losses);
    expect(resumed.lastTestBpd).toBe(whole.lastTestBpd);
  });

  it('refuses a crop larger than the images before anything is written', async () => {
    await expect(train(opts('big', { crop: 32 }))).rejects.toThrow(/--crop 32: data idx:.* has images of 16×16, smaller than the crop/);
    expect(fs.existsSync(path.join(work, 'big'))).toBe(false);
  });
});
