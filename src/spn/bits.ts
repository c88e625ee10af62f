// Bit depth (SPN paper, section 3.2, "depth upscaling"): an 8-bit value is split into its most
// significant bits, generated first, and its least significant bits, generated conditioned on
// them. `reduceBits` keeps only the top n bits (the paper's 3- and 5-bit datasets).
import { ArgError } from '../errors.js';

function checkBits(name: string, n: number, min: number): void {
  if (!Number.isInteger(n) || n < min || n > 8) {
    throw new ArgError(`${name}=${n} must be an integer in ${min}..8`);
  }
}

/** Keeps the top n of 8 bits: x >> (8 - n). n = 8 returns a copy. */
export function reduceBits(x: Uint8Array, n: number): Uint8Array {
  checkBits('bits', n, 1);
  const shift = 8 - n;
  const out = new Uint8Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i]! >> shift;
  return out;
}

/**
 * Depth split of (high + low)-bit values: high = x >> low, low = x & (2^low - 1). With
 * high + low = 8 this splits 8-bit pixels; with fewer bits the input must already be reduced.
 */
export function splitBits(x: Uint8Array, high: number, low: number): { high: Uint8Array; low: Uint8Array } {
  checkBits('high', high, 1);
  checkBits('low', low, 0);
  if (high + low > 8) throw new ArgError(`high=${high} + low=${low} must be at most 8 bits`);
  const limit = 1 << (high + low);
  const mask = (1 << low) - 1;
  const hi = new Uint8Array(x.length);
  const lo = new Uint8Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    if (v >= limit) {
      throw new ArgError(`value ${v} at index ${i} does not fit in high + low = ${high + low} bits`);
    }
    hi[i] = v >> low;
    lo[i] = v & mask;
  }
  return { high: hi, low: lo };
}

/** Inverse of splitBits: (high << lowBits) | low. */
export function joinBits(high: Uint8Array, low: Uint8Array, lowBits: number): Uint8Array {
  checkBits('lowBits', lowBits, 0);
  if (high.length !== low.length) {
    throw new ArgError(`high (length ${high.length}) and low (length ${low.length}) must have the same length`);
  }
  const mask = (1 << lowBits) - 1;
  const out = new Uint8Array(high.length);
  for (let i = 0; i < high.length; i++) {
    const l = low[i]!;
    if (l > mask) throw new ArgError(`low value ${l} at index ${i} does not fit in lowBits=${lowBits} bits`);
    const v = (high[i]! << lowBits) | l;
    if (v > 255) throw new ArgError(`joined value ${v} at index ${i} does not fit in 8 bits`);
    out[i] = v;
  }
  return out;
}
