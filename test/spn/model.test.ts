import { describe, expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';
import { SPN } from '../../src/spn/model.js';
import { parseModelConfig } from '../../src/spn/config.js';
import { generationOrder } from '../../src/spn/slices.js';

interface TinyOptions { H?: number; C?: number; bits?: number; stage?: 'full' | 'size' | 'depth'; givenBits?: number; context?: 'slices' | 'relative'; freqs?: number }
function tinyModel(S: number, o: TinyOptions = {}) {
  const H = o.H ?? 8;
  const cfg = parseModelConfig({
    height: H, width: H, channels: o.C ?? 3, bits: o.bits ?? 3, scale: S, dim: 16, heads: 2,
    condLayers: 1, decLayers: 2, kernel: 3, stage: o.stage ?? 'full', givenBits: o.givenBits ?? 0, context: o.context ?? 'slices',
    valueFreqs: o.freqs ?? 0, headFreqs: o.freqs ?? 0, embedFreqs: o.freqs ?? 0,
  });
  return new SPN(cfg, { dtype: 'float64' });
}

/** Logits of every sub-pixel, indexed by its position in the generation order. */
function allLogits(model: SPN, x: torch.Tensor): Float64Array[] {
  const { height: H, width: W, channels: C, scale: S } = model.cfg;
  const out: Float64Array[] = new Array(H * W * C);
  const position = new Int32Array(H * W * C); // flat HWC index -> generation index
  generationOrder(H, W, C, S).forEach((flat, t) => { position[flat] = t; });
  torch.noGrad(() => torch.tidy(() => {
    for (let k = 0; k < S * S; k++) {
      const logits = model.forward({ x }, torch.full([1], k, { dtype: 'int64' })); // (1, T, C, V)
      const data = logits.data() as Float64Array;
      const V = model.V;
      const i = Math.floor(k / S);
      const j = k % S;
      for (let t = 0; t < model.T; t++) {
        const h = Math.floor(t / model.w) * S + i;
        const w = (t % model.w) * S + j;
        for (let c = 0; c < C; c++) {
          out[position[(h * W + w) * C + c]!] = data.slice((t * C + c) * V, (t * C + c + 1) * V);
        }
      }
    }
  }));
  return out;
}

describe('SPN causality', () => {
  const cases: { S: number; context: 'slices' | 'relative'; freqs?: number }[] = [
    ...[1, 2, 4].map((S) => ({ S, context: 'slices' as const })),
    ...[2, 4].map((S) => ({ S, context: 'relative' as const })),
    { S: 4, context: 'relative' as const, freqs: 3 },
  ];
  for (const { S, context, freqs } of cases) {
    it(`perturbing a sub-pixel changes no prediction at or before it (S=${S}, ${context} context${freqs ? ', value features' : ''})`, () => {
      torch.manualSeed(10 + S);
      const model = tinyModel(S, { context, freqs });
      const { height: H, width: W, channels: C } = model.cfg;
      const n = H * W * C;
      const base = new Uint8Array(n).map(() => Math.floor(Math.random() * 8));
      const x = torch.fromArray(base, [1, H, W, C]).to('int64');
      const ref = allLogits(model, x);
      const order = generationOrder(H, W, C, S);
      // sub-pixels to perturb: first, last, slice starts, and random ones, as generation-order indices
      const qs = [0, 1, C, n - 1, Math.floor(n / (S * S)), 17, 40, 101].filter((q) => q < n);
      for (const q of qs) {
        const pos = order[q]!; // the flat (h, w, c) index of generation index q
        const pert = base.slice();
        pert[pos] = (pert[pos]! + 3) % 8;
        const xp = torch.fromArray(pert, [1, H, W, C]).to('int64');
        const got = allLogits(model, xp);
        xp.dispose();
        let changedLater = 0;
        for (let p = 0; p < n; p++) {
          let diff = 0;
          for (let v = 0; v < model.V; v++) diff = Math.max(diff, Math.abs(got[p]![v]! - ref[p]![v]!));
          if (p <= q) expect(diff, `prediction ${p} changed when sub-pixel ${q} was perturbed`).toBe(0);
          else if (diff > 1e-9) changedLater++;
        }
        if (q < n - 1) expect(changedLater, `perturbing ${q} should influence later predictions`).toBeGreaterThan(0);
      }
      x.dispose();
      model.dispose();
    });
  }
});

describe('SPN likelihood', () => {
  it('starts near `bits` bits per dimension and overfits one batch', () => {
    torch.manualSeed(0);
    const cfg = parseModelConfig({ height: 8, width: 8, channels: 1, bits: 8, scale: 2, dim: 32, heads: 2, condLayers: 1, decLayers: 1 });
    const model = new SPN(cfg);
    const data = new Uint8Array(4 * 64).map((_, i) => (i * 37 + (i >> 3) * 11) % 256);
    const x = torch.keep(torch.fromArray(data, [4, 8, 8, 1]).to('int64'));
    const bpdAll = () => torch.noGrad(() => torch.tidy(() => {
      let nats = 0;
      for (let k = 0; k < 4; k++) nats += model.nll({ x }, torch.full([4], k, { dtype: 'int64' })).sum().item();
      return nats / (4 * 64) / Math.LN2;
    }));
    const init = bpdAll();
    expect(init).toBeGreaterThan(7.8);
    expect(init).toBeLessThan(8.3);
    const params = model.parameters();
    const m = params.map((p) => torch.keep(torch.zerosLike(p)));
    for (let step = 0; step < 300; step++) {
      torch.tidy(() => {
        const k = torch.fromArray(new BigInt64Array([0n, 1n, 2n, 3n]).map((v) => BigInt((Number(v) + step) % 4)));
        const loss = model.nll({ x }, k).mean().div(64 * Math.LN2);
        loss.backward();
        torch.noGrad(() => params.forEach((p, i) => {
          const g = p.grad!;
          m[i]!.mul_(0.9).add_(g, 0.1);
          p.add_(m[i]!, -0.01 / Math.max(1e-3, Math.sqrt(m[i]!.square().mean().item())));
          p.grad = null;
        }));
      });
    }
    expect(bpdAll()).toBeLessThan(0.5);
    torch.dispose([x, m]);
    model.dispose();
  });
});

describe('tensor ownership', () => {
  it('building and disposing every preset leaves the live tensor count where it was', async () => {
    const { PRESETS } = await import('../../src/spn/config.js');
    const before = torch.liveTensors();
    for (const [name, p] of Object.entries(PRESETS)) {
      const [height, width, channels] = p.shape;
      // 'meta': shapes without memory, so the GPU-sized presets build in no time; two CPU presets for real
      for (const device of name === 'tiny' || name === 'fmnist-cpu' ? ['cpu', 'meta'] : ['meta']) {
        const model = new SPN(parseModelConfig({ ...p.model, height, width, channels }), { device });
        expect(model.buffers().length).toBeGreaterThan(0);
        model.dispose();
        expect(torch.liveTensors(), `${name} on ${device}`).toBe(before);
      }
    }
  });

  it("to() moves parameters and buffers in place: floating ones change dtype, index tables stay int64", () => {
    const model = tinyModel(2, { freqs: 2 });
    const before = torch.liveTensors();
    const weight = model.head.out.weight;
    model.to('float32');
    expect(model.head.out.weight).toBe(weight); // same handle, new data
    expect(weight.dtype).toBe('float32');
    expect(model.head.table!.dtype).toBe('float32');
    expect(model.ctxIndex.dtype).toBe('int64');
    expect(model.offsets.dtype).toBe('int64');
    expect(torch.liveTensors()).toBe(before);
    const x = torch.randint(0, model.V, [1, 8, 8, 3]);
    const nll = model.nll({ x }, torch.full([1], 1, { dtype: 'int64' }));
    expect(nll.dtype).toBe('float32');
    expect(Number.isFinite(nll.item())).toBe(true);
    torch.dispose([x, nll]);
    model.dispose();
  });
});
