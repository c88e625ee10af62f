// The one code path the encoder and the decoder share: a batch of images walked slice by slice
// in subscale order, pixel by pixel in raster order, channel by channel, through the incremental
// decoder exactly as `sample()` (spn/sample.ts) walks it. The canvas starts with zeros (and, for
// a size stage, the given slice 0); each finished slice is written into it once, after the slice.
// At every sub-pixel the callback gets the model's logits for the m images and returns their
// m values: the encoder returns the known ones (coding them), the decoder decodes them. Both then
// feed the same values back, so both run the same operations on the same inputs.
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import type { DecodePlan } from '../spn/decode.js';
import type { SPN, SliceBatch } from '../spn/model.js';
import { sliceView } from '../spn/slices.js';
import { ArgError, SpnError } from '../errors.js';

export interface SubpixelAt {
  slice: number;
  pixel: number;
  channel: number;
}

/**
 * logits: (m, V) float32, row-major; returns the m values (0..V-1) of this sub-pixel. The array
 * is only valid during the call.
 */
export type SubpixelFn = (logits: Float32Array, at: SubpixelAt) => ArrayLike<number>;

export interface WalkInput {
  /** Images in the batch. */
  m: number;
  /** (m, H, W, C) values known before the walk: zeros, or a size stage's slice 0. */
  canvas: Uint8Array;
  /** Depth stage: the given high bits, (m, H, W, C). */
  given?: Uint8Array;
  /** First slice to walk (default: the model's first slice) and the most sub-pixels to visit (a probe). */
  fromSlice?: number;
  maxSubpixels?: number;
}

/** Runs fn with the model in eval mode, gradients off, inside one tidy scope (as sample() does). */
function evalScope<T>(model: SPN, fn: () => T): T {
  const wasTraining = model.training;
  model.eval();
  try {
    return torch.noGrad(() => torch.tidy(fn));
  } finally {
    model.train(wasTraining);
  }
}

/** Walks one batch through the stage's slices; returns the final canvas (m, H, W, C) as bytes. */
export function walkBatch(model: SPN, plan: DecodePlan, input: WalkInput, fn: SubpixelFn): Uint8Array {
  const { height: H, width: W, channels: C } = model.cfg;
  const { m } = input;
  const size = m * H * W * C;
  if (!Number.isInteger(m) || m < 1) throw new ArgError(`walkBatch: m must be a positive integer, got ${m}`);
  if (input.canvas.length !== size) throw new ArgError(`walkBatch: canvas has ${input.canvas.length} values, expected ${m}×${H}×${W}×${C} = ${size}`);
  if (input.given && input.given.length !== size) throw new ArgError(`walkBatch: given has ${input.given.length} values, expected ${size}`);
  if ((model.cfg.stage === 'depth') !== (input.given !== undefined)) {
    throw new ArgError(`walkBatch: a '${model.cfg.stage}' stage ${model.cfg.stage === 'depth' ? 'needs' : 'takes no'} given high bits`);
  }
  return evalScope(model, () => {
    const { S, T, h, w, V } = model;
    const shape = [m, H, W, C];
    const canvas = torch.fromArray(input.canvas, shape).to('int64');
    const given = input.given ? torch.fromArray(input.given, shape).to('int64') : undefined;
    const batch: SliceBatch = { x: canvas, given };
    let budget = input.maxSubpixels ?? Infinity;
    const values = new BigInt64Array(m);
    for (let k = input.fromSlice ?? model.firstSlice; k < S * S && budget > 0; k++) {
      const dec = plan.beginSlice(batch, k); // the context embedding, once per slice
      const pixels: Tensor[] = []; // (m, C) per pixel, written to the canvas after the slice
      try {
        for (let t = 0; t < T && budget > 0; t++) {
          pixels.push(torch.keep(torch.tidy(() => {
            dec.beginPixel(t);
            const vs: Tensor[] = [];
            for (let c = 0; c < C; c++, budget--) {
              const logits = dec.channelLogits(c); // (m, V)
              if (logits.dtype !== 'float32') throw new SpnError('E_ARG', `the codec needs float32 logits, got ${logits.dtype}`);
              const got = fn(logits.contiguous().data() as Float32Array, { slice: k, pixel: t, channel: c });
              for (let i = 0; i < m; i++) {
                const x = got[i]!;
                if (!Number.isInteger(x) || x < 0 || x >= V) throw new ArgError(`walkBatch: value ${x} for image ${i} is outside 0..${V - 1}`);
                values[i] = BigInt(x);
              }
              const v = torch.fromArray(values, [m]); // (m,) int64
              dec.setChannel(c, v);
              vs.push(v);
            }
            const px = torch.stack(vs, 1); // (m, C)
            dec.setPixel(t, px);
            return px;
          })));
        }
        if (pixels.length === T) torch.tidy(() => sliceView(canvas, S, k).copy_(torch.stack(pixels, 1).view([m, h, w, C])));
      } finally {
        dec.dispose();
        torch.dispose(pixels);
      }
    }
    return new Uint8Array(canvas.to('uint8').contiguous().data() as Uint8Array);
  });
}
