// `spn eval <run-dir|checkpoint>` (definition in eval.ts): the exact negative log-likelihood of
// a trained model on a dataset split, in bits per dimension, with the breakdown per slice. On a
// run folder's full split it also writes the run's eval.json (docs/run-folder.md). An upscaling
// stage's number is over the sub-pixels it models only. `spn eval --pipeline p.json` gives the
// exact bits/dim of a chain of stages' final images, with each stage's share (store/pipeline.ts).
import * as fs from 'node:fs';
import { ArgError } from '../errors.js';
import type { ImageSet } from '../data/types.js';
import { evalPipeline, loadPipeline, type PipelineEvalResult } from '../store/pipeline.js';
import { loadModel, openCheckpoint } from '../store/checkpoint.js';
import { evaluate, type EvalResult } from '../store/evaluate.js';
import { createProgress } from '../train/progress.js';
import { runFiles, writeJson, type RunConfig } from '../store/run.js';
import { loadRunSplit } from '../store/data.js';
import { checkDevice } from '../train/options.js';
import type { EvalCommandOptions } from './eval.js';
import type { ModelTarget } from './options.js';
import { setNumThreads, threadsFor } from '../torch/threads.js';

export interface EvalReport extends EvalResult {
  split: 'test' | 'train';
  /** The checkpoint's training step. */
  step: number;
  checkpoint: string;
  data: string;
  /** The eval.json written, if any. */
  written: string | null;
  stage: RunConfig['stage'];
  /** What the bpd is over, in words: all sub-pixels, or the part an upscaling stage models. */
  modelled: string;
}

function modelledPart(cfg: RunConfig): string {
  const m = cfg.model;
  if (m.stage === 'size') return `slices 1..${m.scale * m.scale - 1} given slice 0`;
  if (m.stage === 'depth') return `the low ${m.bits} bits given the high ${m.givenBits}`;
  return 'all sub-pixels';
}

function checkOptions(o: EvalCommandOptions): void {
  if (o.split !== 'test' && o.split !== 'train') throw new ArgError(`--split ${String(o.split)}: expected test or train`);
  if (o.which !== 'best' && o.which !== 'latest') throw new ArgError(`--which ${String(o.which)}: expected best or latest`);
  checkDevice(o.device);
  if (!Number.isInteger(o.batchSize) || o.batchSize < 1) throw new ArgError(`--batch-size ${o.batchSize}: expected a positive integer`);
  if (o.limit !== undefined && (!Number.isInteger(o.limit) || o.limit < 1)) throw new ArgError(`--limit ${o.limit}: expected a positive integer`);
}

/** The run's own split (store/data.ts), with the command's options and log. */
function loadSplit(cfg: RunConfig, o: EvalCommandOptions, log: (m: string) => void): Promise<{ set: ImageSet; spec: string }> {
  return loadRunSplit(cfg, { split: o.split, ...(o.data !== undefined ? { data: o.data } : {}), ...(o.size !== undefined ? { size: o.size } : {}), ...(o.cacheDir ? { cacheDir: o.cacheDir } : {}), onProgress: log });
}

/** Evaluates one model (a run folder or a checkpoint); writes eval.json on a run's full split. */
export async function evalRun(target: string, o: EvalCommandOptions): Promise<EvalReport> {
  checkOptions(o);
  const log = (m: string) => o.quiet || process.stderr.write(m + '\n');
  const picked = openCheckpoint(target, o.which);
  const checkpoint = picked.base;
  const { model, config, step } = await loadModel(picked, { ema: o.ema, device: o.device });
  try {
    const { set, spec } = await loadSplit(config, o, log);
    const n = Math.min(set.n, o.limit ?? set.n);
    const bar = createProgress(`eval ${o.split}`, n, { quiet: o.quiet });
    let r: EvalResult;
    try {
      r = evaluate(model, set, { limit: n, batchSize: o.batchSize, onProgress: (done, total) => bar.update(done, { images: `${done}/${total}` }) });
    } finally {
      bar.stop();
    }
    // Only a full split of the run's own data describes the run.
    const isRun = fs.existsSync(target) && fs.statSync(target).isDirectory();
    const ownData = o.data === undefined || o.data === config.data;
    let written: string | null = null;
    if (isRun && ownData && o.limit === undefined) {
      written = runFiles(target).eval;
      writeJson(written, { bpd: r.bpd, images: r.images, per_slice_bpd: r.per_slice_bpd, split: o.split, step });
    }
    return { ...r, split: o.split, step, checkpoint, data: spec, written, stage: config.stage, modelled: modelledPart(config) };
  } finally {
    model.dispose();
  }
}

/** The documented JSON ({bpd, images, per_slice_bpd}) and the details after it. */
export function reportJson(r: EvalReport): Record<string, unknown> {
  return {
    bpd: r.bpd, images: r.images, per_slice_bpd: r.per_slice_bpd,
    nats: r.nats, per_slice_nats: r.per_slice_nats, dims: r.dims,
    split: r.split, step: r.step, checkpoint: r.checkpoint, data: r.data, stage: r.stage,
  };
}

export function formatReport(r: EvalReport): string {
  const lines = [
    r.stage === 'full'
      ? `${r.checkpoint} (step ${r.step}) on ${r.data} ${r.split}: ${r.bpd.toFixed(4)} bits/dim over ${r.images} images`
      : `${r.checkpoint} (step ${r.step}, a '${r.stage}' upscaling stage) on ${r.data} ${r.split}: ${r.bpd.toFixed(4)} bits/dim of the modelled part (${r.modelled}) over ${r.images} images`,
    `per slice: ${r.per_slice_bpd.map((b, k) => `${k}: ${b === null ? 'given' : b.toFixed(4)}`).join('  ')}`,
  ];
  if (r.written) lines.push(`wrote ${r.written}`);
  return lines.join('\n') + '\n';
}

export interface PipelineEvalReport extends PipelineEvalResult {
  pipeline: string;
  split: 'test' | 'train';
  data: string;
}

/** Evaluates a pipeline on the final images: the data of its last stage unless --data says. */
export async function evalPipelineRun(file: string, o: EvalCommandOptions): Promise<PipelineEvalReport> {
  checkOptions(o);
  const log = (m: string) => o.quiet || process.stderr.write(m + '\n');
  const p = loadPipeline(file);
  const { set, spec } = await loadSplit(p.stages[p.stages.length - 1]!.config, o, log);
  const n = Math.min(set.n, o.limit ?? set.n);
  const bar = createProgress(`eval ${o.split}`, n * p.stages.length, { quiet: o.quiet });
  try {
    const r = await evalPipeline(p, set, {
      limit: n, batchSize: o.batchSize, device: o.device, ema: o.ema, which: o.which,
      onProgress: (i, done) => bar.update(i * n + done, { stage: `${i + 1}/${p.stages.length}`, images: `${done}/${n}` }),
    });
    return { ...r, pipeline: file, split: o.split, data: spec };
  } finally {
    bar.stop();
  }
}

export function pipelineReportJson(r: PipelineEvalReport): Record<string, unknown> {
  return { bpd: r.bpd, images: r.images, stages: r.stages, nats: r.nats, dims: r.dims, split: r.split, pipeline: r.pipeline, data: r.data };
}

export function formatPipelineReport(r: PipelineEvalReport): string {
  const last = r.stages[r.stages.length - 1]!;
  const lines = [`${r.pipeline} on ${r.data} ${r.split}: ${r.bpd.toFixed(4)} bits/dim of the final ${last.shape.join('×')} ${last.bits}-bit images over ${r.images} images (exact: the sum of the stages' NLLs)`];
  r.stages.forEach((s, i) => {
    lines.push(`  stage ${i + 1} ${s.run} (${s.stage}, ${s.shape.join('×')} ${s.bits}-bit): ${s.bpd_share.toFixed(4)} bits/dim share (${((100 * s.nats) / r.nats).toFixed(1)}%); ${s.bpd.toFixed(4)} bits/dim over its own ${s.dims} sub-pixels`);
  });
  return lines.join('\n') + '\n';
}

/** The action of `spn eval`: prints the report (text or JSON) of a run, a checkpoint or a pipeline. */
export async function run(what: ModelTarget, opts: EvalCommandOptions): Promise<void> {
  setNumThreads(threadsFor('ops', opts.threads));
  if ('pipeline' in what) {
    const report = await evalPipelineRun(what.pipeline, opts);
    process.stdout.write(opts.json ? JSON.stringify(pipelineReportJson(report)) + '\n' : formatPipelineReport(report));
    return;
  }
  const report = await evalRun(what.target, opts);
  process.stdout.write(opts.json ? JSON.stringify(reportJson(report)) + '\n' : formatReport(report));
}
