import { describe, expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';
import { AdamW, EMA, clipGradNorm, gradNorm, lrAt } from '../../src/torch/optim/index.js';
import { SpnError } from '../../src/errors.js';

const f64 = (values: number[], shape?: number[]) => torch.fromArray(new Float64Array(values), shape);
const param = (values: number[]) => torch.keep(f64(values).requiresGrad_());
const setGrad = (p: torch.Tensor, values: number[]) => torch.tidy(() => { p.grad = f64(values); });
const value = (p: torch.Tensor) => Array.from(p.data() as Float64Array);

/** torch.optim.AdamW on one scalar, written out. */
function adamwReference(p: number, grads: number[], lr: number, b1: number, b2: number, eps: number, wd: number): number {
  let m = 0;
  let v = 0;
  grads.forEach((g, i) => {
    const t = i + 1;
    p = p * (1 - lr * wd); // decoupled decay: not part of the gradient
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    const mHat = m / (1 - b1 ** t);
    const denom = Math.sqrt(v) / Math.sqrt(1 - b2 ** t) + eps;
    p = p - (lr * mHat) / denom;
  });
  return p;
}

describe('AdamW', () => {
  it('matches the hand-computed two-step update on a scalar', () => {
    const p = param([1.5]);
    const opt = new AdamW([p], { lr: 0.1, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.01 });
    setGrad(p, [0.5]);
    opt.step();
    expect(value(p)[0]).toBeCloseTo(adamwReference(1.5, [0.5], 0.1, 0.9, 0.999, 1e-8, 0.01), 12);
    setGrad(p, [-0.3]);
    opt.step();
    expect(value(p)[0]).toBeCloseTo(adamwReference(1.5, [0.5, -0.3], 0.1, 0.9, 0.999, 1e-8, 0.01), 12);
    expect(opt.stepCount).toBe(2);
    opt.dispose();
    p.dispose();
  });

  it('applies weight decay decoupled from the gradient, and not to noDecay params', () => {
    const a = param([2]);
    const b = param([2]);
    const opt = new AdamW([{ name: 'w', param: a }, { name: 'bias', param: b }], { lr: 0.1, weightDecay: 0.5, noDecay: (n) => n === 'bias' });
    // With a zero gradient Adam's update is 0/(0+eps) = 0: only the decay moves the weight.
    setGrad(a, [0]);
    setGrad(b, [0]);
    opt.step();
    expect(value(a)[0]).toBeCloseTo(2 * (1 - 0.1 * 0.5), 14);
    expect(value(b)[0]).toBe(2);
    // The decay does not enter the moments: a large gradient gives the same Adam step either way.
    const c = param([2]);
    const d = param([2]);
    const withWd = new AdamW([c], { lr: 0.1, weightDecay: 0.5 });
    const noWd = new AdamW([d], { lr: 0.1, weightDecay: 0 });
    setGrad(c, [3]);
    setGrad(d, [3]);
    withWd.step();
    noWd.step();
    expect(value(c)[0]).toBeCloseTo(2 * 0.95 - 0.1, 8);
    expect(value(d)[0]).toBeCloseTo(2 - 0.1, 8);
    for (const x of [opt, withWd, noWd]) x.dispose();
    for (const x of [a, b, c, d]) x.dispose();
  });

  it('skips params whose grad is null and zeroGrad sets grads to null', () => {
    const a = param([1]);
    const b = param([1]);
    const opt = new AdamW([a, b], { lr: 0.1 });
    setGrad(a, [1]);
    opt.step();
    expect(value(b)[0]).toBe(1);
    expect(value(a)[0]).not.toBe(1);
    opt.zeroGrad();
    expect(a.grad).toBeNull();
    const sd = opt.stateDict();
    expect(Object.keys(sd).sort()).toEqual(['0.exp_avg', '0.exp_avg_sq', '0.step']);
    torch.dispose(sd);
    opt.dispose();
    a.dispose();
    b.dispose();
  });

  it('resumes from its state dict exactly', () => {
    const grads = [[0.3, -1], [0.2, 0.4], [-0.5, 0.1]];
    const run = (resumeAfter: number | null) => {
      const p = param([1, -2]);
      let opt = new AdamW([{ name: 'w', param: p }], { lr: 0.05 });
      grads.forEach((g, i) => {
        if (i === resumeAfter) {
          const sd = opt.stateDict();
          const copy = Object.fromEntries(Object.entries(sd).map(([k, t]) => [k, torch.keep(t.clone())]));
          torch.dispose(sd);
          opt.dispose();
          opt = new AdamW([{ name: 'w', param: p }], { lr: 0.05 });
          opt.loadStateDict(copy);
          torch.dispose(copy);
          expect(opt.stepCount).toBe(resumeAfter);
        }
        setGrad(p, g);
        opt.step();
      });
      const out = value(p);
      opt.dispose();
      p.dispose();
      return out;
    };
    expect(run(2)).toEqual(run(null));
  });

  it('rejects unknown options and bad state', () => {
    const p = param([1]);
    expect(() => new AdamW([p], { lr: 0.1, weightdecay: 0.1 } as never)).toThrow(/unknown option 'weightdecay'/);
    expect(() => new AdamW([p], { lr: -1 })).toThrow(SpnError);
    const opt = new AdamW([p], { lr: 0.1 });
    torch.tidy(() => {
      expect(() => opt.loadStateDict({ 'nope.exp_avg': f64([0]) })).toThrow(/unexpected key 'nope.exp_avg'/);
      expect(() => opt.loadStateDict({ '0.exp_avg': f64([0, 0]) })).toThrow(/shape \[2\]/);
    });
    p.dispose();
  });

  it('minimizes a quadratic', () => {
    const target = torch.keep(f64([3, -1, 0.5]));
    const p = param([0, 0, 0]);
    const opt = new AdamW([p], { lr: 0.1, weightDecay: 0 });
    for (let i = 0; i < 300; i++) {
      torch.tidy(() => {
        p.sub(target).square().sum().backward();
        opt.step();
        opt.zeroGrad();
      });
    }
    const v = value(p);
    [3, -1, 0.5].forEach((t, i) => expect(Math.abs(v[i]! - t)).toBeLessThan(1e-2));
    opt.dispose();
    p.dispose();
    target.dispose();
  });

  it('does not leak tensors across 100 steps', () => {
    const w = torch.keep(torch.randn([8, 4]).requiresGrad_());
    const b = torch.keep(torch.zeros([8]).requiresGrad_());
    const x = torch.keep(torch.randn([16, 4]));
    const opt = new AdamW([{ name: 'w', param: w }, { name: 'b', param: b }], { lr: 1e-2 });
    const stepOnce = () =>
      torch.tidy(() => {
        torch.linear(x, w, b).square().mean().backward();
        clipGradNorm([w, b], 1.0);
        opt.step();
        opt.zeroGrad();
      });
    stepOnce(); // state is created on the first step
    const before = torch.liveTensors();
    for (let i = 0; i < 100; i++) stepOnce();
    expect(torch.liveTensors()).toBe(before);
    opt.dispose();
    for (const t of [w, b, x]) t.dispose();
  });
});

describe('clipGradNorm', () => {
  it('scales the gradients to maxNorm and returns the norm before clipping', () => {
    const a = param([0, 0]);
    const b = param([0]);
    setGrad(a, [3, 4]);
    setGrad(b, [12]); // global norm sqrt(9 + 16 + 144) = 13
    const norm = clipGradNorm([a, b], 1);
    expect(norm).toBeCloseTo(13, 12);
    const ga = torch.tidy(() => value(a.grad!));
    const gb = torch.tidy(() => value(b.grad!));
    const after = Math.hypot(...ga, ...gb);
    expect(after).toBeCloseTo(1, 6); // PyTorch's 1e-6 guard: maxNorm / (norm + 1e-6)
    expect(ga[0]! / ga[1]!).toBeCloseTo(3 / 4, 12);
    // Below the limit nothing changes.
    expect(clipGradNorm([a, b], 5)).toBeCloseTo(after, 12);
    expect(torch.tidy(() => value(a.grad!))).toEqual(ga);
    a.dispose();
    b.dispose();
  });

  it('clips by a norm it is given (data-parallel ranks: the agreed one) and gradNorm is the norm it computes', () => {
    const a = param([0, 0]);
    setGrad(a, [3, 4]);
    expect(gradNorm([a])).toBeCloseTo(5, 12);
    expect(clipGradNorm([a], 2, 10)).toBe(10); // scaled by 2 / (10 + 1e-6), not 2 / 5
    const g = torch.tidy(() => value(a.grad!));
    expect(g[0]!).toBeCloseTo((3 * 2) / (10 + 1e-6), 12);
    expect(g[1]!).toBeCloseTo((4 * 2) / (10 + 1e-6), 12);
    expect(clipGradNorm([a], 2, 1)).toBe(1); // below the limit: unchanged
    expect(torch.tidy(() => value(a.grad!))).toEqual(g);
    const none = param([1]);
    expect(gradNorm([none])).toBe(0); // no gradient
    for (const t of [a, none]) t.dispose();
  });
});

describe('lrAt', () => {
  const s = { lr: 1, warmupSteps: 10, totalSteps: 110, decay: 'cosine' as const, minLr: 0.1 };
  it('warms up linearly then follows a cosine to minLr', () => {
    expect(lrAt(0, s)).toBeCloseTo(0.1, 12);
    expect(lrAt(4, s)).toBeCloseTo(0.5, 12);
    expect(lrAt(9, s)).toBeCloseTo(1, 12);
    expect(lrAt(10, s)).toBeCloseTo(1, 12);
    expect(lrAt(60, s)).toBeCloseTo(0.55, 12); // halfway: minLr + (lr - minLr) / 2
    expect(lrAt(85, s)).toBeCloseTo(0.1 + 0.45 * (1 + Math.cos(Math.PI * 0.75)), 12);
    expect(lrAt(110, s)).toBeCloseTo(0.1, 12);
    expect(lrAt(500, s)).toBeCloseTo(0.1, 12);
  });
  it('holds the peak with constant decay', () => {
    expect(lrAt(4, { ...s, decay: 'constant' })).toBeCloseTo(0.5, 12);
    expect(lrAt(100, { ...s, decay: 'constant' })).toBe(1);
    expect(lrAt(0, { ...s, warmupSteps: 0, decay: 'constant' })).toBe(1);
  });
  it('follows a progress fraction after warmup when given (time-budgeted runs)', () => {
    const timed = { lr: 1, warmupSteps: 10, decay: 'cosine' as const, minLr: 0.1 };
    expect(lrAt(3, timed, 0.9)).toBeCloseTo(0.4, 12); // warmup goes by steps
    expect(lrAt(50, timed, 0)).toBeCloseTo(1, 12);
    expect(lrAt(50, timed, 0.5)).toBeCloseTo(0.55, 12);
    expect(lrAt(50, timed, 1)).toBeCloseTo(0.1, 12);
    expect(lrAt(50, s, 0.5)).toBeCloseTo(0.55, 12); // the fraction wins over totalSteps
  });
  it('rejects bad arguments', () => {
    expect(() => lrAt(-1, s)).toThrow(SpnError);
    expect(() => lrAt(1, { ...s, totalSteps: 5 })).toThrow(/warmupSteps/);
    expect(() => lrAt(1, { lr: 1, warmupSteps: 0, decay: 'cosine' })).toThrow(/progress fraction/);
    expect(() => lrAt(1, s, 1.5)).toThrow(/progress = 1.5/);
  });
});

describe('EMA', () => {
  it('equals the closed form after k updates, and swaps weights for evaluation', () => {
    const p = param([1, 2]);
    const ema = new EMA([{ name: 'p', param: p }], 0.9);
    // The parameter takes values v_1..v_k; shadow_k = d^k s_0 + sum_i (1 - d) d^(k - i) v_i.
    const values = [[2, 0], [4, 1], [0, -3]];
    for (const v of values) {
      torch.noGrad(() => torch.tidy(() => { p.copy_(f64(v)); }));
      ema.update();
    }
    const d = 0.9;
    const k = values.length;
    const expected = [0, 1].map((j) => d ** k * [1, 2][j]! + values.reduce((acc, v, i) => acc + (1 - d) * d ** (k - 1 - i) * v[j]!, 0));
    const shadow = Array.from(ema.shadow.get('p')!.data() as Float64Array);
    expected.forEach((e, j) => expect(shadow[j]).toBeCloseTo(e, 12));
    expect(ema.updates).toBe(3);

    const inside = ema.withShadow(() => value(p));
    expect(inside).toEqual(shadow);
    expect(value(p)).toEqual([0, -3]);

    const sd = ema.stateDict();
    const ema2 = new EMA([{ name: 'p', param: p }], 0.9);
    ema2.loadStateDict(sd);
    torch.dispose(sd);
    expect(Array.from(ema2.shadow.get('p')!.data() as Float64Array)).toEqual(shadow);
    ema2.copyTo();
    expect(value(p)).toEqual(shadow);
    ema.dispose();
    ema2.dispose();
    p.dispose();
  });
});
