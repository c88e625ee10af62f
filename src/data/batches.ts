// Training batches: a seeded shuffle per epoch (epoch e uses permutation(n, hash(seed, e)), so a
// run resumed from a saved {epoch, index} sees exactly the batches it would have seen), and one
// batch prepared ahead on the event loop so `await next()` returns at once.
import { ArgError } from '../errors.js';
import { hashSeed, permutation } from './rng.js';
import type { ImageSet } from './types.js';

/** Where the next batch starts: `index` images into epoch `epoch`'s order. */
export interface BatchPosition {
  epoch: number;
  index: number;
}

export interface Batch {
  /** (n, H, W, C) uint8, a fresh copy the caller may keep. */
  data: Uint8Array;
  /** Images in this batch: batchSize, or fewer for the last batch of an epoch without dropLast. */
  n: number;
  /** Where this batch started. */
  epoch: number;
  index: number;
}

export interface BatchOptions {
  batchSize: number;
  /** Default 0. */
  seed?: number;
  /** Shuffle each epoch (default true); false gives dataset order. */
  shuffle?: boolean;
  /** Skip a last partial batch (default true), so every batch has batchSize images. */
  dropLast?: boolean;
  /** Start here instead of {epoch: 0, index: 0} (training resume). */
  position?: BatchPosition;
}

export class BatchIterator {
  readonly batchSize: number;
  private readonly set: ImageSet;
  private readonly seed: number;
  private readonly shuffle: boolean;
  private readonly dropLast: boolean;
  private pos: BatchPosition = { epoch: 0, index: 0 };
  private perms = new Map<number, Uint32Array>();
  private ahead: { epoch: number; index: number; batch: Promise<Batch> } | undefined;

  constructor(set: ImageSet, opts: BatchOptions) {
    const { batchSize, seed = 0, shuffle = true, dropLast = true } = opts;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new ArgError(`batchSize=${batchSize} must be a positive integer`);
    if (set.n < 1) throw new ArgError('cannot batch an empty image set');
    if (dropLast && set.n < batchSize) {
      throw new ArgError(`batchSize=${batchSize} is larger than the ${set.n} images in the set (dropLast would yield nothing)`);
    }
    if (!Number.isSafeInteger(seed)) throw new ArgError(`seed=${seed} must be an integer`);
    this.set = set;
    this.batchSize = batchSize;
    this.seed = seed;
    this.shuffle = shuffle;
    this.dropLast = dropLast;
    if (opts.position) this.seek(opts.position);
  }

  /** Batches in one epoch. */
  get batchesPerEpoch(): number {
    return this.dropLast ? Math.floor(this.set.n / this.batchSize) : Math.ceil(this.set.n / this.batchSize);
  }

  /** The position of the next batch; save it with a checkpoint and pass it back to resume. */
  position(): BatchPosition {
    return { ...this.pos };
  }

  seek(pos: BatchPosition): void {
    const { epoch, index } = pos;
    if (!Number.isSafeInteger(epoch) || epoch < 0 || !Number.isSafeInteger(index) || index < 0 || index > this.set.n) {
      throw new ArgError(`batch position {epoch: ${epoch}, index: ${index}} is invalid for a set of ${this.set.n} images`);
    }
    this.pos = this.normalize({ epoch, index });
    this.ahead = undefined;
  }

  /** The next batch, now. */
  nextSync(): Batch {
    const b = this.make(this.pos);
    this.pos = this.after(b);
    this.ahead = undefined;
    return b;
  }

  /** The next batch; the one after it is then prepared in the background. */
  async next(): Promise<Batch> {
    const { epoch, index } = this.pos;
    const ready = this.ahead && this.ahead.epoch === epoch && this.ahead.index === index ? this.ahead.batch : undefined;
    const b = ready ? await ready : this.make(this.pos);
    this.pos = this.after(b);
    const nextPos = this.pos;
    // A set that reads off the main thread (a cache file) starts the reads now, so they overlap
    // the caller's training step; otherwise the batch is made on the next turn of the event loop.
    const batch = this.set.gatherAsync ? this.makeAsync(nextPos) : new Promise<Batch>((resolve) => setImmediate(() => resolve(this.make(nextPos))));
    batch.catch(() => {}); // a failed prefetch is reported when that batch is asked for
    this.ahead = { ...nextPos, batch };
    return b;
  }

  // Past the end of an epoch (or too few images left for a full batch with dropLast) → next epoch.
  private normalize(p: BatchPosition): BatchPosition {
    const need = this.dropLast ? this.batchSize : 1;
    return p.index + need > this.set.n ? { epoch: p.epoch + 1, index: 0 } : p;
  }

  private after(b: Batch): BatchPosition {
    return this.normalize({ epoch: b.epoch, index: b.index + b.n });
  }

  private perm(epoch: number): Uint32Array {
    let p = this.perms.get(epoch);
    if (!p) {
      p = permutation(this.set.n, hashSeed(this.seed, epoch));
      // Keep the current epoch and the one being prefetched.
      for (const e of this.perms.keys()) if (e < epoch - 1) this.perms.delete(e);
      this.perms.set(epoch, p);
    }
    return p;
  }

  private indices(p: BatchPosition, n: number): ArrayLike<number> {
    if (this.shuffle) return this.perm(p.epoch).subarray(p.index, p.index + n);
    return Array.from({ length: n }, (_, i) => p.index + i);
  }

  private async makeAsync(p: BatchPosition): Promise<Batch> {
    const n = Math.min(this.batchSize, this.set.n - p.index);
    const data = await this.set.gatherAsync!(this.indices(p, n));
    return { data, n, epoch: p.epoch, index: p.index };
  }

  private make(p: BatchPosition): Batch {
    const n = Math.min(this.batchSize, this.set.n - p.index);
    // Gathered by index from the set (a mapped cache file reads only these images).
    const data = this.shuffle ? this.set.gather(this.perm(p.epoch).subarray(p.index, p.index + n)) : this.set.read(p.index, n);
    return { data, n, epoch: p.epoch, index: p.index };
  }
}

/** Dataset-order batches of one pass (evaluation), each read from the set as it is reached. */
export function* orderedBatches(set: ImageSet, batchSize: number): Generator<{ data: Uint8Array; n: number; index: number }> {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new ArgError(`batchSize=${batchSize} must be a positive integer`);
  for (let i = 0; i < set.n; i += batchSize) {
    const n = Math.min(batchSize, set.n - i);
    yield { data: set.read(i, n), n, index: i };
  }
}
