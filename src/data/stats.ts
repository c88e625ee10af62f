// Dataset statistics: per-channel means (reported by `spn data`, and a quick check that a
// loader put the channels in the right place).
import type { ImageSet } from './types.js';

/** Images per read: bounded memory for a set of any size. */
const CHUNK_BYTES = 64 << 20;

/** Mean of each channel over all pixels of all images; empty sets give NaN. */
export function channelMeans(set: ImageSet): number[] {
  const sums = new Float64Array(set.c);
  const { c } = set;
  const per = Math.max(1, Math.floor(CHUNK_BYTES / Math.max(1, set.h * set.w * c)));
  for (let start = 0; start < set.n; start += per) {
    const data = set.read(start, Math.min(per, set.n - start));
    for (let i = 0; i < data.length; i += c) {
      for (let k = 0; k < c; k++) sums[k] += data[i + k]!;
    }
  }
  const count = set.n * set.h * set.w;
  return Array.from(sums, (s) => s / count);
}
