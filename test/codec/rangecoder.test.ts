// The range coder and the quantizer alone, on synthetic distributions: code length against the
// entropy, exact round trips, carries, and the quantizer's invariants and its counts against a
// reference written out from its rule (and against counts computed by hand or in exact arithmetic).
import { describe, expect, it } from 'vitest';
import { findSymbol, MAX_PRECISION, RangeDecoder, RangeEncoder } from '../../src/codec/rangecoder.js';
import { detExp, modelBits, quantize, type SoftmaxNorm } from '../../src/codec/quantize.js';
import { Rng } from '../../src/data/rng.js';

/** A seeded uniform draw in [0, 1) (the project's mulberry32). */
function rng(seed: number): () => number {
  const g = new Rng(seed);
  return () => g.next();
}

/** Cumulative counts (V + 1) of a probability vector, through the codec's quantizer. */
function cumOf(p: number[], precision: number): Uint32Array {
  const logits = Float32Array.from(p, (v) => Math.log(v));
  const cum = new Uint32Array(p.length + 1);
  quantize(logits, 0, p.length, precision, cum, new Float64Array(p.length));
  return cum;
}

/**
 * The quantizer's rule written out directly: p from Math.exp in float64, count_i = 1 +
 * floor(p_i·(2^P − V)), the rest of the 2^P to the first most probable symbol. `near` marks the
 * symbols whose p_i·(2^P − V) lies within 1e-12 (relative) of an integer, where two exponentials
 * that agree to ~1e-15 may still floor differently.
 */
function referenceCounts(logits: Float32Array, P: number): { counts: number[]; best: number; near: boolean[] } {
  const V = logits.length;
  let best = 0;
  for (let i = 1; i < V; i++) if (logits[i]! > logits[best]!) best = i;
  const e = Array.from(logits, (l) => Math.exp(l - logits[best]!));
  const sum = e.reduce((a, b) => a + b, 0);
  const free = 2 ** P - V;
  const x = e.map((v) => (v / sum) * free);
  const q = x.map(Math.floor);
  q[best]! += free - q.reduce((a, b) => a + b, 0);
  // both computations agree to ~1e-14 relative: only a value that close to a positive integer is undecided
  return { counts: q.map((v) => v + 1), best, near: x.map((v) => Math.round(v) > 0 && Math.abs(v - Math.round(v)) < 1e-12 * v) };
}

/** Draws n symbols with probabilities p. */
function draw(p: number[], n: number, seed: number): Int32Array {
  const r = rng(seed);
  const c: number[] = [];
  p.reduce((a, v, i) => (c[i] = a + v), 0);
  return Int32Array.from({ length: n }, () => {
    const u = r() * c[c.length - 1]!;
    const i = c.findIndex((v) => u < v);
    return i < 0 ? p.length - 1 : i;
  });
}

const normalize = (w: number[]) => {
  const s = w.reduce((a, b) => a + b, 0);
  return w.map((v) => v / s);
};

/** Discretized logistic over 0..255 (what a pixel model predicts), centre mu, scale s. */
const logistic = (mu: number, s: number) => normalize(Array.from({ length: 256 }, (_, v) => {
  const sig = (x: number) => 1 / (1 + Math.exp(-x));
  return Math.max(1e-12, sig((v + 0.5 - mu) / s) - sig((v - 0.5 - mu) / s));
}));

const DISTRIBUTIONS: Record<string, number[]> = {
  'uniform over 256': Array.from({ length: 256 }, () => 1 / 256),
  'logistic, scale 8': logistic(100, 8),
  'logistic, scale 1': logistic(40.3, 1),
  'peaked: 0.99 on one of 256': normalize(Array.from({ length: 256 }, (_, v) => (v === 0 ? 0.99 * 255 : 0.01 / 1))),
  'geometric over 16': normalize(Array.from({ length: 16 }, (_, v) => 0.5 ** v)),
  'two symbols 0.999 / 0.001': [0.999, 0.001],
};

const N = 100_000;

describe('range coder on synthetic distributions', () => {
  for (const [name, p] of Object.entries(DISTRIBUTIONS)) {
    it(`${name}: within 0.1% of the entropy over 10^5 symbols, exact round trip`, () => {
      const P = 24;
      const cum = cumOf(p, P);
      const xs = draw(p, N, name.length);
      const enc = new RangeEncoder(P);
      let ideal = 0; // −log2 of the coded counts: the sequence's entropy under the coder's model
      let info = 0; // −log2 of the true probabilities
      for (const x of xs) {
        enc.encode(cum[x]!, cum[x + 1]! - cum[x]!);
        ideal += Math.log2(2 ** P / (cum[x + 1]! - cum[x]!));
        info += -Math.log2(p[x]!);
      }
      const bytes = enc.finish();
      const bits = 8 * bytes.length;
      expect(bits).toBeGreaterThanOrEqual(ideal - 8); // no coder beats the information content
      expect(bits).toBeLessThanOrEqual(ideal * 1.001 + 16);
      expect(bits).toBeLessThanOrEqual(info * 1.001 + 16); // quantization included
      const entropy = -p.reduce((a, v) => a + (v > 0 ? v * Math.log2(v) : 0), 0);
      expect(Math.abs(info / N - entropy)).toBeLessThan(0.05 * entropy + 0.01); // the draw follows p
      const dec = new RangeDecoder(bytes, P);
      const out = new Int32Array(N);
      for (let i = 0; i < N; i++) {
        const s = findSymbol(cum, p.length, dec.target());
        dec.update(cum[s]!, cum[s + 1]! - cum[s]!);
        out[i] = s;
      }
      expect(dec.corrupt).toBe(false);
      expect(Buffer.from(out.buffer).equals(Buffer.from(xs.buffer))).toBe(true);
    });
  }

  it('round-trips a distribution that changes every symbol, with carries through long 0xFF runs', () => {
    // count what the encoder meets: carries out of the window, and runs of pending 0xFF bytes
    type Internals = { low: number; pending: number; shiftLow(): void };
    const proto = RangeEncoder.prototype as unknown as Internals;
    const shiftLow = proto.shiftLow;
    let carries = 0;
    let longRuns = 0;
    proto.shiftLow = function (this: Internals) {
      if (this.low >= 2 ** 48) carries++;
      if (this.pending > 4) longRuns++;
      shiftLow.call(this);
    };
    try {
      const r = rng(7);
      const P = 24;
      const total = 2 ** P;
      const tables: Uint32Array[] = [];
      const xs: number[] = [];
      const enc = new RangeEncoder(P);
      const top = Uint32Array.of(0, total - 1, total); // symbol 1: the top 2^-24 of the range
      for (let i = 0; i < 20_000; i++) {
        if (i % 1000 < 12) {
          // the top sliver again and again: low's window fills with 0xFF bytes
          tables.push(top);
          xs.push(1);
          enc.encode(total - 1, 1);
          continue;
        }
        const V = 2 + Math.floor(r() * 255);
        // extreme tables: one huge count, the rest 1; or random ones
        const big = r() < 0.5;
        const w = Array.from({ length: V }, (_, v) => (big ? (v === V - 1 ? 1e9 : 1e-9) : r() + 1e-3));
        const cum = cumOf(normalize(w), P);
        const x = big && r() < 0.9 ? V - 1 : Math.floor(r() * V);
        tables.push(cum);
        xs.push(x);
        enc.encode(cum[x]!, cum[x + 1]! - cum[x]!);
      }
      const bytes = enc.finish();
      expect(carries).toBeGreaterThan(100);
      expect(longRuns).toBeGreaterThan(10);
      const dec = new RangeDecoder(bytes, P);
      const out = tables.map((cum) => {
        const V = cum.length - 1;
        const s = findSymbol(cum, V, dec.target());
        dec.update(cum[s]!, cum[s + 1]! - cum[s]!);
        return s;
      });
      expect(out).toEqual(xs);
      expect(dec.corrupt).toBe(false);
    } finally {
      proto.shiftLow = shiftLow;
    }
  });

  it('works at every precision, and an empty stream is empty', () => {
    for (const P of [1, 2, 8, 16, MAX_PRECISION]) {
      const total = 2 ** P;
      const xs = draw([0.5, 0.5], 1000, P);
      const enc = new RangeEncoder(P);
      const half = total / 2;
      for (const x of xs) enc.encode(x * half, half);
      const bytes = enc.finish();
      expect(bytes.length).toBeLessThanOrEqual(1000 / 8 + 2);
      const dec = new RangeDecoder(bytes, P);
      expect(Array.from(xs, () => { const s = dec.target() < half ? 0 : 1; dec.update(s * half, half); return s; })).toEqual(Array.from(xs));
    }
    expect(new RangeEncoder(24).finish().length).toBe(0);
    expect(() => new RangeEncoder(25)).toThrow(/precision 25: expected an integer in 1\.\.24/);
    expect(() => new RangeEncoder(16).encode(0, 0)).toThrow(/not a non-empty part/);
    expect(() => new RangeEncoder(16).encode(65535, 2)).toThrow(/not a non-empty part/);
  });

  it('flags a stream that no encoder wrote', () => {
    // All 0xFF: the value is at the very top of the initial range, where no symbol can be
    const dec = new RangeDecoder(new Uint8Array(16).fill(0xff), 24);
    expect(dec.target()).toBe(2 ** 24 - 1);
    expect(dec.corrupt).toBe(true);
  });
});

describe('quantizer', () => {
  it('detExp agrees with Math.exp to 1e-14 and is exact at 0', () => {
    expect(detExp(0)).toBe(1);
    const r = rng(3);
    let worst = 0;
    for (let i = 0; i < 10_000; i++) {
      const x = -r() * 90;
      worst = Math.max(worst, Math.abs(detExp(x) / Math.exp(x) - 1));
    }
    expect(worst).toBeLessThan(1e-14);
    expect(detExp(-101)).toBe(0);
    expect(() => detExp(0.5)).toThrow(/expected x ≤ 0/);
  });

  it('counts are ≥ 1, sum to 2^precision, and are the ones its rule gives (a reference written out)', () => {
    const r = rng(11);
    let near = 0;
    let checked = 0;
    for (let trial = 0; trial < 200; trial++) {
      const V = 2 + Math.floor(r() * 255);
      const logits = Float32Array.from({ length: V }, () => (r() - 0.5) * (trial % 2 ? 60 : 6));
      const P = trial % 3 ? 24 : 16;
      const cum = new Uint32Array(V + 1);
      const norm: SoftmaxNorm = { max: 0, sum: 0 };
      const best = quantize(logits, 0, V, P, cum, new Float64Array(V), norm);
      expect(cum[0]).toBe(0);
      expect(cum[V]).toBe(2 ** P);
      const counts = Array.from({ length: V }, (_, i) => cum[i + 1]! - cum[i]!);
      for (const c of counts) expect(c).toBeGreaterThanOrEqual(1);
      const ref = referenceCounts(logits, P);
      expect(best).toBe(ref.best);
      expect(counts[best]).toBe(Math.max(...counts));
      // every count as the rule gives it; where the reference is too close to call, within one
      let off = 0;
      for (let i = 0; i < V; i++) {
        if (i === best) continue;
        if (ref.near[i]) {
          near++;
          expect(Math.abs(counts[i]! - ref.counts[i]!)).toBeLessThanOrEqual(1);
          off += counts[i]! - ref.counts[i]!;
        } else {
          expect(counts[i]).toBe(ref.counts[i]);
          checked++;
        }
      }
      expect(counts[best]).toBe(ref.counts[best]! - off); // the remainder goes to the most probable symbol
      // the model's NLL from quantize's normaliser: −log2 of the float softmax
      const x = trial % V;
      const nll = -Math.log2(Math.exp(logits[x]! - logits[best]!) / Array.from(logits, (l) => Math.exp(l - logits[best]!)).reduce((a, b) => a + b, 0));
      expect(norm.max).toBe(logits[best]);
      expect(Math.abs(modelBits(logits, 0, x, norm) - nll)).toBeLessThan(1e-9 * Math.max(1, nll));
    }
    expect(checked).toBeGreaterThan(20000); // the comparison is not vacuous: nearly every count is decided
    expect(near).toBeLessThan(10);
    // fixed logits (exact in float32), counts computed in 60-digit decimal arithmetic from the rule
    const fixed = (logits: number[], P: number) => {
      const cum = new Uint32Array(logits.length + 1);
      quantize(Float32Array.from(logits), 0, logits.length, P, cum, new Float64Array(logits.length));
      return Array.from(cum);
    };
    expect(fixed([1.5, -0.25, 0.75, -3, 2.125], 24)).toEqual([0, 4758824, 5585784, 7833694, 7886560, 16777216]);
    expect(fixed([0.5, -7.75, 3.25, 3.0, -1.5, 0.125, -20.0, 1.0], 16)).toEqual([0, 2094, 2095, 34850, 60358, 60642, 62082, 62083, 65536]);
    // by hand: equal logits share 2^P − V evenly, the remainder to the first (13 = 3·4 + 1)
    expect(fixed([0, 0, 0, 0], 4)).toEqual([0, 4, 8, 12, 16]);
    expect(fixed([0, 0, 0], 4)).toEqual([0, 6, 11, 16]);
    // a symbol below e^-100 gets the minimum count: detExp is 0 there
    expect(fixed([0, -200], 8)).toEqual([0, 255, 256]);
    // exact counts for a known case: logits log(1), log(3) -> p = 1/4, 3/4 of 2^16 - 2 free counts
    const cum = new Uint32Array(3);
    quantize(Float32Array.of(0, Math.log(3)), 0, 2, 16, cum, new Float64Array(2));
    expect(Array.from(cum)).toEqual([0, 1 + 16383, 65536]); // floor(65534/4) = 16383; the rest to the second
    expect(() => quantize(Float32Array.of(0, NaN), 0, 2, 16, cum, new Float64Array(2))).toThrow(/non-finite logit/);
  });
});
