// Self-describing checkpoints: weights, EMA weights, optimizer state and the RNG state in one
// safetensors file, and a JSON sidecar with the step, data position, resolved config and best
// test bits/dim. The sidecar is written last, so a checkpoint without one is incomplete and
// ignored. Both files are written atomically.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SpnError } from '../errors.js';
import * as torch from '../torch/index.js';
import { loadSafetensors, saveSafetensors } from '../torch/safetensors.js';
import type { AdamW, EMA } from '../torch/optim/index.js';
import type { BatchPosition } from '../data/batches.js';
import { SPN } from '../spn/model.js';
import { readJson, readRunConfig, RunConfig, runFiles, writeJson } from './run.js';

export interface CheckpointMeta {
  format: 'spn-checkpoint-1';
  step: number;
  data_position: BatchPosition;
  best_test_bpd: number | null;
  elapsed_s: number;
  config: RunConfig;
  /** Sum and count of the training losses since the last train record (exact resume of the log). */
  loss_window?: { sum: number; count: number };
}

export const checkpointName = (step: number) => `step-${String(step).padStart(8, '0')}`;

export function saveCheckpoint(dir: string, name: string, s: { model: SPN; ema: EMA; optim: AdamW; meta: CheckpointMeta }): void {
  const folder = runFiles(dir).checkpoints;
  torch.tidy(() => {
    const tensors: Record<string, torch.Tensor> = {};
    for (const [k, v] of Object.entries(s.model.stateDict())) tensors[`model.${k}`] = v.detach().to('cpu');
    for (const [k, v] of Object.entries(s.ema.stateDict())) tensors[`ema.${k}`] = v.to('cpu');
    for (const [k, v] of Object.entries(s.optim.stateDict())) tensors[`optim.${k}`] = v.to('cpu');
    tensors['rng_state'] = torch.getRngState();
    saveSafetensors(path.join(folder, `${name}.safetensors`), tensors, { format: 'spn-checkpoint-1', step: String(s.meta.step) });
  });
  writeJson(path.join(folder, `${name}.json`), s.meta);
}

/** Complete checkpoints (with their sidecar), oldest first, excluding "best". */
export function listCheckpoints(dir: string): string[] {
  const folder = runFiles(dir).checkpoints;
  if (!fs.existsSync(folder)) return [];
  return fs
    .readdirSync(folder)
    .filter((f) => /^step-\d{8}\.json$/.test(f) && fs.existsSync(path.join(folder, f.replace(/\.json$/, '.safetensors'))))
    .map((f) => f.replace(/\.json$/, ''))
    .sort();
}

/** Keeps the newest `keep` step checkpoints (best.* is separate and always kept). */
export function pruneCheckpoints(dir: string, keep = 2): void {
  const folder = runFiles(dir).checkpoints;
  for (const name of listCheckpoints(dir).slice(0, -keep)) {
    fs.rmSync(path.join(folder, `${name}.json`), { force: true }); // sidecar first: never a "complete" half
    fs.rmSync(path.join(folder, `${name}.safetensors`), { force: true });
  }
}

export interface LoadedCheckpoint {
  meta: CheckpointMeta;
  tensors: Record<string, torch.Tensor>;
}

/** Resolves a run folder (latest checkpoint, or best with which='best') or a checkpoint path. */
export function resolveCheckpoint(target: string, which: 'latest' | 'best' = 'latest'): string {
  if (fs.existsSync(target) && fs.statSync(target).isDirectory()) {
    const folder = runFiles(target).checkpoints;
    if (which === 'best' && fs.existsSync(path.join(folder, 'best.json'))) return path.join(folder, 'best');
    const list = listCheckpoints(target);
    if (!list.length) throw new SpnError('E_IO', `run folder ${target} has no complete checkpoint in ${folder}`);
    return path.join(folder, list[list.length - 1]!);
  }
  const base = target.replace(/\.(json|safetensors)$/, '');
  if (!fs.existsSync(`${base}.json`) || !fs.existsSync(`${base}.safetensors`)) {
    throw new SpnError('E_IO', `${target} is neither a run folder nor a checkpoint (expected ${base}.json and ${base}.safetensors)`);
  }
  return base;
}

export function readCheckpoint(base: string, device = 'cpu'): LoadedCheckpoint {
  const meta = readJson(`${base}.json`, 'checkpoint') as CheckpointMeta;
  if (meta.format !== 'spn-checkpoint-1') throw new SpnError('E_FORMAT', `${base}.json is not an spn checkpoint (format '${String(meta.format)}')`);
  const cfg = RunConfig.safeParse(meta.config);
  if (!cfg.success) throw new SpnError('E_FORMAT', `${base}.json has an invalid config: ${cfg.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  meta.config = cfg.data;
  const { tensors } = loadSafetensors(`${base}.safetensors`, { device });
  return { meta, tensors };
}

export function pick(tensors: Record<string, torch.Tensor>, prefix: string): Record<string, torch.Tensor> {
  const out: Record<string, torch.Tensor> = {};
  for (const [k, v] of Object.entries(tensors)) if (k.startsWith(prefix)) out[k.slice(prefix.length)] = v;
  return out;
}

/**
 * The model of a run folder or checkpoint, with EMA weights by default (what evaluation and
 * sampling use). Picks the run's best checkpoint when there is one.
 */
export async function loadModel(target: string, o: { ema?: boolean; device?: string; which?: 'latest' | 'best' } = {}): Promise<{ model: SPN; config: RunConfig; step: number }> {
  const base = resolveCheckpoint(target, o.which ?? 'best');
  const device = o.device ?? 'cpu';
  const { meta, tensors } = readCheckpoint(base, device);
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
