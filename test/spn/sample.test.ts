import { describe, expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';
import { SPN } from '../../src/spn/model.js';
import { parseModelConfig } from '../../src/spn/config.js';
import { sample, sampleNaive } from '../../src/spn/sample.js';
import { sliceView } from '../../src/spn/slices.js';
import { DecodePlan } from '../../src/spn/decode.js';
import { SpnError } from '../../src/errors.js';

function tinyModel(S: number, o: { C?: number; bits?: number; stage?: 'full' | 'size' | 'depth'; givenBits?: number; kernel?: number; context?: 'slices' | 'relative'; freqs?: number } = {}) {
  const cfg = parseModelConfig({
    height: 8, width: 8, channels: o.C ?? 3, bits: o.bits ?? 3, scale: S, dim: 16, heads: 2,
    condLayers: 1, decLayers: 2, kernel: o.kernel ?? 3, stage: o.stage ?? 'full', givenBits: o.givenBits ?? 0, context: o.context ?? 'slices',
    valueFreqs: o.freqs ?? 0, headFreqs: o.freqs ?? 0, embedFreqs: o.freqs ?? 0,
  });
  return new SPN(cfg, { dtype: 'float64' });
}

torch.setNumThreads(1); // tiny tensors: threads only add overhead on a shared machine

const values = (t: torch.Tensor): number[] => torch.tidy(() => Array.from(t.contiguous().data() as BigInt64Array, Number));

describe('sample', () => {
  for (const S of [1, 2, 4]) {
    it(`cached and naive samplers draw the same images for the same seed (S=${S})`, () => {
      torch.manualSeed(100 + S);
      const model = tinyModel(S);
      const before = torch.liveTensors();
      const a = sample(model, { n: 2, seed: 7 });
      const b = sampleNaive(model, { n: 2, seed: 7 });
      expect(a.shape).toEqual([2, 8, 8, 3]);
      const va = values(a);
      expect(va).toEqual(values(b));
      expect(va.every((v) => Number.isInteger(v) && v >= 0 && v < 8)).toBe(true);
      expect(new Set(va).size).toBeGreaterThan(4); // really sampled, not a constant
      torch.dispose([a, b]);
      expect(torch.liveTensors()).toBe(before);
      model.dispose();
    });
  }

  it('is reproducible by seed, and different seeds differ', () => {
    torch.manualSeed(1);
    const model = tinyModel(2);
    const [a, b, c] = [sample(model, { n: 3, seed: 5 }), sample(model, { n: 3, seed: 5 }), sample(model, { n: 3, seed: 6 })];
    expect(values(a)).toEqual(values(b));
    expect(values(a)).not.toEqual(values(c));
    torch.dispose([a, b, c]);
    model.dispose();
  });

  it('reports progress and hands over the canvas after each slice', () => {
    torch.manualSeed(2);
    const model = tinyModel(2, { C: 1 });
    let calls = 0;
    const done: number[] = [];
    const out = sample(model, {
      n: 1, seed: 3,
      onProgress: (p) => { calls++; expect(p.slices).toBe(4); expect(p.pixels).toBe(16); },
      onSliceDone: (k, canvas) => { done.push(k); expect(canvas.shape).toEqual([1, 8, 8, 1]); },
    });
    expect(calls).toBe(4 * 16);
    expect(done).toEqual([0, 1, 2, 3]);
    out.dispose();
    model.dispose();
  });

  it('a near-zero temperature picks the argmax of the full-model logits', () => {
    torch.manualSeed(3);
    const model = tinyModel(2);
    const x = sample(model, { n: 2, seed: 9, temperature: 1e-4 });
    // Teacher-forced logits on the sampled images are the conditionals the sampler saw.
    torch.noGrad(() => torch.tidy(() => {
      for (let k = 0; k < 4; k++) {
        const logits = model.forward({ x }, torch.full([2], k, { dtype: 'int64' })); // (2, T, C, V)
        const target = model.targetSlice(x, torch.full([2], k, { dtype: 'int64' })); // (2, T, C)
        const top = torch.maxDim(logits, 3);
        const second = torch.maxDim(logits.maskedFill(torch.oneHot(top[1], model.V).to('bool'), -Infinity), 3)[0];
        const clear = top[0].sub(second).gt(1e-2); // positions whose argmax is unambiguous at T=1e-4
        const wrong = torch.logicalAnd(clear, torch.logicalNot(top[1].eq(target)));
        expect(wrong.to('int64').sum().item()).toBe(0);
        expect(values(clear.to('int64')).filter((v) => v === 1).length).toBeGreaterThan(40);
      }
    }));
    x.dispose();
    model.dispose();
  });

  it('a size stage keeps the given slice 0 exactly and matches the naive sampler', () => {
    torch.manualSeed(4);
    const model = tinyModel(2, { stage: 'size' });
    const init = torch.randint(0, 8, [2, 8, 8, 3], { dtype: 'int64' });
    const a = sample(model, { n: 2, seed: 11, init });
    const b = sampleNaive(model, { n: 2, seed: 11, init });
    expect(values(a)).toEqual(values(b));
    expect(values(sliceView(a, 2, 0))).toEqual(values(sliceView(init, 2, 0)));
    expect(values(a)).not.toEqual(values(init));
    expect(values(init).length).toBe(2 * 8 * 8 * 3); // init itself untouched
    torch.dispose([a, b, init]);
    expect(() => sample(model, { n: 2 })).toThrow(/init/);
    model.dispose();
  });

  it('a depth stage conditions on the given high bits, and matches the naive sampler', () => {
    torch.manualSeed(5);
    const model = tinyModel(2, { stage: 'depth', bits: 3, givenBits: 5 });
    const given = torch.randint(0, 32, [2, 8, 8, 3], { dtype: 'int64' });
    const a = sample(model, { n: 2, seed: 12, given });
    const b = sampleNaive(model, { n: 2, seed: 12, given });
    expect(values(a)).toEqual(values(b));
    const other = torch.randint(0, 32, [2, 8, 8, 3], { dtype: 'int64' });
    const c = sample(model, { n: 2, seed: 12, given: other });
    expect(values(a)).not.toEqual(values(c));
    torch.dispose([a, b, c, given, other]);
    expect(() => sample(model, { n: 2 })).toThrow(/given/);
    model.dispose();
  });

  it('rejects bad options with precise errors', () => {
    const model = tinyModel(1, { C: 1 });
    expect(() => sample(model, { n: 0 })).toThrow(/n must be/);
    expect(() => sample(model, { n: 1, temperature: 0 })).toThrow(/temperature/);
    const wrong = torch.zeros([1, 4, 4, 1], { dtype: 'int64' });
    expect(() => sample(model, { n: 1, init: wrong, firstSlice: 0 })).toThrow(/init has shape \[1, 4, 4, 1\], expected \[1, 8, 8, 1\]/);
    wrong.dispose();
    model.dispose();
  });
});

describe('sampling benchmark', () => {
  it('runs in quick mode on a tiny model and reports the speed-up', async () => {
    const { benchSampling } = await import('../../bench/sampling.js');
    const model = parseModelConfig({ height: 8, width: 8, channels: 1, bits: 8, scale: 2, dim: 16, heads: 2, condLayers: 1, decLayers: 1 });
    const r = benchSampling({ preset: 'fmnist-cpu', batch: 16, quick: true, model });
    expect(r.custom_model).toBe(true);
    expect(r.naive_extrapolated_from_pixels).toBe(3);
    expect(r.cached.images_per_s).toBeGreaterThan(0);
    expect(r.naive.images_per_s).toBeGreaterThan(0);
    expect(r.speedup).toBeCloseTo(r.cached.images_per_s / r.naive.images_per_s);
    expect(r.machine.cores).toBeGreaterThan(0);
    expect(() => benchSampling({ preset: 'tiny' as 'fmnist-cpu', batch: 16 })).toThrow(/--preset tiny/);
  });
});

describe('incremental decoder', () => {
  const cases = [
    { name: 'S=1, 3 channels, 3×3 masked convs', S: 1, o: {} },
    { name: 'S=2, 1 channel, 5×5 masked convs', S: 2, o: { C: 1, kernel: 5 } },
    { name: 'S=2 depth stage', S: 2, o: { stage: 'depth' as const, bits: 3, givenBits: 5 } },
    { name: 'S=4 relative context, value features, depth stage', S: 4, o: { stage: 'depth' as const, bits: 3, givenBits: 5, context: 'relative' as const, freqs: 2 } },
    { name: 'S=2 relative context, value features, 3 channels', S: 2, o: { context: 'relative' as const, freqs: 3 } },
  ];
  for (const { name, S, o } of cases) {
    it(`gives the full pass's logits at every sub-pixel (${name})`, () => {
      torch.manualSeed(21);
      const model = tinyModel(S, o);
      const { channels: C } = model.cfg;
      const before = torch.liveTensors();
      torch.noGrad(() => torch.tidy(() => {
        const x = torch.randint(0, model.V, [2, 8, 8, C], { dtype: 'int64' });
        const given = o.stage === 'depth' ? torch.randint(0, 32, [2, 8, 8, C], { dtype: 'int64' }) : undefined;
        const batch = { x, given };
        const plan = new DecodePlan(model);
        const V = model.V;
        const T = model.T;
        let worst = 0;
        for (let k = 0; k < S * S; k++) {
          const kt = torch.full([2], k, { dtype: 'int64' });
          const full = model.forward(batch, kt).contiguous().data() as Float64Array; // (2, T, C, V)
          const target = model.targetSlice(x, kt); // (2, T, C)
          const want = target.contiguous().data() as BigInt64Array;
          const logits = new Float64Array(2 * V);
          const picked = new Int32Array(2);
          let calls = 0;
          // teacher forcing: the decoder gets the true values and its logits are compared with the full pass's
          const got = plan.decodeSlice(batch, k, {
            logits, values: picked, fn: (t, c) => {
              expect([t, c]).toEqual([Math.floor(calls / C), calls % C]); // raster order, channels in order
              calls++;
              for (let i = 0; i < 2; i++) {
                for (let v = 0; v < V; v++) worst = Math.max(worst, Math.abs(logits[i * V + v]! - full[((i * T + t) * C + c) * V + v]!));
                picked[i] = Number(want[(i * T + t) * C + c]!);
              }
            },
          });
          expect(calls).toBe(T * C);
          expect(got.shape).toEqual([2, T, C]);
          expect(values(got)).toEqual(values(target));
        }
        expect(worst).toBeLessThan(1e-10);
        expect(() => plan.decodeSlice(batch, S * S, { temperature: 1, dtype: 'float64' })).toThrow(/slice index/);
        plan.dispose();
      }));
      expect(torch.liveTensors()).toBe(before);
      model.dispose();
    });
  }

  it('stops with a clear error on a bad value, passes a callback\'s error through, and refuses a disposed plan', () => {
    torch.manualSeed(22);
    const model = tinyModel(2, { C: 1 });
    const before = torch.liveTensors();
    torch.noGrad(() => torch.tidy(() => {
      const batch = { x: torch.zeros([1, 8, 8, 1], { dtype: 'int64' }) };
      const plan = new DecodePlan(model);
      const logits = new Float64Array(model.V);
      const values = new Int32Array(1);
      let t0 = -1;
      const bad = () => plan.decodeSlice(batch, 0, { logits, values, fn: (t) => { t0 = t; values[0] = t === 3 ? model.V : 0; } });
      expect(bad).toThrow(new RegExp(`value ${model.V} for image 0 is outside 0\\.\\.${model.V - 1}`));
      expect(t0).toBe(3); // it stopped at the bad pixel
      const mine = new SpnError('E_DATA', 'the range decoder ran out of bits');
      expect(() => plan.decodeSlice(batch, 0, { logits, values, fn: () => { throw mine; } })).toThrow(mine);
      expect(() => plan.decodeSlice(batch, 0, { logits: new Float64Array(3), values, fn: () => {} })).toThrow(/Float64Array of B·V/);
      expect(() => plan.decodeSlice(batch, 0, { temperature: 1, dtype: 'float64' }, { pixels: model.T + 1 })).toThrow(/pixels 17 is outside 0\.\.16/);
      const part = plan.decodeSlice(batch, 0, { temperature: 1, dtype: 'float64' }, { pixels: 5 });
      expect(part.shape).toEqual([1, 5, 1]);
      plan.dispose();
      expect(() => plan.decodeSlice(batch, 0, { temperature: 1, dtype: 'float64' })).toThrow(/disposed/);
    }));
    expect(torch.liveTensors()).toBe(before);
    model.dispose();
  });
});
