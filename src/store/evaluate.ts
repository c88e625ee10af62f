// Exact negative log-likelihood: the sum over every sub-pixel of every slice, in bits per
// dimension, with the breakdown per slice. The per-slice nats add up to the total exactly.
import * as torch from '../torch/index.js';
import type { ImageSet } from '../data/types.js';
import type { ModelConfig } from '../spn/config.js';
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
  /**
   * Activations one slice's forward pass may hold at once, in MB (default EVAL_ACTIVATION_MB):
   * a batch is evaluated in chunks of as many images as fit (at least one), estimated by
   * evalBytesPerImage. So memory does not grow with the batch size, the number of images or of
   * slices: at 256×256 one image's forward pass already holds hundreds of MB.
   */
  activationMB?: number;
}

/** The default activation budget of one chunk (see EvaluateOptions.activationMB). */
export const EVAL_ACTIVATION_MB = 1024;

/**
 * Pixels one chunk holds at most, whatever the estimate says: a forward pass builds the context
 * stack of every slice of each image, and measured at 256×256 with a width-16 model each image in
 * a chunk added about 250 MB to the peak (test/spn/memory.test.ts), far more than estimated. 65,536
 * pixels: 64 images of 32×32 (the batches of the small presets unchanged), 16 of 64×64, one of
 * 256×256.
 */
export const EVAL_CHUNK_PIXELS = 65_536;

/** Images evaluated together in one forward pass: within the budget, at least one. */
export function evalChunk(cfg: ModelConfig, batchSize: number, activationMB = EVAL_ACTIVATION_MB): number {
  const byBytes = Math.floor((activationMB * 2 ** 20) / evalBytesPerImage(cfg));
  const byPixels = Math.floor(EVAL_CHUNK_PIXELS / (cfg.height * cfg.width));
  return Math.max(1, Math.min(batchSize, byBytes, byPixels));
}

/**
 * What one image's forward pass over one slice holds at its peak, in bytes (fp32), over-estimated:
 * every intermediate of the slice stays alive until the slice's scope ends. The context stack
 * (values and known planes of every slice, twice for the relative layout's ring), the
 * conditioning blocks, each decoder block (norms, the masked conv, q/k/v and the attention's
 * output, the MLP; the fused attention kernel holds no T×T scores) and the channel head with its
 * logits.
 */
export function evalBytesPerImage(cfg: ModelConfig): number {
  const P = (cfg.height / cfg.scale) * (cfg.width / cfg.scale); // pixels of a slice
  const D = cfg.dim;
  const stack = 4 * cfg.channels * cfg.scale * cfg.scale * P;
  const cond = cfg.condLayers * 6 * D * P;
  const dec = cfg.decLayers * (16 + 3 * cfg.mlpRatio) * D * P;
  const head = cfg.channels * P * (6 * D + 2 * 2 ** cfg.bits);
  return 4 * (stack + cond + dec + head);
}

export interface EvalShard {
  rank: number;
  size: number;
  sum(values: Float64Array): Float64Array;
}

export function evaluate(model: SPN, set: ImageSet, o: EvaluateOptions = {}): EvalResult {
  const n = Math.min(set.n, o.limit ?? set.n);
  const bs = o.batchSize ?? 64;
  const chunk = evalChunk(model.cfg, bs, o.activationMB);
  const [first, end] = [model.firstSlice, model.S * model.S];
  const { rank, size } = o.shard ?? { rank: 0, size: 1 };
  const perImage = new Float64Array(n * end);
  const wasTraining = model.training;
  model.eval();
  try {
    for (let i = rank * bs; i < n; i += size * bs) {
      const m = Math.min(bs, n - i);
      const images = perImage.subarray(i * end, (i + m) * end);
      // The batch in chunks of `chunk` images, each read when it is evaluated: the images are
      // independent, so every image's numbers are the same whatever the chunks.
      for (let c = 0; c < m; c += chunk) {
        const mc = Math.min(chunk, m - c);
        torch.noGrad(() => torch.tidy(() => {
          const batch = toBatch(set.read(i + c, mc), mc, model.cfg, model.device);
          for (let k = first; k < end; k++) {
            // One slice at a time, its tensors freed before the next: memory does not grow with S².
            const nll = torch.tidy(() => {
              const v = model.nll(batch, torch.full([mc], k, { dtype: 'int64', device: model.device })).to('float64').data() as Float64Array;
              // Else freed memory stays in malloc's heap and RSS grows image by image (torch/heap.ts).
              // Here, while the slice's tensors are alive, a trim returns only what earlier slices
              // left unusable, not the buffers the next slice reuses.
              torch.trimHeap();
              return v;
            });
            for (let j = 0; j < mc; j++) images[(c + j) * end + k] = nll[j]!;
          }
        }));
      }
      o.onImages?.(i, images.slice());
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
