// One training run in memory: its config and folder, its data, the model with its optimizer and
// EMA, and the counters a checkpoint saves. trainer.ts drives it (step, evaluate, checkpoint,
// samples, status); this file says what each of those does.
//
// A run is reproducible from its seed: the model init, the batch order and the target slices
// come from seeded generators whose state is saved in every checkpoint, so on CPU a resumed
// --steps run follows the same loss trajectory as an uninterrupted one. (With --minutes the
// learning-rate schedule follows the wall clock, so only the data and slice draws repeat.)
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SpnError, ArgError } from '../errors.js';
import * as torch from '../torch/index.js';
import { AdamW, EMA, clipGradNorm, lrAt } from '../torch/optim/index.js';
import { BatchIterator, type Batch } from '../data/batches.js';
import { loadDataset } from '../data/index.js';
import { hashSeed } from '../data/rng.js';
import { subsampleSet } from '../data/subsample.js';
import type { ImageSet } from '../data/types.js';
import { headSet } from '../data/sets.js';
import type { TrainConfig } from '../spn/config.js';
import { gridPng } from '../spn/images.js';
import { SPN } from '../spn/model.js';
import { sample } from '../spn/sample.js';
import { joinDepth, toBatch } from '../spn/stage.js';
import { removeStaleTempFiles, writeFileAtomic } from '../fsutil.js';
import { checkpointName, decodeCheckpoint, openCheckpoint, pick, pruneCheckpoints, resumeCheckpoint, saveCheckpoint, type CheckpointMeta, type LoadedCheckpoint, type ValidCheckpoint } from '../store/checkpoint.js';
import { evaluate } from '../store/evaluate.js';
import { checkBatchSplit, dataBitsFor, newRunConfig, newTrainConfig, resumedRunConfig, DEFAULT_DATA, DEFAULT_PRESET, type TrainOptions } from './options.js';
import type { DataParallel, StepValues } from './parallel.js';
import { appendMetric, dropMetricsAfter, readRunConfig, runFiles, writeJson, type RunConfig, type RunStatus } from '../store/run.js';

/** Images per batch of the in-training evaluation. */
const EVAL_BATCH = 50;
/** Mixed into the dropout stream's seed (withDropoutStream), apart from every other seeded stream. */
const DROPOUT_STREAM = 0x64726f70;

/** Whether training runs under bf16 autocast (TrainConfig.precision). */
export function useBf16(precision: TrainConfig['precision'], onCuda: boolean): boolean {
  if (precision === 'fp32') return false;
  if (onCuda) return true;
  return precision === 'bf16' && torch.cpuBf16Faster();
}

/** The kind of work a training run is for the thread policy (torch/threads.ts): on a CPU, bf16
 * autocast or fp32 matrix work; on CUDA, the host only launches kernels. */
export function threadWork(bf16: boolean, onCuda: boolean): torch.ThreadWork {
  return onCuda ? 'ops' : bf16 ? 'bf16' : 'blas';
}

export class TrainingSession {
  readonly files: ReturnType<typeof runFiles>;
  readonly onCuda: boolean;
  readonly bf16: boolean;
  readonly params: torch.Tensor[];
  /** Sub-pixels whose loss one step averages (over the global batch: every rank's share). */
  readonly subpixelsPerStep: number;
  /**
   * Whether this session writes the run folder: a single process, or rank 0 of a data-parallel
   * job. The other ranks compute alike (evaluation included) and write nothing: every writer
   * below returns at once on them.
   */
  readonly writes: boolean;
  step = 0;
  bestTestBpd: number | null = null;
  lastTestBpd: number | null = null;
  /** Sum and count of the losses since the last train record (a resumed run continues its window). */
  lossSum = 0;
  lossCount = 0;
  /** The sha256 of the weights at the last checkpoint (weightsSha256). */
  lastWeightsSha256: string | null = null;
  private readonly startedAt = Date.now();
  /** Data-parallel: the clock all ranks agreed on at the last step (rank 0's); see elapsed(). */
  private agreedElapsed: number;

  private constructor(
    readonly dir: string,
    readonly cfg: RunConfig,
    /** This process's device: the run's, or with data parallelism this rank's (cuda:LOCAL_RANK). */
    readonly device: string,
    readonly model: SPN,
    readonly optim: AdamW,
    readonly ema: EMA,
    readonly batches: BatchIterator,
    /** The test images the in-training bits/dim is measured on (the first evalImages). */
    readonly evalSet: ImageSet,
    /** Training time before this process (a resumed run). */
    readonly elapsedBefore: number,
    /** This rank's place in a data-parallel job, or null for a single process. */
    readonly par: DataParallel | null,
  ) {
    this.files = runFiles(dir);
    this.onCuda = device.startsWith('cuda');
    this.bf16 = useBf16(cfg.train.precision, this.onCuda);
    this.params = model.parameters();
    this.subpixelsPerStep = cfg.train.batchSize * cfg.train.slicesPerImage * model.dimsPerSlice;
    this.writes = par === null || par.isRoot;
    this.agreedElapsed = elapsedBefore;
  }

  /**
   * Opens a run: a new one, a resumed one (o.resume) or a new one from another run's weights
   * (o.initFrom). Reads and checks everything before writing; creates the run folder last and
   * removes it again if the start fails after that.
   *
   * A resumed run continues from its newest checkpoint that validates; newer damaged ones are
   * moved into checkpoints/damaged/ and reported through `warn` (checkpoint.ts resumeCheckpoint).
   * A run with no checkpoint yet (stopped before its first) starts again from step 0.
   *
   * Data-parallel (`par`): rank 0 alone reads and writes the run folder, and tells the other
   * ranks what they need: the data to load, the config, and the checkpoint to resume from (its
   * bytes). Every rank loads the data itself. An error on any rank stops every rank, naming it.
   */
  static async open(o: TrainOptions, log: (m: string) => void, warn: (m: string) => void = log, par: DataParallel | null = null): Promise<TrainingSession> {
    const dir = path.resolve(o.out);
    const files = runFiles(dir);
    const world = par?.worldSize ?? 1;
    const onRoot = <T>(what: string, fn: () => T | Promise<T>): Promise<T> => (par ? par.fromRoot(what, fn) : Promise.resolve(fn()));
    const onEvery = <T>(what: string, fn: () => T | Promise<T>): Promise<T> => (par ? par.agree(what, fn) : Promise.resolve(fn()));
    // Rank 0's own: the checkpoint to resume from and the run to fine-tune from.
    let resumeFrom: ValidCheckpoint | null = null;
    let source: LoadedCheckpoint | null = null;
    let created = false;
    try {
      const plan = await onRoot('open the run', () => {
        let prior: RunConfig | null = null;
        if (o.resume) {
          if (!fs.existsSync(files.config)) throw new SpnError('E_IO', `--resume: no checkpoint in ${files.checkpoints} (and no run config ${files.config})`);
          prior = resumedRunConfig(o, readRunConfig(dir));
          if (par) checkParallelResume(prior, o, par);
          checkBatchSplit(prior.train.batchSize, world, `the run's batch size`);
          for (const d of [dir, files.checkpoints, files.samples]) removeStaleTempFiles(d); // left by a killed process
          resumeFrom = resumeCheckpoint(dir, warn);
          if (!resumeFrom) log(`--resume: ${dir} has no checkpoint yet; starting it again from step 0 with its saved settings`);
        } else if (fs.existsSync(files.config)) {
          throw new ArgError(`${dir} already holds a run; use --resume to continue it or choose another --out`);
        } else {
          checkBatchSplit(newTrainConfig(o).batchSize, world, o.batchSize !== undefined ? '--batch-size' : `the batch size of preset ${o.preset ?? DEFAULT_PRESET}`);
        }
        if (o.initFrom) source = decodeCheckpoint(openCheckpoint(o.initFrom, 'best'), 'cpu');
        const from = (source as LoadedCheckpoint | null)?.meta.config;
        const size = prior?.size ?? o.size;
        const resume = resumeFrom as ValidCheckpoint | null;
        return {
          prior,
          spec: prior?.data ?? o.data ?? DEFAULT_DATA,
          bits: prior?.dataBits ?? from?.dataBits ?? dataBitsFor(o),
          size: size ?? null,
          subsample: prior?.subsample ?? o.subsample ?? 1,
          resume: resume ? { base: resume.base, meta: resume.meta, bytes: resume.bytes.byteLength } : null,
        };
      });
      const { trainSet, testSet } = await onEvery('load the data', async () => {
        const data = await loadDataset(plan.spec, {
          bits: plan.bits,
          ...(plan.size ? { size: plan.size } : {}),
          ...(o.cacheDir ? { cacheDir: o.cacheDir } : {}),
          onProgress: (m) => log(`data: ${m}`),
        });
        return { trainSet: subsampleSet(data.train, plan.subsample), testSet: subsampleSet(data.test, plan.subsample) };
      });
      par?.checkData(plan.spec, trainSet, testSet);
      const cfg = await onRoot('create the run folder', () => {
        const src = source as LoadedCheckpoint | null;
        const c = plan.prior ?? newRunConfig(o, trainSet, src ? { model: src.meta.config.model, from: o.initFrom! } : undefined);
        checkShape(c, trainSet);
        created = !fs.existsSync(dir);
        fs.mkdirSync(files.checkpoints, { recursive: true });
        if (!plan.prior) writeJson(files.config, c);
        else if (!plan.resume) dropMetricsAfter(dir, 0);
        return c;
      });
      checkShape(cfg, trainSet);
      // The checkpoint to resume from: rank 0's bytes, on every rank.
      let resume = resumeFrom as ValidCheckpoint | null;
      if (par && plan.resume) {
        const bytes = par.broadcastBytes(resume ? resume.bytes : null, plan.resume.bytes);
        resume = { ok: true, base: plan.resume.base, meta: plan.resume.meta, bytes: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
      }
      return TrainingSession.build(dir, cfg, trainSet, testSet, resume, source, log, par);
    } catch (err) {
      if (created) fs.rmSync(dir, { recursive: true, force: true }); // a failed start leaves no folder behind
      throw err;
    } finally {
      if (source) torch.dispose((source as LoadedCheckpoint).tensors);
    }
  }

  private static build(dir: string, cfg: RunConfig, trainSet: ImageSet, testSet: ImageSet, resumeFrom: ValidCheckpoint | null, source: LoadedCheckpoint | null, log: (m: string) => void, par: DataParallel | null): TrainingSession {
    const { model: mc, train: tc } = cfg;
    const device = par ? par.device : cfg.device;
    torch.manualSeed(cfg.seed);
    const model = new SPN(mc, { device });
    if (source) model.loadStateDict(pick(source.tensors, 'ema.'));
    par?.broadcast(model.parameters()); // every rank starts from rank 0's weights
    const named = model.namedParameters().map(([name, param]) => ({ name, param }));
    // Weight decay on matrices and tables (rank ≥ 2), not on biases and norm gains (rank 1).
    const optim = new AdamW(named, { lr: tc.lr, weightDecay: tc.weightDecay, betas: [0.9, 0.99], noDecay: (_, p) => p.ndim < 2 });
    const ema = new EMA(named, tc.emaDecay);
    let position = { epoch: 0, index: 0 };
    let elapsedBefore = 0;
    let resumed: CheckpointMeta | null = null;
    if (resumeFrom) {
      const { meta, tensors } = decodeCheckpoint(resumeFrom, device);
      try {
        model.loadStateDict(pick(tensors, 'model.'));
        ema.loadStateDict(pick(tensors, 'ema.'));
        optim.loadStateDict(pick(tensors, 'optim.'));
        // Decoded onto the run's device with the rest; the generator it restores is the CPU's.
        torch.tidy(() => torch.setRngState(tensors['rng_state']!.to('cpu')));
      } finally {
        torch.dispose(tensors);
      }
      resumed = meta;
      position = meta.data_position;
      elapsedBefore = meta.elapsed_s;
      if (!par || par.isRoot) dropMetricsAfter(dir, meta.step);
      const saved = meta.world_size ?? 1;
      const now = par?.worldSize ?? 1;
      log(`resumed ${dir} at step ${meta.step} (${path.basename(resumeFrom.base)}${saved !== now ? `, trained on ${saved} rank${saved > 1 ? 's' : ''}, continuing on ${now}` : ''})`);
    }
    const n = Math.min(tc.evalImages, testSet.n);
    const evalSet: ImageSet = headSet(testSet, n);
    const batches = new BatchIterator(trainSet, { batchSize: tc.batchSize, seed: cfg.seed, position });
    const s = new TrainingSession(dir, cfg, device, model, optim, ema, batches, evalSet, elapsedBefore, par);
    if (resumed) {
      s.step = resumed.step;
      s.bestTestBpd = resumed.best_test_bpd;
      s.lossSum = resumed.loss_window?.sum ?? 0;
      s.lossCount = resumed.loss_window?.count ?? 0;
    }
    const ranks = par ? `; ${par.worldSize} ranks (${par.backend}), ${tc.batchSize / par.worldSize} images each per step` : '';
    log(`model: ${model.numParameters().toLocaleString('en-US')} parameters, S=${mc.scale}, ${mc.bits}-bit, stage ${mc.stage}${cfg.initFrom ? `, from ${cfg.initFrom}` : ''}; data ${cfg.data}: ${trainSet.n} train / ${testSet.n} test images of ${mc.height}×${mc.width}×${mc.channels}${ranks}`);
    return s;
  }

  /**
   * Seconds of training, this process and the ones before it. Data-parallel: rank 0's clock as
   * the ranks agreed on it at the last step, so that every decision taken from it (the time
   * budget, the learning rate of a --minutes run, when to evaluate, sample and checkpoint) is
   * the same on every rank.
   */
  elapsed(): number {
    return this.par ? this.agreedElapsed : this.ownElapsed();
  }

  private ownElapsed(): number {
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

  /**
   * One optimizer step on a batch (the global batch: a data-parallel rank computes its share of
   * it, see parallel.ts). `stop` is asked after the backward pass whether to stop after this
   * step; the returned `stop` is the decision (rank 0's, on every rank). Returns the batch's loss
   * in bits per sub-pixel.
   */
  trainStep(batch: Batch, stop: () => boolean = () => false): { loss: number; stop: boolean } {
    const { model, optim, cfg, par, device } = this;
    const reps = cfg.train.slicesPerImage;
    const [rank, world] = par ? [par.rank, par.worldSize] : [0, 1];
    const m = batch.n / world; // checked to divide when the run opened
    const size = cfg.model.height * cfg.model.width * cfg.model.channels;
    optim.lr = this.lr();
    const local = torch.tidy(() => {
      const b = toBatch(batch.data.subarray(rank * m * size, (rank + 1) * m * size), m, cfg.model, device);
      const x = reps > 1 ? torch.repeatInterleave(b.x, reps, 0) : b.x;
      const given = b.given && reps > 1 ? torch.repeatInterleave(b.given, reps, 0) : b.given;
      // Drawn on the CPU generator (saved in checkpoints) so a resumed run repeats the draws on
      // any device, for the whole batch: each rank takes the slices of its images.
      const drawn = torch.randint(model.firstSlice, model.S * model.S, [batch.n * reps]);
      const kCpu = world > 1 ? drawn.narrow(0, rank * m * reps, m * reps) : drawn;
      const k = this.onCuda ? kCpu.to(device) : kCpu;
      // Mean NLL per sub-pixel of the drawn slices, in bits: the full image's bpd in expectation.
      const forward = () => model.nll(given ? { x, given } : { x }, k).mean().div(model.dimsPerSlice * Math.LN2);
      return this.withDropoutStream(() => {
        const bpd = this.bf16 ? torch.autocast(this.onCuda ? 'cuda' : 'cpu', forward) : forward();
        bpd.backward();
        return bpd.item();
      });
    });
    let agreed: StepValues;
    if (par) {
      agreed = par.step(this.params, { loss: local, elapsed: this.ownElapsed(), stop: stop() }, cfg.train.gradClip);
      this.agreedElapsed = agreed.elapsed;
    } else {
      agreed = { loss: local, elapsed: this.ownElapsed(), stop: stop() };
    }
    const loss = agreed.loss;
    if (!Number.isFinite(loss)) {
      optim.zeroGrad();
      throw new SpnError('E_NAN', `training loss became ${loss} at step ${this.step + 1}; the run stopped and its last good checkpoint is intact (lower --lr or check the data)`);
    }
    if (!par) clipGradNorm(this.params, cfg.train.gradClip); // data-parallel: clipped in par.step
    optim.step();
    optim.zeroGrad();
    this.ema.update({ step: this.step }); // warmed-up decay: see EMA.update
    this.step++;
    this.lossSum += loss;
    this.lossCount++;
    return { loss, stop: agreed.stop };
  }

  /**
   * Runs fn (a forward and backward pass) with dropout drawing from its own stream, seeded from
   * (seed, step, rank), then puts the CPU generator back: the data and slice draws never depend
   * on dropout, and the ranks of a data-parallel job drop different units while their shared
   * draws stay in step. Seeding sets the CUDA generators too (dropout on a GPU draws from them).
   * Without dropout, fn just runs.
   */
  private withDropoutStream<T>(fn: () => T): T {
    if (!(this.cfg.model.dropout > 0)) return fn();
    const rng = torch.getRngState();
    try {
      torch.manualSeed(hashSeed(this.cfg.seed, this.step, this.par?.rank ?? 0, DROPOUT_STREAM));
      return fn();
    } finally {
      torch.setRngState(rng);
      rng.dispose();
    }
  }

  /**
   * The train record with the mean loss since the last one, appended to metrics.jsonl by the
   * writer; returns it. Data-parallel records add the world size and the share of the time
   * spent in the per-step collectives (since `windowMs` ago), as rank 0 measured it.
   */
  logTrain(subpixelsPerS: number, windowMs?: number): Record<string, number | string> {
    const rec: Record<string, number | string> = { kind: 'train', step: this.step, time_s: +this.elapsed().toFixed(1), loss_bpd: +(this.lossSum / this.lossCount).toFixed(5), subpixels_per_s: Math.round(subpixelsPerS), lr: +this.optim.lr.toExponential(4) };
    if (this.par) {
      rec.world_size = this.par.worldSize;
      if (windowMs) rec.comm_share = +(this.par.commMs / windowMs).toFixed(4);
      this.par.commMs = 0;
    }
    if (this.writes) appendMetric(this.dir, rec);
    this.lossSum = 0;
    this.lossCount = 0;
    return rec;
  }

  private meta(): CheckpointMeta {
    return {
      format: 'spn-checkpoint-1', step: this.step, data_position: this.batches.position(), best_test_bpd: this.bestTestBpd,
      elapsed_s: this.elapsed(), config: this.cfg, loss_window: { sum: this.lossSum, count: this.lossCount }, world_size: this.par?.worldSize ?? 1,
    };
  }

  /** Test bits/dim of the EMA weights on evalSet; a new best is saved as checkpoints/best. The
   * RNG is not touched, so evaluating does not change the trajectory. Data-parallel: every rank
   * evaluates its share of the batches; the number equals a single process's (parallel.ts). */
  evaluate(): number {
    const r = this.ema.withShadow(() => (this.par ? this.par.evaluate(this.model, this.evalSet, EVAL_BATCH) : evaluate(this.model, this.evalSet, { batchSize: EVAL_BATCH })));
    this.lastTestBpd = r.bpd;
    const better = this.bestTestBpd === null || r.bpd < this.bestTestBpd;
    if (better) this.bestTestBpd = r.bpd;
    if (!this.writes) return r.bpd;
    appendMetric(this.dir, { kind: 'test', step: this.step, time_s: +this.elapsed().toFixed(1), bpd: +r.bpd.toFixed(5), images: r.images });
    if (better) saveCheckpoint(this.dir, 'best', { model: this.model, ema: this.ema, optim: this.optim, meta: this.meta() });
    return r.bpd;
  }

  /**
   * A step checkpoint; the newest two are kept. Data-parallel: every rank first checks that all
   * hold the same weights (their sha256); then rank 0 writes.
   */
  checkpoint(): void {
    this.lastWeightsSha256 = this.weightsSha256();
    this.par?.checkWeights(this.lastWeightsSha256, this.step);
    if (!this.writes) return;
    saveCheckpoint(this.dir, checkpointName(this.step), { model: this.model, ema: this.ema, optim: this.optim, meta: this.meta() });
    pruneCheckpoints(this.dir, 2);
  }

  /** The sha256 of the trained weights (every parameter's bytes, in the model's order). */
  weightsSha256(): string {
    const h = createHash('sha256');
    for (const p of this.params) {
      const d = p.data();
      h.update(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
    }
    return h.digest('hex');
  }

  /**
   * A grid of samples from the EMA weights into samples/ (latest.png and one per step), for the
   * dashboard. Upscaling stages take the first test images' slice 0 or high bits as given. The
   * RNG state is restored afterwards, so sampling does not change the training trajectory. Only
   * the writer samples.
   */
  writeSamples(): void {
    if (!this.writes) return;
    const { model, cfg, device } = this;
    const mc = cfg.model;
    const rng = torch.getRngState();
    try {
      torch.tidy(() => this.ema.withShadow(() => {
        const n = Math.min(16, this.evalSet.n);
        const test = mc.stage === 'full' ? null : toBatch(this.evalSet.read(0, n), n, mc, device);
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
    if (!this.writes) return;
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

function checkShape(cfg: RunConfig, set: ImageSet): void {
  const mc = cfg.model;
  if (set.h !== mc.height || set.w !== mc.width || set.c !== mc.channels) {
    throw new ArgError(`data ${cfg.data} has images ${set.h}×${set.w}×${set.c}, the run expects ${mc.height}×${mc.width}×${mc.channels}`);
  }
}

/**
 * A data-parallel resume: the ranks chose their backend (gloo for cpu, nccl for cuda) from
 * --device before rank 0 read the run, so a run saved on another kind of device needs --device.
 */
function checkParallelResume(cfg: RunConfig, o: TrainOptions, par: DataParallel): void {
  const kind = (d: string) => (d.startsWith('cuda') ? 'cuda' : 'cpu');
  if (o.device === undefined && kind(cfg.device) !== kind(par.device)) {
    throw new ArgError(`--resume: ${cfg.name} trained on ${cfg.device}; on several ranks give --device ${kind(cfg.device)} (or --device ${kind(par.device)} to continue there): each rank picks its backend from --device before the run is read`);
  }
}
