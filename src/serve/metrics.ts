// Incremental reader for a run's metrics.jsonl while training appends to it. Each poll reads only
// the bytes added since the last one; records are addressed by line number so the page can ask
// for "everything after line N" cheaply.
import * as fs from 'node:fs';

export type MetricsRecord = { kind?: unknown; step?: unknown; [key: string]: unknown };

export interface MetricsPage {
  /** Records from line `since` on, malformed lines left out. */
  records: MetricsRecord[];
  /** The line number to pass as `since` next time. */
  next: number;
  /** True when `limit` cut the page short; ask again from `next`. */
  more: boolean;
  /** True when the file shrank or was replaced below `since`: drop what you have and start at 0. */
  reset: boolean;
}

const READ_CHUNK = 1 << 20;

/**
 * The byte offset of every complete line, plus the latest train and test records. A last line
 * without its newline is a record being written: it counts only once it parses as an object.
 */
export class MetricsIndex {
  readonly file: string;
  private ino = -1;
  private complete = 0; // bytes up to and including the last '\n'
  private lineStarts: number[] = [];
  private tail: MetricsRecord | null = null; // the unterminated last line, if it parses
  private lastTrainRec: MetricsRecord | null = null;
  private lastTestRec: MetricsRecord | null = null;

  constructor(file: string) {
    this.file = file;
  }

  /** Number of lines a reader can see now (the parsed tail included). */
  get lines(): number {
    return this.lineStarts.length + (this.tail !== null ? 1 : 0);
  }

  get lastTrain(): MetricsRecord | null {
    return this.tail?.kind === 'train' ? this.tail : this.lastTrainRec;
  }

  get lastTest(): MetricsRecord | null {
    return this.tail?.kind === 'test' ? this.tail : this.lastTestRec;
  }

  /** Catches up with the file; a missing file reads as empty. */
  refresh(): void {
    let fd: number;
    try {
      fd = fs.openSync(this.file, 'r');
    } catch {
      this.reset();
      return;
    }
    try {
      const st = fs.fstatSync(fd);
      if (st.ino !== this.ino || st.size < this.complete) {
        this.reset();
        this.ino = st.ino;
      }
      this.tail = null;
      let pos = this.complete;
      let pending = Buffer.alloc(0);
      const buf = Buffer.alloc(READ_CHUNK);
      while (pos < st.size) {
        const n = fs.readSync(fd, buf, 0, Math.min(READ_CHUNK, st.size - pos), pos);
        if (n === 0) break;
        pos += n;
        const data = pending.length > 0 ? Buffer.concat([pending, buf.subarray(0, n)]) : buf.subarray(0, n);
        let start = 0;
        for (let nl = data.indexOf(10, start); nl !== -1; nl = data.indexOf(10, start)) {
          this.lineStarts.push(this.complete);
          this.note(parseLine(data.subarray(start, nl)));
          this.complete += nl - start + 1;
          start = nl + 1;
        }
        pending = Buffer.from(data.subarray(start));
      }
      if (pending.length > 0) this.tail = parseLine(pending);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Records from line `since` (0-based), at most `limit` of them. Call refresh() first. */
  page(since: number, limit: number): MetricsPage {
    const total = this.lines;
    if (since > total) return { records: [], next: 0, more: false, reset: true };
    const complete = this.lineStarts.length;
    const end = Math.min(complete, since + limit);
    const records: MetricsRecord[] = [];
    if (since < end) {
      const from = this.lineStarts[since]!;
      const to = end < complete ? this.lineStarts[end]! : this.complete;
      const data = readRange(this.file, from, to);
      let start = 0;
      for (let nl = data.indexOf(10, start); nl !== -1 && start < data.length; nl = data.indexOf(10, start)) {
        const rec = parseLine(data.subarray(start, nl));
        if (rec !== null) records.push(rec);
        start = nl + 1;
      }
    }
    let next = Math.max(since, end);
    if (next === complete && this.tail !== null && since + limit > complete) {
      records.push(this.tail);
      next += 1;
    }
    return { records, next, more: next < total, reset: false };
  }

  private note(rec: MetricsRecord | null): void {
    if (rec?.kind === 'train') this.lastTrainRec = rec;
    else if (rec?.kind === 'test') this.lastTestRec = rec;
  }

  private reset(): void {
    this.ino = -1;
    this.complete = 0;
    this.lineStarts = [];
    this.tail = null;
    this.lastTrainRec = null;
    this.lastTestRec = null;
  }
}

/** A JSON object, or null for blank, malformed or non-object lines. */
function parseLine(bytes: Buffer): MetricsRecord | null {
  const text = bytes.toString('utf8').trim();
  if (text === '') return null;
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as MetricsRecord) : null;
  } catch {
    return null;
  }
}

/** Bytes [from, to) of `file`; shorter if the file was truncated meanwhile. */
function readRange(file: string, from: number, to: number): Buffer {
  const buf = Buffer.alloc(to - from);
  let got = 0;
  try {
    const fd = fs.openSync(file, 'r');
    try {
      while (got < buf.length) {
        const n = fs.readSync(fd, buf, got, buf.length - got, from + got);
        if (n === 0) break;
        got += n;
      }
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return Buffer.alloc(0);
  }
  return buf.subarray(0, got);
}
