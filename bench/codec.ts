// Codec benchmarks: a trained run's .spn files against the model's own NLL on the same images and
// against the lossless coders people use, every image round-tripped and checked. Three of them:
//   files   (benchCodec) many images in one file;
//   single  (benchCodecSingle) each image in a file of its own, as a person compresses a photo:
//           mean bytes per file against PNG and WebP files of the same image;
//   mosaic  (benchCodecMosaic) large images: the images laid out as mosaics (grid×grid images)
//           plus one mosaic of odd size, each coded as tiles of the model's size.
//
//   node dist/bench/codec.js --run runs/fmnist-30min-v5 [--mode files|single|mosaic] [--data fashion-mnist]
//                            [--split test] [--limit 1000] [--batch-size 32] [--json out.json]
//   npm run bench -- --only codec|codec-single|codec-mosaic --codec-run <run> [--codec-data SPEC] [--codec-limit N]
//
// Reported per sub-pixel (H·W·C values of each image):
//   spn:   the whole .spn file; its coded streams alone; the model's exact NLL (spn eval) on the
//          same images; the overhead of the streams over the NLL, in %; the quantized ideal (what
//          the counts cost without termination); header bytes (magic, JSON header, checksum),
//          per-image record bytes (stream length + 4-byte pixel hash) and termination bytes
//          (stream bytes − quantized ideal) separately;
//   PNG:   sharp, zlib level 9, adaptive filtering, no palette, effort 10; whole files;
//   WebP:  sharp, lossless, effort 6 (the maximum); whole files;
//   JPEG XL lossless (sharp, effort 9) when this machine's libvips can write it.
// Each image is coded separately by every coder (headers counted), decoded, and compared: the
// benchmark fails on any difference. Encode and decode images/s of the codec: decoding includes
// loading and verifying the models the file names; encoding does not (the models are opened once,
// before, and shared with the NLL pass), as the report's note says.
import { createHash } from 'node:crypto';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { ArgError, SpnError } from '../src/errors.js';
import { closeModels, compressImages, decompressBytes, openModels, readInputs, type CodecImage, type CodecModels } from '../src/codec/index.js';
import { codeLength, decodeRaw, type Compressor, type RawImage } from '../src/score/index.js';
import type { ImageSet } from '../src/data/types.js';
import { readAll } from '../src/data/sets.js';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { evaluate } from '../src/store/evaluate.js';
import * as torch from '../src/torch/index.js';
import { emitReport, reportHeader, runIfMain, type ReportHeader, cpuFlags } from './machine.js';

export interface CodecBenchOptions {
  run: string;
  data?: string;
  split?: 'test' | 'train';
  limit?: number;
  batchSize?: number;
  cacheDir?: string;
  quick?: boolean;
  log?: (line: string) => void;
}

export interface BaselineResult {
  coder: string;
  settings: string;
  /** Whole files, headers counted. */
  bits_per_subpixel: number;
  /** The image data only (headers removed), for reference. */
  data_bits_per_subpixel: number | null;
  mean_file_bytes: number;
  round_trip_exact: number; // images decoded back exactly
}

export interface CodecReport extends ReportHeader<'codec'> {
  run: string;
  data: string;
  images: number;
  subpixels_per_image: number;
  batch: number;
  spn: {
    file_bytes: number;
    bits_per_subpixel: number; // whole file
    stream_bits_per_subpixel: number;
    model_nll_bits_per_subpixel: number; // spn eval (full pass) on the same images
    model_bits_per_subpixel_incremental: number; // the coder's own float probabilities
    ideal_bits_per_subpixel: number; // quantized counts
    overhead_percent: number; // streams over the NLL
    quantization_percent: number; // ideal over the NLL
    header_bytes: number;
    record_bytes: number;
    termination_bytes_total: number;
    termination_bytes_per_image: number;
    encode_images_per_s: number;
    decode_images_per_s: number;
    encode_seconds: number;
    decode_seconds: number;
    round_trip_exact: number;
    sha256_in: string;
    sha256_out: string;
  };
  baselines: BaselineResult[];
  jxl: 'measured' | 'not available: this libvips cannot write JPEG XL';
  /** What the timings include (absent from reports written before it; their encode included model loading). */
  note?: string;
}

const sha = (a: Uint8Array) => createHash('sha256').update(a).digest('hex');

function imageOf(set: ImageSet, i: number, bits: number): RawImage {
  const shift = 8 - bits;
  const px = set.read(i, 1);
  return { data: shift ? px.map((v) => v << shift) : px, width: set.w, height: set.h, channels: set.c as 1 | 3 };
}

async function jxlLength(img: RawImage): Promise<{ file: Buffer }> {
  const s = sharp(img.data, { raw: { width: img.width, height: img.height, channels: img.channels } });
  return { file: await (img.channels === 1 ? s.toColourspace('b-w') : s).jxl({ lossless: true, effort: 9 }).toBuffer() };
}

async function baseline(set: ImageSet, bits: number, coder: Compressor | 'jxl', log: (l: string) => void): Promise<BaselineResult> {
  let fileBytes = 0;
  let dataBits = 0;
  let exact = 0;
  for (let i = 0; i < set.n; i++) {
    const img = imageOf(set, i, bits);
    let file: Buffer;
    if (coder === 'jxl') file = (await jxlLength(img)).file;
    else {
      const L = await codeLength(img, coder);
      file = L.file;
      dataBits += L.bits;
    }
    fileBytes += file.length;
    const back = await decodeRaw(file, img.channels);
    if (!Buffer.from(back).equals(Buffer.from(img.data))) throw new SpnError('E_FORMAT', `${coder}: image ${i} did not decode to its pixels (not lossless)`);
    exact++;
  }
  const sub = set.n * set.h * set.w * set.c;
  const settings = { png: 'sharp png: compressionLevel 9, adaptiveFiltering, palette off, effort 10', webp: 'sharp webp: lossless, effort 6, exact', jxl: 'sharp jxl: lossless, effort 9' }[coder];
  const r = { coder, settings, bits_per_subpixel: (8 * fileBytes) / sub, data_bits_per_subpixel: coder === 'jxl' ? null : dataBits / sub, mean_file_bytes: fileBytes / set.n, round_trip_exact: exact };
  log(`${coder}: ${r.bits_per_subpixel.toFixed(4)} bits/sub-pixel (whole files; data only ${r.data_bits_per_subpixel?.toFixed(4) ?? '-'}), ${exact}/${set.n} exact`);
  return r;
}

export async function benchCodec(o: CodecBenchOptions): Promise<CodecReport> {
  const log = o.log ?? (() => {});
  const data = o.data ?? 'fashion-mnist';
  const split = o.split ?? 'test';
  const limit = o.limit ?? (o.quick ? 16 : 1000);
  const batch = o.batchSize ?? 32;
  // One set of models (the run's best checkpoint, EMA weights: what `spn eval` and `spn compress`
  // load) for reading the images, the NLL and the encoding.
  const models = await openModels({ run: o.run });
  let set: ImageSet;
  let nllBits: number;
  let c: Awaited<ReturnType<typeof compressImages>>;
  try {
    const last = models.stages[models.stages.length - 1]!;
    set = (await readInputs([data], { image: models.image, config: last.config, split, limit, cacheDir: o.cacheDir })).set;
    log(`${set.n} images of ${data} ${split}, ${set.h}×${set.w}×${set.c} at ${models.image.bits} bits`);
    // The exact NLL, as spn eval computes it, on the same images.
    const model = models.stages[0]!.model;
    nllBits = torch.withThreads(1, () => evaluate(model, set).nats) / Math.LN2;
    log(`model NLL: ${(nllBits / (set.n * set.h * set.w * set.c)).toFixed(4)} bits/sub-pixel`);
    c = await compressImages(models, set, { batchSize: batch, onProgress: (p) => p.done === p.tiles && log(`encoded ${p.done} images`) });
  } finally {
    closeModels(models);
  }
  const bits = models.image.bits;
  const sub = set.n * set.h * set.w * set.c;
  log(`encoded in ${c.seconds.toFixed(1)} s: ${c.sizes.total} bytes`);
  const d = await decompressBytes(c.bytes, { file: `${o.run} (${data})`, run: o.run });
  log(`decoded in ${d.seconds.toFixed(1)} s`);
  const size = set.h * set.w * set.c;
  const all = readAll(set);
  let exact = 0;
  for (let i = 0; i < set.n; i++) {
    if (Buffer.from(all.subarray(i * size, (i + 1) * size)).equals(Buffer.from(d.images[i]!.data))) exact++;
  }
  const out = new Uint8Array(all.length);
  d.images.forEach((im, i) => out.set(im.data, i * size));
  const [shaIn, shaOut] = [sha(all), sha(out)];
  if (exact !== set.n || shaIn !== shaOut) throw new SpnError('E_FORMAT', `codec round trip: ${set.n - exact} of ${set.n} images differ`);

  const streams = c.sizes.streams;
  const ideal = c.images.reduce((a, i) => a + i.ideal_bits, 0);
  const incremental = c.images.reduce((a, i) => a + i.model_bits, 0);
  const termination = c.images.reduce((a, i) => a + (8 * i.bytes - i.ideal_bits), 0) / 8;
  const spn = {
    file_bytes: c.sizes.total,
    bits_per_subpixel: (8 * c.sizes.total) / sub,
    stream_bits_per_subpixel: (8 * streams) / sub,
    model_nll_bits_per_subpixel: nllBits / sub,
    model_bits_per_subpixel_incremental: incremental / sub,
    ideal_bits_per_subpixel: ideal / sub,
    overhead_percent: (100 * (8 * streams - nllBits)) / nllBits,
    quantization_percent: (100 * (ideal - nllBits)) / nllBits,
    header_bytes: c.sizes.header,
    record_bytes: c.sizes.records,
    termination_bytes_total: termination,
    termination_bytes_per_image: termination / set.n,
    encode_images_per_s: set.n / c.seconds,
    decode_images_per_s: set.n / d.seconds,
    encode_seconds: c.seconds,
    decode_seconds: d.seconds,
    round_trip_exact: exact,
    sha256_in: shaIn,
    sha256_out: shaOut,
  };
  log(`spn: ${spn.bits_per_subpixel.toFixed(4)} bits/sub-pixel (streams ${spn.stream_bits_per_subpixel.toFixed(4)}, NLL ${spn.model_nll_bits_per_subpixel.toFixed(4)}, overhead ${spn.overhead_percent.toFixed(3)}%)`);

  const baselines = [await baseline(set, bits, 'png', log), await baseline(set, bits, 'webp', log)];
  const canJxl = Boolean((sharp.format as unknown as Record<string, { output?: { buffer?: boolean } }>).jxl?.output?.buffer);
  if (canJxl) baselines.push(await baseline(set, bits, 'jxl', log));
  return {
    ...reportHeader('codec', 'cpu', o.quick ?? false),
    run: o.run, data: `${data} ${split} [0, ${set.n})`, images: set.n, subpixels_per_image: size, batch,
    spn, baselines, jxl: canJxl ? 'measured' : 'not available: this libvips cannot write JPEG XL',
    note: 'encode_seconds excludes loading the model (opened once, before, and shared with the NLL pass); decode_seconds includes loading and verifying the models the file names (weights sha256, probe logits)',
  };
}

/** How long the run trained (its last metrics line): what the numbers of its model are worth. */
export interface RunTraining {
  steps: number;
  /** Seconds of training at the last logged step. */
  seconds: number;
  /** The run's time budget (`--minutes`), or null. */
  minutes: number | null;
}

function trainedFor(run: string): RunTraining | null {
  const file = path.join(run, 'metrics.jsonl');
  if (!fs.existsSync(file)) return null;
  let minutes: number | null = null;
  try {
    const cfg = JSON.parse(fs.readFileSync(path.join(run, 'config.json'), 'utf8')) as { minutes?: unknown };
    if (typeof cfg.minutes === 'number') minutes = cfg.minutes;
  } catch {
    // no config: the budget is unknown
  }
  let last: RunTraining | null = null;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      const m = JSON.parse(line) as { kind?: string; step?: number; time_s?: number };
      if (m.kind === 'train' && typeof m.step === 'number' && typeof m.time_s === 'number') last = { steps: m.step, seconds: m.time_s, minutes };
    } catch {
      // a line being written
    }
  }
  return last;
}

/** This machine's matmul extensions (what the model's arithmetic ran on). */

const raw = (im: CodecImage, channels: number, bits: number): RawImage => ({
  data: bits < 8 ? im.data.map((v) => v << (8 - bits)) : im.data, width: im.width, height: im.height, channels: channels as 1 | 3,
});

/** A baseline coder's whole file for one image, checked to decode back exactly. */
async function baselineFile(img: RawImage, coder: Compressor): Promise<number> {
  const { file } = await codeLength(img, coder);
  const back = await decodeRaw(file, img.channels);
  if (!Buffer.from(back).equals(Buffer.from(img.data))) throw new SpnError('E_FORMAT', `${coder}: a ${img.width}×${img.height} image did not decode to its pixels (not lossless)`);
  return file.length;
}

const SETTINGS: Record<Compressor, string> = { png: 'sharp png: compressionLevel 9, adaptiveFiltering, palette off, effort 10', webp: 'sharp webp: lossless, effort 6, exact' };

export interface SingleBenchOptions {
  run: string;
  data?: string;
  split?: 'test' | 'train';
  limit?: number;
  cacheDir?: string;
  quick?: boolean;
  log?: (line: string) => void;
}

export interface CodecSingleReport extends ReportHeader<'codec-single'> {
  run: string;
  trained: RunTraining | null;
  cpu_flags: string[];
  /** The machine's 1-minute load average at the start and the end: how shared its cores were. */
  load_average?: [number, number];
  data: string;
  images: number;
  subpixels_per_image: number;
  spn: {
    mean_file_bytes: number;
    mean_stream_bytes: number;
    /** File bytes beyond the coded stream: the container (magic, ids, sizes, hash, checksum). */
    mean_container_bytes: number;
    max_container_bytes: number;
    bits_per_subpixel: number;
    model_bits_per_subpixel: number;
    encode_seconds_per_image: number;
    decode_seconds_per_image: number;
    round_trip_exact: number;
  };
  baselines: { coder: Compressor; settings: string; mean_file_bytes: number; bits_per_subpixel: number; round_trip_exact: number }[];
  /** Images whose .spn file is smaller than that coder's file. */
  smaller_than: Record<Compressor, number>;
  note: string;
}

/** Each image compressed alone (one .spn file each, version 2), against PNG and WebP files of it. */
export async function benchCodecSingle(o: SingleBenchOptions): Promise<CodecSingleReport> {
  const log = o.log ?? (() => {});
  const data = o.data ?? 'fashion-mnist';
  const split = o.split ?? 'test';
  const limit = o.limit ?? (o.quick ? 4 : 100);
  const load0 = os.loadavg()[0]!;
  const models = await openModels({ run: o.run });
  try {
    const last = models.stages[models.stages.length - 1]!;
    const { channels, bits } = models.image;
    const { images, names } = await readInputsList(data, models, last, split, limit, o.cacheDir);
    log(`${images.length} images of ${data} ${split}, each in a file of its own`);
    let [fileBytes, streamBytes, maxContainer, modelBits, enc, dec, exact] = [0, 0, 0, 0, 0, 0, 0];
    const sizes: number[] = [];
    for (const [i, im] of images.entries()) {
      const file = `${names[i]}.spn`;
      const c = await compressImages(models, [im], { file });
      const d = await decompressBytes(c.bytes, { file, models });
      if (!Buffer.from(d.images[0]!.data).equals(Buffer.from(im.data)) || d.images[0]!.name !== names[i]) throw new SpnError('E_FORMAT', `${file}: the round trip differs`);
      exact++;
      fileBytes += c.sizes.total;
      sizes.push(c.sizes.total);
      streamBytes += c.sizes.streams;
      maxContainer = Math.max(maxContainer, c.sizes.total - c.sizes.streams);
      modelBits += c.images[0]!.model_bits;
      enc += c.seconds;
      dec += d.seconds;
      if ((i + 1) % 10 === 0) log(`${i + 1}/${images.length} files`);
    }
    const n = images.length;
    const sub = n * images[0]!.data.length;
    const baselines: CodecSingleReport['baselines'] = [];
    const smaller = { png: 0, webp: 0 } as Record<Compressor, number>;
    for (const coder of ['png', 'webp'] as const) {
      let total = 0;
      for (const [i, im] of images.entries()) {
        const b = await baselineFile(raw(im, channels, bits), coder);
        total += b;
        if (sizes[i]! < b) smaller[coder]++;
      }
      baselines.push({ coder, settings: SETTINGS[coder], mean_file_bytes: total / n, bits_per_subpixel: (8 * total) / sub, round_trip_exact: n });
      log(`${coder}: ${(total / n).toFixed(1)} bytes per file`);
    }
    const spn = {
      mean_file_bytes: fileBytes / n, mean_stream_bytes: streamBytes / n, mean_container_bytes: (fileBytes - streamBytes) / n, max_container_bytes: maxContainer,
      bits_per_subpixel: (8 * fileBytes) / sub, model_bits_per_subpixel: modelBits / sub,
      encode_seconds_per_image: enc / n, decode_seconds_per_image: dec / n, round_trip_exact: exact,
    };
    log(`spn: ${spn.mean_file_bytes.toFixed(1)} bytes per file (stream ${spn.mean_stream_bytes.toFixed(1)}, container ${spn.mean_container_bytes.toFixed(1)})`);
    return {
      ...reportHeader('codec-single', 'cpu', o.quick ?? false),
      run: o.run, trained: trainedFor(o.run), cpu_flags: cpuFlags(), load_average: [load0, os.loadavg()[0]!], data: `${data} ${split} [0, ${n})`, images: n, subpixels_per_image: images[0]!.data.length,
      spn, baselines, smaller_than: smaller,
      note: 'one .spn file per image (version 2, the default name: no name recorded), encoded and decoded with the model opened once (encode includes the probe, decode the weights check and the probe); PNG and WebP files per image, headers counted',
    };
  } finally {
    closeModels(models);
  }
}

async function readInputsList(data: string, models: CodecModels, last: CodecModels['stages'][number], split: 'test' | 'train', limit: number, cacheDir?: string): Promise<{ images: CodecImage[]; names: string[] }> {
  const { set, names } = await readInputs([data], { image: models.image, config: last.config, split, limit, cacheDir });
  const all = readAll(set);
  const size = set.h * set.w * set.c;
  return { images: Array.from({ length: set.n }, (_, i) => ({ height: set.h, width: set.w, data: all.subarray(i * size, (i + 1) * size) })), names };
}

export interface MosaicBenchOptions extends SingleBenchOptions {
  /** Images per side of a full mosaic (default 8). */
  grid?: number;
  /** The odd mosaic's width and height in pixels (default 250×170). */
  odd?: [number, number];
  batchSize?: number;
}

export interface MosaicResult {
  width: number;
  height: number;
  tiles: number;
  file_bytes: number;
  bits_per_subpixel: number;
  stream_bits_per_subpixel: number;
  model_bits_per_subpixel: number;
  png_bits_per_subpixel: number;
  webp_bits_per_subpixel: number;
  encode_seconds: number;
  decode_seconds: number;
  exact: boolean;
}

export interface CodecMosaicReport extends ReportHeader<'codec-mosaic'> {
  run: string;
  trained: RunTraining | null;
  cpu_flags: string[];
  load_average?: [number, number];
  data: string;
  images: number;
  tile: [number, number, number];
  batch: number;
  mosaics: MosaicResult[];
  /** Means over the full mosaics and the odd one (bits per sub-pixel weighted by sub-pixels). */
  summary: { kind: 'full' | 'odd'; count: number; width: number; height: number; bits_per_subpixel: number; model_bits_per_subpixel: number; png_bits_per_subpixel: number; webp_bits_per_subpixel: number; encode_seconds: number; decode_seconds: number; exact: number }[];
  note: string;
}

/** Images idx laid out row by row, cols per row, cropped to width×height (H×W×C). */
function mosaic(images: CodecImage[], idx: number[], cols: number, width: number, height: number, c: number): CodecImage {
  const [th, tw] = [images[0]!.height, images[0]!.width];
  const out = new Uint8Array(width * height * c);
  idx.forEach((k, j) => {
    const [y0, x0] = [Math.floor(j / cols) * th, (j % cols) * tw];
    const im = images[k % images.length]!;
    for (let r = 0; r < th && y0 + r < height; r++) {
      const w = Math.min(tw, width - x0);
      if (w <= 0) continue;
      out.set(im.data.subarray(r * tw * c, (r * tw + w) * c), ((y0 + r) * width + x0) * c);
    }
  });
  return { height, width, data: out };
}

/** The images as grid×grid mosaics plus one odd-size mosaic of the rest, each coded as tiles. */
export async function benchCodecMosaic(o: MosaicBenchOptions): Promise<CodecMosaicReport> {
  const log = o.log ?? (() => {});
  const data = o.data ?? 'fashion-mnist';
  const split = o.split ?? 'test';
  const grid = o.grid ?? (o.quick ? 2 : 8);
  const batch = o.batchSize ?? 32;
  const load0 = os.loadavg()[0]!;
  const models = await openModels({ run: o.run });
  try {
    const last = models.stages[models.stages.length - 1]!;
    const { height: th, width: tw, channels: C, bits } = models.image;
    const [oddW, oddH] = o.odd ?? (o.quick ? [tw + 3, th - 5] : [250, 170]);
    const limit = o.limit ?? (o.quick ? grid * grid + 2 : 1000);
    const { images } = await readInputsList(data, models, last, split, limit, o.cacheDir);
    const per = grid * grid;
    const full = Math.floor(images.length / per);
    const layouts: { kind: 'full' | 'odd'; image: CodecImage }[] = [];
    for (let m = 0; m < full; m++) layouts.push({ kind: 'full', image: mosaic(images, Array.from({ length: per }, (_, j) => m * per + j), grid, grid * tw, grid * th, C) });
    // the odd mosaic: the images left over, then from the first again, to cover oddW×oddH
    const [oc, or] = [Math.ceil(oddW / tw), Math.ceil(oddH / th)];
    layouts.push({ kind: 'odd', image: mosaic(images, Array.from({ length: oc * or }, (_, j) => full * per + j), oc, oddW, oddH, C) });
    log(`${images.length} images of ${data} ${split}: ${full} mosaics of ${grid * tw}×${grid * th} and one of ${oddW}×${oddH}`);
    const mosaics: MosaicResult[] = [];
    for (const [i, { image }] of layouts.entries()) {
      const file = `mosaic-${i}.spn`;
      const c = await compressImages(models, [image], { file, batchSize: batch });
      const d = await decompressBytes(c.bytes, { file, models });
      const exact = Buffer.from(d.images[0]!.data).equals(Buffer.from(image.data));
      if (!exact) throw new SpnError('E_FORMAT', `${file}: the round trip differs`);
      const sub = image.data.length;
      const r = raw(image, C, bits);
      const [png, webp] = [await baselineFile(r, 'png'), await baselineFile(r, 'webp')];
      mosaics.push({
        width: image.width, height: image.height, tiles: c.tiles, file_bytes: c.sizes.total,
        bits_per_subpixel: (8 * c.sizes.total) / sub, stream_bits_per_subpixel: (8 * c.sizes.streams) / sub, model_bits_per_subpixel: c.images[0]!.model_bits / sub,
        png_bits_per_subpixel: (8 * png) / sub, webp_bits_per_subpixel: (8 * webp) / sub,
        encode_seconds: c.seconds, decode_seconds: d.seconds, exact,
      });
      const m = mosaics[mosaics.length - 1]!;
      log(`mosaic ${i + 1}/${layouts.length} (${image.width}×${image.height}, ${c.tiles} tiles): ${m.bits_per_subpixel.toFixed(4)} bits/sub-pixel (PNG ${m.png_bits_per_subpixel.toFixed(3)}, WebP ${m.webp_bits_per_subpixel.toFixed(3)}), encode ${m.encode_seconds.toFixed(1)} s, decode ${m.decode_seconds.toFixed(1)} s`);
    }
    const summary = (['full', 'odd'] as const).flatMap((kind) => {
      const ms = mosaics.filter((_, i) => layouts[i]!.kind === kind);
      if (!ms.length) return [];
      const sub = ms.reduce((a, m) => a + m.width * m.height * C, 0);
      const w = (f: (m: MosaicResult) => number) => ms.reduce((a, m) => a + f(m) * m.width * m.height * C, 0) / sub;
      return [{
        kind, count: ms.length, width: ms[0]!.width, height: ms[0]!.height,
        bits_per_subpixel: w((m) => m.bits_per_subpixel), model_bits_per_subpixel: w((m) => m.model_bits_per_subpixel),
        png_bits_per_subpixel: w((m) => m.png_bits_per_subpixel), webp_bits_per_subpixel: w((m) => m.webp_bits_per_subpixel),
        encode_seconds: ms.reduce((a, m) => a + m.encode_seconds, 0) / ms.length, decode_seconds: ms.reduce((a, m) => a + m.decode_seconds, 0) / ms.length,
        exact: ms.filter((m) => m.exact).length,
      }];
    });
    return {
      ...reportHeader('codec-mosaic', 'cpu', o.quick ?? false),
      run: o.run, trained: trainedFor(o.run), cpu_flags: cpuFlags(), load_average: [load0, os.loadavg()[0]!], data: `${data} ${split} [0, ${images.length})`, images: images.length, tile: [th, tw, C], batch,
      mosaics, summary,
      note: `each mosaic one .spn file (version 2) of tiles of ${tw}×${th}, batches of ${batch} tiles; seconds per mosaic with the model opened once (encode includes the probe, decode the weights check and the probe); PNG and WebP of each whole mosaic`,
    };
  } finally {
    closeModels(models);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      run: { type: 'string' },
      mode: { type: 'string', default: 'files' },
      data: { type: 'string', default: 'fashion-mnist' },
      split: { type: 'string', default: 'test' },
      limit: { type: 'string' },
      'batch-size': { type: 'string', default: '32' },
      'cache-dir': { type: 'string' },
      quick: { type: 'boolean', default: false },
      json: { type: 'string' },
    },
    strict: true,
  });
  if (!values.run) throw new ArgError('--run <dir>: the run folder to benchmark is required');
  if (values.split !== 'test' && values.split !== 'train') throw new ArgError(`--split ${values.split}: expected test or train`);
  const int = (flag: string, v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new ArgError(`${flag} ${v}: expected a positive integer`);
    return n;
  };
  const split: 'test' | 'train' = values.split;
  const common = {
    run: values.run, data: values.data, split, limit: values.limit === undefined ? undefined : int('--limit', values.limit),
    cacheDir: values['cache-dir'], quick: values.quick, log: (l: string) => void process.stderr.write(l + '\n'),
  };
  const batchSize = int('--batch-size', values['batch-size']!);
  if (values.mode === 'files') emitReport(await benchCodec({ ...common, batchSize }), values.json);
  else if (values.mode === 'single') emitReport(await benchCodecSingle(common), values.json);
  else if (values.mode === 'mosaic') emitReport(await benchCodecMosaic({ ...common, batchSize }), values.json);
  else throw new ArgError(`--mode ${values.mode}: expected files, single or mosaic`);
}

runIfMain(import.meta.url, 'bench/codec', main);
