import { describe, expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';
import * as os from 'node:os';
import { threadWork, useBf16 } from '../../src/train/trainer.js';
import { parseModelConfig, parseTrainConfig } from '../../src/spn/config.js';
import { SPN } from '../../src/spn/model.js';

describe('bf16 autocast on CPU', () => {
  it('runs linears and convs in bf16 inside, fp32 outside, and turns off again after a throw', () => {
    torch.tidy(() => {
      torch.manualSeed(0);
      const x = torch.randn([4, 8]);
      const w = torch.randn([3, 8]);
      const y32 = torch.linear(x, w);
      const y16 = torch.autocast('cpu', () => torch.linear(x, w));
      expect(y32.dtype).toBe('float32');
      expect(y16.dtype).toBe('bfloat16');
      // bf16 keeps 8 significant bits: the product agrees to a few parts in a thousand of its scale
      const a = y32.data() as Float32Array;
      const b = y16.float().data() as Float32Array;
      const scale = Math.max(...Array.from(a, Math.abs));
      for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThan(0.02 * scale);
      expect(torch.autocast('cpu', () => torch.conv2d(torch.randn([1, 2, 5, 5]), torch.randn([3, 2, 3, 3]))).dtype).toBe('bfloat16');
      // elementwise ops and layer norm keep their inputs' dtype
      expect(torch.autocast('cpu', () => x.add(x)).dtype).toBe('float32');
      expect(torch.autocast('cpu', () => torch.layerNorm(x, [8], torch.ones([8]), torch.zeros([8]), 1e-5)).dtype).toBe('float32');
      expect(() => torch.autocast('cpu', () => { throw new Error('inside'); })).toThrow('inside');
      expect(torch.linear(x, w).dtype).toBe('float32');
    });
  });

  it('gives fp32 weights fp32 gradients close to the fp32 ones', () => {
    torch.tidy(() => {
      torch.manualSeed(1);
      const x = torch.randn([16, 8]);
      const w = torch.randn([4, 8]).requiresGrad_(true);
      torch.linear(x, w).pow(2).sum().backward();
      const g32 = w.grad!.clone();
      w.grad!.zero_();
      torch.autocast('cpu', () => torch.linear(x, w)).float().pow(2).sum().backward();
      expect(w.grad!.dtype).toBe('float32');
      const a = g32.data() as Float32Array;
      const b = w.grad!.data() as Float32Array;
      const scale = Math.max(...Array.from(a, Math.abs));
      for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThan(0.03 * scale);
    });
  });

  it('is used for training as TrainConfig.precision says', () => {
    expect(useBf16('fp32', true)).toBe(false);
    expect(useBf16('fp32', false)).toBe(false);
    expect(useBf16('auto', true)).toBe(true);
    expect(useBf16('bf16', true)).toBe(true);
    expect(useBf16('auto', false)).toBe(false);
    expect(useBf16('bf16', false)).toBe(torch.cpuBf16Faster());
  });

  it('counts bf16 as faster on a CPU with AMX, with AVX512-BF16 alone only on libtorch 1.x, never without either', () => {
    const major = Number(torch.native.info().version.split('.')[0]);
    const want = torch.cpuHasAmx() || (torch.cpuHasBf16() && major < 2);
    expect(torch.cpuBf16Faster()).toBe(want);
    if (!torch.cpuHasBf16()) expect(torch.cpuBf16Faster()).toBe(false);
    if (torch.cpuHasAmx()) expect(torch.cpuHasBf16()).toBe(true);
  });

  it("is 'auto' unless set, and a bad value names the field", () => {
    expect(parseTrainConfig({ batchSize: 8, lr: 1e-3 }).precision).toBe('auto');
    expect(() => parseTrainConfig({ batchSize: 8, lr: 1e-3, precision: 'fp16' })).toThrow(/train\.precision/);
  });

  it('trains on every core with bf16 on a CPU, in fp32 on every core with libtorch 2.x and one with 1.x (when no thread count is asked for)', () => {
    const env = process.env.SPN_THREADS; // vitest sets it: without it, the trainer's own choice
    const major = Number(torch.native.info().version.split('.')[0]);
    try {
      delete process.env.SPN_THREADS;
      expect(torch.threadsFor(threadWork(true, false))).toBe(os.availableParallelism());
      expect(threadWork(false, false)).toBe('blas');
      expect(torch.threadsFor(threadWork(false, false))).toBe(major >= 2 ? os.availableParallelism() : 1);
      expect(torch.threadsFor('ops')).toBe(1);
      expect(torch.threadsFor(threadWork(true, true))).toBe(1);
      expect(torch.threadsFor(threadWork(true, false), 3)).toBe(3); // an explicit count wins
      // with SPN_THREADS, that count for any precision; a bad value is an error naming it
      process.env.SPN_THREADS = '1';
      expect(torch.threadsFor(threadWork(true, false))).toBe(1);
      process.env.SPN_THREADS = 'two';
      expect(() => torch.threadsFor('ops')).toThrow(/SPN_THREADS=two/);
    } finally {
      if (env === undefined) delete process.env.SPN_THREADS;
      else process.env.SPN_THREADS = env;
    }
  });

  it("the model's NLL under autocast is in the model's dtype and close to its fp32 value", () => {
    torch.tidy(() => {
      torch.manualSeed(2);
      const cfg = parseModelConfig({ height: 8, width: 8, channels: 3, bits: 8, scale: 2, dim: 32, heads: 2, condLayers: 1, decLayers: 1, context: 'relative', valueFreqs: 2, headFreqs: 2, embedFreqs: 2 });
      const model = new SPN(cfg);
      try {
        const x = torch.randint(0, 256, [4, 8, 8, 3]);
        const k = torch.fromArray(new BigInt64Array([0n, 1n, 2n, 3n]), [4]);
        const a = model.nll({ x }, k);
        const b = torch.autocast('cpu', () => model.nll({ x }, k));
        expect(b.dtype).toBe('float32');
        const [na, nb] = [a.data() as Float32Array, b.data() as Float32Array];
        // about 8 bits/dim at init: 16 pixels × 3 channels × ln 256 nats per slice
        for (let i = 0; i < 4; i++) {
          expect(na[i]).toBeGreaterThan(200);
          expect(Math.abs(na[i]! - nb[i]!) / na[i]!).toBeLessThan(0.01);
        }
      } finally {
        model.dispose();
      }
    });
  });

  it('rejects an unknown device', () => {
    expect(() => torch.native.setAutocast(true, 'tpu' as 'cpu')).toThrow(/device must be 'cpu' or 'cuda', got 'tpu'/);
  });
});
