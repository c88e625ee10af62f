// FLOP counts of the SPN from its layer shapes, and measured matmul FLOP/s: what the throughput
// benchmark and the GPU check compare a training step against.
import { performance } from 'node:perf_hooks';
import * as torch from '../src/torch/index.js';
import type { ModelConfig } from '../src/spn/config.js';
import { median } from './machine.js';

/**
 * Forward multiply-accumulates of the SPN for one image and one target slice, from the layer
 * shapes. T = (H/S)(W/S) pixels per slice, D width, C channels, V = 2^bits, k kernel, r MLP ratio,
 * L decoder blocks, Lc conditioning blocks, inCh = S²·C + S² (+ S²·C for a depth stage):
 *   conditioning: input conv T·inCh·D·k² + value features (1×1 conv) T·S²·C·2F·D with F =
 *                 valueFreqs + Lc residual blocks of two convs 2·T·D²·k²
 *   decoder input: masked conv A T·D²·k²
 *   per decoder block: masked conv B T·D²·k² + QKV 3·T·D² + scores T²·D + weighted values T²·D
 *                      + output T·D² + MLP 2·r·T·D²
 *   channel head, per sub-pixel (T·C of them): hidden D² + logits D·V
 * Masked convs count all k² taps (they run as dense convs with zeroed weights) and attention the
 * full T×T product (the causal mask is applied after computing every score). Embeddings, norms,
 * softmaxes, the loss and the smooth parts of the head and embedding tables (once per step, not
 * per image) are left out.
 *
 * Training FLOPs per step = 2 FLOPs/MAC × 3 (backward ≈ 2× forward) × batch × forward MACs.
 */
export function spnForwardMacs(cfg: ModelConfig): number {
  const { scale: S, channels: C, dim: D, kernel: k, mlpRatio: r, decLayers: L, condLayers: Lc } = cfg;
  const T = (cfg.height / S) * (cfg.width / S);
  const V = 2 ** cfg.bits;
  const inCh = S * S * C + S * S + (cfg.stage === 'depth' ? S * S * C : 0);
  const k2 = k * k;
  const cond = T * inCh * D * k2 + T * S * S * C * 2 * cfg.valueFreqs * D + Lc * 2 * T * D * D * k2;
  const input = T * D * D * k2;
  const block = T * D * D * k2 + 3 * T * D * D + 2 * T * T * D + T * D * D + 2 * r * T * D * D;
  const head = T * C * (D * D + D * V);
  return cond + input + L * block + head;
}

/** FLOPs of one training step (forward + backward) over `batch` images: 6 × batch × MACs. */
export const trainFlops = (forwardMacs: number, batch: number): number => 6 * batch * forwardMacs;

export interface MatmulPeak { m: number; k: number; n: number; ms: number; gflops: number; reps: number; dtype?: 'float32' | 'bfloat16' }

export function sync(device: string): void {
  if (device.startsWith('cuda')) torch.cuda.synchronize();
}

/** Milliseconds for `iters` calls of fn, after the device has finished them. */
export function timeCalls(device: string, iters: number, fn: () => void): number {
  sync(device);
  const t0 = performance.now();
  for (let i = 0; i < iters; i++) fn();
  sync(device);
  return performance.now() - t0;
}

/**
 * Median milliseconds per call of fn over `reps` timed runs of `iters` calls each, `iters` chosen
 * so that one run lasts about targetMs (from a first, untimed call: the warmup).
 */
export function perCall(device: string, reps: number, targetMs: number, fn: () => void): { ms: number; iters: number } {
  const first = timeCalls(device, 1, fn); // warmup, and a guess at the cost of one call
  const iters = Math.max(1, Math.ceil(targetMs / Math.max(first, 1e-3)));
  return { ms: median(Array.from({ length: reps }, () => timeCalls(device, iters, fn) / iters)), iters };
}

/** GFLOP/s of (m×k)·(k×n) matmuls in dtype: median over reps, each rep timing ≥ targetMs. */
export function measureMatmul(m: number, k: number, n: number, device: string, reps: number, targetMs: number, dtype: 'float32' | 'bfloat16' = 'float32'): MatmulPeak {
  return torch.tidy(() => {
    const a = torch.randn([m, k], { device }).to(dtype);
    const b = torch.randn([k, n], { device }).to(dtype);
    const { ms } = perCall(device, reps, targetMs, () => torch.mm(a, b).dispose());
    return { m, k, n, ms, gflops: (2 * m * k * n) / (ms * 1e6), reps, dtype };
  });
}
