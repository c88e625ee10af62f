import { describe, expect, it } from 'vitest';
import { BatchIterator, orderedBatches } from '../../src/data/batches.js';
import { hashSeed, permutation, Rng } from '../../src/data/rng.js';
import { channelMeans } from '../../src/data/stats.js';
import { memorySet } from '../../src/data/sets.js';
import type { ImageSet } from '../../src/data/types.js';

// Image i is 2×2×1 filled with the value i, so a batch's first values name its images.
function set(n: number): ImageSet {
  const data = new Uint8Array(n * 4);
  for (let i = 0; i < n; i++) data.fill(i, i * 4, i * 4 + 4);
  return memorySet(data, { n, h: 2, w: 2, c: 1 });
}
const ids = (d: Uint8Array) => Array.from(d.filter((_, i) => i % 4 === 0));

describe('rng', () => {
  it('is reproducible and roughly uniform', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const xs = Array.from({ length: 1000 }, () => a.next());
    expect(xs).toEqual(Array.from({ length: 1000 }, () => b.next()));
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.05);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(hashSeed(1, 2)).not.toBe(hashSeed(2, 1));
    const p = permutation(50, 3);
    expect(Array.from(p).sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });
});

describe('BatchIterator', () => {
  it('covers every image once per epoch, with a different shuffle each epoch', () => {
    const it = new BatchIterator(set(10), { batchSize: 5, seed: 7 });
    expect(it.batchesPerEpoch).toBe(2);
    const e0 = [...ids(it.nextSync().data), ...ids(it.nextSync().data)];
    expect(it.position()).toEqual({ epoch: 1, index: 0 });
    const e1 = [...ids(it.nextSync().data), ...ids(it.nextSync().data)];
    expect([...e0].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect([...e1].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(e0).not.toEqual(e1);
    // Same seed, same batches.
    const again = new BatchIterator(set(10), { batchSize: 5, seed: 7 });
    expect(ids(again.nextSync().data)).toEqual(e0.slice(0, 5));
  });

  it('drops or keeps the last partial batch', () => {
    const drop = new BatchIterator(set(7), { batchSize: 3, shuffle: false });
    expect([drop.nextSync(), drop.nextSync(), drop.nextSync()].map((b) => [b.epoch, b.index, b.n])).toEqual([
      [0, 0, 3],
      [0, 3, 3],
      [1, 0, 3],
    ]);
    const keep = new BatchIterator(set(7), { batchSize: 3, shuffle: false, dropLast: false });
    expect(keep.batchesPerEpoch).toBe(3);
    const bs = [keep.nextSync(), keep.nextSync(), keep.nextSync(), keep.nextSync()];
    expect(bs.map((b) => ids(b.data))).toEqual([[0, 1, 2], [3, 4, 5], [6], [0, 1, 2]]);
  });

  it('resumes from a saved position with exactly the same batches', async () => {
    const a = new BatchIterator(set(23), { batchSize: 4, seed: 3 });
    for (let i = 0; i < 7; i++) await a.next();
    const saved = a.position();
    const rest = [];
    for (let i = 0; i < 9; i++) rest.push(ids((await a.next()).data));
    const b = new BatchIterator(set(23), { batchSize: 4, seed: 3, position: saved });
    const resumed = [];
    for (let i = 0; i < 9; i++) resumed.push(ids(b.nextSync().data));
    expect(resumed).toEqual(rest);
    // seek() on a running iterator discards the prefetched batch.
    a.seek(saved);
    expect(ids((await a.next()).data)).toEqual(rest[0]);
  });

  it('prefetch gives the same batches as synchronous iteration', async () => {
    const a = new BatchIterator(set(12), { batchSize: 3, seed: 9 });
    const b = new BatchIterator(set(12), { batchSize: 3, seed: 9 });
    for (let i = 0; i < 10; i++) {
      const x = await a.next();
      await new Promise((r) => setImmediate(r)); // let the prefetch run
      expect(x.data).toEqual(b.nextSync().data);
    }
  });

  it('validates its options', () => {
    expect(() => new BatchIterator(set(3), { batchSize: 4 })).toThrow(/batchSize=4 is larger than the 3 images/);
    expect(() => new BatchIterator(set(3), { batchSize: 0 })).toThrow(/batchSize=0/);
    expect(() => new BatchIterator(set(3), { batchSize: 1, position: { epoch: -1, index: 0 } })).toThrow(/epoch: -1/);
  });

  it('orderedBatches walks the set once in order', () => {
    expect([...orderedBatches(set(5), 2)].map((b) => ids(b.data))).toEqual([[0, 1], [2, 3], [4]]);
  });
});

describe('channelMeans', () => {
  it('averages each channel', () => {
    const s: ImageSet = memorySet(Uint8Array.from([0, 10, 2, 20, 4, 30, 6, 40]), { n: 2, h: 1, w: 2, c: 2 });
    expect(channelMeans(s)).toEqual([3, 25]);
  });
});
