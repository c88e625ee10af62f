// The one write path. Every file spn writes (checkpoints, status.json, metrics.jsonl, samples,
// eval.json, the data cache, PNG and GIF outputs) goes through writeFileAtomic, stageFile or
// appendLine below:
//
// - an atomic write (whole, or in pieces through stageWriter) goes to a temp file in the same
//   folder, is fsynced, then renamed over the final name, so a crash or Ctrl-C never leaves a half-written file under that name;
// - an append is flushed to disk, and a failed append is cut back to the old length (no
//   half-written line);
// - any error on the way (a full disk, no permission, a read-only filesystem, ...) removes the
//   temp file and becomes one WriteError (code E_IO) whose message names the file and says
//   what happened: "cannot write runs/a/status.json: the disk is full (ENOSPC)".
import * as fs from 'node:fs';
import * as path from 'node:path';
import { WriteError } from './errors.js';

/** What an errno means, in words, and what the user can do about it. */
const ERRNO: Record<string, { what: string; remedy: string }> = {
  ENOSPC: { what: 'the disk is full', remedy: 'free some space' },
  EDQUOT: { what: 'the disk quota is used up', remedy: 'free some space' },
  EFBIG: { what: 'the file is too large for this filesystem', remedy: 'write to another filesystem' },
  EACCES: { what: 'permission denied', remedy: 'fix the permissions' },
  EPERM: { what: 'the operation is not permitted', remedy: 'fix the permissions' },
  EROFS: { what: 'the filesystem is read-only', remedy: 'make it writable' },
  EIO: { what: 'the device reported an I/O error', remedy: 'check the disk' },
  ENOENT: { what: 'a folder on its path does not exist', remedy: 'check the path' },
  ENOTDIR: { what: 'a part of its path is not a folder', remedy: 'check the path' },
  EISDIR: { what: 'a folder has that name', remedy: 'check the path' },
  EMFILE: { what: 'too many files are open', remedy: 'raise the open-file limit' },
  ENFILE: { what: 'too many files are open on this system', remedy: 'raise the open-file limit' },
};

/** "the disk is full (ENOSPC)" for an errno; the error's own message for anything else. */
export function describeWriteError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (code && ERRNO[code]) return `${ERRNO[code].what} (${code})`;
  return (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' '); // one line
}

/** What to do about a write error ("free some space"); a generic hint for an unknown errno. */
export function writeRemedy(err: WriteError): string {
  return (err.errno && ERRNO[err.errno]?.remedy) || 'fix the cause';
}

/** `err` (from writing, renaming or removing `file`) as a WriteError naming the file. */
export function toWriteError(file: string, err: unknown): WriteError {
  if (err instanceof WriteError) return err;
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return new WriteError(file, code, `cannot write ${file}: ${describeWriteError(err)}`, { cause: err });
}

// ---- test hook -------------------------------------------------------------------------------

interface Fault { match: (file: string) => boolean; errno: string; skip: number; hits: number }
let fault: Fault | null = null;

/**
 * Test hook: from now on, writes to files whose final path matches `match` fail as the system
 * would with `errno` (default ENOSPC): half the bytes reach the temp file (or the appended-to
 * file), then the write fails. The first `skip` matching writes succeed. Returns the function
 * that removes the fault. Production code never sets it; the cost is one null check per write.
 */
export function injectWriteFault(match: RegExp | ((file: string) => boolean), o: { errno?: string; skip?: number } = {}): () => void {
  const test = typeof match === 'function' ? match : (f: string) => match.test(f.split(path.sep).join('/'));
  const mine: Fault = { match: test, errno: o.errno ?? 'ENOSPC', skip: o.skip ?? 0, hits: 0 };
  fault = mine;
  return () => {
    if (fault === mine) fault = null;
  };
}

function faultFor(file: string): string | null {
  if (!fault || !fault.match(file)) return null;
  return fault.hits++ < fault.skip ? null : fault.errno;
}

function errnoError(errno: string, message: string, syscall: string, file: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`${errno}: ${message}, ${syscall} '${file}'`);
  err.code = errno;
  err.syscall = syscall;
  err.path = file;
  return err;
}

// ---- writes ----------------------------------------------------------------------------------

/** Writes all of `data` (fs.writeSync may write less than asked: a nearly full disk does). */
function writeAll(fd: number, data: Uint8Array, file: string, at: number | null): void {
  const injected = faultFor(file);
  const end = injected ? data.byteLength >> 1 : data.byteLength;
  let done = 0;
  while (done < end) {
    const n = fs.writeSync(fd, data, done, end - done, at === null ? null : at + done);
    if (n <= 0) throw errnoError('EIO', 'the write made no progress', 'write', file);
    done += n;
  }
  if (injected) throw errnoError(injected, 'injected write failure (test hook)', 'write', file);
}

const bytesOf = (data: string | Uint8Array): Uint8Array => (typeof data === 'string' ? Buffer.from(data) : data);

function mkdirFor(file: string): string {
  const dir = path.dirname(file);
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw toWriteError(file, err);
  }
  return dir;
}

/** fsync a folder so that a rename in it is durable; some filesystems refuse, which is harmless. */
function syncDir(dir: string): void {
  try {
    const dfd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
  } catch {
    // The data itself is already synced.
  }
}

/** The temp file name of `file` for this process: `.<name>.<pid>.<time>.tmp` beside it. */
let tmpCounter = 0;
function tmpName(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Date.now()}-${tmpCounter++}.tmp`);
}
const TMP_RE = /^\..+\.(\d+)\.\d+(?:-\d+)?\.tmp$/;

/** A file written to its temp name and synced, not yet in place: commit() renames it, discard() removes it. */
export interface StagedFile {
  readonly file: string;
  commit(): void;
  discard(): void;
}

/**
 * Opens `target`, lets `write` fill it, syncs and closes it. On an error `undo` (best effort) puts
 * the file back, the descriptor is closed, and the error goes to the caller, which names the file.
 */
function writeSynced(target: string, flags: 'w' | 'a', write: (fd: number) => void, undo?: (fd: number) => void): void {
  const fd = fs.openSync(target, flags);
  try {
    write(fd);
    fs.fsyncSync(fd);
  } catch (err) {
    try {
      undo?.(fd);
      fs.closeSync(fd);
    } catch {
      // closing (or undoing) after a failed write can fail too; the first error is the one to report
    }
    throw err;
  }
  fs.closeSync(fd);
}

/**
 * The first half of an atomic write: `data` in a synced temp file beside `file`. On an error the
 * temp file is removed and a WriteError thrown. Used where two files must appear together
 * (a checkpoint's pair): stage both, then commit both.
 */
export function stageFile(file: string, data: string | Uint8Array): StagedFile {
  const dir = mkdirFor(file);
  const tmp = tmpName(file);
  try {
    writeSynced(tmp, 'w', (fd) => writeAll(fd, bytesOf(data), file, 0));
  } catch (err) {
    removeQuietly(tmp);
    throw toWriteError(file, err);
  }
  let open = true;
  return {
    file,
    commit() {
      if (!open) throw new Error(`stageFile(${file}): committed or discarded already`);
      open = false;
      try {
        fs.renameSync(tmp, file);
      } catch (err) {
        removeQuietly(tmp);
        throw toWriteError(file, err);
      }
      syncDir(dir);
    },
    discard() {
      if (!open) return;
      open = false;
      removeQuietly(tmp);
    },
  };
}

/**
 * An atomic write made in pieces (the data cache, decoded in chunks of bounded size): `write`
 * appends, `writeAt` overwrites at a position (a header filled in last), `commit` fsyncs and
 * renames the temp file over `file`, `discard` removes it. Any error removes the temp file and
 * is thrown as one WriteError naming `file`; after it the writer is closed.
 */
export interface StagedWriter {
  readonly file: string;
  /** Bytes appended so far. */
  readonly length: number;
  write(data: Uint8Array): void;
  writeAt(position: number, data: Uint8Array): void;
  commit(): void;
  discard(): void;
}

export function stageWriter(file: string): StagedWriter {
  const dir = mkdirFor(file);
  const tmp = tmpName(file);
  let fd: number | null;
  try {
    fd = fs.openSync(tmp, 'w');
  } catch (err) {
    throw toWriteError(file, err);
  }
  let length = 0;
  const fail = (err: unknown): never => {
    close();
    removeQuietly(tmp);
    throw toWriteError(file, err);
  };
  const close = () => {
    if (fd === null) return;
    try {
      fs.closeSync(fd);
    } catch {
      // the first error is the one to report
    }
    fd = null;
  };
  const open = (what: string): number => {
    if (fd === null) throw new Error(`stageWriter(${file}): ${what} after commit, discard or a failure`);
    return fd;
  };
  return {
    file,
    get length() {
      return length;
    },
    write(data) {
      const d = open('write');
      try {
        writeAll(d, data, file, length);
      } catch (err) {
        fail(err);
      }
      length += data.byteLength;
    },
    writeAt(position, data) {
      const d = open('writeAt');
      try {
        writeAll(d, data, file, position);
      } catch (err) {
        fail(err);
      }
    },
    commit() {
      const d = open('commit');
      try {
        fs.fsyncSync(d);
        fs.closeSync(d);
        fd = null;
        fs.renameSync(tmp, file);
      } catch (err) {
        fail(err);
      }
      syncDir(dir);
    },
    discard() {
      close();
      removeQuietly(tmp);
    },
  };
}

/** Removes a temp file after a failure; a failure to remove it must not hide the first one. */
function removeQuietly(file: string): void {
  try {
    fs.rmSync(file, { force: true });
  } catch {
    // the write error is what the user needs to see
  }
}

/** Writes `data` to `file` atomically: a temp file in the same folder, fsync, then rename. */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  stageFile(file, data).commit();
}

/** Appends one line (e.g. a JSONL record) and flushes it; a failed append leaves the file as it was. */
export function appendLine(file: string, line: string): void {
  mkdirFor(file);
  const data = Buffer.from(line.endsWith('\n') ? line : line + '\n');
  let size = 0;
  try {
    writeSynced(
      file,
      'a',
      (fd) => {
        size = fs.fstatSync(fd).size;
        writeAll(fd, data, file, null);
      },
      (fd) => fs.ftruncateSync(fd, size), // no half-written line
    );
  } catch (err) {
    throw toWriteError(file, err);
  }
}

/**
 * Removes the temp files that killed processes left in `dir` (not in its subfolders): those
 * named by writeFileAtomic whose process is gone. Returns their names.
 */
export function removeStaleTempFiles(dir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = TMP_RE.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || alive(pid)) continue;
    try {
      fs.rmSync(path.join(dir, name), { force: true });
      removed.push(name);
    } catch {
      // left for next time
    }
  }
  return removed;
}

/** Whether a process of this machine is running (or exists under another user). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
