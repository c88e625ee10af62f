// The real datasets on this machine: the CIFAR-10 subset in /work/shared/data and Debian's
// Fashion-MNIST. Skipped, with a message, where they are absent.
import * as fs from 'node:fs';
import { Command } from 'commander';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { register } from '../../src/cli/data.js';
import { channelMeans, loadDataset, readAll } from '../../src/data/index.js';
import { FASHION_MNIST_DIR } from '../../src/data/idx.js';
import { cleanupTmp, tmpDir } from './fixtures.js';

afterAll(cleanupTmp);

const CIFAR = '/work/shared/data/cifar10-subset';
const hasCifar = fs.existsSync(CIFAR);
const hasFashion = fs.existsSync(FASHION_MNIST_DIR);
if (!hasCifar) console.warn(`skipping CIFAR-10 subset tests: ${CIFAR} is absent`);
if (!hasFashion) console.warn(`skipping Fashion-MNIST tests: ${FASHION_MNIST_DIR} is absent (apt-get install dataset-fashion-mnist)`);

describe.skipIf(!hasCifar)('CIFAR-10 subset', () => {
  it('has the README means and first red values', async () => {
    const ds = await loadDataset(`cifar10:${CIFAR}`, { cacheDir: tmpDir() });
    expect([ds.train.n, ds.test.n]).toEqual([4000, 1000]);
    const close = (got: number[], want: number[]) => got.forEach((g, i) => expect(Math.abs(g - want[i]!)).toBeLessThan(0.1));
    close(channelMeans(ds.test), [126.7, 124.1, 115.0]);
    close(channelMeans(ds.train), [125.4, 122.8, 113.4]);
    const red = [0, 1, 2, 3].map((p) => readAll(ds.test)[p * 3]);
    expect(red).toEqual([158, 159, 165, 166]);
  });

  it('spn data --json prints exactly train, test, shape and mean', async () => {
    const program = new Command().exitOverride();
    register(program);
    let out = '';
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => {
      out += String(s);
      return true;
    });
    try {
      await program.parseAsync(['data', `cifar10:${CIFAR}`, '--json', '--bits', '5', '--cache-dir', tmpDir()], { from: 'user' });
    } finally {
      spy.mockRestore();
    }
    const j = JSON.parse(out);
    expect(Object.keys(j)).toEqual(['train', 'test', 'shape', 'mean']);
    expect([j.train, j.test, j.shape]).toEqual([4000, 1000, [32, 32, 3]]);
    // Means of the 5-bit values: roughly the 8-bit means / 8.
    j.mean.forEach((m: number, i: number) => expect(Math.abs(m - [126.7, 124.1, 115.0][i]! / 8)).toBeLessThan(0.6));
  });
});

describe.skipIf(!hasFashion)('Fashion-MNIST', () => {
  it('loads 60,000 train and 10,000 test 28×28×1 images, then from the cache', async () => {
    const cacheDir = tmpDir();
    const msgs: string[] = [];
    const a = await loadDataset('fashion-mnist', { cacheDir });
    expect([a.train.n, a.test.n, a.test.h, a.test.w, a.test.c]).toEqual([60000, 10000, 28, 28, 1]);
    const b = await loadDataset(undefined, { cacheDir, onProgress: (m) => msgs.push(m) });
    expect(msgs[0]).toMatch(/^cache hit/);
    // Buffer.equals: vitest's deep equality is far too slow on 7.8 million values.
    expect(Buffer.from(readAll(b.test)).equals(Buffer.from(readAll(a.test)))).toBe(true);
  }, 20000);
});
