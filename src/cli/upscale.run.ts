// `spn upscale <input.png> --run <upscaler-run>` (definition in upscale.ts): upscales a user's
// image with one trained upscaling stage. A size stage takes the image as slice 0
// ((H/S)×(W/S)×C) and samples the other slices; a depth stage takes an H×W×C image's high bits
// and samples the low ones. Writes a PNG grid: the input (nearest-neighbour upscaled) first,
// then the K samples.
import { ArgError } from '../errors.js';
import { writeFileAtomic } from '../fsutil.js';
import { reduceBits } from '../data/bits.js';
import { gridPng, readPngAsImage, tensorToBatch, type ImageBatch } from '../spn/images.js';
import { sampleStage } from '../spn/upscale.js';
import * as torch from '../torch/index.js';
import { loadModel } from '../store/checkpoint.js';
import { createProgress, formatDuration } from '../train/progress.js';
import { checkDevice } from '../train/options.js';
import type { UpscaleCommandOptions } from './upscale.js';

export interface UpscaleResult {
  files: string[];
  /** The input as the model is given it: slice 0 at the run's bits (size) or the high bits (depth). */
  input: Uint8Array;
  /** The K upscaled images (K, H, W, C) at the output bits (depth: 8). */
  images: ImageBatch;
  bits: number;
}

/** n copies of one image, as an (n, h, w, c) int64 tensor. */
function repeated(img: Uint8Array, n: number, shape: [number, number, number]): torch.Tensor {
  const data = new Uint8Array(n * img.length);
  for (let i = 0; i < n; i++) data.set(img, i * img.length);
  return torch.fromArray(data, [n, ...shape]).to('int64');
}

export async function upscaleRun(input: string, o: UpscaleCommandOptions): Promise<UpscaleResult> {
  checkDevice(o.device);
  if (!Number.isInteger(o.n) || o.n < 1) throw new ArgError(`--n ${o.n}: expected a positive integer`);
  torch.setNumThreads(torch.threadsFor('ops', o.threads));
  const { model, config } = await loadModel(o.run, { ema: o.ema, device: o.device });
  try {
    const m = config.model;
    const { height: H, width: W, channels: C, scale: S } = m;
    if (m.stage === 'full') throw new ArgError(`${o.run} is a 'full' model, not an upscaling stage; use \`spn sample\` (or train one with --stage size or depth)`);
    const small: [number, number, number] = m.stage === 'size' ? [H / S, W / S, C] : [H, W, C];
    const pixels = readPngAsImage(input, { h: small[0], w: small[1], c: small[2] });
    const givenBits = m.stage === 'size' ? m.bits : m.givenBits;
    const given = givenBits < 8 ? reduceBits(pixels, givenBits) : pixels;
    const outBits = m.stage === 'size' ? m.bits : 8;
    const seed = o.seed ?? Math.floor(Math.random() * 2 ** 31);
    const bar = createProgress(`upscaling ${o.n}`, (S * S - model.firstSlice) * model.T, { quiet: o.quiet });
    const started = performance.now();
    const onProgress = (p: { slice: number; pixel: number; pixels: number }) => bar.update((p.slice - model.firstSlice) * p.pixels + p.pixel, { slice: `${p.slice + 1}/${S * S}` });
    let images: ImageBatch;
    try {
      images = torch.tidy(() => tensorToBatch(sampleStage(model, { n: o.n, seed, temperature: o.temperature, prev: repeated(given, o.n, small), onProgress })));
    } finally {
      bar.stop();
    }
    const secs = (performance.now() - started) / 1000;
    // First tile: the input at the output's size and bits (each pixel repeated S×S, high bits shifted up).
    const f = m.stage === 'size' ? S : 1;
    const shift = outBits - givenBits;
    const tile = new Uint8Array(H * W * C);
    for (let r = 0; r < H; r++) {
      for (let x = 0; x < W; x++) {
        for (let c = 0; c < C; c++) tile[(r * W + x) * C + c] = given[((Math.floor(r / f) * small[1]) + Math.floor(x / f)) * C + c]! << shift;
      }
    }
    const all = new Uint8Array(tile.length + images.data.length);
    all.set(tile);
    all.set(images.data, tile.length);
    writeFileAtomic(o.out, gridPng(all, { bits: outBits, shape: [o.n + 1, H, W, C] }));
    if (!o.quiet) {
      process.stderr.write(`${o.n} upscalings of ${input} (${small.join('×')} -> ${H}×${W}×${C}, ${outBits}-bit) in ${formatDuration(secs)}, seed ${seed}, temperature ${o.temperature}\n`);
      process.stdout.write(`${o.out}\n`);
    }
    return { files: [o.out], input: given, images, bits: outBits };
  } finally {
    model.dispose();
  }
}

/** The action of `spn upscale`. */
export async function run(input: string, opts: UpscaleCommandOptions): Promise<void> {
  await upscaleRun(input, opts);
}
