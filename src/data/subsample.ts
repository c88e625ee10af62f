// x[::s, ::s] of every image of a set: slice 0 of a larger image, the input of a size-upscaling
// pipeline's base model. A lazy view: each read subsamples only the images it reads.
import { ArgError } from '../errors.js';
import { mapSet } from './sets.js';
import type { ImageSet } from './types.js';

/** x[::s, ::s] of `count` (h, w, c) images. */
export function subsampleImages(x: Uint8Array, count: number, h: number, w: number, c: number, s: number): Uint8Array {
  const [hs, ws] = [h / s, w / s];
  const out = new Uint8Array(count * hs * ws * c);
  let o = 0;
  for (let i = 0; i < count; i++) {
    for (let r = 0; r < hs; r++) {
      for (let x0 = 0; x0 < ws; x0++) {
        const src = ((i * h + r * s) * w + x0 * s) * c;
        for (let ch = 0; ch < c; ch++) out[o++] = x[src + ch]!;
      }
    }
  }
  return out;
}

/** (n, H, W, C) -> (n, H/s, W/s, C), on each read. */
export function subsampleSet(set: ImageSet, s: number): ImageSet {
  if (!Number.isInteger(s) || s < 1) throw new ArgError(`subsample factor ${s}: expected a positive integer`);
  if (s === 1) return set;
  const { h, w, c } = set;
  if (h % s || w % s) throw new ArgError(`subsample factor ${s} does not divide the images' size ${h}×${w}`);
  return mapSet(set, { h: h / s, w: w / s, c }, (x, count) => subsampleImages(x, count, h, w, c, s));
}
