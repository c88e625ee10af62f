// Codec benchmark: a trained run's .spn files against the model's own NLL on the same images and
// against the lossless coders people use, every image round-tripped and checked.
//
//   node dist/bench/codec.js --run runs/fmnist-30min-v5 [--data fashion-mnist] [--split test]
//                            [--limit 1000] [--batch-size 32] [--json out.json]
//   npm run bench -- --only codec --codec-run runs/fmnist-30min-v5 [--codec-data SPEC] [--codec-limit N]
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
import { closeModels, compressImages, decompressBytes, openModels, readInputs } from '../src/codec/index.js';
import { codeLength, decodeRaw, type Compressor, type RawImage } from '../src/score/index.js';
import type { ImageSet } from '../src/data/types.js';
import { evaluate } from '../src/store/evaluate.js';
import * as torch from '../src/torch/index.js';
import { emitReport, reportHeader, runIfMain, type ReportHeader } from './machine.js';

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
  const size = set.h * set.w * set.c;
  const shift = 8 - bits;
  const px = set.data.subarray(i * size, (i + 1) * size);
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
    c = await compressImages(models, set, { batchSize: batch, onProgress: (p) => p.done === p.images && log(`encoded ${p.done} images`) });
  } finally {
    closeModels(models);
  }
  const bits = models.image.bits;
  const sub = set.n * set.h * set.w * set.c;
  log(`encoded in ${c.seconds.toFixed(1)} s: ${c.sizes.total} bytes`);
  const d = await decompressBytes(c.bytes, { file: `${o.run} (${data})` });
  log(`decoded in ${d.seconds.toFixed(1)} s`);
  const size = set.h * set.w * set.c;
  let exact = 0;
  for (let i = 0; i < set.n; i++) {
    const a = set.data.subarray(i * size, (i + 1) * size);
    const b = d.images.data.subarray(i * size, (i + 1) * size);
    if (Buffer.from(a).equals(Buffer.from(b))) exact++;
  }
  const [shaIn, shaOut] = [sha(set.data), sha(d.images.data)];
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

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      run: { type: 'string' },
      data: { type: 'string', default: 'fashion-mnist' },
      split: { type: 'string', default: 'test' },
      limit: { type: 'string', default: '1000' },
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
  const report = await benchCodec({
    run: values.run, data: values.data, split: values.split, limit: int('--limit', values.limit!), batchSize: int('--batch-size', values['batch-size']!),
    cacheDir: values['cache-dir'], quick: values.quick, log: (l) => process.stderr.write(l + '\n'),
  });
  emitReport(report, values.json);
}

runIfMain(import.meta.url, 'bench/codec', main);
