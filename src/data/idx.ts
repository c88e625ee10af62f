// IDX image files (the MNIST family, LeCun et al.): a 4-byte magic (0, 0, type 0x08 = ubyte,
// ndim), ndim big-endian uint32 sizes, then the bytes. Also the `fashion-mnist` default, read
// from Debian's dataset-fashion-mnist package, and `mnist:<dir>` with the four standard names.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ArgError, DataError } from '../errors.js';
import { readMaybeGzip, requireDir, requireFile } from './files.js';
import { memorySet } from './sets.js';
import type { DatasetSource, ImageSet } from './types.js';

export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** Decodes an IDX image file (gzipped or not) of shape (N, H, W) or (N, H, W, C). */
export function readIdxImages(file: string): ImageSet {
  const buf = readMaybeGzip(file);
  if (buf.length < 4) throw new DataError(`${file}: too short for an IDX file (${buf.length} bytes)`);
  const magic = Buffer.from(buf.buffer, buf.byteOffset, 4).readUInt32BE(0);
  const ndim = buf[3]!;
  if (buf[0] !== 0 || buf[1] !== 0 || buf[2] !== 0x08 || (ndim !== 3 && ndim !== 4)) {
    throw new DataError(
      `${file}: bad IDX magic 0x${magic.toString(16).padStart(8, '0')}, expected 0x00000803 ` +
        `(unsigned bytes, 3 dimensions: images) or 0x00000804`,
    );
  }
  const headerLen = 4 + 4 * ndim;
  if (buf.length < headerLen) throw new DataError(`${file}: IDX header truncated`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const dims: number[] = [];
  for (let d = 0; d < ndim; d++) dims.push(view.getUint32(4 + 4 * d, false));
  const [n, h, w, c = 1] = dims as [number, number, number, number?];
  const expected = n * h * w * c;
  if (buf.length - headerLen !== expected) {
    throw new DataError(
      `${file}: IDX header says ${dims.join('×')} = ${expected} bytes of pixels, ` +
        `but the file holds ${buf.length - headerLen}`,
    );
  }
  // Copy so the result does not pin the (possibly larger) decompression buffer.
  const data = new Uint8Array(expected);
  data.set(buf.subarray(headerLen));
  return memorySet(data, { n, h, w, c });
}

function idxSource(name: string, trainFile: string, testFile: string): DatasetSource {
  return {
    name,
    files: [trainFile, testFile],
    async load(onProgress) {
      onProgress(`reading ${trainFile}`);
      const train = readIdxImages(trainFile);
      onProgress(`reading ${testFile}`);
      const test = readIdxImages(testFile);
      if (train.h !== test.h || train.w !== test.w || train.c !== test.c) {
        throw new DataError(
          `${testFile}: images are ${test.h}×${test.w}×${test.c} but ${trainFile} holds ${train.h}×${train.w}×${train.c}`,
        );
      }
      return { train, test };
    },
  };
}

/** `idx:<train.gz>` (test file: `train` → `t10k` in the name) or `idx:<train>,<test>`. */
export function resolveIdx(arg: string): DatasetSource {
  const parts = arg.split(',');
  if (parts.length > 2 || !parts[0]) {
    throw new ArgError(`idx:${arg}: expected idx:<train-images> or idx:<train-images>,<test-images>`);
  }
  const trainFile = path.resolve(parts[0]);
  let testFile: string;
  if (parts.length === 2 && parts[1]) {
    testFile = path.resolve(parts[1]);
  } else {
    const base = path.basename(trainFile);
    if (!base.includes('train')) {
      throw new ArgError(
        `idx:${arg}: cannot guess the test file (no "train" in ${base} to replace by "t10k"); ` +
          `give it as idx:<train>,<test>`,
      );
    }
    testFile = path.join(path.dirname(trainFile), base.replace('train', 't10k'));
  }
  requireFile(trainFile, 'idx train images');
  requireFile(testFile, 'idx test images');
  return idxSource(`idx:${trainFile},${testFile}`, trainFile, testFile);
}

/** Finds `<split>-images-idx3-ubyte` (or `.idx3-ubyte`), gzipped or not, in dir. */
function findMnistFile(dir: string, split: 'train' | 't10k'): string {
  const names = [`${split}-images-idx3-ubyte`, `${split}-images.idx3-ubyte`];
  const tried: string[] = [];
  for (const n of names) {
    for (const suffix of ['.gz', '']) {
      const f = path.join(dir, n + suffix);
      tried.push(path.basename(f));
      if (fs.existsSync(f)) return f;
    }
  }
  throw new DataError(`mnist:${dir}: no ${split} images found (looked for ${tried.join(', ')})`);
}

/** `mnist:<dir>`: a folder with the standard MNIST file names. */
export function resolveMnist(arg: string, specName = 'mnist'): DatasetSource {
  const dir = path.resolve(arg);
  requireDir(dir, `${specName}:${arg}`);
  return idxSource(`${specName}:${dir}`, findMnistFile(dir, 'train'), findMnistFile(dir, 't10k'));
}

/** `fashion-mnist`: the copy installed by Debian's dataset-fashion-mnist. */
export function resolveFashionMnist(dir = FASHION_MNIST_DIR): DatasetSource {
  if (!fs.existsSync(dir)) {
    throw new DataError(
      `fashion-mnist: ${dir} does not exist; install it with \`apt-get install dataset-fashion-mnist\` ` +
        `or point to a copy with mnist:<dir>`,
    );
  }
  const src = resolveMnist(dir, 'fashion-mnist');
  return { ...src, name: dir === FASHION_MNIST_DIR ? 'fashion-mnist' : src.name };
}
