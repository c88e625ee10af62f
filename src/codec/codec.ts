// Lossless image compression with an SPN: arithmetic coding (rangecoder.ts) of every sub-pixel,
// in subscale order, with the model's distribution for it quantized to integer counts
// (quantize.ts). The encoder and the decoder run one code path (walk.ts) in the same batches on
// the same thread count, so they compute bit-identical logits and therefore identical counts.
//
// A pipeline codes each stage's sub-pixels with its own model: stage i codes its view of the image
// (the final image subsampled by the later size stages' S and cut to its bits) given stage i−1's.
// All stages of an image go into one stream, stage after stage.
import { ArgError, FormatError } from '../errors.js';
import * as torch from '../torch/index.js';
import type { ImageSet } from '../data/types.js';
import { generationOrder } from '../spn/slices.js';
import { stageView } from '../store/pipeline.js';
import { compactNames, decodeContainer, encodeContainer, imageName, type ContainerSizes, type Header, type ImageRecord } from './container.js';
import { pixelHash, pixelsHash } from './hash.js';
import { DEFAULT_BATCH, DEFAULT_PRECISION } from './defaults.js';
import { modelBits, quantize, QUANTIZER_ID, type SoftmaxNorm } from './quantize.js';
import { findSymbol, RangeDecoder, RangeEncoder } from './rangecoder.js';
import { closeModels, CODEC_THREADS, openModels, openModelsFor, stageEntry, type CodecModels, type LoadOptions, type ModelSource } from './stages.js';
import { walkBatch } from './walk.js';

export { DEFAULT_BATCH, DEFAULT_PRECISION };

export interface CodecProgress {
  stage: number; // 0-based
  stages: number;
  done: number; // images of this stage done (fractional within a batch, by slice)
  images: number;
}

/** Where the bits of one image went. */
export interface ImageCodeStats {
  name: string;
  /** Bytes of the coded stream (the range coder's output, termination included). */
  bytes: number;
  /** −log2 of the quantized counts of the coded values: what an ideal coder would spend. */
  ideal_bits: number;
  /** −log2 of the model's own (float) probabilities of the values: the model's NLL in bits. */
  model_bits: number;
}

export interface CompressOptions extends LoadOptions {
  batchSize?: number;
  precision?: number;
  /** File names for the images (recorded; default image-000000, …). */
  names?: string[] | null;
  /** Where the images came from, in words (recorded). */
  source?: string;
  onProgress?: (p: CodecProgress) => void;
}

export interface CompressResult {
  bytes: Uint8Array;
  header: Header;
  sizes: ContainerSizes;
  images: ImageCodeStats[];
  /** Sub-pixels per image (H·W·C of the final image). */
  subpixels: number;
  seconds: number;
}

export interface DecompressOptions {
  /** The file's name, for messages. */
  file?: string;
  /** Decode with this run folder instead of the recorded one (single-stage files). */
  run?: string;
  /** Decode with this pipeline's runs instead of the recorded ones. */
  pipeline?: string;
  onProgress?: (p: CodecProgress) => void;
}

export interface DecompressResult {
  header: Header;
  /** The decoded images at header.image.bits. */
  images: ImageSet;
  names: string[];
  seconds: number;
}

/**
 * Codes one sub-pixel of one image: the encoder returns the known value (after coding it), the
 * decoder the decoded one. `cum` holds the quantized cumulative counts (V + 1) of the image's
 * logits at `offset`, `norm` their softmax's normaliser (quantize.ts).
 */
type CodeFn = (image: number, stage: number, pos: number, cum: Uint32Array, logits: Float32Array, offset: number, norm: SoftmaxNorm) => number;

/**
 * The stage loop both directions share: stage by stage, batch by batch (batches of `batch`
 * images from the first), each batch walked by walkBatch with the previous stage's output as its
 * given part. Returns every stage's output (n images each).
 */
function runStages(models: CodecModels, n: number, batch: number, precision: number, code: CodeFn, onProgress?: (p: CodecProgress) => void): ImageSet[] {
  const outputs: ImageSet[] = [];
  const { stages } = models;
  for (const [si, s] of stages.entries()) {
    const m = s.config.model;
    const { height: H, width: W, channels: C } = m;
    const size = H * W * C;
    const V = s.model.V;
    // the flat (row-major HWC) index of each sub-pixel in walk order: slice by slice, raster order inside, channels
    const pos = generationOrder(H, W, C, m.scale);
    const cum = new Uint32Array(V + 1);
    const scratch = new Float64Array(V);
    const norm: SoftmaxNorm = { max: 0, sum: 0 };
    const out = new Uint8Array(n * size);
    const prev = outputs[si - 1];
    const S = m.scale;
    for (let b = 0; b < n; b += batch) {
      const mB = Math.min(batch, n - b);
      const canvas = new Uint8Array(mB * size);
      let given: Uint8Array | undefined;
      if (m.stage === 'size') {
        // slice 0 = x[0::S, 0::S] = the previous stage's image
        const [h, w] = [H / S, W / S];
        for (let j = 0; j < mB; j++) {
          for (let r = 0; r < h; r++) {
            for (let x = 0; x < w; x++) {
              for (let c = 0; c < C; c++) canvas[j * size + (r * S * W + x * S) * C + c] = prev!.data[(b + j) * h * w * C + (r * w + x) * C + c]!;
            }
          }
        }
      } else if (m.stage === 'depth') {
        given = prev!.data.subarray(b * size, (b + mB) * size);
      }
      const start = s.model.firstSlice * s.model.T * C; // walk order starts at the stage's first slice
      let step = start;
      const perSlice = s.model.T * C;
      const steps = pos.length - start;
      const values = new Int32Array(mB); // walkBatch copies them before the next call
      const result = walkBatch(s.model, s.plan, { m: mB, canvas, given }, (logits) => {
        if (step > start && (step - start) % perSlice === 0) onProgress?.({ stage: si, stages: stages.length, done: b + (mB * (step - start)) / steps, images: n });
        const p = pos[step++]!;
        for (let j = 0; j < mB; j++) {
          quantize(logits, j * V, V, precision, cum, scratch, norm);
          values[j] = code(b + j, si, p, cum, logits, j * V, norm);
        }
        return values;
      });
      if (m.stage === 'depth') {
        const low = 2 ** m.bits;
        for (let i = 0; i < result.length; i++) out[b * size + i] = given![i]! * low + result[i]!;
      } else {
        out.set(result, b * size);
      }
      onProgress?.({ stage: si, stages: stages.length, done: b + mB, images: n });
    }
    outputs.push({ data: out, n, h: H, w: W, c: C });
  }
  return outputs;
}

function checkImages(set: ImageSet, models: CodecModels, names: string[]): void {
  const { height, width, channels, bits } = models.image;
  if (set.h !== height || set.w !== width || set.c !== channels) {
    throw new ArgError(`the images are ${set.h}×${set.w}×${set.c}; the model${models.stages.length > 1 ? 's code' : ' codes'} ${height}×${width}×${channels}`);
  }
  const size = height * width * channels;
  const max = 2 ** bits;
  for (let i = 0; i < set.n; i++) {
    for (let p = i * size; p < (i + 1) * size; p++) {
      if (set.data[p]! >= max) throw new ArgError(`image ${names[i]} has the value ${set.data[p]} at sub-pixel ${p - i * size}; the model codes ${bits}-bit values (0..${max - 1})`);
    }
  }
}

/**
 * Compresses images (n, H, W, C) at the models' output bits into a .spn container. `src` names
 * the models (loaded and closed here) or is models already opened with openModels (kept open).
 */
export async function compressImages(src: ModelSource | CodecModels, set: ImageSet, o: CompressOptions = {}): Promise<CompressResult> {
  const batch = o.batchSize ?? DEFAULT_BATCH;
  const precision = o.precision ?? DEFAULT_PRECISION;
  if (!Number.isInteger(batch) || batch < 1) throw new ArgError(`batch size ${batch}: expected a positive integer`);
  const names = o.names ?? null;
  if (names && names.length !== set.n) throw new ArgError(`${names.length} names for ${set.n} images`);
  return torch.withThreads(CODEC_THREADS, async () => {
    const started = performance.now();
    const opened = 'stages' in src ? null : await openModels(src, o);
    const models = opened ?? (src as CodecModels);
    try {
      const label = (i: number) => names?.[i] ?? `#${i}`;
      checkImages(set, models, Array.from({ length: set.n }, (_, i) => label(i)));
      const views = models.stages.map((_, i) => stageView(models.stages, i, set, models.image.bits));
      const encoders = Array.from({ length: set.n }, () => new RangeEncoder(precision));
      const ideal = new Float64Array(set.n);
      const nll = new Float64Array(set.n);
      const total = 2 ** precision;
      const masks = models.stages.map((s) => (s.config.model.stage === 'depth' ? 2 ** s.config.model.bits - 1 : 255));
      const outputs = runStages(models, set.n, batch, precision, (img, si, pos, cum, logits, off, norm) => {
        const view = views[si]!;
        const x = view.data[img * view.h * view.w * view.c + pos]! & masks[si]!;
        const size = cum[x + 1]! - cum[x]!;
        encoders[img]!.encode(cum[x]!, size);
        ideal[img] += Math.log2(total / size);
        nll[img] += modelBits(logits, off, x, norm);
        return x;
      }, o.onProgress);
      // The walk fed back exactly the images' values: its outputs are the views themselves.
      outputs.forEach((out, i) => {
        if (!Buffer.from(out.data).equals(Buffer.from(views[i]!.data))) throw new FormatError(`internal: stage ${i + 1}'s walk did not reproduce its input`);
      });
      const size = set.h * set.w * set.c;
      const records: ImageRecord[] = encoders.map((e, i) => ({ stream: e.finish(), hash: pixelHash(set.data.subarray(i * size, (i + 1) * size)) }));
      const header: Header = {
        format: 'spn-codec',
        coder: { kind: 'range48', precision, quantizer: QUANTIZER_ID },
        libtorch: torch.native.info().version,
        threads: CODEC_THREADS,
        batch,
        dtype: 'float32',
        device: 'cpu',
        image: models.image,
        pipeline: models.pipeline,
        stages: models.stages.map((s) => stageEntry(s, batch)),
        count: set.n,
        pixels: pixelsHash(set.data.subarray(0, set.n * size)),
        names: compactNames(names),
        source: o.source ?? '',
      };
      const { bytes, sizes } = encodeContainer({ header, records });
      const images = records.map((r, i) => ({ name: imageName(header, i), bytes: r.stream.length, ideal_bits: ideal[i]!, model_bits: nll[i]! }));
      return { bytes, header, sizes, images, subpixels: size, seconds: (performance.now() - started) / 1000 };
    } finally {
      if (opened) closeModels(opened);
    }
  });
}

/** Decodes a .spn container; every check failing is an SpnError naming the file, never wrong pixels. */
export async function decompressBytes(bytes: Uint8Array, o: DecompressOptions = {}): Promise<DecompressResult> {
  const file = o.file ?? '<buffer>';
  const { header: h, records } = decodeContainer(bytes, file);
  const here = torch.native.info().version;
  if (h.libtorch !== here) {
    throw new FormatError(`${file} was coded with libtorch ${h.libtorch}; this machine has ${here}, whose kernels may round differently: decode it with libtorch ${h.libtorch}`);
  }
  if (h.threads !== CODEC_THREADS) throw new FormatError(`${file} was coded on ${h.threads} libtorch threads; this spn codes and decodes on ${CODEC_THREADS}`);
  return torch.withThreads(CODEC_THREADS, async () => {
    const started = performance.now();
    const models = await openModelsFor(h, { file, run: o.run, pipeline: o.pipeline });
    try {
      const { height, width, channels, bits } = models.image;
      if (height !== h.image.height || width !== h.image.width || channels !== h.image.channels || bits !== h.image.bits) {
        throw new FormatError(`${file}: its stages output ${height}×${width}×${channels} at ${bits} bits, the header says ${h.image.height}×${h.image.width}×${h.image.channels} at ${h.image.bits}`);
      }
      const decoders = records.map((r) => new RangeDecoder(r.stream, h.coder.precision));
      const outputs = runStages(models, h.count, h.batch, h.coder.precision, (img, si, _pos, cum) => {
        const d = decoders[img]!;
        const V = models.stages[si]!.model.V;
        const x = findSymbol(cum, V, d.target());
        d.update(cum[x]!, cum[x + 1]! - cum[x]!);
        return x;
      }, o.onProgress);
      const images = outputs[outputs.length - 1]!;
      const size = height * width * channels;
      const names = Array.from({ length: h.count }, (_, i) => imageName(h, i));
      records.forEach((r, i) => {
        const got = pixelHash(images.data.subarray(i * size, (i + 1) * size));
        if (decoders[i]!.corrupt || !Buffer.from(got).equals(Buffer.from(r.hash))) {
          throw new FormatError(
            `${file}: image ${i} (${names[i]}) decoded to pixels whose hash (${Buffer.from(got).toString('hex')}) is not the recorded one (${Buffer.from(r.hash).toString('hex')}): ` +
              'the models or this machine compute different probabilities than when the file was written; nothing was written',
          );
        }
      });
      if (pixelsHash(images.data) !== h.pixels) {
        throw new FormatError(`${file}: the decoded images' sha256 (${pixelsHash(images.data).slice(0, 16)}…) is not the recorded one (${h.pixels.slice(0, 16)}…); nothing was written`);
      }
      return { header: h, images, names, seconds: (performance.now() - started) / 1000 };
    } finally {
      closeModels(models);
    }
  });
}
