// The shape of a dataset: every split is N images of H×W×C uint8 values, read through methods
// rather than held in one array, so a split may live in a memory-mapped cache file of any size
// (src/data/cache.ts), in memory (src/data/sets.ts), or be a lazy view of another split (a range,
// x[::s, ::s], fewer bits). Every read returns a fresh (count, H, W, C) row-major copy that the
// caller may keep or change.
import type { SplitSink } from './sink.js';

export interface ImageSet {
  readonly n: number;
  readonly h: number;
  readonly w: number;
  readonly c: number;
  /** Images [start, start + count): a fresh (count, H, W, C) uint8 copy. */
  read(start: number, count: number): Uint8Array;
  /** The images at `indices`, in that order: a fresh (k, H, W, C) uint8 copy. */
  gather(indices: ArrayLike<number>): Uint8Array;
  /**
   * gather() off the main thread where the set can (a cache file: reads on libuv's threads), so a
   * batch prepared ahead overlaps the training step. Optional; BatchIterator falls back to gather().
   */
  gatherAsync?(indices: ArrayLike<number>): Promise<Uint8Array>;
}

export interface Dataset {
  /** The canonical spec it was loaded from, e.g. `fashion-mnist` or `cifar10:/data/cifar`. */
  name: string;
  train: ImageSet;
  test: ImageSet;
  /** Bits per value: 8, or fewer after `--bits` (values then lie in 0..2^bits - 1). */
  bits: number;
}

export interface LoadOptions {
  /** Keep the top `bits` of 8 (SPN's 3- and 5-bit datasets). Default 8. */
  bits?: number;
  /** Center-crop to a square and area-average down to size×size. */
  size?: number;
  /** Where decoded splits are cached. Default `.cache/spn-data` in the working directory. */
  cacheDir?: string;
  /** Seed of the 90/10 split of a `folder:` dataset without train/ and test/. Default 0. */
  seed?: number;
  onProgress?: (msg: string) => void;
}

/** Bytes of one image. */
export function imageSize(s: { h: number; w: number; c: number }): number {
  return s.h * s.w * s.c;
}

/**
 * A dataset spec resolved to its files but not yet decoded. The cache key is derived from
 * `name`, `key` and the files' sizes and mtimes, so resolving must be cheap and decoding lazy.
 */
export interface DatasetSource {
  /** Canonical spec, e.g. `cifar10:/abs/path`. */
  name: string;
  /** Every file the splits are decoded from. */
  files: string[];
  /** Anything else that changes the decoded result (e.g. the split seed). */
  key?: string;
  /**
   * Decodes the splits into the sinks, images in order, a chunk at a time (never a whole split
   * in memory); the sinks check shapes and write the cache.
   */
  load(sinks: { train: SplitSink; test: SplitSink }, onProgress: (msg: string) => void): Promise<void>;
}
