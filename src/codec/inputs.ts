// What `spn compress` and `spn score` read: image files, folders of them (PNG and JPEG, found
// recursively, sorted by path) and dataset specs (a split of a dataset, prepared as the run was
// trained: its bits, size and subsampling). Each image gets a name that is safe as a file name.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ArgError, DataError } from '../errors.js';
import { listImages } from '../data/folder.js';
import type { ImageSet } from '../data/types.js';
import { loadRunSplit } from '../store/data.js';
import type { RunConfig } from '../store/run.js';
import { readImageFile } from './images.js';
import type { ImageSpec } from './stages.js';

export interface InputImages {
  set: ImageSet;
  names: string[];
  /** The inputs, in words (recorded in a .spn header). */
  source: string;
}

export interface ReadInputsOptions {
  /** The images the model codes. */
  image: ImageSpec;
  /** The run whose data preparation a dataset spec follows (the last stage of a pipeline): its bits, size, subsampling. */
  config: RunConfig;
  split?: 'test' | 'train';
  /** At most this many images from each dataset spec (default: the whole split). */
  limit?: number;
  cacheDir?: string;
  onProgress?: (msg: string) => void;
}

/** A file-name-safe, unique name. */
function uniqueName(raw: string, used: Set<string>): string {
  let base = raw.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^[.-]/, '_').slice(0, 180) || 'image';
  if (base === '_' || base === '__') base = 'image';
  let name = base;
  for (let i = 2; used.has(name); i++) name = `${base}-${i}`;
  used.add(name);
  return name;
}

/** A split of a dataset as the run read it (store/data.ts loadRunSplit); values at the run's bits. */
async function readSpec(spec: string, o: ReadInputsOptions): Promise<ImageSet> {
  const { set } = await loadRunSplit(o.config, { data: spec, split: o.split ?? 'test', cacheDir: o.cacheDir, onProgress: o.onProgress });
  const { height, width, channels, bits } = o.image;
  if (set.h !== height || set.w !== width || set.c !== channels) throw new DataError(`${spec} has ${set.h}×${set.w}×${set.c} images; the model codes ${height}×${width}×${channels}`);
  if (o.config.dataBits !== bits) throw new DataError(`the run reads ${spec} at ${o.config.dataBits} bits; the model codes ${bits}-bit values`);
  const n = Math.min(set.n, o.limit ?? set.n);
  const size = height * width * channels;
  return { ...set, n, data: set.data.subarray(0, n * size) };
}

/** Reads every input, in order, into one set of images at the model's shape and bits. */
export async function readInputs(inputs: string[], o: ReadInputsOptions): Promise<InputImages> {
  if (!inputs.length) throw new ArgError('no inputs: give image files, folders or a dataset spec');
  if (o.limit !== undefined && (!Number.isInteger(o.limit) || o.limit < 1)) throw new ArgError(`--limit ${o.limit}: expected a positive integer`);
  const { height, width, channels } = o.image;
  const size = height * width * channels;
  const parts: Uint8Array[] = [];
  const names: string[] = [];
  const used = new Set<string>();
  const sources: string[] = [];
  for (const input of inputs) {
    const stat = fs.existsSync(input) ? fs.statSync(input) : null;
    if (stat?.isFile()) {
      parts.push(await readImageFile(input, o.image));
      names.push(uniqueName(path.basename(input).replace(/\.[^.]*$/, ''), used));
      sources.push(input);
    } else if (stat?.isDirectory()) {
      const files = listImages(input);
      if (!files.length) throw new DataError(`${input}: no PNG or JPEG images found (searched recursively)`);
      for (const f of files) {
        parts.push(await readImageFile(f, o.image));
        names.push(uniqueName(path.relative(input, f).replace(/\.[^.]*$/, '').split(path.sep).join('_'), used));
      }
      sources.push(`${input}/ (${files.length} images)`);
    } else {
      const set = await readSpec(input, o);
      const split = o.split ?? 'test';
      for (let i = 0; i < set.n; i++) {
        parts.push(set.data.subarray(i * size, (i + 1) * size));
        names.push(uniqueName(`${split}-${String(i).padStart(5, '0')}`, used));
      }
      sources.push(`${input} ${split} [0, ${set.n})`);
    }
  }
  const data = new Uint8Array(parts.length * size);
  parts.forEach((p, i) => data.set(p, i * size));
  return { set: { data, n: parts.length, h: height, w: width, c: channels }, names, source: sources.join(', ') };
}
