// Training throughput per preset: sub-pixels per second of the trainer's step (forward, backward,
// gradient clipping, AdamW, EMA) on random data, run as `spn train` runs it (the preset's
// precision, bf16 autocast or fp32, and the trainer's thread count), and the share of the
// machine's measured matmul FLOP/s in that precision that the step achieves, with the step's
// FLOPs counted from the model's layer shapes.
//
//   node dist/bench/throughput.js [--device cpu|cuda] [--quick] [--preset NAME]... [--json out.json]
//
// CPU presets run on cpu; the GPU presets only with --device cuda.
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { ArgError } from '../src/errors.js';
import * as torch from '../src/torch/index.js';
import { AdamW, EMA, clipGradNorm } from '../src/torch/optim/index.js';
import { getPreset, parseModelConfig, type ModelConfig } from '../src/spn/config.js';
import { SPN } from '../src/spn/model.js';
import { threadWork, useBf16 } from '../src/train/trainer.js';
import { checkDevice, emitReport, median, reportHeader, runIfMain, type ReportHeader } from './machine.js';
import { measureMatmul, spnForwardMacs, sync, trainFlops, type MatmulPeak } from './flops.js';

export const CPU_PRESETS = ['fmnist-cpu', 'cifar-cpu'] as const;
export const GPU_PRESETS = ['imagenet32-gpu', 'imagenet64-gpu', 'celebahq256-gpu'] as const;

export interface PresetThroughput {
  preset: string;
  model: ModelConfig;
  parameters: number;
  batch: number;
  /** The preset's training arithmetic as the trainer resolves it on this machine, and its threads. */
  precision: 'bf16' | 'fp32';
  threads: number;
  warmup: number;
  reps: number;
  /** Median milliseconds per training step, and every measured step. */
  step_ms: number;
  step_ms_all: number[];
  /** batch × sub-pixels of one slice: what one step supervises (the trainer's definition). */
  subpixels_per_step: number;
  subpixels_per_s: number;
  images_per_s: number; // image-steps (one target slice each) per second
  train_gflop_per_step: number;
  achieved_gflops: number;
  /** The model's largest matmul shape (MLP: batch·T × D → r·D), measured alone in the step's precision. */
  model_matmul: MatmulPeak;
  /** The square matmul peak in the step's precision and threads (the report's `peak` for fp32). */
  reference_peak: MatmulPeak;
  /** achieved_gflops / reference_peak. */
  share_of_peak: number;
}

export interface ThroughputReport extends ReportHeader<'throughput'> {
  blas: string;
  /** Square float32 matmul at the size below: the machine's reference FLOP/s. */
  peak: MatmulPeak;
  flops_formula: string;
  presets: PresetThroughput[];
}

export interface ThroughputOptions {
  device?: 'cpu' | 'cuda';
  quick?: boolean;
  /** Presets to run (default: the CPU presets on cpu, the GPU presets on cuda). */
  presets?: string[];
  /** Overrides the presets' batch size (tests). */
  batch?: number;
  warmup?: number;
  reps?: number;
  /** Side of the square matmul used as the peak reference. */
  peakSize?: number;
  log?: (line: string) => void;
}

export function presetModel(name: string): ModelConfig {
  const p = getPreset(name);
  const [height, width, channels] = p.shape;
  return parseModelConfig({ ...p.model, height, width, channels }, `preset ${name}`);
}

/** Runs the trainer's step `warmup + reps` times and returns the timed steps' milliseconds. */
export function timeTrainingSteps(model: SPN, batch: number, device: string, warmup: number, reps: number, bf16 = false): number[] {
  const named = model.namedParameters().map(([name, param]) => ({ name, param }));
  const optim = new AdamW(named, { lr: 1e-4, weightDecay: 0.01, betas: [0.9, 0.99] });
  const ema = new EMA(named, 0.999);
  const params = model.parameters();
  const { height: H, width: W, channels: C } = model.cfg;
  const x = torch.keep(torch.randint(0, model.V, [batch, H, W, C], { device }));
  const first = model.firstSlice;
  const end = model.S * model.S;
  const out: number[] = [];
  try {
    model.train();
    for (let i = 0; i < warmup + reps; i++) {
      sync(device);
      const t0 = performance.now();
      torch.tidy(() => {
        const k = torch.randint(first, end, [batch], { device });
        const forward = () => model.nll({ x }, k).mean().div(model.dimsPerSlice * Math.LN2);
        (bf16 ? torch.autocast(device.startsWith('cuda') ? 'cuda' : 'cpu', forward) : forward()).backward();
      });
      clipGradNorm(params, 1);
      optim.step();
      optim.zeroGrad();
      ema.update();
      sync(device);
      if (i >= warmup) out.push(performance.now() - t0);
    }
  } finally {
    x.dispose();
    optim.dispose();
    ema.dispose();
  }
  return out;
}

export function runThroughputBench(opts: ThroughputOptions = {}): ThroughputReport {
  const device = opts.device ?? 'cpu';
  const quick = opts.quick ?? false;
  const log = opts.log ?? (() => {});
  checkDevice(device);
  const presets = opts.presets ?? (device === 'cuda' ? [...GPU_PRESETS] : [...CPU_PRESETS]);
  for (const p of presets) {
    if ((GPU_PRESETS as readonly string[]).includes(p) && device !== 'cuda') throw new ArgError(`preset ${p} is a GPU preset: run it with --device cuda`);
  }
  const warmup = opts.warmup ?? (quick ? 1 : 3);
  const reps = opts.reps ?? (quick ? 2 : 10);
  const peakSize = opts.peakSize ?? (quick ? 256 : device === 'cuda' ? 4096 : 1024);
  const targetMs = quick ? 20 : 300;
  const peak = measureMatmul(peakSize, peakSize, peakSize, device, quick ? 3 : 5, targetMs);
  log(`matmul ${peakSize}³ float32: ${peak.gflops.toFixed(1)} GFLOP/s`);
  const results: PresetThroughput[] = [];
  const threadsBefore = torch.getNumThreads();
  for (const name of presets) {
    const cfg = presetModel(name);
    const preset = getPreset(name);
    const batch = opts.batch ?? preset.train.batchSize;
    const onCuda = device === 'cuda';
    const bf16 = useBf16(preset.train.precision ?? 'auto', onCuda);
    const dtype = bf16 ? 'bfloat16' : 'float32';
    // as `spn train` picks them (bench --threads sets SPN_THREADS)
    const threads = torch.threadsFor(threadWork(bf16, onCuda));
    torch.setNumThreads(threads);
    torch.manualSeed(0);
    const model = new SPN(cfg, { device });
    try {
      const steps = timeTrainingSteps(model, batch, device, warmup, reps, bf16);
      const stepMs = median(steps);
      const T = model.T;
      const modelMatmul = measureMatmul(batch * T, cfg.dim, cfg.mlpRatio * cfg.dim, device, quick ? 3 : 5, targetMs, dtype);
      const reference = bf16 ? measureMatmul(peakSize, peakSize, peakSize, device, quick ? 3 : 5, targetMs, dtype) : peak;
      const flops = trainFlops(spnForwardMacs(cfg), batch);
      const achieved = flops / (stepMs * 1e6);
      const subpixels = batch * model.dimsPerSlice;
      const r: PresetThroughput = {
        preset: name,
        model: cfg,
        parameters: model.numParameters(),
        batch,
        precision: bf16 ? 'bf16' : 'fp32',
        threads,
        warmup,
        reps,
        step_ms: stepMs,
        step_ms_all: steps,
        subpixels_per_step: subpixels,
        subpixels_per_s: subpixels / (stepMs / 1000),
        images_per_s: batch / (stepMs / 1000),
        train_gflop_per_step: flops / 1e9,
        achieved_gflops: achieved,
        model_matmul: modelMatmul,
        reference_peak: reference,
        share_of_peak: achieved / reference.gflops,
      };
      log(`${name} batch ${batch}, ${r.precision}, ${threads} thread(s): ${stepMs.toFixed(1)} ms/step, ${Math.round(r.subpixels_per_s)} sub-pixels/s, ${achieved.toFixed(2)} GFLOP/s = ${(100 * r.share_of_peak).toFixed(1)}% of the ${r.precision} matmul peak (${reference.gflops.toFixed(1)} GFLOP/s)`);
      results.push(r);
    } finally {
      model.dispose();
      torch.setNumThreads(threadsBefore);
    }
  }
  return {
    ...reportHeader('throughput', device, quick, { blas: true }),
    peak,
    flops_formula: 'training FLOPs/step = 6 × batch × forward MACs per image-slice (convs with all k² taps, full T×T attention, linears, channel head; see spnForwardMacs in bench/flops.ts)',
    presets: results,
  };
}

function main(): void {
  const { values } = parseArgs({
    options: {
      json: { type: 'string' },
      device: { type: 'string', default: 'cpu' },
      quick: { type: 'boolean', default: false },
      preset: { type: 'string', multiple: true },
    },
    strict: true,
    allowPositionals: false,
  });
  const report = runThroughputBench({
    device: values.device as 'cpu' | 'cuda',
    quick: values.quick,
    ...(values.preset ? { presets: values.preset } : {}),
    log: (line) => process.stderr.write(line + '\n'),
  });
  emitReport(report, values.json);
}

runIfMain(import.meta.url, 'bench/throughput', main);
