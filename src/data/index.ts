// Dataset specs → decoded, cached, optionally depth-reduced splits. One file per format
// (idx.ts, cifar10.ts, folder.ts, imagenet.ts); this file parses the spec, owns the cache and
// applies `size` and `bits` the same way for every format. Loaders stream into the cache file,
// which then is the split (read on demand, never whole).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ArgError, DataError, WriteError } from '../errors.js';
import { removeStaleTempFiles } from '../fsutil.js';
import { applyBits } from './bits.js';
import { CacheWriter, cacheKey, cachePath, openCache } from './cache.js';
import { acquireDecodeLock } from './lock.js';
import { resolveCifar10 } from './cifar10.js';
import { resolveFolder } from './folder.js';
import { resolveFashionMnist, resolveIdx, resolveMnist } from './idx.js';
import { resolveImagenet } from './imagenet.js';
import { MemorySink, progressSink, resizingSink, type SplitSink } from './sink.js';
import { SPEC_FORMS, SPEC_KINDS } from './specs.js';
import type { Dataset, DatasetSource, ImageSet, LoadOptions } from './types.js';

export type { Dataset, DatasetSource, ImageSet, LoadOptions } from './types.js';
export { channelMeans } from './stats.js';
export { BatchIterator } from './batches.js';
export type { BatchPosition } from './batches.js';

export const DEFAULT_SPEC = 'fashion-mnist';
export const DEFAULT_CACHE_DIR = path.join('.cache', 'spn-data');

export { SPEC_FORMS, SPEC_KINDS } from './specs.js';

const OPTION_KEYS = new Set(['bits', 'size', 'cacheDir', 'seed', 'onProgress']);

/** Parses a spec into its source, checking that the named paths exist; decodes nothing. */
export function resolveSpec(spec: string, opts: LoadOptions = {}): DatasetSource {
  const colon = spec.indexOf(':');
  const kind = colon < 0 ? spec : spec.slice(0, colon);
  const arg = colon < 0 ? '' : spec.slice(colon + 1);
  if (!SPEC_KINDS.includes(kind)) {
    const forms = SPEC_FORMS.map((f) => f.replace(/ \(.*\)$/, ''));
    throw new ArgError(`unknown dataset spec "${spec}": the kind "${kind}" is unknown; known kinds: ${forms.join(', ')}`);
  }
  if (colon >= 0 && arg === '') throw new ArgError(`dataset spec "${spec}" names no path after "${kind}:"`);
  switch (kind) {
    case 'fashion-mnist':
      return arg ? resolveMnist(arg, 'fashion-mnist') : resolveFashionMnist();
    case 'idx':
      if (arg) return resolveIdx(arg);
      break;
    case 'mnist':
      if (arg) return resolveMnist(arg);
      break;
    case 'cifar10':
      if (arg) return resolveCifar10(arg);
      break;
    case 'folder':
      if (arg) return resolveFolder(arg, { size: opts.size, seed: opts.seed });
      break;
    case 'imagenet':
      if (arg) return resolveImagenet(arg);
      break;
  }
  throw new ArgError(`dataset spec "${spec}" names no path; expected ${SPEC_FORMS.find((f) => f.startsWith(`${kind}:`)) ?? `${kind}:<path>`}`);
}

function checkOptions(opts: LoadOptions): void {
  for (const k of Object.keys(opts)) {
    if (!OPTION_KEYS.has(k)) throw new ArgError(`unknown dataset option "${k}"; expected one of ${[...OPTION_KEYS].join(', ')}`);
  }
  const { bits, size, seed } = opts;
  if (bits !== undefined && (!Number.isInteger(bits) || bits < 1 || bits > 8)) {
    throw new ArgError(`bits=${bits} must be an integer in 1..8`);
  }
  if (size !== undefined && (!Number.isInteger(size) || size < 1)) {
    throw new ArgError(`size=${size} must be a positive integer`);
  }
  if (seed !== undefined && !Number.isSafeInteger(seed)) throw new ArgError(`seed=${seed} must be an integer`);
}

export { applyBits } from './bits.js';
export { memorySet, sliceSet, headSet, readAll } from './sets.js';

/** A split that cannot be cached (read-only folder, full disk) is held in memory up to this size. */
let MEMORY_FALLBACK = 1 << 30;

/** Test hook: the memory fallback's limit in bytes; returns the function that restores it. */
export function setMemoryFallbackLimit(bytes: number): () => void {
  const old = MEMORY_FALLBACK;
  MEMORY_FALLBACK = bytes;
  return () => void (MEMORY_FALLBACK = old);
}

type Sinks<T> = { train: T; test: T };

/** Decodes both splits into their cache files and opens them; a WriteError when they cannot be written. */
async function decodeToCache(src: DatasetSource, files: Sinks<string>, key: Buffer, size: number | undefined, progress: (m: string) => void): Promise<Sinks<ImageSet>> {
  const train = new CacheWriter(files.train, key, `${src.name} (train)`);
  let test: CacheWriter;
  try {
    test = new CacheWriter(files.test, key, `${src.name} (test)`);
  } catch (err) {
    train.discard();
    throw err;
  }
  const writers = { train, test };
  try {
    await decodeInto(src, writers, size, progress);
    const train = writers.train.commit();
    const test = writers.test.commit();
    progress(`cache written: ${files.train}, ${files.test}`);
    return { train, test };
  } catch (err) {
    writers.train.discard();
    writers.test.discard();
    throw err;
  }
}

/** Runs the source's decoder into the sinks, with `size` and a progress line per split. */
async function decodeInto(src: DatasetSource, sinks: Sinks<SplitSink>, size: number | undefined, progress: (m: string) => void): Promise<void> {
  const wrap = (s: SplitSink, split: string) => progressSink(size === undefined ? s : resizingSink(s, size), `${src.name} ${split}`, progress);
  const train = wrap(sinks.train, 'train');
  const test = wrap(sinks.test, 'test');
  await src.load({ train, test }, progress);
  train.done();
  test.done();
}

/** Decodes both splits into memory: where the cache cannot be written. Refuses splits over MEMORY_FALLBACK. */
async function decodeToMemory(src: DatasetSource, size: number | undefined, progress: (m: string) => void, why: Error): Promise<Sinks<ImageSet>> {
  const tooLarge = () =>
    new DataError(`${why.message}; and ${src.name} is too large to hold in memory instead (over ${MEMORY_FALLBACK} bytes a split)`);
  const sinks = {
    train: new MemorySink(`${src.name} (train)`, MEMORY_FALLBACK, tooLarge),
    test: new MemorySink(`${src.name} (test)`, MEMORY_FALLBACK, tooLarge),
  };
  await decodeInto(src, sinks, size, progress);
  return { train: sinks.train.finish(), test: sinks.test.finish() };
}

/**
 * Loads a dataset: from the cache when the spec, size and source files are unchanged, otherwise
 * decoded from the source into the cache (8-bit, after `size`), a chunk at a time. The splits are
 * the cache files themselves, read on demand (cache.ts). `bits` is applied on every read.
 */
export async function loadDataset(spec: string = DEFAULT_SPEC, opts: LoadOptions = {}): Promise<Dataset> {
  checkOptions(opts);
  const progress = opts.onProgress ?? (() => {});
  const src = resolveSpec(spec, opts);
  const cacheDir = path.resolve(opts.cacheDir ?? DEFAULT_CACHE_DIR);
  const key = cacheKey(src, opts.size);
  const files = { train: cachePath(cacheDir, src, key, 'train'), test: cachePath(cacheDir, src, key, 'test') };

  let sets: Sinks<ImageSet> | undefined;
  const train = openCache(files.train, key);
  const test = train && openCache(files.test, key);
  if (train && test) {
    progress(`cache hit: ${files.train}, ${files.test}`);
    sets = { train, test };
  } else {
    try {
      fs.mkdirSync(cacheDir, { recursive: true });
    } catch {
      // no lock then; the cache writer names the folder's problem
    }
    const lock = await acquireDecodeLock(`${files.train}.lock`, (pid) => progress(`waiting for process ${pid}, which is decoding ${src.name} into ${cacheDir}`));
    try {
      // another process may have written it while this one waited
      const t = openCache(files.train, key);
      const u = t && openCache(files.test, key);
      if (t && u) {
        progress(`cache hit: ${files.train}, ${files.test}`);
        sets = { train: t, test: u };
      } else {
        removeStaleTempFiles(cacheDir); // what killed decodes left behind (a split can be many GB)
        try {
          sets = await decodeToCache(src, files, key, opts.size, progress);
        } catch (err) {
          if (!(err instanceof WriteError)) throw err;
          // A cache that cannot be written costs speed, not correctness, while the split fits in memory.
          progress(`cache not written (${err.message})`);
          sets = await decodeToMemory(src, opts.size, progress, err);
        }
      }
    } finally {
      lock?.release();
    }
  }
  const bits = opts.bits ?? 8;
  return { name: src.name, train: applyBits(sets.train, bits), test: applyBits(sets.test, bits), bits };
}
