// `folder:<dir>`: PNG and JPEG files found recursively, decoded with sharp. With train/ and test/
// subfolders those are the splits; otherwise the sorted file list gets a seeded shuffle and a
// 90/10 train/test split. Channels: if every image is grayscale the set keeps C = 1, otherwise
// every image becomes RGB (C = 3; gray replicated, alpha dropped). Without `size` all images must
// share one size; with it each is center-cropped to a square and area-averaged to size×size.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { OutputInfo } from 'sharp';
import { DataError } from '../errors.js';
import { requireDir } from './files.js';
import { cropResize } from './resize.js';
import { permutation } from './rng.js';
import { memorySet } from './sets.js';
import type { DatasetSource, ImageSet } from './types.js';

/** The image files a folder dataset (and the codec's inputs) read: PNG and JPEG, by name. */
export const IMAGE_EXT = /\.(png|jpe?g)$/i;
const CONCURRENCY = 4;

/** Image files under dir, recursively, sorted by path (so the split is stable). */
export function listImages(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && IMAGE_EXT.test(e.name)) out.push(p);
    }
  };
  walk(dir);
  return out.sort();
}

interface Decoded {
  file: string;
  data: Uint8Array;
  h: number;
  w: number;
  c: 1 | 3;
}

async function decode(file: string, size: number | undefined): Promise<Decoded> {
  let raw: { data: Buffer; info: OutputInfo };
  // loaded on first use: a folder dataset needs libvips, the other formats do not
  const sharp = (await import('sharp')).default;
  try {
    const img = sharp(file);
    // sharp outputs sRGB unless told otherwise; keep gray sources gray.
    const meta = await img.metadata();
    const gray = (meta.channels ?? 3) - (meta.hasAlpha ? 1 : 0) === 1;
    raw = await img
      .rotate() // honour EXIF orientation
      .removeAlpha()
      .toColourspace(gray ? 'b-w' : 'srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw new DataError(`${file}: cannot decode image (${(err as Error).message})`, { cause: err });
  }
  const { width, height, channels } = raw.info;
  let data: Uint8Array = new Uint8Array(raw.data.buffer, raw.data.byteOffset, raw.data.length);
  if (channels !== 1 && channels !== 3) {
    throw new DataError(`${file}: decoded to ${channels} channels, expected 1 (gray) or 3 (RGB)`);
  }
  const c: 1 | 3 = channels;
  let h = height;
  let w = width;
  if (size !== undefined) {
    data = cropResize(data, h, w, c, size);
    h = w = size;
  }
  return { file, data, h, w, c };
}

async function decodeAll(files: string[], size: number | undefined, onProgress: (m: string) => void): Promise<Decoded[]> {
  const out: Decoded[] = new Array(files.length);
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < files.length) {
      const i = next++;
      out[i] = await decode(files[i]!, size);
      if (++done % 1000 === 0) onProgress(`decoded ${done}/${files.length} images`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, files.length) }, worker));
  return out;
}

function stack(images: Decoded[], h: number, w: number, c: 1 | 3): ImageSet {
  const size = h * w * c;
  const data = new Uint8Array(images.length * size);
  images.forEach((img, i) => {
    if (img.c === c) {
      data.set(img.data, i * size);
    } else {
      // Gray → RGB in a set that holds color images.
      for (let p = 0, o = i * size; p < h * w; p++, o += 3) data[o] = data[o + 1] = data[o + 2] = img.data[p]!;
    }
  });
  return memorySet(data, { n: images.length, h, w, c });
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
    async load(onProgress) {
      onProgress(`decoding ${trainFiles.length + testFiles.length} images from ${dir}`);
      const train = await decodeAll(trainFiles, opts.size, onProgress);
      const test = await decodeAll(testFiles, opts.size, onProgress);
      const all = [...train, ...test];
      const first = all[0]!;
      for (const img of all) {
        if (img.h !== first.h || img.w !== first.w) {
          throw new DataError(
            `folder:${dir}: images differ in size: ${first.file} is ${first.w}×${first.h} but ` +
              `${img.file} is ${img.w}×${img.h}; pass --size N to crop and resize them all to N×N`,
          );
        }
      }
      const c = all.some((img) => img.c === 3) ? 3 : 1;
      return { train: stack(train, first.h, first.w, c), test: stack(test, first.h, first.w, c) };
    },
  };
}
