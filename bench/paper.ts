// `npm run bench -- --only paper`: each stage of the CelebA-HQ 256 recipe (store/recipes.ts,
// celebahq256-8bit) at its real model size, on CPU in fp32: the memory (peak RSS of a child
// process) and the time of one training step at batch 1 (and at the preset's batch where it is
// estimated to fit in 16 GB), exact evaluation of one image in a fresh process (time and peak
// RSS), sampling time per image (one slice timed and multiplied by the slices the stage draws),
// and the trainer's own in-training evaluation: `train()` (src/train/trainer.ts) run as the
// recipe prints the stage, at batch 1 for 10 steps (its first train record) and then its
// evaluation of 1 test image, every slice, with the peak RSS its metrics records carry
// (rss_peak_mb). That evaluation costs minutes at 256×256 (the depth stage's about 12 at load
// 4), so by default the trainer runs on the base stage and on the size stage (where the
// trainer's first evaluation at real size was once OOM-killed); `--trainer-stages` names others,
// and `--phase in-training-eval --stage <name>` measures one stage's alone (printed, not saved).
// The other stages keep a stand-in: a few slices' model.nll in the training phase's process.
//
// Each measurement runs in its own process (this file with --phase), so that its peak RSS
// (VmHWM of /proc/self/status) is its own. Pixels are pseudo-random (the trainer's as PNG files
// of a generated folder dataset): time and memory do not depend on their values. The weights are
// freshly initialised (the cost is the same as trained).
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Command } from 'commander';
import { register as registerTrain, trainOptions } from '../src/cli/train.js';
import { memorySet } from '../src/data/sets.js';
import { ArgError } from '../src/errors.js';
import { PRESETS, parseModelConfig, type ModelConfig } from '../src/spn/config.js';
import { encodePng } from '../src/spn/images.js';
import { SPN } from '../src/spn/model.js';
import { sample } from '../src/spn/sample.js';
import { toBatch } from '../src/spn/stage.js';
import { evaluate } from '../src/store/evaluate.js';
import { RECIPES, planRecipe, type RecipeStage } from '../src/store/recipes.js';
import * as torch from '../src/torch/index.js';
import type { TrainOptions } from '../src/train/options.js';
import { train } from '../src/train/trainer.js';
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
/**
 * The trainer's own run: its last train record before the evaluation and its test record, as
 * written to metrics.jsonl (rss_peak_mb: the process's VmHWM when each was written); eval_s is
 * the wall time from the train record's appearance to the test record's (polled every 0.2 s).
 */
export interface TrainerPhase {
  argv: string[];
  steps: number;
  batch: number;
  threads: number;
  eval_images: number;
  slices: number;
  train_record: { step: number; time_s: number; loss_bpd: number; rss_peak_mb: number };
  /** Null when the child was ended before its evaluation finished (`killed` says why). */
  test_record: { step: number; bpd: number; images: number; rss_peak_mb: number } | null;
  /** The evaluation's peak: the test record's rss_peak_mb, or the child's VmHWM when it was killed. */
  eval_peak_rss_mb: number;
  /** The child's VmHWM as this process last read it from /proc/<pid>/status (a check of the records). */
  observed_peak_rss_mb: number | null;
  /** Why the child was ended before its test record: its memory passed TRAINER_CAP_MB or the machine ran short. */
  killed?: string;
  step_s: number;
  /** Seconds of the evaluation (to the kill, when killed). */
  eval_s: number;
  s_per_slice: number;
  wall_s: number;
}

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

/** The `spn train` arguments of the trainer run: the stage as the recipe prints it (folder data, on the CPU), then batch 1, 10 steps, 1 test image evaluated once, at the end. */
function trainerArgv(s: RecipeStage, work: string, quick: boolean): string[] {
  const plan = planRecipe(RECIPE, { data: `folder:${path.join(work, 'data')}`, device: 'cpu', out: path.join(work, 'runs') });
  const argv = plan.commands.find((c) => c.stage.name === s.name)!.argv;
  const set = ['train.evalImages=1', 'train.evalEverySec=1e9', 'train.sampleEverySec=1e9', 'train.checkpointEverySec=1e9'];
  if (quick) set.push('model.dim=16', 'model.heads=2', 'model.condLayers=1', 'model.decLayers=1');
  return [...argv, '--steps', String(TRAINER_STEPS), '--batch-size', '1', '--seed', '1', '--threads', String(childThreads()), '--quiet', ...set.flatMap((x) => ['--set', x])];
}

/**
 * The child of runTrainer: a folder dataset of pseudo-random 256×256 PNGs (2 train images, 1
 * test image) and `spn train` with trainerArgv, parsed by the train command itself and run
 * in-process. Its parent reads the run's metrics.jsonl and ends it after the test record (the
 * final checkpoint and the sample grid a finished run writes are not part of the measurement).
 */
async function trainerChild(s: RecipeStage, work: string, quick: boolean): Promise<void> {
  const [H, W, C] = RECIPE.shape;
  let seed = 5;
  for (const [split, n] of [['train', 2], ['test', 1]] as const) {
    const dir = path.join(work, 'data', split);
    fs.mkdirSync(dir, { recursive: true });
    for (let i = 0; i < n; i++) {
      const rgb = new Uint8Array(H * W * C);
      for (let j = 0; j < rgb.length; j++) rgb[j] = ((seed = (seed * 1664525 + 1013904223) >>> 0) >>> 24);
      fs.writeFileSync(path.join(dir, `${i}.png`), encodePng({ width: W, height: H, rgb }));
    }
  }
  const program = new Command().exitOverride();
  registerTrain(program);
  let o: TrainOptions | undefined;
  program.commands.find((c) => c.name() === 'train')!.action((flags: Record<string, unknown>, c: Command) => void (o = trainOptions(flags, c)));
  await program.parseAsync(['node', 'spn', ...trainerArgv(s, work, quick)]);
  await train({ ...o!, cacheDir: path.join(work, 'cache') });
}

type MetricLine = Record<string, number | string>;

function readMetrics(file: string): MetricLine[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text.split('\n').flatMap((l) => {
    try {
      return l.trim() ? [JSON.parse(l) as MetricLine] : [];
    } catch {
      return []; // a line being written
    }
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A field of /proc/<pid>/status or /proc/meminfo in MB, or null. */
function procMB(file: string, field: string): number | null {
  try {
    const kb = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(file, 'utf8'))?.[1];
    return kb === undefined ? null : Number(kb) / 1024;
  } catch {
    return null;
  }
}

/**
 * The trainer's own in-training evaluation (see the top of this file): this file with --phase
 * trainer in a child process of its own, watched through its run's metrics.jsonl; once the test
 * record is there the child is killed (what a finished run does next, its checkpoint and a
 * sample grid drawn slice by slice, would take far longer than the evaluation at 256×256).
 */
async function runTrainer(s: RecipeStage, slices: number, quick: boolean, log: (l: string) => void): Promise<TrainerPhase> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'spn-paper-trainer-'));
  const script = fileURLToPath(import.meta.url);
  const args = ['--phase', 'trainer', '--stage', s.name, '--work', work, ...(quick ? ['--quick'] : [])];
  log(`  node ${path.basename(script)} ${args.join(' ')}: spn ${trainerArgv(s, work, quick).join(' ')}`);
  const t0 = performance.now();
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
  let exit: string | null = null;
  const exited = new Promise<void>((resolve) => child.on('exit', (code, signal) => {
    exit = signal ?? `exit code ${code}`;
    resolve();
  }));
  const metrics = path.join(work, 'runs', s.name, 'metrics.jsonl');
  let trainSeen: number | null = null;
  let observed: number | null = null;
  const num = (r: MetricLine, k: string) => {
    if (typeof r[k] !== 'number') throw new Error(`the trainer's ${String(r.kind)} record has no number ${k}: ${JSON.stringify(r)}`);
    return r[k];
  };
  try {
    for (;;) {
      const ended = exit !== null; // read once more after the child ended: it may have written the record last
      if (!ended) observed = procMB(`/proc/${child.pid}/status`, 'VmHWM') ?? observed;
      const recs = readMetrics(metrics);
      const test = recs.find((r) => r.kind === 'test');
      const lastTrain = recs.filter((r) => r.kind === 'train').at(-1);
      if (lastTrain && trainSeen === null) trainSeen = performance.now();
      const rss = ended ? null : procMB(`/proc/${child.pid}/status`, 'VmRSS');
      const free = procMB('/proc/meminfo', 'MemAvailable');
      const killed = test ? undefined
        : rss !== null && rss > TRAINER_CAP_MB ? `its resident size reached ${rss.toFixed(0)} MB, over the cap of ${TRAINER_CAP_MB} MB (SPN_PAPER_TRAINER_CAP_MB)`
          : free !== null && free < TRAINER_MIN_FREE_MB && !ended ? `the machine had ${free.toFixed(0)} MB available, under ${TRAINER_MIN_FREE_MB} MB, at ${rss?.toFixed(0) ?? '?'} MB resident` : undefined;
      if (lastTrain && (test || killed)) {
        const seen = performance.now();
        if (killed) child.kill('SIGKILL');
        const eval_s = (seen - trainSeen!) / 1000;
        const test_record = test ? { step: num(test, 'step'), bpd: num(test, 'bpd'), images: num(test, 'images'), rss_peak_mb: num(test, 'rss_peak_mb') } : null;
        return {
          argv: trainerArgv(s, '<work>', quick), steps: num(lastTrain, 'step'), batch: 1, threads: childThreads(), eval_images: test_record?.images ?? 1, slices,
          train_record: { step: num(lastTrain, 'step'), time_s: num(lastTrain, 'time_s'), loss_bpd: num(lastTrain, 'loss_bpd'), rss_peak_mb: num(lastTrain, 'rss_peak_mb') },
          test_record, eval_peak_rss_mb: test_record?.rss_peak_mb ?? observed!, observed_peak_rss_mb: observed, ...(killed ? { killed } : {}),
          step_s: num(lastTrain, 'time_s') / num(lastTrain, 'step'), eval_s, s_per_slice: eval_s / slices, wall_s: (seen - t0) / 1000,
        };
      }
      if (killed) throw new Error(`the trainer's process was killed before its first train record: ${killed}`);
      if (ended) throw new Error(`the trainer's process ended (${exit}) before its evaluation record`);
      await sleep(200);
    }
  } finally {
    if (exit === null) child.kill('SIGKILL');
    await exited;
    fs.rmSync(work, { recursive: true, force: true });
  }
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
  /** The trainer's in-training evaluation (TrainerPhase), or why it was not run on this stage. */
  trainer: TrainerPhase | { not_run: string };
}

export interface PaperReport extends ReportHeader<'paper'> {
  recipe: string;
  cpu_flags: string[];
  gpu: string;
  load_before: number[];
  load_after: number[];
  /** The stages whose in-training evaluation is the trainer's own (the others': the stand-in). */
  trainer_stages: string[];
  stages: PaperStageReport[];
  targets: { name: string; limit_mb: number; measured_mb: number; met: boolean }[];
}

export interface PaperBenchOptions {
  quick?: boolean;
  log?: (line: string) => void;
  /** The stages the trainer's own in-training evaluation runs on (default TRAINER_STAGES). */
  trainerStages?: string[];
}

/** The stages whose in-training evaluation is the trainer's own by default (see the top of this file). */
export const TRAINER_STAGES = ['base', 'size'];
/** Steps of the trainer run: its first train record is logged at step 10 (trainer.ts LOG_EVERY). */
const TRAINER_STEPS = 10;
/** The trainer's child is killed (and the target reported missed) past this resident size, or with less than TRAINER_MIN_FREE_MB left on the machine: it shares the machine. */
const TRAINER_CAP_MB = Number(process.env.SPN_PAPER_TRAINER_CAP_MB ?? 12_288);
const TRAINER_MIN_FREE_MB = 2048;


const loadavg = (): number[] => fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);

export async function runPaperBench(o: PaperBenchOptions = {}): Promise<PaperReport> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const quick = o.quick ?? false;
  const trainerStages = o.trainerStages ?? TRAINER_STAGES;
  const unknown = trainerStages.filter((n) => !RECIPE.stages.some((x) => x.name === n));
  if (unknown.length) throw new ArgError(`--trainer-stages ${unknown.join(',')}: expected stages of ${RECIPE.stages.map((x) => x.name).join(', ')}`);
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
    let trainer: PaperStageReport['trainer'];
    if (trainerStages.includes(s.name)) {
      const t = await runTrainer(s, ev.slices, quick, log);
      trainer = t;
      log(`  trainer: step ${t.train_record.step} peak RSS ${t.train_record.rss_peak_mb.toFixed(0)} MB (${t.step_s.toFixed(1)} s/step), its evaluation of ${t.eval_images} image (${t.slices} slices) ${t.eval_s.toFixed(0)} s, peak RSS ${t.eval_peak_rss_mb.toFixed(0)} MB${t.killed ? ` (killed: ${t.killed})` : ''}`);
    } else {
      trainer = { not_run: `not in --trainer-stages (${trainerStages.join(', ') || 'none'}): the trainer's evaluation of one image takes about ${ev.s_per_image.toFixed(0)} s here; the stand-in (a few slices in the training phase's process) is reported` };
    }
    stages.push({ name: s.name, preset: s.preset, stage: s.stage, what: s.what, shape: [cfg.height, cfg.width, cfg.channels], bits: cfg.bits, scale: cfg.scale, params: train1.params, train1, trainPreset, eval: ev, sample: sa, trainer });
  }
  const targets: PaperReport['targets'] = [];
  for (const st of stages) {
    const t = st.train1;
    targets.push({ name: `${st.name}: a training step at batch 1 under 4 GB`, limit_mb: 4096, measured_mb: t.peak_rss_mb, met: t.peak_rss_mb < 4096 });
    targets.push({ name: `${st.name}: exact evaluation (--limit 1) under 4 GB`, limit_mb: 4096, measured_mb: st.eval.peak_rss_mb, met: st.eval.peak_rss_mb < 4096 });
    if ('not_run' in st.trainer) {
      const lim = t.peak_rss_mb + 1024;
      targets.push({ name: `${st.name}: in-training evaluation at most the step's peak + 1 GB (stand-in: ${t.in_training_eval.slices} slices' model.nll after the steps, not the trainer)`, limit_mb: lim, measured_mb: t.in_training_eval.peak_rss_mb, met: t.in_training_eval.peak_rss_mb <= lim });
    } else {
      const tr = st.trainer;
      const lim = tr.train_record.rss_peak_mb + 1024;
      const what = tr.test_record ? "its test record's rss_peak_mb" : `its peak RSS when killed (${tr.killed})`;
      targets.push({ name: `${st.name}: in-training evaluation at most the step's peak + 1 GB (the trainer's: ${what} against its step-${tr.train_record.step} train record's)`, limit_mb: lim, measured_mb: tr.eval_peak_rss_mb, met: tr.test_record !== null && tr.eval_peak_rss_mb <= lim });
    }
  }
  // the children measure on SPN_THREADS threads (main() below), not on the parent's count
  return { ...header, threads: childThreads(), recipe: RECIPE.name, trainer_stages: trainerStages, cpu_flags: cpuFlags(), gpu: 'none: no GPU in this session; the CPU numbers only', load_before, load_after: loadavg(), stages, targets };
}

/** The libtorch threads of each measuring process: SPN_THREADS, else 1 (fp32 on one thread). */
const childThreads = (): number => Number(process.env.SPN_THREADS ?? 1);

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      phase: { type: 'string' }, stage: { type: 'string' }, batch: { type: 'string' }, images: { type: 'string' }, quick: { type: 'boolean', default: false },
      'trainer-stages': { type: 'string' }, work: { type: 'string' },
    },
    strict: true,
  });
  torch.setNumThreads(childThreads());
  if (!values.phase) {
    const trainerStages = values['trainer-stages'] === undefined ? undefined : values['trainer-stages'].split(',').filter((x) => x !== '');
    process.stdout.write(JSON.stringify(await runPaperBench({ quick: values.quick, trainerStages }), null, 2) + '\n');
    return;
  }
  const s = RECIPE.stages.find((x) => x.name === values.stage);
  if (!s) throw new ArgError(`--stage ${values.stage}: expected one of ${RECIPE.stages.map((x) => x.name).join(', ')}`);
  let cfg = stageConfig(s);
  // quick: the stage's shape and S with a tiny network, to check that the benchmark runs
  if (values.quick) cfg = parseModelConfig({ ...cfg, dim: 16, heads: 2, condLayers: 1, decLayers: 1 });
  if (values.phase === 'trainer') {
    if (!values.work) throw new ArgError('--phase trainer needs --work <dir>');
    await trainerChild(s, values.work, values.quick);
    return;
  }
  if (values.phase === 'in-training-eval') {
    // the trainer's in-training evaluation of this one stage alone (runTrainer), not written to the results
    const slices = cfg.scale * cfg.scale - (cfg.stage === 'size' ? 1 : 0);
    process.stdout.write(JSON.stringify({ stage: s.name, date: new Date().toISOString(), load_before: loadavg(), ...(await runTrainer(s, slices, values.quick, (l) => process.stderr.write(l + '\n'))), load_after: loadavg() }, null, 2) + '\n');
    return;
  }
  let r: object;
  if (values.phase === 'train') r = trainPhase(cfg, Number(values.batch ?? 1), 2);
  else if (values.phase === 'eval') r = evalPhase(cfg, Number(values.images ?? 1), 4);
  else if (values.phase === 'sample') r = samplePhase(cfg);
  else throw new ArgError(`--phase ${values.phase}: expected train, eval, sample, trainer or in-training-eval`);
  process.stdout.write(JSON.stringify(r) + '\n');
}

runIfMain(import.meta.url, 'bench/paper', main);
