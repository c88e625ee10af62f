import { describe, expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';
import { checkDivisible, fromSlices, generationOrder, sliceView, toSlices } from '../../src/spn/slices.js';
import { Rng } from '../../src/data/rng.js';

/** The values of a (1, H, W, C) image in generation order, via toSlices. */
function inOrder(img: Uint8Array, H: number, W: number, C: number, S: number): number[] {
  return torch.tidy(() => Array.from(toSlices(torch.fromArray(img, [1, H, W, C]), S).contiguous().data() as Uint8Array));
}

describe('subscale ordering', () => {
  it('hand-written 4×4, S = 2 example', () => {
    //  0  1  2  3
    //  4  5  6  7
    //  8  9 10 11
    // 12 13 14 15
    const img = Uint8Array.from({ length: 16 }, (_, i) => i);
    expect(inOrder(img, 4, 4, 1, 2)).toEqual([0, 2, 8, 10, 1, 3, 9, 11, 4, 6, 12, 14, 5, 7, 13, 15]);
    expect(Array.from(generationOrder(4, 4, 1, 2))).toEqual([0, 2, 8, 10, 1, 3, 9, 11, 4, 6, 12, 14, 5, 7, 13, 15]);
    torch.tidy(() => {
      const x = torch.fromArray(img, [1, 4, 4, 1]);
      expect(Array.from(sliceView(x, 2, 3).contiguous().data() as Uint8Array)).toEqual([5, 7, 13, 15]);
    });
  });

  it('channels stay together inside a pixel (2×2×3, S = 2)', () => {
    const img = Uint8Array.from({ length: 12 }, (_, i) => i);
    // pixels (0,0), (0,1), (1,0), (1,1) each become their own slice, channels in order
    expect(inOrder(img, 2, 2, 3, 2)).toEqual(Array.from(img));
    expect(Array.from(generationOrder(3, 2, 2, 1))).toEqual(Array.from({ length: 12 }, (_, i) => i));
  });

  it('S = 1 is plain raster order', () => {
    expect(Array.from(generationOrder(3, 5, 3, 1))).toEqual(Array.from({ length: 45 }, (_, i) => i));
  });

  it('round trips random shapes and factors; slice 0 is the image subsampled by S; slice k is x[i::S, j::S]', () => {
    const rng = new Rng(1);
    for (let t = 0; t < 30; t++) {
      const S = 1 + rng.int(4);
      const [H, W] = [S * (1 + rng.int(5)), S * (1 + rng.int(5))];
      const C = rng.next() < 0.5 ? 1 : 3;
      const B = 1 + rng.int(3);
      const img = new Uint8Array(B * H * W * C).map(() => rng.int(256));
      torch.tidy(() => {
        const x = torch.fromArray(img, [B, H, W, C]);
        const s = toSlices(x, S);
        expect(s.shape).toEqual([B, S * S, H / S, W / S, C]);
        expect(Array.from(fromSlices(s, S).contiguous().data() as Uint8Array)).toEqual(Array.from(img));
        for (let k = 0; k < S * S; k++) {
          const [i, j] = [Math.floor(k / S), k % S];
          const want: number[] = [];
          for (let b = 0; b < B; b++) {
            for (let y = i; y < H; y += S) for (let xx = j; xx < W; xx += S) for (let c = 0; c < C; c++) want.push(img[((b * H + y) * W + xx) * C + c]!);
          }
          expect(Array.from(s.select(1, k).contiguous().data() as Uint8Array)).toEqual(want);
          expect(Array.from(sliceView(x, S, k).contiguous().data() as Uint8Array)).toEqual(want);
        }
      });
    }
  });

  it('generation order is a permutation', () => {
    for (const [H, W, C, S] of [[8, 8, 3, 4], [6, 9, 1, 3], [4, 6, 3, 2], [5, 5, 1, 1]] as const) {
      const order = generationOrder(H, W, C, S);
      expect(Array.from(order).sort((a, b) => a - b)).toEqual(Array.from({ length: H * W * C }, (_, i) => i));
    }
  });

  it('sliceView writes through to the image', () => {
    torch.tidy(() => {
      const x = torch.zeros([1, 4, 4, 1], { dtype: 'int64' });
      sliceView(x, 2, 1).copy_(torch.ones([1, 2, 2, 1], { dtype: 'int64' }));
      expect(Array.from(x.data() as BigInt64Array, Number)).toEqual([0, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0]);
    });
  });

  it('rejects a factor that does not divide the image, and a slice index out of range', () => {
    expect(() => checkDivisible(28, 28, 3)).toThrow(/S=3.*H=28.*W=28/);
    expect(() => checkDivisible(32, 32, 0)).toThrow(/S=0/);
    expect(() => checkDivisible(32, 32, 4)).not.toThrow();
    torch.tidy(() => {
      expect(() => toSlices(torch.zeros([1, 28, 28, 1]), 3)).toThrow(expect.objectContaining({ code: 'E_ARG' }));
      expect(() => sliceView(torch.zeros([1, 4, 4, 1]), 2, 4)).toThrow(/k=4.*0\.\.3/);
      expect(() => fromSlices(torch.zeros([1, 3, 2, 2, 1]), 2)).toThrow(/3 slices/);
    });
  });
});
