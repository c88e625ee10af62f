// `spn compress` (definition in compress.ts): reads the inputs as the model codes them, codes
// them (src/codec/) and writes the .spn file atomically, then reports its size against the
// model's NLL on the same images.
import * as fs from 'node:fs';
import { ArgError } from '../errors.js';
import { writeFileAtomic } from '../fsutil.js';
import { closeModels, compressImages, openModels, readImages, tileCount, type CompressResult, type ModelSource } from '../codec/index.js';
import { createProgress, formatDuration } from '../train/progress.js';
import type { CompressCommandOptions } from './compress.js';

export interface CompressReport {
  file: string;
  /** The container's version (2 unless asked for 1). */
  version: number;
  images: number;
  /** Tiles of the model's size the images were cut into. */
  tiles: number;
  subpixels: number;
  bytes: number;
  /** Bits per sub-pixel of the whole file, of the coded streams, and the model's NLL on the same images. */
  bits_per_subpixel: number;
  stream_bits_per_subpixel: number;
  model_bits_per_subpixel: number;
  /** (stream bits − model bits) / model bits, in %. */
  overhead_percent: number;
  header_bytes: number;
  record_bytes: number;
  seconds: number;
  images_per_s: number;
}

export function report(file: string, r: CompressResult): CompressReport {
  const sub = r.subpixels;
  const model = r.images.reduce((a, i) => a + i.model_bits, 0);
  return {
    file, version: r.version, images: r.images.length, tiles: r.tiles, subpixels: sub, bytes: r.sizes.total,
    bits_per_subpixel: (8 * r.sizes.total) / sub,
    stream_bits_per_subpixel: (8 * r.sizes.streams) / sub,
    model_bits_per_subpixel: model / sub,
    overhead_percent: (100 * (8 * r.sizes.streams - model)) / model,
    header_bytes: r.sizes.header, record_bytes: r.sizes.records,
    seconds: r.seconds, images_per_s: r.images.length / r.seconds,
  };
}

export async function run(src: ModelSource, inputs: string[], o: CompressCommandOptions): Promise<CompressReport> {
  if (fs.existsSync(o.out) && fs.statSync(o.out).isDirectory()) throw new ArgError(`--out ${o.out} is a folder; expected a file name`);
  const log = (m: string) => o.quiet || process.stderr.write(m + '\n');
  const models = await openModels(src, { ema: o.ema, which: o.which });
  let r: CompressResult;
  try {
    const last = models.stages[models.stages.length - 1]!;
    const { images, names, source } = await readImages(inputs, {
      image: models.image, config: last.config, split: o.split, limit: o.limit, cacheDir: o.cacheDir, onProgress: log,
    });
    const tiles = images.reduce((a, im) => a + tileCount(im, models.image.height, models.image.width), 0);
    const bar = createProgress(`compress ${images.length}`, tiles * models.stages.length, { quiet: o.quiet });
    try {
      r = await compressImages(models, images, {
        batchSize: o.batchSize, names, source, file: o.out,
        onProgress: (p) => bar.update(p.stage * p.tiles + p.done, { stage: `${p.stage + 1}/${p.stages}`, tiles: `${Math.floor(p.done)}/${p.tiles}` }),
      });
    } finally {
      bar.stop();
    }
  } finally {
    closeModels(models);
  }
  writeFileAtomic(o.out, r.bytes);
  const rep = report(o.out, r);
  if (o.json) process.stdout.write(JSON.stringify(rep) + '\n');
  else {
    process.stdout.write(
      `${o.out}: ${rep.images} image${rep.images === 1 ? '' : 's'} (${rep.tiles} tile${rep.tiles === 1 ? '' : 's'}), ${rep.bytes} bytes, ${rep.bits_per_subpixel.toFixed(4)} bits/sub-pixel ` +
        `(coded streams ${rep.stream_bits_per_subpixel.toFixed(4)}, model NLL ${rep.model_bits_per_subpixel.toFixed(4)}: ${rep.overhead_percent >= 0 ? '+' : ''}${rep.overhead_percent.toFixed(3)}%; ` +
        `header ${rep.header_bytes} bytes, ${rep.record_bytes} bytes of per-image sizes, lengths and hashes) in ${formatDuration(rep.seconds)} (${rep.images_per_s.toFixed(2)} images/s)\n`,
    );
  }
  return rep;
}
