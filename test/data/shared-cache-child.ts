// The child process of shared-cache.test.ts: one data-parallel rank. It imports the loader,
// says it is ready, waits for "go" on stdin (so that the ranks start at one moment), loads the
// dataset with the given cache folder, and prints what it did and read as one JSON line: every
// progress message with its time, and a SHA-256 of each split's bytes.
//
// Usage: vite-node shared-cache-child.ts <spec> <cacheDir> <pauseMs>. The rank that decodes
// pauses pauseMs at each batch it starts reading (in its progress callback, so the loader itself
// runs unchanged), which keeps a partly written cache on disk for a while.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { loadDataset, readAll } from '../../src/data/index.js';

const [spec, cacheDir, pauseText] = process.argv.slice(2);
const pauseMs = Number(pauseText);
const sleep = new Int32Array(new SharedArrayBuffer(4));

const go = new Promise<void>((resolve) => {
  let text = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (d: string) => {
    text += d;
    if (text.includes('go\n')) resolve();
  });
});
process.stdout.write(JSON.stringify({ ready: process.pid }) + '\n');
await go;
process.stdin.destroy();

const events: { t: number; msg: string }[] = [];
const started = Date.now();
const ds = await loadDataset(spec!, {
  cacheDir: cacheDir!,
  onProgress: (msg) => {
    events.push({ t: Date.now(), msg });
    if (msg.startsWith('reading ')) Atomics.wait(sleep, 0, 0, pauseMs);
  },
});
const split = (s: typeof ds.train) => ({ n: s.n, h: s.h, w: s.w, c: s.c, sha256: createHash('sha256').update(readAll(s)).digest('hex') });
const train = split(ds.train);
const test = split(ds.test);
// the cache files' inodes as this rank finds them once it has read everything
const inodes = fs.readdirSync(cacheDir!).sort().map((f) => [f, fs.statSync(`${cacheDir!}/${f}`).ino]);
process.stdout.write(JSON.stringify({ pid: process.pid, started, events, train, test, inodes }) + '\n');
