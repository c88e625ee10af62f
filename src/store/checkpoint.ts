// Self-describing checkpoints: weights, EMA weights, optimizer state and the RNG state in one
// safetensors file, and a JSON sidecar with the step, data position, resolved config, best test
// bits/dim and the sha256 and size of the safetensors file.
//
// A checkpoint is a pair. Both files are written to temp files first; only when both are on disk
// do they take their names (the old sidecar of the same name goes first), so a failed write
// leaves no half pair and a crash at worst leaves a tensor file without its sidecar, which is
// ignored. A checkpoint is listed only when both files are present and the sidecar parses; it
// is trusted (resumed from, loaded) only when it validates: checkCheckpoint below.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FormatError, SpnError } from '../errors.js';
import { stageFile, toWriteError, type StagedFile } from '../fsutil.js';
import * as torch from '../torch/index.js';
import { checkSafetensors, decodeSafetensors, encodeSafetensors } from '../torch/safetensors.js';
import type { AdamW, EMA } from '../torch/optim/index.js';
import type { BatchPosition } from '../data/batches.js';
import { SPN } from '../spn/model.js';
import { readRunConfig, RunConfig, runFiles } from './run.js';

export interface CheckpointMeta {
  format: 'spn-checkpoint-1';
  step: number;
  data_position: BatchPosition;
  best_test_bpd: number | null;
  elapsed_s: number;
  config: RunConfig;
  /** Sum and count of the training losses since the last train record (exact resume of the log). */
  loss_window?: { sum: number; count: number };
  /**
   * Processes (data-parallel ranks) that trained up to this checkpoint; absent before it was
   * recorded (one). A run resumes on any number of ranks: the data position is global.
   */
  world_size?: number;
  /** The .safetensors file as written: its sha256 (hex) and size. Absent in checkpoints written before it was recorded. */
  checksum?: { sha256: string; bytes: number };
}

export const checkpointName = (step: number) => `step-${String(step).padStart(8, '0')}`;
const STEP_NAME = /^step-(\d{8})$/;

/** Where damaged checkpoints are moved (never deleted). */
export const damagedFolder = (dir: string) => path.join(runFiles(dir).checkpoints, 'damaged');

/** What a checkpoint holds: the weights, their EMA, the optimizer's state and the run's counters. */
export interface CheckpointParts {
  model: SPN;
  ema: EMA;
  optim: AdamW;
  meta: CheckpointMeta;
}

export function saveCheckpoint(dir: string, name: string, s: CheckpointParts): void {
  const folder = runFiles(dir).checkpoints;
  const bytes = torch.tidy(() => {
    const tensors: Record<string, torch.Tensor> = {};
    for (const [k, v] of Object.entries(s.model.stateDict())) tensors[`model.${k}`] = v.detach().to('cpu');
    for (const [k, v] of Object.entries(s.ema.stateDict())) tensors[`ema.${k}`] = v.to('cpu');
    for (const [k, v] of Object.entries(s.optim.stateDict())) tensors[`optim.${k}`] = v.to('cpu');
    tensors['rng_state'] = torch.getRngState();
    return encodeSafetensors(tensors, { format: 'spn-checkpoint-1', step: String(s.meta.step) });
  });
  const meta: CheckpointMeta = { ...s.meta, checksum: { sha256: sha256(bytes), bytes: bytes.byteLength } };
  const stFile = path.join(folder, `${name}.safetensors`);
  const jsonFile = path.join(folder, `${name}.json`);
  // Both files on disk under temp names first: a full disk fails here, before anything is replaced.
  const tensorsPart = stageFile(stFile, bytes);
  let sidecar: StagedFile;
  try {
    sidecar = stageFile(jsonFile, JSON.stringify(meta, null, 2) + '\n');
  } catch (err) {
    tensorsPart.discard();
    throw err;
  }
  // Then into place. An older pair of the same name (best, or a step written again) loses its
  // sidecar first, so no moment pairs the new tensors with the old sidecar.
  try {
    try {
      fs.rmSync(jsonFile, { force: true });
    } catch (err) {
      throw toWriteError(jsonFile, err);
    }
    tensorsPart.commit();
  } catch (err) {
    tensorsPart.discard();
    sidecar.discard();
    throw err;
  }
  try {
    sidecar.commit();
  } catch (err) {
    removeQuietly(stFile); // no half pair
    throw err;
  }
}

function removeQuietly(file: string): void {
  try {
    fs.rmSync(file, { force: true });
  } catch {
    // the error being reported matters more
  }
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** Names of step checkpoints with both files present, oldest first (sidecars not read). */
function stepPairs(folder: string): string[] {
  let files: string[];
  try {
    files = fs.readdirSync(folder);
  } catch {
    return [];
  }
  const set = new Set(files);
  return files
    .filter((f) => /^step-\d{8}\.json$/.test(f) && set.has(f.replace(/\.json$/, '.safetensors')))
    .map((f) => f.replace(/\.json$/, ''))
    .sort();
}

function sidecarParses(file: string): boolean {
  try {
    const v: unknown = JSON.parse(fs.readFileSync(file, 'utf8'));
    return v !== null && typeof v === 'object' && !Array.isArray(v);
  } catch {
    return false;
  }
}

/** Step checkpoints, oldest first, excluding "best": those with both files whose sidecar parses. */
export function listCheckpoints(dir: string): string[] {
  const folder = runFiles(dir).checkpoints;
  return stepPairs(folder).filter((name) => sidecarParses(path.join(folder, `${name}.json`)));
}

/**
 * Keeps the newest `keep` step checkpoints (best.* is separate and always kept). Older files
 * that a killed process left without their partner go too; an older pair whose sidecar does not
 * parse is kept (it is damaged, and damaged checkpoints are never deleted).
 */
export function pruneCheckpoints(dir: string, keep = 2): void {
  const folder = runFiles(dir).checkpoints;
  const all = listCheckpoints(dir);
  const kept = all.slice(-keep);
  if (!kept.length) return;
  const oldest = kept[0]!;
  const listed = new Set(all);
  const pairs = new Set(stepPairs(folder));
  const old = fs.readdirSync(folder)
    .map((f) => /^(step-\d{8})\.(json|safetensors)$/.exec(f))
    .filter((m): m is RegExpExecArray => m !== null && m[1]! < oldest && (listed.has(m[1]!) || !pairs.has(m[1]!)))
    .sort((a, b) => (a[2] === b[2] ? 0 : a[2] === 'json' ? -1 : 1)); // sidecars first: never a "complete" half
  for (const m of old) {
    try {
      fs.rmSync(path.join(folder, m[0]), { force: true });
    } catch {
      // An old checkpoint that cannot be removed costs space, not the run; the next prune tries again.
    }
  }
}

export interface LoadedCheckpoint {
  meta: CheckpointMeta;
  tensors: Record<string, torch.Tensor>;
}

/** The outcome of checking a checkpoint: its sidecar and bytes, or why it cannot be trusted. */
export type CheckpointCheck =
  | { ok: true; base: string; meta: CheckpointMeta; bytes: Buffer }
  | { ok: false; base: string; code: 'E_IO' | 'E_FORMAT'; reason: string };
/** A checkpoint that validated: its sidecar and the bytes of its tensors. */
export type ValidCheckpoint = Extract<CheckpointCheck, { ok: true }>;

/**
 * Validates the checkpoint at `base` (a path without extension): both files present, the
 * sidecar a valid checkpoint sidecar (of the step its name says), the safetensors header and
 * sizes consistent, of the sidecar's step, and the size and sha256 recorded at write time
 * matching (checkpoints written before those were recorded are checked without them).
 */
export function checkCheckpoint(base: string): CheckpointCheck {
  const name = path.basename(base);
  const stFile = `${base}.safetensors`;
  const jsonFile = `${base}.json`;
  const bad = (code: 'E_IO' | 'E_FORMAT', reason: string): CheckpointCheck => ({ ok: false, base, code, reason });
  for (const f of [stFile, jsonFile]) if (!fs.existsSync(f)) return bad('E_IO', `${path.basename(f)} is missing`);
  let text: string;
  let bytes: Buffer;
  try {
    text = fs.readFileSync(jsonFile, 'utf8');
    bytes = fs.readFileSync(stFile);
  } catch (err) {
    return bad('E_IO', `cannot be read: ${(err as Error).message}`);
  }
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(text) as CheckpointMeta;
  } catch (err) {
    return bad('E_FORMAT', `${name}.json is not valid JSON (${(err as Error).message})`);
  }
  if (meta === null || typeof meta !== 'object' || meta.format !== 'spn-checkpoint-1') {
    return bad('E_FORMAT', `${name}.json is not an spn checkpoint sidecar (format '${String((meta as { format?: unknown } | null)?.format)}', expected 'spn-checkpoint-1')`);
  }
  const cfg = RunConfig.safeParse(meta.config);
  if (!cfg.success) return bad('E_FORMAT', `${name}.json has an invalid config: ${cfg.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  meta.config = cfg.data;
  if (!Number.isSafeInteger(meta.step) || meta.step < 0) return bad('E_FORMAT', `${name}.json has step ${JSON.stringify(meta.step)}, expected a count`);
  const named = STEP_NAME.exec(name);
  if (named && Number(named[1]) !== meta.step) return bad('E_FORMAT', `${name}.json is of step ${meta.step}, its name says ${Number(named[1])}`);
  const sum = meta.checksum;
  if (sum !== undefined && (typeof sum?.sha256 !== 'string' || !Number.isSafeInteger(sum.bytes))) {
    return bad('E_FORMAT', `${name}.json has a checksum ${JSON.stringify(sum)}, expected {sha256, bytes}`);
  }
  if (sum && bytes.byteLength !== sum.bytes) {
    const how = bytes.byteLength < sum.bytes ? 'cut short: a truncated or partly copied file' : 'longer than written';
    return bad('E_FORMAT', `${name}.safetensors holds ${bytes.byteLength} bytes, its sidecar recorded ${sum.bytes} (${how})`);
  }
  let metadata: Record<string, string>;
  try {
    metadata = checkSafetensors(bytes, `${name}.safetensors`).metadata;
  } catch (err) {
    if (!(err instanceof FormatError)) throw err;
    return bad('E_FORMAT', err.message);
  }
  if (metadata.step !== undefined && metadata.step !== String(meta.step)) {
    return bad('E_FORMAT', `${name}.safetensors is of step ${metadata.step}, its sidecar of step ${meta.step}`);
  }
  if (sum && sha256(bytes) !== sum.sha256) {
    return bad('E_FORMAT', `${name}.safetensors does not match the sha256 its sidecar recorded (the file changed after it was written)`);
  }
  return { ok: true, base, meta, bytes };
}

/** The tensors of a validated checkpoint, on `device`; the caller owns (and disposes) them. */
export function decodeCheckpoint(c: ValidCheckpoint, device: string): LoadedCheckpoint {
  const { tensors } = decodeSafetensors(c.bytes, { device, source: `${c.base}.safetensors` });
  return { meta: c.meta, tensors };
}

const warnToStderr = (m: string) => {
  process.stderr.write(`spn: warning: ${m}\n`);
};

/**
 * The checkpoint to use from a run folder: 'best' when asked and it validates, else the newest
 * step checkpoint that validates. Each one skipped is reported through `warn` with its reason.
 */
function pickFromRun(dir: string, which: 'latest' | 'best', warn: (m: string) => void): ValidCheckpoint {
  const folder = runFiles(dir).checkpoints;
  const skipped: string[] = [];
  const skip = (c: Extract<CheckpointCheck, { ok: false }>) => {
    skipped.push(`${path.basename(c.base)} (${c.reason})`);
    warn(`skipping checkpoint ${c.base}: ${c.reason}`);
  };
  if (which === 'best' && fs.existsSync(path.join(folder, 'best.json'))) {
    const c = checkCheckpoint(path.join(folder, 'best'));
    if (c.ok) return c;
    skip(c);
  }
  const names = stepPairs(folder);
  for (const name of [...names].reverse()) {
    const c = checkCheckpoint(path.join(folder, name));
    if (c.ok) return c;
    skip(c);
  }
  if (!skipped.length) throw new SpnError('E_IO', `run folder ${dir} has no complete checkpoint in ${folder}`);
  throw new SpnError('E_FORMAT', `run folder ${dir} has no checkpoint that validates: ${skipped.join('; ')}`);
}

/**
 * Resolves a run folder (the newest valid checkpoint, or best with which='best') or a checkpoint
 * path. A damaged checkpoint of a run folder is skipped with a message through `o.warn`
 * (default: a warning on stderr).
 */
export function resolveCheckpoint(target: string, which: 'latest' | 'best' = 'latest', o: { warn?: (m: string) => void } = {}): string {
  if (isDir(target)) return pickFromRun(target, which, o.warn ?? warnToStderr).base;
  return checkpointBase(target);
}

/**
 * The checkpoint of a run folder (as resolveCheckpoint picks it) or at a checkpoint path,
 * validated, with its bytes: read and checked once, then loaded with decodeCheckpoint or
 * loadModel. A damaged checkpoint path is an error naming the file and what is wrong.
 */
export function openCheckpoint(target: string, which: 'latest' | 'best' = 'latest', o: { warn?: (m: string) => void } = {}): ValidCheckpoint {
  return isDir(target) ? pickFromRun(target, which, o.warn ?? warnToStderr) : validated(checkpointBase(target));
}

const isDir = (target: string) => fs.existsSync(target) && fs.statSync(target).isDirectory();

function validated(base: string): ValidCheckpoint {
  const c = checkCheckpoint(base);
  if (!c.ok) throw new SpnError(c.code, `checkpoint ${base} cannot be used: ${c.reason}`);
  return c;
}

function checkpointBase(target: string): string {
  const base = target.replace(/\.(json|safetensors)$/, '');
  if (!fs.existsSync(`${base}.json`) || !fs.existsSync(`${base}.safetensors`)) {
    throw new SpnError('E_IO', `${target} is neither a run folder nor a checkpoint (expected ${base}.json and ${base}.safetensors)`);
  }
  return base;
}

/** Reads a checkpoint (a path without extension) after validating it: a damaged one is an error naming the file and what is wrong. */
export function readCheckpoint(base: string, device = 'cpu'): LoadedCheckpoint {
  return decodeCheckpoint(validated(base), device);
}

/**
 * For --resume: the newest step checkpoint of a run that validates, or null when the run has no
 * step checkpoint yet. Newer ones that do not validate are moved into checkpoints/damaged/
 * (never deleted; a later checkpoint of the same step cannot overwrite them), and so is a
 * damaged best; each is reported through `warn` with its reason and where it went. When none
 * validates, nothing is moved and the error names each one and why.
 */
export function resumeCheckpoint(dir: string, warn: (m: string) => void): ValidCheckpoint | null {
  const folder = runFiles(dir).checkpoints;
  const damaged: Extract<CheckpointCheck, { ok: false }>[] = [];
  let found: ValidCheckpoint | null = null;
  for (const name of stepPairs(folder).reverse()) {
    const c = checkCheckpoint(path.join(folder, name));
    if (c.ok) {
      found = c;
      break;
    }
    damaged.push(c);
  }
  if (!found && damaged.length) {
    throw new SpnError('E_FORMAT', `--resume: no checkpoint of ${dir} validates: ${damaged.map((c) => `${path.basename(c.base)} (${c.reason})`).join('; ')}`);
  }
  if (fs.existsSync(path.join(folder, 'best.json')) && fs.existsSync(path.join(folder, 'best.safetensors'))) {
    const best = checkCheckpoint(path.join(folder, 'best'));
    if (!best.ok) damaged.push(best);
  }
  for (const c of damaged) {
    const where = moveAside(dir, path.basename(c.base));
    warn(`skipping checkpoint ${c.base}: ${c.reason}; moved to ${where}.{safetensors,json} (kept, not deleted)`);
  }
  return found;
}

/** Moves a checkpoint pair into checkpoints/damaged/, under a name no other file there has; returns the new base path. */
function moveAside(dir: string, name: string): string {
  const folder = runFiles(dir).checkpoints;
  const damaged = damagedFolder(dir);
  let target = path.join(damaged, name);
  for (let i = 2; fs.existsSync(`${target}.safetensors`) || fs.existsSync(`${target}.json`); i++) target = path.join(damaged, `${name}.${i}`);
  for (const ext of ['.safetensors', '.json']) {
    const from = path.join(folder, name + ext);
    try {
      fs.mkdirSync(damaged, { recursive: true });
      if (fs.existsSync(from)) fs.renameSync(from, target + ext);
    } catch (err) {
      throw toWriteError(target + ext, err);
    }
  }
  return target;
}

export function pick(tensors: Record<string, torch.Tensor>, prefix: string): Record<string, torch.Tensor> {
  const out: Record<string, torch.Tensor> = {};
  for (const [k, v] of Object.entries(tensors)) if (k.startsWith(prefix)) out[k.slice(prefix.length)] = v;
  return out;
}

/**
 * The model of a run folder or checkpoint (or of a checkpoint openCheckpoint validated), with EMA
 * weights by default (what evaluation and sampling use). Picks the run's best checkpoint when
 * there is one; a damaged checkpoint of a run folder is skipped with a message through `o.warn`
 * (default: a warning on stderr).
 */
export async function loadModel(target: string | ValidCheckpoint, o: { ema?: boolean; device?: string; which?: 'latest' | 'best'; warn?: (m: string) => void } = {}): Promise<{ model: SPN; config: RunConfig; step: number }> {
  const device = o.device ?? 'cpu';
  const c = typeof target === 'string' ? openCheckpoint(target, o.which ?? 'best', o) : target;
  const { meta, tensors } = decodeCheckpoint(c, device);
  try {
    const model = new SPN(meta.config.model, { device });
    model.loadStateDict(pick(tensors, o.ema === false ? 'model.' : 'ema.'));
    model.eval();
    return { model, config: meta.config, step: meta.step };
  } finally {
    torch.dispose(tensors);
  }
}

export { readRunConfig };
