// What a training run writes into its run folder (docs/run-folder.md): metrics records, the
// status, checkpoints and sample grids. Only the process that writes the folder holds a
// FolderWriter (a single process, or rank 0 of a job); the others hold the NULL_WRITER, which
// writes nothing, so no writer asks "am I the one who writes?".
import * as path from 'node:path';
import { writeFileAtomic } from '../fsutil.js';
import { pruneCheckpoints, saveCheckpoint, type CheckpointParts } from '../store/checkpoint.js';
import { appendMetric, runFiles, writeJson, type RunStatus } from '../store/run.js';

export interface RunWriter {
  /** Appends one record to metrics.jsonl. */
  metric(rec: Record<string, unknown>): void;
  status(s: RunStatus): void;
  /** Writes checkpoints/<name>; `keep`: then prunes the step checkpoints to the newest `keep`. */
  checkpoint(name: string, parts: CheckpointParts, keep?: number): void;
  /** Writes samples/<name> for each name. */
  samples(png: Uint8Array, names: string[]): void;
}

export class FolderWriter implements RunWriter {
  readonly files: ReturnType<typeof runFiles>;
  constructor(readonly dir: string) {
    this.files = runFiles(dir);
  }

  metric(rec: Record<string, unknown>): void {
    appendMetric(this.dir, rec);
  }

  status(s: RunStatus): void {
    writeJson(this.files.status, s);
  }

  checkpoint(name: string, parts: CheckpointParts, keep?: number): void {
    saveCheckpoint(this.dir, name, parts);
    if (keep !== undefined) pruneCheckpoints(this.dir, keep);
  }

  samples(png: Uint8Array, names: string[]): void {
    for (const n of names) writeFileAtomic(path.join(this.files.samples, n), png);
  }
}

/** The writer of a rank that writes nothing. */
export const NULL_WRITER: RunWriter = { metric() {}, status() {}, checkpoint() {}, samples() {} };
