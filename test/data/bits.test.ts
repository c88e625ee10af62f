import { describe, expect, it } from 'vitest';
import { joinBits, reduceBits, splitBits } from '../../src/spn/bits.js';

const ALL = Uint8Array.from({ length: 256 }, (_, i) => i);

describe('bit depth', () => {
  it('reduceBits keeps the top n bits, for every n and value', () => {
    for (let n = 1; n <= 8; n++) {
      const r = reduceBits(ALL, n);
      for (let v = 0; v < 256; v++) expect(r[v]).toBe(Math.floor(v / 2 ** (8 - n)));
    }
  });

  it('splitBits / joinBits round trip every split of 8 bits', () => {
    for (let low = 0; low <= 7; low++) {
      const high = 8 - low;
      const { high: hi, low: lo } = splitBits(ALL, high, low);
      for (let v = 0; v < 256; v++) {
        expect(hi[v]).toBe(Math.floor(v / 2 ** low));
        expect(lo[v]).toBe(v % 2 ** low);
        expect(hi[v]!).toBeLessThan(2 ** high);
      }
      expect(joinBits(hi, lo, low)).toEqual(ALL);
    }
  });

  it('splits values already reduced to fewer bits', () => {
    for (let total = 2; total <= 7; total++) {
      const vals = reduceBits(ALL, total);
      for (let low = 1; low < total; low++) {
        const { high, low: lo } = splitBits(vals, total - low, low);
        expect(joinBits(high, lo, low)).toEqual(vals);
      }
    }
  });

  it('validates its arguments', () => {
    expect(() => reduceBits(ALL, 0)).toThrow(/bits=0.*1\.\.8/);
    expect(() => reduceBits(ALL, 9)).toThrow(expect.objectContaining({ code: 'E_ARG' }));
    expect(() => reduceBits(ALL, 2.5)).toThrow(/bits=2.5/);
    expect(() => splitBits(ALL, 5, 4)).toThrow(/at most 8/);
    expect(() => splitBits(ALL, 3, 2)).toThrow(/value 32.*5 bits/);
    expect(() => joinBits(new Uint8Array(2), new Uint8Array(3), 1)).toThrow(/same length/);
    expect(() => joinBits(Uint8Array.of(1), Uint8Array.of(4), 2)).toThrow(/low value 4/);
  });
});
