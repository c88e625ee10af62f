// Opening a run: a new one, a resumed one (--resume) or a new one from another run's weights
// (--init-from), into a TrainingSession. Reads and checks everything before writing; creates the
// run folder last and removes it again if the start fails after that.
//
// In a job, rank 0 alone reads and writes the run folder and tells the other ranks what they
// need (world.fromRoot): the data to load, the config, and the checkpoint to resume from (its
// bytes). Every rank loads the data itself and checks that it holds the same images as rank 0.
// An error on any rank stops every rank, naming it. Alone, the world runs each step as it is.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ArgError, SpnError } from '../errors.js';
import * as torch from '../torch/index.js';
import { AdamW, EMA } from '../torch/optim/index.js';
import { BatchIterator } from '../data/batches.js';
import { loadDataset } from '../data/index.js';
import { headSet } from '../data/sets.js';
import { checkCrop, tileSet } from '../data/crop.js';
import { subsampleSet } from '../data/subsample.js';
import type { ImageSet } from '../data/types.js';
import { SPN } from '../spn/model.js';
import { decodeCheckpoint, openCheckpoint, pick, resumeCheckpoint, type LoadedCheckpoint, type ValidCheckpoint } from '../store/checkpoint.js';
import { dropMetricsAfter, readRunConfig, runFiles, writeJson, type RunConfig } from '../store/run.js';
import { removeStaleTempFiles } from '../fsutil.js';
import { checkBatchSplit, dataBitsOf, newRunConfig, resumedRunConfig, DEFAULT_DATA, DEFAULT_PRESET, type ResolvedOptions } from './options.js';
import { TrainingSession, type SessionStart } from './session.js';
import type { World } from './world.js';
import { FolderWriter, NULL_WRITER } from './writer.js';

const MiB = 1024 * 1024;

/**
 * Opens the run of `r` in `world`. A resumed run continues from its newest checkpoint that
 * validates; newer damaged ones are moved into checkpoints/damaged/ and reported through `warn`
 * (store/checkpoint.ts resumeCheckpoint). A run with no checkpoint yet (stopped before its
 * first) starts again from step 0.
 */
export async function openRun(r: ResolvedOptions, world: World, log: (m: string) => void, warn: (m: string) => void = log): Promise<TrainingSession> {
  const { o, dir } = r;
  const files = runFiles(dir);
  // Rank 0's own: the checkpoint to resume from and the run to fine-tune from.
  let resumeFrom: ValidCheckpoint | null = null;
  let source: LoadedCheckpoint | null = null;
  let created = false;
  try {
    const plan = await world.fromRoot('open the run', () => {
      let prior: RunConfig | null = null;
      if (o.resume) {
        if (!fs.existsSync(files.config)) throw new SpnError('E_IO', `--resume: no checkpoint in ${files.checkpoints} (and no run config ${files.config})`);
        prior = resumedRunConfig(o, readRunConfig(dir));
        world.deviceFor(prior.device); // a job's backend was chosen from --device before the run was read
        checkBatchSplit(prior.train.batchSize, world.size, `the run's batch size`);
        for (const d of [dir, files.checkpoints, files.samples]) removeStaleTempFiles(d); // left by a killed process
        resumeFrom = resumeCheckpoint(dir, warn);
        if (!resumeFrom) log(`--resume: ${dir} has no checkpoint yet; starting it again from step 0 with its saved settings`);
      } else if (fs.existsSync(files.config)) {
        throw new ArgError(`${dir} already holds a run; use --resume to continue it or choose another --out`);
      } else {
        checkBatchSplit(r.fresh!.train.batchSize, world.size, o.batchSize !== undefined ? '--batch-size' : `the batch size of preset ${o.preset ?? DEFAULT_PRESET}`);
      }
      if (o.initFrom) source = decodeCheckpoint(openCheckpoint(o.initFrom, 'best'), 'cpu');
      const from = (source as LoadedCheckpoint | null)?.meta.config;
      const resume = resumeFrom as ValidCheckpoint | null;
      return {
        prior,
        spec: prior?.data ?? o.data ?? DEFAULT_DATA,
        bits: prior?.dataBits ?? from?.dataBits ?? dataBitsOf(r),
        size: prior?.size ?? o.size ?? null,
        subsample: prior?.subsample ?? o.subsample ?? 1,
        crop: prior?.crop ?? o.crop ?? null,
        resume: resume ? { base: resume.base, meta: resume.meta, bytes: resume.bytes.byteLength } : null,
      };
    });
    const { trainSet, testSet } = await world.agree('load the data', async () => {
      const data = await loadDataset(plan.spec, {
        bits: plan.bits,
        ...(plan.size ? { size: plan.size } : {}),
        ...(o.cacheDir ? { cacheDir: o.cacheDir } : {}),
        onProgress: (m) => log(`data: ${m}`),
      });
      const train = subsampleSet(data.train, plan.subsample);
      const test = subsampleSet(data.test, plan.subsample);
      if (plan.crop) checkCrop(plan.crop, train.h, train.w, `data ${plan.spec}`);
      // Trained on random crops of the whole images; tested on the test images' fixed tiles.
      return { trainSet: train, testSet: plan.crop ? tileSet(test, plan.crop) : test };
    });
    const mine = `train: ${dataFingerprint(trainSet)}; test: ${dataFingerprint(testSet)}`;
    world.same('compare its data', mine, (root, other, rank) =>
      new SpnError('E_DATA', `data ${plan.spec} differs between the ranks: rank 0 has ${root}, rank ${rank} has ${other}; every rank must read the same images`));
    const cfg = await world.fromRoot('create the run folder', () => {
      const src = source as LoadedCheckpoint | null;
      const c = plan.prior ?? newRunConfig(r, trainSet, src ? { model: src.meta.config.model, from: o.initFrom! } : undefined);
      checkShape(c, testSet);
      created = !fs.existsSync(dir);
      fs.mkdirSync(files.checkpoints, { recursive: true });
      if (!plan.prior) writeJson(files.config, c);
      else if (!plan.resume) dropMetricsAfter(dir, 0);
      return c;
    });
    checkShape(cfg, testSet);
    // The checkpoint to resume from: rank 0's bytes, on every rank.
    let resume = resumeFrom as ValidCheckpoint | null;
    if (plan.resume) {
      const bytes = world.broadcastBytes(resume ? resume.bytes : null, plan.resume.bytes);
      resume = { ok: true, base: plan.resume.base, meta: plan.resume.meta, bytes: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
    }
    return build(r, dir, cfg, trainSet, testSet, resume, source, log, world);
  } catch (err) {
    if (created) fs.rmSync(dir, { recursive: true, force: true }); // a failed start leaves no folder behind
    throw err;
  } finally {
    if (source) torch.dispose((source as LoadedCheckpoint).tensors);
  }
}

function build(r: ResolvedOptions, dir: string, cfg: RunConfig, trainSet: ImageSet, testSet: ImageSet, resumeFrom: ValidCheckpoint | null, source: LoadedCheckpoint | null, log: (m: string) => void, world: World): TrainingSession {
  const { model: mc, train: tc } = cfg;
  const device = world.deviceFor(cfg.device);
  torch.manualSeed(cfg.seed);
  const model = new SPN(mc, { device });
  if (source) model.loadStateDict(pick(source.tensors, 'ema.'));
  world.broadcast(model.parameters()); // every rank starts from rank 0's weights
  const named = model.namedParameters().map(([name, param]) => ({ name, param }));
  // Weight decay on matrices and tables (rank ≥ 2), not on biases and norm gains (rank 1).
  const optim = new AdamW(named, { lr: tc.lr, weightDecay: tc.weightDecay, betas: [0.9, 0.99], noDecay: (_, p) => p.ndim < 2 });
  const ema = new EMA(named, tc.emaDecay);
  let position = { epoch: 0, index: 0 };
  const start: SessionStart = { step: 0, bestTestBpd: null, lossWindow: { sum: 0, count: 0 }, elapsedBefore: 0 };
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
    position = meta.data_position;
    Object.assign(start, { step: meta.step, bestTestBpd: meta.best_test_bpd, lossWindow: meta.loss_window ?? start.lossWindow, elapsedBefore: meta.elapsed_s });
    if (world.writes) dropMetricsAfter(dir, meta.step);
    const saved = meta.world_size ?? 1;
    log(`resumed ${dir} at step ${meta.step} (${path.basename(resumeFrom.base)}${saved !== world.size ? `, trained on ${saved} rank${saved > 1 ? 's' : ''}, continuing on ${world.size}` : ''})`);
  }
  const evalSet = headSet(testSet, Math.min(tc.evalImages, testSet.n));
  const batches = new BatchIterator(trainSet, { batchSize: tc.batchSize, seed: cfg.seed, position });
  const caps = { bucketBytes: (r.o.bucketCapMb ?? 25) * MiB, firstBucketBytes: (r.o.firstBucketCapMb ?? 1) * MiB };
  const writer = world.writes ? new FolderWriter(dir) : NULL_WRITER;
  const s = new TrainingSession(dir, cfg, device, world, writer, model, optim, ema, batches, { h: trainSet.h, w: trainSet.w, c: trainSet.c }, evalSet, start, caps);
  const ranks = world.size > 1 ? `; ${world.size} ranks (${world.backend}), ${tc.batchSize / world.size} images each per step` : '';
  log(`model: ${model.numParameters().toLocaleString('en-US')} parameters, S=${mc.scale}, ${mc.bits}-bit, stage ${mc.stage}${cfg.initFrom ? `, from ${cfg.initFrom}` : ''}; data ${cfg.data}: ${trainSet.n} train / ${testSet.n} test images of ${mc.height}×${mc.width}×${mc.channels}${cfg.crop ? ` (random crops of ${trainSet.h}×${trainSet.w} training images; the test images' tiles)` : ''}${ranks}`);
  return s;
}

/** n, shape and the sha256 of up to 1024 evenly spaced images: cheap for any size of set. */
function dataFingerprint(set: ImageSet): string {
  const h = createHash('sha256').update(`${set.n} ${set.h} ${set.w} ${set.c}`);
  const picks = Math.min(set.n, 1024);
  for (let i = 0; i < picks; i++) h.update(set.read(Math.floor((i * set.n) / picks), 1));
  return `${set.n} images of ${set.h}×${set.w}×${set.c} (sha256 of a sample ${h.digest('hex').slice(0, 12)})`;
}

/** The images the model reads (the test split: whole images, or the tiles of a run on crops) must be its shape. */
function checkShape(cfg: RunConfig, set: ImageSet): void {
  const mc = cfg.model;
  if (set.h !== mc.height || set.w !== mc.width || set.c !== mc.channels) {
    throw new ArgError(`data ${cfg.data} has images ${set.h}×${set.w}×${set.c}, the run expects ${mc.height}×${mc.width}×${mc.channels}`);
  }
}
