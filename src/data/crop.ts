// Training on crops (`--crop N`): a model of N×N patches learns the statistics of full-resolution
// images, not of resized ones, and codes an image of any size as N×N tiles (src/codec). Training
// draws one random N×N crop of each image of a batch; the test split is cut into fixed tiles.
// Both work per batch on whatever set they are given (a memory-mapped split of any size
// included): nothing is copied whole.
import { ArgError } from '../errors.js';
import { hashSeed, Rng } from './rng.js';
import { BaseSet } from './sets.js';
import type { ImageSet } from './types.js';

/** Mixed into the crops' seed, apart from the batch order's and every other seeded stream. */
const CROP_STREAM = 0x63726f70;

/** Checks that N×N crops fit images of h×w; `what` names the data in the message. */
export function checkCrop(crop: number, h: number, w: number, what: string): void {
  if (!Number.isSafeInteger(crop) || crop < 1) throw new ArgError(`--crop ${crop}: expected a positive integer`);
  if (crop > h || crop > w) throw new ArgError(`--crop ${crop}: ${what} has images of ${h}×${w}, smaller than the crop`);
}

/**
 * One random N×N crop of each of `n` images of h×w×c (`images`, (n, h, w, c) row-major): the
 * offset of the image at position `index + i` of epoch `epoch` is drawn from hash(seed, epoch,
 * index + i), so a resumed run (the same batch position) draws the same crops, on any number of
 * ranks.
 */
export function randomCrops(images: Uint8Array, n: number, shape: { h: number; w: number; c: number }, crop: number, at: { seed: number; epoch: number; index: number }): Uint8Array {
  const { h, w, c } = shape;
  checkCrop(crop, h, w, 'the training split');
  const out = new Uint8Array(n * crop * crop * c);
  const row = crop * c;
  for (let i = 0; i < n; i++) {
    const rng = new Rng(hashSeed(at.seed, at.epoch, at.index + i, CROP_STREAM));
    const y = rng.int(h - crop + 1);
    const x = rng.int(w - crop + 1);
    const src = i * h * w * c;
    for (let r = 0; r < crop; r++) {
      const from = src + ((y + r) * w + x) * c;
      out.set(images.subarray(from, from + row), (i * crop + r) * row);
    }
  }
  return out;
}

/** The whole N×N tiles of every image, image after image, tiles in raster order (edge remainders dropped). */
class TileSet extends BaseSet {
  readonly perImage: number;
  private readonly across: number;

  constructor(private readonly src: ImageSet, private readonly crop: number) {
    checkCrop(crop, src.h, src.w, 'the test split');
    const across = Math.floor(src.w / crop);
    const perImage = Math.floor(src.h / crop) * across;
    super({ n: src.n * perImage, h: crop, w: crop, c: src.c }, 'tileSet');
    this.perImage = perImage;
    this.across = across;
  }

  protected readRange(start: number, count: number): Uint8Array {
    const { crop, perImage, across, src } = this;
    const c = src.c;
    const row = crop * c;
    const out = new Uint8Array(count * this.size);
    const first = Math.floor(start / perImage);
    const last = Math.floor((start + count - 1) / perImage);
    const images = src.read(first, last - first + 1); // only the images these tiles come from
    for (let t = 0; t < count; t++) {
      const tile = start + t;
      const img = Math.floor(tile / perImage) - first;
      const k = tile % perImage;
      const y = Math.floor(k / across) * crop;
      const x = (k % across) * crop;
      const base = img * src.h * src.w * c;
      for (let r = 0; r < crop; r++) {
        const from = base + ((y + r) * src.w + x) * c;
        out.set(images.subarray(from, from + row), (t * crop + r) * row);
      }
    }
    return out;
  }
}

/** The fixed N×N tiles of a set's images (the test split of a run trained on crops): a view. */
export function tileSet(set: ImageSet, crop: number): ImageSet {
  return new TileSet(set, crop);
}
