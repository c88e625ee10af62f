// ImageSet implementations that are not files: a set held in memory (small sets, tests, decoded
// inputs), a range of another set, and a per-read transform of another set (subsampling, fewer
// bits). Views read their source on demand, so a view of a memory-mapped split of any size costs
// only the images asked for.
import { ArgError } from '../errors.js';
import type { ImageSet } from './types.js';

export interface SetShape {
  n: number;
  h: number;
  w: number;
  c: number;
}

function checkShape(s: SetShape, what: string): void {
  for (const k of ['n', 'h', 'w', 'c'] as const) {
    if (!Number.isSafeInteger(s[k]) || s[k] < 0) throw new ArgError(`${what}: ${k}=${s[k]} must be a non-negative integer`);
  }
}

/** Checks [start, start + count) against n; the message names the set's size. */
export function checkRange(start: number, count: number, n: number): void {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(count) || start < 0 || count < 0 || start + count > n) {
    throw new ArgError(`images [${start}, ${start} + ${count}) are out of range for a set of ${n} images`);
  }
}

/** Checks each index against n. */
export function checkIndices(indices: ArrayLike<number>, n: number): void {
  for (let i = 0; i < indices.length; i++) {
    const j = indices[i]!;
    if (!Number.isSafeInteger(j) || j < 0 || j >= n) throw new ArgError(`image index ${j} is out of range for a set of ${n} images`);
  }
}

/** The common part of every set: its shape, with reads validated before they reach `readRange`. */
export abstract class BaseSet implements ImageSet {
  readonly n: number;
  readonly h: number;
  readonly w: number;
  readonly c: number;
  /** Bytes of one image. */
  readonly size: number;

  constructor(shape: SetShape, what: string) {
    checkShape(shape, what);
    this.n = shape.n;
    this.h = shape.h;
    this.w = shape.w;
    this.c = shape.c;
    this.size = shape.h * shape.w * shape.c;
  }

  read(start: number, count: number): Uint8Array {
    checkRange(start, count, this.n);
    return this.readRange(start, count);
  }

  gather(indices: ArrayLike<number>): Uint8Array {
    checkIndices(indices, this.n);
    return this.gatherChecked(indices);
  }

  async gatherAsync(indices: ArrayLike<number>): Promise<Uint8Array> {
    checkIndices(indices, this.n);
    return this.gatherCheckedAsync(indices);
  }

  /** By default the synchronous gather; sets backed by files read asynchronously. */
  protected gatherCheckedAsync(indices: ArrayLike<number>): Promise<Uint8Array> {
    return Promise.resolve(this.gatherChecked(indices));
  }

  /** Images [start, start + count), already checked. */
  protected abstract readRange(start: number, count: number): Uint8Array;

  /** By default one range read per run of consecutive indices. */
  protected gatherChecked(indices: ArrayLike<number>): Uint8Array {
    const out = new Uint8Array(indices.length * this.size);
    let i = 0;
    while (i < indices.length) {
      let j = i + 1;
      while (j < indices.length && indices[j] === indices[j - 1]! + 1) j++;
      out.set(this.readRange(indices[i]!, j - i), i * this.size);
      i = j;
    }
    return out;
  }
}

class MemorySet extends BaseSet {
  constructor(private readonly data: Uint8Array, shape: SetShape) {
    super(shape, 'memorySet');
    if (data.length !== shape.n * this.size) {
      throw new ArgError(`memorySet: ${data.length} values do not hold ${shape.n} images of ${shape.h}×${shape.w}×${shape.c}`);
    }
  }

  protected readRange(start: number, count: number): Uint8Array {
    return this.data.slice(start * this.size, (start + count) * this.size);
  }

  protected override gatherChecked(indices: ArrayLike<number>): Uint8Array {
    const out = new Uint8Array(indices.length * this.size);
    for (let i = 0; i < indices.length; i++) {
      const at = indices[i]! * this.size;
      out.set(this.data.subarray(at, at + this.size), i * this.size);
    }
    return out;
  }
}

/** A set over `data`, (n, h, w, c) row-major, which it keeps (not copied; do not change it after). */
export function memorySet(data: Uint8Array, shape: SetShape): ImageSet {
  return new MemorySet(data, shape);
}

class SliceSet extends BaseSet {
  constructor(private readonly src: ImageSet, private readonly start: number, count: number) {
    super({ n: count, h: src.h, w: src.w, c: src.c }, 'sliceSet');
  }

  protected readRange(start: number, count: number): Uint8Array {
    return this.src.read(this.start + start, count);
  }

  protected override gatherChecked(indices: ArrayLike<number>): Uint8Array {
    return this.src.gather(Array.from(indices, (i) => i + this.start));
  }

  protected override gatherCheckedAsync(indices: ArrayLike<number>): Promise<Uint8Array> {
    const shifted = Array.from(indices, (i) => i + this.start);
    return this.src.gatherAsync ? this.src.gatherAsync(shifted) : Promise.resolve(this.src.gather(shifted));
  }
}

/** Images [start, start + count) of `set`, as a set (a view: nothing is read until asked). */
export function sliceSet(set: ImageSet, start: number, count: number): ImageSet {
  checkRange(start, count, set.n);
  if (start === 0 && count === set.n) return set;
  return new SliceSet(set, start, count);
}

/** The first min(n, set.n) images. */
export function headSet(set: ImageSet, n: number): ImageSet {
  return sliceSet(set, 0, Math.min(n, set.n));
}

class MapSet extends BaseSet {
  constructor(
    private readonly src: ImageSet,
    shape: { h: number; w: number; c: number },
    private readonly f: (images: Uint8Array, count: number) => Uint8Array,
  ) {
    super({ n: src.n, ...shape }, 'mapSet');
  }

  protected readRange(start: number, count: number): Uint8Array {
    return this.f(this.src.read(start, count), count);
  }

  protected override gatherChecked(indices: ArrayLike<number>): Uint8Array {
    return this.f(this.src.gather(indices), indices.length);
  }

  protected override async gatherCheckedAsync(indices: ArrayLike<number>): Promise<Uint8Array> {
    const x = this.src.gatherAsync ? await this.src.gatherAsync(indices) : this.src.gather(indices);
    return this.f(x, indices.length);
  }
}

/**
 * A lazy per-read transform: every read of the result reads the same images of `set` and
 * passes them (a fresh copy, which `f` may change in place) through `f`, which returns `count`
 * images of the new shape.
 */
export function mapSet(set: ImageSet, shape: { h: number; w: number; c: number }, f: (images: Uint8Array, count: number) => Uint8Array): ImageSet {
  return new MapSet(set, shape, f);
}

/** Every image of a set in one array: for small sets only (tests, a few images to code). */
export function readAll(set: ImageSet): Uint8Array {
  return set.read(0, set.n);
}
