// CUDA through the addon, where this build has it and a GPU is present: tensors move to the
// device and back, CUDA matmul agrees with the CPU, bf16 autocast on CUDA, the caching
// allocator's statistics, and fused attention (libtorch's flash/memory-efficient kernels)
// against the composed math on the GPU, gradients included. Elsewhere every test is skipped
// with the reason; one test checks that a CUDA build without a GPU says so and stays usable.
import { describe, expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';
import type { Tensor } from '../../src/torch/index.js';

const info = torch.native.info();
const CUDA = info.cuda && info.cudaDevices > 0;
const WHY = info.cudaCompiled
  ? `this CUDA build of the addon (libtorch ${info.version}) sees no CUDA device`
  : `the addon was built without CUDA (libtorch ${info.version})`;
const FUSED = torch.hasFusedAttention();

const values = (t: Tensor): number[] => Array.from(t.to('cpu').to('float64').data() as Float64Array);
function maxRelDiff(a: number[], b: number[]): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / Math.max(1, Math.abs(a[i]!), Math.abs(b[i]!)));
  return worst;
}

describe('CUDA', () => {
  it('a build without a usable GPU reports it and keeps the CUDA entry points harmless', (ctx) => {
    ctx.skip(CUDA, 'a CUDA device is present: the tests below cover it');
    expect(info.cudaDevices).toBe(0);
    expect(torch.cuda.isAvailable()).toBe(false);
    expect(() => torch.cuda.synchronize()).not.toThrow();
    expect(torch.cuda.memory()).toEqual({ allocated: 0, peak: 0, reserved: 0 });
  });

  it('moves tensors to the GPU and back; matmul there agrees with the CPU', (ctx) => {
    ctx.skip(!CUDA, WHY);
    torch.tidy(() => {
      torch.manualSeed(0);
      const a = torch.randn([64, 48]);
      const b = torch.randn([48, 32]);
      const ga = a.to('cuda');
      expect(ga.device).toBe('cuda:0');
      expect(values(ga)).toEqual(values(a));
      const c = torch.matmul(ga, b.to('cuda'));
      torch.cuda.synchronize();
      expect(c.device).toBe('cuda:0');
      // TF32 may be on for CUDA matmuls: agreement to ~1e-3 relative
      expect(maxRelDiff(values(c), values(torch.matmul(a, b)))).toBeLessThan(5e-3);
    });
  });

  it('autocast on CUDA runs matmuls in bf16, and the allocator statistics count it', (ctx) => {
    ctx.skip(!CUDA, WHY);
    torch.tidy(() => {
      torch.cuda.memory(true);
      const a = torch.randn([256, 256], { device: 'cuda' });
      const y = torch.autocast('cuda', () => torch.matmul(a, a));
      expect(y.dtype).toBe('bfloat16');
      expect(torch.matmul(a, a).dtype).toBe('float32');
      torch.cuda.synchronize();
      const m = torch.cuda.memory();
      expect(m.allocated).toBeGreaterThanOrEqual(256 * 256 * 4);
      expect(m.peak).toBeGreaterThanOrEqual(m.allocated);
      expect(m.reserved).toBeGreaterThanOrEqual(m.allocated);
    });
  });

  for (const dtype of ['float32', 'bfloat16', 'float16'] as const) {
    it(`fused attention on the GPU agrees with the composed math (${dtype}, causal and masked, gradients)`, (ctx) => {
      ctx.skip(!CUDA, WHY);
      ctx.skip(!FUSED, `libtorch ${info.version} has no aten::scaled_dot_product_attention`);
      // Composed in float32 from the same (rounded) inputs; the fused kernels accumulate in fp32.
      const tol = dtype === 'float32' ? 2e-3 : 3e-2;
      torch.tidy(() => {
        torch.manualSeed(2);
        const [B, H, T, hd] = [4, 4, 49, 24]; // the fmnist-cpu decoder's attention
        const inputs = [0, 1, 2].map(() => torch.randn([B, H, T, hd], { device: 'cuda' }).to(dtype));
        const weights = torch.randn([B, H, T, hd], { device: 'cuda' });
        const keep = torch.rand([B, 1, 1, T], { device: 'cuda' }).gt(0.3);
        const run = (fn: typeof torch.sdpaComposed, d: 'float32' | typeof dtype, o: { causal: boolean; mask?: Tensor }) => {
          const leaves = inputs.map((x) => x.to(d).detach().requiresGrad_());
          const out = fn(leaves[0]!, leaves[1]!, leaves[2]!, o);
          out.float().mul(weights).sum().backward();
          return [values(out), ...leaves.map((l) => values(l.grad!))];
        };
        for (const o of [{ causal: true }, { causal: false, mask: keep }]) {
          const fused = run(torch.scaledDotProductAttention, dtype, o);
          const composed = run(torch.sdpaComposed, 'float32', o);
          fused.forEach((f, i) => expect(maxRelDiff(f, composed[i]!), `${o.causal ? 'causal' : 'masked'} ${['out', 'dq', 'dk', 'dv'][i]}`).toBeLessThan(tol));
        }
      });
    });
  }
});
