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
