// Sampling an SPN: slice by slice in subscale order, pixel by pixel in raster order within a
// slice, channel by channel within a pixel.
//
// `sample` is the fast sampler: the conditioning network embeds the context once per slice and
// the decoder runs incrementally (decode.ts: masked-conv states and attention KV caches), so
// a slice costs one context embedding plus T single-position decoder steps. `sampleNaive` reruns
// the whole model over the slice for every sub-pixel, as pixel-cnn's sampler does; it exists to
// check the fast one and to measure the speed-up.
//
// Both draw exactly one uniform u per sub-pixel (a (n,) tensor, in generation order) and pick
// the value by inverse CDF, so for the same seed they produce the same images: any difference
// between them is a bug in the incremental decoder, not noise.
import { ArgError } from '../errors.js';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import type { SPN, SliceBatch } from './model.js';
import { sliceView } from './slices.js';
import { DecodePlan } from './decode.js';
import { evalScope, walkSlices } from './walk.js';

export interface SampleProgress {
  slice: number; // slice index k being generated
  slices: number; // S²
  pixel: number; // pixels of this slice done so far (1..pixels)
  pixels: number; // pixels per slice T
}

export interface SampleOptions {
  n: number; // images to sample (the whole batch is generated at once)
  temperature?: number; // logits are divided by it; default 1
  seed?: number; // torch.manualSeed(seed) before the first draw
  given?: Tensor; // depth stage: the given high bits, (n, H, W, C) int64
  init?: Tensor; // (n, H, W, C) int64 canvas holding the known slices (size stage: slice 0)
  firstSlice?: number; // first slice to generate; default model.firstSlice
  onProgress?: (info: SampleProgress) => void;
  /** Called after slice k with the canvas (n, H, W, C) int64; valid only during the call. */
  onSliceDone?: (k: number, canvas: Tensor) => void;
}

interface Prepared {
  n: number;
  temperature: number;
  firstSlice: number;
  given: Tensor | undefined;
  canvas: Tensor;
}

/** Validates the options and builds the starting canvas (inside the caller's tidy scope). */
function prepare(model: SPN, o: SampleOptions): Prepared {
  const { height: H, width: W, channels: C, stage } = model.cfg;
  const S2 = model.S * model.S;
  if (!Number.isInteger(o.n) || o.n < 1) throw new ArgError(`sample: n must be a positive integer, got ${o.n}`);
  const temperature = o.temperature ?? 1;
  if (!(temperature > 0) || !Number.isFinite(temperature)) throw new ArgError(`sample: temperature must be a positive number, got ${temperature}`);
  const firstSlice = o.firstSlice ?? model.firstSlice;
  if (!Number.isInteger(firstSlice) || firstSlice < 0 || firstSlice >= S2) throw new ArgError(`sample: firstSlice ${firstSlice} is outside 0..${S2 - 1}`);
  if (o.seed !== undefined && !Number.isInteger(o.seed)) throw new ArgError(`sample: seed must be an integer, got ${o.seed}`);
  const shape = [o.n, H, W, C];
  const checkShape = (t: Tensor, name: string): Tensor => {
    if (t.shape.join() !== shape.join()) throw new ArgError(`sample: ${name} has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
    return t.to('int64').to(model.device);
  };
  if (stage === 'depth' && !o.given) throw new ArgError(`sample: a depth-stage model needs 'given' (the high bits, [${shape.join(', ')}] int64)`);
  if (stage !== 'depth' && o.given) throw new ArgError(`sample: 'given' is only for a depth-stage model (this one is '${stage}')`);
  if (firstSlice > 0 && !o.init) throw new ArgError(`sample: starting at slice ${firstSlice} needs 'init' holding slices 0..${firstSlice - 1}`);
  const given = o.given ? checkShape(o.given, 'given') : undefined;
  const canvas = o.init ? checkShape(o.init, 'init').clone() : torch.zeros(shape, { dtype: 'int64', device: model.device });
  return { n: o.n, temperature, firstSlice, given, canvas };
}

/** Sampling arithmetic runs in float64 for float64 models, else float32 (bf16 CDFs are too coarse). */
function samplingDtype(model: SPN): torch.DType {
  return model.dtype === 'float64' ? 'float64' : 'float32';
}

/** One uniform per image for the next sub-pixel, (n, 1); the naive sampler calls this once per sub-pixel, as decode.cc draws for `sample`. */
function drawUniform(model: SPN, n: number): Tensor {
  return torch.rand([n, 1], { dtype: samplingDtype(model), device: model.device });
}

/**
 * Inverse-CDF sampling: logits (n, V), u (n, 1) -> values (n,) int64. The value is the number of
 * CDF entries below u (a binary search: the CDF is non-decreasing); the clamp catches u above a
 * CDF that rounds to slightly under 1.
 */
export function pickValue(logits: Tensor, u: Tensor, temperature: number): Tensor {
  const V = logits.size(1);
  let z = logits.dtype === u.dtype ? logits : logits.to(u.dtype);
  if (temperature !== 1) z = z.div(temperature);
  const cdf = torch.cumsum(torch.softmax(z, 1), 1); // (n, V)
  return torch.clamp(torch.searchsorted(cdf, u), null, V - 1).view([-1]);
}

/**
 * Samples n images with the incremental decoder: (n, H, W, C) int64 in 0..2^bits-1. The
 * returned tensor belongs to the caller (it moves to the caller's tidy scope, if any).
 */
export function sample(model: SPN, opts: SampleOptions): Tensor {
  return evalScope(model, () => {
    const { temperature, firstSlice, given, canvas } = prepare(model, opts);
    if (opts.seed !== undefined) torch.manualSeed(opts.seed);
    const plan = new DecodePlan(model); // decoding weights, prepared once
    try {
      walkSlices(model, plan, { x: canvas, given }, {
        firstSlice,
        ...(opts.onProgress ? { onPixel: (slice: number, pixel: number, pixels: number) => opts.onProgress!({ slice, slices: model.S * model.S, pixel, pixels }) } : {}),
        ...(opts.onSliceDone ? { onSliceDone: opts.onSliceDone } : {}),
      }, () => ({ temperature, dtype: samplingDtype(model) })); // the draws drawUniform makes, in decode.cc
    } finally {
      plan.dispose();
    }
    return canvas;
  });
}

/**
 * The reference sampler: one full forward pass over the slice per sub-pixel. Same options,
 * same random draws, so the same images as `sample` for the same seed; O(T) times slower.
 */
export function sampleNaive(model: SPN, opts: SampleOptions & { maxPixels?: number }): Tensor {
  return evalScope(model, () => {
    const { n, temperature, firstSlice, given, canvas } = prepare(model, opts);
    const { S, T, w } = model;
    const C = model.cfg.channels;
    if (opts.seed !== undefined) torch.manualSeed(opts.seed);
    const batch: SliceBatch = { x: canvas, given };
    let budget = opts.maxPixels ?? Infinity; // for benchmarks: stop after this many pixels
    for (let k = firstSlice; k < S * S && budget > 0; k++) {
      const kt = torch.full([n], k, { dtype: 'int64', device: model.device });
      let t = 0;
      for (; t < T && budget > 0; t++, budget--) {
        torch.tidy(() => {
          const pixel = sliceView(canvas, S, k).select(1, Math.floor(t / w)).select(1, t % w); // (n, C), a view
          for (let c = 0; c < C; c++) {
            const logits = model.forward(batch, kt).select(1, t).select(1, c); // (n, V)
            pixel.select(1, c).copy_(pickValue(logits, drawUniform(model, n), temperature));
          }
        });
        opts.onProgress?.({ slice: k, slices: S * S, pixel: t + 1, pixels: T });
      }
      kt.dispose();
      if (t === T) opts.onSliceDone?.(k, canvas);
    }
    return canvas;
  });
}
