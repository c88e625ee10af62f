// Downsampled ImageNet (Chrabaszcz et al., 2017; the 32×32 and 64×64 sets used by the SPN paper)
// in its npz release: train_data_batch_<N>.npz (N = 1, 2, ... without gaps) and val_data.npz,
// each holding `data`, an N×(3·side²) uint8 array of R, G, B planes, and `labels`. The side is
// sqrt(columns / 3). Each batch's `data` is streamed (stored or deflated, zip64 or not) a chunk
// of images at a time into the split's sink; its shape is checked against the member's size
// before anything is read by it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataError } from '../errors.js';
import { CHUNK, ChunkReader, present, requireDir } from './files.js';
import { memberStream, npyBytes, readNpyHeader, zipMember } from './npz.js';
import type { SplitSink } from './sink.js';
import type { DatasetSource } from './types.js';

interface BatchInfo {
  n: number;
  side: number;
}

/** Streams the `data` array of one batch into `sink`, planes (N, 3, side, side) → pixels (N, side, side, 3). */
export async function readImagenetBatch(file: string, sink: SplitSink, expectSide?: { side: number; file: string }): Promise<BatchInfo> {
  const m = zipMember(file, 'data.npy');
  const what = `${file}: data`;
  const r = ChunkReader.of(memberStream(m));
  try {
    const h = await readNpyHeader(r, what);
    if (h.descr !== '|u1' && h.descr !== '<u1' && h.descr !== '>u1') {
      throw new DataError(`${file}: data has dtype ${h.descr}, expected uint8 (|u1)`);
    }
    if (h.shape.length !== 2 || h.fortranOrder) {
      throw new DataError(`${file}: data has shape (${h.shape.join(', ')}), expected a C-order (N, 3·side²) array`);
    }
    const [n, cols] = h.shape as [number, number];
    const side = Math.round(Math.sqrt(cols / 3));
    if (cols === 0 || 3 * side * side !== cols) {
      throw new DataError(`${file}: ${cols} values per image is not 3·side² for any integer side ≥ 1`);
    }
    if (n === 0) throw new DataError(`${file}: data holds no images (shape (0, ${cols}))`);
    const bytes = npyBytes(h, what);
    if (h.dataStart + bytes !== m.size) {
      throw new DataError(`${file}: data has shape (${n}, ${cols}), ${bytes} bytes, but its entry holds ${m.size - h.dataStart} data bytes; the batch is truncated or corrupt`);
    }
    if (expectSide && side !== expectSide.side) {
      throw new DataError(`${file}: images are ${side}×${side} but ${expectSide.file} holds ${expectSide.side}×${expectSide.side}; every batch of a release must have one size`);
    }
    const plane = side * side;
    const per = Math.max(1, Math.floor(CHUNK / cols));
    for (let done = 0; done < n; ) {
      const k = Math.min(per, n - done);
      const src = await r.take(k * cols);
      if (src.length < k * cols) throw new DataError(`${file}: data ends after ${done * cols + src.length} of ${bytes} bytes`);
      const out = new Uint8Array(k * cols);
      for (let i = 0; i < k; i++) {
        const o = i * cols;
        for (let p = 0; p < plane; p++) {
          out[o + p * 3] = src[o + p]!;
          out[o + p * 3 + 1] = src[o + plane + p]!;
          out[o + p * 3 + 2] = src[o + 2 * plane + p]!;
        }
      }
      sink.write(out, k, { h: side, w: side, c: 3 });
      done += k;
    }
    return { n, side };
  } finally {
    await r.close();
  }
}

/** `imagenet:<dir>`. */
export function resolveImagenet(arg: string): DatasetSource {
  const dir = path.resolve(arg);
  requireDir(dir, `imagenet:${arg}`);
  const batchNo = (f: string) => Number(/^train_data_batch_(\d+)\.npz$/.exec(f)![1]);
  const names = fs
    .readdirSync(dir)
    .filter((f) => /^train_data_batch_\d+\.npz$/.test(f))
    .sort((a, b) => batchNo(a) - batchNo(b));
  const trainFiles = names.map((f) => path.join(dir, f));
  const testFile = path.join(dir, 'val_data.npz');
  if (trainFiles.length === 0) throw new DataError(`imagenet:${dir}: no train_data_batch_<N>.npz files in the folder`);
  // The release numbers its batches 1..N; a gap is a batch that did not download.
  const missing = names.map(batchNo).map((b, i) => (b !== i + 1 ? i + 1 : 0)).find((b) => b > 0);
  if (missing !== undefined) {
    throw new DataError(`imagenet:${dir}: train_data_batch_${missing}.npz is missing (found batches ${names.map(batchNo).join(', ')}); expected batches 1..N without gaps`);
  }
  if (!present(testFile)) throw new DataError(`imagenet:${dir}: no val_data.npz in the folder`);
  return {
    name: `imagenet:${dir}`,
    files: [...trainFiles, testFile],
    async load(sinks, onProgress) {
      let first: { side: number; file: string } | undefined;
      for (const f of trainFiles) {
        onProgress(`reading ${f}`);
        const b = await readImagenetBatch(f, sinks.train, first);
        if (!first) {
          first = { side: b.side, file: f };
          sinks.train.expect?.(b.n * trainFiles.length); // an estimate for the ETA: batches are about equal
        }
      }
      onProgress(`reading ${testFile}`);
      await readImagenetBatch(testFile, sinks.test, first);
    },
  };
}
