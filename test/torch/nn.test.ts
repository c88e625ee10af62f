import { describe, expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';
import { nn } from '../../src/torch/index.js';

const arr = (t: torch.Tensor): (number | bigint)[] => Array.from(t.data() as ArrayLike<number | bigint>);

const maxDiff = (a: torch.Tensor, b: torch.Tensor) => torch.tidy(() => a.sub(b).abs().max().item());

describe('nn layers', () => {
  it('Linear computes x W^T + b and registers parameters', () => {
    torch.tidy(() => {
      const lin = new nn.Linear(3, 2);
      expect(lin.namedParameters().map(([n]) => n)).toEqual(['weight', 'bias']);
      expect(lin.numParameters()).toBe(8);
      lin.loadStateDict({ weight: torch.fromArray([1, 0, 1, 0, 1, 0], [2, 3]), bias: torch.fromArray([1, -1]) });
      expect(arr(lin.forward(torch.fromArray([1, 2, 3], [1, 3])))).toEqual([5, 1]);
      expect(() => lin.loadStateDict({ weight: torch.zeros([2, 3]) })).toThrow(/missing \[bias\]/);
      expect(() => lin.loadStateDict({ weight: torch.zeros([3, 3]), bias: torch.zeros([2]) })).toThrow(/shape/);
    });
  });

  it('Conv2d, LayerNorm, Embedding, Dropout shapes and modes', () => {
    torch.tidy(() => {
      const conv = new nn.Conv2d(2, 4, 3, { padding: 1 });
      expect(conv.forward(torch.randn([1, 2, 5, 5])).shape).toEqual([1, 4, 5, 5]);
      const ln = new nn.LayerNorm(4);
      const y = ln.forward(torch.randn([3, 4]));
      expect(Math.abs(y.mean().item())).toBeLessThan(1e-5);
      const emb = new nn.Embedding(10, 4);
      expect(emb.forward(torch.fromArray(new BigInt64Array([1n, 2n]))).shape).toEqual([2, 4]);
      const drop = new nn.Dropout(0.5);
      drop.eval();
      expect(arr(drop.forward(torch.ones([4])))).toEqual([1, 1, 1, 1]);
    });
  });

  it('parameters survive tidy scopes, intermediates do not', () => {
    const before = torch.liveTensors();
    const lin = torch.tidy(() => new nn.Linear(4, 4));
    expect(torch.liveTensors()).toBe(before + 2);
    torch.tidy(() => lin.forward(torch.randn([2, 4])).sum().backward());
    expect(torch.liveTensors()).toBe(before + 2);
    lin.zeroGrad();
    lin.dispose();
    expect(torch.liveTensors()).toBe(before);
  });
});

describe('causal self-attention', () => {
  it('is causal: changing position t changes no output before t', () => {
    torch.tidy(() => {
      torch.manualSeed(0);
      const att = new nn.CausalSelfAttention(16, 4, { dtype: 'float64' });
      const x = torch.randn([2, 7, 16], { dtype: 'float64' });
      const y = att.forward(x);
      const x2 = x.clone();
      x2.slice(1, 4, 5).copy_(torch.randn([2, 1, 16], { dtype: 'float64' }));
      const y2 = att.forward(x2);
      expect(maxDiff(y.slice(1, 0, 4), y2.slice(1, 0, 4))).toBe(0);
      expect(maxDiff(y.slice(1, 4, 5), y2.slice(1, 4, 5))).toBeGreaterThan(1e-3);
    });
  });
});
