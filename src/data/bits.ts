// Bit depth of stored values: `reduceBits` keeps the top n of 8 bits (the paper's 3- and 5-bit
// datasets). The depth split of a model's input is spn/stage.ts's splitDepth.
import { ArgError } from '../errors.js';

/** Keeps the top n of 8 bits: x >> (8 - n). n = 8 returns a copy. */
export function reduceBits(x: Uint8Array, n: number): Uint8Array {
  if (!Number.isInteger(n) || n < 1 || n > 8) throw new ArgError(`bits=${n} must be an integer in 1..8`);
  const shift = 8 - n;
  const out = new Uint8Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i]! >> shift;
  return out;
}
