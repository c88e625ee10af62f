// The generation order walked with the incremental decoder (decode.ts): slice by slice from the
// first one a stage generates, pixel by pixel in raster order, channel by channel. At each
// sub-pixel the caller picks the values from the logits (the sampler draws them, the codec's
// encoder reads them from the image and its decoder decodes them); the walk feeds them back to
// the decoder and writes each finished slice into the canvas once, after the slice. One walk for
// the sampler and the codec, so both run the same operations on the same inputs.
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import type { DecodePlan } from './decode.js';
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

/**
 * Picks the values (n,) int64 of one sub-pixel from its logits (n, V). Runs inside a tidy scope
 * that the walk owns.
 */
export type PickFn = (logits: Tensor, at: WalkPosition) => Tensor;

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

/** Walks batch.x (the canvas, (n, H, W, C) int64, written in place) through the stage's slices. */
export function walkSlices(model: SPN, plan: DecodePlan, batch: SliceBatch, o: WalkOptions, pick: PickFn): void {
  const { S, T, h, w } = model;
  const C = model.cfg.channels;
  const canvas = batch.x;
  const n = canvas.size(0);
  let budget = o.maxPixels ?? Infinity;
  for (let k = o.firstSlice; k < S * S && budget > 0; k++) {
    const dec = plan.beginSlice(batch, k); // the context embedding, once per slice
    const pixels: Tensor[] = []; // (n, C) per pixel, written to the canvas after the slice
    try {
      for (let t = 0; t < T && budget > 0; t++, budget--) {
        pixels.push(torch.keep(torch.tidy(() => {
          dec.beginPixel(t);
          const vs: Tensor[] = [];
          for (let c = 0; c < C; c++) {
            const v = pick(dec.channelLogits(c), { slice: k, pixel: t, channel: c }); // (n,)
            dec.setChannel(c, v);
            vs.push(v);
          }
          const values = C === 1 ? vs[0]!.view([n, 1]) : torch.stack(vs, 1); // (n, C)
          dec.setPixel(t, values);
          return values;
        })));
        o.onPixel?.(k, t + 1, T);
      }
      if (pixels.length === T) torch.tidy(() => sliceView(canvas, S, k).copy_(torch.stack(pixels, 1).view([n, h, w, C])));
    } finally {
      dec.dispose();
      torch.dispose(pixels);
    }
    if (pixels.length === T) o.onSliceDone?.(k, canvas);
  }
}
