// Engine benchmark: matmul throughput, and what the TypeScript binding costs over C++ on one
// pre-norm transformer block (forward + backward) run with the op sequence of
// native/bench_block.cc.
//
//   node dist/bench/engine.js [--json out.json] [--device cpu|cuda] [--quick]
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import * as torch from '../src/torch/index.js';
import type { DType, Tensor } from '../src/torch/index.js';
import { checkDevice, emitReport, median, reportHeader, runIfMain, type ReportHeader } from './machine.js';

export interface MatmulResult { n: number; dtype: DType; device: string; ms: number; gflops: number; reps: number; itersPerRep: number }
export interface BlockResult {
  batch: number; seq: number; width: number; heads: number; iters: number; reps: number;
  /** Median milliseconds per iteration, TypeScript through the binding. */
  ts_ms: number;
  /** Median milliseconds per iteration, the same ops called from C++ (native.benchBlock). */
  cpp_ms: number;
  /** ts_ms / cpp_ms - 1: the binding's cost as a fraction of the C++ time. */
  overhead: number;
}
export interface EngineReport extends ReportHeader<'engine'> {
  blas: string;
  matmul: MatmulResult[];
  block: BlockResult;
}

export interface EngineOptions { device?: 'cpu' | 'cuda'; quick?: boolean; log?: (line: string) => void }

function sync(device: string): void {
  if (device.startsWith('cuda')) torch.cuda.synchronize();
}

/** Milliseconds for `iters` calls of fn, after the device has finished them. */
function time(device: string, iters: number, fn: () => void): number {
  sync(device);
  const t0 = performance.now();
  for (let i = 0; i < iters; i++) fn();
  sync(device);
  return performance.now() - t0;
}

function benchMatmul(n: number, dtype: DType, device: string, reps: number, targetMs: number): MatmulResult {
  return torch.tidy(() => {
    const a = torch.randn([n, n], { dtype, device });
    const b = torch.randn([n, n], { dtype, device });
    const once = () => torch.mm(a, b).dispose();
    const first = time(device, 1, once); // warmup, and a guess at the cost of one call
    const iters = Math.max(1, Math.ceil(targetMs / Math.max(first, 1e-3)));
    const perIter = Array.from({ length: reps }, () => time(device, iters, once) / iters);
    const ms = median(perIter);
    return { n, dtype, device, ms, gflops: (2 * n ** 3) / (ms * 1e6), reps, itersPerRep: iters };
  });
}

/** The block of native/bench_block.cc, op for op, with parameters made the same way. */
function makeBlock(B: number, T: number, D: number, H: number, device: string): { step: () => void; dispose: () => void } {
  const o = { device };
  const hd = D / H;
  const s = 1 / Math.sqrt(D);
  const scale = 1 / Math.sqrt(hd);
  const leaf = (t: Tensor) => torch.keep(t.requiresGrad_());
  const param = (shape: number[]) => leaf(torch.tidy(() => torch.randn(shape, o).mul(s)));
  const ln1w = leaf(torch.ones([D], o)), ln1b = leaf(torch.zeros([D], o));
  const ln2w = leaf(torch.ones([D], o)), ln2b = leaf(torch.zeros([D], o));
  const wqkv = param([3 * D, D]), bqkv = leaf(torch.zeros([3 * D], o));
  const wo = param([D, D]), bo = leaf(torch.zeros([D], o));
  const w1 = param([4 * D, D]), b1 = leaf(torch.zeros([4 * D], o));
  const w2 = param([D, 4 * D]), b2 = leaf(torch.zeros([D], o));
  const params = [ln1w, ln1b, ln2w, ln2b, wqkv, bqkv, wo, bo, w1, b1, w2, b2];
  const x = torch.keep(torch.randn([B, T, D], o));
  const mask = torch.keep(torch.tidy(() => torch.triu(torch.ones([T, T], { dtype: 'bool', device }), 1)));

  const step = () =>
    torch.tidy(() => {
      const h = torch.layerNorm(x, [D], ln1w, ln1b, 1e-5);
      const qkv = torch.linear(h, wqkv, bqkv); // (B, T, 3D)
      const [q0, k0, v0] = qkv.chunk(3, -1) as [Tensor, Tensor, Tensor];
      const q = q0.view([B, T, H, hd]).transpose(1, 2); // (B, H, T, hd)
      const k = k0.view([B, T, H, hd]).transpose(1, 2);
      const v = v0.view([B, T, H, hd]).transpose(1, 2);
      let att = torch.matmul(q, k.transpose(-2, -1)).mul(scale); // (B, H, T, T)
      att = att.maskedFill(mask, -Infinity).softmax(-1);
      const y = torch.matmul(att, v).transpose(1, 2).reshape([B, T, D]);
      const x1 = x.add(torch.linear(y, wo, bo));
      const m = torch.gelu(torch.linear(torch.layerNorm(x1, [D], ln2w, ln2b, 1e-5), w1, b1));
      const out = x1.add(torch.linear(m, w2, b2));
      out.square().mean().backward();
      for (const p of params) p.grad = null;
    });
  return { step, dispose: () => torch.dispose([...params, x, mask]) };
}

function benchBlock(device: string, quick: boolean): BlockResult {
  const [B, T, D, H] = quick ? [2, 16, 32, 4] : [16, 256, 256, 4];
  const [iters, warmup, reps] = quick ? [2, 1, 3] : [3, 2, 5];
  const block = makeBlock(B, T, D, H, device);
  try {
    for (let i = 0; i < warmup; i++) block.step();
    torch.native.benchBlock(B, T, D, H, 0, warmup, device);
    const ts: number[] = [];
    const cpp: number[] = [];
    // Interleaved, so that both see the same machine load.
    for (let r = 0; r < reps; r++) {
      ts.push(time(device, iters, block.step) / iters);
      cpp.push(torch.native.benchBlock(B, T, D, H, iters, 0, device));
    }
    const tsMs = median(ts);
    const cppMs = median(cpp);
    return { batch: B, seq: T, width: D, heads: H, iters, reps, ts_ms: tsMs, cpp_ms: cppMs, overhead: tsMs / cppMs - 1 };
  } finally {
    block.dispose();
  }
}

export function runEngineBench(opts: EngineOptions = {}): EngineReport {
  const device = opts.device ?? 'cpu';
  const quick = opts.quick ?? false;
  const log = opts.log ?? (() => {});
  checkDevice(device);
  const sizes = quick ? [32, 64] : [256, 512, 1024, 2048];
  const dtypes: DType[] = device === 'cuda' ? ['float32', 'bfloat16'] : ['float32'];
  const matmul: MatmulResult[] = [];
  for (const dtype of dtypes) {
    for (const n of sizes) {
      const r = benchMatmul(n, dtype, device, quick ? 3 : 5, quick ? 1 : 200);
      log(`matmul ${dtype} N=${n}: ${r.ms.toFixed(3)} ms, ${r.gflops.toFixed(1)} GFLOP/s`);
      matmul.push(r);
    }
  }
  const block = benchBlock(device, quick);
  log(`block B=${block.batch} T=${block.seq} D=${block.width} H=${block.heads}: TypeScript ${block.ts_ms.toFixed(2)} ms, C++ ${block.cpp_ms.toFixed(2)} ms, overhead ${(block.overhead * 100).toFixed(1)}%`);
  return {
    ...reportHeader('engine', device, quick, { blas: true }),
    matmul,
    block,
  };
}

function main(): void {
  const { values } = parseArgs({
    options: { json: { type: 'string' }, device: { type: 'string', default: 'cpu' }, quick: { type: 'boolean', default: false } },
    strict: true,
    allowPositionals: false,
  });
  const report = runEngineBench({
    device: values.device as 'cpu' | 'cuda',
    quick: values.quick,
    log: (line) => process.stderr.write(line + '\n'),
  });
  emitReport(report, values.json);
}

runIfMain(import.meta.url, 'bench/engine', main);
