// What `spn compress` and `spn score` read: image files, folders of them (PNG and JPEG, found
// recursively, sorted by path) and dataset specs (a split of a dataset, prepared as the run was
// trained: its bits, size and subsampling). Each image gets a name that is safe as a file name.
// `spn score` takes images of the model's size only (readInputs); `spn compress` image files of
// any size (readImages), which the codec cuts into tiles.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ArgError, DataError } from '../errors.js';
import { listImages } from '../data/folder.js';
import { memorySet } from '../data/sets.js';
import type { ImageSet } from '../data/types.js';
import { loadRunSplit } from '../store/data.js';
import type { RunConfig } from '../store/run.js';
import type { CodecImage } from './codec.js';
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

/** A split of a dataset as the run read it (store/data.ts loadRunSplit); values at the run's bits, (n, H, W, C). */
async function readSpec(spec: string, o: ReadInputsOptions): Promise<{ n: number; data: Uint8Array }> {
  const { set } = await loadRunSplit(o.config, { data: spec, split: o.split ?? 'test', cacheDir: o.cacheDir, onProgress: o.onProgress });
  const { height, width, channels, bits } = o.image;
  if (set.h !== height || set.w !== width || set.c !== channels) throw new DataError(`${spec} has ${set.h}×${set.w}×${set.c} images; the model codes ${height}×${width}×${channels}`);
  if (o.config.dataBits !== bits) throw new DataError(`${spec} is read by the run at ${o.config.dataBits} bits; the model codes ${bits}-bit values`);
  const n = Math.min(set.n, o.limit ?? set.n);
  return { n, data: set.read(0, n) };
}

export interface InputImageList {
  images: CodecImage[];
  names: string[];
  /** The inputs, in words. */
  source: string;
}

/** Reads every input, in order; image files of the model's size only unless `anySize`. */
async function collect(inputs: string[], o: ReadInputsOptions, anySize: boolean): Promise<InputImageList> {
  if (!inputs.length) throw new ArgError('no inputs: give image files, folders or a dataset spec');
  if (o.limit !== undefined && (!Number.isInteger(o.limit) || o.limit < 1)) throw new ArgError(`--limit ${o.limit}: expected a positive integer`);
  const { height, width, channels, bits } = o.image;
  const want = anySize ? { channels, bits } : { channels, bits, height, width };
  const size = height * width * channels;
  const images: CodecImage[] = [];
  const names: string[] = [];
  const used = new Set<string>();
  const sources: string[] = [];
  for (const input of inputs) {
    const stat = fs.existsSync(input) ? fs.statSync(input) : null;
    if (stat?.isFile()) {
      images.push(await readImageFile(input, want));
      names.push(uniqueName(path.basename(input).replace(/\.[^.]*$/, ''), used));
      sources.push(input);
    } else if (stat?.isDirectory()) {
      const files = listImages(input);
      if (!files.length) throw new DataError(`${input}: no PNG or JPEG images found (searched recursively)`);
      for (const f of files) {
        images.push(await readImageFile(f, want));
        names.push(uniqueName(path.relative(input, f).replace(/\.[^.]*$/, '').split(path.sep).join('_'), used));
      }
      sources.push(`${input}/ (${files.length} images)`);
    } else {
      const set = await readSpec(input, o);
      const split = o.split ?? 'test';
      for (let i = 0; i < set.n; i++) {
        images.push({ height, width, data: set.data.subarray(i * size, (i + 1) * size) });
        names.push(uniqueName(`${split}-${String(i).padStart(5, '0')}`, used));
      }
      sources.push(`${input} ${split} [0, ${set.n})`);
    }
  }
  return { images, names, source: sources.join(', ') };
}

/** Reads every input, in order, into one set of images at the model's shape and bits (spn score). */
export async function readInputs(inputs: string[], o: ReadInputsOptions): Promise<InputImages> {
  const { images, names, source } = await collect(inputs, o, false);
  const { height, width, channels } = o.image;
  const size = height * width * channels;
  const data = new Uint8Array(images.length * size);
  images.forEach((im, i) => data.set(im.data, i * size));
  return { set: memorySet(data, { n: images.length, h: height, w: width, c: channels }), names, source };
}

/** Reads every input, in order: image files of any size, dataset images of the model's (spn compress). */
export async function readImages(inputs: string[], o: ReadInputsOptions): Promise<InputImageList> {
  return collect(inputs, o, true);
}
