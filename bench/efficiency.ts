// The paper's efficiency claim, measured: training step time and peak memory of an SPN with
// S = 1, 2, 4 against the fully autoregressive baseline (bench/baseline.ts: one causal
// transformer over all H·W·C sub-pixels), at the same width and decoder depth and batch.
//
// What is compared. One SPN training step supervises ONE target slice per image: H·W·C/S²
// sub-pixels. One baseline step supervises all H·W·C sub-pixels of each image. So:
//   per image-step:         ms per image per step (what one optimizer step costs per image)
//   per supervised sub-pixel: µs per sub-pixel that receives a loss (= per image-step cost × S²
//                           for the SPN: S² steps to supervise every sub-pixel of an image once)
//   memory:                 peak memory of a training step at the same batch
// The SPN also has its conditioning network (condLayers conv blocks), which the baseline lacks.
//
// Memory: each configuration runs in its own child process (`--one <json>`) so that peaks do not
// mix: on CPU the peak resident set (VmHWM, reset through /proc/self/clear_refs once libtorch is
// loaded) minus the resident set at that moment; on CUDA the allocator's peak.
// Configurations whose estimated peak exceeds --max-gb are skipped with the estimate recorded.
//
//   node dist/bench/efficiency.js [--quick] [--device cpu|cuda] [--max-gb N] [--json out.json]
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ArgError } from '../src/errors.js';
import * as torch from '../src/torch/index.js';
import { AdamW, clipGradNorm } from '../src/torch/optim/index.js';
import { parseModelConfig, type ModelConfig } from '../src/spn/config.js';
import { SPN } from '../src/spn/model.js';
import { RasterTransformer, baselineAttentionBytes, baselineForwardMacs, type BaselineConfig } from './baseline.js';
import { emitReport, median, reportHeader, runIfMain, type ReportHeader } from './machine.js';
import { spnForwardMacs, trainFlops } from './flops.js';

/** One measured configuration. */
export interface OneSpec {
  model: 'baseline' | 'spn';
  image: [number, number, number]; // H, W, C
  scale: number; // S for the SPN; 1 for the baseline (it has no slices)
  batch: number;
  dim: number;
  heads: number;
  layers: number; // baseline blocks = SPN decoder blocks
  condLayers: number; // SPN conditioning blocks (the baseline has none)
  bits: number;
  warmup: number;
  reps: number;
  /** Keep repeating fast steps until this many seconds of timed steps (at most 50 steps). */
  minSeconds: number;
  /** Stop repeating once this many seconds of timed steps have run (at least one is kept). */
  maxSeconds: number;
  device: 'cpu' | 'cuda';
}

export interface Measurement {
  spec: OneSpec;
  status: 'ok' | 'skipped' | 'failed';
  reason?: string;
  parameters: number | null;
  /** Sub-pixels that get a loss per image per step: H·W·C (baseline), H·W·C/S² (SPN). */
  supervised_per_image: number;
  step_ms: number | null; // median
  step_ms_all: number[];
  ms_per_image: number | null; // step_ms / batch
  us_per_subpixel: number | null; // step_ms / (batch × supervised_per_image), in µs
  /** Training memory: peak minus the process's footprint before the model was built. */
  peak_bytes: number | null;
  memory_method: 'vmhwm-child' | 'rss-in-process' | 'cuda-peak' | null;
  estimated_bytes: number;
  /** One (B, heads, T, T) float32 attention-score matrix, T the attended sequence length. */
  attention_matrix_bytes: number;
  train_gflop_per_step: number;
  achieved_gflops: number | null;
}

export interface Comparison {
  image: [number, number, number];
  scale: number;
  /** SPN S=1 / this SPN (the main reference: the same pixel tokens and channel head, full
   * context): > 1 means S is cheaper. Null where either did not run. */
  vs_s1_time_per_subpixel: number | null;
  vs_s1_memory: number | null;
  /** baseline / SPN: > 1 means the SPN is cheaper. Null where the baseline did not run. */
  time_per_image_step: number | null;
  time_per_subpixel: number | null;
  memory: number | null;
  /** From the baseline's estimated (not measured) memory, where it was skipped. */
  memory_estimated: number | null;
}

export interface EfficiencyReport extends ReportHeader<'efficiency'> {
  isolated: boolean; // one child process per configuration
  max_bytes: number;
  compared: string;
  entries: Measurement[];
  comparisons: Comparison[];
}

export interface EfficiencyOptions {
  device?: 'cpu' | 'cuda';
  quick?: boolean;
  /** Run each configuration in its own process (default true; tests run in-process). */
  isolate?: boolean;
  sizes?: [number, number, number][];
  scales?: number[];
  dim?: number;
  heads?: number;
  layers?: number;
  condLayers?: number;
  /** Batch per image size (keyed by H), or one batch for all. */
  batch?: number | Record<number, number>;
  warmup?: number;
  reps?: number;
  minSeconds?: number;
  maxSeconds?: number;
  /** Skip configurations whose estimated peak memory exceeds this (GB = 2^30 bytes). */
  maxGB?: number;
  log?: (line: string) => void;
}

const GB = 2 ** 30;

// --- estimates ------------------------------------------------------------------------------------

function baselineConfig(s: OneSpec): BaselineConfig {
  const [height, width, channels] = s.image;
  return { height, width, channels, bits: s.bits, dim: s.dim, heads: s.heads, layers: s.layers };
}

function spnConfig(s: OneSpec): ModelConfig {
  const [height, width, channels] = s.image;
  return parseModelConfig({ height, width, channels, bits: s.bits, scale: s.scale, dim: s.dim, heads: s.heads, condLayers: s.condLayers, decLayers: s.layers, kernel: 3 });
}

/**
 * A rough training-peak estimate, to skip what cannot fit: parameters with gradients and the two
 * AdamW moments (4 copies), the attention matrices (materialised where libtorch has no fused
 * attention, as 1.13; the fused kernel of 2.x keeps only blocks of them), ~24 saved width-D activations per position per block, and the logits with their
 * softmax and gradient. Recorded next to the measured peak, so the estimate can be checked.
 */
export function estimate(s: OneSpec, fused = torch.hasOp('aten::scaled_dot_product_attention')): { bytes: number; attentionMatrix: number; trainFlops: number; supervised: number } {
  const [H, W, C] = s.image;
  const scores = fused ? 0 : 1; // bytes of materialised attention scores count only without the fused kernel
  const V = 2 ** s.bits;
  const B = s.batch;
  if (s.model === 'baseline') {
    const cfg = baselineConfig(s);
    const N = H * W * C;
    const att = baselineAttentionBytes(cfg, B);
    const params = N * s.dim + s.layers * 12 * s.dim * s.dim + s.dim * V;
    const acts = s.layers * 24 * B * N * s.dim * 4 + 3 * B * N * V * 4;
    return { bytes: 16 * params + scores * att.trainingPeak + acts, attentionMatrix: att.perMatrix, trainFlops: trainFlops(baselineForwardMacs(cfg), B), supervised: N };
  }
  const cfg = spnConfig(s);
  const T = (H / s.scale) * (W / s.scale);
  const perMatrix = B * s.heads * T * T * 4;
  const attention = (s.layers + 4) * perMatrix + (s.layers + 2) * T * T;
  const params = T * s.dim + (s.layers * 21 + s.condLayers * 18 + 9) * s.dim * s.dim + 2 * C * V * s.dim + s.dim * V;
  const acts = (s.layers * 30 + s.condLayers * 6) * B * T * s.dim * 4 + B * T * C * (3 * V + 6 * s.dim) * 4;
  return { bytes: 16 * params + scores * attention + acts, attentionMatrix: perMatrix, trainFlops: trainFlops(spnForwardMacs(cfg), B), supervised: T * C };
}

// --- one configuration ------------------------------------------------------------------------------

function readProcStatus(): { rss: number; hwm: number } | null {
  try {
    const s = fs.readFileSync('/proc/self/status', 'utf8');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN) * 1024;
    const r = { rss: kb('VmRSS'), hwm: kb('VmHWM') };
    return Number.isFinite(r.rss) && Number.isFinite(r.hwm) ? r : null;
  } catch {
    return null;
  }
}

/** Resets VmHWM to the current RSS (Linux: writing 5 to clear_refs). False where unsupported. */
function resetPeakRss(): boolean {
  try {
    fs.writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

function sync(device: string): void {
  if (device === 'cuda') torch.cuda.synchronize();
}

/** Measures one configuration in this process. */
export function measureOne(s: OneSpec, isolated: boolean): Measurement {
  const est = estimate(s);
  const base: Measurement = {
    spec: s, status: 'ok', parameters: null, supervised_per_image: est.supervised,
    step_ms: null, step_ms_all: [], ms_per_image: null, us_per_subpixel: null,
    peak_bytes: null, memory_method: null, estimated_bytes: est.bytes, attention_matrix_bytes: est.attentionMatrix,
    train_gflop_per_step: est.trainFlops / 1e9, achieved_gflops: null,
  };
  const { device } = s;
  const [H, W, C] = s.image;
  // Touch the engine once so that its one-time allocations are not counted as training memory.
  torch.tidy(() => torch.mm(torch.ones([8, 8], { device }), torch.ones([8, 8], { device })));
  sync(device);
  const cudaStart = device === 'cuda' ? torch.cuda.memory(true).allocated : 0;
  const canReset = device === 'cpu' && resetPeakRss();
  const before = readProcStatus();
  let rssMax = process.memoryUsage().rss;
  const rss0 = rssMax;

  torch.manualSeed(0);
  const model: SPN | RasterTransformer = s.model === 'spn' ? new SPN(spnConfig(s), { device }) : new RasterTransformer(baselineConfig(s), { device });
  const named = model.namedParameters().map(([name, param]) => ({ name, param }));
  const optim = new AdamW(named, { lr: 1e-4, weightDecay: 0.01, betas: [0.9, 0.99] });
  const params = model.parameters();
  const x = torch.keep(torch.randint(0, 2 ** s.bits, [s.batch, H, W, C], { device }));
  const times: number[] = [];
  try {
    model.train();
    let timed = 0;
    // At least `reps` timed steps; fast steps repeat until minSeconds (up to 50) so that the
    // median is not over a handful of millisecond-long steps; slow ones stop at maxSeconds.
    for (let i = 0; ; i++) {
      const n = i - s.warmup; // timed steps so far
      if (n >= s.reps && (timed >= s.minSeconds || n >= 50)) break;
      sync(device);
      const t0 = performance.now();
      torch.tidy(() => {
        // The trainer's loss: mean bits per supervised sub-pixel.
        const loss = model instanceof SPN
          ? model.nll({ x }, torch.randint(0, model.S * model.S, [s.batch], { device })).mean().div(model.dimsPerSlice * Math.LN2)
          : model.nll({ x }).mean().div(model.dimsPerImage * Math.LN2);
        loss.backward();
      });
      clipGradNorm(params, 1);
      optim.step();
      optim.zeroGrad();
      sync(device);
      const ms = performance.now() - t0;
      rssMax = Math.max(rssMax, process.memoryUsage().rss);
      if (i >= s.warmup) {
        times.push(ms);
        timed += ms / 1000;
        if (timed >= s.maxSeconds) break;
      }
    }
    const stepMs = median(times);
    const out: Measurement = {
      ...base,
      parameters: model.numParameters(),
      step_ms: stepMs,
      step_ms_all: times,
      ms_per_image: stepMs / s.batch,
      us_per_subpixel: (1000 * stepMs) / (s.batch * est.supervised),
      achieved_gflops: est.trainFlops / (stepMs * 1e6),
    };
    if (device === 'cuda') {
      out.peak_bytes = torch.cuda.memory().peak - cudaStart;
      out.memory_method = 'cuda-peak';
    } else {
      const after = readProcStatus();
      if (isolated && canReset && before && after) {
        out.peak_bytes = after.hwm - before.rss;
        out.memory_method = 'vmhwm-child';
      } else {
        // In-process: RSS sampled after each step; earlier work may have left freed memory
        // mapped, so this can under-count.
        out.peak_bytes = Math.max(rssMax, after && canReset ? after.hwm : 0) - rss0;
        out.memory_method = 'rss-in-process';
      }
    }
    return out;
  } finally {
    x.dispose();
    optim.dispose();
    model.dispose();
  }
}

// --- the benchmark ----------------------------------------------------------------------------------

const RESULT_MARK = 'EFFICIENCY_RESULT ';

/** The compiled script to spawn (dist/bench/efficiency.js), also when this module runs as .ts. */
function childScript(): string {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.js')) return here;
  return path.join(path.dirname(here), '..', 'dist', 'bench', 'efficiency.js');
}

function runChild(s: OneSpec, timeoutS: number): Measurement {
  const est = estimate(s);
  const failed = (reason: string): Measurement => ({
    spec: s, status: 'failed', reason, parameters: null, supervised_per_image: est.supervised,
    step_ms: null, step_ms_all: [], ms_per_image: null, us_per_subpixel: null, peak_bytes: null, memory_method: null,
    estimated_bytes: est.bytes, attention_matrix_bytes: est.attentionMatrix, train_gflop_per_step: est.trainFlops / 1e9, achieved_gflops: null,
  });
  const script = childScript();
  if (!fs.existsSync(script)) return failed(`${script} not found: run \`npm run build\` first`);
  const r = spawnSync(process.execPath, [script, '--one', JSON.stringify(s)], {
    encoding: 'utf8',
    timeout: timeoutS * 1000,
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 16 * 2 ** 20,
  });
  const line = r.stdout?.split('\n').find((l) => l.startsWith(RESULT_MARK));
  if (line) return JSON.parse(line.slice(RESULT_MARK.length)) as Measurement;
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT') return failed(`timed out after ${timeoutS} s`);
  if (r.signal === 'SIGKILL') return failed('killed (SIGKILL: out of memory?)');
  const err = (r.stderr ?? '').trim().split('\n').slice(-3).join(' | ');
  return failed(`exit ${r.status ?? r.signal}: ${err || 'no output'}`);
}

function memAvailable(): number {
  try {
    const m = /^MemAvailable:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch { /* not Linux */ }
  return os.freemem();
}

export function runEfficiencyBench(opts: EfficiencyOptions = {}): EfficiencyReport {
  const device = opts.device ?? 'cpu';
  const quick = opts.quick ?? false;
  const isolate = opts.isolate ?? true;
  const log = opts.log ?? (() => {});
  if (device !== 'cpu' && device !== 'cuda') throw new ArgError(`--device ${String(device)}: expected cpu or cuda`);
  if (device === 'cuda' && !torch.cuda.isAvailable()) throw new ArgError('--device cuda: libtorch sees no CUDA device (see `spn info`)');
  const sizes = opts.sizes ?? (quick ? [[8, 8, 3], [16, 16, 3]] : [[32, 32, 3], [64, 64, 3]]);
  const scales = opts.scales ?? [1, 2, 4];
  const dim = opts.dim ?? (quick ? 16 : 64);
  const heads = opts.heads ?? (quick ? 2 : 4);
  const layers = opts.layers ?? (quick ? 1 : 2);
  const condLayers = opts.condLayers ?? (quick ? 1 : 2);
  const batchFor = (h: number): number =>
    typeof opts.batch === 'number' ? opts.batch : (opts.batch?.[h] ?? (quick ? 2 : h >= 64 ? 1 : 2));
  const warmup = opts.warmup ?? 1;
  const reps = opts.reps ?? (quick ? 2 : 5);
  const minSeconds = opts.minSeconds ?? (quick ? 0 : 3);
  const maxSeconds = opts.maxSeconds ?? (quick ? 5 : 60);
  // On a shared machine take at most half of what is free, and never more than 8 GB by default.
  const maxBytes = (opts.maxGB ?? Math.min(8, (0.5 * memAvailable()) / GB)) * GB;
  for (const [H, W] of sizes) {
    for (const S of scales) if (H % S || W % S) throw new ArgError(`scale S=${S} does not divide the image size ${H}×${W}`);
  }

  const entries: Measurement[] = [];
  const comparisons: Comparison[] = [];
  for (const image of sizes) {
    const common = { image, batch: batchFor(image[0]), dim, heads, layers, condLayers, bits: 8, warmup, reps, minSeconds, maxSeconds, device };
    const specs: OneSpec[] = [{ model: 'baseline', scale: 1, ...common }, ...scales.map((S): OneSpec => ({ model: 'spn', scale: S, ...common }))];
    const results: Measurement[] = [];
    for (const s of specs) {
      const est = estimate(s);
      const name = `${s.model === 'spn' ? `SPN S=${s.scale}` : 'baseline'} ${image.join('×')} batch ${s.batch}`;
      let m: Measurement;
      if (est.bytes > maxBytes) {
        m = {
          spec: s, status: 'skipped',
          reason: `skipped: would need ~${(est.bytes / GB).toFixed(1)} GB (attention scores ${(est.attentionMatrix / GB).toFixed(2)} GB per layer); limit ${(maxBytes / GB).toFixed(1)} GB (--max-gb)`,
          parameters: null, supervised_per_image: est.supervised, step_ms: null, step_ms_all: [], ms_per_image: null, us_per_subpixel: null,
          peak_bytes: null, memory_method: null, estimated_bytes: est.bytes, attention_matrix_bytes: est.attentionMatrix,
          train_gflop_per_step: est.trainFlops / 1e9, achieved_gflops: null,
        };
      } else if (isolate) {
        m = runChild(s, Math.max(120, 20 * s.maxSeconds));
      } else {
        m = measureOne(s, false);
      }
      log(m.status === 'ok'
        ? `${name}: ${m.step_ms!.toFixed(1)} ms/step, ${m.ms_per_image!.toFixed(1)} ms/image, ${m.us_per_subpixel!.toFixed(2)} µs/sub-pixel, peak ${(m.peak_bytes! / 2 ** 20).toFixed(0)} MiB (est. ${(m.estimated_bytes / 2 ** 20).toFixed(0)} MiB)`
        : `${name}: ${m.status}: ${m.reason}`);
      results.push(m);
    }
    const b = results[0]!;
    const s1 = results.find((m) => m.spec.model === 'spn' && m.spec.scale === 1);
    for (const m of results.slice(1)) {
      const ok = b.status === 'ok' && m.status === 'ok';
      const ok1 = s1?.status === 'ok' && m.status === 'ok';
      comparisons.push({
        image,
        scale: m.spec.scale,
        vs_s1_time_per_subpixel: ok1 ? s1.us_per_subpixel! / m.us_per_subpixel! : null,
        vs_s1_memory: ok1 && s1.peak_bytes! > 0 && m.peak_bytes! > 0 ? s1.peak_bytes! / m.peak_bytes! : null,
        time_per_image_step: ok ? b.ms_per_image! / m.ms_per_image! : null,
        time_per_subpixel: ok ? b.us_per_subpixel! / m.us_per_subpixel! : null,
        memory: ok && b.peak_bytes! > 0 && m.peak_bytes! > 0 ? b.peak_bytes! / m.peak_bytes! : null,
        memory_estimated: b.status !== 'ok' && m.status === 'ok' && m.peak_bytes! > 0 ? b.estimated_bytes / m.peak_bytes! : null,
      });
    }
    entries.push(...results);
  }
  return {
    ...reportHeader('efficiency', device, quick),
    isolated: isolate,
    max_bytes: maxBytes,
    compared:
      'Training step = forward + backward + gradient clipping + AdamW, median over timed steps after warmup, same batch, width and decoder depth. ' +
      'An SPN step supervises one target slice per image (H·W·C/S² sub-pixels); a baseline step supervises all H·W·C. ' +
      'The main reference is the SPN with S = 1 (the same pixel tokens and channel head, full context): ratios SPN S=1 / SPN S per supervised sub-pixel and in peak training memory. ' +
      'The second is the sub-pixel-token transformer: ratios baseline / SPN per image-step, per supervised sub-pixel and in peak training memory. ' +
      'The saving comes from each step working on one slice of H·W/S² pixels instead of all H·W (less memory, a cheaper step); the price is S² steps to supervise every sub-pixel of an image once, which the per-sub-pixel figures include.',
    entries,
    comparisons,
  };
}

function main(): void {
  const { values } = parseArgs({
    options: {
      one: { type: 'string' },
      json: { type: 'string' },
      device: { type: 'string', default: 'cpu' },
      quick: { type: 'boolean', default: false },
      'max-gb': { type: 'string' },
      'in-process': { type: 'boolean', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.one) {
    // Child mode: one configuration, the result as one marked line on stdout.
    const m = measureOne(JSON.parse(values.one) as OneSpec, true);
    process.stdout.write(RESULT_MARK + JSON.stringify(m) + '\n');
    return;
  }
  const maxGB = values['max-gb'] === undefined ? undefined : Number(values['max-gb']);
  if (maxGB !== undefined && !(maxGB > 0)) throw new ArgError(`--max-gb ${values['max-gb']}: expected a positive number`);
  const report = runEfficiencyBench({
    device: values.device as 'cpu' | 'cuda',
    quick: values.quick,
    isolate: !values['in-process'],
    ...(maxGB !== undefined ? { maxGB } : {}),
    log: (line) => process.stderr.write(line + '\n'),
  });
  emitReport(report, values.json);
}

runIfMain(import.meta.url, 'bench/efficiency', main);
