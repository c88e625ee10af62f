// The training loop, flat and visible: evaluate, checkpoint, step, log.
//
// A run is reproducible from its seed: the model init, the batch order and the target slices
// come from seeded generators whose state is saved in every checkpoint, so on CPU a resumed
// --steps run follows the same loss trajectory as an uninterrupted one. (With --minutes the
// learning-rate schedule follows the wall clock, so only the data and slice draws repeat.)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ArgError, SpnError } from '../errors.js';
import * as torch from '../torch/index.js';
import { AdamW, EMA, clipGradNorm, lrAt } from '../torch/optim/index.js';
import { BatchIterator } from '../data/batches.js';
import { loadDataset } from '../data/index.js';
import type { ImageSet } from '../data/types.js';
import { SPN } from '../spn/model.js';
import { getPreset, parseModelConfig, parseTrainConfig } from '../spn/config.js';
import type { TrainConfig } from '../spn/config.js';
import { evaluate } from './evaluate.js';
import { createProgress, formatDuration } from './progress.js';
import { appendMetric, dropMetricsAfter, readRunConfig, runFiles, writeJson, type RunConfig, type RunStatus } from './run.js';
import { checkpointName, listCheckpoints, pick, pruneCheckpoints, readCheckpoint, saveCheckpoint, type CheckpointMeta } from './checkpoint.js';
import { subsampleSet } from '../data/subsample.js';
import { joinDepth, toBatch } from '../spn/stage.js';
import { sample } from '../spn/sample.js';
import { gridPng } from '../spn/images.js';
import { writeFileAtomic } from '../fsutil.js';

export interface TrainOptions {
  data: string;
  preset: string;
  out: string;
  minutes?: number;
  steps?: number;
  seed?: number;
  device?: string;
  resume?: boolean;
  /**
   * Start a new run (fine-tuning) from the weights of another run (its best, else latest
   * checkpoint) or of a checkpoint file; not with `resume`. (CLI: --init-from.)
   */
  initFrom?: string;
  stage?: 'full' | 'size' | 'depth';
  bits?: number; // bits of the generated values (full/size); depth stages always read 8-bit data
  givenBits?: number; // depth stage: the high bits given (default 3)
  scale?: number; // override the preset's S
  subsample?: number;
  size?: number; // dataset --size
  batchSize?: number;
  lr?: number;
  /** Overrides of the preset, e.g. {'model.dim': 96, 'train.emaDecay': 0.999}; validated like the preset. */
  set?: Record<string, number | string | boolean>;
  cacheDir?: string;
  /** libtorch CPU threads while training; unset: the policy of torch/threads.ts (threadWork). */
  threads?: number;
  quiet?: boolean;
  /** Test hook: stop (as Ctrl-C would) once this step is reached. */
  interruptAtStep?: number;
  /** Called with each logged training record (tests, the demo). */
  onLog?: (record: Record<string, number | string>) => void;
}

export interface TrainResult {
  dir: string;
  step: number;
  state: RunStatus['state'];
  lastTestBpd: number | null;
  bestTestBpd: number | null;
  elapsedS: number;
}

const LOG_EVERY = 10;

/** Resolves the run config from the options and the data's image shape. */
function resolveConfig(o: TrainOptions, shape: { h: number; w: number; c: number }): RunConfig {
  const preset = getPreset(o.preset);
  const stage = o.stage ?? 'full';
  const givenBits = stage === 'depth' ? (o.givenBits ?? 3) : 0;
  const bits = stage === 'depth' ? 8 - givenBits : (o.bits ?? preset.model.bits);
  const overrides = (section: 'model' | 'train') =>
    Object.fromEntries(Object.entries(o.set ?? {}).filter(([k]) => k.startsWith(`${section}.`)).map(([k, v]) => [k.slice(section.length + 1), v]));
  for (const k of Object.keys(o.set ?? {})) {
    if (!k.startsWith('model.') && !k.startsWith('train.')) throw new ArgError(`--set ${k}: expected model.<key> or train.<key>`);
  }
  const model = parseModelConfig({
    ...preset.model,
    ...overrides('model'),
    height: shape.h,
    width: shape.w,
    channels: shape.c,
    bits,
    stage,
    givenBits,
    ...(o.scale ? { scale: o.scale } : {}),
  });
  const train = parseTrainConfig({
    ...preset.train,
    ...overrides('train'),
    ...(o.batchSize ? { batchSize: o.batchSize } : {}),
    ...(o.lr ? { lr: o.lr } : {}),
  });
  return {
    name: path.basename(path.resolve(o.out)),
    preset: o.preset,
    data: o.data,
    dataBits: stage === 'depth' ? 8 : bits,
    subsample: o.subsample ?? 1,
    size: o.size ?? null,
    seed: o.seed ?? 0,
    device: o.device ?? 'cpu',
    stage,
    model,
    train,
    minutes: o.minutes ?? null,
    steps: o.steps ?? null,
    created: new Date().toISOString(),
  };
}

export async function train(o: TrainOptions): Promise<TrainResult> {
  if (o.minutes === undefined && o.steps === undefined) throw new ArgError('train needs --minutes or --steps');
  const dir = path.resolve(o.out);
  const files = runFiles(dir);
  const log = (m: string) => o.quiet || process.stderr.write(m + '\n');

  // --- config and data ---------------------------------------------------------------------------
  let resumeFrom: string | null = null;
  if (o.resume) {
    const list = listCheckpoints(dir);
    if (!list.length) throw new SpnError('E_IO', `--resume: no checkpoint in ${files.checkpoints}`);
    resumeFrom = path.join(files.checkpoints, list[list.length - 1]!);
  } else if (fs.existsSync(files.config)) {
    throw new ArgError(`${dir} already holds a run; use --resume to continue it or choose another --out`);
  }
  const dataBits = o.stage === 'depth' ? 8 : (o.bits ?? getPreset(o.preset).model.bits);
  const prior = resumeFrom ? readRunConfig(dir) : null;
  const data = await loadDataset(prior?.data ?? o.data, {
    bits: prior?.dataBits ?? dataBits,
    ...((prior?.size ?? o.size) ? { size: (prior?.size ?? o.size)! } : {}),
    ...(o.cacheDir ? { cacheDir: o.cacheDir } : {}),
    onProgress: (m) => log(`data: ${m}`),
  });
  const sub = prior?.subsample ?? o.subsample ?? 1;
  const trainSet: ImageSet = subsampleSet(data.train, sub);
  const testSet: ImageSet = subsampleSet(data.test, sub);
  const cfg: RunConfig = prior ?? resolveConfig(o, trainSet);
  // Limits given now override the saved ones when resuming (e.g. train for longer).
  if (prior) {
    if (o.steps !== undefined) cfg.steps = o.steps;
    if (o.minutes !== undefined) cfg.minutes = o.minutes;
  }
  const { model: mc, train: tc } = cfg;
  if (trainSet.h !== mc.height || trainSet.w !== mc.width || trainSet.c !== mc.channels) {
    throw new ArgError(`data ${cfg.data} has images ${trainSet.h}×${trainSet.w}×${trainSet.c}, the run expects ${mc.height}×${mc.width}×${mc.channels}`);
  }
  fs.mkdirSync(files.checkpoints, { recursive: true });
  if (!prior) writeJson(files.config, cfg);

  // --- model, optimizer, EMA ---------------------------------------------------------------------
  torch.manualSeed(cfg.seed);
  const model = new SPN(mc, { device: cfg.device });
  const named = model.namedParameters().map(([name, param]) => ({ name, param }));
  // No weight decay on biases, norms, embeddings and position tables.
  const optim = new AdamW(named, { lr: tc.lr, weightDecay: tc.weightDecay, betas: [0.9, 0.99], noDecay: (n) => n.endsWith('bias') || n.includes('norm') || n.includes('Norm') || n.includes('mbed') || n.endsWith('pos') || n.endsWith('channelPos') || n.includes('meta') });
  const ema = new EMA(named, tc.emaDecay);
  let step = 0;
  let bestTestBpd: number | null = null;
  let lastTestBpd: number | null = null;
  let elapsedBefore = 0;
  let position = { epoch: 0, index: 0 };
  let lossWindow = { sum: 0, count: 0 }; // steps since the last train record
  if (resumeFrom) {
    const { meta, tensors } = readCheckpoint(resumeFrom, cfg.device);
    model.loadStateDict(pick(tensors, 'model.'));
    ema.loadStateDict(pick(tensors, 'ema.'));
    optim.loadStateDict(pick(tensors, 'optim.'));
    torch.setRngState(tensors['rng_state']!);
    torch.dispose(tensors);
    step = meta.step;
    bestTestBpd = meta.best_test_bpd;
    elapsedBefore = meta.elapsed_s;
    position = meta.data_position;
    lossWindow = meta.loss_window ?? lossWindow;
    dropMetricsAfter(dir, step);
    log(`resumed ${dir} at step ${step}`);
  }
  const params = model.parameters();
  log(`model: ${model.numParameters().toLocaleString('en-US')} parameters, S=${mc.scale}, ${mc.bits}-bit, stage ${mc.stage}; data ${cfg.data}: ${trainSet.n} train / ${testSet.n} test images of ${mc.height}×${mc.width}×${mc.channels}`);
  const batches = new BatchIterator(trainSet, { batchSize: tc.batchSize, seed: cfg.seed, position });
  const evalSet: ImageSet = { ...testSet, n: Math.min(tc.evalImages, testSet.n), data: testSet.data.subarray(0, Math.min(tc.evalImages, testSet.n) * testSet.h * testSet.w * testSet.c) };
  const [firstSlice, endSlice] = [model.firstSlice, model.S * model.S];
  const onCuda = cfg.device.startsWith('cuda');
  const bf16 = useBf16(tc.precision, onCuda);
  if (tc.precision === 'bf16' && !bf16) log('precision: bf16 asked for, but this CPU has no native bf16 (AMX or AVX512-BF16): training in fp32');
  const threadsBefore = torch.getNumThreads();
  const threads = torch.threadsFor(threadWork(bf16, onCuda), o.threads);
  torch.setNumThreads(threads);
  if (!onCuda) log(`precision: ${bf16 ? 'bf16 autocast' : 'fp32'}, ${threads} CPU thread${threads > 1 ? 's' : ''}`);
  const subpixelsPerStep = tc.batchSize * tc.slicesPerImage * model.dimsPerSlice;

  // --- signals -----------------------------------------------------------------------------------
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) process.exit(130); // a second Ctrl-C: give up at once
    interrupted = true;
    log('\ninterrupted: writing a checkpoint, then exiting (Ctrl-C again to quit now)');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const t0 = Date.now();
  const elapsed = () => elapsedBefore + (Date.now() - t0) / 1000;
  const budgetS = cfg.minutes ? cfg.minutes * 60 : Infinity;
  const totalSteps = cfg.steps;
  const done = () => (totalSteps !== null && step >= totalSteps) || elapsed() >= budgetS;
  const progressFraction = () => Math.min(1, Math.max(totalSteps ? step / totalSteps : 0, budgetS < Infinity ? elapsed() / budgetS : 0));
  const lrNow = () =>
    totalSteps !== null && cfg.minutes === null
      ? lrAt(step, { lr: tc.lr, warmupSteps: tc.warmupSteps, totalSteps: Math.max(totalSteps, tc.warmupSteps), decay: 'cosine', minLr: tc.minLr })
      : step < tc.warmupSteps
        ? (tc.lr * (step + 1)) / tc.warmupSteps
        : tc.minLr + 0.5 * (1 + Math.cos(Math.PI * progressFraction())) * (tc.lr - tc.minLr);

  let fracAtStart = -1;
  /** Seconds left, from the pace since this process started. */
  const etaS = (): number | null => {
    const frac = progressFraction();
    if (fracAtStart < 0) fracAtStart = frac;
    const gained = frac - fracAtStart;
    return gained > 0 ? ((elapsed() - elapsedBefore) * (1 - frac)) / gained : null;
  };
  const status = (state: RunStatus['state'], message?: string) => {
    writeJson(files.status, {
      state, step, total_steps: totalSteps, elapsed_s: Math.round(elapsed()),
      eta_s: state === 'running' ? (etaS() === null ? null : Math.round(etaS()!)) : null,
      updated: new Date().toISOString(), ...(message ? { message } : {}),
    } satisfies RunStatus);
  };
  const checkpoint = () => {
    const meta: CheckpointMeta = { format: 'spn-checkpoint-1', step, data_position: batches.position(), best_test_bpd: bestTestBpd, elapsed_s: elapsed(), config: cfg, loss_window: { sum: lossSum, count: lossCount } };
    saveCheckpoint(dir, checkpointName(step), { model, ema, optim, meta });
    pruneCheckpoints(dir, 2);
  };
  const runEval = () => {
    // The RNG is not touched by evaluation, so evaluating does not change the trajectory.
    const r = ema.withShadow(() => evaluate(model, evalSet, { batchSize: 50 }));
    lastTestBpd = r.bpd;
    appendMetric(dir, { kind: 'test', step, time_s: +elapsed().toFixed(1), bpd: +r.bpd.toFixed(5), images: r.images });
    if (bestTestBpd === null || r.bpd < bestTestBpd) {
      bestTestBpd = r.bpd;
      const meta: CheckpointMeta = { format: 'spn-checkpoint-1', step, data_position: batches.position(), best_test_bpd: bestTestBpd, elapsed_s: elapsed(), config: cfg };
      saveCheckpoint(dir, 'best', { model, ema, optim, meta });
    }
    return r.bpd;
  };

  /**
   * A grid of samples from the EMA weights into samples/ (latest.png and one per step), for the
   * dashboard. Upscaling stages take the first test images' slice 0 or high bits as given.
   * The RNG state is restored afterwards, so sampling does not change the training trajectory.
   */
  const writeSamples = () => {
    const rng = torch.getRngState();
    try {
      torch.tidy(() => ema.withShadow(() => {
        const n = Math.min(16, evalSet.n);
        const test = mc.stage === 'full' ? null : toBatch(evalSet.data.subarray(0, n * mc.height * mc.width * mc.channels), n, mc, cfg.device);
        const values = sample(model, {
          n, seed: cfg.seed + step,
          ...(mc.stage === 'size' && test ? { init: test.x } : {}),
          ...(mc.stage === 'depth' && test?.given ? { given: test.given } : {}),
        });
        // A depth stage samples low bits: show the whole value, high bits included.
        const png = mc.stage === 'depth' && test?.given
          ? gridPng(joinDepth(test.given, values, mc.bits), { bits: 8 })
          : gridPng(values, { bits: mc.bits });
        writeFileAtomic(path.join(files.samples, 'latest.png'), png);
        writeFileAtomic(path.join(files.samples, `${checkpointName(step)}.png`), png);
      }));
    } finally {
      torch.setRngState(rng);
      rng.dispose();
    }
  };

  // --- the loop ----------------------------------------------------------------------------------
  const bar = createProgress(cfg.name, totalSteps ?? 1000, { quiet: o.quiet });
  etaS();
  status('running');
  let lastEval = elapsed();
  let lastCkpt = elapsed();
  let lastSample = elapsed();
  // A resumed run continues the window it stopped in, so its next train record matches.
  let lossSum = lossWindow.sum;
  let lossCount = lossWindow.count;
  let windowStart = Date.now();
  let windowSubpixels = 0;
  let state: RunStatus['state'] = 'done';
  let failure: SpnError | null = null;
  try {
    model.train();
    while (!done()) {
      if (interrupted || (o.interruptAtStep !== undefined && step >= o.interruptAtStep)) {
        state = 'stopped';
        break;
      }
      const batch = await batches.next();
      optim.lr = lrNow();
      const loss = torch.tidy(() => {
        const b = toBatch(batch.data, batch.n, mc, cfg.device);
        const reps = tc.slicesPerImage;
        const x = reps > 1 ? torch.repeatInterleave(b.x, reps, 0) : b.x;
        const given = b.given && reps > 1 ? torch.repeatInterleave(b.given, reps, 0) : b.given;
        // Drawn on the CPU generator (saved in checkpoints) so a resumed run repeats the draws on any device.
        const kCpu = torch.randint(firstSlice, endSlice, [batch.n * reps]);
        const k = onCuda ? kCpu.to(cfg.device) : kCpu;
        // Mean NLL per sub-pixel of the drawn slices, in bits: the full image's bpd in expectation.
        const forward = () => model.nll(given ? { x, given } : { x }, k).mean().div(model.dimsPerSlice * Math.LN2);
        const bpd = bf16 ? torch.autocast(onCuda ? 'cuda' : 'cpu', forward) : forward();
        bpd.backward();
        return bpd.item();
      });
      if (!Number.isFinite(loss)) {
        optim.zeroGrad();
        throw new SpnError('E_NAN', `training loss became ${loss} at step ${step + 1}; the run stopped and its last good checkpoint is intact (lower --lr or check the data)`);
      }
      clipGradNorm(params, tc.gradClip);
      optim.step();
      optim.zeroGrad();
      ema.update({ step }); // warmed-up decay: see EMA.update
      step++;
      lossSum += loss;
      lossCount++;
      windowSubpixels += subpixelsPerStep;
      if (step % LOG_EVERY === 0) {
        const now = Date.now();
        const rate = windowSubpixels / ((now - windowStart) / 1000);
        const rec = { kind: 'train', step, time_s: +elapsed().toFixed(1), loss_bpd: +(lossSum / lossCount).toFixed(5), subpixels_per_s: Math.round(rate), lr: +optim.lr.toExponential(4) };
        appendMetric(dir, rec);
        o.onLog?.(rec);
        bar.update(totalSteps ? step : Math.round(progressFraction() * 1000), {
          step: String(step), bpd: rec.loss_bpd.toFixed(3), 'test bpd': lastTestBpd === null ? '-' : (lastTestBpd as number).toFixed(3),
          'subpx/s': `${(rate / 1000).toFixed(1)}k`, ETA: formatDuration(etaS() ?? Infinity),
        });
        lossSum = 0;
        lossCount = 0;
        windowStart = now;
        windowSubpixels = 0;
        status('running');
      }
      if (elapsed() - lastEval >= tc.evalEverySec) {
        runEval();
        lastEval = elapsed();
      }
      if (elapsed() - lastSample >= tc.sampleEverySec) {
        writeSamples();
        lastSample = elapsed();
      }
      if (elapsed() - lastCkpt >= tc.checkpointEverySec) {
        checkpoint();
        lastCkpt = elapsed();
      }
    }
  } catch (err) {
    state = 'failed';
    failure = err instanceof SpnError ? err : new SpnError('E_NATIVE', (err as Error).message, { cause: err });
  } finally {
    bar.stop();
    torch.setNumThreads(threadsBefore);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (failure) {
    status('failed', failure.message);
    model.dispose();
    optim.dispose();
    ema.dispose();
    throw failure;
  }
  if (state === 'done') runEval();
  checkpoint();
  if (state === 'done') writeSamples();
  status(state);
  log(`${state}: step ${step}, ${formatDuration(elapsed())}, test bpd ${lastTestBpd === null ? '-' : (lastTestBpd as number).toFixed(4)} (best ${bestTestBpd === null ? '-' : (bestTestBpd as number).toFixed(4)}) -> ${dir}`);
  model.dispose();
  optim.dispose();
  ema.dispose();
  return { dir, step, state, lastTestBpd, bestTestBpd, elapsedS: elapsed() };
}

/** Whether training runs under bf16 autocast (TrainConfig.precision). */
export function useBf16(precision: TrainConfig['precision'], onCuda: boolean): boolean {
  if (precision === 'fp32') return false;
  if (onCuda) return true;
  return precision === 'bf16' && torch.cpuHasBf16();
}

/** The kind of work a training run is for the thread policy (torch/threads.ts): bf16 autocast
 * on a CPU uses every core; fp32 and CUDA runs are many small host-side ops. */
export function threadWork(bf16: boolean, onCuda: boolean): torch.ThreadWork {
  return bf16 && !onCuda ? 'bf16' : 'ops';
}
