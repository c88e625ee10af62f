// Bit depth of stored values: `reduceBits` keeps the top n of 8 bits (the paper's 3- and 5-bit
// datasets); `shiftSet` and `applyBits` do it lazily on every read of a set. The depth split of a
// model's input is spn/stage.ts's splitDepth.
import { ArgError } from '../errors.js';
import { mapSet } from './sets.js';
import type { ImageSet } from './types.js';

function checkBits(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > 8) throw new ArgError(`bits=${n} must be an integer in 1..8`);
}

/** Keeps the top n of 8 bits: x >> (8 - n). n = 8 returns a copy. */
export function reduceBits(x: Uint8Array, n: number): Uint8Array {
  checkBits(n);
  return shiftInPlace(x.slice(), 8 - n);
}

function shiftInPlace(x: Uint8Array, shift: number): Uint8Array {
  if (shift === 0) return x;
  for (let i = 0; i < x.length; i++) x[i] = x[i]! >> shift;
  return x;
}

/** Every value of `set` shifted right by `shift` bits, on each read (0 returns the set itself). */
export function shiftSet(set: ImageSet, shift: number): ImageSet {
  if (!Number.isInteger(shift) || shift < 0 || shift > 7) throw new ArgError(`bit shift ${shift} must be an integer in 0..7`);
  if (shift === 0) return set;
  return mapSet(set, set, (x) => shiftInPlace(x, shift));
}

/** Keeps the top `bits` of every 8-bit value, on each read (8 returns the set itself). */
export function applyBits(set: ImageSet, bits: number): ImageSet {
  checkBits(bits);
  return shiftSet(set, 8 - bits);
}
