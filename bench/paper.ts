// `npm run bench -- --only paper`: each stage of the CelebA-HQ 256 recipe (store/recipes.ts,
// celebahq256-8bit) at its real model size, on CPU in fp32: the memory (peak RSS of a child
// process) and the time of one training step at batch 1 (and at the preset's batch where it is
// estimated to fit in 16 GB), the in-training evaluation's peak in the same process, exact
// evaluation of one image in a fresh process (time and peak RSS), and sampling time per image
// (one slice timed and multiplied by the slices the stage draws).
//
// Each measurement runs in its own process (this file with --phase), so that its peak RSS
// (VmHWM of /proc/self/status) is its own. Pixels are pseudo-random: time and memory do not
// depend on their values. The weights are freshly initialised (the cost is the same as trained).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { memorySet } from '../src/data/sets.js';
import { ArgError } from '../src/errors.js';
import { PRESETS, parseModelConfig, type ModelConfig } from '../src/spn/config.js';
import { SPN } from '../src/spn/model.js';
import { sample } from '../src/spn/sample.js';
import { toBatch } from '../src/spn/stage.js';
import { evaluate } from '../src/store/evaluate.js';
import { RECIPES, type RecipeStage } from '../src/store/recipes.js';
import * as torch from '../src/torch/index.js';
import { AdamW } from '../src/torch/optim/index.js';
import { reportHeader, runIfMain, type ReportHeader, cpuFlags } from './machine.js';

const RECIPE = RECIPES['celebahq256-8bit']!;
/** Memory a run at the preset's batch may be estimated to take before it is tried. */
const PRESET_BATCH_LIMIT_GB = 16;

/** The model config a recipe stage trains: the preset with the stage's flags, on the final images. */
export function stageConfig(s: RecipeStage): ModelConfig {
  const p = PRESETS[s.preset]!;
  const [H, W, C] = RECIPE.shape;
  const sub = s.subsample ?? 1;
  const givenBits = s.stage === 'depth' ? (s.givenBits ?? 3) : 0;
  return parseModelConfig({
    ...p.model, height: H / sub, width: W / sub, channels: C, stage: s.stage, givenBits,
    bits: s.stage === 'depth' ? 8 - givenBits : (s.bits ?? p.model.bits), ...(s.scale !== undefined ? { scale: s.scale } : {}),
  });
}

function rssMB(): { peak: number; now: number } {
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  const kb = (f: string) => Number(new RegExp(`${f}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
  return { peak: kb('VmHWM') / 1024, now: kb('VmRSS') / 1024 };
}

function randomImages(n: number, cfg: ModelConfig, seed: number): Uint8Array {
  const data = new Uint8Array(n * cfg.height * cfg.width * cfg.channels);
  let s = seed >>> 0;
  const max = 2 ** 8; // whole bytes: toBatch of a depth stage splits them; other stages' data is at cfg.bits
  const bits = cfg.stage === 'depth' ? 8 : cfg.bits;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    data[i] = (s >>> 24) % max >> (8 - bits);
  }
  return data;
}

const seconds = (t0: number) => (performance.now() - t0) / 1000;

export interface TrainPhase { batch: number; params: number; model_rss_mb: number; step_s: number[]; peak_rss_mb: number; in_training_eval: { slices: number; peak_rss_mb: number; s_per_slice: number } }
export interface EvalPhase { images: number; slices: number; timed_slices: number; seconds: number; s_per_image: number; model_rss_mb: number; peak_rss_mb: number }
export interface SamplePhase { slice_s: number; slices: number; s_per_image: number; model_rss_mb: number; peak_rss_mb: number }

/** Training steps at `batch` (the last one timed), then what the in-training evaluation costs in the same process. */
function trainPhase(cfg: ModelConfig, batch: number, steps: number): TrainPhase {
  const model = new SPN(cfg);
  const params = model.numParameters();
  const opt = new AdamW(model.namedParameters().map(([name, param]) => ({ name, param })), { lr: 1e-4, weightDecay: 0.01 });
  const model_rss_mb = rssMB().now;
  const data = randomImages(batch, cfg, 1);
  const step_s: number[] = [];
  model.train(true);
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    torch.tidy(() => {
      const b = toBatch(data, batch, cfg, 'cpu');
      const k = torch.randint(model.firstSlice, model.S * model.S, [batch]);
      const loss = model.nll(b, k).mean();
      loss.backward();
    });
    opt.step();
    opt.zeroGrad();
    step_s.push(seconds(t0));
  }
  const peak_rss_mb = rssMB().peak;
  // The in-training evaluation: evaluate() frees each slice's tensors before the next, so the
  // peak over a few slices is the peak over all of them; the time is per slice.
  const evalSlices = 2;
  const one = memorySet(randomImages(1, cfg, 2), { n: 1, h: cfg.height, w: cfg.width, c: cfg.channels });
  const t0 = performance.now();
  torch.noGrad(() => torch.tidy(() => {
    model.eval();
    const b = toBatch(one.read(0, 1), 1, cfg, 'cpu');
    for (let j = 0; j < evalSlices; j++) torch.tidy(() => model.nll(b, torch.full([1], model.firstSlice + j, { dtype: 'int64' })).sum().item());
  }));
  const s_per_slice = seconds(t0) / evalSlices;
  return { batch, params, model_rss_mb, step_s, peak_rss_mb, in_training_eval: { slices: evalSlices, peak_rss_mb: rssMB().peak, s_per_slice } };
}

/**
 * Exact evaluation of one image in a fresh process: store/evaluate.ts itself when the stage has
 * few slices (the base stage's 4); otherwise the first `timed` slices through the calls evaluate()
 * makes per slice (its chunk of images, one slice's forward pass in its own scope, freed before
 * the next), the time multiplied by the stage's slices. The peak over a few slices is the peak over
 * all of them, since nothing of a slice outlives it (test/spn/memory.test.ts checks evaluate()).
 */
function evalPhase(cfg: ModelConfig, images: number, timed: number): EvalPhase {
  const model = new SPN(cfg);
  model.eval();
  const model_rss_mb = rssMB().now;
  const set = memorySet(randomImages(images, cfg, 3), { n: images, h: cfg.height, w: cfg.width, c: cfg.channels });
  const slices = model.S * model.S - model.firstSlice;
  const t0 = performance.now();
  let run = slices;
  if (slices <= timed) evaluate(model, set);
  else {
    run = timed;
    torch.noGrad(() => torch.tidy(() => {
      const b = toBatch(set.read(0, images), images, cfg, 'cpu');
      for (let j = 0; j < timed; j++) torch.tidy(() => model.nll(b, torch.full([images], model.firstSlice + j, { dtype: 'int64' })).to('float64').data());
    }));
  }
  const s = (seconds(t0) * slices) / run;
  return { images, slices, timed_slices: run, seconds: s, s_per_image: s / images, model_rss_mb, peak_rss_mb: rssMB().peak };
}

class Stop extends Error {}

/** Sampling one image: the first slice the stage draws is timed, then the time is multiplied by the slices it draws. */
function samplePhase(cfg: ModelConfig): SamplePhase {
  const model = new SPN(cfg);
  const model_rss_mb = rssMB().now;
  const prev = cfg.stage === 'full' ? null : toBatch(randomImages(1, cfg, 4), 1, cfg, 'cpu');
  const t0 = performance.now();
  let slice_s = NaN;
  try {
    torch.tidy(() => sample(model, {
      n: 1, seed: 1,
      ...(cfg.stage === 'size' && prev ? { init: prev.x } : {}),
      ...(cfg.stage === 'depth' && prev?.given ? { given: prev.given } : {}),
      onSliceDone: () => {
        slice_s = seconds(t0);
        throw new Stop();
      },
    }));
  } catch (err) {
    if (!(err instanceof Stop)) throw err;
  }
  if (prev) torch.dispose(prev);
  const slices = model.S * model.S - model.firstSlice;
  return { slice_s, slices, s_per_image: slice_s * slices, model_rss_mb, peak_rss_mb: rssMB().peak };
}

function runPhase(args: string[], log: (l: string) => void): unknown {
  const script = fileURLToPath(import.meta.url);
  log(`  node ${path.basename(script)} ${args.join(' ')}`);
  const out = execFileSync(process.execPath, [script, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 });
  return JSON.parse(out.trim().split('\n').pop()!);
}

export interface PaperStageReport {
  name: string;
  preset: string;
  stage: RecipeStage['stage'];
  what: string;
  shape: [number, number, number];
  bits: number;
  scale: number;
  params: number;
  train1: TrainPhase;
  /** At the preset's batch, or why not. */
  trainPreset: TrainPhase | { batch: number; not_run: string };
  eval: EvalPhase;
  sample: SamplePhase;
}

export interface PaperReport extends ReportHeader<'paper'> {
  recipe: string;
  cpu_flags: string[];
  gpu: string;
  load_before: number[];
  load_after: number[];
  stages: PaperStageReport[];
  targets: { name: string; limit_mb: number; measured_mb: number; met: boolean }[];
}

export interface PaperBenchOptions {
  quick?: boolean;
  log?: (line: string) => void;
}


const loadavg = (): number[] => fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);

export function runPaperBench(o: PaperBenchOptions = {}): PaperReport {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const quick = o.quick ?? false;
  const header = reportHeader('paper', 'cpu', quick);
  const load_before = loadavg();
  const stages: PaperStageReport[] = [];
  for (const s of RECIPE.stages) {
    const cfg = stageConfig(s);
    const arg = ['--stage', s.name, ...(quick ? ['--quick'] : [])];
    log(`${s.name}: ${s.preset} --stage ${s.stage}, ${cfg.height}×${cfg.width}×${cfg.channels}, S=${cfg.scale}, ${cfg.bits} bits`);
    const train1 = runPhase(['--phase', 'train', ...arg, '--batch', '1'], log) as TrainPhase;
    log(`  batch 1: ${train1.step_s.map((x) => x.toFixed(1)).join(', ')} s/step, peak RSS ${train1.peak_rss_mb.toFixed(0)} MB (model + optimizer ${train1.model_rss_mb.toFixed(0)} MB)`);
    const presetBatch = Number(PRESETS[s.preset]!.train.batchSize);
    const estMB = train1.model_rss_mb + (train1.peak_rss_mb - train1.model_rss_mb) * presetBatch;
    const estS = train1.step_s[train1.step_s.length - 1]! * presetBatch;
    let trainPreset: PaperStageReport['trainPreset'];
    if (quick) trainPreset = { batch: presetBatch, not_run: 'quick mode' };
    else if (estMB > PRESET_BATCH_LIMIT_GB * 1024) trainPreset = { batch: presetBatch, not_run: `estimated ${(estMB / 1024).toFixed(1)} GB (batch 1's activations × ${presetBatch}), over ${PRESET_BATCH_LIMIT_GB} GB` };
    else if (estS > 300) trainPreset = { batch: presetBatch, not_run: `estimated ${estS.toFixed(0)} s a step on this machine (batch 1's × ${presetBatch}); not run to keep the benchmark short` };
    else trainPreset = runPhase(['--phase', 'train', ...arg, '--batch', String(presetBatch)], log) as TrainPhase;
    const ev = runPhase(['--phase', 'eval', ...arg, '--images', '1'], log) as EvalPhase;
    log(`  exact evaluation: ${ev.s_per_image.toFixed(1)} s/image (${ev.timed_slices} of ${ev.slices} slices timed), peak RSS ${ev.peak_rss_mb.toFixed(0)} MB`);
    const sa = runPhase(['--phase', 'sample', ...arg], log) as SamplePhase;
    log(`  sampling: ${sa.slice_s.toFixed(1)} s for one slice × ${sa.slices} = ${sa.s_per_image.toFixed(0)} s/image`);
    stages.push({ name: s.name, preset: s.preset, stage: s.stage, what: s.what, shape: [cfg.height, cfg.width, cfg.channels], bits: cfg.bits, scale: cfg.scale, params: train1.params, train1, trainPreset, eval: ev, sample: sa });
  }
  const targets: PaperReport['targets'] = [];
  for (const st of stages) {
    const t = st.train1;
    targets.push({ name: `${st.name}: a training step at batch 1 under 4 GB`, limit_mb: 4096, measured_mb: t.peak_rss_mb, met: t.peak_rss_mb < 4096 });
    targets.push({ name: `${st.name}: exact evaluation (--limit 1) under 4 GB`, limit_mb: 4096, measured_mb: st.eval.peak_rss_mb, met: st.eval.peak_rss_mb < 4096 });
    const lim = t.peak_rss_mb + 1024;
    targets.push({ name: `${st.name}: in-training evaluation at most the step's peak + 1 GB`, limit_mb: lim, measured_mb: t.in_training_eval.peak_rss_mb, met: t.in_training_eval.peak_rss_mb <= lim });
  }
  // the children measure on SPN_THREADS threads (main() below), not on the parent's count
  return { ...header, threads: childThreads(), recipe: RECIPE.name, cpu_flags: cpuFlags(), gpu: 'none: no GPU in this session; the CPU numbers only', load_before, load_after: loadavg(), stages, targets };
}

/** The libtorch threads of each measuring process: SPN_THREADS, else 1 (fp32 on one thread). */
const childThreads = (): number => Number(process.env.SPN_THREADS ?? 1);

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { phase: { type: 'string' }, stage: { type: 'string' }, batch: { type: 'string' }, images: { type: 'string' }, quick: { type: 'boolean', default: false } },
    strict: true,
  });
  torch.setNumThreads(childThreads());
  if (!values.phase) {
    process.stdout.write(JSON.stringify(runPaperBench({ quick: values.quick }), null, 2) + '\n');
    return;
  }
  const s = RECIPE.stages.find((x) => x.name === values.stage);
  if (!s) throw new ArgError(`--stage ${values.stage}: expected one of ${RECIPE.stages.map((x) => x.name).join(', ')}`);
  let cfg = stageConfig(s);
  // quick: the stage's shape and S with a tiny network, to check that the benchmark runs
  if (values.quick) cfg = parseModelConfig({ ...cfg, dim: 16, heads: 2, condLayers: 1, decLayers: 1 });
  let r: object;
  if (values.phase === 'train') r = trainPhase(cfg, Number(values.batch ?? 1), 2);
  else if (values.phase === 'eval') r = evalPhase(cfg, Number(values.images ?? 1), 4);
  else if (values.phase === 'sample') r = samplePhase(cfg);
  else throw new ArgError(`--phase ${values.phase}: expected train, eval or sample`);
  process.stdout.write(JSON.stringify(r) + '\n');
}

runIfMain(import.meta.url, 'bench/paper', main);
