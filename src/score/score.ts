// Per-image likelihood scores: the exact NLL of every image (store/evaluate.ts's onImages, the
// same numbers `spn eval` sums) in bits per sub-pixel, in total and per slice, optionally with the
// input-complexity correction (complexity.ts).
import { ArgError } from '../errors.js';
import type { ImageSet } from '../data/types.js';
import { sliceSet } from '../data/sets.js';
import type { SPN } from '../spn/model.js';
import { evalTotals, evaluate, type EvalResult } from '../store/evaluate.js';
import { codeLength, type Compressor } from './complexity.js';

export interface ImageScore {
  /** Position in the scored set. */
  index: number;
  name: string;
  /** NLL in bits per sub-pixel of the sub-pixels the model generates. */
  bpd: number;
  /** Per slice (null for slices the model is given). */
  per_slice_bpd: (number | null)[];
  /** NLL in nats (the exact sum over the image's modelled sub-pixels). */
  nats: number;
  /** With a compressor: its code length of the image in bits per sub-pixel (headers removed), and S(x). */
  compressor_bpd?: number;
  corrected?: number;
}

export interface ScoreOptions {
  names?: string[];
  batchSize?: number;
  /** Also compute the complexity-corrected score with this compressor. */
  compressor?: Compressor;
  /** Called for every image as soon as its batch is done, in order. */
  onImage?: (s: ImageScore) => void | Promise<void>;
}

export interface ScoreResult {
  scores: ImageScore[];
  /** The totals, exactly as `spn eval` computes them on the same images. */
  eval: EvalResult;
}

/** The image of a set as 8-bit values for a generic compressor (values of `bits` bits shifted up). */
function rawImage(set: ImageSet, i: number, bits: number) {
  const shift = 8 - bits;
  const px = set.read(i, 1);
  if (set.c !== 1 && set.c !== 3) throw new ArgError(`the complexity correction needs 1- or 3-channel images, got ${set.c}`);
  return { data: shift ? px.map((v) => v << shift) : px, width: set.w, height: set.h, channels: set.c as 1 | 3 };
}

/**
 * Scores every image of the set with the model, batch by batch: each batch's scores reach
 * onImage before the next batch is evaluated. The totals equal evaluate()'s on the whole set.
 */
export async function scoreImages(model: SPN, set: ImageSet, o: ScoreOptions = {}): Promise<ScoreResult> {
  const { height, width, channels, bits, stage } = model.cfg;
  if (set.h !== height || set.w !== width || set.c !== channels) throw new ArgError(`the images are ${set.h}×${set.w}×${set.c}; the model scores ${height}×${width}×${channels}`);
  if (o.names && o.names.length !== set.n) throw new ArgError(`${o.names.length} names for ${set.n} images`);
  if (o.compressor && stage !== 'full') throw new ArgError(`the complexity correction compares whole images: it needs a 'full' model, this one is a '${stage}' stage`);
  const batch = o.batchSize ?? 64;
  if (!Number.isInteger(batch) || batch < 1) throw new ArgError(`batch size ${batch}: expected a positive integer`);
  const S2 = model.S * model.S;
  const first = model.firstSlice;
  const sliceDims = model.dimsPerSlice;
  const dims = sliceDims * (S2 - first);
  const perSlice = new Float64Array(S2);
  const scores: ImageScore[] = [];
  for (let b = 0; b < set.n; b += batch) {
    const m = Math.min(batch, set.n - b);
    const part: ImageSet = sliceSet(set, b, m);
    let nats: Float64Array = new Float64Array(0);
    evaluate(model, part, { batchSize: m, onImages: (_start, v) => (nats = v) });
    for (let j = 0; j < m; j++) {
      let total = 0;
      const per: (number | null)[] = [];
      for (let k = 0; k < S2; k++) {
        const v = nats[j * S2 + k]!;
        if (k < first) {
          per.push(null);
          continue;
        }
        per.push(v / sliceDims / Math.LN2);
        perSlice[k] += v;
        total += v;
      }
      const s: ImageScore = { index: b + j, name: o.names?.[b + j] ?? String(b + j), bpd: total / dims / Math.LN2, per_slice_bpd: per, nats: total };
      if (o.compressor) {
        const L = await codeLength(rawImage(set, b + j, bits), o.compressor);
        s.compressor_bpd = L.bits / dims;
        s.corrected = s.bpd - s.compressor_bpd; // complexityCorrected(s.bpd, L.bits, dims), bit for bit
      }
      scores.push(s);
      await o.onImage?.(s);
    }
  }
  // the per-image numbers summed per slice in image order, as evaluate() sums them: the same totals
  const result = evalTotals(perSlice, set.n, first, sliceDims);
  return { scores, eval: result };
}
