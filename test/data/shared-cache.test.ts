// Data-parallel ranks on one machine sharing the decoded cache (issue #21): two real processes
// (shared-cache-child.ts under vite-node) start at one moment on the same not-yet-decoded
// ImageNet-layout release with the same cache folder. The decode lock (src/data/lock.ts) must
// let exactly one decode while the other waits, and the waiting one must read the finished cache,
// never the partly written one, which this test watches exist on disk meanwhile: the decoding
// rank pauses at each of the five batches it reads, so the decode takes about 3 s.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as os from 'node:os';
import { CACHE_HEADER, cacheKey, cachePath } from '../../src/data/cache.js';
import { resolveSpec } from '../../src/data/index.js';
import { acquireDecodeLock, removeStaleLock } from '../../src/data/lock.js';
import { bytes, cleanupTmp, imagenetNpz, tmpDir } from './fixtures.js';

afterAll(cleanupTmp);

const root = path.resolve(import.meta.dirname, '../..');
const SIDE = 32;
const SIZE = SIDE * SIDE * 3;
const PER_BATCH = 400;
const BATCHES = 4;
const VAL = 100;
const PAUSE_MS = 600;

interface Report {
  pid: number;
  started: number;
  events: { t: number; msg: string }[];
  train: { n: number; h: number; w: number; c: number; sha256: string };
  test: { n: number; h: number; w: number; c: number; sha256: string };
  inodes: [string, number][];
}

/** A child rank: resolves when it has printed its ready line; `done` resolves with its report. */
function startRank(spec: string, cacheDir: string): { child: ChildProcess; ready: Promise<void>; done: Promise<Report> } {
  const child = spawn(path.join(root, 'node_modules', '.bin', 'vite-node'), [path.join(root, 'test', 'data', 'shared-cache-child.ts'), spec, cacheDir, String(PAUSE_MS)], {
    cwd: root,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  let onReady: () => void;
  const ready = new Promise<void>((r) => (onReady = r));
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    if (out.includes('"ready"')) onReady();
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const done = new Promise<Report>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`rank exited with ${code}: ${err.slice(-2000)}`));
      const last = out.trim().split('\n').pop()!;
      resolve(JSON.parse(last) as Report);
    });
  });
  done.catch(() => onReady()); // a rank that dies before it is ready fails the test through `done`
  return { child, ready, done };
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('data-parallel ranks on one machine', () => {
  it('two ranks started together: one decodes, the other waits and reads the finished cache', { timeout: 90_000 }, async () => {
    const dir = tmpDir('spn-imagenet-');
    const batches = Array.from({ length: BATCHES }, (_, i) => bytes(PER_BATCH * SIZE, 100 + i));
    batches.forEach((b, i) => fs.writeFileSync(path.join(dir, `train_data_batch_${i + 1}.npz`), imagenetNpz(b, SIDE, { zip64: i === 3 })));
    const val = bytes(VAL * SIZE, 200);
    fs.writeFileSync(path.join(dir, 'val_data.npz'), imagenetNpz(val, SIDE, { deflate: true }));
    const cacheDir = path.join(tmpDir('spn-shared-cache-'), 'cache'); // not there yet: the ranks make it
    const spec = `imagenet:${dir}`;
    const src = resolveSpec(spec);
    const key = cacheKey(src, undefined);
    const trainFile = cachePath(cacheDir, src, key, 'train');
    const testFile = cachePath(cacheDir, src, key, 'test');

    const ranks = [startRank(spec, cacheDir), startRank(spec, cacheDir)];
    // what the cache folder holds while the ranks run: every name and size, with the time
    const seen: { t: number; name: string; size: number }[] = [];
    const watch = setInterval(() => {
      let names: string[];
      try {
        names = fs.readdirSync(cacheDir);
      } catch {
        return;
      }
      for (const name of names) {
        try {
          seen.push({ t: Date.now(), name, size: fs.statSync(path.join(cacheDir, name)).size });
        } catch {
          // renamed or removed between the listing and the stat
        }
      }
    }, 20);
    let reports: Report[];
    try {
      await Promise.all(ranks.map((r) => r.ready));
      for (const r of ranks) r.child.stdin!.end('go\n');
      reports = await Promise.all(ranks.map((r) => r.done));
    } finally {
      clearInterval(watch);
      for (const r of ranks) if (r.child.exitCode === null) r.child.kill();
    }

    // Exactly one decoded: it read the five batches, then wrote the cache.
    const wrote = (r: Report) => r.events.some((e) => e.msg.startsWith('cache written'));
    expect(reports.map(wrote).sort()).toEqual([false, true]);
    const decoder = reports.find(wrote)!;
    const waiter = reports.find((r) => !wrote(r))!;
    expect(decoder.events.filter((e) => e.msg.startsWith('reading ')).map((e) => e.msg)).toEqual([
      ...batches.map((_, i) => `reading ${path.join(dir, `train_data_batch_${i + 1}.npz`)}`),
      `reading ${path.join(dir, 'val_data.npz')}`,
    ]);
    expect(decoder.events.at(-1)!.msg).toBe(`cache written: ${trainFile}, ${testFile}`);
    // The other waited for the decoder by name and then found the cache; it decoded nothing.
    expect(waiter.events.map((e) => e.msg)).toEqual([`waiting for process ${decoder.pid}, which is decoding ${spec} into ${cacheDir}`, `cache hit: ${trainFile}, ${testFile}`]);
    const [waiting, hit] = waiter.events;
    const written = decoder.events.at(-1)!;
    expect(waiting!.t).toBeLessThan(written.t);
    expect(hit!.t).toBeGreaterThanOrEqual(written.t);

    // While it waited, a partly written cache lay in the folder (the decoder's temp file of the
    // train split, past its header but short of its final size): there was something to misread.
    const trainBytes = CACHE_HEADER + BATCHES * PER_BATCH * SIZE;
    const partial = seen.filter((s) => s.name.startsWith(`.${path.basename(trainFile)}.${decoder.pid}.`) && s.name.endsWith('.tmp') && s.size > CACHE_HEADER && s.size < trainBytes && s.t > waiting!.t && s.t < written.t);
    expect(partial.length).toBeGreaterThan(0);
    // The final files never appeared before the decoder committed them.
    expect(seen.filter((s) => s.name === path.basename(trainFile) && s.t < waiting!.t)).toEqual([]);

    // Both read exactly the images of the release (imagenetNpz stores HWC images as planes, the
    // loader converts them back).
    const want = {
      train: { n: BATCHES * PER_BATCH, h: SIDE, w: SIDE, c: 3, sha256: sha(Buffer.concat(batches)) },
      test: { n: VAL, h: SIDE, w: SIDE, c: 3, sha256: sha(val) },
    };
    for (const r of reports) expect({ train: r.train, test: r.test }).toEqual(want);

    // One cache file a split, nothing else (no lock, no temp file), each of its exact size, and
    // the very files (inodes) both ranks found after reading.
    const names = fs.readdirSync(cacheDir).sort();
    expect(names).toEqual([path.basename(testFile), path.basename(trainFile)].sort());
    expect(fs.statSync(trainFile).size).toBe(trainBytes);
    expect(fs.statSync(testFile).size).toBe(CACHE_HEADER + VAL * SIZE);
    const inodes = names.map((f) => [f, fs.statSync(path.join(cacheDir, f)).ino]);
    for (const r of reports) expect(r.inodes).toEqual(inodes);
    console.log(`decode by ${decoder.pid} took ${((written.t - decoder.started) / 1000).toFixed(1)} s; ${waiter.pid} waited ${((hit!.t - waiting!.t) / 1000).toFixed(1)} s`);
  });

  it('a rank that finds the lock just created, its pid not yet written, names the holder once it is there', async () => {
    // The window between the holder's exclusive create and its write of "<pid> <host>" is a few
    // microseconds; two ranks started together can fall into it. Here it is held open.
    const lock = path.join(tmpDir('spn-lock-'), 'x.train.bin.lock');
    fs.writeFileSync(lock, '');
    const told: number[] = [];
    const taken = acquireDecodeLock(lock, (pid) => told.push(pid), 20);
    await new Promise((r) => setTimeout(r, 150));
    expect(told).toEqual([]); // not "waiting for process 0"
    fs.writeFileSync(lock, `${process.pid} ${os.hostname()}`); // a live holder: this process
    await new Promise((r) => setTimeout(r, 150));
    expect(told).toEqual([process.pid]);
    fs.rmSync(lock);
    const l = await taken;
    expect(fs.readFileSync(lock, 'utf8')).toBe(`${process.pid} ${os.hostname()}`);
    l!.release();
    expect(fs.existsSync(lock)).toBe(false);
    expect(told).toEqual([process.pid]);
  });

  it('two waiters that find one stale lock: the second does not remove the lock the first has made since', async () => {
    const dir = tmpDir('spn-lock-');
    const lock = path.join(dir, 'x.train.bin.lock');
    const dead = `2147483646 ${os.hostname()}`; // no such process
    fs.writeFileSync(lock, dead);
    fs.utimesSync(lock, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    const judged = { text: dead, mtimeMs: fs.statSync(lock).mtimeMs }; // what both waiters read
    // the first waiter takes it over and holds the lock
    removeStaleLock(lock, judged);
    expect(fs.existsSync(lock)).toBe(false);
    const first = await acquireDecodeLock(lock, () => {}, 20);
    const mine = `${process.pid} ${os.hostname()}`;
    expect(fs.readFileSync(lock, 'utf8')).toBe(mine);
    // the second, late, removes "the stale lock" it judged: the first one's lock stays
    removeStaleLock(lock, judged);
    expect(fs.readFileSync(lock, 'utf8')).toBe(mine);
    expect(fs.readdirSync(dir)).toEqual(['x.train.bin.lock']); // nothing left aside
    // a release removes only the releaser's own lock
    fs.writeFileSync(lock, `1 ${os.hostname()}`);
    first!.release();
    expect(fs.readFileSync(lock, 'utf8')).toBe(`1 ${os.hostname()}`);
    fs.writeFileSync(lock, mine);
    first!.release();
    expect(fs.existsSync(lock)).toBe(false);
  });
});
