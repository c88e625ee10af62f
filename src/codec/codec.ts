// Lossless image compression with an SPN, the encoding side (decoding: decompress.ts):
// arithmetic coding (rangecoder.ts) of every sub-pixel, in subscale order, with the model's
// distribution for it quantized to integer counts (quantize.ts). The encoder and the decoder run
// one code path (loop.ts, walk.ts) in the same batches on the same thread count, so they compute
// bit-identical logits and therefore identical counts.
//
// Images of any size are cut into tiles of the model's size (tiles.ts); the tiles of all images,
// in order, are coded in batches of `batch` tiles, so the tiles of one large image are walked
// together. Each tile's sub-pixels go into its image's stream, in the order the batch visits them.
// Padding (the part of an edge tile past the image) is not coded: each padding sub-pixel is given
// the model's most probable value there, which both sides compute from the same logits.
//
// A pipeline codes each stage's sub-pixels with its own model: stage i codes its view of the tile
// (the final tile subsampled by the later size stages' S and cut to its bits) given stage i−1's.
// All stages of an image go into one stream, stage after stage.
import { ArgError, FormatError } from '../errors.js';
import * as torch from '../torch/index.js';
import { memorySet } from '../data/sets.js';
import { stageView } from '../store/pipeline.js';
import { compactNames, encodeContainer, imageName, type ContainerSizes, type Header, type StageEntry } from './container.js';
import { encodeContainer2, PROBE_BYTES, WEIGHTS_ID_BYTES, type ContainerV2 } from './container2.js';
import { pixelHash, pixelsHash } from './hash.js';
import { DEFAULT_BATCH, DEFAULT_PRECISION } from './defaults.js';
import { MAX_BATCH, MAX_FILE_SUBPIXELS, sizeProblem } from './limits.js';
import { cutAll, pasteAll, probeBatch, runStages, type CodecImage, type CodecInput, type CodecProgress } from './loop.js';
import { fileStem, namesOf, recordedNames } from './names.js';
import { modelBits, QUANTIZER_ID } from './quantize.js';
import { RangeEncoder } from './rangecoder.js';
import { closeModels, CODEC_THREADS, openModels, stageEntry, type CodecModels, type LoadOptions, type ModelSource } from './stages.js';
import { planTiles } from './tiles.js';

export { DEFAULT_BATCH, DEFAULT_PRECISION };
export type { CodecImage, CodecInput, CodecProgress };
export { decompressBytes, type DecodedImage, type DecompressOptions, type DecompressResult } from './decompress.js';

/** Where the bits of one image went. */
export interface ImageCodeStats {
  name: string;
  height: number;
  width: number;
  /** Bytes of the coded stream (the range coder's output, termination included). */
  bytes: number;
  /** −log2 of the quantized counts of the coded values: what an ideal coder would spend. */
  ideal_bits: number;
  /** −log2 of the model's own (float) probabilities of the values: the model's NLL in bits. */
  model_bits: number;
  /** Sub-pixels coded, every stage's (padding is not coded). */
  coded: number;
}

export interface CompressOptions extends LoadOptions {
  /** Tiles coded together (recorded when not the default; decoding uses the same). */
  batchSize?: number;
  precision?: number;
  /** File names for the images (default: see names.ts). */
  names?: string[] | null;
  /** Where the images came from, in words (recorded in version 1 files only). */
  source?: string;
  /** The container: 2 (default: compact, any image size) or 1 (a JSON header; images of the model's size only). */
  version?: 1 | 2;
  /** The .spn file to be written: a file of one image named like it records no name. */
  file?: string;
  onProgress?: (p: CodecProgress) => void;
}

export interface CompressResult {
  bytes: Uint8Array;
  version: 1 | 2;
  batch: number;
  precision: number;
  /** What was coded with, per stage (weights and probe sha256 in full). */
  stages: StageEntry[];
  /** A version 1 file's header; null for version 2. */
  header: Header | null;
  sizes: ContainerSizes;
  images: ImageCodeStats[];
  /** Sub-pixels of all the images at their true sizes. */
  subpixels: number;
  tiles: number;
  /** Batches walked (walkBatch calls, every stage's): the tiles of one image share them. */
  walks: number;
  seconds: number;
}

/** The images as CodecImages (a set is read once). */
function asImages(input: CodecInput, channels: number): CodecImage[] {
  if (!('read' in input)) return [...input];
  if (input.c !== channels) throw new ArgError(`the images have ${input.c} channel(s); the model codes ${channels}`);
  const size = input.h * input.w * input.c;
  const all = input.read(0, input.n);
  return Array.from({ length: input.n }, (_, i) => ({ height: input.h, width: input.w, data: all.subarray(i * size, (i + 1) * size) }));
}

function checkImages(images: CodecImage[], models: CodecModels, label: (i: number) => string, version: 1 | 2): void {
  const { height, width, channels, bits } = models.image;
  const max = 2 ** bits;
  let total = 0;
  images.forEach((im, i) => {
    if (version === 1 && (im.height !== height || im.width !== width)) {
      throw new ArgError(`image ${label(i)} is ${im.width}×${im.height} (W×H); a version 1 file codes only the model's ${width}×${height} (version 2 codes any size)`);
    }
    const problem = sizeProblem(im.height, im.width);
    if (problem) throw new ArgError(`image ${label(i)} is ${problem}`);
    if (im.data.length !== im.height * im.width * channels) {
      throw new ArgError(`image ${label(i)} has ${im.data.length} values; ${im.width}×${im.height} with the model's ${channels} channel(s) is ${im.height * im.width * channels}`);
    }
    total += im.data.length;
    if (total > MAX_FILE_SUBPIXELS) throw new ArgError(`the images have more than ${MAX_FILE_SUBPIXELS} sub-pixels together; code them in several files`);
    for (let p = 0; p < im.data.length; p++) {
      if (im.data[p]! >= max) throw new ArgError(`image ${label(i)} has the value ${im.data[p]} at sub-pixel ${p}; the model codes ${bits}-bit values (0..${max - 1})`);
    }
  });
}

/**
 * Compresses images at the models' output bits into a .spn container (version 2 unless asked for
 * 1). `src` names the models (loaded and closed here) or is models already opened with
 * openModels (kept open).
 */
export async function compressImages(src: ModelSource | CodecModels, input: CodecInput, o: CompressOptions = {}): Promise<CompressResult> {
  const batch = o.batchSize ?? DEFAULT_BATCH;
  const precision = o.precision ?? DEFAULT_PRECISION;
  const version = o.version ?? 2;
  if (!Number.isInteger(batch) || batch < 1 || batch > MAX_BATCH) throw new ArgError(`batch size ${batch}: expected an integer from 1 to ${MAX_BATCH}`);
  const names = o.names ?? null;
  return torch.withThreads(CODEC_THREADS, async () => {
    const started = performance.now();
    const opened = 'stages' in src ? null : await openModels(src, o);
    const models = opened ?? (src as CodecModels);
    try {
      const { height: th, width: tw, channels: C, bits } = models.image;
      const images = asImages(input, C);
      if (names && names.length !== images.length) throw new ArgError(`${names.length} names for ${images.length} images`);
      checkImages(images, models, (i) => names?.[i] ?? `#${i}`, version);
      const tiles = planTiles(images, th, tw);
      const tileSet = memorySet(cutAll(images, tiles, th, tw, C), { n: tiles.length, h: th, w: tw, c: C });
      const views = models.stages.map((_, i) => stageView(models.stages, i, tileSet, bits).read(0, tiles.length));
      const encoders = images.map(() => new RangeEncoder(precision));
      const ideal = new Float64Array(images.length);
      const nll = new Float64Array(images.length);
      const counts = new Float64Array(images.length);
      const total = 2 ** precision;
      const masks = models.stages.map((s) => (s.config.model.stage === 'depth' ? 2 ** s.config.model.bits - 1 : 255));
      const sizes = models.stages.map((s) => s.config.model.height * s.config.model.width * C);
      const { out: final, walks } = runStages(models, tiles, images, batch, precision, (tile, si, pos, cum, logits, off, norm) => {
        const x = views[si]![tile * sizes[si]! + pos]! & masks[si]!;
        const img = tiles[tile]!.image;
        const size = cum[x + 1]! - cum[x]!;
        encoders[img]!.encode(cum[x]!, size);
        ideal[img] += Math.log2(total / size);
        nll[img] += modelBits(logits, off, x, norm);
        counts[img]++;
        return x;
      }, o.onProgress);
      // The walk fed back exactly the images' values (padding aside): pasted back, they are the images.
      pasteAll(final, tiles, images, th, tw, C).forEach((back, i) => {
        if (!Buffer.from(back).equals(Buffer.from(images[i]!.data))) throw new FormatError(`internal: the walk did not reproduce image ${i}`);
      });
      const streams = encoders.map((e) => e.finish());
      const hashes = images.map((im) => pixelHash(im.data));
      const entries = models.stages.map((s) => stageEntry(s, version === 1 ? batch : probeBatch(batch, tiles.length)));
      let coded: { bytes: Uint8Array; sizes: ContainerSizes };
      let header: Header | null = null;
      let imageNames: string[];
      if (version === 1) {
        const all = new Uint8Array(images.reduce((a, im) => a + im.data.length, 0));
        let at = 0;
        for (const im of images) {
          all.set(im.data, at);
          at += im.data.length;
        }
        header = {
          format: 'spn-codec',
          coder: { kind: 'range48', precision, quantizer: QUANTIZER_ID },
          libtorch: torch.native.info().version,
          threads: CODEC_THREADS,
          batch,
          dtype: 'float32',
          device: 'cpu',
          image: models.image,
          pipeline: models.pipeline,
          stages: entries,
          count: images.length,
          pixels: pixelsHash(all),
          names: compactNames(names),
          source: o.source ?? '',
        };
        coded = encodeContainer({ header, records: streams.map((stream, i) => ({ stream, hash: hashes[i]! })) });
        imageNames = images.map((_, i) => imageName(header!, i));
      } else {
        const stem = fileStem(o.file);
        const c: ContainerV2 = {
          stages: entries.map((e) => ({ weights: Buffer.from(e.weights, 'hex').subarray(0, WEIGHTS_ID_BYTES), probe: Buffer.from(e.probe, 'hex').subarray(0, PROBE_BYTES) })),
          ema: models.stages[0]!.ema,
          batch,
          precision,
          names: recordedNames(names, stem),
          images: images.map((im, i) => ({ height: im.height, width: im.width, hash: hashes[i]!, stream: streams[i]! })),
        };
        if (models.stages.some((s) => s.ema !== c.ema)) throw new ArgError('a version 2 file codes every stage with EMA weights or every stage with raw ones');
        coded = encodeContainer2(c);
        imageNames = namesOf(c.names, images.length, stem);
      }
      const stats = images.map((im, i) => ({ name: imageNames[i]!, height: im.height, width: im.width, bytes: streams[i]!.length, ideal_bits: ideal[i]!, model_bits: nll[i]!, coded: counts[i]! }));
      return {
        bytes: coded.bytes, version, batch, precision, stages: entries, header, sizes: coded.sizes, images: stats,
        subpixels: images.reduce((a, im) => a + im.data.length, 0), tiles: tiles.length, walks, seconds: (performance.now() - started) / 1000,
      };
    } finally {
      if (opened) closeModels(opened);
    }
  });
}

