// Subscale ordering on tensors (the typed-array twin is ordering.ts; tests keep them in step).
// Slice (i, j) of an image is x[i::S, j::S]; its index is k = i·S + j.
import { checkDivisible } from './ordering.js';
import type { Tensor } from '../torch/index.js';

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
  const [B, , h, w, C] = s.shape as [number, number, number, number, number];
  return s.reshape([B, S, S, h, w, C]).permute([0, 3, 1, 4, 2, 5]).reshape([B, h * S, w * S, C]);
}

/** Slice (i, j) as a strided view x[:, i::S, j::S, :] (writable with copy_). */
export function sliceView(x: Tensor, S: number, k: number): Tensor {
  const i = Math.floor(k / S);
  const j = k % S;
  return x.slice(1, i, null, S).slice(2, j, null, S);
}
