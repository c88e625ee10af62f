import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { loadDataset, readAll, resolveSpec } from '../../src/data/index.js';
import { resolveFashionMnist } from '../../src/data/idx.js';
import { readNpzArray } from '../../src/data/npz.js';
import { cropResize } from '../../src/data/resize.js';
import { bytes, cifarBytes, cleanupTmp, idxBytes, imagenetNpz, npyBytes, tmpDir, writeIdx, zipBytes } from './fixtures.js';

afterAll(cleanupTmp);

/** Loads with a private cache folder. */
function load(spec: string, opts: Parameters<typeof loadDataset>[1] = {}) {
  return loadDataset(spec, { cacheDir: path.join(tmpDir('spn-cache-'), 'c'), ...opts });
}

async function png(file: string, w: number, h: number, c: 1 | 3, data: Uint8Array): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  let img = sharp(Buffer.from(data), { raw: { width: w, height: h, channels: c } });
  if (c === 1) img = img.toColourspace('b-w');
  await img.png().toFile(file);
}

describe('IDX / MNIST', () => {
  it('loads gzipped idx:<train> and finds the t10k test file', async () => {
    const dir = tmpDir();
    const train = bytes(5 * 16, 1);
    const test = bytes(3 * 16, 2);
    writeIdx(path.join(dir, 'train-images-idx3-ubyte.gz'), [5, 4, 4], train);
    writeIdx(path.join(dir, 't10k-images-idx3-ubyte.gz'), [3, 4, 4], test);
    const ds = await load(`idx:${path.join(dir, 'train-images-idx3-ubyte.gz')}`);
    expect([ds.train.n, ds.train.h, ds.train.w, ds.train.c]).toEqual([5, 4, 4, 1]);
    expect(readAll(ds.train)).toEqual(train);
    expect(readAll(ds.test)).toEqual(test);
    expect(ds.bits).toBe(8);
  });

  it('loads idx:<train>,<test> and mnist:<dir> with uncompressed files', async () => {
    const dir = tmpDir();
    const train = bytes(2 * 9, 3);
    writeIdx(path.join(dir, 'train-images-idx3-ubyte'), [2, 3, 3], train, false);
    writeIdx(path.join(dir, 't10k-images-idx3-ubyte'), [1, 3, 3], bytes(9, 4), false);
    const a = await load(`mnist:${dir}`);
    expect(readAll(a.train)).toEqual(train);
    expect(a.test.n).toBe(1);
    const b = await load(`idx:${path.join(dir, 'train-images-idx3-ubyte')},${path.join(dir, 't10k-images-idx3-ubyte')}`);
    expect(readAll(b.train)).toEqual(train);
  });

  it('rejects a wrong magic and a truncated file, naming the file', async () => {
    const dir = tmpDir();
    const bad = path.join(dir, 'train-images-idx3-ubyte.gz');
    fs.writeFileSync(bad, idxBytes([2, 2, 2], bytes(8, 1), 0x09));
    writeIdx(path.join(dir, 't10k-images-idx3-ubyte.gz'), [1, 2, 2], bytes(4, 1));
    await expect(load(`idx:${bad}`)).rejects.toThrow(/train-images-idx3-ubyte\.gz: bad IDX magic 0x00000903/);
    fs.writeFileSync(bad, idxBytes([3, 2, 2], bytes(8, 1)));
    await expect(load(`idx:${bad}`)).rejects.toThrow(/says 3×2×2 = 12 bytes.*holds 8/);
  });

  it('reports missing files and folders', async () => {
    await expect(load('idx:/nonexistent/train-images.gz')).rejects.toThrow(
      expect.objectContaining({ code: 'E_DATA', message: expect.stringContaining('/nonexistent/train-images.gz') }),
    );
    await expect(load('mnist:/nonexistent/mnist')).rejects.toThrow(/folder \/nonexistent\/mnist does not exist/);
    const dir = tmpDir();
    await expect(load(`mnist:${dir}`)).rejects.toThrow(/no train images found/);
    expect(() => resolveFashionMnist('/nonexistent/fashion')).toThrow(/apt-get install dataset-fashion-mnist/);
  });
});

describe('CIFAR-10', () => {
  it('converts R, G, B planes to HWC and concatenates batches in order', async () => {
    const dir = tmpDir();
    const imgs = bytes(5 * 3072, 7);
    fs.writeFileSync(path.join(dir, 'data_batch_2.bin'), cifarBytes(imgs.subarray(2 * 3072, 4 * 3072)));
    fs.writeFileSync(path.join(dir, 'data_batch_1.bin'), cifarBytes(imgs.subarray(0, 2 * 3072)));
    fs.writeFileSync(path.join(dir, 'test_batch.bin'), cifarBytes(imgs.subarray(4 * 3072)));
    const ds = await load(`cifar10:${dir}`);
    expect([ds.train.n, ds.train.h, ds.train.w, ds.train.c, ds.test.n]).toEqual([4, 32, 32, 3, 1]);
    expect(readAll(ds.train)).toEqual(imgs.subarray(0, 4 * 3072));
    expect(readAll(ds.test)).toEqual(imgs.subarray(4 * 3072));
  });

  it('rejects a truncated record, naming the file', async () => {
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'data_batch_1.bin'), cifarBytes(bytes(2 * 3072, 1)).subarray(0, 2 * 3073 - 5));
    fs.writeFileSync(path.join(dir, 'test_batch.bin'), cifarBytes(bytes(3072, 1)));
    await expect(load(`cifar10:${dir}`)).rejects.toThrow(/data_batch_1\.bin: size 6141 bytes is not a multiple of .* 3073/);
  });

  it('needs training batches and a test batch', async () => {
    const dir = tmpDir();
    await expect(load(`cifar10:${dir}`)).rejects.toThrow(/no data_batch_\*\.bin/);
    fs.writeFileSync(path.join(dir, 'data_batch_1.bin'), cifarBytes(bytes(3072, 1)));
    await expect(load(`cifar10:${dir}`)).rejects.toThrow(/no test_batch\.bin/);
  });
});

describe('folder of images', () => {
  it('uses train/ and test/ subfolders and keeps all-gray sets at C = 1', async () => {
    const dir = tmpDir();
    const a = bytes(12, 1);
    const b = bytes(12, 2);
    const t = bytes(12, 3);
    await png(path.join(dir, 'train', 'x', 'a.png'), 4, 3, 1, a);
    await png(path.join(dir, 'train', 'b.PNG'), 4, 3, 1, b);
    await png(path.join(dir, 'test', 't.png'), 4, 3, 1, t);
    fs.writeFileSync(path.join(dir, 'train', 'notes.txt'), 'not an image');
    const ds = await load(`folder:${dir}`);
    expect([ds.train.n, ds.train.h, ds.train.w, ds.train.c, ds.test.n]).toEqual([2, 3, 4, 1, 1]);
    // Sorted by path: train/b.PNG before train/x/a.png.
    expect(readAll(ds.train)).toEqual(Uint8Array.from([...b, ...a]));
    expect(readAll(ds.test)).toEqual(t);
  });

  it('expands gray to RGB when any image is in color, and reads JPEG', async () => {
    const dir = tmpDir();
    const gray = bytes(4, 5);
    await png(path.join(dir, 'train', 'g.png'), 2, 2, 1, gray);
    await png(path.join(dir, 'train', 'c.png'), 2, 2, 3, bytes(12, 6));
    fs.mkdirSync(path.join(dir, 'test'));
    await sharp(Buffer.alloc(2 * 2 * 3, 200), { raw: { width: 2, height: 2, channels: 3 } }).jpeg({ quality: 100 }).toFile(path.join(dir, 'test', 'j.jpg'));
    const ds = await load(`folder:${dir}`);
    expect(ds.train.c).toBe(3);
    const g = readAll(ds.train).subarray(12); // g.png sorts after c.png
    expect(Array.from(g)).toEqual(Array.from(gray).flatMap((v) => [v, v, v]));
    expect(ds.test.n).toBe(1);
    for (const v of readAll(ds.test)) expect(Math.abs(v - 200)).toBeLessThanOrEqual(2);
  });

  it('makes a seeded, reproducible 90/10 split without train/ and test/', async () => {
    const dir = tmpDir();
    for (let i = 0; i < 20; i++) await png(path.join(dir, `img${String(i).padStart(2, '0')}.png`), 2, 2, 1, Uint8Array.of(i, i, i, i));
    const first = (d: Uint8Array) => Array.from(d.filter((_, i) => i % 4 === 0));
    const a = await load(`folder:${dir}`, { seed: 1 });
    const b = await load(`folder:${dir}`, { seed: 1 });
    const c = await load(`folder:${dir}`, { seed: 2 });
    expect([a.train.n, a.test.n]).toEqual([18, 2]);
    expect(first(readAll(b.test))).toEqual(first(readAll(a.test)));
    expect([...first(readAll(a.train)), ...first(readAll(a.test))].sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect([...first(readAll(c.train)), ...first(readAll(c.test))].sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it('rejects mixed sizes without --size, naming both files, and crops/resizes with it', async () => {
    const dir = tmpDir();
    await png(path.join(dir, 'train', 'a.png'), 4, 4, 3, bytes(48, 1));
    await png(path.join(dir, 'train', 'b.png'), 8, 6, 3, bytes(144, 2));
    await png(path.join(dir, 'test', 'c.png'), 2, 2, 3, bytes(12, 3));
    await expect(load(`folder:${dir}`)).rejects.toThrow(/a\.png is 4×4 but .*b\.png is 8×6.*--size/);
    const ds = await load(`folder:${dir}`, { size: 2 });
    expect([ds.train.n, ds.train.h, ds.train.w, ds.train.c]).toEqual([2, 2, 2, 3]);
    expect(readAll(ds.test)).toEqual(bytes(12, 3));
    // a.png: 4×4 → 2×2 is an exact 2×2 box average.
    expect(readAll(ds.train).subarray(0, 12)).toEqual(cropResize(bytes(48, 1), 4, 4, 3, 2));
  });

  it('rejects an undecodable file and an empty folder', async () => {
    const dir = tmpDir();
    await png(path.join(dir, 'train', 'ok.png'), 2, 2, 1, bytes(4, 1));
    await png(path.join(dir, 'test', 'ok.png'), 2, 2, 1, bytes(4, 1));
    fs.writeFileSync(path.join(dir, 'train', 'broken.png'), 'definitely not a png');
    await expect(load(`folder:${dir}`)).rejects.toThrow(/broken\.png: cannot decode image/);
    await expect(load(`folder:${tmpDir()}`)).rejects.toThrow(/no PNG or JPEG images/);
  });
});

describe('area resize', () => {
  it('is an exact box average when the size divides the side, after a center crop', () => {
    const [h, w, c, side, n] = [8, 12, 3, 8, 4];
    const src = bytes(h * w * c, 9);
    const out = cropResize(src, h, w, c, n);
    const f = side / n;
    const x0 = (w - side) / 2;
    for (let y = 0; y < n; y++) {
      for (let x = 0; x < n; x++) {
        for (let k = 0; k < c; k++) {
          let s = 0;
          for (let dy = 0; dy < f; dy++) for (let dx = 0; dx < f; dx++) s += src[((y * f + dy) * w + x0 + x * f + dx) * c + k]!;
          expect(out[(y * n + x) * c + k]).toBe(Math.round(s / (f * f)));
        }
      }
    }
  });

  it('weights partial pixels by area otherwise', () => {
    // 3 → 2: output 0 covers input 0 fully and half of input 1.
    const out = cropResize(Uint8Array.from([0, 30, 60, 0, 30, 60, 0, 30, 60]), 3, 3, 1, 2);
    expect(Array.from(out)).toEqual([10, 50, 10, 50]);
  });
});

describe('downsampled ImageNet npz', () => {
  it('reads stored, deflated and zip64 archives, batches in numeric order, and converts planes to HWC', async () => {
    const dir = tmpDir();
    const side = 4;
    // batch b holds b images (1..10); batch 10 is zip64, batch 2 deflated
    const batches = Array.from({ length: 10 }, (_, i) => bytes((i + 1) * 48, i + 1));
    batches.forEach((t, i) => fs.writeFileSync(path.join(dir, `train_data_batch_${i + 1}.npz`), imagenetNpz(t, side, { zip64: i === 9, deflate: i === 1 })));
    const v = bytes(2 * 48, 30);
    fs.writeFileSync(path.join(dir, 'val_data.npz'), imagenetNpz(v, side, { deflate: true }));
    const ds = await load(`imagenet:${dir}`);
    expect([ds.train.n, ds.train.h, ds.train.w, ds.train.c, ds.test.n]).toEqual([55, 4, 4, 3, 2]);
    // Batch 2 before batch 10 (numeric order).
    expect(Buffer.from(readAll(ds.train)).equals(Buffer.concat(batches))).toBe(true);
    expect(readAll(ds.test)).toEqual(v);
    const labels = readNpzArray(path.join(dir, 'val_data.npz'), 'labels');
    expect([labels.descr, labels.shape]).toEqual(['<i8', [2]]);
  });

  it('rejects a non-square row length and a missing array', async () => {
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'train_data_batch_1.npz'), zipBytes([{ name: 'data.npy', data: npyBytes('|u1', [1, 10], bytes(10, 1)) }]));
    fs.writeFileSync(path.join(dir, 'val_data.npz'), zipBytes([{ name: 'x.npy', data: npyBytes('|u1', [1], bytes(1, 1)) }]));
    await expect(load(`imagenet:${dir}`)).rejects.toThrow(/train_data_batch_1\.npz: 10 values per image is not 3·side²/);
    fs.writeFileSync(path.join(dir, 'train_data_batch_1.npz'), imagenetNpz(bytes(48, 1), 4));
    await expect(load(`imagenet:${dir}`)).rejects.toThrow(/val_data\.npz: no entry data\.npy \(entries: x\.npy\)/);
    fs.writeFileSync(path.join(dir, 'val_data.npz'), 'not a zip');
    await expect(load(`imagenet:${dir}`)).rejects.toThrow(/val_data\.npz: not a zip/);
  });
});

describe('specs and options', () => {
  it('lists the known forms for an unknown spec', () => {
    expect(() => resolveSpec('svhn:/x')).toThrow(/unknown dataset spec "svhn:\/x".*fashion-mnist.*idx:.*mnist:.*cifar10:.*folder:.*imagenet:/);
    expect(() => resolveSpec('cifar10')).toThrow(expect.objectContaining({ code: 'E_ARG' }));
    expect(() => resolveSpec('folder:')).toThrow(/names no path/);
  });

  it('validates options', async () => {
    await expect(load('cifar10:/x', { bits: 0 })).rejects.toThrow(/bits=0/);
    await expect(load('cifar10:/x', { size: -2 })).rejects.toThrow(/size=-2/);
    await expect(loadDataset('cifar10:/x', { bitz: 3 } as never)).rejects.toThrow(/unknown dataset option "bitz"/);
  });
});

describe('cache', () => {
  async function cifarDir(): Promise<string> {
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'data_batch_1.bin'), cifarBytes(bytes(2 * 3072, 1)));
    fs.writeFileSync(path.join(dir, 'test_batch.bin'), cifarBytes(bytes(3072, 2)));
    return dir;
  }

  it('is read on the second load, holds 8 bits, and is rebuilt when a source changes', async () => {
    const dir = await cifarDir();
    const cacheDir = tmpDir('spn-cache-');
    const msgs: string[] = [];
    const onProgress = (m: string) => msgs.push(m);
    const a = await loadDataset(`cifar10:${dir}`, { cacheDir, onProgress, bits: 3 });
    expect(msgs.some((m) => m.startsWith('cache written'))).toBe(true);
    expect(fs.readdirSync(cacheDir).filter((f) => f.endsWith('.bin'))).toHaveLength(2);
    msgs.length = 0;
    const b = await loadDataset(`cifar10:${dir}`, { cacheDir, onProgress });
    expect(msgs).toHaveLength(1);
    expect(msgs[0]).toMatch(/^cache hit/);
    expect(readAll(b.train)).toEqual(bytes(2 * 3072, 1));
    expect(Math.max(...readAll(a.train))).toBeLessThan(8);
    // A changed source file gets a new key.
    fs.writeFileSync(path.join(dir, 'test_batch.bin'), cifarBytes(bytes(3072, 3)));
    msgs.length = 0;
    const c = await loadDataset(`cifar10:${dir}`, { cacheDir, onProgress });
    expect(msgs.some((m) => m.startsWith('cache hit'))).toBe(false);
    expect(readAll(c.test)).toEqual(bytes(3072, 3));
  });

  it('ignores a damaged cache file', async () => {
    const dir = await cifarDir();
    const cacheDir = tmpDir('spn-cache-');
    await loadDataset(`cifar10:${dir}`, { cacheDir });
    const file = path.join(cacheDir, fs.readdirSync(cacheDir).find((f) => f.endsWith('.train.bin'))!);
    fs.truncateSync(file, 100);
    const msgs: string[] = [];
    const ds = await loadDataset(`cifar10:${dir}`, { cacheDir, onProgress: (m) => msgs.push(m) });
    expect(msgs.some((m) => m.startsWith('cache hit'))).toBe(false);
    expect(readAll(ds.train)).toEqual(bytes(2 * 3072, 1));
  });

  it('is not written when the load fails', async () => {
    const dir = tmpDir();
    await png(path.join(dir, 'train', 'a.png'), 2, 2, 1, bytes(4, 1));
    await png(path.join(dir, 'test', 'b.png'), 2, 2, 1, bytes(4, 1));
    fs.writeFileSync(path.join(dir, 'test', 'z.png'), 'garbage');
    const cacheDir = tmpDir('spn-cache-');
    await expect(loadDataset(`folder:${dir}`, { cacheDir })).rejects.toThrow(/z\.png/);
    expect(fs.readdirSync(cacheDir)).toEqual([]);
  });
});
