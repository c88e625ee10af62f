// The data layer at the paper's sizes: a synthetic release in downsampled ImageNet 64's npz layout
// (train_data_batch_1..10.npz, `data` N×12288 uint8 in R, G, B planes, `labels`; val_data.npz),
// written here (default: the full 1,281,167 training images, 15.7 GB, and 50,000 validation
// images); the time to decode it into the cache; then training throughput of a small model of the
// same 64×64×3 shape reading batches from the cache file against the same model on a small
// in-memory set; and a folder of generated 256×256 JPEGs (default 30,000): decode time and
// images/s. Each phase runs in its own process, so that its peak RSS (VmHWM in
// /proc/self/status: resident pages of the process, page cache not included) is its own.
//
//   node dist/bench/data.js [--count N] [--val N] [--jpegs N] [--steps N] [--work DIR] [--keep] [--json out.json]
//
// The generated files are deleted at the end unless --keep.
import { execFileSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { crc32 } from 'node:zlib';
import { ArgError } from '../src/errors.js';
import { BatchIterator } from '../src/data/batches.js';
import { openCache } from '../src/data/cache.js';
import { loadDataset } from '../src/data/index.js';
import { memorySet } from '../src/data/sets.js';
import type { ImageSet } from '../src/data/types.js';
import * as torch from '../src/torch/index.js';
import { AdamW } from '../src/torch/optim/index.js';
import { parseModelConfig, type ModelConfig } from '../src/spn/config.js';
import { SPN } from '../src/spn/model.js';
import { toBatch } from '../src/spn/stage.js';
import { emitReport, median, reportHeader, runIfMain, type ReportHeader, cpuFlags } from './machine.js';

export const FULL_TRAIN = 1_281_167;
export const FULL_VAL = 50_000;
const SIDE = 64;
const COLS = 3 * SIDE * SIDE;

// ---- the synthetic release -------------------------------------------------------------------

function npyHeader(shape: number[], descr: string): Buffer {
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const unpadded = 10 + dict.length + 1;
  const header = dict + ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const pre = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 0, 0]);
  pre.writeUInt16LE(header.length, 8);
  return Buffer.concat([pre, Buffer.from(header, 'latin1')]);
}

interface Member { name: string; size: number; crc: number; offset: number }

/** Appends a stored zip entry with numpy's zip64 fields, its bytes produced chunk by chunk. */
function writeMember(fd: number, at: number, name: string, size: number, chunks: () => Generator<Uint8Array>): Member {
  const nameBuf = Buffer.from(name);
  const extra = Buffer.alloc(20);
  extra.writeUInt16LE(1, 0);
  extra.writeUInt16LE(16, 2);
  extra.writeBigUInt64LE(BigInt(size), 4);
  extra.writeBigUInt64LE(BigInt(size), 12);
  const lh = Buffer.alloc(30);
  lh.writeUInt32LE(0x04034b50, 0);
  lh.writeUInt16LE(45, 4);
  lh.writeUInt32LE(0xffffffff, 18);
  lh.writeUInt32LE(0xffffffff, 22);
  lh.writeUInt16LE(nameBuf.length, 26);
  lh.writeUInt16LE(extra.length, 28);
  let pos = at;
  const put = (b: Uint8Array) => {
    let done = 0;
    while (done < b.length) done += fs.writeSync(fd, b, done, b.length - done, pos + done);
    pos += b.length;
  };
  put(lh);
  put(nameBuf);
  put(extra);
  let crc = 0;
  let written = 0;
  for (const c of chunks()) {
    crc = crc32(c, crc);
    written += c.length;
    put(c);
  }
  if (written !== size) throw new Error(`internal: member ${name} wrote ${written} of ${size} bytes`);
  // the CRC is known only now: patch it into the local header
  const crcBuf = Buffer.alloc(4);
  crcBuf.writeUInt32LE(crc >>> 0, 0);
  fs.writeSync(fd, crcBuf, 0, 4, at + 14);
  return { name, size, crc: crc >>> 0, offset: at };
}

function writeCentral(fd: number, at: number, members: Member[]): void {
  const parts: Buffer[] = [];
  for (const m of members) {
    const nameBuf = Buffer.from(m.name);
    const extra = Buffer.alloc(28);
    extra.writeUInt16LE(1, 0);
    extra.writeUInt16LE(24, 2);
    extra.writeBigUInt64LE(BigInt(m.size), 4);
    extra.writeBigUInt64LE(BigInt(m.size), 12);
    extra.writeBigUInt64LE(BigInt(m.offset), 20);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0);
    ch.writeUInt16LE(45, 4);
    ch.writeUInt16LE(45, 6);
    ch.writeUInt32LE(m.crc, 16);
    ch.writeUInt32LE(0xffffffff, 20);
    ch.writeUInt32LE(0xffffffff, 24);
    ch.writeUInt16LE(nameBuf.length, 28);
    ch.writeUInt16LE(extra.length, 30);
    ch.writeUInt32LE(0xffffffff, 42);
    parts.push(ch, nameBuf, extra);
  }
  const cd = Buffer.concat(parts);
  const z = Buffer.alloc(56);
  z.writeUInt32LE(0x06064b50, 0);
  z.writeBigUInt64LE(44n, 4);
  z.writeUInt16LE(45, 12);
  z.writeUInt16LE(45, 14);
  z.writeBigUInt64LE(BigInt(members.length), 24);
  z.writeBigUInt64LE(BigInt(members.length), 32);
  z.writeBigUInt64LE(BigInt(cd.length), 40);
  z.writeBigUInt64LE(BigInt(at), 48);
  const loc = Buffer.alloc(20);
  loc.writeUInt32LE(0x07064b50, 0);
  loc.writeBigUInt64LE(BigInt(at + cd.length), 8);
  loc.writeUInt32LE(1, 16);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(0xffff, 8);
  eocd.writeUInt16LE(0xffff, 10);
  eocd.writeUInt32LE(0xffffffff, 12);
  eocd.writeUInt32LE(0xffffffff, 16);
  const tail = Buffer.concat([cd, z, loc, eocd]);
  let done = 0;
  while (done < tail.length) done += fs.writeSync(fd, tail, done, tail.length - done, at + done);
}

/** One batch file: `data` (n, 12288) uint8 of pseudo-random pixels and `labels` (n,) int64. */
export function writeImagenetBatch(file: string, n: number, seed: number): void {
  const fd = fs.openSync(file, 'w');
  try {
    const dataHead = npyHeader([n, COLS], '|u1');
    const per = 1024;
    const data = writeMember(fd, 0, 'data.npy', dataHead.length + n * COLS, function* () {
      yield dataHead;
      const buf = Buffer.alloc(per * COLS);
      for (let i = 0; i < n; i += per) {
        const k = Math.min(per, n - i);
        randomFillSync(buf, 0, k * COLS);
        buf[0] = seed & 0xff; // batches differ even where the generator repeats
        yield k === per ? buf : buf.subarray(0, k * COLS);
      }
    });
    const lab = npyHeader([n], '<i8');
    const labelsAt = 30 + 'data.npy'.length + 20 + data.size;
    const labels = writeMember(fd, labelsAt, 'labels.npy', lab.length + 8 * n, function* () {
      yield lab;
      const l = Buffer.alloc(8 * n);
      for (let i = 0; i < n; i++) l.writeBigInt64LE(BigInt(1 + (i % 1000)), 8 * i);
      yield l;
    });
    writeCentral(fd, labelsAt + 30 + 'labels.npy'.length + 20 + labels.size, [data, labels]);
  } finally {
    fs.closeSync(fd);
  }
}

/** A release: `count` training images over 10 batches (as the real one), `val` validation images. */
export function writeImagenetRelease(dir: string, count: number, val: number): { bytes: number } {
  fs.mkdirSync(dir, { recursive: true });
  const batches = Math.min(10, count);
  let bytes = 0;
  for (let b = 0; b < batches; b++) {
    const n = Math.floor((count * (b + 1)) / batches) - Math.floor((count * b) / batches);
    const f = path.join(dir, `train_data_batch_${b + 1}.npz`);
    writeImagenetBatch(f, n, b + 1);
    bytes += fs.statSync(f).size;
  }
  const v = path.join(dir, 'val_data.npz');
  writeImagenetBatch(v, val, 99);
  bytes += fs.statSync(v).size;
  return { bytes };
}

/** `count` 256×256 JPEGs: smooth gradients with noise (about the size of photographs at quality 90). */
export async function writeJpegFolder(dir: string, count: number): Promise<{ bytes: number }> {
  const sharp = (await import('sharp')).default;
  fs.mkdirSync(dir, { recursive: true });
  const px = Buffer.alloc(256 * 256 * 3);
  const noise = Buffer.alloc(256 * 256 * 3);
  let bytes = 0;
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    randomFillSync(noise);
    for (let y = 0, o = 0; y < 256; y++) for (let x = 0; x < 256; x++, o += 3) {
      px[o] = (x + i) & 255;
      px[o + 1] = (y * 2 + i * 3) & 255;
      px[o + 2] = ((x + y) >> 1) ^ (noise[o]! & 15);
    }
    const f = path.join(dir, `img${String(i).padStart(6, '0')}.jpg`);
    inFlight.push(sharp(Buffer.from(px), { raw: { width: 256, height: 256, channels: 3 } }).jpeg({ quality: 90 }).toFile(f).then((info) => void (bytes += info.size)));
    if (inFlight.length >= 8) await inFlight.shift();
  }
  await Promise.all(inFlight);
  return { bytes };
}

// ---- the phases, each in its own process -----------------------------------------------------

/** Peak and current resident set of this process, in MB (VmHWM, VmRSS of /proc/self/status). */
export function rssMB(): { peak: number; now: number } {
  const s = fs.readFileSync('/proc/self/status', 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(s)?.[1] ?? NaN);
  return { peak: kb('VmHWM') / 1024, now: kb('VmRSS') / 1024 };
}

export interface DecodePhase { images: number; test_images: number; seconds: number; images_per_s: number; cache_bytes: number; peak_rss_mb: number; progress_lines: string[] }

async function decodePhase(spec: string, cacheDir: string): Promise<DecodePhase> {
  const lines: string[] = [];
  const t0 = performance.now();
  const ds = await loadDataset(spec, { cacheDir, onProgress: (m) => (lines.push(m), process.stderr.write(`  ${m}\n`)) });
  const seconds = (performance.now() - t0) / 1000;
  const cache_bytes = fs.readdirSync(cacheDir).filter((f) => f.endsWith('.bin')).reduce((a, f) => a + fs.statSync(path.join(cacheDir, f)).size, 0);
  const n = ds.train.n + ds.test.n;
  return { images: ds.train.n, test_images: ds.test.n, seconds, images_per_s: n / seconds, cache_bytes, peak_rss_mb: rssMB().peak, progress_lines: lines.slice(-4) };
}

/** The small model of the benchmark: imagenet64-gpu's shape and S, narrow and shallow for a CPU. */
export function smallModel(): ModelConfig {
  return parseModelConfig({ height: SIDE, width: SIDE, channels: 3, bits: 8, scale: 4, dim: 64, heads: 4, condLayers: 1, decLayers: 1, kernel: 3 }, 'data bench model');
}

export interface TrainPhase {
  sources: ('cache' | 'memory')[];
  batch: number;
  steps: number;
  /** Median ms per step (the batch gathered, forward, backward, AdamW), per source. */
  step_ms: Partial<Record<'cache' | 'memory', number>>;
  /** Median ms of gathering one batch (inside the step): the data's own cost, free of the model's noise. */
  gather_ms: Partial<Record<'cache' | 'memory', number>>;
  /** Every timed step, in order, per source. */
  step_ms_all: Partial<Record<'cache' | 'memory', number[]>>;
  images_per_s: Partial<Record<'cache' | 'memory', number>>;
  /**
   * With both sources: the median over each ABBA group of 4 steps of (memory ms) / (cache ms),
   * i.e. throughput from the cache over throughput from memory, paired so that slow periods cancel.
   */
  paired_cache_vs_memory?: number;
  /** Resident MB once the model and optimizer exist, before the first step. */
  model_rss_mb: number;
  peak_rss_mb: number;
}

/**
 * Trains the small model for `steps` steps per source; with both sources the steps alternate in
 * the order cache, memory, memory, cache (repeated) on one model, so that load from other
 * processes, and any drift over the run, hits both alike.
 */
function trainPhase(sets: Partial<Record<'cache' | 'memory', ImageSet>>, batch: number, steps: number, warmup: number): TrainPhase {
  torch.manualSeed(1);
  const cfg = smallModel();
  const model = new SPN(cfg, { device: 'cpu' });
  const named = model.namedParameters().map(([name, param]) => ({ name, param }));
  const optim = new AdamW(named, { lr: 1e-4, weightDecay: 0.01, betas: [0.9, 0.99] });
  const model_rss_mb = rssMB().now;
  const sources = (['cache', 'memory'] as const).filter((k) => sets[k]);
  const its = new Map(sources.map((k) => [k, new BatchIterator(sets[k]!, { batchSize: batch, seed: 3 })]));
  const times = new Map(sources.map((k) => [k, [] as number[]]));
  const gathers = new Map(sources.map((k) => [k, [] as number[]]));
  const first = model.firstSlice;
  const end = model.S * model.S;
  model.train();
  for (let i = 0; i < (warmup + steps) * sources.length; i++) {
    // ABBA: 0 1 1 0 0 1 1 0 ...
    const src = sources.length === 1 ? sources[0]! : sources[(i + (i >> 1)) % 2]!;
    const t0 = performance.now();
    const b = its.get(src)!.nextSync(); // the batch is gathered inside the timed step
    const tg = performance.now() - t0;
    torch.tidy(() => {
      const x = toBatch(b.data, b.n, cfg, 'cpu');
      const k = torch.randint(first, end, [b.n]);
      model.nll(x, k).mean().div(model.dimsPerSlice * Math.LN2).backward();
    });
    optim.step();
    optim.zeroGrad();
    if (i >= warmup * sources.length) {
      times.get(src)!.push(performance.now() - t0);
      gathers.get(src)!.push(tg);
    }
  }
  optim.dispose();
  model.dispose();
  const step_ms: TrainPhase['step_ms'] = {};
  const images_per_s: TrainPhase['images_per_s'] = {};
  const step_ms_all: TrainPhase['step_ms_all'] = {};
  const gather_ms: TrainPhase['gather_ms'] = {};
  for (const k of sources) {
    gather_ms[k] = median(gathers.get(k)!);
    step_ms_all[k] = times.get(k)!.map((t) => Math.round(t * 10) / 10);
    step_ms[k] = median(times.get(k)!);
    images_per_s[k] = (batch * 1000) / step_ms[k]!;
  }
  let paired: number | undefined;
  if (sources.length === 2) {
    const c = times.get('cache')!;
    const m = times.get('memory')!;
    const ratios: number[] = [];
    for (let k = 0; 2 * k + 1 < Math.min(c.length, m.length); k++) ratios.push((m[2 * k]! + m[2 * k + 1]!) / (c[2 * k]! + c[2 * k + 1]!));
    paired = median(ratios);
  }
  return { sources, batch, steps, step_ms, gather_ms, step_ms_all, images_per_s, ...(paired !== undefined ? { paired_cache_vs_memory: paired } : {}), model_rss_mb, peak_rss_mb: rssMB().peak };
}

/** The decode's train split, opened by the reader every command uses (CacheSet). */
function openDecoded(cacheDir: string): ImageSet {
  // The release's batch files are deleted by then (disk and page cache for the cache alone), so
  // the key is the one the file holds rather than one recomputed from the sources.
  const file = path.join(cacheDir, fs.readdirSync(cacheDir).find((f) => f.endsWith('.train.bin'))!);
  const key = Buffer.alloc(32);
  const fd = fs.openSync(file, 'r');
  fs.readSync(fd, key, 0, 32, 32);
  fs.closeSync(fd);
  const set = openCache(file, key);
  if (!set) throw new ArgError(`${file}: not a readable data cache`);
  return set;
}

function memoryImages(): ImageSet {
  const n = 2048;
  const data = new Uint8Array(n * COLS);
  randomFillSync(data);
  return memorySet(data, { n, h: SIDE, w: SIDE, c: 3 });
}

async function phaseMain(phase: string, a: Record<string, string>): Promise<object> {
  if (phase === 'decode') return decodePhase(a.spec!, a.cache!);
  const batch = Number(a.batch);
  const steps = Number(a.steps);
  const sets: Partial<Record<'cache' | 'memory', ImageSet>> = {};
  if (phase === 'train-cache' || phase === 'train-both') sets.cache = openDecoded(a.cache!);
  if (phase === 'train-memory' || phase === 'train-both') sets.memory = memoryImages();
  if (!sets.cache && !sets.memory) throw new ArgError(`--phase ${phase}: expected decode, train-cache, train-memory or train-both`);
  return trainPhase(sets, batch, steps, 3);
}

function runPhase(args: string[], log: (l: string) => void): unknown {
  const script = fileURLToPath(import.meta.url);
  log(`  node ${path.basename(script)} ${args.join(' ')}`);
  const out = execFileSync(process.execPath, [script, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 26 });
  return JSON.parse(out);
}

// ---- the benchmark ---------------------------------------------------------------------------

export interface DataReport extends ReportHeader<'data'> {
  cpu_flags: string[];
  imagenet: {
    train_images: number;
    val_images: number;
    full_size: boolean;
    release_bytes: number;
    generate_s: number;
    decode: DecodePhase;
    /** Throughput: one process, one model, steps alternating between the two sources. */
    train: TrainPhase;
    /** Peak RSS: one process per source (the in-memory set is 2,048 images, 25 MB). */
    rss: { cache: TrainPhase; memory: TrainPhase };
    /** median images/s from the cache over median from memory. */
    cache_vs_memory: number;
    /** The same paired by ABBA group (TrainPhase.paired_cache_vs_memory). */
    paired_cache_vs_memory: number;
    /** peak RSS of the cache runs minus that of the memory runs (MB): what the mapped split costs beyond the model. */
    cache_rss_over_memory_mb: number;
  };
  jpeg: { images: number; folder_bytes: number; generate_s: number; decode: DecodePhase } | null;
}

export interface DataBenchOptions {
  count?: number;
  val?: number;
  jpegs?: number;
  steps?: number;
  batch?: number;
  work?: string;
  keep?: boolean;
  quick?: boolean;
  log?: (line: string) => void;
}


export async function runDataBench(o: DataBenchOptions = {}): Promise<DataReport> {
  const quick = o.quick ?? false;
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const count = o.count ?? (quick ? 2000 : FULL_TRAIN);
  const val = o.val ?? (quick ? 200 : FULL_VAL);
  const jpegs = o.jpegs ?? (quick ? 50 : 30_000);
  const steps = o.steps ?? (quick ? 4 : 60);
  const batch = o.batch ?? 8;
  const rssSteps = quick ? 2 : 60;
  const work = o.work ?? fs.mkdtempSync(path.join(os.tmpdir(), 'spn-data-bench-'));
  const header = reportHeader('data', 'cpu', quick);
  try {
    const rel = path.join(work, 'imagenet64');
    const cache = path.join(work, 'cache');
    log(`writing a synthetic ImageNet 64 release: ${count.toLocaleString('en-US')} training and ${val.toLocaleString('en-US')} validation images in ${rel}`);
    let t0 = performance.now();
    const { bytes } = writeImagenetRelease(rel, count, val);
    const generate_s = (performance.now() - t0) / 1000;
    log(`  ${(bytes / 1e9).toFixed(2)} GB in ${generate_s.toFixed(1)} s`);
    const spec = `imagenet:${rel}`;
    log('decoding it into the cache');
    const decode = runPhase(['--phase', 'decode', '--spec', spec, '--cache', cache], log) as DecodePhase;
    log(`  ${decode.images_per_s.toFixed(0)} images/s, peak RSS ${decode.peak_rss_mb.toFixed(0)} MB`);
    // the npz files are not needed for training from the cache: free their disk and page cache
    fs.rmSync(rel, { recursive: true, force: true });
    const phase = (p: string, n: number) =>
      runPhase(['--phase', p, '--cache', cache, '--batch', String(batch), '--steps', String(n)], log) as TrainPhase;
    const both = phase('train-both', steps);
    log(`  alternating: cache ${both.step_ms.cache!.toFixed(1)} ms/step, memory ${both.step_ms.memory!.toFixed(1)} ms/step`);
    const rss = { cache: phase('train-cache', rssSteps), memory: phase('train-memory', rssSteps) };
    log(`  peak RSS: cache ${rss.cache.peak_rss_mb.toFixed(0)} MB, memory ${rss.memory.peak_rss_mb.toFixed(0)} MB (model alone ${rss.memory.model_rss_mb.toFixed(0)} MB)`);
    fs.rmSync(cache, { recursive: true, force: true });
    let jpeg: DataReport['jpeg'] = null;
    if (jpegs > 0) {
      const dir = path.join(work, 'jpegs');
      log(`writing ${jpegs.toLocaleString('en-US')} 256×256 JPEGs in ${dir}`);
      t0 = performance.now();
      const g = await writeJpegFolder(path.join(dir, 'all'), jpegs);
      const jgen = (performance.now() - t0) / 1000;
      log(`  ${(g.bytes / 1e6).toFixed(0)} MB in ${jgen.toFixed(1)} s`);
      const d = runPhase(['--phase', 'decode', '--spec', `folder:${dir}`, '--cache', path.join(work, 'jcache')], log) as DecodePhase;
      log(`  decoded ${d.images + d.test_images} images in ${d.seconds.toFixed(1)} s: ${d.images_per_s.toFixed(0)} images/s, peak RSS ${d.peak_rss_mb.toFixed(0)} MB`);
      jpeg = { images: jpegs, folder_bytes: g.bytes, generate_s: jgen, decode: d };
    }
    return {
      ...header,
      cpu_flags: cpuFlags(),
      imagenet: {
        train_images: count, val_images: val, full_size: count === FULL_TRAIN, release_bytes: bytes, generate_s, decode,
        train: both, rss,
        cache_vs_memory: both.images_per_s.cache! / both.images_per_s.memory!,
        paired_cache_vs_memory: both.paired_cache_vs_memory!,
        cache_rss_over_memory_mb: rss.cache.peak_rss_mb - rss.memory.peak_rss_mb,
      },
      jpeg,
    };
  } finally {
    if (!o.keep) fs.rmSync(work, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      phase: { type: 'string' }, spec: { type: 'string' }, cache: { type: 'string' }, batch: { type: 'string' }, steps: { type: 'string' },
      count: { type: 'string' }, val: { type: 'string' }, jpegs: { type: 'string' }, work: { type: 'string' },
      keep: { type: 'boolean', default: false }, quick: { type: 'boolean', default: false }, json: { type: 'string' },
    },
    strict: true,
  });
  if (values.phase) {
    process.stdout.write(JSON.stringify(await phaseMain(values.phase, values as unknown as Record<string, string>)) + '\n');
    return;
  }
  const int = (flag: string, v: string | undefined) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new ArgError(`${flag} ${v}: expected a non-negative integer`);
    return n;
  };
  const report = await runDataBench({
    count: int('--count', values.count), val: int('--val', values.val), jpegs: int('--jpegs', values.jpegs), steps: int('--steps', values.steps),
    ...(values.work ? { work: values.work } : {}), keep: values.keep, quick: values.quick,
  });
  emitReport(report, values.json);
}

runIfMain(import.meta.url, 'data bench', main);
