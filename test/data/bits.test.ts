import { describe, expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';
import { reduceBits } from '../../src/data/bits.js';
import { parseModelConfig } from '../../src/spn/config.js';
import { joinDepth, splitDepth, toBatch } from '../../src/spn/stage.js';

const ALL = Uint8Array.from({ length: 256 }, (_, i) => i);
const values = (t: torch.Tensor) => Array.from(t.data() as BigInt64Array, Number);

describe('bit depth', () => {
  it('reduceBits keeps the top n bits, for every n and value', () => {
    for (let n = 1; n <= 8; n++) {
      const r = reduceBits(ALL, n);
      for (let v = 0; v < 256; v++) expect(r[v]).toBe(Math.floor(v / 2 ** (8 - n)));
    }
  });

  it('splitDepth / joinDepth round trip every split of 8 bits, and of values already reduced', () => {
    torch.tidy(() => {
      for (let total = 2; total <= 8; total++) {
        const vals = torch.fromArray(reduceBits(ALL, total)).to('int64');
        for (let low = 1; low < total; low++) {
          const { high, low: lo } = splitDepth(vals, low);
          const v = values(vals);
          expect(values(high)).toEqual(v.map((x) => Math.floor(x / 2 ** low)));
          expect(values(lo)).toEqual(v.map((x) => x % 2 ** low));
          expect(Math.max(...values(high))).toBeLessThan(2 ** (total - low));
          expect(values(joinDepth(high, lo, low))).toEqual(v);
        }
      }
    });
  });

  it("toBatch gives a depth stage the low bits as x and the high bits as given", () => {
    torch.tidy(() => {
      const cfg = parseModelConfig({ height: 16, width: 16, channels: 1, bits: 5, scale: 2, dim: 8, heads: 2, condLayers: 0, decLayers: 1, stage: 'depth', givenBits: 3 });
      const b = toBatch(ALL, 1, cfg, 'cpu');
      expect(values(b.x)).toEqual(Array.from(ALL, (v) => v & 31));
      expect(values(b.given!)).toEqual(Array.from(ALL, (v) => v >> 5));
      const full = toBatch(ALL, 1, { ...cfg, stage: 'full', bits: 8, givenBits: 0 }, 'cpu');
      expect(values(full.x)).toEqual(Array.from(ALL));
      expect(full.given).toBeUndefined();
    });
  });

  it('validates its arguments', () => {
    expect(() => reduceBits(ALL, 0)).toThrow(/bits=0.*1\.\.8/);
    expect(() => reduceBits(ALL, 9)).toThrow(expect.objectContaining({ code: 'E_ARG' }));
    expect(() => reduceBits(ALL, 2.5)).toThrow(/bits=2.5/);
    torch.tidy(() => {
      const x = torch.zeros([2], { dtype: 'int64' });
      expect(() => splitDepth(x, 0)).toThrow(/lowBits=0.*1\.\.7/);
      expect(() => joinDepth(x, x, 8)).toThrow(/lowBits=8/);
    });
    const cfg = parseModelConfig({ height: 4, width: 4, channels: 1, bits: 8, scale: 2, dim: 8, heads: 2, condLayers: 0, decLayers: 1 });
    expect(() => toBatch(new Uint8Array(10), 1, cfg, 'cpu')).toThrow(/10 values do not hold 1 images of 4×4×1/);
  });
});
