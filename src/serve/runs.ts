// Read-only views of run folders (docs/run-folder.md) for the dashboard. Training may be writing
// while we read, so every reader tolerates missing, empty or half-written files.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MetricsIndex, type MetricsRecord } from './metrics.js';
import { isRunName, type RunsRoot } from './paths.js';
import { RUN_LAYOUT as L } from '../store/layout.js';

export interface RunSummary {
  name: string;
  state: string | null;
  step: number | null;
  total_steps: number | null;
  train_loss_bpd: number | null;
  test_bpd: number | null;
  eval_bpd: number | null;
  preset: string | null;
  stage: string | null;
  /** ISO-8601: status.json's `updated`, else the newest file time. */
  updated: string;
}

export interface FileInfo {
  /** Relative to the run folder, with '/' separators: what /api/runs/:name/files/ takes. */
  path: string;
  size: number;
  mtime_ms: number;
}

export interface RunDetail {
  name: string;
  config: unknown;
  status: unknown;
  eval: unknown;
  updated: string;
  /** Files that exist but could not be read as JSON, with why. */
  problems: string[];
  metrics: { lines: number; last_train: MetricsRecord | null; last_test: MetricsRecord | null };
  samples: { latest: FileInfo | null; animation: FileInfo | null; frames: FileInfo[]; grids: FileInfo[] };
}

/** Caps so a huge folder cannot make one request slow. */
const MAX_RUNS = 1000;
const MAX_LISTED_FILES = 2000;

/** Shared state across requests: one metrics index per run, kept while the run exists. */
export class RunReader {
  readonly root: RunsRoot;
  private readonly metrics = new Map<string, MetricsIndex>();

  constructor(root: RunsRoot) {
    this.root = root;
  }

  /** Every run folder, newest first. Names outside the safe charset are not listed. */
  list(): RunSummary[] {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(this.root.dir, { withFileTypes: true });
    } catch {
      return [];
    }
    const runs: RunSummary[] = [];
    for (const e of entries) {
      if (runs.length >= MAX_RUNS) break;
      if (!isRunName(e.name) || !(e.isDirectory() || e.isSymbolicLink())) continue;
      let dir: string;
      try {
        dir = this.root.runDir(e.name);
      } catch {
        continue; // a symlink out of the root, or not a folder
      }
      runs.push(this.summary(e.name, dir));
    }
    const seen = new Set(runs.map((r) => r.name));
    for (const key of this.metrics.keys()) if (!seen.has(key)) this.metrics.delete(key);
    return runs.sort((a, b) => (a.updated < b.updated ? 1 : a.updated > b.updated ? -1 : a.name.localeCompare(b.name)));
  }

  /** Config, status, eval and the sample files of one run; throws HttpError 404 when unknown. */
  detail(name: string): RunDetail {
    const dir = this.root.runDir(name);
    const problems: string[] = [];
    const config = this.readJson(dir, L.config, problems);
    const status = this.readJson(dir, L.status, problems);
    const evalJson = this.readJson(dir, L.eval, problems);
    const index = this.index(name, dir);
    return {
      name,
      config,
      status,
      eval: evalJson,
      updated: updatedTime(dir, status),
      problems,
      metrics: { lines: index.lines, last_train: index.lastTrain, last_test: index.lastTest },
      samples: {
        latest: this.fileInfo(dir, L.latestSample),
        animation: this.fileInfo(dir, L.animation) ?? this.fileInfo(dir, `${L.samples}/animation.gif`),
        frames: this.listFiles(dir, L.frames, L.frame),
        grids: this.listFiles(dir, L.samples, L.sampleGrid),
      },
    };
  }

  /** The metrics index of a run, caught up with the file. */
  index(name: string, dir = this.root.runDir(name)): MetricsIndex {
    const file = path.join(dir, L.metrics);
    let index = this.metrics.get(name);
    if (index === undefined || index.file !== file) {
      index = new MetricsIndex(file);
      this.metrics.set(name, index);
    }
    index.refresh();
    return index;
  }

  private summary(name: string, dir: string): RunSummary {
    const status = asObject(this.readJson(dir, L.status, []));
    const config = asObject(this.readJson(dir, L.config, []));
    const evalJson = asObject(this.readJson(dir, L.eval, []));
    const index = this.index(name, dir);
    return {
      name,
      state: str(status?.state),
      step: num(status?.step) ?? num(index.lastTrain?.step),
      total_steps: num(status?.total_steps),
      train_loss_bpd: num(index.lastTrain?.loss_bpd),
      test_bpd: num(index.lastTest?.bpd),
      eval_bpd: num(evalJson?.bpd),
      preset: str(config?.preset),
      stage: str(config?.stage),
      updated: updatedTime(dir, status),
    };
  }

  /** Parsed JSON, or null when the file is missing; unreadable JSON is noted in `problems`. */
  private readJson(dir: string, rel: string, problems: string[]): unknown {
    const real = this.root.safeReal(path.join(dir, rel));
    if (real === null) return null;
    let text: string;
    try {
      text = fs.readFileSync(real, 'utf8');
    } catch (err) {
      problems.push(`${rel}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
      return null;
    }
    try {
      return JSON.parse(text);
    } catch (err) {
      problems.push(`${rel}: not valid JSON (${(err as Error).message})`);
      return null;
    }
  }

  private fileInfo(dir: string, rel: string): FileInfo | null {
    const real = this.root.safeReal(path.join(dir, rel));
    if (real === null) return null;
    try {
      const st = fs.statSync(real);
      return st.isFile() ? { path: rel, size: st.size, mtime_ms: Math.floor(st.mtimeMs) } : null;
    } catch {
      return null;
    }
  }

  /** Files in `dir/sub` whose names match, sorted by name (zero-padded numbers sort in order). */
  private listFiles(dir: string, sub: string, pattern: RegExp): FileInfo[] {
    const real = this.root.safeReal(path.join(dir, sub));
    if (real === null) return [];
    let names: string[];
    try {
      names = fs.readdirSync(real).filter((n) => pattern.test(n));
    } catch {
      return [];
    }
    names.sort();
    const out: FileInfo[] = [];
    for (const n of names.slice(0, MAX_LISTED_FILES)) {
      const info = this.fileInfo(dir, `${sub}/${n}`);
      if (info !== null) out.push(info);
    }
    return out;
  }
}

/** status.json's `updated` when it is a date, else the newest mtime among the run's main files. */
function updatedTime(dir: string, status: unknown): string {
  const stated = str(asObject(status)?.updated);
  if (stated !== null && !Number.isNaN(Date.parse(stated))) return new Date(stated).toISOString();
  let newest = 0;
  for (const rel of [L.status, L.metrics, L.config, L.eval, '.']) {
    try {
      newest = Math.max(newest, fs.statSync(path.join(dir, rel)).mtimeMs);
    } catch {
      // missing: ignore
    }
  }
  return new Date(newest).toISOString();
}

function asObject(v: unknown): Record<string, unknown> | null {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}
