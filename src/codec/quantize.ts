// From a sub-pixel's logits to integer frequencies, the same on every machine: the encoder and
// the decoder must agree on every count or the stream decodes to garbage.
//
// Only IEEE-754 double operations that the language defines exactly (+, −, ×, ÷, Math.floor,
// Math.round) are used, in a fixed order: JavaScript has no fused multiply-add and no
// fast-math, so the same float32 logits give the same counts on any engine and CPU. The
// exponential is our own (`detExp`), not Math.exp, whose last bit the language leaves to the
// engine. Counts: every symbol ≥ 1, total exactly 2^precision.
import { SpnError } from '../errors.js';

export const QUANTIZER_ID = 'softmax-detexp-v1';

const LN2_HI = 6.93147180369123816490e-1; // ln 2 split as in fdlibm: hi has 21 trailing zero bits
const LN2_LO = 1.90821492927058770002e-10;
const INV_LN2 = 1.44269504088896338700;
const MIN_X = -100; // e^-100 ≈ 4e-44: below any count's resolution

/** 1/n! for n = 0..13, by repeated division (exact rule, deterministic). */
const TAYLOR = (() => {
  const c = [1];
  for (let n = 1; n <= 13; n++) c.push(c[n - 1]! / n);
  return c;
})();

/** 2^-k for k = 0..160, by repeated halving (exact). */
const POW2_NEG = (() => {
  const p = [1];
  for (let k = 1; k <= 160; k++) p.push(p[k - 1]! / 2);
  return p;
})();

/**
 * e^x for x ≤ 0 from basic operations only: x = k·ln2 + r with |r| ≤ ln2/2, e^r by its Taylor
 * series to degree 13 (relative error below 1e-15), times 2^k from a table. Returns 0 below −100.
 */
export function detExp(x: number): number {
  if (!(x <= 0)) throw new SpnError('E_ARG', `detExp(${x}): expected x ≤ 0`);
  if (x < MIN_X) return 0;
  const k = Math.round(x * INV_LN2); // ≤ 0
  const r = x - k * LN2_HI - k * LN2_LO;
  let p = TAYLOR[13]!;
  for (let n = 12; n >= 0; n--) p = p * r + TAYLOR[n]!;
  return p * POW2_NEG[-k]!;
}

/** The softmax's normaliser as quantize computed it: the largest logit and Σ detExp(l_i − max). */
export interface SoftmaxNorm {
  max: number;
  sum: number;
}

/**
 * Quantizes logits[offset .. offset + V) to counts and writes their cumulative sums to cum
 * (V + 1 entries, cum[0] = 0, cum[V] = 2^precision): count_i = 1 + floor(p_i · (2^precision − V)),
 * the remainder added to the most probable symbol (the first, on ties). `e` is scratch of length V.
 * With `norm`, also stores the softmax's normaliser there (for modelBits). Returns the index of
 * the most probable symbol.
 */
export function quantize(logits: Float32Array, offset: number, V: number, precision: number, cum: Uint32Array, e: Float64Array, norm?: SoftmaxNorm): number {
  const total = 2 ** precision;
  if (V < 2 || V > total / 2) throw new SpnError('E_ARG', `quantize: ${V} symbols do not fit 2^${precision} counts`);
  let max = -Infinity;
  let best = 0;
  for (let i = 0; i < V; i++) {
    const l = logits[offset + i]!;
    if (!Number.isFinite(l)) throw new SpnError('E_NAN', `the model produced a non-finite logit (${l}) for symbol ${i}`);
    if (l > max) {
      max = l;
      best = i;
    }
  }
  let sum = 0;
  for (let i = 0; i < V; i++) {
    const v = detExp(logits[offset + i]! - max);
    e[i] = v;
    sum += v;
  }
  if (norm) {
    norm.max = max;
    norm.sum = sum;
  }
  const free = total - V;
  const scale = free / sum;
  let used = 0;
  for (let i = 0; i < V; i++) {
    const q = Math.floor(e[i]! * scale);
    e[i] = q;
    used += q;
  }
  // used ≤ free: the products sum to free·(1 ± 1e-13) and each is floored
  if (used > free) throw new SpnError('E_ARG', `quantize: counts overflow (${used} > ${free})`);
  e[best] = e[best]! + (free - used);
  cum[0] = 0;
  for (let i = 0; i < V; i++) cum[i + 1] = cum[i]! + 1 + e[i]!;
  return best;
}

/**
 * −log2 of the model's probability of symbol x (float, for reporting only; not used to code),
 * from the normaliser quantize computed for the same logits: no second pass over the V logits.
 */
export function modelBits(logits: Float32Array, offset: number, x: number, norm: SoftmaxNorm): number {
  return (Math.log(norm.sum) - (logits[offset + x]! - norm.max)) / Math.LN2;
}
