// CIFAR-10 binary version (Krizhevsky, 2009): records of 1 label byte + 3072 pixel bytes, the
// 32×32 red plane, then green, then blue, each row-major. data_batch_*.bin are the training
// split, test_batch.bin the test split. The record count comes from the file size, so subsets
// load like the full files.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataError } from '../errors.js';
import { requireDir } from './files.js';
import { memorySet } from './sets.js';
import type { DatasetSource, ImageSet } from './types.js';

const SIDE = 32;
const PLANE = SIDE * SIDE;
const RECORD = 1 + 3 * PLANE;

/** Reads CIFAR-10 binary batch files into one (N, 32, 32, 3) set, in file order. */
export function readCifarBatches(files: string[]): ImageSet {
  const sizes = files.map((f) => {
    const size = fs.statSync(f).size;
    if (size % RECORD !== 0) {
      throw new DataError(
        `${f}: size ${size} bytes is not a multiple of the CIFAR-10 record size ${RECORD} ` +
          `(1 label byte + 3072 pixel bytes); the file is truncated or not CIFAR-10 binary`,
      );
    }
    return size;
  });
  const n = sizes.reduce((a, b) => a + b, 0) / RECORD;
  const data = new Uint8Array(n * PLANE * 3);
  let img = 0;
  for (const f of files) {
    const buf = fs.readFileSync(f);
    for (let r = 0; r < buf.length; r += RECORD, img++) {
      const out = img * PLANE * 3;
      // Planes (3, 32, 32) → pixels (32, 32, 3).
      for (let p = 0; p < PLANE; p++) {
        data[out + p * 3] = buf[r + 1 + p]!;
        data[out + p * 3 + 1] = buf[r + 1 + PLANE + p]!;
        data[out + p * 3 + 2] = buf[r + 1 + 2 * PLANE + p]!;
      }
    }
  }
  return memorySet(data, { n, h: SIDE, w: SIDE, c: 3 });
}

/** `cifar10:<dir>`. */
export function resolveCifar10(arg: string): DatasetSource {
  const dir = path.resolve(arg);
  requireDir(dir, `cifar10:${arg}`);
  const names = fs.readdirSync(dir);
  const batchNo = (f: string) => Number(/^data_batch_(\d+)\.bin$/.exec(f)![1]);
  const trainFiles = names
    .filter((f) => /^data_batch_\d+\.bin$/.test(f))
    .sort((a, b) => batchNo(a) - batchNo(b))
    .map((f) => path.join(dir, f));
  const testFile = path.join(dir, 'test_batch.bin');
  if (trainFiles.length === 0) throw new DataError(`cifar10:${dir}: no data_batch_*.bin files in the folder`);
  if (!fs.existsSync(testFile)) throw new DataError(`cifar10:${dir}: no test_batch.bin in the folder`);
  return {
    name: `cifar10:${dir}`,
    files: [...trainFiles, testFile],
    async load(onProgress) {
      onProgress(`reading ${trainFiles.length} CIFAR-10 training batch(es) from ${dir}`);
      const train = readCifarBatches(trainFiles);
      onProgress(`reading ${testFile}`);
      const test = readCifarBatches([testFile]);
      return { train, test };
    },
  };
}
