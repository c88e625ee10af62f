import { describe, expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';
import { SPN } from '../../src/spn/model.js';
import { parseModelConfig } from '../../src/spn/config.js';
import { contextTables, type ContextLayout } from '../../src/spn/context.js';
import { freqTable } from '../../src/spn/freqs.js';

const sliceOf = (y: number, x: number, S: number) => (y % S) * S + (x % S);

describe('context tables', () => {
  for (const layout of ['slices', 'relative'] as ContextLayout[]) {
    it(`every known plane entry is a pixel from an earlier slice, and every such pixel is in the stack (${layout})`, () => {
      const [H, W, S] = [8, 12, 4];
      const P = S * S;
      const t = contextTables(H, W, S, layout);
      const ring = layout === 'relative' ? 1 : 0;
      expect([t.ring, t.rows, t.cols]).toEqual([ring, H / S + 2 * ring, W / S + 2 * ring]);
      const n = t.rows * t.cols;
      for (let k = 0; k < P; k++) {
        const seen = new Set<number>();
        for (let r = 0; r < P; r++) {
          for (let i = 0; i < n; i++) {
            const o = (k * P + r) * n + i;
            const pix = Number(t.index[o]);
            if (pix === H * W) {
              expect(t.known[o]).toBe(0);
              expect(t.inside[o]).toBe(0);
              continue;
            }
            expect(t.inside[o]).toBe(1);
            const q = sliceOf(Math.floor(pix / W), pix % W, S);
            expect(t.known[o], `k=${k} plane ${r} reads pixel ${pix} of slice ${q}`).toBe(q < k ? 1 : 0);
            if (q < k) seen.add(pix);
          }
        }
        let earlier = 0;
        for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) if (sliceOf(y, x, S) < k) earlier++;
        expect(seen.size, `target ${k}: known pixels in the stack`).toBe(earlier);
      }
    });
  }

  it("'slices' plane r is slice r; 'relative' plane r is the same offset from the target for every k", () => {
    const [H, W, S] = [8, 8, 4];
    const [h, w, P] = [H / S, W / S, S * S];
    const c = (S - 1) >> 1;
    const abs = contextTables(H, W, S, 'slices');
    const rel = contextTables(H, W, S, 'relative'); // grid positions −1..h, −1..w
    const [rr, rc] = [h + 2, w + 2];
    for (let k = 0; k < P; k++) {
      const [ki, kj] = [Math.floor(k / S), k % S];
      for (let r = 0; r < P; r++) {
        for (let a = 0; a < h; a++) {
          for (let b = 0; b < w; b++) {
            const i = (k * P + r) * h * w + a * w + b;
            expect(Number(abs.index[i])).toBe((S * a + Math.floor(r / S)) * W + S * b + (r % S));
          }
        }
        for (let a = -1; a <= h; a++) {
          for (let b = -1; b <= w; b++) {
            // target pixel (S·a + ki, S·b + kj); plane r holds it moved by (r_i − c, r_j − c)
            const [y, x] = [S * a + ki + Math.floor(r / S) - c, S * b + kj + (r % S) - c];
            const inside = y >= 0 && y < H && x >= 0 && x < W;
            expect(Number(rel.index[(k * P + r) * rr * rc + (a + 1) * rc + b + 1])).toBe(inside ? y * W + x : H * W);
          }
        }
      }
      // the target's own pixel sits in plane (c, c) and is never known
      const self = c * S + c;
      for (let i = 0; i < rr * rc; i++) expect(rel.known[(k * P + self) * rr * rc + i]).toBe(0);
    }
  });
});

describe('SPN context stack', () => {
  for (const layout of ['slices', 'relative'] as ContextLayout[]) {
    it(`holds the table's pixels as values in [-1, 1], zero unless known, then the known planes (${layout})`, () => {
      const [B, H, W, C, S] = [2, 8, 12, 3, 4];
      const cfg = parseModelConfig({ height: H, width: W, channels: C, bits: 8, scale: S, dim: 8, heads: 2, condLayers: 1, decLayers: 1, context: layout });
      const model = new SPN(cfg, { dtype: 'float64' });
      const t = contextTables(H, W, S, layout);
      const [h, w, P] = [t.rows, t.cols, S * S];
      const data = new Uint8Array(B * H * W * C).map((_, i) => (i * 37 + 11) % 256);
      torch.tidy(() => {
        const x = torch.fromArray(data, [B, H, W, C]).to('int64');
        const ks = [3, 14];
        const stack = model.contextInputs({ x }, torch.fromArray(new BigInt64Array(ks.map(BigInt)))).stack; // (B, P·C + P, h, w)
        expect(stack.shape).toEqual([B, P * C + P, h, w]);
        const got = stack.contiguous().data() as Float64Array;
        for (let n = 0; n < B; n++) {
          const k = ks[n]!;
          for (let r = 0; r < P; r++) {
            for (let i = 0; i < h * w; i++) {
              const o = (k * P + r) * h * w + i;
              const pix = Number(t.index[o]);
              for (let ch = 0; ch < C; ch++) {
                const want = t.known[o] ? (data[(n * H * W + pix) * C + ch]! * 2) / 255 - 1 : 0;
                expect(got[((n * (P * C + P) + r * C + ch) * h * w) + i]).toBeCloseTo(want, 12);
              }
              expect(got[((n * (P * C + P) + P * C + r) * h * w) + i]).toBe(t.known[o]);
            }
          }
        }
      });
      model.dispose();
    });
  }

  it("'slices' is the default, so configs saved before the option existed load unchanged", () => {
    const cfg = parseModelConfig({ height: 8, width: 8, channels: 1, bits: 8, scale: 2, dim: 8, heads: 2, condLayers: 1, decLayers: 1 });
    expect(cfg.context).toBe('slices');
    expect(() => parseModelConfig({ ...cfg, context: 'shifted' })).toThrow(/context/);
  });
});

describe('value features', () => {
  it('are cos and sin of π·2^i·v/(V−1)', () => {
    torch.tidy(() => {
      const t = freqTable(256, 3, { dtype: 'float64' });
      expect(t.shape).toEqual([256, 6]);
      const d = t.data() as Float64Array;
      for (const v of [0, 1, 100, 255]) {
        for (let i = 0; i < 3; i++) {
          expect(d[v * 6 + 2 * i]).toBeCloseTo(Math.cos((Math.PI * 2 ** i * v) / 255), 12);
          expect(d[v * 6 + 2 * i + 1]).toBeCloseTo(Math.sin((Math.PI * 2 ** i * v) / 255), 12);
        }
      }
    });
  });

  it('leave the initial logits unchanged in the head and reach them through its smooth weights', () => {
    const base = { height: 4, width: 4, channels: 1, bits: 4, scale: 2, dim: 8, heads: 2, condLayers: 1, decLayers: 1, context: 'relative' as const };
    torch.manualSeed(3);
    const plain = new SPN(parseModelConfig({ ...base, valueFreqs: 2 }), { dtype: 'float64' });
    torch.manualSeed(3);
    const smooth = new SPN(parseModelConfig({ ...base, valueFreqs: 2, headFreqs: 3 }), { dtype: 'float64' });
    torch.tidy(() => {
      const x = torch.randint(0, 16, [2, 4, 4, 1], { dtype: 'int64' });
      const k = torch.fromArray(new BigInt64Array([1n, 3n]));
      // the smooth term starts at zero: same logits as without it
      expect(smooth.forward({ x }, k).sub(plain.forward({ x }, k)).abs().max().item()).toBe(0);
      smooth.nll({ x }, k).sum().backward();
      const g = smooth.head.freqOut!.weight.grad!;
      expect(g.abs().max().item()).toBeGreaterThan(0);
      // its gradient is the table's transpose times the output weight's gradient
      const want = torch.mm(freqTable(16, 3, { dtype: 'float64' }).transpose(0, 1), smooth.head.out.weight.grad!);
      expect(g.sub(want).abs().max().item()).toBeLessThan(1e-12);
    });
    plain.dispose();
    smooth.dispose();
  });
});
