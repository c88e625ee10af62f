// The one code path the encoder and the decoder share: a batch of images walked slice by slice
// in subscale order, pixel by pixel in raster order, channel by channel, through the incremental
// decoder exactly as `sample()` (spn/sample.ts) walks it. The canvas starts with zeros (and, for
// a size stage, the given slice 0); each finished slice is written into it once, after the slice.
// At every sub-pixel the callback gets the model's logits for the m images and returns their
// m values: the encoder returns the known ones (coding them), the decoder decodes them. Both then
// feed the same values back, so both run the same operations on the same inputs.
import * as torch from '../torch/index.js';
import type { DecodePlan } from '../spn/decode.js';
import type { SPN } from '../spn/model.js';
import { evalScope, walkSlices, type WalkPosition } from '../spn/walk.js';
import { ArgError, SpnError } from '../errors.js';

export type SubpixelAt = WalkPosition;

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
  /** First slice to walk (default: the model's first slice) and the most sub-pixels to visit (a probe; rounded up to whole pixels). */
  fromSlice?: number;
  maxSubpixels?: number;
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
  // the logits come in the model's dtype (the decode plan's buffers): checked once, not per sub-pixel
  if (model.dtype !== 'float32') throw new SpnError('E_ARG', `the codec needs float32 logits, got ${model.dtype} (the model's dtype)`);
  return evalScope(model, () => {
    const V = model.V;
    const shape = [m, H, W, C];
    const canvas = torch.fromArray(input.canvas, shape).to('int64');
    const given = input.given ? torch.fromArray(input.given, shape).to('int64') : undefined;
    const logits = new Float32Array(m * V); // decode.cc writes each sub-pixel's logits here
    const values = new Int32Array(m); // and reads the values back from here
    walkSlices(model, plan, { x: canvas, given }, {
      firstSlice: input.fromSlice ?? model.firstSlice,
      ...(input.maxSubpixels !== undefined ? { maxPixels: Math.ceil(input.maxSubpixels / C) } : {}),
    }, (slice) => ({
      logits,
      values,
      fn: (pixel, channel) => {
        const got = fn(logits, { slice, pixel, channel });
        for (let i = 0; i < m; i++) {
          const x = got[i]!;
          if (!Number.isInteger(x) || x < 0 || x >= V) throw new ArgError(`walkBatch: value ${x} for image ${i} is outside 0..${V - 1}`);
          values[i] = x;
        }
      },
    }));
    return new Uint8Array(canvas.to('uint8').contiguous().data() as Uint8Array);
  });
}
