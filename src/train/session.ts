// One training run in memory: its config, the model with its optimizer and EMA, the batches, the
// counters a checkpoint saves, the world it trains in (world.ts: one process, or a rank of a
// data-parallel job) and the writer of its run folder (writer.ts). trainer.ts drives it (step,
// evaluate, checkpoint, samples, status); open.ts builds it; this file says what each step does.
// Nothing here asks whether it runs alone: the world and the writer answer for that.
//
// A run is reproducible from its seed: the model init, the batch order and the target slices
// come from seeded generators whose state is saved in every checkpoint, so on CPU a resumed
// --steps run follows the same loss trajectory as an uninterrupted one. (With --minutes the
// learning-rate schedule follows the wall clock, so only the data and slice draws repeat.)
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { SpnError } from '../errors.js';
import * as torch from '../torch/index.js';
import { clipGradNorm, gradNorm, lrAt, type AdamW, type EMA } from '../torch/optim/index.js';
import type { BatchIterator, Batch } from '../data/batches.js';
import { randomCrops } from '../data/crop.js';
import { hashSeed } from '../data/rng.js';
import type { ImageSet } from '../data/types.js';
import type { TrainConfig } from '../spn/config.js';
import { gridPng } from '../spn/images.js';
import type { SPN } from '../spn/model.js';
import { sample } from '../spn/sample.js';
import { joinDepth, toBatch } from '../spn/stage.js';
import { checkpointName, type CheckpointMeta } from '../store/checkpoint.js';
import { evaluate } from '../store/evaluate.js';
import type { RunConfig, RunStatus } from '../store/run.js';
import type { GradientSync, World } from './world.js';
import type { RunWriter } from './writer.js';

/** Images per batch of the in-training evaluation. */
const EVAL_BATCH = 50;
/** Mixed into the dropout stream's seed (withDropoutStream), apart from every other seeded stream. */
const DROPOUT_STREAM = 0x64726f70;

/**
 * This process's resident-set high-water mark so far, in MB: VmHWM of /proc/self/status on
 * Linux, else the OS's maxRSS. Read when a record is logged (not per step): each train and test
 * record carries it as `rss_peak_mb`, which never decreases along a process's log. VmHWM alone
 * can step back by a few hundred kB between two reads (the kernel shows max(stored mark, current
 * RSS), and its current-RSS counters are per-CPU approximations: CI saw 280.5 then 280.4 MB), so
 * the figure is kept as a running maximum.
 */
let rssPeakSeen = 0;
function rssPeakMB(): number {
  let kb: string | undefined;
  try {
    kb = /^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1];
  } catch {
    // not Linux: the portable figure below
  }
  const mb = kb !== undefined ? Number(kb) / 1024 : process.resourceUsage().maxRSS / 1024;
  rssPeakSeen = Math.max(rssPeakSeen, +mb.toFixed(1));
  return rssPeakSeen;
}

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

/** What a session starts from: a new run's step 0, or a checkpoint's counters. */
export interface SessionStart {
  step: number;
  bestTestBpd: number | null;
  lossWindow: { sum: number; count: number };
  /** Training time before this process. */
  elapsedBefore: number;
}

export class TrainingSession {
  readonly onCuda: boolean;
  readonly bf16: boolean;
  readonly params: torch.Tensor[];
  /** Sub-pixels whose loss one step averages (over the global batch: every rank's share). */
  readonly subpixelsPerStep: number;
  step: number;
  bestTestBpd: number | null;
  lastTestBpd: number | null = null;
  /** Sum and count of the losses since the last train record (a resumed run continues its window). */
  lossSum: number;
  lossCount: number;
  /** The sha256 of the weights at the last checkpoint (weightsSha256). */
  lastWeightsSha256: string | null = null;
  private readonly startedAt = Date.now();
  private readonly elapsedBefore: number;
  /** The clock all ranks agreed on at the last step (rank 0's); see elapsed(). */
  private agreedElapsed: number;
  private readonly grads: GradientSync;

  constructor(
    readonly dir: string,
    readonly cfg: RunConfig,
    /** This process's device: the run's, or in a job this rank's (cuda:LOCAL_RANK). */
    readonly device: string,
    readonly world: World,
    readonly writer: RunWriter,
    readonly model: SPN,
    readonly optim: AdamW,
    readonly ema: EMA,
    readonly batches: BatchIterator,
    /** The shape of the training images (larger than the model's with --crop). */
    private readonly trainShape: { h: number; w: number; c: number },
    /** The test images the in-training bits/dim is measured on (the first evalImages). */
    readonly evalSet: ImageSet,
    start: SessionStart,
    caps: { bucketBytes: number; firstBucketBytes: number },
  ) {
    this.onCuda = device.startsWith('cuda');
    this.bf16 = useBf16(cfg.train.precision, this.onCuda);
    this.params = model.parameters();
    this.subpixelsPerStep = cfg.train.batchSize * cfg.train.slicesPerImage * model.dimsPerSlice;
    this.step = start.step;
    this.bestTestBpd = start.bestTestBpd;
    this.lossSum = start.lossWindow.sum;
    this.lossCount = start.lossWindow.count;
    this.elapsedBefore = start.elapsedBefore;
    this.agreedElapsed = start.elapsedBefore;
    this.grads = world.gradients(this.params, caps);
  }

  /**
   * Seconds of training, this process and the ones before it: rank 0's clock as the ranks
   * agreed on it at the last step, so that every decision taken from it (the time budget, the
   * learning rate of a --minutes run, when to evaluate, sample and checkpoint) is the same on
   * every rank. Alone, it is this process's clock at the last step.
   */
  elapsed(): number {
    return this.agreedElapsed;
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
   * One optimizer step on a batch (the global batch: this rank computes its share of it, images
   * [r·b/W, (r+1)·b/W), and the world averages the gradients). `stop` is asked after the
   * backward pass whether to stop after this step; the returned `stop` is the decision (rank
   * 0's, on every rank). Returns the global batch's loss in bits per sub-pixel.
   */
  trainStep(batch: Batch, stop: () => boolean = () => false): { loss: number; stop: boolean } {
    const { model, optim, cfg, world, device } = this;
    const reps = cfg.train.slicesPerImage;
    const m = batch.n / world.size; // checked to divide when the run opened
    const size = cfg.model.height * cfg.model.width * cfg.model.channels;
    optim.lr = this.lr();
    // --crop: one random crop of each image, drawn from the batch's position (a resume repeats it).
    const images = cfg.crop ? randomCrops(batch.data, batch.n, this.trainShape, cfg.crop, { seed: cfg.seed, epoch: batch.epoch, index: batch.index }) : batch.data;
    const local = torch.tidy(() => {
      const b = toBatch(images.subarray(world.rank * m * size, (world.rank + 1) * m * size), m, cfg.model, device);
      const x = reps > 1 ? torch.repeatInterleave(b.x, reps, 0) : b.x;
      const given = b.given && reps > 1 ? torch.repeatInterleave(b.given, reps, 0) : b.given;
      // Drawn on the CPU generator (saved in checkpoints) so a resumed run repeats the draws on
      // any device, for the whole batch: each rank takes the slices of its images.
      const drawn = torch.randint(model.firstSlice, model.S * model.S, [batch.n * reps]);
      const kCpu = world.size > 1 ? drawn.narrow(0, world.rank * m * reps, m * reps) : drawn;
      const k = this.onCuda ? kCpu.to(device) : kCpu;
      // Mean NLL per sub-pixel of the drawn slices, in bits: the full image's bpd in expectation.
      const forward = () => model.nll(given ? { x, given } : { x }, k).mean().div(model.dimsPerSlice * Math.LN2);
      return this.withDropoutStream(() => {
        const bpd = this.bf16 ? torch.autocast(this.onCuda ? 'cuda' : 'cpu', forward) : forward();
        this.grads.backward(bpd); // in a job, each gradient bucket's all-reduce starts as the bucket is ready
        return bpd.item();
      });
    });
    const agreed = world.agreeStep({ loss: local, elapsed: this.ownElapsed(), stop: stop(), gradNorm: gradNorm(this.params) });
    this.agreedElapsed = agreed.elapsed;
    if (!Number.isFinite(agreed.loss)) {
      optim.zeroGrad();
      throw new SpnError('E_NAN', `training loss became ${agreed.loss} at step ${this.step + 1}; the run stopped and its last good checkpoint is intact (lower --lr or check the data)`);
    }
    clipGradNorm(this.params, cfg.train.gradClip, agreed.gradNorm);
    optim.step();
    optim.zeroGrad();
    this.ema.update({ step: this.step }); // warmed-up decay: see EMA.update
    this.step++;
    this.lossSum += agreed.loss;
    this.lossCount++;
    return { loss: agreed.loss, stop: agreed.stop };
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
      torch.manualSeed(hashSeed(this.cfg.seed, this.step, this.world.rank, DROPOUT_STREAM));
      return fn();
    } finally {
      torch.setRngState(rng);
      rng.dispose();
    }
  }

  /**
   * The train record with the mean loss since the last one and the process's peak RSS so far
   * (rss_peak_mb), appended to metrics.jsonl by the writer; returns it. A job's records add the
   * world size and the share of the time (since `windowMs` ago) rank 0 spent waiting on the
   * other ranks: the exposed communication.
   */
  logTrain(subpixelsPerS: number, windowMs?: number): Record<string, number | string> {
    const rec: Record<string, number | string> = { kind: 'train', step: this.step, time_s: +this.elapsed().toFixed(1), loss_bpd: +(this.lossSum / this.lossCount).toFixed(5), subpixels_per_s: Math.round(subpixelsPerS), lr: +this.optim.lr.toExponential(4), rss_peak_mb: rssPeakMB() };
    const waitMs = this.world.takeWaitMs();
    if (this.world.size > 1) {
      rec.world_size = this.world.size;
      if (windowMs) rec.comm_share = +(waitMs / windowMs).toFixed(4);
    }
    this.writer.metric(rec);
    this.lossSum = 0;
    this.lossCount = 0;
    return rec;
  }

  private meta(): CheckpointMeta {
    return {
      format: 'spn-checkpoint-1', step: this.step, data_position: this.batches.position(), best_test_bpd: this.bestTestBpd,
      elapsed_s: this.elapsed(), config: this.cfg, loss_window: { sum: this.lossSum, count: this.lossCount }, world_size: this.world.size,
    };
  }

  /** Test bits/dim of the EMA weights on evalSet; a new best is saved as checkpoints/best. The
   * RNG is not touched, so evaluating does not change the trajectory. Every rank evaluates its
   * share of the batches; the number equals a single process's (store/evaluate.ts `shard`). */
  evaluate(): number {
    const r = this.ema.withShadow(() => evaluate(this.model, this.evalSet, { batchSize: EVAL_BATCH, shard: this.world }));
    this.lastTestBpd = r.bpd;
    const better = this.bestTestBpd === null || r.bpd < this.bestTestBpd;
    if (better) this.bestTestBpd = r.bpd;
    this.writer.metric({ kind: 'test', step: this.step, time_s: +this.elapsed().toFixed(1), bpd: +r.bpd.toFixed(5), images: r.images, rss_peak_mb: rssPeakMB() });
    if (better) this.writer.checkpoint('best', this.parts());
    return r.bpd;
  }

  private parts() {
    return { model: this.model, ema: this.ema, optim: this.optim, meta: this.meta() };
  }

  /** A step checkpoint; the newest two are kept. Every rank first checks that all hold the same weights (their sha256). */
  checkpoint(): void {
    const sha = this.weightsSha256();
    this.lastWeightsSha256 = sha;
    this.world.same('compare its weights', sha, (root, other, rank) =>
      new SpnError('E_DIST', `the ranks' weights differ at step ${this.step} (sha256 ${root.slice(0, 12)} on rank 0, ${other.slice(0, 12)} on rank ${rank}): the ranks' optimizer steps are no longer identical`));
    this.writer.checkpoint(checkpointName(this.step), this.parts(), 2);
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
   * the process that writes samples (the others would draw for nothing).
   */
  writeSamples(): void {
    if (!this.world.writes) return;
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
        this.writer.samples(png, ['latest.png', `${checkpointName(this.step)}.png`]);
      }));
    } finally {
      torch.setRngState(rng);
      rng.dispose();
    }
  }

  writeStatus(state: RunStatus['state'], etaS: number | null, message?: string): void {
    this.writer.status({
      state, step: this.step, total_steps: this.cfg.steps, elapsed_s: Math.round(this.elapsed()),
      eta_s: state === 'running' && etaS !== null ? Math.round(etaS) : null,
      updated: new Date().toISOString(), ...(message ? { message } : {}),
    });
  }

  dispose(): void {
    this.grads.dispose();
    this.model.dispose();
    this.optim.dispose();
    this.ema.dispose();
  }
}
