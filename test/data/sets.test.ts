import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BatchIterator } from '../../src/data/batches.js';
import { loadDataset } from '../../src/data/index.js';
import { CacheSet } from '../../src/data/cache.js';
import { applyBits, shiftSet } from '../../src/data/bits.js';
import { headSet, mapSet, memorySet, readAll, sliceSet } from '../../src/data/sets.js';
import { subsampleSet } from '../../src/data/subsample.js';
import { bytes, cifarBytes, cleanupTmp, tmpDir } from './fixtures.js';

afterAll(cleanupTmp);

// 5 images of 4×4×2: image i, pixel (y, x), channel k holds i * 40 + y * 8 + x * 2 + k.
const base = () => memorySet(Uint8Array.from({ length: 5 * 32 }, (_, j) => j + Math.floor(j / 32) * 8), { n: 5, h: 4, w: 4, c: 2 });

describe('ImageSet views', () => {
  it('memorySet reads ranges and gathers by index, always a fresh copy', () => {
    const data = bytes(5 * 6, 1);
    const s = memorySet(data, { n: 5, h: 1, w: 3, c: 2 });
    expect(s.read(1, 2)).toEqual(data.subarray(6, 18));
    expect(s.gather([4, 0, 4])).toEqual(Uint8Array.from([...data.subarray(24, 30), ...data.subarray(0, 6), ...data.subarray(24, 30)]));
    const r = s.read(0, 1);
    r[0] = r[0]! ^ 0xff;
    expect(s.read(0, 1)[0]).toBe(data[0]); // the set is unchanged
    expect(s.read(5, 0)).toHaveLength(0);
    expect(() => s.read(4, 2)).toThrow(/images \[4, 4 \+ 2\) are out of range for a set of 5 images/);
    expect(() => s.gather([5])).toThrow(/image index 5 is out of range/);
    expect(() => s.gather([1.5])).toThrow(expect.objectContaining({ code: 'E_ARG' }));
    expect(() => memorySet(data, { n: 6, h: 1, w: 3, c: 2 })).toThrow(/30 values do not hold 6 images of 1×3×2/);
  });

  it('sliceSet and headSet are ranges of the source', () => {
    const s = base();
    const all = readAll(s);
    const v = sliceSet(s, 1, 3);
    expect([v.n, v.h, v.w, v.c]).toEqual([3, 4, 4, 2]);
    expect(v.read(0, 3)).toEqual(all.subarray(32, 128));
    expect(v.gather([2, 0])).toEqual(Uint8Array.from([...all.subarray(96, 128), ...all.subarray(32, 64)]));
    expect(() => v.read(2, 2)).toThrow(/out of range for a set of 3/);
    expect(() => sliceSet(s, 3, 3)).toThrow(/out of range for a set of 5/);
    expect(headSet(s, 99)).toBe(s);
    expect(headSet(s, 2).n).toBe(2);
  });

  it('subsampleSet and applyBits transform each read and agree with a whole-set computation', () => {
    const s = base();
    const all = readAll(s);
    const sub = subsampleSet(s, 2);
    expect([sub.n, sub.h, sub.w, sub.c]).toEqual([5, 2, 2, 2]);
    const want = (i: number) => [0, 2, 8, 10].flatMap((p) => [all[i * 32 + p * 2]!, all[i * 32 + p * 2 + 1]!]);
    expect(Array.from(sub.read(1, 2))).toEqual([...want(1), ...want(2)]);
    expect(Array.from(sub.gather([4, 0]))).toEqual([...want(4), ...want(0)]);
    const b3 = applyBits(s, 3);
    expect(b3.gather([3])).toEqual(s.read(3, 1).map((v) => v >> 5));
    expect(applyBits(s, 8)).toBe(s);
    // views compose: bits of a subsample of a slice
    const composed = applyBits(subsampleSet(sliceSet(s, 2, 2), 2), 5);
    expect(Array.from(composed.read(0, 2))).toEqual([...want(2), ...want(3)].map((v) => v >> 3));
    expect(() => subsampleSet(s, 3)).toThrow(/does not divide the images' size 4×4/);
    expect(() => shiftSet(s, 8)).toThrow(/bit shift 8/);
  });

  it('a view reads only the images asked for', () => {
    const reads: number[] = [];
    const s = base();
    const counted = mapSet(s, s, (x, count) => (reads.push(count), x));
    const v = applyBits(subsampleSet(counted, 2), 4);
    v.gather([1, 3]);
    v.read(2, 1);
    expect(reads).toEqual([2, 1]);
  });
});

describe('a cached split', () => {
  it('is read from its file: ranges and gathers (runs and single images) equal the decoded images', async () => {
    const dir = tmpDir();
    const imgs = bytes(7 * 3072, 5);
    fs.writeFileSync(path.join(dir, 'data_batch_1.bin'), cifarBytes(imgs));
    fs.writeFileSync(path.join(dir, 'test_batch.bin'), cifarBytes(bytes(3072, 6)));
    const cacheDir = tmpDir('spn-cache-');
    await loadDataset(`cifar10:${dir}`, { cacheDir });
    const { train } = await loadDataset(`cifar10:${dir}`, { cacheDir });
    expect(train).toBeInstanceOf(CacheSet); // from the file, not a copy in memory
    const ref = memorySet(imgs, { n: 7, h: 32, w: 32, c: 3 });
    expect(train.read(2, 4)).toEqual(ref.read(2, 4));
    const idx = [6, 0, 1, 2, 5, 3];
    expect(train.gather(idx)).toEqual(ref.gather(idx));
    expect(applyBits(subsampleSet(train, 4), 2).gather([3, 3])).toEqual(applyBits(subsampleSet(ref, 4), 2).gather([3, 3]));
    expect(() => train.read(6, 2)).toThrow(/out of range for a set of 7/);
    // off the main thread: the same bytes, through views too
    expect(await train.gatherAsync!(idx)).toEqual(ref.gather(idx));
    const view = applyBits(subsampleSet(train, 2), 3);
    expect(await view.gatherAsync!([5, 1])).toEqual(view.gather([5, 1]));
  });

  it('BatchIterator prefetches from a cache file off the main thread: the same batches as synchronous iteration; a failure reaches next()', async () => {
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'data_batch_1.bin'), cifarBytes(bytes(10 * 3072, 8)));
    fs.writeFileSync(path.join(dir, 'test_batch.bin'), cifarBytes(bytes(3072, 9)));
    const cacheDir = tmpDir('spn-cache-');
    await loadDataset(`cifar10:${dir}`, { cacheDir });
    const { train } = await loadDataset(`cifar10:${dir}`, { cacheDir });
    const a = new BatchIterator(train, { batchSize: 3, seed: 4 });
    const b = new BatchIterator(train, { batchSize: 3, seed: 4 });
    for (let i = 0; i < 7; i++) expect((await a.next()).data).toEqual(b.nextSync().data);
    const c = new BatchIterator(train, { batchSize: 2, shuffle: false });
    expect((await c.next()).data).toEqual(train.read(0, 2));
    const file = path.join(cacheDir, fs.readdirSync(cacheDir).find((f) => f.endsWith('.train.bin'))!);
    fs.truncateSync(file, 5000);
    // batch 2 was read ahead before the change (whole, valid); batch 3's read, started after it, fails
    expect((await c.next()).data).toEqual(memorySet(bytes(10 * 3072, 8), { n: 10, h: 32, w: 32, c: 3 }).read(2, 2));
    await expect(c.next()).rejects.toThrow(/\.train\.bin: the data cache is now 5000 bytes/);
  });
});
