import { describe, expect, it } from 'vitest';
import {
  checkDivisible,
  contextMask,
  extractSlice,
  generationOrder,
  imagesToSlices,
  imageToSlices,
  orderPosition,
  orderToPosition,
  slicesToImage,
  slicesToImages,
} from '../../src/spn/ordering.js';
import { Rng } from '../../src/data/rng.js';

function randomImage(rng: Rng, len: number): Uint8Array {
  const a = new Uint8Array(len);
  for (let i = 0; i < len; i++) a[i] = rng.int(256);
  return a;
}

describe('subscale ordering', () => {
  it('hand-written 4×4, S = 2 example', () => {
    // 0  1  2  3
    // 4  5  6  7
    // 8  9 10 11
    // 12 13 14 15
    const img = Uint8Array.from({ length: 16 }, (_, i) => i);
    const slices = imageToSlices(img, 4, 4, 1, 2);
    expect(Array.from(slices)).toEqual([0, 2, 8, 10, 1, 3, 9, 11, 4, 6, 12, 14, 5, 7, 13, 15]);
    expect(Array.from(generationOrder(4, 4, 1, 2))).toEqual(Array.from(slices));
    expect(orderPosition(0, 0, 0, 4, 4, 1, 2)).toBe(0);
    expect(orderPosition(0, 1, 0, 4, 4, 1, 2)).toBe(4);
    expect(orderPosition(1, 0, 0, 4, 4, 1, 2)).toBe(8);
    expect(orderPosition(2, 2, 0, 4, 4, 1, 2)).toBe(3);
    expect(orderPosition(3, 3, 0, 4, 4, 1, 2)).toBe(15);
    expect(orderToPosition(9, 4, 4, 1, 2)).toEqual({ h: 1, w: 2, c: 0 });
    expect(Array.from(extractSlice(img, 4, 4, 1, 2, 3))).toEqual([5, 7, 13, 15]);
  });

  it('channels stay together inside a pixel (2×2×3, S = 2)', () => {
    const img = Uint8Array.from({ length: 12 }, (_, i) => i);
    // Pixels (0,0), (0,1), (1,0), (1,1) each become their own slice, channels in order.
    expect(Array.from(imageToSlices(img, 2, 2, 3, 2))).toEqual(Array.from(img));
    expect(orderPosition(1, 0, 2, 2, 2, 3, 2)).toBe(8);
  });

  it('S = 1 is plain raster order', () => {
    const order = generationOrder(3, 5, 3, 1);
    expect(Array.from(order)).toEqual(Array.from({ length: 45 }, (_, i) => i));
  });

  it('round trips random shapes and factors', () => {
    const rng = new Rng(1);
    for (let t = 0; t < 40; t++) {
      const S = 1 + rng.int(4);
      const H = S * (1 + rng.int(5));
      const W = S * (1 + rng.int(5));
      const C = rng.next() < 0.5 ? 1 : 3;
      const img = randomImage(rng, H * W * C);
      const slices = imageToSlices(img, H, W, C, S);
      expect(slicesToImage(slices, H, W, C, S)).toEqual(img);
      // Slice 0 is the image subsampled by S.
      const sub: number[] = [];
      for (let y = 0; y < H; y += S) for (let x = 0; x < W; x += S) for (let c = 0; c < C; c++) sub.push(img[(y * W + x) * C + c]!);
      expect(Array.from(slices.subarray(0, sub.length))).toEqual(sub);
      expect(Array.from(extractSlice(img, H, W, C, S, 0))).toEqual(sub);
      // Every slice is x[i::S, j::S].
      for (let k = 0; k < S * S; k++) {
        const n = (H / S) * (W / S) * C;
        expect(extractSlice(img, H, W, C, S, k)).toEqual(slices.subarray(k * n, (k + 1) * n));
      }
    }
  });

  it('generation order is a permutation that orderPosition/orderToPosition invert', () => {
    for (const [H, W, C, S] of [
      [8, 8, 3, 4],
      [6, 9, 1, 3],
      [4, 6, 3, 2],
      [5, 5, 1, 1],
    ] as const) {
      const order = generationOrder(H, W, C, S);
      const seen = new Uint8Array(H * W * C);
      for (let t = 0; t < order.length; t++) {
        const flat = order[t]!;
        seen[flat]++;
        const c = flat % C;
        const w = Math.floor(flat / C) % W;
        const h = Math.floor(flat / C / W);
        expect(orderPosition(h, w, c, H, W, C, S)).toBe(t);
        expect(orderToPosition(t, H, W, C, S)).toEqual({ h, w, c });
      }
      expect(seen.every((v) => v === 1)).toBe(true);
    }
  });

  it('batched variants match the single-image ones and keep the array type', () => {
    const rng = new Rng(2);
    const [N, H, W, C, S] = [3, 6, 4, 3, 2];
    const imgs = new Float32Array(N * H * W * C).map(() => rng.next());
    const slices = imagesToSlices(imgs, N, H, W, C, S);
    expect(slices).toBeInstanceOf(Float32Array);
    const size = H * W * C;
    for (let b = 0; b < N; b++) {
      expect(slices.subarray(b * size, (b + 1) * size)).toEqual(imageToSlices(imgs.subarray(b * size, (b + 1) * size), H, W, C, S));
    }
    expect(slicesToImages(slices, N, H, W, C, S)).toEqual(imgs);
  });

  it('context mask marks the slices before the target as known', () => {
    expect(Array.from(contextMask(0, 2))).toEqual([0, 0, 0, 0]);
    expect(Array.from(contextMask(2, 2))).toEqual([1, 1, 0, 0]);
    expect(Array.from(contextMask(15, 4)).reduce((a, b) => a + b)).toBe(15);
    expect(Array.from(contextMask(0, 1))).toEqual([0]);
    expect(() => contextMask(4, 2)).toThrow(/k=4.*0\.\.3/);
  });

  it('rejects a factor that does not divide the image', () => {
    expect(() => checkDivisible(28, 28, 3)).toThrow(/S=3.*H=28.*W=28/);
    expect(() => imageToSlices(new Uint8Array(28 * 28), 28, 28, 1, 3)).toThrow(expect.objectContaining({ code: 'E_ARG' }));
    expect(() => checkDivisible(32, 32, 0)).toThrow(/S=0/);
    expect(() => checkDivisible(32, 32, 4)).not.toThrow();
    expect(() => imageToSlices(new Uint8Array(10), 4, 4, 1, 2)).toThrow(/length 10/);
    expect(() => orderPosition(4, 0, 0, 4, 4, 1, 2)).toThrow(/outside/);
    expect(() => orderToPosition(16, 4, 4, 1, 2)).toThrow(/0\.\.15/);
  });
});
