// The generation order walked with the incremental decoder (decode.ts): slice by slice from the
// first one a stage generates, pixel by pixel in raster order, channel by channel. At each
// sub-pixel the values are picked from the logits (the sampler draws them, the codec's encoder
// reads them from the image and its decoder decodes them); the decoder feeds them back and the
// walk writes each finished slice into the canvas once, after the slice. One walk for
// the sampler and the codec, so both run the same operations on the same inputs.
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import type { DecodePlan, SlicePick } from './decode.js';
import type { SPN, SliceBatch } from './model.js';
import { sliceView } from './slices.js';

export interface WalkPosition {
  slice: number; // k
  pixel: number; // t, raster order in the slice
  channel: number; // c
}

export interface WalkOptions {
  /** First slice to generate. */
  firstSlice: number;
  /** Stop after this many pixels (benchmarks, the codec's probe); a slice cut short is not written. */
  maxPixels?: number;
  /** After each pixel: the slice, the pixels of it done, and T. */
  onPixel?: (slice: number, done: number, pixels: number) => void;
  /** After slice k, with the canvas (n, H, W, C) int64; valid only during the call. */
  onSliceDone?: (k: number, canvas: Tensor) => void;
}

/** Runs fn with the model in eval mode (no dropout) and gradients off, in one tidy scope. */
export function evalScope<T>(model: SPN, fn: () => T): T {
  const wasTraining = model.training;
  model.eval();
  try {
    return torch.noGrad(() => torch.tidy(fn));
  } finally {
    model.train(wasTraining);
  }
}

/**
 * Walks batch.x (the canvas, (n, H, W, C) int64, written in place) through the stage's slices;
 * `pickFor(k)` says how slice k's sub-pixels are picked (decode.ts SlicePick).
 */
export function walkSlices(model: SPN, plan: DecodePlan, batch: SliceBatch, o: WalkOptions, pickFor: (slice: number) => SlicePick): void {
  const { S, T, h, w } = model;
  const C = model.cfg.channels;
  const canvas = batch.x;
  const n = canvas.size(0);
  let budget = o.maxPixels ?? Infinity;
  for (let k = o.firstSlice; k < S * S && budget > 0; k++) {
    const pixels = Math.min(T, budget);
    budget -= pixels;
    const onPixel = o.onPixel;
    torch.tidy(() => {
      const values = plan.decodeSlice(batch, k, pickFor(k), { pixels, ...(onPixel ? { onPixel: (done: number) => onPixel(k, done, T) } : {}) }); // (n, pixels, C)
      if (pixels === T) sliceView(canvas, S, k).copy_(values.view([n, h, w, C]));
      // Earlier slices' freed memory back (torch/heap.ts), while this slice's tensors are alive so
      // that the trim does not return what the next slice reuses: without it a 256×256 draw grew
      // 2.3 MB a slice.
      torch.trimHeap();
    });
    if (pixels === T) o.onSliceDone?.(k, canvas);
  }
}
