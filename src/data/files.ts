// File helpers shared by the loaders: existence checks with a DataError naming the path, a stat
// that turns dangling and looping symlinks, FIFOs and devices into one-line errors (a FIFO would
// block a read forever), and byte streams of a file, a range of it, or its inflated contents,
// read in bounded chunks and cut off at the size the caller expects (never at a size the file
// merely claims).
import * as fs from 'node:fs';
import { createGunzip, createInflateRaw } from 'node:zlib';
import type { Transform } from 'node:stream';
import { DataError } from '../errors.js';

export function requireDir(dir: string, what: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch {
    throw new DataError(`${what}: folder ${dir} does not exist`);
  }
  if (!st.isDirectory()) throw new DataError(`${what}: ${dir} is not a folder`);
}

export function requireFile(file: string, what: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    throw new DataError(`${what}: file ${file} does not exist`);
  }
  if (!st.isFile()) throw new DataError(`${what}: ${file} is not a file`);
}

/** The stat of a source file (symlinks followed); a DataError naming the file unless it is a regular file. */
export function statSource(file: string): fs.Stats {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    let link = false;
    try {
      link = fs.lstatSync(file).isSymbolicLink();
    } catch {
      // not there at all
    }
    if (code === 'ELOOP') throw new DataError(`${file}: a loop of symbolic links; expected a data file`);
    if (code === 'ENOENT' && link) throw new DataError(`${file}: a symbolic link to ${fs.readlinkSync(file)}, which does not exist; expected a data file`);
    if (code === 'ENOENT') throw new DataError(`${file}: no such file`);
    throw new DataError(`${file}: cannot be read (${code ?? (err as Error).message})`, { cause: err });
  }
  if (!st.isFile()) {
    const kind = st.isDirectory() ? 'a folder' : st.isFIFO() ? 'a FIFO (named pipe)' : st.isSocket() ? 'a socket' : 'a device';
    throw new DataError(`${file}: is ${kind}, not a regular file; expected a data file`);
  }
  return st;
}

/** Bytes per chunk of the streams below. */
export const CHUNK = 8 << 20;

/** Bytes [start, start + length) of a file, in chunks of at most CHUNK; an error if the file ends first. */
export async function* fileRange(file: string, start: number, length: number): AsyncGenerator<Uint8Array> {
  const fd = fs.openSync(file, 'r');
  try {
    let done = 0;
    while (done < length) {
      const buf = Buffer.allocUnsafe(Math.min(CHUNK, length - done));
      const got = fs.readSync(fd, buf, 0, buf.length, start + done);
      if (got === 0) throw new DataError(`${file}: ends at byte ${start + done}, expected ${start + length} bytes`);
      done += got;
      yield got === buf.length ? buf : buf.subarray(0, got);
      // let the event loop breathe between chunks (progress, signals)
      await new Promise((r) => setImmediate(r));
    }
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The inflated bytes of [start, start + length) of a file (gzip or raw deflate), in chunks.
 * Stops with a DataError as soon as more than `limit` bytes come out (a member that inflates
 * past its declared size is refused after `limit` bytes, not after all of them).
 */
export async function* inflateRange(file: string, start: number, length: number, kind: 'gzip' | 'deflate', limit: number | (() => number), what = file): AsyncGenerator<Uint8Array> {
  const max = typeof limit === 'number' ? () => limit : limit;
  const z: Transform = kind === 'gzip' ? createGunzip({ chunkSize: 1 << 20 }) : createInflateRaw({ chunkSize: 1 << 20 });
  const feed = (async () => {
    try {
      for await (const chunk of fileRange(file, start, length)) {
        if (z.destroyed) return;
        if (!z.write(chunk)) await new Promise<void>((r) => (z.once('drain', () => r()), z.once('close', () => r())));
      }
      z.end();
    } catch (err) {
      z.destroy(err as Error);
    }
  })();
  let out = 0;
  try {
    for await (const chunk of z as AsyncIterable<Buffer>) {
      out += chunk.length;
      if (out > max()) throw new DataError(`${what}: inflates to more than the ${max()} bytes its header declares`);
      yield chunk;
    }
  } catch (err) {
    if (err instanceof DataError) throw err;
    throw new DataError(`${what}: corrupt ${kind === 'gzip' ? 'gzip' : 'deflate'} data (${(err as Error).message})`, { cause: err });
  } finally {
    z.destroy();
    await feed;
  }
}

/** Reads exact byte counts from a stream of chunks. */
export class ChunkReader {
  private buf: Uint8Array = new Uint8Array(0);
  private at = 0;
  private ended = false;

  constructor(private readonly it: AsyncIterator<Uint8Array>) {}

  static of(gen: AsyncIterable<Uint8Array>): ChunkReader {
    return new ChunkReader(gen[Symbol.asyncIterator]());
  }

  /** Up to n bytes (fewer only at the end of the stream), as a fresh array. */
  async take(n: number): Promise<Uint8Array> {
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      if (this.at === this.buf.length) {
        if (this.ended) break;
        const r = await this.it.next();
        if (r.done) {
          this.ended = true;
          break;
        }
        this.buf = r.value;
        this.at = 0;
        continue;
      }
      const k = Math.min(n - filled, this.buf.length - this.at);
      out.set(this.buf.subarray(this.at, this.at + k), filled);
      filled += k;
      this.at += k;
    }
    return filled === n ? out : out.subarray(0, filled);
  }

  /** Whether any bytes are left (reads ahead one chunk). */
  async atEnd(): Promise<boolean> {
    if (this.at < this.buf.length) return false;
    if (this.ended) return true;
    const r = await this.it.next();
    if (r.done) {
      this.ended = true;
      return true;
    }
    this.buf = r.value;
    this.at = 0;
    return this.buf.length === 0 ? this.atEnd() : false;
  }

  async close(): Promise<void> {
    await this.it.return?.(undefined);
  }
}

/** Whether a file starts with the gzip magic (whatever its name). */
export function isGzip(file: string): boolean {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(2);
    return fs.readSync(fd, b, 0, 2, 0) === 2 && b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    fs.closeSync(fd);
  }
}

/** Whether anything has that name, a dangling symbolic link included (so statSource can say what is wrong). */
export function present(p: string): boolean {
  try {
    fs.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}
