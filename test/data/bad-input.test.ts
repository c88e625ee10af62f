// Bad input (issue 21, section 6): each case a one-line SpnError naming the file and what was
// expected; sizes written in a file are checked against the file before anything is allocated,
// inflated or looped over by them; nothing half-written is trusted; a cache file changed under a
// running job is an error, never garbage.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { loadDataset, readAll, setMemoryFallbackLimit } from '../../src/data/index.js';
import { injectWriteFault } from '../../src/fsutil.js';
import { gzipSync } from 'node:zlib';
import { bytes, cifarBytes, cleanupTmp, idxBytes, imagenetNpz, npyBytes, tmpDir, zipBytes } from './fixtures.js';

afterAll(cleanupTmp);

function load(spec: string, opts: Parameters<typeof loadDataset>[1] = {}) {
  return loadDataset(spec, { cacheDir: path.join(tmpDir('spn-cache-'), 'c'), ...opts });
}

/** Expects a one-line E_DATA (or E_IO) error whose message matches `re`. */
async function refused(p: Promise<unknown>, re: RegExp, code = 'E_DATA'): Promise<string> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(err, `expected an error matching ${re}`).toBeInstanceOf(Error);
  const e = err as Error & { code?: string };
  expect(e.message).toMatch(re);
  expect(e.message).not.toContain('\n');
  expect(e.code).toBe(code);
  return e.message;
}

/** A valid ImageNet-layout folder of 4×4 images: batches 1..k, and val_data.npz. */
function imagenetDir(k = 2): string {
  const dir = tmpDir();
  for (let b = 1; b <= k; b++) fs.writeFileSync(path.join(dir, `train_data_batch_${b}.npz`), imagenetNpz(bytes(2 * 48, b), 4));
  fs.writeFileSync(path.join(dir, 'val_data.npz'), imagenetNpz(bytes(48, 9), 4));
  return dir;
}

function cifarDir(): string {
  const dir = tmpDir();
  fs.writeFileSync(path.join(dir, 'data_batch_1.bin'), cifarBytes(bytes(2 * 3072, 1)));
  fs.writeFileSync(path.join(dir, 'test_batch.bin'), cifarBytes(bytes(3072, 2)));
  return dir;
}

/** A zip whose one deflated member declares `declared` bytes but inflates to `real`. */
function lyingZip(name: string, real: Uint8Array, declared: number): Buffer {
  const z = zipBytes([{ name, data: real, deflate: true }]);
  // sizes at offset 22 in the local header and 24 in the central header
  const cd = z.readUInt32LE(z.length - 6);
  z.writeUInt32LE(declared, 22);
  z.writeUInt32LE(declared, cd + 24);
  return z;
}

describe('a downsampled ImageNet release', () => {
  it('a missing batch: names it and the batches found', async () => {
    const dir = imagenetDir(3);
    fs.rmSync(path.join(dir, 'train_data_batch_2.npz'));
    await refused(load(`imagenet:${dir}`), /train_data_batch_2\.npz is missing \(found batches 1, 3\); expected batches 1\.\.N without gaps/);
  });

  it('a truncated batch: names the file', async () => {
    const dir = imagenetDir();
    const f = path.join(dir, 'train_data_batch_2.npz');
    const full = fs.readFileSync(f);
    fs.writeFileSync(f, full.subarray(0, full.length >> 1));
    await refused(load(`imagenet:${dir}`), /train_data_batch_2\.npz: not a zip\/npz archive \(no end-of-central-directory record: truncated/);
  });

  it('a member whose shape needs more bytes than the member holds: refused before reading', async () => {
    const dir = imagenetDir();
    // shape (1000, 48) but only 2 images of data
    const npy = npyBytes('|u1', [1000, 48], bytes(96, 1));
    fs.writeFileSync(path.join(dir, 'train_data_batch_2.npz'), zipBytes([{ name: 'data.npy', data: npy }]));
    await refused(load(`imagenet:${dir}`), /train_data_batch_2\.npz: data has shape \(1000, 48\), 48000 bytes, but its entry holds 96 data bytes/);
  });

  it('batches of different sizes: names both files', async () => {
    const dir = imagenetDir();
    fs.writeFileSync(path.join(dir, 'train_data_batch_2.npz'), imagenetNpz(bytes(192, 3), 8));
    await refused(load(`imagenet:${dir}`), /train_data_batch_2\.npz: images are 8×8 but \S+train_data_batch_1\.npz holds 4×4/);
  });

  it('data of shape (10^12, 0): refused at once, not looped over', async () => {
    const dir = imagenetDir();
    const npy = npyBytes('|u1', [1e12, 0], new Uint8Array(0));
    fs.writeFileSync(path.join(dir, 'train_data_batch_1.npz'), zipBytes([{ name: 'data.npy', data: npy }]));
    const t0 = Date.now();
    await refused(load(`imagenet:${dir}`), /train_data_batch_1\.npz: 0 values per image is not 3·side²/);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('a member that inflates far past its declared size: refused after about the declared size', async () => {
    const dir = imagenetDir();
    // 64 MB of zeros deflate to ~64 KB; the archive claims 1,000 bytes
    const real = Buffer.concat([npyBytes('|u1', [1, 48], bytes(48, 1)), Buffer.alloc(64 << 20)]);
    fs.writeFileSync(path.join(dir, 'val_data.npz'), lyingZip('data.npy', real, 1000));
    const before = process.memoryUsage().rss;
    await refused(load(`imagenet:${dir}`), /val_data\.npz: data\.npy: inflates to more than the 1000 bytes its header declares/);
    expect(process.memoryUsage().rss - before).toBeLessThan(48 << 20);
  });

  it('a small member (labels) that inflates past its declared size: zlib stops at the declared size', async () => {
    const { readNpzArray } = await import('../../src/data/npz.js');
    const dir = tmpDir();
    const f = path.join(dir, 'x.npz');
    fs.writeFileSync(f, lyingZip('labels.npy', Buffer.concat([npyBytes('<i8', [1], new Uint8Array(8)), Buffer.alloc(32 << 20)]), 1000));
    expect(() => readNpzArray(f, 'labels')).toThrow(/x\.npz: labels\.npy inflates to more than the 1000 bytes its header declares/);
  });

  it('a zip64 end record claiming a 2^50-byte directory, and a directory past the end of the file', async () => {
    const dir = imagenetDir();
    const f = path.join(dir, 'val_data.npz');
    const z = fs.readFileSync(f);
    const eocdAt = z.length - 22;
    // insert a zip64 end record and its locator before the end record
    const z64 = Buffer.alloc(56);
    z64.writeUInt32LE(0x06064b50, 0);
    z64.writeBigUInt64LE(44n, 4);
    z64.writeBigUInt64LE(2n, 24);
    z64.writeBigUInt64LE(2n, 32);
    z64.writeBigUInt64LE(2n ** 50n, 40);
    z64.writeBigUInt64LE(0n, 48);
    const loc = Buffer.alloc(20);
    loc.writeUInt32LE(0x07064b50, 0);
    loc.writeBigUInt64LE(BigInt(eocdAt), 8);
    fs.writeFileSync(f, Buffer.concat([z.subarray(0, eocdAt), z64, loc, z.subarray(eocdAt)]));
    await refused(load(`imagenet:${dir}`), /val_data\.npz: the zip central directory \(bytes 0\.\.1125899906842624\) lies past the end of the file/);
    // a plain end record whose directory size runs past the file
    const bad = Buffer.from(z);
    bad.writeUInt32LE(0x7fffffff, eocdAt + 12);
    fs.writeFileSync(f, bad);
    await refused(load(`imagenet:${dir}`), /val_data\.npz: the zip central directory \(bytes \d+\.\.\d+\) lies past the end of the file \(\d+ bytes\)/);
  });

  it('val_data.npz as a FIFO, a dangling symlink and a symlink loop: named, no hang', async () => {
    const dir = imagenetDir();
    const f = path.join(dir, 'val_data.npz');
    fs.rmSync(f);
    execFileSync('mkfifo', [f]);
    await refused(load(`imagenet:${dir}`), /val_data\.npz: is a FIFO \(named pipe\), not a regular file/);
    fs.rmSync(f);
    fs.symlinkSync(path.join(dir, 'gone.npz'), f);
    await refused(load(`imagenet:${dir}`), /val_data\.npz: a symbolic link to \S+gone\.npz, which does not exist/);
    fs.rmSync(f);
    fs.symlinkSync(path.join(dir, 'loop2'), f);
    fs.symlinkSync(f, path.join(dir, 'loop2'));
    await refused(load(`imagenet:${dir}`), /val_data\.npz: a loop of symbolic links/);
  });
});

describe('CIFAR-10 and IDX', () => {
  it('a CIFAR batch that is a FIFO, or empty', async () => {
    const dir = cifarDir();
    const f = path.join(dir, 'test_batch.bin');
    fs.rmSync(f);
    execFileSync('mkfifo', [f]);
    await refused(load(`cifar10:${dir}`), /test_batch\.bin: is a FIFO \(named pipe\), not a regular file/);
    fs.rmSync(f);
    fs.writeFileSync(f, '');
    await refused(load(`cifar10:${dir}`), /test_batch\.bin: is empty; expected CIFAR-10 records of 3073 bytes/);
  });

  it('an IDX header of 2^31×0×0, and of 0 images', async () => {
    const dir = tmpDir();
    const test = path.join(dir, 't10k-images-idx3-ubyte');
    fs.writeFileSync(test, idxBytes([1, 2, 2], bytes(4, 1)));
    const train = path.join(dir, 'train-images-idx3-ubyte');
    fs.writeFileSync(train, idxBytes([2 ** 31, 0, 0], new Uint8Array(0)));
    await refused(load(`idx:${train}`), /train-images-idx3-ubyte: IDX header says 2147483648×0×0: images of 0 pixels/);
    fs.writeFileSync(train, idxBytes([0, 2, 2], new Uint8Array(0)));
    await refused(load(`idx:${train}`), /train-images-idx3-ubyte: IDX header says 0×2×2: no images/);
  });

  it('an IDX gzip that inflates far past its header: refused after about the header size', async () => {
    const dir = tmpDir();
    const train = path.join(dir, 'train-images-idx3-ubyte.gz');
    fs.writeFileSync(path.join(dir, 't10k-images-idx3-ubyte.gz'), gzipSync(idxBytes([1, 2, 2], bytes(4, 1))));
    // the header says 10 images of 10×10 (1,000 bytes); the stream holds 64 MB
    fs.writeFileSync(train, gzipSync(Buffer.concat([idxBytes([10, 10, 10], bytes(1000, 1)), Buffer.alloc(64 << 20)])));
    const before = process.memoryUsage().rss;
    await refused(load(`idx:${train}`), /train-images-idx3-ubyte\.gz: (inflates to more than the 1016 bytes its IDX header declares|IDX header says 10×10×10 = 1000 bytes of pixels, but the file holds more)/);
    expect(process.memoryUsage().rss - before).toBeLessThan(48 << 20);
    // a gzip cut short
    fs.writeFileSync(train, gzipSync(idxBytes([10, 10, 10], bytes(1000, 1))).subarray(0, 200));
    await refused(load(`idx:${train}`), /train-images-idx3-ubyte\.gz: (corrupt gzip data|IDX header says 10×10×10 = 1000 bytes of pixels, but the file holds \d+)/);
  });
});

async function png(file: string, w: number, h: number, data: Uint8Array): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  await sharp(Buffer.from(data), { raw: { width: w, height: h, channels: 1 } }).toColourspace('b-w').png().toFile(file);
}

describe('a folder of images', () => {
  it('follows a symlink to a PNG; names a dangling one and a FIFO', async () => {
    const dir = tmpDir();
    const outside = tmpDir();
    await png(path.join(dir, 'train', 'a.png'), 2, 2, bytes(4, 1));
    await png(path.join(outside, 'b.png'), 2, 2, bytes(4, 2));
    fs.symlinkSync(path.join(outside, 'b.png'), path.join(dir, 'train', 'b.png'));
    await png(path.join(dir, 'test', 'c.png'), 2, 2, bytes(4, 3));
    const ds = await load(`folder:${dir}`);
    expect(ds.train.n).toBe(2);
    expect(readAll(ds.train)).toEqual(Uint8Array.from([...bytes(4, 1), ...bytes(4, 2)]));
    fs.symlinkSync(path.join(outside, 'gone.png'), path.join(dir, 'train', 'd.png'));
    await refused(load(`folder:${dir}`), /train\/d\.png: a symbolic link to \S+gone\.png, which does not exist/);
    fs.rmSync(path.join(dir, 'train', 'd.png'));
    execFileSync('mkfifo', [path.join(dir, 'test', 'e.png')]);
    await refused(load(`folder:${dir}`), /test\/e\.png: is a FIFO \(named pipe\), not a regular file/);
  });

  it('an unreadable file and mixed sizes: named', async () => {
    const dir = tmpDir();
    await png(path.join(dir, 'train', 'a.png'), 2, 2, bytes(4, 1));
    await png(path.join(dir, 'test', 'b.png'), 2, 2, bytes(4, 2));
    fs.writeFileSync(path.join(dir, 'train', 'z.jpg'), Buffer.from([0xff, 0xd8, 0xff, 0, 1, 2]));
    await refused(load(`folder:${dir}`), /train\/z\.jpg: cannot decode image/);
    fs.rmSync(path.join(dir, 'train', 'z.jpg'));
    await png(path.join(dir, 'test', 'c.png'), 3, 2, bytes(6, 2));
    await refused(load(`folder:${dir}`), /images differ in size: \S+a\.png is 2×2 but \S+c\.png is 3×2; pass --size N/);
  });
});

describe('the cache', () => {
  it('a disk that fills while decoding: nothing left behind; too large for memory, one error naming the cache file', async () => {
    const dir = cifarDir();
    const cacheDir = tmpDir('spn-cache-');
    const undo = injectWriteFault(/\.train\.bin$/, { skip: 1 }); // the header placeholder goes through, the first chunk fails
    const restore = setMemoryFallbackLimit(1000);
    try {
      const msg = await refused(loadDataset(`cifar10:${dir}`, { cacheDir }), /cannot write \S+\.train\.bin: the disk is full \(ENOSPC\); and cifar10:\S+ is too large to hold in memory instead/);
      expect(msg).toContain(cacheDir);
    } finally {
      restore();
      undo();
    }
    expect(fs.readdirSync(cacheDir)).toEqual([]);
    // the next load, with space, decodes and caches as usual
    const ds = await loadDataset(`cifar10:${dir}`, { cacheDir });
    expect(readAll(ds.train)).toEqual(bytes(2 * 3072, 1));
    expect(fs.readdirSync(cacheDir).filter((f) => f.endsWith('.bin'))).toHaveLength(2);
  });

  it('an interrupted decode leaves only a temp file, which the next load removes and does not trust', async () => {
    const dir = cifarDir();
    const cacheDir = tmpDir('spn-cache-');
    const ds = await loadDataset(`cifar10:${dir}`, { cacheDir });
    const file = fs.readdirSync(cacheDir).find((f) => f.endsWith('.train.bin'))!;
    // what a killed process leaves: a temp file named for a pid that is gone, and no final file
    fs.renameSync(path.join(cacheDir, file), path.join(cacheDir, `.${file}.999999999.1-0.tmp`));
    const msgs: string[] = [];
    const again = await loadDataset(`cifar10:${dir}`, { cacheDir, onProgress: (m) => msgs.push(m) });
    expect(msgs.some((m) => m.startsWith('cache hit'))).toBe(false);
    expect(fs.readdirSync(cacheDir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(readAll(again.train)).toEqual(readAll(ds.train));
  });

  it('a cache file changed under a running job: an error naming it, never garbage', async () => {
    const dir = cifarDir();
    const cacheDir = tmpDir('spn-cache-');
    await loadDataset(`cifar10:${dir}`, { cacheDir });
    const ds = await loadDataset(`cifar10:${dir}`, { cacheDir });
    const file = path.join(cacheDir, fs.readdirSync(cacheDir).find((f) => f.endsWith('.train.bin'))!);
    expect(ds.train.read(1, 1)).toEqual(bytes(2 * 3072, 1).subarray(3072));
    // overwritten in place, same size
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.alloc(16, 7), 0, 16, 100);
    fs.closeSync(fd);
    fs.utimesSync(file, new Date(), new Date(Date.now() + 5000));
    expect(() => ds.train.read(0, 1)).toThrow(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: the data cache was modified after it was opened`));
    // truncated
    const ds2 = await loadDataset(`cifar10:${dir}`, { cacheDir });
    fs.truncateSync(file, 1000);
    expect(() => ds2.train.gather([1])).toThrow(/\.train\.bin: the data cache is now 1000 bytes, it was \d+ when opened; it changed under this job/);
    // replaced by rename (another process rebuilding it): the open file still reads the old, whole data
    const ds3 = await loadDataset(`cifar10:${dir}`, { cacheDir });
    const copy = `${file}.new`;
    fs.copyFileSync(file, copy);
    fs.renameSync(copy, file);
    expect(ds3.train.n).toBeGreaterThan(0);
    expect(() => ds3.train.read(0, ds3.train.n)).not.toThrow();
  });

  it('a cache header claiming more images than the file holds is not trusted', async () => {
    const dir = cifarDir();
    const cacheDir = tmpDir('spn-cache-');
    await loadDataset(`cifar10:${dir}`, { cacheDir });
    const file = path.join(cacheDir, fs.readdirSync(cacheDir).find((f) => f.endsWith('.train.bin'))!);
    const fd = fs.openSync(file, 'r+');
    const n = Buffer.alloc(8);
    n.writeBigUInt64LE(2n ** 40n);
    fs.writeSync(fd, n, 0, 8, 8);
    fs.closeSync(fd);
    const msgs: string[] = [];
    const ds = await loadDataset(`cifar10:${dir}`, { cacheDir, onProgress: (m) => msgs.push(m) });
    expect(msgs.some((m) => m.startsWith('cache hit'))).toBe(false);
    expect(ds.train.n).toBe(2);
  });
});

describe('streaming npz', () => {
  it('a deflated zip64 member round-trips through the streaming reader', async () => {
    const dir = imagenetDir();
    const v = bytes(3 * 48, 4);
    fs.writeFileSync(path.join(dir, 'val_data.npz'), imagenetNpz(v, 4, { deflate: true, zip64: true }));
    const ds = await load(`imagenet:${dir}`);
    expect(readAll(ds.test)).toEqual(v);
  });
});

describe('processes decoding the same split', () => {
  it('wait for the one decoding, then open its cache; a lock of a process that is gone is taken over', async () => {
    const { acquireDecodeLock } = await import('../../src/data/lock.js');
    const dir = cifarDir();
    const cacheDir = tmpDir('spn-cache-');
    // two loads at once: one decodes, the other waits for it and reads its cache
    const msgs: string[][] = [[], []];
    const [a, b] = await Promise.all(msgs.map((m) => loadDataset(`cifar10:${dir}`, { cacheDir, onProgress: (x) => m.push(x) })));
    expect(readAll(a!.train)).toEqual(readAll(b!.train));
    const decoded = msgs.filter((m) => m.some((x) => x.startsWith('cache written')));
    expect(decoded).toHaveLength(1);
    const other = msgs.find((m) => m !== decoded[0])!;
    expect(other.some((x) => /^waiting for process \d+, which is decoding cifar10:/.test(x))).toBe(true);
    expect(other.some((x) => x.startsWith('cache hit'))).toBe(true);
    expect(fs.readdirSync(cacheDir).filter((f) => f.endsWith('.lock'))).toEqual([]);
    // a stale lock (a pid that is not running) does not block
    const lock = path.join(tmpDir(), 'x.lock');
    fs.writeFileSync(lock, `999999999 ${(await import('node:os')).hostname()}`);
    const l = await acquireDecodeLock(lock, () => {
      throw new Error('should not wait');
    });
    expect(fs.readFileSync(lock, 'utf8')).toMatch(new RegExp(`^${process.pid} `));
    l!.release();
    expect(fs.existsSync(lock)).toBe(false);
  });
});
