// The run folder (docs/run-folder.md): its config, status and metrics files.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { ConfigError, SpnError } from '../errors.js';
import { appendLine, writeFileAtomic } from '../fsutil.js';
import { ModelConfig, TrainConfig } from '../spn/config.js';
import { RUN_LAYOUT } from './layout.js';

export const RunConfig = z
  .object({
    name: z.string(),
    preset: z.string(),
    data: z.string(), // dataset spec
    dataBits: z.number().int().min(1).max(8), // bits of the stored values the run reads
    subsample: z.number().int().positive().default(1), // train on x[::s, ::s] (a size pipeline's base)
    size: z.number().int().positive().nullable().default(null), // dataset --size (images resized to size×size)
    crop: z.number().int().positive().nullable().default(null), // --crop: trained on random crop×crop patches, tested on the test images' tiles
    seed: z.number().int(),
    device: z.string(),
    stage: z.enum(['full', 'size', 'depth']),
    model: ModelConfig,
    train: TrainConfig,
    minutes: z.number().positive().nullable(),
    steps: z.number().int().positive().nullable(),
    created: z.string(),
    initFrom: z.string().optional(), // the run or checkpoint a fine-tuning run started from
  })
  .strict();
export type RunConfig = z.infer<typeof RunConfig>;

export interface RunStatus {
  state: 'running' | 'done' | 'failed' | 'stopped';
  step: number;
  total_steps: number | null;
  elapsed_s: number;
  eta_s: number | null;
  updated: string;
  message?: string;
}

/** The run folder's files (layout.ts) under `dir`. */
export const runFiles = (dir: string) => ({
  config: path.join(dir, RUN_LAYOUT.config),
  status: path.join(dir, RUN_LAYOUT.status),
  metrics: path.join(dir, RUN_LAYOUT.metrics),
  checkpoints: path.join(dir, RUN_LAYOUT.checkpoints),
  eval: path.join(dir, RUN_LAYOUT.eval),
  samples: path.join(dir, RUN_LAYOUT.samples),
});

/** Writes JSON atomically through the one write path (src/fsutil.ts): a failure is a WriteError naming the file. */
export function writeJson(file: string, value: unknown): void {
  writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n');
}

export function readJson(file: string, what: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new SpnError('E_IO', `cannot read ${what} ${file}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new SpnError('E_FORMAT', `${what} ${file} is not valid JSON: ${(err as Error).message}`);
  }
}

export function readRunConfig(dir: string): RunConfig {
  const file = runFiles(dir).config;
  const r = RunConfig.safeParse(readJson(file, 'run config'));
  if (!r.success) throw new ConfigError(`${file}: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return r.data;
}

export function appendMetric(dir: string, record: Record<string, unknown>): void {
  appendLine(runFiles(dir).metrics, JSON.stringify(record));
}

/**
 * Drops metric records logged after `step` (a run resumed from an older checkpoint logs those
 * steps again) and a line a killed process left half-written. Rewrites the file atomically, and
 * only when something is dropped (a resume on a nearly full disk writes nothing here).
 */
export function dropMetricsAfter(dir: string, step: number): void {
  const file = runFiles(dir).metrics;
  if (!fs.existsSync(file)) return;
  const text = fs.readFileSync(file, 'utf8');
  const lines = text.split('\n');
  const kept = lines.filter((line) => {
    try {
      return line.trim() !== '' && (JSON.parse(line) as { step: number }).step <= step;
    } catch {
      return false;
    }
  });
  const out = kept.map((l) => l + '\n').join('');
  if (out !== text) writeFileAtomic(file, out);
}
