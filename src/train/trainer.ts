// The training loop, flat and visible: step, log, evaluate, sample, checkpoint; then finish.
// What each of those does is in session.ts; what the options mean is in options.ts.
import * as fs from 'node:fs';
import { ArgError, SpnError, WriteError } from '../errors.js';
import { writeRemedy } from '../fsutil.js';
import * as torch from '../torch/index.js';
import { listCheckpoints } from '../store/checkpoint.js';
import { runFiles, type RunConfig, type RunStatus } from '../store/run.js';
import { agreedRecord, describeDifference } from './schema.js';
import { C10dWorld, DEFAULT_DIST_TIMEOUT_S, jobFromEnv } from './c10d-world.js';
import { openRun } from './open.js';
import { createProgress, formatDuration } from './progress.js';
import { resolveTrainOptions, type ResolvedOptions, type TrainOptions } from './options.js';
import { threadWork, type TrainingSession, useBf16 } from './session.js';
import { LocalWorld, type World } from './world.js';

export type { TrainOptions, TrainProgress } from './options.js';
export { threadWork, useBf16 };

export interface TrainResult {
  dir: string;
  step: number;
  state: RunStatus['state'];
  lastTestBpd: number | null;
  bestTestBpd: number | null;
  elapsedS: number;
  /** The sha256 of the final weights (every parameter's bytes): the same on every rank of a data-parallel job. */
  weightsSha256: string;
  /** This process's rank and the job's number of processes (0 and 1 for a single process). */
  rank: number;
  worldSize: number;
}

const LOG_EVERY = 10; // steps per train record

/**
 * Trains a model and writes its run folder (docs/run-folder.md). With RANK or WORLD_SIZE in the
 * environment (torchrun, `spn train --nproc`, srun, a PyTorchJob), or o.rendezvous, this process
 * is one rank of a data-parallel job: every rank runs this same loop on its share of each global
 * batch, and rank 0 alone writes the run folder and shows progress (c10d-world.ts). Alone, the
 * loop is the same in a world of one (world.ts).
 */
export async function train(o: TrainOptions): Promise<TrainResult> {
  const r = resolveTrainOptions(o); // nothing is written before this passes
  const rv = o.rendezvous ?? (torch.distributed.launchedDistributed() ? jobFromEnv() : null);
  const world: World = rv ? C10dWorld.join(rv, { device: o.device ?? 'cpu', timeoutS: o.distTimeoutS ?? DEFAULT_DIST_TIMEOUT_S }) : new LocalWorld();
  try {
    return await trainIn(r, world);
  } finally {
    world.destroy();
  }
}

async function trainIn(r: ResolvedOptions, world: World): Promise<TrainResult> {
  const { o } = r;
  const root = world.writes; // the rank that logs and writes
  const log = (m: string) => o.quiet || !root || process.stderr.write(m + '\n');
  const warn = (m: string) => process.stderr.write(`warning: ${m}\n`); // even with --quiet: a damaged checkpoint was skipped
  let s: TrainingSession;
  try {
    // every rank runs the same command
    world.same('compare its options', JSON.stringify(agreedRecord(o, torch.native.info().version)), (a, b, rank) =>
      new ArgError(`the ranks were started with different options: ${describeDifference(JSON.parse(a) as Record<string, unknown>, JSON.parse(b) as Record<string, unknown>, rank)}; every rank must run the same spn train command`));
    s = await openRun(r, world, log, warn);
  } catch (err) {
    if (err instanceof WriteError) throw stoppedByWrite(err, r.dir, null, { steps: o.steps ?? null, minutes: o.minutes ?? null });
    throw world.explain(err);
  }
  const { cfg } = s;
  if (cfg.train.precision === 'bf16' && !s.bf16 && !s.onCuda) {
    log(`precision: bf16 asked for, but fp32 trains faster on this CPU with libtorch ${torch.native.info().version} (bf16 pays with AMX, or AVX512-BF16 on libtorch 1.x: docs/experiments.md): training in fp32`);
  }
  const work = threadWork(s.bf16, s.onCuda);
  const threads = torch.threadsFor(work, o.threads, s.onCuda ? 1 : world.localSize);
  if (!s.onCuda) log(`precision: ${s.bf16 ? 'bf16 autocast' : 'fp32'}, ${threads} CPU thread${threads > 1 ? 's' : ''}${world.size > 1 ? ' per rank' : ''}`);

  // Ctrl-C or SIGTERM: finish the step, write a checkpoint, stop. A second Ctrl-C quits at once.
  // In a job, rank 0's signal decides, and every rank stops after the same step (the flag
  // travels with the step's collectives); a second signal within a second of the first (a
  // launcher passing on the terminal's) counts as the same one.
  let interruptedAt: number | null = null;
  const job = world.size > 1;
  const onSignal = () => {
    if (interruptedAt !== null && (!job || Date.now() - interruptedAt > 1000)) process.exit(130);
    if (interruptedAt !== null) return;
    interruptedAt = Date.now();
    log(`\ninterrupted: ${job ? 'all ranks stop after this step; rank 0 writes a checkpoint' : 'writing a checkpoint'}, then exiting (Ctrl-C again to quit now)`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  // ETA from the pace since this process started.
  const startProgress = s.progress();
  const startElapsed = s.elapsed();
  const etaS = (): number | null => {
    const gained = s.progress() - startProgress;
    return gained > 0 ? ((s.elapsed() - startElapsed) * (1 - s.progress())) / gained : null;
  };

  const bar = createProgress(cfg.name, cfg.steps ?? 1000, { quiet: o.quiet || !root || o.onProgress !== undefined });
  const threadsBefore = torch.getNumThreads();
  torch.setNumThreads(threads);
  let [lastEval, lastCkpt, lastSample] = [s.elapsed(), s.elapsed(), s.elapsed()];
  let windowStart = Date.now();
  let windowSubpixels = 0;
  let stop = false;
  let state: RunStatus['state'] = 'done';
  let failure: unknown = null;
  try {
    s.writeStatus('running', null);
    s.model.train();
    while (!s.done()) {
      if (stop || (o.interruptAtStep !== undefined && s.step >= o.interruptAtStep)) {
        state = 'stopped';
        break;
      }
      const r = s.trainStep(await s.batches.next(), () => interruptedAt !== null);
      stop = r.stop;
      o.onStep?.(s.step, r.loss);
      windowSubpixels += s.subpixelsPerStep;
      if (s.step % LOG_EVERY === 0) {
        const now = Date.now();
        const rec = s.logTrain(windowSubpixels / ((now - windowStart) / 1000), now - windowStart);
        o.onLog?.(rec);
        bar.update(cfg.steps ? s.step : Math.round(s.progress() * 1000), {
          step: String(s.step), bpd: (rec.loss_bpd as number).toFixed(3), 'test bpd': s.lastTestBpd === null ? '-' : s.lastTestBpd.toFixed(3),
          'subpx/s': `${((rec.subpixels_per_s as number) / 1000).toFixed(1)}k`, ETA: formatDuration(etaS() ?? Infinity),
        });
        if (root) {
          o.onProgress?.({
            step: s.step, totalSteps: cfg.steps, fraction: s.progress(), lossBpd: rec.loss_bpd as number, testBpd: s.lastTestBpd,
            subpixelsPerS: rec.subpixels_per_s as number, etaS: etaS(), elapsedS: s.elapsed(),
          });
        }
        [windowStart, windowSubpixels] = [now, 0];
        s.writeStatus('running', etaS());
      }
      if (s.elapsed() - lastEval >= cfg.train.evalEverySec) {
        s.evaluate();
        lastEval = s.elapsed();
      }
      if (s.elapsed() - lastSample >= cfg.train.sampleEverySec) {
        s.writeSamples();
        lastSample = s.elapsed();
      }
      if (s.elapsed() - lastCkpt >= cfg.train.checkpointEverySec) {
        s.checkpoint();
        lastCkpt = s.elapsed();
      }
    }
  } catch (err) {
    state = 'failed';
    failure = err;
  } finally {
    bar.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  let weightsSha256: string;
  try {
    if (failure === null) {
      try {
        if (state === 'done') s.evaluate();
        s.checkpoint();
        if (state === 'done') s.writeSamples();
        s.writeStatus(state, null);
      } catch (err) {
        [state, failure] = ['failed', err];
      }
    }
    if (failure !== null) {
      // A file that could not be written, or a rank that failed, stops the run with one line:
      // what happened, the last good checkpoint and how to resume. A libtorch error arrives as
      // SpnError('E_NATIVE'); anything else is a bug in this code and travels on as it is.
      const err = stopped(world.explain(failure), s, cfg);
      try {
        s.writeStatus('failed', null, err instanceof Error ? err.message : String(err));
      } catch {
        // Best effort: on a full disk status.json may fail too; the error below says what happened.
      }
      throw err;
    }
    weightsSha256 = s.lastWeightsSha256 ?? s.weightsSha256();
  } finally {
    torch.setNumThreads(threadsBefore); // after the final evaluation and samples, which run on the training's threads
    s.dispose();
  }
  const bpd = (v: number | null) => (v === null ? '-' : v.toFixed(4));
  log(`${state}: step ${s.step}, ${formatDuration(s.elapsed())}, test bpd ${bpd(s.lastTestBpd)} (best ${bpd(s.bestTestBpd)}) -> ${s.dir}`);
  return {
    dir: s.dir, step: s.step, state, lastTestBpd: s.lastTestBpd, bestTestBpd: s.bestTestBpd, elapsedS: s.elapsed(),
    weightsSha256, rank: world.rank, worldSize: world.size,
  };
}

/**
 * The error that stopped a run after it opened: a file that could not be written, or (on rank 0
 * of a data-parallel job) a failed rank, completed with the last good checkpoint and how to
 * resume; any other error as it is.
 */
function stopped(err: unknown, s: TrainingSession, limits: Pick<RunConfig, 'steps' | 'minutes'>): unknown {
  if (err instanceof WriteError) return stoppedByWrite(err, s.dir, s.step, limits);
  if (err instanceof SpnError && err.code === 'E_DIST' && s.world.writes) {
    const parts = [err.message, ...resumeParts(s.dir, s.step, limits, 'fix what stopped it', ' (on any number of ranks)')];
    return new SpnError('E_DIST', parts.join('; '), { cause: err });
  }
  return err;
}

/**
 * The one-line error of a run stopped by a file it could not write: the file and what happened,
 * where the run stopped, its last good checkpoint (name and step) and the command that resumes
 * it with the limits it ran under. `step` is null when the run stopped while opening.
 */
function stoppedByWrite(err: WriteError, dir: string, step: number | null, limits: Pick<RunConfig, 'steps' | 'minutes'>): WriteError {
  const parts = [err.message, ...resumeParts(dir, step, limits, writeRemedy(err))];
  return new WriteError(err.file, err.errno, parts.join('; '), { cause: err });
}

/** Where the run stopped, its last good checkpoint and how to resume it (or start it again). */
function resumeParts(dir: string, step: number | null, limits: Pick<RunConfig, 'steps' | 'minutes'>, remedy: string, how = ''): string[] {
  const hasRun = fs.existsSync(runFiles(dir).config); // a new run that failed to start removed its folder
  const where = step !== null ? `training stopped at step ${step}` : hasRun ? 'the run did not resume' : 'the run did not start';
  const parts = [where];
  if (hasRun) {
    const last = listCheckpoints(dir).at(-1);
    parts.push(last ? `the last good checkpoint is ${last} (step ${Number(last.slice(5))})` : 'it has no checkpoint yet (a resume starts it again from step 0)');
    const flags = [limits.steps !== null ? ` --steps ${limits.steps}` : '', limits.minutes !== null ? ` --minutes ${limits.minutes}` : ''].join('');
    parts.push(`${remedy}, then resume with: spn train --out ${shellQuote(dir)} --resume${flags}${how}`);
  } else {
    parts.push(`${remedy}, then start it again`);
  }
  return parts;
}

const shellQuote = (s: string) => (/^[\w/.:@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
