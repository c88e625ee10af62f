// Image files in and out of the codec, with the one preprocessing the codec applies:
//   in:  a PNG (pngjs: the stored samples, no gamma or colour management) or a JPEG (libvips via
//        sharp, EXIF orientation not applied) of exactly the model's H×W (spn score) or of any
//        size up to the codec's limits (spn compress: limits.ts), its declared size read from the
//        file's header (sharp's metadata) and checked before anything is decoded; C = 1 takes a gray
//        file (or RGB with equal channels), C = 3 takes RGB (gray repeated); fully opaque only;
//        8-bit samples (PNGs of 1, 2 or 4 bits are scaled to 8 by pngjs; 16-bit ones are refused);
//        then the top `bits` of each 8-bit sample are kept (in words: cli/compress.ts PREPROCESSING_HELP).
//   out: an 8-bit PNG, gray (C = 1) or RGB (C = 3), of the values shifted back up (v << (8 − bits)),
//        so reading it again gives the same values.
import * as fs from 'node:fs';
import { PNG } from 'pngjs';
import sharp, { type Metadata } from 'sharp';
import { IMAGE_EXT } from '../data/folder.js';
import { FormatError, SpnError } from '../errors.js';
import { writeFileAtomic } from '../fsutil.js';
import { sizeProblem } from './limits.js';
import type { ImageSpec } from './stages.js';

function readFile(file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new SpnError('E_IO', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** Decoded 8-bit pixels: h·w·ch bytes, ch = 1, 3 or 4 (RGBA), and whether any alpha is < 255. */
interface Raw { data: Uint8Array; width: number; height: number; channels: number }

function decodePng(file: string, buf: Buffer): Raw {
  let png: PNG & { depth?: number };
  try {
    png = PNG.sync.read(buf) as PNG & { depth?: number };
  } catch (err) {
    throw new FormatError(`${file} is not a readable PNG: ${(err as Error).message}`);
  }
  if (png.depth === 16) throw new FormatError(`${file} has 16-bit samples; the model codes 8-bit images (convert it to 8 bits first)`);
  return { data: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.length), width: png.width, height: png.height, channels: 4 };
}

async function decodeJpeg(file: string, buf: Buffer): Promise<Raw> {
  try {
    const { data, info } = await sharp(buf).raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height, channels: info.channels };
  } catch (err) {
    throw new FormatError(`${file} is not a readable JPEG: ${(err as Error).message}`);
  }
}

/** What to read a file as: the model's channels and bits, and its exact size unless any size is allowed. */
export interface ReadSpec {
  channels: number;
  bits: number;
  /** The size the file must have; absent: any size the codec takes (limits.ts). */
  height?: number;
  width?: number;
}

/** One image read from a file: height·width·channels values. */
export interface FileImage {
  height: number;
  width: number;
  data: Uint8Array;
}

/** The size a PNG or JPEG declares in its header, read without decoding it. */
async function declaredSize(file: string, buf: Buffer, kind: string): Promise<{ width: number; height: number }> {
  if (buf.length === 0) throw new FormatError(`${file} is empty (0 bytes); expected a ${kind} image`);
  let meta: Metadata;
  try {
    meta = await sharp(buf).metadata();
  } catch (err) {
    throw new FormatError(`${file} is not a readable ${kind}: ${(err as Error).message}`);
  }
  if (!meta.width || !meta.height) throw new FormatError(`${file} is not a readable ${kind}: its header declares no size`);
  return { width: meta.width, height: meta.height };
}

/**
 * Reads one image file as H×W×C values at `bits` bits; refuses what it cannot represent, and a
 * size that is not the one asked for (or too large, when any size is allowed) before decoding it.
 */
export async function readImageFile(file: string, want: ReadSpec): Promise<FileImage> {
  if (!IMAGE_EXT.test(file)) throw new FormatError(`${file} is not a PNG or JPEG file (by its name)`);
  const buf = readFile(file);
  const isPng = /\.png$/i.test(file);
  const declared = await declaredSize(file, buf, isPng ? 'PNG' : 'JPEG');
  const exact = want.height !== undefined && want.width !== undefined;
  if (exact && (declared.width !== want.width || declared.height !== want.height)) {
    throw new FormatError(`${file} is ${declared.width}×${declared.height} (W×H); the model codes ${want.width}×${want.height} images (no resizing)`);
  }
  const problem = sizeProblem(declared.height, declared.width);
  if (problem) throw new FormatError(`${file} declares ${problem}`);
  const raw = isPng ? decodePng(file, buf) : await decodeJpeg(file, buf);
  if (raw.width !== declared.width || raw.height !== declared.height) {
    throw new FormatError(`${file} decodes to ${raw.width}×${raw.height}, not the ${declared.width}×${declared.height} its header declares`);
  }
  const C = want.channels;
  const n = raw.width * raw.height;
  const ch = raw.channels;
  const d = raw.data;
  if (ch !== 1 && ch !== 3 && ch !== 4) throw new FormatError(`${file} decodes to ${ch} channels; expected gray or RGB`);
  if (C !== 1 && C !== 3) throw new FormatError(`${file}: the model codes ${C}-channel images; image files give 1 or 3`);
  const shift = 8 - want.bits;
  const out = new Uint8Array(n * C);
  for (let i = 0; i < n; i++) {
    if (ch === 4 && d[i * 4 + 3] !== 255) throw new FormatError(`${file} has transparent pixels (alpha ${d[i * 4 + 3]} at pixel ${i}); the model has no alpha channel`);
    const px = ch === 1 ? [d[i]!, d[i]!, d[i]!] : [d[i * ch]!, d[i * ch + 1]!, d[i * ch + 2]!];
    if (C === 1) {
      if (px[0] !== px[1] || px[0] !== px[2]) throw new FormatError(`${file} is a colour image (pixel ${i} is ${px.join(',')}); the model codes 1-channel (gray) images`);
      out[i] = px[0]! >> shift;
    } else {
      for (let c = 0; c < 3; c++) out[i * 3 + c] = px[c]! >> shift;
    }
  }
  return { height: raw.height, width: raw.width, data: out };
}

/** An 8-bit gray or RGB PNG of one H×W×C image of `bits`-bit values (shifted up to 8 bits). */
export function encodeImagePng(values: Uint8Array, s: ImageSpec): Buffer {
  const { width, height, channels: C, bits } = s;
  if (C !== 1 && C !== 3) throw new FormatError(`cannot write a ${C}-channel image as PNG (1 or 3)`);
  if (values.length !== width * height * C) throw new FormatError(`encodeImagePng: ${values.length} values for a ${width}×${height}×${C} image`);
  const shift = 8 - bits;
  const colorType = C === 1 ? 0 : 2;
  const png = new PNG({ width, height, colorType, inputColorType: colorType, inputHasAlpha: false, bitDepth: 8 });
  png.data = Buffer.from(shift ? values.map((v) => v << shift) : values);
  return PNG.sync.write(png, { colorType, inputColorType: colorType, inputHasAlpha: false, bitDepth: 8 });
}

/** Writes the PNG atomically. */
export function writeImagePng(file: string, values: Uint8Array, s: ImageSpec): void {
  writeFileAtomic(file, encodeImagePng(values, s));
}
