import { describe, expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';
import { SpnError } from '../../src/errors.js';

const arr = (t: torch.Tensor): (number | bigint)[] => Array.from(t.data() as ArrayLike<number | bigint>);

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-5) => {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThanOrEqual(tol);
};

describe('tensor basics', () => {
  it('round-trips typed arrays with shape and dtype', () => {
    torch.tidy(() => {
      const t = torch.fromArray(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
      expect(t.shape).toEqual([2, 3]);
      expect(t.dtype).toBe('float32');
      expect(t.device).toBe('cpu');
      expect(arr(t)).toEqual([1, 2, 3, 4, 5, 6]);
      const u = torch.fromArray(new Uint8Array([0, 255, 7]));
      expect(u.dtype).toBe('uint8');
      expect(arr(u.to('int64'))).toEqual([0n, 255n, 7n]);
      expect(t.to('float64').dtype).toBe('float64');
      expect(Array.from(t.to('bfloat16').toFloat32())).toEqual([1, 2, 3, 4, 5, 6]);
      expect(torch.fromArray([2.5]).item()).toBe(2.5);
      expect(t.tolist()).toEqual([[1, 2, 3], [4, 5, 6]]);
    });
  });

  it('creates tensors', () => {
    torch.tidy(() => {
      expect(arr(torch.zeros([2, 2]))).toEqual([0, 0, 0, 0]);
      expect(arr(torch.ones([3], { dtype: 'int32' }))).toEqual([1, 1, 1]);
      expect(arr(torch.full([2], 0.5))).toEqual([0.5, 0.5]);
      expect(arr(torch.arange(5))).toEqual([0n, 1n, 2n, 3n, 4n]);
      expect(arr(torch.arange(1, 7, 2, { dtype: 'float32' }))).toEqual([1, 3, 5]);
      const r = torch.randint(0, 10, [1000]).toFloat32();
      expect(Math.min(...r)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...r)).toBeLessThan(10);
      const u = torch.rand([10000]);
      expect(u.mean().item()).toBeGreaterThan(0.45);
      expect(u.mean().item()).toBeLessThan(0.55);
      const n = torch.randn([10000]);
      expect(Math.abs(n.mean().item())).toBeLessThan(0.05);
    });
  });

  it('seeds reproducibly', () => {
    torch.tidy(() => {
      torch.manualSeed(42);
      const a = arr(torch.randn([5]));
      torch.manualSeed(42);
      const b = arr(torch.randn([5]));
      expect(a).toEqual(b);
      const state = torch.getRngState();
      const c = arr(torch.rand([4]));
      torch.setRngState(state);
      expect(arr(torch.rand([4]))).toEqual(c);
    });
  });
});

describe('ops against hand-computed values', () => {
  it('broadcasting elementwise math', () => {
    torch.tidy(() => {
      const a = torch.fromArray([1, 2, 3, 4], [2, 2]);
      const b = torch.fromArray([10, 20], [2]);
      expect(arr(a.add(b))).toEqual([11, 22, 13, 24]);
      expect(arr(a.sub(b))).toEqual([-9, -18, -7, -16]);
      expect(arr(a.mul(b))).toEqual([10, 40, 30, 80]);
      expect(arr(a.div(2))).toEqual([0.5, 1, 1.5, 2]);
      expect(arr(a.pow(2))).toEqual([1, 4, 9, 16]);
      expect(arr(a.add(1, 2))).toEqual([3, 4, 5, 6]);
      close(torch.exp(torch.fromArray([0, 1])).data() as Float32Array, [1, Math.E]);
      close(torch.relu(torch.fromArray([-1, 2])).data() as Float32Array, [0, 2]);
      close(torch.sigmoid(torch.fromArray([0])).data() as Float32Array, [0.5]);
      close(torch.tanh(torch.fromArray([0.5])).data() as Float32Array, [Math.tanh(0.5)]);
      close(torch.silu(torch.fromArray([1])).data() as Float32Array, [1 / (1 + Math.exp(-1))]);
      // exact GELU: x * Phi(x); Phi(1) = 0.8413447460685429
      close(torch.gelu(torch.fromArray([1])).data() as Float32Array, [0.8413447460685429]);
    });
  });

  it('matmul, bmm, linear', () => {
    torch.tidy(() => {
      const a = torch.fromArray([1, 2, 3, 4, 5, 6], [2, 3]);
      const b = torch.fromArray([1, 0, 0, 1, 1, 1], [3, 2]);
      expect(arr(torch.matmul(a, b))).toEqual([4, 5, 10, 11]);
      const bb = torch.bmm(a.unsqueeze(0).expand([2, 2, 3]), b.unsqueeze(0).expand([2, 3, 2]));
      expect(bb.shape).toEqual([2, 2, 2]);
      expect(arr(bb)).toEqual([4, 5, 10, 11, 4, 5, 10, 11]);
      const w = torch.fromArray([1, 1, 1, 0, 0, 1], [2, 3]);
      const bias = torch.fromArray([0.5, -1]);
      expect(arr(torch.linear(a, w, bias))).toEqual([6.5, 2, 15.5, 5]);
    });
  });

  it('shape ops, strided slicing and writing through a view', () => {
    torch.tidy(() => {
      const x = torch.arange(16, undefined, 1, { dtype: 'float32' }).reshape([4, 4]);
      // x[1::2, 0::2]
      const s = x.slice(0, 1, null, 2).slice(1, 0, null, 2);
      expect(s.shape).toEqual([2, 2]);
      expect(arr(s.contiguous())).toEqual([4, 6, 12, 14]);
      s.copy_(torch.fromArray([-1, -2, -3, -4], [2, 2]));
      expect(arr(x)).toEqual([0, 1, 2, 3, -1, 5, -2, 7, 8, 9, 10, 11, -3, 13, -4, 15]);
      expect(x.permute([1, 0]).contiguous().data()[1]).toBe(-1);
      expect(x.transpose(0, 1).shape).toEqual([4, 4]);
      expect(x.unsqueeze(0).shape).toEqual([1, 4, 4]);
      expect(x.unsqueeze(0).squeeze(0).shape).toEqual([4, 4]);
      expect(x.view([2, 8]).shape).toEqual([2, 8]);
      expect(x.flatten().shape).toEqual([16]);
      const parts = x.chunk(2, 1);
      expect(parts[1]!.shape).toEqual([4, 2]);
      expect(arr(torch.cat([x.select(0, 0), x.select(0, 3)]))).toEqual([0, 1, 2, 3, -3, 13, -4, 15]);
      expect(torch.stack([x, x], 0).shape).toEqual([2, 4, 4]);
      const idx = torch.fromArray(new BigInt64Array([2n, 0n]));
      expect(arr(x.indexSelect(0, idx).select(1, 0))).toEqual([8, 0]);
      const g = torch.gather(torch.fromArray([1, 2, 3, 4], [2, 2]), 1, torch.fromArray(new BigInt64Array([1n, 0n]), [2, 1]));
      expect(arr(g)).toEqual([2, 3]);
      expect(arr(torch.triu(torch.ones([2, 2])))).toEqual([1, 1, 0, 1]);
      expect(arr(torch.tril(torch.ones([2, 2])))).toEqual([1, 0, 1, 1]);
      expect(arr(torch.pad(torch.ones([1, 2]), [1, 0]))).toEqual([0, 1, 1]);
    });
  });

  it('reductions, softmax, cross entropy', () => {
    torch.tidy(() => {
      const x = torch.fromArray([1, 2, 3, 4, 5, 6], [2, 3]);
      expect(x.sum().item()).toBe(21);
      expect(arr(x.sum(1))).toEqual([6, 15]);
      expect(x.sum(0, true).shape).toEqual([1, 3]);
      expect(arr(x.mean(0))).toEqual([2.5, 3.5, 4.5]);
      expect(x.max().item()).toBe(6);
      expect(arr(x.argmax(1))).toEqual([2n, 2n]);
      const [vals, idx] = torch.maxDim(x, 0);
      expect(arr(vals)).toEqual([4, 5, 6]);
      expect(arr(idx)).toEqual([1n, 1n, 1n]);
      const z = 1 + Math.E + Math.E ** 2;
      close(torch.softmax(torch.fromArray([0, 1, 2]), 0).data() as Float32Array, [1 / z, Math.E / z, Math.E ** 2 / z]);
      close(torch.logSoftmax(torch.fromArray([0, 1, 2]), 0).data() as Float32Array, [-Math.log(z), 1 - Math.log(z), 2 - Math.log(z)]);
      const logits = torch.fromArray([0, 1, 2, 2, 1, 0], [2, 3]);
      const target = torch.fromArray(new BigInt64Array([2n, 2n]));
      const per = torch.crossEntropy(logits, target, 'none');
      close(per.data() as Float32Array, [Math.log(z) - 2, Math.log(z)]);
      close([torch.crossEntropy(logits, target, 'sum').item()], [2 * Math.log(z) - 2]);
      close([torch.crossEntropy(logits, target).item()], [Math.log(z) - 1]);
    });
  });

  it('masking, where, integer ops for bit splitting', () => {
    torch.tidy(() => {
      const x = torch.fromArray([1, 2, 3]);
      const m = torch.fromArray(new Uint8Array([1, 0, 1])).to('bool');
      expect(arr(x.maskedFill(m, -5))).toEqual([-5, 2, -5]);
      expect(arr(torch.where(m, x, torch.zerosLike(x)))).toEqual([1, 0, 3]);
      const v = torch.fromArray(new Int32Array([0, 37, 255, 200]));
      expect(arr(torch.floorDivide(v, 32))).toEqual([0, 1, 7, 6]);
      expect(arr(torch.remainder(v, 32))).toEqual([0, 5, 31, 8]);
      expect(arr(torch.rightShift(v, 5))).toEqual([0, 1, 7, 6]);
      expect(arr(torch.bitwiseAnd(v, 31))).toEqual([0, 5, 31, 8]);
      expect(arr(torch.lt(x, 2))).toEqual([1, 0, 0]);
    });
  });

  it('conv2d with padding, dilation and groups', () => {
    torch.tidy(() => {
      const x = torch.arange(9, undefined, 1, { dtype: 'float32' }).reshape([1, 1, 3, 3]);
      const w = torch.ones([1, 1, 2, 2]);
      expect(arr(torch.conv2d(x, w))).toEqual([8, 12, 20, 24]);
      expect(torch.conv2d(x, w, null, { padding: 1 }).shape).toEqual([1, 1, 4, 4]);
      expect(arr(torch.conv2d(x, w, null, { dilation: 2 }))).toEqual([16]);
      const x2 = torch.cat([x, x.mul(2)], 1);
      const w2 = torch.ones([2, 1, 2, 2]);
      expect(arr(torch.conv2d(x2, w2, null, { groups: 2 }))).toEqual([8, 12, 20, 24, 16, 24, 40, 48]);
    });
  });

  it('layer norm and embedding', () => {
    torch.tidy(() => {
      const x = torch.fromArray([1, 2, 3, 4], [1, 4]);
      const y = torch.layerNorm(x, [4], null, null, 0).data() as Float32Array;
      const sd = Math.sqrt(1.25);
      close(y, [-1.5 / sd, -0.5 / sd, 0.5 / sd, 1.5 / sd]);
      const table = torch.fromArray([0, 0, 1, 1, 2, 2], [3, 2]);
      const e = torch.embedding(table, torch.fromArray(new BigInt64Array([2n, 0n])));
      expect(arr(e)).toEqual([2, 2, 0, 0]);
    });
  });

  it('multinomial samples from the given distribution', () => {
    torch.tidy(() => {
      torch.manualSeed(1);
      const p = torch.fromArray([0, 0, 1, 0], [1, 4]).expand([100, 4]).contiguous();
      const s = torch.multinomial(p, 1).toFloat32();
      expect(Array.from(s).every((v) => v === 2)).toBe(true);
    });
  });

  it('attention: fused or composed, causal masks, dropout', () => {
    torch.tidy(() => {
      torch.manualSeed(3);
      const q = torch.randn([2, 2, 5, 4]);
      const k = torch.randn([2, 2, 5, 4]);
      const v = torch.randn([2, 2, 5, 4]);
      const a = torch.scaledDotProductAttention(q, k, v, { causal: true });
      const b = torch.sdpaComposed(q, k, v, { causal: true });
      close(a.data() as Float32Array, b.data() as Float32Array, 1e-5);
      // the first query attends only to the first key: output = v[0]
      close(b.slice(2, 0, 1).contiguous().data() as Float32Array, v.slice(2, 0, 1).contiguous().data() as Float32Array, 1e-6);
      const additive = torch.triu(torch.full([5, 5], -Infinity), 1);
      close(torch.sdpaComposed(q, k, v, { mask: additive }).data() as Float32Array, b.data() as Float32Array, 1e-6);
      const d = torch.dropout(torch.ones([1000]), 0.5, true).toFloat32();
      expect(d.every((x) => x === 0 || x === 2)).toBe(true);
      expect(arr(torch.dropout(torch.ones([4]), 0.5, false))).toEqual([1, 1, 1, 1]);
    });
  });
});

describe('errors are catchable, never aborts', () => {
  it('shape mismatch carries libtorch message', () => {
    const a = torch.zeros([2, 3]);
    const b = torch.zeros([4, 5]);
    expect(() => torch.matmul(a, b)).toThrow(/cannot be multiplied/);
    try {
      torch.matmul(a, b);
    } catch (e) {
      expect(e).toBeInstanceOf(SpnError);
      expect((e as SpnError).code).toBe('E_NATIVE');
    }
    torch.dispose([a, b]);
  });

  it('wrong dtype, bad args, disposed tensor', () => {
    const f = torch.zeros([3]);
    expect(() => torch.embedding(torch.zeros([3, 2]), f)).toThrow(SpnError);
    expect(() => torch.fromArray([1, 2, 3], [2, 2])).toThrow(/do not fill shape/);
    expect(() => torch.zeros([2]).to('float128' as never)).toThrow();
    expect(() => torch.reshape(f, [7])).toThrow(/invalid for input of size 3/);
    f.dispose();
    expect(() => f.add(1)).toThrow(/disposed/);
    expect(() => f.shape).toThrow(SpnError);
    expect(() => torch.zeros([2]).item()).toThrow(/one element/);
  });
});

describe('memory', () => {
  it('tidy frees all but the result; keep exempts', () => {
    const before = torch.liveTensors();
    const kept = torch.zeros([1]);
    const out = torch.tidy(() => {
      const a = torch.ones([3]);
      torch.keep(kept);
      const b = a.add(1);
      return { b, list: [b.mul(2)] };
    });
    expect(torch.liveTensors()).toBe(before + 3);
    expect(arr(out.list[0]!)).toEqual([4, 4, 4]);
    torch.dispose([out, kept]);
    expect(torch.liveTensors()).toBe(before);
    expect(() => torch.tidy(() => Promise.resolve(1) as unknown as number)).toThrow(/synchronous/);
  });
});
