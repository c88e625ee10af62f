// Sampling benchmark: images per second of the cached sampler (context embedded once per slice,
// incremental decoder) against the naive one (a full forward pass per sub-pixel), on a freshly
// initialised model of a preset's architecture. Speed does not depend on the weights.
//
// The naive sampler is too slow to run to the end, so it is timed on the first 49 pixels of slice
// 0 and extrapolated: every one of its sub-pixels costs the same full pass over one slice.
//
//   node dist/bench/sampling.js [--preset fmnist-cpu|cifar-cpu] [--batch 16|64] [--quick]
//                               [--naive-pixels N] [--device cpu|cuda] [--threads N] [--json out.json]
//
// Per-pixel decoding runs many small ops, so on a shared or busy CPU one libtorch thread is
// often faster than several (oversubscription); --threads makes that choice explicit.
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { ArgError } from '../src/errors.js';
import * as torch from '../src/torch/index.js';
import { getPreset, parseModelConfig, type ModelConfig } from '../src/spn/config.js';
import { SPN } from '../src/spn/model.js';
import { sample, sampleNaive } from '../src/spn/sample.js';
import { emitReport, reportHeader, runIfMain, type ReportHeader } from './machine.js';

export interface SamplingOptions {
  preset: 'fmnist-cpu' | 'cifar-cpu';
  batch: 16 | 64;
  quick?: boolean; // fewer naive pixels (for smoke tests)
  naivePixels?: number; // pixels of slice 0 the naive sampler is timed on; default 49 (a whole fmnist-cpu slice; quick: 3)
  device?: 'cpu' | 'cuda';
  threads?: number; // libtorch intra-op threads; default: leave libtorch's setting
  /** Replaces the preset's model (tests use a tiny one); the report says so. */
  model?: ModelConfig;
  log?: (line: string) => void;
}

export interface SamplerResult {
  seconds: number; // wall time measured
  images_per_s: number;
  ms_per_pixel: number; // per pixel of the batch (all channels)
}

export interface SamplingReport extends ReportHeader<'sampling'> {
  preset: string;
  model: ModelConfig;
  custom_model: boolean;
  parameters: number;
  batch: number;
  seed: number;
  cached: SamplerResult;
  naive: SamplerResult;
  naive_extrapolated_from_pixels: number;
  speedup: number; // cached images/s over naive images/s
}

function presetModel(name: string): ModelConfig {
  const p = getPreset(name);
  const [height, width, channels] = p.shape;
  return parseModelConfig({ ...p.model, height, width, channels }, `preset ${name}`);
}

export function benchSampling(o: SamplingOptions): SamplingReport {
  const device = o.device ?? 'cpu';
  const quick = o.quick ?? false;
  const log = o.log ?? (() => {});
  if (o.preset !== 'fmnist-cpu' && o.preset !== 'cifar-cpu') throw new ArgError(`--preset ${String(o.preset)}: expected fmnist-cpu or cifar-cpu`);
  if (o.batch !== 16 && o.batch !== 64) throw new ArgError(`--batch ${String(o.batch)}: expected 16 or 64`);
  if (device !== 'cpu' && device !== 'cuda') throw new ArgError(`--device ${String(device)}: expected cpu or cuda`);
  if (device === 'cuda' && !torch.cuda.isAvailable()) throw new ArgError('--device cuda: libtorch sees no CUDA device (see `spn info`)');
  if (o.threads !== undefined) {
    if (!Number.isInteger(o.threads) || o.threads < 1) throw new ArgError(`--threads ${o.threads}: expected a positive integer`);
    torch.setNumThreads(o.threads);
  }
  const cfg = o.model ?? presetModel(o.preset);
  const seed = 0;
  torch.manualSeed(seed);
  const model = new SPN(cfg, { device });
  model.eval();
  const { height: H, width: W } = cfg;
  const naivePixels = Math.min(o.naivePixels ?? (quick ? 3 : 49), model.T);
  if (!Number.isInteger(naivePixels) || naivePixels < 1) throw new ArgError(`--naive-pixels ${naivePixels}: expected a positive integer`);
  const sync = () => { if (device === 'cuda') torch.cuda.synchronize(); };
  try {
    const parameters = model.parameters().reduce((a, p) => a + p.numel, 0);
    const n = o.batch;
    // Warm-up: allocator, kernels, the first-call costs of both paths.
    sampleNaive(model, { n, seed, maxPixels: 1 }).dispose();
    sync();

    let t0 = performance.now();
    sample(model, { n, seed }).dispose();
    sync();
    const cachedS = (performance.now() - t0) / 1000;
    const cached: SamplerResult = { seconds: cachedS, images_per_s: n / cachedS, ms_per_pixel: (1000 * cachedS) / (H * W) };
    log(`cached: ${n} images in ${cachedS.toFixed(2)} s, ${cached.images_per_s.toFixed(3)} images/s`);

    t0 = performance.now();
    sampleNaive(model, { n, seed, maxPixels: naivePixels }).dispose();
    sync();
    const naiveS = (performance.now() - t0) / 1000;
    const perPixel = naiveS / naivePixels;
    const naive: SamplerResult = { seconds: naiveS, images_per_s: n / (perPixel * H * W), ms_per_pixel: 1000 * perPixel };
    log(`naive: ${naivePixels} pixels in ${naiveS.toFixed(2)} s, extrapolated ${naive.images_per_s.toFixed(4)} images/s`);

    return {
      ...reportHeader('sampling', device, quick),
      preset: o.preset,
      model: cfg,
      custom_model: o.model !== undefined,
      parameters,
      batch: n,
      seed,
      cached,
      naive,
      naive_extrapolated_from_pixels: naivePixels,
      speedup: cached.images_per_s / naive.images_per_s,
    };
  } finally {
    model.dispose();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      preset: { type: 'string', default: 'fmnist-cpu' },
      batch: { type: 'string', default: '16' },
      quick: { type: 'boolean', default: false },
      'naive-pixels': { type: 'string' },
      device: { type: 'string', default: 'cpu' },
      threads: { type: 'string' },
      json: { type: 'string' },
    },
  });
  const batch = Number(values.batch);
  const naivePixels = values['naive-pixels'] === undefined ? undefined : Number(values['naive-pixels']);
  const report = benchSampling({
    preset: values.preset as SamplingOptions['preset'],
    batch: batch as SamplingOptions['batch'],
    quick: values.quick,
    naivePixels,
    device: values.device as SamplingOptions['device'],
    threads: values.threads === undefined ? undefined : Number(values.threads),
    log: (line) => process.stderr.write(`${line}\n`),
  });
  emitReport(report, values.json);
}

runIfMain(import.meta.url, 'bench/sampling', main);
