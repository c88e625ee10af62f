// Subscale ordering (SPN paper, section 3.1). An H×W×C image is cut into S² slices; slice (i, j)
// holds the pixels x[i::S, j::S] and has index k = i·S + j. Generation visits slices in order of k,
// pixels inside a slice in raster order, and channels inside a pixel in order. S = 1 is plain
// raster order. Everything here works on flat typed arrays (HWC row-major), not tensors, so the
// data pipeline, the sampler and the tests share one definition of the order.
import { ArgError } from '../errors.js';

/** Any flat numeric typed array holding an image or a batch of images. */
export type PixelArray =
  | Uint8Array
  | Uint8ClampedArray
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array;

/** Where one sub-pixel (one channel of one pixel) sits in the image. */
export interface Position {
  h: number;
  w: number;
  c: number;
}

function isPositiveInt(v: number): boolean {
  return Number.isInteger(v) && v > 0;
}

/** Throws unless S is a positive integer dividing both the height and the width. */
export function checkDivisible(h: number, w: number, S: number): void {
  if (!isPositiveInt(S)) {
    throw new ArgError(`subscale factor S=${S} must be a positive integer`);
  }
  if (!isPositiveInt(h) || !isPositiveInt(w)) {
    throw new ArgError(`image size H=${h}, W=${w} must be positive integers`);
  }
  if (h % S !== 0 || w % S !== 0) {
    throw new ArgError(
      `subscale factor S=${S} must divide the image height H=${h} and width W=${w} ` +
        `(H % S = ${h % S}, W % S = ${w % S})`,
    );
  }
}

function checkShape(len: number, n: number, H: number, W: number, C: number, S: number): void {
  checkDivisible(H, W, S);
  if (!isPositiveInt(C)) throw new ArgError(`channel count C=${C} must be a positive integer`);
  if (!Number.isInteger(n) || n < 0) throw new ArgError(`batch size N=${n} must be an integer ≥ 0`);
  if (len !== n * H * W * C) {
    throw new ArgError(
      `array of length ${len} does not hold ${n}×${H}×${W}×${C} = ${n * H * W * C} values`,
    );
  }
}

function allocLike<T extends PixelArray>(a: T, length: number): T {
  const ctor = a.constructor as new (length: number) => T;
  return new ctor(length);
}

// One loop for both directions: `toSlices` copies image → slices, otherwise slices → image.
function permuteBatch<T extends PixelArray>(
  src: T,
  n: number,
  H: number,
  W: number,
  C: number,
  S: number,
  toSlices: boolean,
): T {
  checkShape(src.length, n, H, W, C, S);
  const out = allocLike(src, src.length);
  const hs = H / S;
  const ws = W / S;
  const imgSize = H * W * C;
  let s = 0; // running index in the slice layout (N, S², H/S, W/S, C)
  for (let b = 0; b < n; b++) {
    const base = b * imgSize;
    for (let i = 0; i < S; i++) {
      for (let j = 0; j < S; j++) {
        for (let y = 0; y < hs; y++) {
          const row = base + (y * S + i) * W * C;
          for (let x = 0; x < ws; x++) {
            const p = row + (x * S + j) * C;
            for (let c = 0; c < C; c++, s++) {
              if (toSlices) out[s] = src[p + c]!;
              else out[p + c] = src[s]!;
            }
          }
        }
      }
    }
  }
  return out;
}

/** One image (H, W, C) → its slices laid out (S², H/S, W/S, C), slice k = i·S + j first by k. */
export function imageToSlices<T extends PixelArray>(img: T, H: number, W: number, C: number, S: number): T {
  return permuteBatch(img, 1, H, W, C, S, true);
}

/** Inverse of imageToSlices: slices (S², H/S, W/S, C) → image (H, W, C). */
export function slicesToImage<T extends PixelArray>(slices: T, H: number, W: number, C: number, S: number): T {
  return permuteBatch(slices, 1, H, W, C, S, false);
}

/** Batched imageToSlices: (N, H, W, C) → (N, S², H/S, W/S, C). */
export function imagesToSlices<T extends PixelArray>(
  imgs: T,
  N: number,
  H: number,
  W: number,
  C: number,
  S: number,
): T {
  return permuteBatch(imgs, N, H, W, C, S, true);
}

/** Batched slicesToImage: (N, S², H/S, W/S, C) → (N, H, W, C). */
export function slicesToImages<T extends PixelArray>(
  slices: T,
  N: number,
  H: number,
  W: number,
  C: number,
  S: number,
): T {
  return permuteBatch(slices, N, H, W, C, S, false);
}

/** Copies out slice k = i·S + j of one image (H, W, C) as (H/S, W/S, C). */
export function extractSlice<T extends PixelArray>(
  img: T,
  H: number,
  W: number,
  C: number,
  S: number,
  k: number,
): T {
  checkShape(img.length, 1, H, W, C, S);
  checkSlice(k, S);
  const i = Math.floor(k / S);
  const j = k % S;
  const hs = H / S;
  const ws = W / S;
  const out = allocLike(img, hs * ws * C);
  let s = 0;
  for (let y = 0; y < hs; y++) {
    for (let x = 0; x < ws; x++) {
      const p = ((y * S + i) * W + x * S + j) * C;
      for (let c = 0; c < C; c++) out[s++] = img[p + c]!;
    }
  }
  return out;
}

function checkSlice(k: number, S: number): void {
  if (!isPositiveInt(S)) throw new ArgError(`subscale factor S=${S} must be a positive integer`);
  if (!Number.isInteger(k) || k < 0 || k >= S * S) {
    throw new ArgError(`slice index k=${k} must be an integer in 0..${S * S - 1} for S=${S}`);
  }
}

/** Index of sub-pixel (h, w, c) in the generation order. */
export function orderPosition(h: number, w: number, c: number, H: number, W: number, C: number, S: number): number {
  checkShape(H * W * C, 1, H, W, C, S);
  if (!Number.isInteger(h) || h < 0 || h >= H || !Number.isInteger(w) || w < 0 || w >= W) {
    throw new ArgError(`position (h=${h}, w=${w}) is outside the ${H}×${W} image`);
  }
  if (!Number.isInteger(c) || c < 0 || c >= C) {
    throw new ArgError(`channel c=${c} must be an integer in 0..${C - 1}`);
  }
  const ws = W / S;
  const sliceSize = (H / S) * ws * C;
  const k = (h % S) * S + (w % S);
  return k * sliceSize + (Math.floor(h / S) * ws + Math.floor(w / S)) * C + c;
}

/** Inverse of orderPosition: the sub-pixel generated at step `index`. */
export function orderToPosition(index: number, H: number, W: number, C: number, S: number): Position {
  checkShape(H * W * C, 1, H, W, C, S);
  if (!Number.isInteger(index) || index < 0 || index >= H * W * C) {
    throw new ArgError(`order index ${index} must be an integer in 0..${H * W * C - 1}`);
  }
  const ws = W / S;
  const sliceSize = (H / S) * ws * C;
  const k = Math.floor(index / sliceSize);
  const r = index % sliceSize;
  const p = Math.floor(r / C);
  return {
    h: Math.floor(p / ws) * S + Math.floor(k / S),
    w: (p % ws) * S + (k % S),
    c: r % C,
  };
}

/**
 * The generation order as a permutation: entry t is the flat HWC index ((h·W + w)·C + c) of the
 * sub-pixel generated at step t. So `slices[t] = img[order[t]]`.
 */
export function generationOrder(H: number, W: number, C: number, S: number): Int32Array {
  const idx = new Int32Array(H * W * C);
  for (let t = 0; t < idx.length; t++) idx[t] = t;
  return imageToSlices(idx, H, W, C, S);
}

/**
 * Which slices of the context stack are known when the model generates target slice k: the
 * slices before k in the subscale order (1 = known, 0 = still to be generated, masked out).
 */
export function contextMask(k: number, S: number): Uint8Array {
  checkSlice(k, S);
  const mask = new Uint8Array(S * S);
  mask.fill(1, 0, k);
  return mask;
}
