// Exact negative log-likelihood: the sum over every sub-pixel of every slice, in bits per
// dimension, with the breakdown per slice. The per-slice nats add up to the total exactly.
import * as torch from '../torch/index.js';
import type { ImageSet } from '../data/types.js';
import type { SPN } from '../spn/model.js';
import { toBatch } from '../spn/stage.js';

export interface EvalResult {
  /** Bits per dimension over the sub-pixels this model generates. */
  bpd: number;
  images: number;
  /** Bits per dimension of each slice's own sub-pixels (null for slices the stage does not model). */
  per_slice_bpd: (number | null)[];
  /** Total NLL in nats, and per slice; total = sum of the parts. */
  nats: number;
  per_slice_nats: (number | null)[];
  /** Sub-pixels the bpd is averaged over. */
  dims: number;
}

export interface EvaluateOptions {
  limit?: number;
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
  /**
   * Per-image scores, streamed batch by batch: images first..first+m-1 of the set and their NLL
   * in nats per slice, `nats[i·S² + k]` (0 for slices the stage does not model). The same numbers
   * the totals are summed from.
   */
  onImages?: (first: number, nats: Float64Array) => void;
  /**
   * Evaluate one shard of the batches: batches rank, rank + size, ... of this partition into
   * batches, with the per-image NLLs summed over the shards by `sum` (exact: each entry comes
   * from one shard), so that every shard returns the totals of the whole set, bit for bit those
   * of one process (a training job's ranks; train/world.ts).
   */
  shard?: EvalShard;
}

export interface EvalShard {
  rank: number;
  size: number;
  sum(values: Float64Array): Float64Array;
}

export function evaluate(model: SPN, set: ImageSet, o: EvaluateOptions = {}): EvalResult {
  const n = Math.min(set.n, o.limit ?? set.n);
  const bs = o.batchSize ?? 64;
  const [first, end] = [model.firstSlice, model.S * model.S];
  const { rank, size } = o.shard ?? { rank: 0, size: 1 };
  const perImage = new Float64Array(n * end);
  const wasTraining = model.training;
  model.eval();
  try {
    for (let i = rank * bs; i < n; i += size * bs) {
      const m = Math.min(bs, n - i);
      torch.noGrad(() => torch.tidy(() => {
        const batch = toBatch(set.read(i, m), m, model.cfg, model.device);
        const images = perImage.subarray(i * end, (i + m) * end);
        for (let k = first; k < end; k++) {
          // One slice at a time, its tensors freed before the next: memory does not grow with S².
          const nll = torch.tidy(() => model.nll(batch, torch.full([m], k, { dtype: 'int64', device: model.device })).to('float64').data() as Float64Array);
          for (let j = 0; j < m; j++) images[j * end + k] = nll[j]!;
        }
        o.onImages?.(i, images.slice());
      }));
      o.onProgress?.(Math.min(n, i + m), n);
    }
  } finally {
    model.train(wasTraining);
  }
  const all = o.shard ? o.shard.sum(perImage) : perImage;
  // Summed per slice image after image, in the order of one process whatever the shards.
  const perSlice = new Float64Array(end);
  for (let j = 0; j < n; j++) for (let k = first; k < end; k++) perSlice[k]! += all[j * end + k]!;
  return evalTotals(perSlice, n, first, model.dimsPerSlice);
}

/**
 * The totals of n images from their NLL summed per slice (nats, one entry per slice, S²):
 * slices before `first` are given, not modelled; each slice has `dimsPerSlice` sub-pixels per
 * image. What evaluate() returns; spn score sums its per-image numbers into the same totals.
 */
export function evalTotals(perSlice: Float64Array, n: number, first: number, dimsPerSlice: number): EvalResult {
  const end = perSlice.length;
  const sliceDims = n * dimsPerSlice;
  const nats = perSlice.slice(first).reduce((a, b) => a + b, 0);
  const dims = sliceDims * (end - first);
  return {
    bpd: nats / dims / Math.LN2,
    images: n,
    per_slice_bpd: Array.from(perSlice, (v, k) => (k < first ? null : v / sliceDims / Math.LN2)),
    nats,
    per_slice_nats: Array.from(perSlice, (v, k) => (k < first ? null : v)),
    dims,
  };
}
