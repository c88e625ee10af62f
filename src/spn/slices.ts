// Subscale ordering (SPN paper, section 3.1). An H×W×C image is cut into S² slices; slice (i, j)
// holds the pixels x[i::S, j::S] and has index k = i·S + j. Generation visits slices in order of k,
// pixels inside a slice in raster order, and channels inside a pixel in order. S = 1 is plain
// raster order. One definition, on tensors: the model, the sampler, the codec and the tests all
// use these functions.
import { ArgError } from '../errors.js';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';

const isPositiveInt = (v: number): boolean => Number.isInteger(v) && v > 0;

/** Throws unless S is a positive integer dividing both the height and the width. */
export function checkDivisible(h: number, w: number, S: number): void {
  if (!isPositiveInt(S)) throw new ArgError(`subscale factor S=${S} must be a positive integer`);
  if (!isPositiveInt(h) || !isPositiveInt(w)) throw new ArgError(`image size H=${h}, W=${w} must be positive integers`);
  if (h % S !== 0 || w % S !== 0) {
    throw new ArgError(`subscale factor S=${S} must divide the image height H=${h} and width W=${w} (H % S = ${h % S}, W % S = ${w % S})`);
  }
}

/** (B, H, W, C) -> (B, S², H/S, W/S, C), slice k = i·S + j holding x[:, i::S, j::S]. */
export function toSlices(x: Tensor, S: number): Tensor {
  const [B, H, W, C] = x.shape as [number, number, number, number];
  checkDivisible(H, W, S);
  const h = H / S;
  const w = W / S;
  // (B, h, S, w, S, C): row r·S + i -> (r, i), column c·S + j -> (c, j)
  return x.reshape([B, h, S, w, S, C]).permute([0, 2, 4, 1, 3, 5]).reshape([B, S * S, h, w, C]);
}

/** The inverse of toSlices: (B, S², h, w, C) -> (B, h·S, w·S, C). */
export function fromSlices(s: Tensor, S: number): Tensor {
  const [B, P, h, w, C] = s.shape as [number, number, number, number, number];
  if (P !== S * S) throw new ArgError(`fromSlices: ${P} slices, expected S² = ${S * S}`);
  return s.reshape([B, S, S, h, w, C]).permute([0, 3, 1, 4, 2, 5]).reshape([B, h * S, w * S, C]);
}

/** Slice (i, j) as a strided view x[:, i::S, j::S, :] (writable with copy_). */
export function sliceView(x: Tensor, S: number, k: number): Tensor {
  if (!Number.isInteger(k) || k < 0 || k >= S * S) throw new ArgError(`slice index k=${k} is outside 0..${S * S - 1}`);
  const i = Math.floor(k / S);
  const j = k % S;
  return x.slice(1, i, null, S).slice(2, j, null, S);
}

/**
 * The generation order of an H×W×C image: entry t is the flat (row-major HWC) index of the t-th
 * generated sub-pixel. A permutation of 0..H·W·C-1.
 */
export function generationOrder(H: number, W: number, C: number, S: number): Int32Array {
  checkDivisible(H, W, S);
  return torch.tidy(() => {
    const index = torch.arange(H * W * C, undefined, 1, { dtype: 'int32' }).view([1, H, W, C]);
    return Int32Array.from(toSlices(index, S).contiguous().data() as Int32Array);
  });
}
