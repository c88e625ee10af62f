// One training run in memory: its config and folder, its data, the model with its optimizer and
// EMA, and the counters a checkpoint saves. trainer.ts drives it (step, evaluate, checkpoint,
// samples, status); this file says what each of those does.
//
// A run is reproducible from its seed: the model init, the batch order and the target slices
// come from seeded generators whose state is saved in every checkpoint, so on CPU a resumed
// --steps run follows the same loss trajectory as an uninterrupted one. (With --minutes the
// learning-rate schedule follows the wall clock, so only the data and slice draws repeat.)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SpnError, ArgError } from '../errors.js';
import * as torch from '../torch/index.js';
import { AdamW, EMA, clipGradNorm, lrAt } from '../torch/optim/index.js';
import { BatchIterator, type Batch } from '../data/batches.js';
import { loadDataset } from '../data/index.js';
import { subsampleSet } from '../data/subsample.js';
import type { ImageSet } from '../data/types.js';
import type { TrainConfig } from '../spn/config.js';
import { gridPng } from '../spn/images.js';
import { SPN } from '../spn/model.js';
import { sample } from '../spn/sample.js';
import { joinDepth, toBatch } from '../spn/stage.js';
import { removeStaleTempFiles, writeFileAtomic } from '../fsutil.js';
import { checkpointName, decodeCheckpoint, pick, pruneCheckpoints, readCheckpoint, resolveCheckpoint, resumeCheckpoint, saveCheckpoint, type CheckpointMeta, type LoadedCheckpoint, type ValidCheckpoint } from './checkpoint.js';
import { evaluate } from './evaluate.js';
import { dataBitsFor, newRunConfig, resumedRunConfig, DEFAULT_DATA, type TrainOptions } from './options.js';
import { appendMetric, dropMetricsAfter, readRunConfig, runFiles, writeJson, type RunConfig, type RunStatus } from './run.js';

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

export class TrainingSession {
  readonly files: ReturnType<typeof runFiles>;
  readonly onCuda: boolean;
  readonly bf16: boolean;
  readonly params: torch.Tensor[];
  /** Sub-pixels whose loss one step averages. */
  readonly subpixelsPerStep: number;
  step = 0;
  bestTestBpd: number | null = null;
  lastTestBpd: number | null = null;
  /** Sum and count of the losses since the last train record (a resumed run continues its window). */
  lossSum = 0;
  lossCount = 0;
  private readonly startedAt = Date.now();

  private constructor(
    readonly dir: string,
    readonly cfg: RunConfig,
    readonly model: SPN,
    readonly optim: AdamW,
    readonly ema: EMA,
    readonly batches: BatchIterator,
    /** The test images the in-training bits/dim is measured on (the first evalImages). */
    readonly evalSet: ImageSet,
    /** Training time before this process (a resumed run). */
    readonly elapsedBefore: number,
  ) {
    this.files = runFiles(dir);
    this.onCuda = cfg.device.startsWith('cuda');
    this.bf16 = useBf16(cfg.train.precision, this.onCuda);
    this.params = model.parameters();
    this.subpixelsPerStep = cfg.train.batchSize * cfg.train.slicesPerImage * model.dimsPerSlice;
  }

  /**
   * Opens a run: a new one, a resumed one (o.resume) or a new one from another run's weights
   * (o.initFrom). Reads and checks everything before writing; creates the run folder last and
   * removes it again if the start fails after that.
   *
   * A resumed run continues from its newest checkpoint that validates; newer damaged ones are
   * moved into checkpoints/damaged/ and reported through `warn` (checkpoint.ts resumeCheckpoint).
   * A run with no checkpoint yet (stopped before its first) starts again from step 0.
   */
  static async open(o: TrainOptions, log: (m: string) => void, warn: (m: string) => void = log): Promise<TrainingSession> {
    const dir = path.resolve(o.out);
    const files = runFiles(dir);
    let resumeFrom: ValidCheckpoint | null = null;
    let prior: RunConfig | null = null;
    if (o.resume) {
      if (!fs.existsSync(files.config)) throw new SpnError('E_IO', `--resume: no checkpoint in ${files.checkpoints} (and no run config ${files.config})`);
      prior = resumedRunConfig(o, readRunConfig(dir));
      for (const d of [dir, files.checkpoints, files.samples]) removeStaleTempFiles(d); // left by a killed process
      resumeFrom = resumeCheckpoint(dir, warn);
      if (!resumeFrom) log(`--resume: ${dir} has no checkpoint yet; starting it again from step 0 with its saved settings`);
    } else if (fs.existsSync(files.config)) {
      throw new ArgError(`${dir} already holds a run; use --resume to continue it or choose another --out`);
    }
    let source: LoadedCheckpoint | null = null;
    try {
      if (o.initFrom) source = readCheckpoint(resolveCheckpoint(o.initFrom, 'best'));
      const from = source?.meta.config;
      const data = await loadDataset(prior?.data ?? o.data ?? DEFAULT_DATA, {
        bits: prior?.dataBits ?? from?.dataBits ?? dataBitsFor(o),
        ...((prior?.size ?? o.size) ? { size: (prior?.size ?? o.size)! } : {}),
        ...(o.cacheDir ? { cacheDir: o.cacheDir } : {}),
        onProgress: (m) => log(`data: ${m}`),
      });
      const sub = prior?.subsample ?? o.subsample ?? 1;
      const trainSet = subsampleSet(data.train, sub);
      const testSet = subsampleSet(data.test, sub);
      const cfg = prior ?? newRunConfig(o, trainSet, source ? { model: source.meta.config.model, from: o.initFrom! } : undefined);
      const mc = cfg.model;
      if (trainSet.h !== mc.height || trainSet.w !== mc.width || trainSet.c !== mc.channels) {
        throw new ArgError(`data ${cfg.data} has images ${trainSet.h}×${trainSet.w}×${trainSet.c}, the run expects ${mc.height}×${mc.width}×${mc.channels}`);
      }
      const created = !fs.existsSync(dir);
      try {
        fs.mkdirSync(files.checkpoints, { recursive: true });
        if (!prior) writeJson(files.config, cfg);
        else if (!resumeFrom) dropMetricsAfter(dir, 0);
        return TrainingSession.build(dir, cfg, trainSet, testSet, resumeFrom, source, log);
      } catch (err) {
        if (created) fs.rmSync(dir, { recursive: true, force: true }); // a failed start leaves no folder behind
        throw err;
      }
    } finally {
      if (source) torch.dispose(source.tensors);
    }
  }

  private static build(dir: string, cfg: RunConfig, trainSet: ImageSet, testSet: ImageSet, resumeFrom: ValidCheckpoint | null, source: LoadedCheckpoint | null, log: (m: string) => void): TrainingSession {
    const { model: mc, train: tc } = cfg;
    torch.manualSeed(cfg.seed);
    const model = new SPN(mc, { device: cfg.device });
    if (source) model.loadStateDict(pick(source.tensors, 'ema.'));
    const named = model.namedParameters().map(([name, param]) => ({ name, param }));
    // Weight decay on matrices and tables (rank ≥ 2), not on biases and norm gains (rank 1).
    const optim = new AdamW(named, { lr: tc.lr, weightDecay: tc.weightDecay, betas: [0.9, 0.99], noDecay: (_, p) => p.ndim < 2 });
    const ema = new EMA(named, tc.emaDecay);
    let position = { epoch: 0, index: 0 };
    let elapsedBefore = 0;
    let resumed: CheckpointMeta | null = null;
    if (resumeFrom) {
      const { meta, tensors } = decodeCheckpoint(resumeFrom, cfg.device);
      try {
        model.loadStateDict(pick(tensors, 'model.'));
        ema.loadStateDict(pick(tensors, 'ema.'));
        optim.loadStateDict(pick(tensors, 'optim.'));
        torch.setRngState(tensors['rng_state']!);
      } finally {
        torch.dispose(tensors);
      }
      resumed = meta;
      position = meta.data_position;
      elapsedBefore = meta.elapsed_s;
      dropMetricsAfter(dir, meta.step);
      log(`resumed ${dir} at step ${meta.step} (${path.basename(resumeFrom.base)})`);
    }
    const n = Math.min(tc.evalImages, testSet.n);
    const evalSet: ImageSet = { ...testSet, n, data: testSet.data.subarray(0, n * testSet.h * testSet.w * testSet.c) };
    const batches = new BatchIterator(trainSet, { batchSize: tc.batchSize, seed: cfg.seed, position });
    const s = new TrainingSession(dir, cfg, model, optim, ema, batches, evalSet, elapsedBefore);
    if (resumed) {
      s.step = resumed.step;
      s.bestTestBpd = resumed.best_test_bpd;
      s.lossSum = resumed.loss_window?.sum ?? 0;
      s.lossCount = resumed.loss_window?.count ?? 0;
    }
    log(`model: ${model.numParameters().toLocaleString('en-US')} parameters, S=${mc.scale}, ${mc.bits}-bit, stage ${mc.stage}${cfg.initFrom ? `, from ${cfg.initFrom}` : ''}; data ${cfg.data}: ${trainSet.n} train / ${testSet.n} test images of ${mc.height}×${mc.width}×${mc.channels}`);
    return s;
  }

  /** Seconds of training, this process and the ones before it. */
  elapsed(): number {
    return this.elapsedBefore + (Date.now() - this.startedAt) / 1000;
  }

  /** How far through its budget (steps or minutes, whichever is further) the run is, in [0, 1]. */
  progress(): number {
    const { steps, minutes } = this.cfg;
    return Math.min(1, Math.max(steps ? this.step / steps : 0, minutes ? this.elapsed() / (minutes * 60) : 0));
  }

  done(): boolean {
    return this.progress() >= 1;
  }

  /** Warmup, then a cosine over the steps (a --steps run) or over the time budget (--minutes). */
  lr(): number {
    const { train: tc, steps, minutes } = this.cfg;
    const schedule = { lr: tc.lr, warmupSteps: tc.warmupSteps, decay: 'cosine' as const, minLr: tc.minLr };
    return steps !== null && minutes === null
      ? lrAt(this.step, { ...schedule, totalSteps: Math.max(steps, tc.warmupSteps) })
      : lrAt(this.step, schedule, this.progress());
  }

  /** One optimizer step on a batch; returns its loss in bits per sub-pixel. */
  trainStep(batch: Batch): number {
    const { model, optim, cfg } = this;
    const reps = cfg.train.slicesPerImage;
    optim.lr = this.lr();
    const loss = torch.tidy(() => {
      const b = toBatch(batch.data, batch.n, cfg.model, cfg.device);
      const x = reps > 1 ? torch.repeatInterleave(b.x, reps, 0) : b.x;
      const given = b.given && reps > 1 ? torch.repeatInterleave(b.given, reps, 0) : b.given;
      // Drawn on the CPU generator (saved in checkpoints) so a resumed run repeats the draws on any device.
      const kCpu = torch.randint(model.firstSlice, model.S * model.S, [batch.n * reps]);
      const k = this.onCuda ? kCpu.to(cfg.device) : kCpu;
      // Mean NLL per sub-pixel of the drawn slices, in bits: the full image's bpd in expectation.
      const forward = () => model.nll(given ? { x, given } : { x }, k).mean().div(model.dimsPerSlice * Math.LN2);
      const bpd = this.bf16 ? torch.autocast(this.onCuda ? 'cuda' : 'cpu', forward) : forward();
      bpd.backward();
      return bpd.item();
    });
    if (!Number.isFinite(loss)) {
      optim.zeroGrad();
      throw new SpnError('E_NAN', `training loss became ${loss} at step ${this.step + 1}; the run stopped and its last good checkpoint is intact (lower --lr or check the data)`);
    }
    clipGradNorm(this.params, cfg.train.gradClip);
    optim.step();
    optim.zeroGrad();
    this.ema.update({ step: this.step }); // warmed-up decay: see EMA.update
    this.step++;
    this.lossSum += loss;
    this.lossCount++;
    return loss;
  }

  /** Appends a train record with the mean loss since the last one; returns it. */
  logTrain(subpixelsPerS: number): Record<string, number | string> {
    const rec = { kind: 'train', step: this.step, time_s: +this.elapsed().toFixed(1), loss_bpd: +(this.lossSum / this.lossCount).toFixed(5), subpixels_per_s: Math.round(subpixelsPerS), lr: +this.optim.lr.toExponential(4) };
    appendMetric(this.dir, rec);
    this.lossSum = 0;
    this.lossCount = 0;
    return rec;
  }

  private meta(): CheckpointMeta {
    return {
      format: 'spn-checkpoint-1', step: this.step, data_position: this.batches.position(), best_test_bpd: this.bestTestBpd,
      elapsed_s: this.elapsed(), config: this.cfg, loss_window: { sum: this.lossSum, count: this.lossCount },
    };
  }

  /** Test bits/dim of the EMA weights on evalSet; a new best is saved as checkpoints/best. The
   * RNG is not touched, so evaluating does not change the trajectory. */
  evaluate(): number {
    const r = this.ema.withShadow(() => evaluate(this.model, this.evalSet, { batchSize: 50 }));
    this.lastTestBpd = r.bpd;
    appendMetric(this.dir, { kind: 'test', step: this.step, time_s: +this.elapsed().toFixed(1), bpd: +r.bpd.toFixed(5), images: r.images });
    if (this.bestTestBpd === null || r.bpd < this.bestTestBpd) {
      this.bestTestBpd = r.bpd;
      saveCheckpoint(this.dir, 'best', { model: this.model, ema: this.ema, optim: this.optim, meta: this.meta() });
    }
    return r.bpd;
  }

  /** A step checkpoint; the newest two are kept. */
  checkpoint(): void {
    saveCheckpoint(this.dir, checkpointName(this.step), { model: this.model, ema: this.ema, optim: this.optim, meta: this.meta() });
    pruneCheckpoints(this.dir, 2);
  }

  /**
   * A grid of samples from the EMA weights into samples/ (latest.png and one per step), for the
   * dashboard. Upscaling stages take the first test images' slice 0 or high bits as given. The
   * RNG state is restored afterwards, so sampling does not change the training trajectory.
   */
  writeSamples(): void {
    const { model, cfg } = this;
    const mc = cfg.model;
    const rng = torch.getRngState();
    try {
      torch.tidy(() => this.ema.withShadow(() => {
        const n = Math.min(16, this.evalSet.n);
        const test = mc.stage === 'full' ? null : toBatch(this.evalSet.data.subarray(0, n * mc.height * mc.width * mc.channels), n, mc, cfg.device);
        const values = sample(model, {
          n, seed: cfg.seed + this.step,
          ...(mc.stage === 'size' && test ? { init: test.x } : {}),
          ...(mc.stage === 'depth' && test?.given ? { given: test.given } : {}),
        });
        // A depth stage samples low bits: show the whole value, high bits included.
        const png = mc.stage === 'depth' && test?.given ? gridPng(joinDepth(test.given, values, mc.bits), { bits: 8 }) : gridPng(values, { bits: mc.bits });
        writeFileAtomic(path.join(this.files.samples, 'latest.png'), png);
        writeFileAtomic(path.join(this.files.samples, `${checkpointName(this.step)}.png`), png);
      }));
    } finally {
      torch.setRngState(rng);
      rng.dispose();
    }
  }

  writeStatus(state: RunStatus['state'], etaS: number | null, message?: string): void {
    writeJson(this.files.status, {
      state, step: this.step, total_steps: this.cfg.steps, elapsed_s: Math.round(this.elapsed()),
      eta_s: state === 'running' && etaS !== null ? Math.round(etaS) : null,
      updated: new Date().toISOString(), ...(message ? { message } : {}),
    } satisfies RunStatus);
  }

  dispose(): void {
    this.model.dispose();
    this.optim.dispose();
    this.ema.dispose();
  }
}
