// Lossless image compression with an SPN: arithmetic coding (rangecoder.ts) of every sub-pixel,
// in subscale order, with the model's distribution for it quantized to integer counts
// (quantize.ts). The encoder and the decoder run one code path (walk.ts) in the same batches on
// the same thread count, so they compute bit-identical logits and therefore identical counts.
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
import * as path from 'node:path';
import { ArgError, FormatError } from '../errors.js';
import * as torch from '../torch/index.js';
import type { ImageSet } from '../data/types.js';
import { memorySet } from '../data/sets.js';
import { generationOrder } from '../spn/slices.js';
import { stageView } from '../store/pipeline.js';
import { compactNames, containerVersion, decodeContainer, encodeContainer, imageName, VERSION, type ContainerSizes, type Header, type StageEntry } from './container.js';
import { decodeContainer2, encodeContainer2, PROBE_BYTES, VERSION2, WEIGHTS_ID_BYTES, type ContainerV2 } from './container2.js';
import { pixelHash, pixelsHash } from './hash.js';
import { DEFAULT_BATCH, DEFAULT_PRECISION } from './defaults.js';
import { MAX_BATCH, MAX_FILE_SUBPIXELS, sizeProblem } from './limits.js';
import { fileStem, namesOf, recordedNames } from './names.js';
import { modelBits, quantize, QUANTIZER_ID, type SoftmaxNorm } from './quantize.js';
import { findSymbol, RangeDecoder, RangeEncoder } from './rangecoder.js';
import { checkProbes, closeModels, CODEC_THREADS, openModels, openModelsById, openModelsFor, stageEntry, type CodecModels, type LoadOptions, type ModelSource } from './stages.js';
import { cutTile, pasteTile, planTiles, realExtent, type Size, type Tile } from './tiles.js';
import { walkBatch } from './walk.js';

export { DEFAULT_BATCH, DEFAULT_PRECISION };

/** One image of any size: height·width·C values (C the model's channels), row-major HWC. */
export interface CodecImage {
  height: number;
  width: number;
  data: Uint8Array;
}

/** Images to code: a set of the model's size, or images of any size. */
export type CodecInput = ImageSet | readonly CodecImage[];

export interface CodecProgress {
  stage: number; // 0-based
  stages: number;
  done: number; // tiles of this stage done (fractional within a batch, by slice)
  tiles: number;
}

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

export interface DecompressOptions {
  /** The file's name, for messages (and a one-image file's default name). */
  file?: string;
  /** Decode with this run folder instead of the recorded one (single-stage files; version 2 files need it or --pipeline). */
  run?: string;
  /** Decode with this pipeline's runs instead of the recorded ones. */
  pipeline?: string;
  /** Version 2 files: decode with models already opened (openModels; kept open), whose weights must be the file's. */
  models?: CodecModels;
  onProgress?: (p: CodecProgress) => void;
}

export interface DecodedImage extends CodecImage {
  name: string;
}

export interface DecompressResult {
  version: 1 | 2;
  /** The decoded images at `bits` bits, `channels` per pixel. */
  images: DecodedImage[];
  channels: number;
  bits: number;
  /** A version 1 file's header; null for version 2. */
  header: Header | null;
  seconds: number;
}

/**
 * Codes one sub-pixel of one tile: the encoder returns the known value (after coding it), the
 * decoder the decoded one. `cum` holds the quantized cumulative counts (V + 1) of the tile's
 * logits at `offset`, `norm` their softmax's normaliser (quantize.ts).
 */
type CodeFn = (tile: number, stage: number, pos: number, cum: Uint32Array, logits: Float32Array, offset: number, norm: SoftmaxNorm) => number;

/** The index of the largest logit (the first on ties): a padding sub-pixel's value. */
function argmax(logits: Float32Array, offset: number, V: number): number {
  let best = 0;
  for (let i = 1; i < V; i++) if (logits[offset + i]! > logits[offset + best]!) best = i;
  return best;
}

/** Each stage's subsampling factor against the final tile: the product of the later size stages' S. */
function factors(models: CodecModels): number[] {
  return models.stages.map((_, i) => models.stages.slice(i + 1).reduce((f, s) => (s.config.model.stage === 'size' ? f * s.config.model.scale : f), 1));
}

/**
 * The stage loop both directions share: stage by stage, batch by batch (batches of `batch`
 * tiles from the first), each batch walked by walkBatch with the previous stage's output as its
 * given part; padding sub-pixels get the model's most probable value and are not coded. Returns
 * the final stage's tiles (tiles.length, Th, Tw, C) and the number of batches walked.
 */
function runStages(models: CodecModels, tiles: Tile[], sizes: Size[], batch: number, precision: number, code: CodeFn, onProgress?: (p: CodecProgress) => void): { out: Uint8Array; walks: number } {
  const { stages } = models;
  const n = tiles.length;
  const f = factors(models);
  let prev: Uint8Array | null = null;
  let walks = 0;
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
    const S = m.scale;
    const rows = new Int32Array(batch);
    const cols = new Int32Array(batch);
    for (let b = 0; b < n; b += batch) {
      const mB = Math.min(batch, n - b);
      for (let j = 0; j < mB; j++) {
        const t = tiles[b + j]!;
        const e = realExtent(sizes[t.image]!, t, H, W, f[si]!);
        rows[j] = e.rows;
        cols[j] = e.cols;
      }
      const canvas = new Uint8Array(mB * size);
      let given: Uint8Array | undefined;
      if (m.stage === 'size') {
        // slice 0 = x[0::S, 0::S] = the previous stage's tile
        const [h, w] = [H / S, W / S];
        for (let j = 0; j < mB; j++) {
          for (let r = 0; r < h; r++) {
            for (let x = 0; x < w; x++) {
              for (let c = 0; c < C; c++) canvas[j * size + (r * S * W + x * S) * C + c] = prev![(b + j) * h * w * C + (r * w + x) * C + c]!;
            }
          }
        }
      } else if (m.stage === 'depth') {
        given = prev!.subarray(b * size, (b + mB) * size);
      }
      const start = s.model.firstSlice * s.model.T * C; // walk order starts at the stage's first slice
      let step = start;
      const perSlice = s.model.T * C;
      const steps = pos.length - start;
      const values = new Int32Array(mB); // walkBatch copies them before the next call
      walks++;
      const result = walkBatch(s.model, s.plan, { m: mB, canvas, given }, (logits) => {
        if (step > start && (step - start) % perSlice === 0) onProgress?.({ stage: si, stages: stages.length, done: b + (mB * (step - start)) / steps, tiles: n });
        const p = pos[step++]!;
        const pixel = Math.floor(p / C);
        const [r, c] = [Math.floor(pixel / W), pixel % W];
        for (let j = 0; j < mB; j++) {
          if (r < rows[j]! && c < cols[j]!) {
            quantize(logits, j * V, V, precision, cum, scratch, norm);
            values[j] = code(b + j, si, p, cum, logits, j * V, norm);
          } else {
            values[j] = argmax(logits, j * V, V);
          }
        }
        return values;
      });
      if (m.stage === 'depth') {
        const low = 2 ** m.bits;
        for (let i = 0; i < result.length; i++) out[b * size + i] = given![i]! * low + result[i]!;
      } else {
        out.set(result, b * size);
      }
      onProgress?.({ stage: si, stages: stages.length, done: b + mB, tiles: n });
    }
    prev = out;
  }
  return { out: prev!, walks };
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
    if (problem) throw new ArgError(`image ${label(i)}: ${problem}`);
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

/** The tiles of all images at the final resolution, (tiles, Th, Tw, C), padding zero. */
function cutAll(images: CodecImage[], tiles: Tile[], th: number, tw: number, c: number): Uint8Array {
  const out = new Uint8Array(tiles.length * th * tw * c);
  tiles.forEach((t, i) => cutTile(images[t.image]!.data, images[t.image]!, c, t, th, tw, out, i * th * tw * c));
  return out;
}

/** The images pasted back from their tiles. */
function pasteAll(data: Uint8Array, tiles: Tile[], sizes: Size[], th: number, tw: number, c: number): Uint8Array[] {
  const out = sizes.map((s) => new Uint8Array(s.height * s.width * c));
  tiles.forEach((t, i) => pasteTile(data, i * th * tw * c, th, tw, c, t, sizes[t.image]!, out[t.image]!));
  return out;
}

/** The probe's batch: the largest batch the file's walk uses (at least 1). */
const probeBatch = (batch: number, tiles: number) => Math.max(1, Math.min(batch, tiles));

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

/** What decoding needs of either version, after the container's own checks. */
interface Decodable {
  precision: number;
  batch: number;
  sizes: Size[];
  hashes: Uint8Array[];
  streams: Uint8Array[];
  names: string[];
}

/** Decodes the streams with opened models; checks every image against its pixel hash. */
function decodeWith(models: CodecModels, d: Decodable, file: string, onProgress?: (p: CodecProgress) => void): DecodedImage[] {
  const { height: th, width: tw, channels: C } = models.image;
  let total = 0;
  for (const s of d.sizes) total += s.height * s.width * C;
  if (total > MAX_FILE_SUBPIXELS) throw new FormatError(`${file}: its images declare ${total} sub-pixels together, more than the ${MAX_FILE_SUBPIXELS} a file may hold`);
  for (const [i, s] of models.stages.entries()) {
    if (2 ** d.precision < 2 * s.model.V) throw new FormatError(`${file}: precision ${d.precision} cannot code stage ${i + 1}'s ${s.model.V} values (it needs at least ${Math.log2(s.model.V) + 1})`);
  }
  const tiles = planTiles(d.sizes, th, tw);
  const decoders = d.streams.map((s) => new RangeDecoder(s, d.precision));
  const { out: final } = runStages(models, tiles, d.sizes, d.batch, d.precision, (tile, si, _pos, cum) => {
    const dec = decoders[tiles[tile]!.image]!;
    const V = models.stages[si]!.model.V;
    const x = findSymbol(cum, V, dec.target());
    dec.update(cum[x]!, cum[x + 1]! - cum[x]!);
    return x;
  }, onProgress);
  const images = pasteAll(final, tiles, d.sizes, th, tw, C);
  images.forEach((im, i) => {
    const got = pixelHash(im);
    if (decoders[i]!.corrupt || !Buffer.from(got).equals(Buffer.from(d.hashes[i]!))) {
      throw new FormatError(
        `${file}: image ${i} (${d.names[i]}) decoded to pixels whose hash (${Buffer.from(got).toString('hex')}) is not the recorded one (${Buffer.from(d.hashes[i]!).toString('hex')}): ` +
          'the models or this machine compute different probabilities than when the file was written; nothing was written',
      );
    }
  });
  return images.map((data, i) => ({ name: d.names[i]!, height: d.sizes[i]!.height, width: d.sizes[i]!.width, data }));
}

async function decodeV1(bytes: Uint8Array, file: string, o: DecompressOptions): Promise<Omit<DecompressResult, 'seconds'>> {
  const { header: h, records } = decodeContainer(bytes, file);
  const here = torch.native.info().version;
  if (h.libtorch !== here) {
    throw new FormatError(`${file} was coded with libtorch ${h.libtorch}; this machine has ${here}, whose kernels may round differently: decode it with libtorch ${h.libtorch}`);
  }
  if (h.threads !== CODEC_THREADS) throw new FormatError(`${file} was coded on ${h.threads} libtorch threads; this spn codes and decodes on ${CODEC_THREADS}`);
  const { height, width, channels, bits } = h.image;
  if (h.count * height * width * channels > MAX_FILE_SUBPIXELS) throw new FormatError(`${file}: ${h.count} images of ${height}×${width}×${channels} are more than the ${MAX_FILE_SUBPIXELS} sub-pixels a file may hold`);
  const models = await openModelsFor(h, { file, run: o.run, pipeline: o.pipeline });
  try {
    const m = models.image;
    if (m.height !== height || m.width !== width || m.channels !== channels || m.bits !== bits) {
      throw new FormatError(`${file}: its stages output ${m.height}×${m.width}×${m.channels} at ${m.bits} bits, the header says ${height}×${width}×${channels} at ${bits}`);
    }
    const names = Array.from({ length: h.count }, (_, i) => imageName(h, i));
    const images = decodeWith(models, {
      precision: h.coder.precision, batch: h.batch, names,
      sizes: names.map(() => ({ height, width })), hashes: records.map((r) => r.hash), streams: records.map((r) => r.stream),
    }, file, o.onProgress);
    const all = new Uint8Array(images.length * height * width * channels);
    images.forEach((im, i) => all.set(im.data, i * im.data.length));
    if (pixelsHash(all) !== h.pixels) {
      throw new FormatError(`${file}: the decoded images' sha256 (${pixelsHash(all).slice(0, 16)}…) is not the recorded one (${h.pixels.slice(0, 16)}…); nothing was written`);
    }
    return { version: 1, images, channels, bits, header: h };
  } finally {
    closeModels(models);
  }
}

async function decodeV2(bytes: Uint8Array, file: string, o: DecompressOptions): Promise<Omit<DecompressResult, 'seconds'>> {
  const c = decodeContainer2(bytes, file);
  const ids = c.stages.map((s) => ({ weights: Buffer.from(s.weights).toString('hex'), probe: Buffer.from(s.probe).toString('hex') }));
  const given = o.models;
  if (given) {
    if (given.stages.length !== ids.length) throw new FormatError(`${file} was coded with ${ids.length} stage(s); the models given have ${given.stages.length}`);
    given.stages.forEach((s, i) => {
      if (!s.weights.startsWith(ids[i]!.weights) || s.ema !== c.ema) {
        throw new FormatError(`${file}: stage ${i + 1} was coded with the ${c.ema ? 'EMA ' : ''}weights sha256 ${ids[i]!.weights}…; the model given (${path.join(s.run, s.checkpoint)}) has ${s.weights.slice(0, 16)}…${s.ema ? ' (EMA)' : ''}`);
      }
    });
  }
  const models = given ?? (await openModelsById(ids, c.ema, { file, run: o.run, pipeline: o.pipeline }));
  try {
    const { height: th, width: tw, channels, bits } = models.image;
    const tiles = c.images.reduce((a, im) => a + Math.ceil(im.height / th) * Math.ceil(im.width / tw), 0);
    checkProbes(models, ids, probeBatch(c.batch, tiles), file);
    const names = namesOf(c.names, c.images.length, fileStem(o.file));
    const images = decodeWith(models, {
      precision: c.precision, batch: c.batch, names,
      sizes: c.images, hashes: c.images.map((im) => im.hash), streams: c.images.map((im) => im.stream),
    }, file, o.onProgress);
    return { version: 2, images, channels, bits, header: null };
  } finally {
    if (!given) closeModels(models);
  }
}

/** Decodes a .spn file of either version; every check failing is an SpnError naming the file, never wrong pixels. */
export async function decompressBytes(bytes: Uint8Array, o: DecompressOptions = {}): Promise<DecompressResult> {
  const file = o.file ?? '<buffer>';
  const version = containerVersion(bytes, file);
  if (version !== VERSION && version !== VERSION2) throw new FormatError(`${file} is a version ${version} .spn file; this spn reads versions ${VERSION} and ${VERSION2}`);
  return torch.withThreads(CODEC_THREADS, async () => {
    const started = performance.now();
    const r = version === VERSION ? await decodeV1(bytes, file, o) : await decodeV2(bytes, file, o);
    return { ...r, seconds: (performance.now() - started) / 1000 };
  });
}
