// The stage loop both directions of the codec share (codec.ts encodes, decompress.ts decodes):
// the tiles of all images (tiles.ts), stage by stage, in batches of `batch` tiles, each batch
// walked by walkBatch (walk.ts) with the previous stage's output as its given part. The encoder
// and the decoder run this same code in the same batches on the same thread count, so they
// compute bit-identical logits and therefore identical counts (quantize.ts). Padding sub-pixels
// (the part of an edge tile past its image) are not coded: each gets the model's most probable
// value there, which both sides compute from the same logits.
import type { ImageSet } from '../data/types.js';
import { generationOrder } from '../spn/slices.js';
import { quantize, type SoftmaxNorm } from './quantize.js';
import type { CodecModels } from './stages.js';
import { cutTile, pasteTile, realExtent, type Size, type Tile } from './tiles.js';
import { walkBatch } from './walk.js';

/** One image of any size: height·width·C values (C the model's channels), row-major HWC. */
export interface CodecImage {
  height: number;
  width: number;
  data: Uint8Array;
}

/** Images to code: a set of the model's size, or images of any size. */
export type CodecInput = ImageSet | readonly CodecImage[];

export interface CodecProgress {
  stage: number; // 0-based
  stages: number;
  done: number; // tiles of this stage done (fractional within a batch, by slice)
  tiles: number;
}

/**
 * Codes one sub-pixel of one tile: the encoder returns the known value (after coding it), the
 * decoder the decoded one. `cum` holds the quantized cumulative counts (V + 1) of the tile's
 * logits at `offset`, `norm` their softmax's normaliser (quantize.ts).
 */
export type CodeFn = (tile: number, stage: number, pos: number, cum: Uint32Array, logits: Float32Array, offset: number, norm: SoftmaxNorm) => number;

/** The index of the largest logit (the first on ties): a padding sub-pixel's value. */
export function argmax(logits: Float32Array, offset: number, V: number): number {
  let best = 0;
  for (let i = 1; i < V; i++) if (logits[offset + i]! > logits[offset + best]!) best = i;
  return best;
}

/** Each stage's subsampling factor against the final tile: the product of the later size stages' S. */
export function factors(models: CodecModels): number[] {
  return models.stages.map((_, i) => models.stages.slice(i + 1).reduce((f, s) => (s.config.model.stage === 'size' ? f * s.config.model.scale : f), 1));
}

/**
 * The stage loop both directions share: stage by stage, batch by batch (batches of `batch`
 * tiles from the first), each batch walked by walkBatch with the previous stage's output as its
 * given part; padding sub-pixels get the model's most probable value and are not coded. Returns
 * the final stage's tiles (tiles.length, Th, Tw, C) and the number of batches walked.
 */
export function runStages(models: CodecModels, tiles: Tile[], sizes: Size[], batch: number, precision: number, code: CodeFn, onProgress?: (p: CodecProgress) => void): { out: Uint8Array; walks: number } {
  const { stages } = models;
  const n = tiles.length;
  const f = factors(models);
  let prev: Uint8Array | null = null;
  let walks = 0;
  for (const [si, s] of stages.entries()) {
    const m = s.config.model;
    const { height: H, width: W, channels: C } = m;
    const size = H * W * C;
    const V = s.model.V;
    // the flat (row-major HWC) index of each sub-pixel in walk order: slice by slice, raster order inside, channels
    const pos = generationOrder(H, W, C, m.scale);
    const cum = new Uint32Array(V + 1);
    const scratch = new Float64Array(V);
    const norm: SoftmaxNorm = { max: 0, sum: 0 };
    const out = new Uint8Array(n * size);
    const S = m.scale;
    const rows = new Int32Array(batch);
    const cols = new Int32Array(batch);
    for (let b = 0; b < n; b += batch) {
      const mB = Math.min(batch, n - b);
      for (let j = 0; j < mB; j++) {
        const t = tiles[b + j]!;
        const e = realExtent(sizes[t.image]!, t, H, W, f[si]!);
        rows[j] = e.rows;
        cols[j] = e.cols;
      }
      const canvas = new Uint8Array(mB * size);
      let given: Uint8Array | undefined;
      if (m.stage === 'size') {
        // slice 0 = x[0::S, 0::S] = the previous stage's tile
        const [h, w] = [H / S, W / S];
        for (let j = 0; j < mB; j++) {
          for (let r = 0; r < h; r++) {
            for (let x = 0; x < w; x++) {
              for (let c = 0; c < C; c++) canvas[j * size + (r * S * W + x * S) * C + c] = prev![(b + j) * h * w * C + (r * w + x) * C + c]!;
            }
          }
        }
      } else if (m.stage === 'depth') {
        given = prev!.subarray(b * size, (b + mB) * size);
      }
      const start = s.model.firstSlice * s.model.T * C; // walk order starts at the stage's first slice
      let step = start;
      const perSlice = s.model.T * C;
      const steps = pos.length - start;
      const values = new Int32Array(mB); // walkBatch copies them before the next call
      walks++;
      const result = walkBatch(s.model, s.plan, { m: mB, canvas, given }, (logits) => {
        if (step > start && (step - start) % perSlice === 0) onProgress?.({ stage: si, stages: stages.length, done: b + (mB * (step - start)) / steps, tiles: n });
        const p = pos[step++]!;
        const pixel = Math.floor(p / C);
        const [r, c] = [Math.floor(pixel / W), pixel % W];
        for (let j = 0; j < mB; j++) {
          if (r < rows[j]! && c < cols[j]!) {
            quantize(logits, j * V, V, precision, cum, scratch, norm);
            values[j] = code(b + j, si, p, cum, logits, j * V, norm);
          } else {
            values[j] = argmax(logits, j * V, V);
          }
        }
        return values;
      });
      if (m.stage === 'depth') {
        const low = 2 ** m.bits;
        for (let i = 0; i < result.length; i++) out[b * size + i] = given![i]! * low + result[i]!;
      } else {
        out.set(result, b * size);
      }
      onProgress?.({ stage: si, stages: stages.length, done: b + mB, tiles: n });
    }
    prev = out;
  }
  return { out: prev!, walks };
}

/** The tiles of all images at the final resolution, (tiles, Th, Tw, C), padding zero. */
export function cutAll(images: CodecImage[], tiles: Tile[], th: number, tw: number, c: number): Uint8Array {
  const out = new Uint8Array(tiles.length * th * tw * c);
  tiles.forEach((t, i) => cutTile(images[t.image]!.data, images[t.image]!, c, t, th, tw, out, i * th * tw * c));
  return out;
}

/** The images pasted back from their tiles. */
export function pasteAll(data: Uint8Array, tiles: Tile[], sizes: Size[], th: number, tw: number, c: number): Uint8Array[] {
  const out = sizes.map((s) => new Uint8Array(s.height * s.width * c));
  tiles.forEach((t, i) => pasteTile(data, i * th * tw * c, th, tw, c, t, sizes[t.image]!, out[t.image]!));
  return out;
}

/** The probe's batch: the largest batch the file's walk uses (at least 1). */
export const probeBatch = (batch: number, tiles: number) => Math.max(1, Math.min(batch, tiles));

