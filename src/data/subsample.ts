// x[::s, ::s] of every image of a set: slice 0 of a larger image, the input of a size-upscaling
// pipeline's base model.
import { ArgError } from '../errors.js';
import type { ImageSet } from './types.js';

/** (n, H, W, C) -> (n, H/s, W/s, C). */
export function subsampleSet(set: ImageSet, s: number): ImageSet {
  if (!Number.isInteger(s) || s < 1) throw new ArgError(`subsample factor ${s}: expected a positive integer`);
  if (s === 1) return set;
  const { n, h, w, c } = set;
  if (h % s || w % s) throw new ArgError(`subsample factor ${s} does not divide the images' size ${h}×${w}`);
  const [hs, ws] = [h / s, w / s];
  const out = new Uint8Array(n * hs * ws * c);
  let o = 0;
  for (let i = 0; i < n; i++) {
    for (let r = 0; r < hs; r++) {
      for (let x = 0; x < ws; x++) {
        const src = ((i * h + r * s) * w + x * s) * c;
        for (let ch = 0; ch < c; ch++) out[o++] = set.data[src + ch]!;
      }
    }
  }
  return { data: out, n, h: hs, w: ws, c };
}
