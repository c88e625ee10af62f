// The hashes a .spn file carries: of the weights a stage codes with, of the logits those weights
// give on a fixed probe (catches a machine whose kernels round differently before any pixel is
// decoded), and of each image's pixels (checked after decoding).
import { createHash } from 'node:crypto';
import * as torch from '../torch/index.js';
import type { DecodePlan } from '../spn/decode.js';
import type { SPN } from '../spn/model.js';
import { walkBatch } from './walk.js';

const bytesOf = (a: ArrayBufferView): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** sha256 (hex) over the model's state dict in name order: name, dtype, shape, raw little-endian bytes. */
export function weightsHash(model: SPN): string {
  const h = createHash('sha256');
  const sd = model.stateDict();
  for (const name of Object.keys(sd).sort()) {
    const t = sd[name]!;
    h.update(`${name}\0${t.dtype}\0${t.shape.join(',')}\0`);
    torch.tidy(() => h.update(bytesOf(t.detach().to('cpu').contiguous().data())));
  }
  return h.digest('hex');
}

/** The first 4 bytes of sha256 over an image's pixels (its H·W·C values): which image is wrong. */
export function pixelHash(pixels: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(bytesOf(pixels)).digest().subarray(0, 4));
}

/** sha256 (hex) over all images' pixels: that every image is right. */
export function pixelsHash(pixels: Uint8Array): string {
  return createHash('sha256').update(bytesOf(pixels)).digest('hex');
}

export const PROBE_SUBPIXELS = 16;

/** Pseudo-random values 0..V-1 from a fixed LCG (the probe's images and its fed-back values). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s;
  };
}

/**
 * sha256 (hex) over the float32 logits of the codec's own path (walkBatch) on a fixed batch of m
 * pseudo-random images: the last slice (every other slice known), its first PROBE_SUBPIXELS
 * sub-pixels. Equal hashes: this machine computes what the encoder computed, bit for bit.
 */
export function probeHash(model: SPN, plan: DecodePlan, m: number): string {
  const { height: H, width: W, channels: C, bits, stage, givenBits } = model.cfg;
  const rand = lcg(0x5eed);
  const V = 2 ** bits;
  const canvas = Uint8Array.from({ length: m * H * W * C }, () => rand() % V);
  const given = stage === 'depth' ? Uint8Array.from({ length: canvas.length }, () => rand() % 2 ** givenBits) : undefined;
  const h = createHash('sha256');
  walkBatch(model, plan, { m, canvas, given, fromSlice: model.S * model.S - 1, maxSubpixels: PROBE_SUBPIXELS }, (logits) => {
    h.update(bytesOf(logits));
    return Array.from({ length: m }, () => rand() % V);
  });
  return h.digest('hex');
}
