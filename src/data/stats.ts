// Dataset statistics: per-channel means (reported by `spn data`, and a quick check that a
// loader put the channels in the right place).
import type { ImageSet } from './types.js';

/** Mean of each channel over all pixels of all images; empty sets give NaN. */
export function channelMeans(set: ImageSet): number[] {
  const sums = new Float64Array(set.c);
  const { data, c } = set;
  const len = set.n * set.h * set.w * c;
  for (let i = 0; i < len; i += c) {
    for (let k = 0; k < c; k++) sums[k] += data[i + k]!;
  }
  const count = set.n * set.h * set.w;
  return Array.from(sums, (s) => s / count);
}
