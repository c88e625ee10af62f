// Where loaders put decoded images: a SplitSink per split takes them in order, chunk by chunk,
// so that no loader holds more than a chunk of a split (the cache writer, cache.ts, appends each
// chunk to the cache file). Wrappers add the `size` crop-and-resize and the progress line.
import { DataError } from '../errors.js';
import { cropResize } from './resize.js';
import { memorySet } from './sets.js';
import type { ImageSet } from './types.js';

export interface ImageShape {
  h: number;
  w: number;
  c: number;
}

export interface SplitSink {
  /** `count` images of one shape, (count, h, w, c) row-major. Every chunk of a split has one shape. */
  write(images: Uint8Array, count: number, shape: ImageShape): void;
  /** How many images the loader expects in all (for the progress line's ETA); optional. */
  expect?(total: number): void;
}

/** Checks that every chunk of a split has one shape and fits its data; counts the images. */
export abstract class CheckedSink implements SplitSink {
  n = 0;
  shape: ImageShape | null = null;

  constructor(readonly what: string) {}

  write(images: Uint8Array, count: number, s: ImageShape): void {
    if (!this.shape) this.shape = { h: s.h, w: s.w, c: s.c };
    const { h, w, c } = this.shape;
    if (s.h !== h || s.w !== w || s.c !== c) {
      throw new DataError(`${this.what}: images of ${s.h}×${s.w}×${s.c} after images of ${h}×${w}×${c}; every image of a split must have one size`);
    }
    if (images.length !== count * h * w * c) throw new Error(`internal: ${images.length} values for ${count} images of ${h}×${w}×${c}`);
    if (count === 0) return;
    this.append(images);
    this.n += count;
  }

  protected abstract append(images: Uint8Array): void;

  /** The split's shape; an error naming the split when it holds no images. */
  protected finalShape(): { n: number } & ImageShape {
    if (!this.shape || this.n === 0) throw new DataError(`${this.what}: no images`);
    return { n: this.n, ...this.shape };
  }
}

/**
 * A split held in memory: where the cache cannot be written (a read-only folder, a full disk).
 * Refuses more than `limit` bytes, so a split too large for memory fails with a clear error.
 */
export class MemorySink extends CheckedSink {
  private parts: Uint8Array[] = [];
  private bytes = 0;

  constructor(what: string, private readonly limit: number, private readonly tooLarge: () => Error) {
    super(what);
  }

  protected append(images: Uint8Array): void {
    this.bytes += images.length;
    if (this.bytes > this.limit) throw this.tooLarge();
    this.parts.push(images.slice());
  }

  finish(): ImageSet {
    const shape = this.finalShape();
    const data = new Uint8Array(this.bytes);
    let at = 0;
    for (const p of this.parts) {
      data.set(p, at);
      at += p.length;
    }
    this.parts = [];
    return memorySet(data, shape);
  }
}

/** Center-crops and area-averages every image to size×size before `out` (a no-op when already so). */
export function resizingSink(out: SplitSink, size: number): SplitSink {
  return {
    expect: (t) => out.expect?.(t),
    write(images, count, s) {
      if (s.h === size && s.w === size) return out.write(images, count, s);
      const one = s.h * s.w * s.c;
      const res = new Uint8Array(count * size * size * s.c);
      for (let i = 0; i < count; i++) res.set(cropResize(images.subarray(i * one, (i + 1) * one), s.h, s.w, s.c, size), i * size * size * s.c);
      out.write(res, count, { h: size, w: size, c: s.c });
    },
  };
}

const fmtInt = (x: number) => Math.round(x).toLocaleString('en-US');

function fmtEta(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  return m >= 60 ? `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m` : m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${Math.round(s)}s`;
}

/**
 * Reports progress on `out` through onProgress, at most every `everyMs`: images done, images/s
 * and, when the loader said how many to expect, the ETA. `what` names the split.
 */
export function progressSink(out: SplitSink, what: string, onProgress: (m: string) => void, everyMs = 2000, now: () => number = () => performance.now()): SplitSink & { done(): void } {
  // the clock starts with the split's first images (a split decoded after another waits for it)
  let started = -1;
  let last = 0;
  const start = () => {
    if (started < 0) started = last = now();
  };
  let n = 0;
  let total: number | undefined;
  const line = () => {
    const secs = (now() - started) / 1000;
    const rate = secs > 0 ? n / secs : 0;
    const of = total ? `/${fmtInt(total)}` : '';
    const eta = total && rate > 0 ? `, ETA ${fmtEta((total - n) / rate)}` : '';
    return `decoding ${what}: ${fmtInt(n)}${of} images (${fmtInt(rate)} images/s${eta})`;
  };
  return {
    expect(t) {
      start();
      total = t;
      out.expect?.(t);
    },
    write(images, count, s) {
      start();
      out.write(images, count, s);
      n += count;
      const t = now();
      if (t - last >= everyMs) {
        last = t;
        onProgress(line());
      }
    },
    done() {
      start();
      const secs = (now() - started) / 1000;
      onProgress(`decoded ${what}: ${fmtInt(n)} images in ${secs.toFixed(1)} s (${fmtInt(secs > 0 ? n / secs : 0)} images/s)`);
    },
  };
}
