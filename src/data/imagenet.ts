// Downsampled ImageNet (Chrabaszcz et al., 2017; the 32×32 and 64×64 sets used by the SPN paper)
// in its npz release: train_data_batch_<N>.npz and val_data.npz, each holding `data`, an
// N×(3·side²) uint8 array of R, G, B planes, and `labels`. The side is sqrt(columns / 3).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataError } from '../errors.js';
import { requireDir } from './files.js';
import { readNpzArray } from './npz.js';
import { memorySet } from './sets.js';
import type { DatasetSource, ImageSet } from './types.js';

/** Reads the `data` array of one batch and converts planes (N, 3, side, side) to (N, side, side, 3). */
export function readImagenetBatch(file: string): ImageSet {
  const arr = readNpzArray(file, 'data');
  if (arr.descr !== '|u1' && arr.descr !== '<u1' && arr.descr !== '>u1') {
    throw new DataError(`${file}: data has dtype ${arr.descr}, expected uint8 (|u1)`);
  }
  if (arr.shape.length !== 2 || arr.fortranOrder) {
    throw new DataError(`${file}: data has shape (${arr.shape.join(', ')}), expected a C-order (N, 3·side²) array`);
  }
  const [n, cols] = arr.shape as [number, number];
  const side = Math.round(Math.sqrt(cols / 3));
  if (3 * side * side !== cols) {
    throw new DataError(`${file}: ${cols} values per image is not 3·side² for any integer side`);
  }
  const plane = side * side;
  const data = new Uint8Array(n * cols);
  const src = arr.data;
  for (let i = 0; i < n; i++) {
    const o = i * cols;
    for (let p = 0; p < plane; p++) {
      data[o + p * 3] = src[o + p]!;
      data[o + p * 3 + 1] = src[o + plane + p]!;
      data[o + p * 3 + 2] = src[o + 2 * plane + p]!;
    }
  }
  return memorySet(data, { n, h: side, w: side, c: 3 });
}

function concat(sets: ImageSet[], files: string[]): ImageSet {
  const first = sets[0]!;
  sets.forEach((s, i) => {
    if (s.h !== first.h) {
      throw new DataError(`${files[i]}: images are ${s.h}×${s.w} but ${files[0]} holds ${first.h}×${first.w}`);
    }
  });
  if (sets.length === 1) return first;
  const size = first.h * first.w * first.c;
  const n = sets.reduce((a, s) => a + s.n, 0);
  const data = new Uint8Array(n * size);
  let off = 0;
  for (const s of sets) {
    data.set(s.read(0, s.n), off);
    off += s.n * size;
  }
  return memorySet(data, { n, h: first.h, w: first.w, c: first.c });
}

/** `imagenet:<dir>`. */
export function resolveImagenet(arg: string): DatasetSource {
  const dir = path.resolve(arg);
  requireDir(dir, `imagenet:${arg}`);
  const batchNo = (f: string) => Number(/^train_data_batch_(\d+)\.npz$/.exec(f)![1]);
  const trainFiles = fs
    .readdirSync(dir)
    .filter((f) => /^train_data_batch_\d+\.npz$/.test(f))
    .sort((a, b) => batchNo(a) - batchNo(b))
    .map((f) => path.join(dir, f));
  const testFile = path.join(dir, 'val_data.npz');
  if (trainFiles.length === 0) throw new DataError(`imagenet:${dir}: no train_data_batch_<N>.npz files in the folder`);
  if (!fs.existsSync(testFile)) throw new DataError(`imagenet:${dir}: no val_data.npz in the folder`);
  return {
    name: `imagenet:${dir}`,
    files: [...trainFiles, testFile],
    async load(onProgress) {
      const sets: ImageSet[] = [];
      for (const f of trainFiles) {
        onProgress(`reading ${f}`);
        sets.push(readImagenetBatch(f));
      }
      const train = concat(sets, trainFiles);
      onProgress(`reading ${testFile}`);
      const test = readImagenetBatch(testFile);
      if (test.h !== train.h) {
        throw new DataError(`${testFile}: images are ${test.h}×${test.w} but the training batches hold ${train.h}×${train.w}`);
      }
      return { train, test };
    },
  };
}
