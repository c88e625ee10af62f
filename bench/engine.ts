// Engine benchmark: what the libtorch build under the addon delivers, and what the TypeScript
// binding costs over C++. Per build (run it once per addon, e.g. with SPN_NATIVE naming the
// PyTorch 2.x one): square matmul FLOP/s in fp32 and bf16; a 3×3 convolution of the fmnist-cpu
// conditioning network's shape, forward and forward + backward; causal attention of the
// fmnist-cpu decoder's shape, forward + backward, fused (libtorch's
// aten::scaled_dot_product_attention, PyTorch 2.x) and composed from matmul and softmax; and one
// pre-norm transformer block (forward + backward) from TypeScript against the same op sequence
// from C++ (native/bench_block.cc).
//
//   node dist/bench/engine.js [--json out.json] [--device cpu|cuda] [--quick]
import { parseArgs } from 'node:util';
import * as torch from '../src/torch/index.js';
import type { DType, Tensor } from '../src/torch/index.js';
import { checkDevice, emitReport, median, reportHeader, runIfMain, type ReportHeader } from './machine.js';
import { perCall, timeCalls } from './flops.js';

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
/** fp32: everything in float32; bf16: under bf16 autocast, as training runs (weights fp32). */
export type Precision = 'fp32' | 'bf16';
export interface ConvResult {
  /** (batch, in channels, grid, grid) in, 3×3 kernel, padding 1, out channels: the shape of a
   * conditioning-network conv of fmnist-cpu (7×7 slices, width 96, batch 32). */
  batch: number; inChannels: number; outChannels: number; grid: number; kernel: number; padding: number;
  precision: Precision;
  /** Median milliseconds per forward pass, and per forward + backward (input and weight grads). */
  fwd_ms: number; fwd_bwd_ms: number;
  /** Forward 2·B·Cout·H·W·Cin·k²; backward twice that (input and weight gradients). */
  fwd_gflops: number; fwd_bwd_gflops: number;
  reps: number;
}
export interface AttentionResult {
  /** q, k, v (batch, heads, seq, headDim), causal: the fmnist-cpu decoder's self-attention. */
  batch: number; heads: number; seq: number; headDim: number;
  precision: Precision;
  /** 'fused': ops.scaledDotProductAttention; 'composed': ops.sdpaComposed. */
  impl: 'fused' | 'composed';
  /** Whether this libtorch has aten::scaled_dot_product_attention; without it 'fused' runs the
   * composed math too. */
  fusedOp: boolean;
  /** Median milliseconds per forward + backward (gradients of q, k and v). */
  fwd_bwd_ms: number;
  /** 4·B·H·T²·hd forward (two matmuls), three times that with the backward. */
  fwd_bwd_gflops: number;
  reps: number;
}
/** The addon and the libtorch it was built against. */
export interface BuildInfo {
  /** native.info().version: the libtorch version. */
  version: string;
  cudaCompiled: boolean;
  cuda: boolean;
  /** The addon loaded: SPN_NATIVE when set, else native/build/spn_torch.node. */
  addon: string;
  /** Whether this CPU computes bf16 natively (AMX or AVX512-BF16); bf16 is emulated elsewhere. */
  cpuBf16: boolean;
  /** Whether that is with AMX tiles (absent from reports written before it was recorded). */
  cpuAmx?: boolean;
}
export interface EngineReport extends ReportHeader<'engine'> {
  blas: string;
  build: BuildInfo;
  matmul: MatmulResult[];
  conv: ConvResult[];
  attention: AttentionResult[];
  block: BlockResult;
}

export interface EngineOptions { device?: 'cpu' | 'cuda'; quick?: boolean; log?: (line: string) => void }

const withPrecision = (device: string, precision: Precision, fn: () => void): (() => void) =>
  precision === 'bf16' ? () => torch.autocast(device.startsWith('cuda') ? 'cuda' : 'cpu', fn) : fn;

function benchConv(shape: { batch: number; channels: number; grid: number }, precision: Precision, device: string, reps: number, targetMs: number): ConvResult {
  const { batch: B, channels: C, grid: G } = shape;
  const k = 3;
  const x = torch.keep(torch.randn([B, C, G, G], { device }).requiresGrad_());
  const w = torch.keep(torch.tidy(() => torch.randn([C, C, k, k], { device }).mul(1 / Math.sqrt(C * k * k))).requiresGrad_());
  const b = torch.keep(torch.zeros([C], { device }).requiresGrad_());
  try {
    const fwd = withPrecision(device, precision, () => torch.tidy(() => { torch.noGrad(() => torch.conv2d(x, w, b, { padding: 1 })); }));
    const fwdBwd = withPrecision(device, precision, () =>
      torch.tidy(() => {
        torch.conv2d(x, w, b, { padding: 1 }).sum().backward();
        for (const p of [x, w, b]) p.grad = null;
      }));
    const fwdMs = perCall(device, reps, targetMs, fwd).ms;
    const fwdBwdMs = perCall(device, reps, targetMs, fwdBwd).ms;
    const flop = 2 * B * C * G * G * C * k * k;
    return {
      batch: B, inChannels: C, outChannels: C, grid: G, kernel: k, padding: 1, precision,
      fwd_ms: fwdMs, fwd_bwd_ms: fwdBwdMs, fwd_gflops: flop / (fwdMs * 1e6), fwd_bwd_gflops: (3 * flop) / (fwdBwdMs * 1e6), reps,
    };
  } finally {
    torch.dispose([x, w, b]);
  }
}

function benchAttention(shape: { batch: number; heads: number; seq: number; headDim: number }, precision: Precision, impl: 'fused' | 'composed', device: string, reps: number, targetMs: number): AttentionResult {
  const { batch: B, heads: H, seq: T, headDim: hd } = shape;
  const qkv = [0, 1, 2].map(() => torch.keep(torch.randn([B, H, T, hd], { device }).requiresGrad_())) as [Tensor, Tensor, Tensor];
  const attend = impl === 'fused' ? torch.scaledDotProductAttention : torch.sdpaComposed;
  try {
    const step = withPrecision(device, precision, () =>
      torch.tidy(() => {
        attend(...qkv, { causal: true }).sum().backward();
        for (const t of qkv) t.grad = null;
      }));
    const { ms } = perCall(device, reps, targetMs, step);
    return {
      batch: B, heads: H, seq: T, headDim: hd, precision, impl, fusedOp: torch.hasOp('aten::scaled_dot_product_attention'),
      fwd_bwd_ms: ms, fwd_bwd_gflops: (12 * B * H * T * T * hd) / (ms * 1e6), reps,
    };
  } finally {
    torch.dispose(qkv);
  }
}

function benchMatmul(n: number, dtype: DType, device: string, reps: number, targetMs: number): MatmulResult {
  return torch.tidy(() => {
    const a = torch.randn([n, n], { dtype, device });
    const b = torch.randn([n, n], { dtype, device });
    const { ms, iters } = perCall(device, reps, targetMs, () => torch.mm(a, b).dispose());
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
      ts.push(timeCalls(device, iters, block.step) / iters);
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
  const info = torch.native.info();
  const build: BuildInfo = {
    version: info.version, cudaCompiled: info.cudaCompiled, cuda: info.cuda,
    addon: process.env.SPN_NATIVE ?? 'native/build/spn_torch.node', cpuBf16: torch.cpuHasBf16(), cpuAmx: torch.cpuHasAmx(),
  };
  log(`libtorch ${build.version}${build.cudaCompiled ? ' (CUDA build)' : ''}, addon ${build.addon}`);
  const reps = quick ? 3 : 5;
  const targetMs = quick ? 1 : 200;
  const sizes = quick ? [32, 64] : [256, 512, 1024, 2048];
  const matmul: MatmulResult[] = [];
  for (const dtype of ['float32', 'bfloat16'] as const) {
    for (const n of sizes) {
      const r = benchMatmul(n, dtype, device, reps, targetMs);
      log(`matmul ${dtype} N=${n}: ${r.ms.toFixed(3)} ms, ${r.gflops.toFixed(1)} GFLOP/s`);
      matmul.push(r);
    }
  }
  const precisions: Precision[] = ['fp32', 'bf16'];
  // fmnist-cpu (src/spn/config.ts): batch 32, width 96, 7×7 slices; 4 heads of 24 over the
  // decoder's 49 positions. The conditioning network's residual convs are 96 -> 96, 3×3, padding
  // 1 on the 7×7 grid (its input conv reads the 9×9 stack with the ring, unpadded: same output).
  const convShape = quick ? { batch: 2, channels: 8, grid: 4 } : { batch: 32, channels: 96, grid: 7 };
  const conv = precisions.map((p) => benchConv(convShape, p, device, reps, targetMs));
  for (const c of conv) {
    log(`conv ${c.precision} ${c.batch}×${c.inChannels}×${c.grid}×${c.grid} 3×3: forward ${c.fwd_ms.toFixed(3)} ms (${c.fwd_gflops.toFixed(1)} GFLOP/s), ` +
      `forward+backward ${c.fwd_bwd_ms.toFixed(3)} ms (${c.fwd_bwd_gflops.toFixed(1)} GFLOP/s)`);
  }
  const attShape = quick ? { batch: 2, heads: 2, seq: 5, headDim: 4 } : { batch: 32, heads: 4, seq: 49, headDim: 24 };
  const attention: AttentionResult[] = [];
  for (const p of precisions) {
    for (const impl of ['fused', 'composed'] as const) {
      const a = benchAttention(attShape, p, impl, device, reps, targetMs);
      log(`attention ${a.precision} ${impl}${impl === 'fused' && !a.fusedOp ? ' (no fused op in this libtorch: composed)' : ''} ` +
        `B=${a.batch} H=${a.heads} T=${a.seq} hd=${a.headDim}: forward+backward ${a.fwd_bwd_ms.toFixed(3)} ms (${a.fwd_bwd_gflops.toFixed(1)} GFLOP/s)`);
      attention.push(a);
    }
  }
  const block = benchBlock(device, quick);
  log(`block B=${block.batch} T=${block.seq} D=${block.width} H=${block.heads}: TypeScript ${block.ts_ms.toFixed(2)} ms, C++ ${block.cpp_ms.toFixed(2)} ms, overhead ${(block.overhead * 100).toFixed(1)}%`);
  return {
    ...reportHeader('engine', device, quick, { blas: true }),
    build,
    matmul,
    conv,
    attention,
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
