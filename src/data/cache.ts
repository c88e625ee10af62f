// The decoded-split cache, which *is* the dataset: one file per split, a 64-byte header (magic,
// n, h, w, c and a SHA-256 key of the spec, options and source files' sizes and mtimes) followed
// by the raw (N, H, W, C) uint8 bytes.
//
// Reading: a CacheSet keeps the file open and reads the images each batch asks for with
// positioned reads (fs.readSync at an offset), never the whole file. Why positioned reads and not
// a memory map (libtorch's from_file, or an mmap in the addon): they need no native code, work on
// every platform and filesystem, go through the page cache just as a shared mapping would (so
// data-parallel ranks on one machine share one copy of the hot pages, and a 15.7 GB split costs
// the process only the batch it is reading), keep every offset a JS Number (exact to 2^53: no
// 2/4 GiB limit), and turn an I/O error or a file cut short under a running job into a DataError
// naming the file instead of a SIGBUS. A read is one syscall per run of consecutive images; a
// random batch of 64×64×3 images costs about a microsecond per image, far below a training step.
//
// Each read first checks (fstat) that the file still has the size and mtime it had when opened:
// a cache changed in place under a running job is an error, never garbage. A cache replaced by
// rename (another process rebuilding it) is harmless: the open descriptor still reads the old file.
//
// Writing: CacheWriter appends decoded chunks to a temp file (fsutil's stageWriter: every write
// through the one write path, fsync, rename), fills in the header last, so an interrupted decode
// leaves nothing a later run would trust.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataError } from '../errors.js';
import { stageWriter, type StagedWriter } from '../fsutil.js';
import { BaseSet } from './sets.js';
import { statSource } from './files.js';
import { CheckedSink } from './sink.js';
import type { DatasetSource } from './types.js';

const MAGIC = 'SPNDATA2';
export const CACHE_HEADER = 64;
/** Largest single read: readSync takes at most 2 GiB at once. */
const MAX_READ = 1 << 30;

/** The cache key of a source: changes when the spec, `size` or any source file changes. */
export function cacheKey(src: DatasetSource, size: number | undefined): Buffer {
  const files = src.files.map((f) => {
    const st = statSource(f);
    return [f, st.size, st.mtimeMs];
  });
  const text = JSON.stringify({ v: 2, name: src.name, key: src.key ?? '', size: size ?? null, files });
  return createHash('sha256').update(text).digest();
}

/** Where one split of a source is cached. */
export function cachePath(cacheDir: string, src: DatasetSource, key: Buffer, split: 'train' | 'test'): string {
  const slug = src.name.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+/, '').slice(-60);
  return path.join(cacheDir, `${slug}-${key.toString('hex').slice(0, 16)}.${split}.bin`);
}

interface Shape {
  n: number;
  h: number;
  w: number;
  c: number;
}

function encodeHeader(key: Buffer, s: Shape): Buffer {
  const header = Buffer.alloc(CACHE_HEADER);
  header.write(MAGIC, 0, 'latin1');
  header.writeBigUInt64LE(BigInt(s.n), 8);
  header.writeUInt32LE(s.h, 16);
  header.writeUInt32LE(s.w, 20);
  header.writeUInt32LE(s.c, 24);
  key.copy(header, 32);
  return header;
}

/** Closes a CacheSet's descriptor once the set is unreachable (sets have no close()). */
const closer = new FinalizationRegistry<number>((fd) => {
  try {
    fs.closeSync(fd);
  } catch {
    // already closed
  }
});

/** A cached split read on demand from its open file. */
export class CacheSet extends BaseSet {
  readonly file: string;
  private readonly fd: number;
  private readonly bytes: number;
  private readonly mtimeMs: number;

  constructor(file: string, fd: number, shape: Shape, st: fs.Stats) {
    super(shape, file);
    this.file = file;
    this.fd = fd;
    this.bytes = st.size;
    this.mtimeMs = st.mtimeMs;
    closer.register(this, fd);
  }

  private changed(): string | null {
    let st: fs.Stats;
    try {
      st = fs.fstatSync(this.fd);
    } catch (err) {
      return `cannot be examined (${(err as Error).message})`;
    }
    if (st.size !== this.bytes) return `is now ${st.size} bytes, it was ${this.bytes} when opened`;
    if (st.mtimeMs !== this.mtimeMs) return 'was modified after it was opened';
    return null;
  }

  private fail(why: string, cause?: unknown): never {
    throw new DataError(
      `${this.file}: the data cache ${why}; it changed under this job (another process writing it?) — rerun to rebuild it`,
      { cause },
    );
  }

  protected readRange(start: number, count: number): Uint8Array {
    this.check();
    const out = new Uint8Array(count * this.size);
    this.readInto(out, 0, start, count);
    return out;
  }

  /** One fstat for the batch, then one positioned read per run of consecutive indices, straight into the batch. */
  protected override gatherChecked(indices: ArrayLike<number>): Uint8Array {
    this.check();
    const out = new Uint8Array(indices.length * this.size);
    let i = 0;
    while (i < indices.length) {
      let j = i + 1;
      while (j < indices.length && indices[j] === indices[j - 1]! + 1) j++;
      this.readInto(out, i * this.size, indices[i]!, j - i);
      i = j;
    }
    return out;
  }

  /** As gatherChecked, with the reads on libuv's threads (several at once: random reads from disk overlap). */
  protected override async gatherCheckedAsync(indices: ArrayLike<number>): Promise<Uint8Array> {
    this.check();
    const out = new Uint8Array(indices.length * this.size);
    const reads: Promise<void>[] = [];
    let i = 0;
    while (i < indices.length) {
      let j = i + 1;
      while (j < indices.length && indices[j] === indices[j - 1]! + 1) j++;
      reads.push(this.readIntoAsync(out, i * this.size, indices[i]!, j - i));
      i = j;
    }
    await Promise.all(reads);
    return out;
  }

  private async readIntoAsync(out: Uint8Array, at: number, start: number, count: number): Promise<void> {
    const len = count * this.size;
    const pos = CACHE_HEADER + start * this.size;
    let done = 0;
    while (done < len) {
      const chunk = Math.min(len - done, MAX_READ);
      const got = await new Promise<number>((resolve, reject) =>
        fs.read(this.fd, out, at + done, chunk, pos + done, (err, n) => (err ? reject(err) : resolve(n))),
      ).catch((err: unknown) => this.fail(this.changed() ?? `cannot be read at byte ${pos + done} (${(err as Error).message})`, err));
      if (got === 0) this.fail(this.changed() ?? `ends at byte ${pos + done}, before image ${start + count - 1}`);
      done += got;
    }
  }

  private check(): void {
    const why = this.changed();
    if (why) this.fail(why);
  }

  /** Images [start, start + count) into out at `at`. */
  private readInto(out: Uint8Array, at: number, start: number, count: number): void {
    const len = count * this.size;
    const pos = CACHE_HEADER + start * this.size; // exact: both below 2^53
    let done = 0;
    while (done < len) {
      let got: number;
      try {
        got = fs.readSync(this.fd, out, at + done, Math.min(len - done, MAX_READ), pos + done);
      } catch (err) {
        this.fail(this.changed() ?? `cannot be read at byte ${pos + done} (${(err as Error).message})`, err);
      }
      if (got === 0) this.fail(this.changed() ?? `ends at byte ${pos + done}, before image ${start + count - 1}`);
      done += got;
    }
  }
}

/**
 * Opens a cached split; undefined when missing, from another key, of the wrong size or damaged
 * (all of which mean: decode again). The file is checked against its header before use.
 */
export function openCache(file: string, key: Buffer): CacheSet | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return undefined;
  }
  let keep = false;
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.size < CACHE_HEADER) return undefined;
    const h = Buffer.alloc(CACHE_HEADER);
    if (fs.readSync(fd, h, 0, CACHE_HEADER, 0) !== CACHE_HEADER) return undefined;
    if (h.toString('latin1', 0, 8) !== MAGIC || !h.subarray(32, 64).equals(key)) return undefined;
    const n64 = h.readBigUInt64LE(8);
    if (n64 > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
    const shape = { n: Number(n64), h: h.readUInt32LE(16), w: h.readUInt32LE(20), c: h.readUInt32LE(24) };
    const size = shape.h * shape.w * shape.c;
    if (shape.n < 1 || size < 1 || st.size !== CACHE_HEADER + shape.n * size) return undefined;
    keep = true;
    return new CacheSet(file, fd, shape, st);
  } catch {
    return undefined;
  } finally {
    if (!keep) fs.closeSync(fd);
  }
}

/** Writes a split to its cache file: header placeholder, chunks, then the real header and commit. */
export class CacheWriter extends CheckedSink {
  private readonly out: StagedWriter;

  constructor(readonly file: string, private readonly key: Buffer, what: string) {
    super(what);
    this.out = stageWriter(file);
    this.out.write(Buffer.alloc(CACHE_HEADER));
  }

  protected append(images: Uint8Array): void {
    this.out.write(images);
  }

  /** Fills in the header, fsyncs and renames into place; then opens it as a set. */
  commit(): CacheSet {
    const shape = this.finalShape();
    this.out.writeAt(0, encodeHeader(this.key, shape));
    this.out.commit();
    const set = openCache(this.file, this.key);
    if (!set) throw new DataError(`${this.file}: the data cache just written cannot be read back`);
    return set;
  }

  discard(): void {
    this.out.discard();
  }
}
