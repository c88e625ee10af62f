// The models a .spn file is coded with: one 'full' run, or a pipeline's chain of stages. For
// compression they are loaded as `spn eval` loads them; for decompression they must be the very
// same weights (sha256) computing the very same logits (the probe), or decoding refuses.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ArgError, ConfigError, FormatError, SpnError } from '../errors.js';
import * as torch from '../torch/index.js';
import { DecodePlan } from '../spn/decode.js';
import type { ModelConfig } from '../spn/config.js';
import type { SPN } from '../spn/model.js';
import { checkCheckpoint, listCheckpoints, loadModel, openCheckpoint, resolveCheckpoint, type ValidCheckpoint } from '../store/checkpoint.js';
import { loadPipeline, outputBits } from '../store/pipeline.js';
import { runFiles, type RunConfig } from '../store/run.js';
import type { Header, StageEntry } from './container.js';
import { probeHash, weightsHash } from './hash.js';

/** libtorch threads while coding: part of what fixes the numbers, recorded in every file. */
export const CODEC_THREADS = 1;

export interface CodecStage {
  /** The run folder (absolute) and the checkpoint inside it (relative, without extension). */
  run: string;
  checkpoint: string;
  step: number;
  ema: boolean;
  config: RunConfig;
  model: SPN;
  plan: DecodePlan;
  weights: string;
}

/** What the stages output: the final images. */
export interface ImageSpec {
  height: number;
  width: number;
  channels: number;
  bits: number;
}

export interface CodecModels {
  stages: CodecStage[];
  /** The pipeline file (absolute), or null for a single run. */
  pipeline: string | null;
  image: ImageSpec;
}

/** Where the models come from: one full run (folder or checkpoint) or a pipeline file. */
export type ModelSource = { run: string } | { pipeline: string };

export interface LoadOptions {
  ema?: boolean;
  which?: 'best' | 'latest';
}

function outputOf(m: ModelConfig): ImageSpec {
  return { height: m.height, width: m.width, channels: m.channels, bits: outputBits(m) };
}

/** The run folder a checkpoint path belongs to (…/run/checkpoints/step-…), or the folder itself. */
function runDirOf(target: string): string {
  const abs = path.resolve(target);
  if (fs.existsSync(abs) && fs.statSync(abs).isDirectory()) return abs;
  return path.dirname(path.dirname(abs.replace(/\.(json|safetensors)$/, '')));
}

/** A stage's model loaded and hashed, before its decode plan is built. */
type LoadedStage = Omit<CodecStage, 'plan'>;

/** Loads a checkpoint's model for coding: float32, in eval mode, with the sha256 of its weights. */
async function loadStage(run: string, checkpoint: string | ValidCheckpoint, ema: boolean): Promise<LoadedStage> {
  const checkpointBase = typeof checkpoint === 'string' ? checkpoint : checkpoint.base;
  const { model, config, step } = await loadModel(checkpoint, { ema, device: 'cpu' });
  if (model.dtype !== 'float32') {
    model.dispose();
    throw new ConfigError(`${checkpointBase}: the codec codes with float32 weights, this model is ${model.dtype}`);
  }
  model.eval();
  return { run, checkpoint: path.relative(run, checkpointBase), step, ema, config, model, weights: weightsHash(model) };
}

/** Builds the stage's decode plan (on the codec's thread count); disposes the model if that fails. */
function withPlan(s: LoadedStage): CodecStage {
  try {
    return { ...s, plan: torch.withThreads(CODEC_THREADS, () => new DecodePlan(s.model)) };
  } catch (err) {
    s.model.dispose();
    throw err;
  }
}

async function openStage(run: string, checkpoint: string | ValidCheckpoint, ema: boolean): Promise<CodecStage> {
  return withPlan(await loadStage(run, checkpoint, ema));
}

export function closeModels(m: CodecModels | CodecStage[]): void {
  for (const s of Array.isArray(m) ? m : m.stages) {
    s.plan.dispose();
    s.model.dispose();
  }
}

/** Loads the models to compress with. A single run must be a 'full' model. */
export async function openModels(src: ModelSource, o: LoadOptions = {}): Promise<CodecModels> {
  const ema = o.ema ?? true;
  const which = o.which ?? 'best';
  if ('run' in src) {
    const picked = openCheckpoint(src.run, which);
    const stage = await openStage(runDirOf(picked.base), picked, ema);
    if (stage.config.stage !== 'full') {
      closeModels([stage]);
      throw new ArgError(`${src.run} is a '${stage.config.stage}' upscaling stage: it codes only what it is given the rest of; compress with a pipeline that starts with a 'full' model (--pipeline <file>)`);
    }
    return { stages: [stage], pipeline: null, image: outputOf(stage.config.model) };
  }
  const p = loadPipeline(src.pipeline);
  const stages: CodecStage[] = [];
  try {
    for (const s of p.stages) stages.push(await openStage(s.dir, openCheckpoint(s.dir, which), ema));
  } catch (err) {
    closeModels(stages);
    throw err;
  }
  return { stages, pipeline: path.resolve(src.pipeline), image: { height: p.shape[0], width: p.shape[1], channels: p.shape[2], bits: p.bits } };
}

/** JSON with sorted keys: two configs are equal when these strings are. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

function configDiff(a: ModelConfig, b: ModelConfig): string {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return keys
    .filter((k) => canonical((a as Record<string, unknown>)[k]) !== canonical((b as Record<string, unknown>)[k]))
    .map((k) => `${k} ${canonical((a as Record<string, unknown>)[k])} (file) vs ${canonical((b as Record<string, unknown>)[k])}`)
    .join(', ');
}

/** Checkpoints of a run folder to try, the recorded one first. */
function candidates(dir: string, recorded: string): string[] {
  const folder = runFiles(dir).checkpoints;
  const list = [path.join(dir, recorded), path.join(folder, 'best'), ...listCheckpoints(dir).reverse().map((n) => path.join(folder, n))];
  return [...new Set(list)].filter((b) => fs.existsSync(`${b}.json`) && fs.existsSync(`${b}.safetensors`));
}

export interface DecodeModelOptions {
  /** The .spn file, for messages. */
  file: string;
  /** Override the run folder of a single-stage file. */
  run?: string;
  /** Override the run folders with a pipeline file's. */
  pipeline?: string;
}

/** The run folders to decode with: the override (--run or --pipeline) or the recorded ones. */
function decodeDirs(n: number, o: DecodeModelOptions, recorded: string[] | null): string[] {
  if (o.pipeline !== undefined && o.run !== undefined) throw new ArgError(`give --run ${o.run} or --pipeline ${o.pipeline}, not both`);
  if (o.pipeline !== undefined) {
    const dirs = loadPipeline(o.pipeline).stages.map((s) => s.dir);
    if (dirs.length !== n) throw new ConfigError(`${o.file} was coded with ${n} stage(s); ${o.pipeline} has ${dirs.length}`);
    return dirs;
  }
  if (o.run !== undefined) {
    if (n !== 1) throw new ArgError(`${o.file} was coded with a ${n}-stage pipeline; pass --pipeline <file>, not --run`);
    return [runDirOf(resolveCheckpoint(o.run))]; // refuses a path that is neither a run folder nor a checkpoint
  }
  if (!recorded) {
    throw new ArgError(`${o.file} names its model${n > 1 ? 's' : ''} only by the hash of the weights; pass ${n > 1 ? '--pipeline <file>' : '--run <dir> (the run folder it was compressed with)'}`);
  }
  return recorded;
}

/** Opens stages one by one; closes the ones opened when one fails. */
async function openAll(n: number, open: (i: number) => Promise<CodecStage>): Promise<CodecStage[]> {
  const stages: CodecStage[] = [];
  try {
    for (let i = 0; i < n; i++) stages.push(await open(i));
  } catch (err) {
    closeModels(stages);
    throw err;
  }
  return stages;
}

/**
 * Loads, for each stage of a version 1 file, a checkpoint with exactly the recorded weights
 * (sha256), checks its config and that this machine computes the recorded probe logits. Any
 * mismatch is an error naming the file, the stage and what differs. Call it inside
 * torch.withThreads(CODEC_THREADS) (decompressBytes does): the probe is computed on the current
 * thread count.
 */
export async function openModelsFor(h: Header, o: DecodeModelOptions): Promise<CodecModels> {
  const n = h.stages.length;
  const dirs = decodeDirs(n, o, h.stages.map((s) => s.run));
  const stages = await openAll(n, async (i) => {
    const entry = h.stages[i]!;
    const s = await matchStage(entry, dirs[i]!, i, o.file);
    try {
      checkProbe(s, entry.probe, h.batch, `${o.file}: stage ${i + 1} (${path.join(dirs[i]!, entry.checkpoint)})`);
    } catch (err) {
      closeModels([s]);
      throw err;
    }
    return s;
  });
  const last = stages[n - 1]!.config.model;
  return { stages, pipeline: h.pipeline, image: outputOf(last) };
}

/** What a version 2 file says of a stage: the start of its weights' sha256 and of its probe's (hex). */
export interface StageIdHex {
  weights: string;
  probe: string;
}

/**
 * The models of a version 2 file, which names them only by their weights: each stage's run folder
 * (--run or --pipeline) is searched for a checkpoint whose weights' sha256 starts with the id.
 * The probes are checked by checkProbes once the caller knows the batch they were computed for.
 */
export async function openModelsById(ids: StageIdHex[], ema: boolean, o: DecodeModelOptions): Promise<CodecModels> {
  const dirs = decodeDirs(ids.length, o, null);
  const stages = await openAll(ids.length, (i) => matchStage({ weights: ids[i]!.weights, ema }, dirs[i]!, i, o.file));
  const last = stages[stages.length - 1]!;
  return { stages, pipeline: o.pipeline === undefined ? null : path.resolve(o.pipeline), image: outputOf(last.config.model) };
}

/** Each stage's probe on m images against the recorded one (a prefix of it, hex); throws naming the file. */
export function checkProbes(models: CodecModels, ids: StageIdHex[], m: number, file: string): void {
  models.stages.forEach((s, i) => checkProbe(s, ids[i]!.probe, m, `${file}: stage ${i + 1} (${path.join(s.run, s.checkpoint)})`));
}

function checkProbe(s: CodecStage, recorded: string, m: number, name: string): void {
  const probe = probeHash(s.model, s.plan, m);
  if (!probe.startsWith(recorded)) {
    throw new FormatError(
      `${name}: this machine computes the model's logits differently from the one that wrote the file ` +
        `(probe sha256 ${probe.slice(0, 16)}… vs ${recorded.slice(0, 16)}…): another libtorch build, BLAS or CPU kernels; decoding here would give wrong pixels`,
    );
  }
}

/** What a file records of a stage's checkpoint: its weights' sha256 (all of it, or its start), and in version 1 more. */
interface StageWant {
  weights: string;
  ema: boolean;
  /** Version 1: the checkpoint coded with (tried first), its step and the model config. */
  checkpoint?: string;
  step?: number;
  model?: ModelConfig;
}

/**
 * The checkpoint of `dir` with the stage's recorded weights: the candidates in order (the recorded
 * one first, else the best); one that cannot be loaded (damaged, or not float32) is skipped with
 * its reason, as is one with other weights; only the match gets a decode plan.
 */
async function matchStage(want: StageWant, dir: string, i: number, file: string): Promise<CodecStage> {
  const name = `${file}: stage ${i + 1}`;
  if (!fs.existsSync(runFiles(dir).config)) {
    throw new ConfigError(`${name} was coded with the run ${dir}, which is not there (no ${runFiles(dir).config}); pass --run <dir> or --pipeline <file>`);
  }
  const tried: string[] = [];
  for (const base of candidates(dir, want.checkpoint ?? path.join('checkpoints', 'best'))) {
    const rel = path.relative(dir, base);
    const check = checkCheckpoint(base);
    if (!check.ok) {
      tried.push(`${rel} (damaged: ${check.reason})`);
      continue;
    }
    let loaded: LoadedStage;
    try {
      loaded = await loadStage(dir, check, want.ema);
    } catch (err) {
      if (!(err instanceof SpnError)) throw err;
      tried.push(`${rel} (not loaded: ${err.message})`);
      continue;
    }
    const cfg = loaded.config.model;
    if (want.model && canonical(cfg) !== canonical(want.model)) {
      loaded.model.dispose();
      throw new FormatError(`${name}: the model of ${base} differs from the one the file was coded with: ${configDiff(want.model, cfg)}`);
    }
    if (!loaded.weights.startsWith(want.weights)) {
      tried.push(`${rel} (step ${loaded.step}, sha256 ${loaded.weights.slice(0, 12)}…)`);
      loaded.model.dispose();
      continue;
    }
    return withPlan(loaded);
  }
  const what = want.checkpoint !== undefined ? `${want.checkpoint}, step ${want.step}, sha256 ${want.weights.slice(0, 12)}…` : `sha256 ${want.weights}…`;
  throw new FormatError(
    `${name}: no checkpoint of ${dir} has the ${want.ema ? 'EMA ' : ''}weights the file was coded with (${what}); ` +
      `tried ${tried.length ? tried.join(', ') : 'none (no checkpoints)'}`,
  );
}

/**
 * The header entry of a loaded stage (probe computed for the file's batch size, on the current
 * thread count: call it inside torch.withThreads(CODEC_THREADS), as compressImages does).
 */
export function stageEntry(s: CodecStage, batch: number): StageEntry {
  const probe = probeHash(s.model, s.plan, batch);
  return { run: s.run, checkpoint: s.checkpoint, step: s.step, ema: s.ema, model: s.config.model, weights: s.weights, probe };
}
