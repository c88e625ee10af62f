// CIFAR-10 binary version (Krizhevsky, 2009): records of 1 label byte + 3072 pixel bytes, the
// 32×32 red plane, then green, then blue, each row-major. data_batch_*.bin are the training
// split, test_batch.bin the test split. The record count comes from the file size, so subsets
// load like the full files. Read a chunk of records at a time.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataError } from '../errors.js';
import { CHUNK, fileRange, present, requireDir, statSource } from './files.js';
import type { SplitSink } from './sink.js';
import type { DatasetSource } from './types.js';

const SIDE = 32;
const PLANE = SIDE * SIDE;
const RECORD = 1 + 3 * PLANE;

/** Reads CIFAR-10 binary batch files into `sink` as (N, 32, 32, 3) images, in file order. */
export async function readCifarBatches(files: string[], sink: SplitSink): Promise<void> {
  const sizes = files.map((f) => {
    const size = statSource(f).size;
    if (size === 0) throw new DataError(`${f}: is empty; expected CIFAR-10 records of ${RECORD} bytes (1 label byte + 3072 pixel bytes)`);
    if (size % RECORD !== 0) {
      throw new DataError(
        `${f}: size ${size} bytes is not a multiple of the CIFAR-10 record size ${RECORD} ` +
          `(1 label byte + 3072 pixel bytes); the file is truncated or not CIFAR-10 binary`,
      );
    }
    return size;
  });
  sink.expect?.(sizes.reduce((a, b) => a + b, 0) / RECORD);
  const per = Math.floor(CHUNK / RECORD) * RECORD;
  for (const [fi, f] of files.entries()) {
    for (let at = 0; at < sizes[fi]!; at += per) {
      const len = Math.min(per, sizes[fi]! - at);
      const buf = new Uint8Array(len);
      let got = 0;
      for await (const part of fileRange(f, at, len)) {
        buf.set(part, got);
        got += part.length;
      }
      const n = len / RECORD;
      const data = new Uint8Array(n * PLANE * 3);
      for (let r = 0; r < n; r++) {
        const src = r * RECORD + 1;
        const out = r * PLANE * 3;
        // Planes (3, 32, 32) → pixels (32, 32, 3).
        for (let p = 0; p < PLANE; p++) {
          data[out + p * 3] = buf[src + p]!;
          data[out + p * 3 + 1] = buf[src + PLANE + p]!;
          data[out + p * 3 + 2] = buf[src + 2 * PLANE + p]!;
        }
      }
      sink.write(data, n, { h: SIDE, w: SIDE, c: 3 });
    }
  }
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
  if (!present(testFile)) throw new DataError(`cifar10:${dir}: no test_batch.bin in the folder`);
  return {
    name: `cifar10:${dir}`,
    files: [...trainFiles, testFile],
    async load(sinks, onProgress) {
      onProgress(`reading ${trainFiles.length} CIFAR-10 training batch(es) from ${dir}`);
      await readCifarBatches(trainFiles, sinks.train);
      onProgress(`reading ${testFile}`);
      await readCifarBatches([testFile], sinks.test);
    },
  };
}
