// Autograd against central finite differences in float64, for every differentiable op the
// SPN models use. Each check compares the analytic gradient of sum(f(x) * R), R fixed random
// weights, with (L(x + eps e_i) - L(x - eps e_i)) / (2 eps) for every element i of every input.
import { describe, expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';
import type { Tensor } from '../../src/torch/index.js';

// Thousands of tiny ops: one intra-op thread avoids OpenMP hand-off costs that dominate at
// this size (15 s instead of 0.2 s on a busy 2-core machine).
torch.setNumThreads(1);

const EPS = 1e-6;
const TOL = 1e-6;

const randn = (shape: number[]) => torch.randn(shape, { dtype: 'float64' });
/** Uniform in [lo, hi): keeps log, sqrt, div and pow bases away from their singularities. */
const uniform = (shape: number[], lo: number, hi: number) => torch.rand(shape, { dtype: 'float64' }).mul(hi - lo).add(lo);
const long = (values: number[], shape?: number[]) => torch.fromArray(BigInt64Array.from(values.map(BigInt)), shape);
const f64 = (t: Tensor) => Array.from(t.data() as Float64Array);

function gradCheck(f: (...xs: Tensor[]) => Tensor, inputs: Tensor[]): void {
  torch.tidy(() => {
    const leaves = inputs.map((x) => x.detach().requiresGrad_());
    const out = f(...leaves);
    const weights = randn(out.shape);
    out.mul(weights).sum().backward();
    const analytic = leaves.map((l) => {
      const g = l.grad;
      return g === null ? new Array<number>(l.numel).fill(0) : f64(g);
    });
    const base = inputs.map((x) => Float64Array.from(x.data() as Float64Array));
    const lossAt = (vals: Float64Array[]) =>
      torch.noGrad(() => torch.tidy(() => f(...vals.map((v, j) => torch.fromArray(v, inputs[j]!.shape))).mul(weights).sum().item()));
    base.forEach((values, j) => {
      for (let i = 0; i < values.length; i++) {
        const plus = base.map((b) => b.slice());
        const minus = base.map((b) => b.slice());
        plus[j]![i] = values[i]! + EPS;
        minus[j]![i] = values[i]! - EPS;
        const numeric = (lossAt(plus) - lossAt(minus)) / (2 * EPS);
        const a = analytic[j]![i]!;
        if (Math.abs(a - numeric) > TOL * Math.max(1, Math.abs(a), Math.abs(numeric))) {
          expect.fail(`input ${j} element ${i}: analytic ${a} vs finite difference ${numeric}`);
        }
      }
    });
  });
}

describe('gradients match finite differences (float64)', () => {
  it('the checker itself catches a wrong gradient', () => {
    // x * detach(x) has true derivative 2x but autograd sees only x.
    expect(() => gradCheck((x) => x.mul(x.detach()), [uniform([3], 1, 2)])).toThrow(/analytic .* vs finite difference/);
  });

  it('broadcast arithmetic', () => {
    torch.tidy(() => {
      gradCheck((a, b) => a.add(b), [randn([3, 4]), randn([4])]);
      gradCheck((a, b) => a.sub(b, 0.5), [randn([3, 4]), randn([3, 1])]);
      gradCheck((a, b) => a.mul(b), [randn([2, 3, 4]), randn([3, 1])]);
      gradCheck((a, b) => a.div(b), [randn([3, 4]), uniform([4], 0.5, 2)]);
      gradCheck((a) => a.mul(3).add(2).div(4).sub(1), [randn([5])]);
    });
  });

  it('pow, exp, log, sqrt', () => {
    torch.tidy(() => {
      gradCheck((a) => a.pow(3), [randn([6])]);
      gradCheck((a, b) => a.pow(b), [uniform([2, 3], 0.5, 2), randn([3])]);
      gradCheck((a) => a.exp(), [randn([6])]);
      gradCheck((a) => a.log(), [uniform([6], 0.5, 3)]);
      gradCheck((a) => a.sqrt(), [uniform([6], 0.5, 3)]);
    });
  });

  it('matmul, bmm, linear', () => {
    torch.tidy(() => {
      gradCheck((a, b) => a.matmul(b), [randn([3, 4]), randn([4, 5])]);
      gradCheck((a, b) => a.matmul(b), [randn([2, 3, 4]), randn([4, 2])]);
      gradCheck((a, b) => torch.bmm(a, b), [randn([2, 3, 4]), randn([2, 4, 2])]);
      gradCheck((x, w, b) => torch.linear(x, w, b), [randn([2, 3, 4]), randn([5, 4]), randn([5])]);
      gradCheck((x, w) => torch.linear(x, w), [randn([3, 4]), randn([2, 4])]);
    });
  });

  it('conv2d with padding, dilation, stride and groups', () => {
    torch.tidy(() => {
      gradCheck((x, w, b) => torch.conv2d(x, w, b, { padding: 1 }), [randn([1, 2, 4, 4]), randn([3, 2, 3, 3]), randn([3])]);
      gradCheck((x, w, b) => torch.conv2d(x, w, b, { padding: 2, dilation: 2, groups: 2 }), [randn([1, 4, 4, 4]), randn([4, 2, 3, 3]), randn([4])]);
      gradCheck((x, w) => torch.conv2d(x, w, null, { stride: 2, padding: [1, 0] }), [randn([2, 1, 5, 4]), randn([2, 1, 2, 3])]);
    });
  });

  it('layerNorm with weight and bias, embedding', () => {
    torch.tidy(() => {
      gradCheck((x, w, b) => torch.layerNorm(x, [5], w, b), [randn([2, 3, 5]), randn([5]), randn([5])]);
      gradCheck((x) => torch.layerNorm(x, [2, 3]), [randn([2, 2, 3])]);
      const idx = long([0, 2, 4, 1, 1, 3], [2, 3]);
      gradCheck((w) => torch.embedding(w, idx), [randn([5, 3])]);
    });
  });

  it('softmax, logSoftmax, crossEntropy', () => {
    torch.tidy(() => {
      gradCheck((x) => x.softmax(-1), [randn([3, 5])]);
      gradCheck((x) => x.softmax(0), [randn([3, 5])]);
      gradCheck((x) => x.logSoftmax(-1), [randn([3, 5])]);
      const target = long([0, 4, 2, 2]);
      gradCheck((x) => torch.crossEntropy(x, target, 'none'), [randn([4, 5])]);
      gradCheck((x) => torch.crossEntropy(x, target, 'mean'), [randn([4, 5])]);
      const spatial = long([1, 0, 2, 2, 1, 0], [2, 3]); // (N, ...) targets for (N, C, ...) logits
      gradCheck((x) => torch.crossEntropy(x, spatial, 'mean'), [randn([2, 3, 3])]);
    });
  });

  it('activations', () => {
    torch.tidy(() => {
      gradCheck((x) => torch.gelu(x), [randn([8])]);
      gradCheck((x) => torch.gelu(x, 'tanh'), [randn([8])]);
      gradCheck((x) => torch.relu(x), [randn([8])]);
      gradCheck((x) => torch.silu(x), [randn([8])]);
      gradCheck((x) => torch.sigmoid(x), [randn([8])]);
      gradCheck((x) => torch.tanh(x), [randn([8])]);
    });
  });

  it('maskedFill and where', () => {
    torch.tidy(() => {
      const mask = torch.fromArray(new Uint8Array([1, 0, 0, 1, 1, 0])).to('bool').reshape([2, 3]);
      gradCheck((x) => x.maskedFill(mask, -2), [randn([2, 3])]);
      gradCheck((x) => x.maskedFill(mask.select(0, 0), 0), [randn([4, 3])]); // broadcast mask
      gradCheck((a, b) => torch.where(mask, a, b), [randn([2, 3]), randn([3])]);
    });
  });

  it('reductions with dims', () => {
    torch.tidy(() => {
      gradCheck((x) => x.sum(), [randn([2, 3])]);
      gradCheck((x) => x.sum(1), [randn([2, 3, 2])]);
      gradCheck((x) => x.sum([0, 2], true), [randn([2, 3, 2])]);
      gradCheck((x) => x.mean(), [randn([2, 3])]);
      gradCheck((x) => x.mean(-1, true), [randn([2, 3, 2])]);
      gradCheck((x) => x.mean([0, 1]), [randn([2, 3, 2])]);
    });
  });

  it('shape ops', () => {
    torch.tidy(() => {
      gradCheck((x) => x.reshape([3, 4]), [randn([2, 6])]);
      gradCheck((x) => x.view([4, 3]), [randn([2, 6])]);
      gradCheck((x) => x.permute([2, 0, 1]), [randn([2, 3, 4])]);
      gradCheck((x) => x.transpose(0, 2), [randn([2, 3, 4])]);
      gradCheck((x) => x.slice(1, 1, 6, 2), [randn([2, 7])]);
      gradCheck((x) => x.slice(0, 0, null, 3).narrow(1, 1, 2), [randn([7, 4])]);
      gradCheck((a, b) => torch.cat([a, b], 1), [randn([2, 3]), randn([2, 2])]);
      gradCheck((a, b) => torch.stack([a, b], 0), [randn([2, 3]), randn([2, 3])]);
      gradCheck((x) => x.gather(1, long([0, 2, 2, 1, 0, 0], [2, 3])), [randn([2, 4])]);
      gradCheck((x) => x.indexSelect(0, long([2, 0, 2])), [randn([3, 2])]);
      gradCheck((x) => x.expand([4, 2, 3]), [randn([2, 1])]);
      gradCheck((x) => x.unsqueeze(1).squeeze(1).flatten(), [randn([2, 3])]);
      gradCheck((x) => torch.pad(x, [1, 2, 0, 1], 0.5), [randn([2, 3, 2])]);
      gradCheck((x) => x.chunk(3, -1)[1]!, [randn([2, 6])]);
    });
  });

  it('attention with a causal mask, fused and composed', () => {
    torch.tidy(() => {
      const qkv = () => [randn([1, 2, 4, 3]), randn([1, 2, 4, 3]), randn([1, 2, 4, 3])];
      gradCheck((q, k, v) => torch.scaledDotProductAttention(q, k, v, { causal: true }), qkv());
      gradCheck((q, k, v) => torch.sdpaComposed(q, k, v, { causal: true }), qkv());
      // Decoding against a longer key/value cache: queries sit at the end.
      gradCheck((q, k, v) => torch.sdpaComposed(q, k, v, { causal: true }), [randn([1, 1, 2, 3]), randn([1, 1, 5, 3]), randn([1, 1, 5, 3])]);
      const keep = torch.fromArray(new Uint8Array([1, 1, 0, 1])).to('bool'); // boolean mask: true = attend
      gradCheck((q, k, v) => torch.sdpaComposed(q, k, v, { mask: keep }), qkv());
    });
  });
});

describe('autograd mechanics', () => {
  it('noGrad records no graph; detach cuts it and shares storage', () => {
    torch.tidy(() => {
      const x = randn([3]).requiresGrad_();
      const y = torch.noGrad(() => x.mul(2));
      expect(y.requiresGrad).toBe(false);
      expect(torch.isGradEnabled()).toBe(true);
      const z = x.mul(2);
      expect(z.requiresGrad).toBe(true);
      expect(z.isLeaf).toBe(false);
      const d = z.detach();
      expect(d.requiresGrad).toBe(false);
      expect(d.isLeaf).toBe(true);
      expect(f64(d)).toEqual(f64(z));
    });
  });

  it('accumulates gradients across backward calls; grad = null resets', () => {
    torch.tidy(() => {
      const x = torch.fromArray(new Float64Array([1, 2, 3])).requiresGrad_();
      expect(x.grad).toBeNull();
      x.square().sum().backward(); // d/dx = 2x
      expect(f64(x.grad!)).toEqual([2, 4, 6]);
      x.mul(5).sum().backward();
      expect(f64(x.grad!)).toEqual([7, 9, 11]);
      x.grad = null;
      expect(x.grad).toBeNull();
      x.sum().backward();
      expect(f64(x.grad!)).toEqual([1, 1, 1]);
      // retainGraph lets one graph be differentiated twice.
      const y = x.exp().sum();
      y.backward(undefined, { retainGraph: true });
      y.backward();
      const e = [1, 2, 3].map((v) => 1 + 2 * Math.exp(v));
      f64(x.grad!).forEach((g, i) => expect(g).toBeCloseTo(e[i]!, 10));
    });
  });
});
