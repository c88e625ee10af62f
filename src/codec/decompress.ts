// Decoding a .spn file of either version (docs/spn-format.md): the container's own checks first
// (container.ts, container2.ts), then the models (the recorded run for version 1; for version 2
// the run or pipeline given, searched for the weights id), their probe, the stage loop (loop.ts)
// and every image's pixel hash. Any failure is an SpnError naming the file; no pixels are
// returned unless every image passed.
import * as path from 'node:path';
import { FormatError } from '../errors.js';
import * as torch from '../torch/index.js';
import { containerVersion, decodeContainer, imageName, VERSION, type Header } from './container.js';
import { decodeContainer2, VERSION2 } from './container2.js';
import { pixelHash, pixelsHash } from './hash.js';
import { MAX_FILE_SUBPIXELS } from './limits.js';
import { pasteAll, probeBatch, runStages, type CodecImage, type CodecProgress } from './loop.js';
import { fileStem, namesOf } from './names.js';
import { findSymbol, RangeDecoder } from './rangecoder.js';
import { checkProbes, closeModels, CODEC_THREADS, openModelsById, openModelsFor, type CodecModels } from './stages.js';
import { planTiles, type Size } from './tiles.js';

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

