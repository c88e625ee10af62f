// Dataset specs → decoded, cached, optionally depth-reduced splits. One file per format
// (idx.ts, cifar10.ts, folder.ts, imagenet.ts); this file parses the spec, owns the cache and
// applies `size` and `bits` the same way for every format.
import * as path from 'node:path';
import { ArgError } from '../errors.js';
import { applyBits } from './bits.js';
import { cacheKey, cachePath, readCache, writeCache } from './cache.js';
import { resolveCifar10 } from './cifar10.js';
import { resolveFolder } from './folder.js';
import { resolveFashionMnist, resolveIdx, resolveMnist } from './idx.js';
import { resolveImagenet } from './imagenet.js';
import { resizeSet } from './resize.js';
import { SPEC_FORMS, SPEC_KINDS } from './specs.js';
import type { Dataset, DatasetSource, LoadOptions } from './types.js';

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

/**
 * Loads a dataset: from the cache when the spec, size and source files are unchanged, otherwise
 * decoded from the source and cached (8-bit, after `size`). `bits` is applied last.
 */
export async function loadDataset(spec: string = DEFAULT_SPEC, opts: LoadOptions = {}): Promise<Dataset> {
  checkOptions(opts);
  const progress = opts.onProgress ?? (() => {});
  const src = resolveSpec(spec, opts);
  const cacheDir = path.resolve(opts.cacheDir ?? DEFAULT_CACHE_DIR);
  const key = cacheKey(src, opts.size);
  const trainFile = cachePath(cacheDir, src, key, 'train');
  const testFile = cachePath(cacheDir, src, key, 'test');

  let train = readCache(trainFile, key);
  let test = train && readCache(testFile, key);
  if (train && test) {
    progress(`cache hit: ${trainFile}, ${testFile}`);
  } else {
    const loaded = await src.load(progress);
    train = loaded.train;
    test = loaded.test;
    if (opts.size !== undefined) {
      train = resizeSet(train, opts.size);
      test = resizeSet(test, opts.size);
    }
    try {
      writeCache(trainFile, key, train);
      writeCache(testFile, key, test);
      progress(`cache written: ${trainFile}, ${testFile}`);
    } catch (err) {
      // A read-only cache folder costs speed, not correctness.
      progress(`cache not written (${(err as Error).message})`);
    }
  }
  const bits = opts.bits ?? 8;
  return { name: src.name, train: applyBits(train, bits), test: applyBits(test, bits), bits };
}
