// Images in and out of the sampler: PNG grids of samples, a PNG read as a model's input, the
// "slices so far" frames of subscale sampling (unknown pixels filled from the nearest known
// slice) and their GIF animation.
import * as fs from 'node:fs';
import { PNG } from 'pngjs';
import * as gifencModule from 'gifenc';
import { ArgError, FormatError, SpnError } from '../errors.js';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';

/** n images of H×W×C as bytes (values at the images' bit depth, not yet scaled to 0..255). */
export interface ImageBatch {
  data: Uint8Array; // (n, H, W, C) row-major
  shape: [number, number, number, number]; // [n, H, W, C]
}

/** A raw RGB picture: width·height·3 bytes, row-major. */
export interface RgbImage {
  width: number;
  height: number;
  rgb: Uint8Array;
}

/** (n, H, W, C) int64 tensor -> bytes on the CPU. */
export function tensorToBatch(values: Tensor): ImageBatch {
  if (values.ndim !== 4) throw new ArgError(`expected images of shape (n, H, W, C), got [${values.shape.join(', ')}]`);
  const data = torch.tidy(() => values.to('cpu').to('uint8').contiguous().data() as Uint8Array);
  return { data: new Uint8Array(data), shape: values.shape as [number, number, number, number] };
}

function asBatch(values: Uint8Array | Tensor | ImageBatch, shape?: number[]): ImageBatch {
  if (values instanceof Uint8Array) {
    if (!shape || shape.length !== 4) throw new ArgError('a Uint8Array of images needs shape [n, H, W, C]');
    const size = shape.reduce((a, b) => a * b, 1);
    if (size !== values.length) throw new ArgError(`${values.length} bytes do not fill images of shape [${shape.join(', ')}] (${size})`);
    return { data: values, shape: shape as ImageBatch['shape'] };
  }
  return values instanceof torch.Tensor ? tensorToBatch(values) : values;
}

export interface GridOptions {
  bits: number; // bit depth of the values: 0..2^bits-1 is stretched to 0..255
  shape?: number[]; // [n, H, W, C], required for a Uint8Array
  cols?: number; // images per row; default ceil(sqrt(n))
  pad?: number; // pixels between images (after scaling); default 2
  scale?: number; // integer upscale; default: the smallest making each image at least 64 px
}

const PAD_GRAY = 40;

/** Lays n images out in a grid as one RGB picture (grayscale expands to RGB). */
export function gridRgb(values: Uint8Array | Tensor | ImageBatch, o: GridOptions): RgbImage {
  const { data, shape } = asBatch(values, o.shape);
  const [n, H, W, C] = shape;
  if (C !== 1 && C !== 3) throw new ArgError(`images must have 1 or 3 channels, got ${C}`);
  if (!Number.isInteger(o.bits) || o.bits < 1 || o.bits > 8) throw new ArgError(`bits must be 1..8, got ${o.bits}`);
  const cols = o.cols ?? Math.ceil(Math.sqrt(n));
  const pad = o.pad ?? 2;
  const scale = o.scale ?? Math.max(1, Math.ceil(64 / Math.min(H, W)));
  if (!Number.isInteger(cols) || cols < 1) throw new ArgError(`cols must be a positive integer, got ${cols}`);
  if (!Number.isInteger(scale) || scale < 1) throw new ArgError(`scale must be a positive integer, got ${scale}`);
  if (!Number.isInteger(pad) || pad < 0) throw new ArgError(`pad must be a non-negative integer, got ${pad}`);
  const rows = Math.ceil(n / cols);
  const [ih, iw] = [H * scale, W * scale];
  const width = cols * iw + (cols + 1) * pad;
  const height = rows * ih + (rows + 1) * pad;
  const rgb = new Uint8Array(width * height * 3).fill(PAD_GRAY);
  const max = 2 ** o.bits - 1;
  const lut = Uint8Array.from({ length: 256 }, (_, v) => Math.round((Math.min(v, max) * 255) / max));
  for (let b = 0; b < n; b++) {
    const x0 = pad + (b % cols) * (iw + pad);
    const y0 = pad + Math.floor(b / cols) * (ih + pad);
    for (let y = 0; y < ih; y++) {
      const src = ((b * H + Math.floor(y / scale)) * W) * C;
      let dst = ((y0 + y) * width + x0) * 3;
      for (let x = 0; x < iw; x++, dst += 3) {
        const p = src + Math.floor(x / scale) * C;
        rgb[dst] = lut[data[p]!]!;
        rgb[dst + 1] = lut[data[p + (C === 3 ? 1 : 0)]!]!;
        rgb[dst + 2] = lut[data[p + (C === 3 ? 2 : 0)]!]!;
      }
    }
  }
  return { width, height, rgb };
}

export function encodePng(img: RgbImage): Buffer {
  const png = new PNG({ width: img.width, height: img.height, colorType: 2, inputColorType: 2, inputHasAlpha: false });
  png.data = Buffer.from(img.rgb.buffer, img.rgb.byteOffset, img.rgb.byteLength);
  return PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false });
}

/** A PNG grid of n images (n, H, W, C) with values in 0..2^bits-1. */
export function gridPng(values: Uint8Array | Tensor | ImageBatch, o: GridOptions): Buffer {
  return encodePng(gridRgb(values, o));
}

/**
 * Reads a PNG as one H×W×C image of 8-bit values (h·w·c bytes). A grayscale file fills C = 3 by
 * repetition; C = 1 needs a gray file (or an RGB one whose three channels are equal). Alpha is
 * ignored; pngjs delivers every colour type and depth as 8-bit RGBA.
 */
export function readPngAsImage(file: string, want: { h: number; w: number; c: number }): Uint8Array {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (err) {
    throw new SpnError('E_IO', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  let png: PNG;
  try {
    png = PNG.sync.read(buf);
  } catch (err) {
    throw new FormatError(`${file} is not a readable PNG: ${(err as Error).message}`);
  }
  if (png.width !== want.w || png.height !== want.h) {
    throw new FormatError(`${file} is ${png.width}×${png.height} (W×H); the model needs ${want.w}×${want.h}`);
  }
  const n = want.h * want.w;
  const out = new Uint8Array(n * want.c);
  const d = png.data; // RGBA, 8 bits
  if (want.c === 3) {
    for (let i = 0; i < n; i++) for (let ch = 0; ch < 3; ch++) out[i * 3 + ch] = d[i * 4 + ch]!;
  } else if (want.c === 1) {
    for (let i = 0; i < n; i++) {
      if (d[i * 4] !== d[i * 4 + 1] || d[i * 4] !== d[i * 4 + 2]) {
        throw new FormatError(`${file} is a colour image; the model needs a 1-channel (grayscale) image`);
      }
      out[i] = d[i * 4]!;
    }
  } else {
    throw new ArgError(`readPngAsImage: channels must be 1 or 3, got ${want.c}`);
  }
  return out;
}

/**
 * For a frame of subscale sampling after slices 0..known-1: each pixel of a later slice takes
 * the value of the pixel in its own S×S block that belongs to the nearest known slice (by
 * offset distance, ties to the earlier slice). Returns a new array; known = 0 gives zeros.
 */
export function fillNearest(batch: ImageBatch, S: number, known: number): ImageBatch {
  const [n, H, W, C] = batch.shape;
  if (!Number.isInteger(S) || S < 1 || H % S || W % S) throw new ArgError(`fillNearest: S=${S} must divide the image size ${H}×${W}`);
  const out = new Uint8Array(batch.data.length);
  if (known <= 0) return { data: out, shape: batch.shape };
  // source offset (di, dj) for each in-block offset (a, b)
  const src: Array<[number, number]> = [];
  for (let a = 0; a < S; a++) {
    for (let b = 0; b < S; b++) {
      let best: [number, number] = [0, 0];
      let bestD = Infinity;
      for (let k = 0; k < Math.min(known, S * S); k++) {
        const [i, j] = [Math.floor(k / S), k % S];
        const dist = (a - i) ** 2 + (b - j) ** 2;
        if (dist < bestD) [best, bestD] = [[i, j], dist];
      }
      src.push(best);
    }
  }
  for (let im = 0; im < n; im++) {
    for (let r = 0; r < H; r++) {
      for (let c = 0; c < W; c++) {
        const [i, j] = src[(r % S) * S + (c % S)]!;
        const from = ((im * H + r - (r % S) + i) * W + c - (c % S) + j) * C;
        const to = ((im * H + r) * W + c) * C;
        for (let ch = 0; ch < C; ch++) out[to + ch] = batch.data[from + ch]!;
      }
    }
  }
  return { data: out, shape: batch.shape };
}

// Node sees gifenc's CommonJS build (all under `default`), vite/vitest its ES build (named exports).
const gifenc: gifencModule.Gifenc = gifencModule.GIFEncoder ? (gifencModule as unknown as gifencModule.Gifenc) : (gifencModule.default as gifencModule.Gifenc);

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function frameRgba(frame: Uint8Array | RgbImage, width: number, height: number, index: number): Uint8Array {
  if (frame instanceof Uint8Array && frame.length >= 8 && Buffer.from(frame.subarray(0, 8)).equals(PNG_SIGNATURE)) {
    const png = PNG.sync.read(Buffer.from(frame));
    if (png.width !== width || png.height !== height) throw new ArgError(`frame ${index} is ${png.width}×${png.height}, expected ${width}×${height}`);
    return new Uint8Array(png.data);
  }
  const rgb = frame instanceof Uint8Array ? frame : frame.rgb;
  if (!(frame instanceof Uint8Array) && (frame.width !== width || frame.height !== height)) {
    throw new ArgError(`frame ${index} is ${frame.width}×${frame.height}, expected ${width}×${height}`);
  }
  if (rgb.length !== width * height * 3) throw new ArgError(`frame ${index} has ${rgb.length} bytes; ${width}×${height} RGB needs ${width * height * 3}`);
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) {
    rgba[j] = rgb[i]!;
    rgba[j + 1] = rgb[i + 1]!;
    rgba[j + 2] = rgb[i + 2]!;
    rgba[j + 3] = 255;
  }
  return rgba;
}

/** Exact palette when a frame has at most 256 colours (grayscale samples always do), else quantized. */
function indexFrame(rgba: Uint8Array): { index: Uint8Array; palette: number[][] } {
  const words = new Uint32Array(rgba.buffer, rgba.byteOffset, rgba.byteLength / 4);
  const slot = new Map<number, number>();
  const index = new Uint8Array(words.length);
  for (let i = 0; i < words.length; i++) {
    let s = slot.get(words[i]!);
    if (s === undefined) {
      if (slot.size === 256) {
        const palette = gifenc.quantize(rgba, 256);
        return { index: gifenc.applyPalette(rgba, palette), palette };
      }
      s = slot.size;
      slot.set(words[i]!, s);
    }
    index[i] = s;
  }
  // Map keys are the RGBA words in insertion (= slot) order; bytes read back little-endian.
  const palette = [...slot.keys()].map((w) => [w & 255, (w >>> 8) & 255, (w >>> 16) & 255]);
  return { index, palette };
}

/** An animated GIF (looping) from PNG buffers or raw RGB frames of one size. */
export function framesGif(frames: Array<Uint8Array | RgbImage>, o: { width: number; height: number; delayMs: number; lastDelayMs?: number }): Buffer {
  if (!frames.length) throw new ArgError('framesGif: no frames');
  const gif = gifenc.GIFEncoder();
  frames.forEach((f, i) => {
    const { index, palette } = indexFrame(frameRgba(f, o.width, o.height, i));
    const delay = i === frames.length - 1 ? (o.lastDelayMs ?? o.delayMs) : o.delayMs;
    gif.writeFrame(index, o.width, o.height, { palette, delay, ...(i === 0 ? { repeat: 0 } : {}) });
  });
  gif.finish();
  return Buffer.from(gif.bytes());
}
