// Fused attention (libtorch's aten::scaled_dot_product_attention, PyTorch 2.x) against the same
// math composed from matmul and softmax (sdpaComposed): outputs and the gradients of q, k and v,
// in float64 and float32, causal (also with fewer queries than keys, as when decoding against a
// cache), with a boolean and an additive mask, and with both. Where the libtorch has no fused op
// (Debian's 1.13), scaledDotProductAttention is sdpaComposed itself: the comparisons are skipped
// with that reason, and one test checks the fallback.
import { describe, expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';
import type { DType, Tensor } from '../../src/torch/index.js';

const OP = 'aten::scaled_dot_product_attention';
const FUSED = torch.hasOp(OP);
const VERSION = torch.native.info().version;
const ABSENT = `libtorch ${VERSION} has no ${OP}: scaledDotProductAttention is sdpaComposed here, there is nothing fused to compare`;

// Few, small ops: one intra-op thread (as in grad.test.ts).
torch.setNumThreads(1);

type Mask = 'none' | 'bool' | 'additive';
interface Case { name: string; tq: number; tk: number; causal: boolean; mask: Mask }
const CASES: Case[] = [
  { name: 'causal', tq: 7, tk: 7, causal: true, mask: 'none' },
  { name: 'causal, 3 queries at the end of 7 keys', tq: 3, tk: 7, causal: true, mask: 'none' },
  { name: 'boolean mask', tq: 5, tk: 7, causal: false, mask: 'bool' },
  { name: 'additive mask', tq: 5, tk: 7, causal: false, mask: 'additive' },
  { name: 'causal and a boolean mask', tq: 6, tk: 6, causal: true, mask: 'bool' },
  { name: 'causal and an additive mask, 4 queries at the end of 6 keys', tq: 4, tk: 6, causal: true, mask: 'additive' },
  { name: 'no mask', tq: 4, tk: 9, causal: false, mask: 'none' },
];
// Largest |fused - composed| allowed, relative to max(1, |value|).
const TOL: Partial<Record<DType, number>> = { float64: 1e-10, float32: 2e-5 };

const [B, H, HD] = [2, 3, 5];

/**
 * A mask of shape (B, 1, Tq, Tk) that broadcasts over heads. Key 0 always stays visible, so no
 * query row is masked out entirely: for a fully masked row the composed softmax gives NaN, and
 * what the fused kernels give differs between libtorch versions.
 */
function makeMask(kind: Mask, tq: number, tk: number, dtype: DType): Tensor | null {
  if (kind === 'none') return null;
  const shape = [B, 1, tq, tk];
  const firstKey = torch.arange(tk).eq(0); // (Tk,) bool
  if (kind === 'bool') return torch.call('aten::logical_or', [torch.rand(shape).gt(0.4), firstKey]) as Tensor;
  // additive: a few -inf, the rest finite biases
  const cut = torch.logicalAnd(torch.rand(shape).lt(0.3), torch.logicalNot(firstKey));
  return torch.randn(shape, { dtype }).maskedFill(cut, -Infinity);
}

interface Result { out: number[]; grads: number[][] }

function run(fn: typeof torch.sdpaComposed, q0: Tensor, k0: Tensor, v0: Tensor, weights: Tensor, o: { mask: Tensor | null; causal: boolean }): Result {
  return torch.tidy(() => {
    const [q, k, v] = [q0, k0, v0].map((x) => x.detach().requiresGrad_()) as [Tensor, Tensor, Tensor];
    const out = fn(q, k, v, o);
    out.mul(weights).sum().backward();
    return { out: values(out), grads: [q, k, v].map((x) => values(x.grad!)) };
  });
}

const values = (t: Tensor): number[] => Array.from(t.to('float64').data() as Float64Array);

function expectClose(a: number[], b: number[], tol: number, what: string): void {
  expect(a.length, what).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    expect(Number.isFinite(a[i]!) && Number.isFinite(b[i]!), `${what}[${i}]: ${a[i]} vs ${b[i]}`).toBe(true);
    worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / Math.max(1, Math.abs(a[i]!), Math.abs(b[i]!)));
  }
  expect(worst, `${what}: largest relative difference`).toBeLessThanOrEqual(tol);
}

describe('fused attention agrees with the composed math', () => {
  it(`libtorch ${VERSION}: ${FUSED ? `${OP} present` : 'no fused op; scaledDotProductAttention falls back to sdpaComposed'}`, () => {
    expect(FUSED).toBe(!/^1\./.test(VERSION)); // PyTorch 2.0 added the op
    if (FUSED) return;
    torch.tidy(() => {
      torch.manualSeed(0);
      const [q, k, v] = [torch.randn([B, H, 4, HD]), torch.randn([B, H, 6, HD]), torch.randn([B, H, 6, HD])];
      const o = { mask: makeMask('bool', 4, 6, 'float32'), causal: true };
      expect(values(torch.scaledDotProductAttention(q, k, v, o))).toEqual(values(torch.sdpaComposed(q, k, v, o)));
    });
  });

  for (const dtype of ['float64', 'float32'] as const) {
    for (const c of CASES) {
      it(`${dtype}: ${c.name}: output and gradients`, (ctx) => {
        ctx.skip(!FUSED, ABSENT);
        torch.tidy(() => {
          torch.manualSeed(1);
          const q = torch.randn([B, H, c.tq, HD], { dtype });
          const k = torch.randn([B, H, c.tk, HD], { dtype });
          const v = torch.randn([B, H, c.tk, HD], { dtype });
          const weights = torch.randn([B, H, c.tq, HD], { dtype });
          const o = { mask: makeMask(c.mask, c.tq, c.tk, dtype), causal: c.causal };
          const fused = run(torch.scaledDotProductAttention, q, k, v, weights, o);
          const composed = run(torch.sdpaComposed, q, k, v, weights, o);
          const tol = TOL[dtype]!;
          expectClose(fused.out, composed.out, tol, 'output');
          ['q', 'k', 'v'].forEach((name, i) => expectClose(fused.grads[i]!, composed.grads[i]!, tol, `d/d${name}`));
        });
      });
    }
  }

  it('the causal mask sits at the end of the keys: the last query sees every key, the first of 3 queries over 7 keys sees 5', (ctx) => {
    ctx.skip(!FUSED, ABSENT);
    torch.tidy(() => {
      // v = one-hot of the key position, q = 0: each output row is the mean of the visible keys' one-hots.
      const [tq, tk] = [3, 7];
      const q = torch.zeros([1, 1, tq, 4], { dtype: 'float64' });
      const k = torch.randn([1, 1, tk, 4], { dtype: 'float64' });
      const v = torch.oneHot(torch.arange(tk), tk).to('float64').view([1, 1, tk, tk]);
      const rows = values(torch.scaledDotProductAttention(q, k, v, { causal: true }));
      const visible = [0, 1, 2].map((i) => rows.slice(i * tk, (i + 1) * tk).filter((x) => x > 0).length);
      expect(visible).toEqual([5, 6, 7]);
    });
  });
});
