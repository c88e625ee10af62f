// `folder:<dir>`: PNG and JPEG files found recursively (symbolic links to files followed), decoded
// with sharp. With train/ and test/ subfolders those are the splits; otherwise the sorted file
// list gets a seeded shuffle and a 90/10 train/test split. Channels: if every image is grayscale
// the set keeps C = 1, otherwise every image becomes RGB (C = 3; gray replicated, alpha dropped).
// Without `size` all images must share one size; with it each is center-cropped to a square and
// area-averaged to size×size.
//
// Two passes: first every file's header (sharp.metadata(): size and channels, no pixels), so that
// mixed sizes and the channel count are known before decoding; then the pixels, several images at
// once (each decode runs on libvips' threads, off the event loop; at most DECODE_AHEAD in flight,
// so memory stays bounded), written to the split's sink in file order.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { OutputInfo, Sharp } from 'sharp';
import { DataError } from '../errors.js';
import { requireDir, statSource } from './files.js';
import { cropResize } from './resize.js';
import { permutation } from './rng.js';
import type { SplitSink } from './sink.js';
import type { DatasetSource } from './types.js';

/** The image files a folder dataset (and the codec's inputs) read: PNG and JPEG, by name. */
export const IMAGE_EXT = /\.(png|jpe?g)$/i;
/** Decodes in flight: enough to keep every core busy, few enough to bound memory. */
const DECODE_AHEAD = Math.max(4, 2 * os.availableParallelism());
/** Images per chunk written to the sink. */
const CHUNK_IMAGES = 256;

/**
 * Image files under dir, recursively, sorted by path (so the split is stable). Symbolic links to
 * files count as files; a dangling link, a link loop or a FIFO with an image name is an error
 * naming it (never silently skipped). Links to folders are not followed (no cycles).
 */
export function listImages(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (IMAGE_EXT.test(e.name)) {
        statSource(p); // a regular file, or a link to one
        out.push(p);
      }
    }
  };
  walk(dir);
  return out.sort();
}

/** libvips' message on one line: its lines, each once. */
const oneLine = (err: unknown): string => [...new Set((err as Error).message.split('\n').map((l) => l.trim()).filter(Boolean))].join('; ');

type Sharpen = (input: string) => Sharp;
let sharpModule: Sharpen | undefined;
// loaded on first use: a folder dataset needs libvips, the other formats do not
async function loadSharp(): Promise<Sharpen> {
  sharpModule ??= (await import('sharp')).default;
  return sharpModule;
}

interface Meta {
  file: string;
  h: number;
  w: number;
  gray: boolean;
}

async function metaOf(sharp: Sharpen, file: string): Promise<Meta> {
  let meta;
  try {
    meta = await sharp(file).metadata();
  } catch (err) {
    throw new DataError(`${file}: cannot decode image (${oneLine(err)})`, { cause: err });
  }
  if (!meta.width || !meta.height) throw new DataError(`${file}: cannot decode image (no width and height in its header)`);
  // EXIF orientations 5..8 swap width and height once rotated
  const swap = (meta.orientation ?? 1) >= 5;
  return { file, h: swap ? meta.width : meta.height, w: swap ? meta.height : meta.width, gray: (meta.channels ?? 3) - (meta.hasAlpha ? 1 : 0) === 1 };
}

/** One image as (h, w, c) pixels: gray images decode gray and are replicated when the set is RGB. */
async function decode(sharp: Sharpen, m: Meta, c: 1 | 3, size: number | undefined): Promise<Uint8Array> {
  let raw: { data: Buffer; info: OutputInfo };
  try {
    raw = await sharp(m.file)
      .rotate() // honour EXIF orientation
      .removeAlpha()
      .toColourspace(m.gray ? 'b-w' : 'srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw new DataError(`${m.file}: cannot decode image (${oneLine(err)})`, { cause: err });
  }
  const { width, height, channels } = raw.info;
  if (width !== m.w || height !== m.h) throw new DataError(`${m.file}: decoded to ${width}×${height}, its header says ${m.w}×${m.h}`);
  let data: Uint8Array = new Uint8Array(raw.data.buffer, raw.data.byteOffset, raw.data.length);
  if (channels !== c) {
    if (c === 3 && channels === 1) {
      const rgb = new Uint8Array(width * height * 3);
      for (let p = 0; p < width * height; p++) rgb[3 * p] = rgb[3 * p + 1] = rgb[3 * p + 2] = data[p]!;
      data = rgb;
    } else {
      throw new DataError(`${m.file}: decoded to ${channels} channels, expected ${c}`);
    }
  }
  return size !== undefined ? cropResize(data, height, width, c, size) : data;
}

/** Runs f over items with at most `limit` in flight; results in order to `each`. */
async function ordered<T, R>(items: T[], limit: number, f: (x: T) => Promise<R>, each: (r: R, i: number) => void): Promise<void> {
  const inflight: Promise<R>[] = [];
  let next = 0;
  const launch = () => {
    while (next < items.length && inflight.length < limit) {
      const p = f(items[next++]!);
      p.catch(() => {}); // awaited below in order; this keeps a later failure from being unhandled meanwhile
      inflight.push(p);
    }
  };
  launch();
  for (let i = 0; i < items.length; i++) {
    const r = await inflight.shift()!;
    each(r, i);
    launch();
  }
}

async function decodeSplit(sharp: Sharpen, metas: Meta[], c: 1 | 3, size: number | undefined, sink: SplitSink): Promise<void> {
  const h = size ?? metas[0]!.h;
  const w = size ?? metas[0]!.w;
  const one = h * w * c;
  sink.expect?.(metas.length);
  let buf = new Uint8Array(Math.min(CHUNK_IMAGES, metas.length) * one);
  let k = 0;
  await ordered(metas, DECODE_AHEAD, (m) => decode(sharp, m, c, size), (img) => {
    buf.set(img, k * one);
    if (++k === CHUNK_IMAGES) {
      sink.write(buf, k, { h, w, c });
      buf = new Uint8Array(buf.length);
      k = 0;
    }
  });
  if (k > 0) sink.write(buf.subarray(0, k * one), k, { h, w, c });
}

/** `folder:<dir>`. */
export function resolveFolder(arg: string, opts: { size?: number; seed?: number }): DatasetSource {
  const dir = path.resolve(arg);
  requireDir(dir, `folder:${arg}`);
  const seed = opts.seed ?? 0;
  const trainDir = path.join(dir, 'train');
  const testDir = path.join(dir, 'test');
  const presplit = fs.existsSync(trainDir) && fs.statSync(trainDir).isDirectory() &&
    fs.existsSync(testDir) && fs.statSync(testDir).isDirectory();
  let trainFiles: string[];
  let testFiles: string[];
  if (presplit) {
    trainFiles = listImages(trainDir);
    testFiles = listImages(testDir);
    if (trainFiles.length === 0) throw new DataError(`folder:${dir}: no PNG or JPEG images under ${trainDir}`);
    if (testFiles.length === 0) throw new DataError(`folder:${dir}: no PNG or JPEG images under ${testDir}`);
  } else {
    const all = listImages(dir);
    if (all.length === 0) throw new DataError(`folder:${dir}: no PNG or JPEG images found (searched recursively)`);
    const perm = permutation(all.length, seed);
    // 10% test, at least one image when there are two or more.
    const nTest = all.length < 2 ? 0 : Math.max(1, Math.round(all.length / 10));
    testFiles = Array.from(perm.subarray(0, nTest), (i) => all[i]!).sort();
    trainFiles = Array.from(perm.subarray(nTest), (i) => all[i]!).sort();
  }
  return {
    name: `folder:${dir}`,
    files: [...trainFiles, ...testFiles],
    key: `presplit=${presplit} seed=${presplit ? '-' : seed}`,
    async load(sinks, onProgress) {
      const sharp = await loadSharp();
      const files = [...trainFiles, ...testFiles];
      onProgress(`reading the headers of ${files.length} images in ${dir}`);
      const metas: Meta[] = [];
      await ordered(files, DECODE_AHEAD, (f) => metaOf(sharp, f), (m) => metas.push(m));
      const first = metas[0]!;
      if (opts.size === undefined) {
        for (const m of metas) {
          if (m.h !== first.h || m.w !== first.w) {
            throw new DataError(
              `folder:${dir}: images differ in size: ${first.file} is ${first.w}×${first.h} but ` +
                `${m.file} is ${m.w}×${m.h}; pass --size N to crop and resize them all to N×N`,
            );
          }
        }
      }
      const c = metas.every((m) => m.gray) ? 1 : 3;
      onProgress(`decoding ${files.length} images from ${dir} (${DECODE_AHEAD} at a time)`);
      await decodeSplit(sharp, metas.slice(0, trainFiles.length), c, opts.size, sinks.train);
      await decodeSplit(sharp, metas.slice(trainFiles.length), c, opts.size, sinks.test);
    },
  };
}
