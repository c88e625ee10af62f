// IDX image files (the MNIST family, LeCun et al.): a 4-byte magic (0, 0, type 0x08 = ubyte,
// ndim), ndim big-endian uint32 sizes, then the bytes. Also the `fashion-mnist` default, read
// from Debian's dataset-fashion-mnist package, and `mnist:<dir>` with the four standard names.
// Read as a stream (gzipped or not), a chunk of images at a time; the header's sizes are checked
// against the file (plain) or bound the inflation (gzip) before anything is allocated by them.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ArgError, DataError } from '../errors.js';
import { CHUNK, ChunkReader, fileRange, inflateRange, isGzip, requireDir, requireFile, statSource } from './files.js';
import type { SplitSink } from './sink.js';
import type { DatasetSource } from './types.js';

export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** Decodes an IDX image file (gzipped or not) of shape (N, H, W) or (N, H, W, C) into `sink`. */
export async function readIdxImages(file: string, sink: SplitSink): Promise<void> {
  const size = statSource(file).size;
  const gz = isGzip(file);
  const limit = { max: Infinity };
  const reader = ChunkReader.of(gz ? inflateRange(file, 0, size, 'gzip', () => limit.max) : fileRange(file, 0, size));
  try {
    const head = await reader.take(4);
    if (head.length < 4) throw new DataError(`${file}: too short for an IDX file (${head.length} bytes)`);
    const magic = Buffer.from(head).readUInt32BE(0);
    const ndim = head[3]!;
    if (head[0] !== 0 || head[1] !== 0 || head[2] !== 0x08 || (ndim !== 3 && ndim !== 4)) {
      throw new DataError(
        `${file}: bad IDX magic 0x${magic.toString(16).padStart(8, '0')}, expected 0x00000803 ` +
          `(unsigned bytes, 3 dimensions: images) or 0x00000804`,
      );
    }
    const dimBytes = await reader.take(4 * ndim);
    if (dimBytes.length < 4 * ndim) throw new DataError(`${file}: IDX header truncated`);
    const view = Buffer.from(dimBytes);
    const dims = Array.from({ length: ndim }, (_, d) => view.readUInt32BE(4 * d));
    const [n, h, w, c = 1] = dims as [number, number, number, number?];
    if (n < 1 || h * w * c < 1) throw new DataError(`${file}: IDX header says ${dims.join('×')}: ${n < 1 ? 'no images' : 'images of 0 pixels'}; expected at least one image of at least one pixel`);
    const headerLen = 4 + 4 * ndim;
    const imageBytes = h * w * c;
    const expected = n * imageBytes;
    const says = `IDX header says ${dims.join('×')} = ${expected} bytes of pixels`;
    if (!gz && size - headerLen !== expected) throw new DataError(`${file}: ${says}, but the file holds ${size - headerLen}`);
    limit.max = headerLen + expected;
    sink.expect?.(n);
    const per = Math.max(1, Math.floor(CHUNK / imageBytes));
    let done = 0;
    while (done < n) {
      const k = Math.min(per, n - done);
      const chunk = await reader.take(k * imageBytes);
      if (chunk.length < k * imageBytes) throw new DataError(`${file}: ${says}, but the file holds ${done * imageBytes + chunk.length}`);
      sink.write(chunk, k, { h, w, c });
      done += k;
    }
    if (!(await reader.atEnd())) throw new DataError(`${file}: ${says}, but the file holds more`);
  } catch (err) {
    // an inflation cut off at the header's size says so in the same words
    if (err instanceof DataError && /inflates to more than/.test(err.message)) throw new DataError(`${err.message.replace(/ its header declares$/, '')} its IDX header declares`);
    throw err;
  } finally {
    await reader.close();
  }
}

function idxSource(name: string, trainFile: string, testFile: string): DatasetSource {
  return {
    name,
    files: [trainFile, testFile],
    async load(sinks, onProgress) {
      onProgress(`reading ${trainFile}`);
      await readIdxImages(trainFile, sinks.train);
      onProgress(`reading ${testFile}`);
      await readIdxImages(testFile, sinks.test);
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
