// The Markdown helpers BENCHMARKS.md's sections share (bench/report.ts, bench/report-extra.ts):
// number formats, table cells, reading a result file, and the text for a result that is missing
// or failed. No imports from either, so that neither imports the other for them.
import * as fs from 'node:fs';

/** x with `digits` decimals; '–' for a missing or non-finite number. */
export const fmt = (x: number | null | undefined, digits = 2): string => (x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits));

/** x rounded, with thousands separators; '–' when missing. */
export const int = (x: number | null | undefined): string => (x === null || x === undefined ? '–' : Math.round(x).toLocaleString('en-US'));

/** Text in a table cell: its pipes escaped. */
export const cell = (s: string): string => s.replace(/\|/g, '\\|');

/** A result file's JSON, or null when there is no such file (a file that does not parse throws). */
export function readJson<T>(file: string): T | null {
  if (!fs.existsSync(file)) return null;
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
}

/** What a benchmark that failed or could not run leaves in its JSON file (see NotRun in report.ts). */
export interface NotRunFields { status: string; reason: string; date: string; command: string }

/**
 * The text standing for a result that is missing (r null) or failed / not available; null when r
 * is a result to show. `run` is the command that makes it.
 */
export function notRunText(r: NotRunFields | null, name: string, run = `npm run bench -- --only ${name}`): string | null {
  if (!r) return `No result yet: run \`${run}\`.`;
  if (r.status === 'failed' || r.status === 'not available') return `${r.status === 'failed' ? 'Failed' : 'Not available'} (${r.date}, \`${r.command}\`): ${r.reason}`;
  return null;
}
