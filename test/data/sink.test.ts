import { describe, expect, it } from 'vitest';
import { MemorySink, progressSink, resizingSink } from '../../src/data/sink.js';
import { cropResize } from '../../src/data/resize.js';
import { readAll } from '../../src/data/sets.js';
import { bytes } from './fixtures.js';

describe('split sinks', () => {
  it('the progress line: images done of expected, images/s and ETA, at most every interval', () => {
    let t = 1000;
    const lines: string[] = [];
    const mem = new MemorySink('x', 1 << 20, () => new Error('too large'));
    const p = progressSink(mem, 'imagenet:/d train', (m) => lines.push(m), 2000, () => t);
    p.expect!(10_000);
    for (let i = 0; i < 6; i++) {
      t += 1000; // 1,000 images a second
      p.write(new Uint8Array(1000 * 4), 1000, { h: 1, w: 2, c: 2 });
    }
    expect(lines).toEqual([
      'decoding imagenet:/d train: 2,000/10,000 images (1,000 images/s, ETA 8s)',
      'decoding imagenet:/d train: 4,000/10,000 images (1,000 images/s, ETA 6s)',
      'decoding imagenet:/d train: 6,000/10,000 images (1,000 images/s, ETA 4s)',
    ]);
    p.done();
    expect(lines.at(-1)).toBe('decoded imagenet:/d train: 6,000 images in 6.0 s (1,000 images/s)');
    expect(mem.finish().n).toBe(6000);
  });

  it('checks one shape per split, refuses an empty split and a split over its memory limit', () => {
    const mem = new MemorySink('cifar10:/d (train)', 100, () => new Error('over the limit'));
    expect(() => mem.finish()).toThrow(/cifar10:\/d \(train\): no images/);
    mem.write(new Uint8Array(8), 2, { h: 2, w: 2, c: 1 });
    expect(() => mem.write(new Uint8Array(9), 1, { h: 3, w: 3, c: 1 })).toThrow(/images of 3×3×1 after images of 2×2×1/);
    expect(() => mem.write(new Uint8Array(100), 25, { h: 2, w: 2, c: 1 })).toThrow(/over the limit/);
  });

  it('resizes each chunk before the sink', () => {
    const mem = new MemorySink('x', 1 << 20, () => new Error('too large'));
    const imgs = bytes(2 * 4 * 6 * 3, 3);
    resizingSink(mem, 2).write(imgs, 2, { h: 4, w: 6, c: 3 });
    const out = readAll(mem.finish());
    expect(out).toEqual(Uint8Array.from([...cropResize(imgs.subarray(0, 72), 4, 6, 3, 2), ...cropResize(imgs.subarray(72), 4, 6, 3, 2)]));
  });
});
