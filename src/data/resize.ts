// Center crop to a square and area-average resampling, on raw HWC uint8 pixels. Done by hand
// rather than by sharp so that downsampling by an integer factor is an exact box average (the
// paper's 32×32 and 64×64 ImageNet are box-downsampled) and works for every loader alike.
import { ArgError } from '../errors.js';

/** For each output index, the input indices it covers and their overlap weights (sum = scale). */
function areaWeights(inSize: number, outSize: number): { start: Int32Array; weights: Float64Array[] } {
  const scale = inSize / outSize;
  const start = new Int32Array(outSize);
  const weights: Float64Array[] = [];
  for (let o = 0; o < outSize; o++) {
    const lo = o * scale;
    const hi = (o + 1) * scale;
    const first = Math.floor(lo);
    const last = Math.min(inSize - 1, Math.ceil(hi) - 1);
    const w = new Float64Array(last - first + 1);
    for (let i = first; i <= last; i++) w[i - first] = Math.min(hi, i + 1) - Math.max(lo, i);
    start[o] = first;
    weights.push(w);
  }
  return { start, weights };
}

/**
 * One image (h, w, c) → (size, size, c): crop the centered square of side min(h, w), then give
 * each output pixel the area-weighted mean of the input pixels it covers, rounded.
 */
export function cropResize(src: Uint8Array, h: number, w: number, c: number, size: number): Uint8Array {
  if (!Number.isInteger(size) || size < 1) throw new ArgError(`size=${size} must be a positive integer`);
  const side = Math.min(h, w);
  const y0 = Math.floor((h - side) / 2);
  const x0 = Math.floor((w - side) / 2);
  if (side === size) {
    const out = new Uint8Array(size * size * c);
    for (let y = 0; y < size; y++) {
      const from = ((y + y0) * w + x0) * c;
      out.set(src.subarray(from, from + size * c), y * size * c);
    }
    return out;
  }
  const { start, weights } = areaWeights(side, size);
  const norm = 1 / ((side / size) * (side / size));
  // Separable: first average along x into (side, size, c), then along y.
  const tmp = new Float64Array(side * size * c);
  for (let y = 0; y < side; y++) {
    const row = ((y + y0) * w + x0) * c;
    for (let ox = 0; ox < size; ox++) {
      const ws = weights[ox]!;
      const sx = start[ox]!;
      for (let k = 0; k < c; k++) {
        let acc = 0;
        for (let t = 0; t < ws.length; t++) acc += ws[t]! * src[row + (sx + t) * c + k]!;
        tmp[(y * size + ox) * c + k] = acc;
      }
    }
  }
  const out = new Uint8Array(size * size * c);
  for (let oy = 0; oy < size; oy++) {
    const ws = weights[oy]!;
    const sy = start[oy]!;
    for (let ox = 0; ox < size; ox++) {
      for (let k = 0; k < c; k++) {
        let acc = 0;
        for (let t = 0; t < ws.length; t++) acc += ws[t]! * tmp[((sy + t) * size + ox) * c + k]!;
        // The epsilon keeps exact .5 averages from flipping on floating-point noise.
        out[(oy * size + ox) * c + k] = Math.min(255, Math.round(acc * norm + 1e-9));
      }
    }
  }
  return out;
}
