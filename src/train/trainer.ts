// The training loop, flat and visible: step, log, evaluate, sample, checkpoint; then finish.
// What each of those does is in session.ts; what the options mean is in options.ts.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { WriteError } from '../errors.js';
import { writeRemedy } from '../fsutil.js';
import * as torch from '../torch/index.js';
import { listCheckpoints } from './checkpoint.js';
import { createProgress, formatDuration } from './progress.js';
import { validateTrainOptions, type TrainOptions } from './options.js';
import { threadWork, TrainingSession, useBf16 } from './session.js';
import { runFiles, type RunConfig, type RunStatus } from './run.js';

export type { TrainOptions, TrainProgress } from './options.js';
export { threadWork, useBf16 };

export interface TrainResult {
  dir: string;
  step: number;
  state: RunStatus['state'];
  lastTestBpd: number | null;
  bestTestBpd: number | null;
  elapsedS: number;
}

const LOG_EVERY = 10; // steps per train record

/** Trains a model and writes its run folder (docs/run-folder.md). */
export async function train(o: TrainOptions): Promise<TrainResult> {
  validateTrainOptions(o); // nothing is written before this passes
  const log = (m: string) => o.quiet || process.stderr.write(m + '\n');
  const warn = (m: string) => process.stderr.write(`warning: ${m}\n`); // even with --quiet: a damaged checkpoint was skipped
  let s: TrainingSession;
  try {
    s = await TrainingSession.open(o, log, warn);
  } catch (err) {
    throw err instanceof WriteError ? stoppedByWrite(err, path.resolve(o.out), null, { steps: o.steps ?? null, minutes: o.minutes ?? null }) : err;
  }
  const { cfg } = s;
  if (cfg.train.precision === 'bf16' && !s.bf16) log('precision: bf16 asked for, but this CPU has no native bf16 (AMX or AVX512-BF16): training in fp32');
  const threads = torch.threadsFor(threadWork(s.bf16, s.onCuda), o.threads);
  if (!s.onCuda) log(`precision: ${s.bf16 ? 'bf16 autocast' : 'fp32'}, ${threads} CPU thread${threads > 1 ? 's' : ''}`);

  // Ctrl-C or SIGTERM: finish the step, write a checkpoint, stop. A second Ctrl-C quits at once.
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log('\ninterrupted: writing a checkpoint, then exiting (Ctrl-C again to quit now)');
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

  const bar = createProgress(cfg.name, cfg.steps ?? 1000, { quiet: o.quiet || o.onProgress !== undefined });
  const threadsBefore = torch.getNumThreads();
  torch.setNumThreads(threads);
  let [lastEval, lastCkpt, lastSample] = [s.elapsed(), s.elapsed(), s.elapsed()];
  let windowStart = Date.now();
  let windowSubpixels = 0;
  let state: RunStatus['state'] = 'done';
  let failure: unknown = null;
  try {
    s.writeStatus('running', null);
    s.model.train();
    while (!s.done()) {
      if (interrupted || (o.interruptAtStep !== undefined && s.step >= o.interruptAtStep)) {
        state = 'stopped';
        break;
      }
      s.trainStep(await s.batches.next());
      windowSubpixels += s.subpixelsPerStep;
      if (s.step % LOG_EVERY === 0) {
        const now = Date.now();
        const rec = s.logTrain(windowSubpixels / ((now - windowStart) / 1000));
        o.onLog?.(rec);
        bar.update(cfg.steps ? s.step : Math.round(s.progress() * 1000), {
          step: String(s.step), bpd: (rec.loss_bpd as number).toFixed(3), 'test bpd': s.lastTestBpd === null ? '-' : s.lastTestBpd.toFixed(3),
          'subpx/s': `${((rec.subpixels_per_s as number) / 1000).toFixed(1)}k`, ETA: formatDuration(etaS() ?? Infinity),
        });
        o.onProgress?.({
          step: s.step, totalSteps: cfg.steps, fraction: s.progress(), lossBpd: rec.loss_bpd as number, testBpd: s.lastTestBpd,
          subpixelsPerS: rec.subpixels_per_s as number, etaS: etaS(), elapsedS: s.elapsed(),
        });
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
    torch.setNumThreads(threadsBefore);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
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
      // A file that could not be written stops the run with one line: the file, what happened,
      // the last good checkpoint and how to resume. A libtorch error arrives as
      // SpnError('E_NATIVE'); anything else is a bug in this code and travels on as it is.
      const err = failure instanceof WriteError ? stoppedByWrite(failure, s.dir, s.step, cfg) : failure;
      try {
        s.writeStatus('failed', null, err instanceof Error ? err.message : String(err));
      } catch {
        // Best effort: on a full disk status.json may fail too; the error below says what happened.
      }
      throw err;
    }
  } finally {
    s.dispose();
  }
  const bpd = (v: number | null) => (v === null ? '-' : v.toFixed(4));
  log(`${state}: step ${s.step}, ${formatDuration(s.elapsed())}, test bpd ${bpd(s.lastTestBpd)} (best ${bpd(s.bestTestBpd)}) -> ${s.dir}`);
  return { dir: s.dir, step: s.step, state, lastTestBpd: s.lastTestBpd, bestTestBpd: s.bestTestBpd, elapsedS: s.elapsed() };
}

/**
 * The one-line error of a run stopped by a file it could not write: the file and what happened,
 * where the run stopped, its last good checkpoint (name and step) and the command that resumes
 * it with the limits it ran under. `step` is null when the run stopped while opening.
 */
function stoppedByWrite(err: WriteError, dir: string, step: number | null, limits: Pick<RunConfig, 'steps' | 'minutes'>): WriteError {
  const hasRun = fs.existsSync(runFiles(dir).config); // a new run that failed to start removed its folder
  const where = step !== null ? `training stopped at step ${step}` : hasRun ? 'the run did not resume' : 'the run did not start';
  const parts = [err.message, where];
  if (hasRun) {
    const last = listCheckpoints(dir).at(-1);
    parts.push(last ? `the last good checkpoint is ${last} (step ${Number(last.slice(5))})` : 'it has no checkpoint yet (a resume starts it again from step 0)');
    const flags = [limits.steps !== null ? ` --steps ${limits.steps}` : '', limits.minutes !== null ? ` --minutes ${limits.minutes}` : ''].join('');
    parts.push(`${writeRemedy(err)}, then resume with: spn train --out ${shellQuote(dir)} --resume${flags}`);
  } else {
    parts.push(`${writeRemedy(err)}, then start it again`);
  }
  return new WriteError(err.file, err.errno, parts.join('; '), { cause: err });
}

const shellQuote = (s: string) => (/^[\w/.:@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
