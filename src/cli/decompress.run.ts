// `spn decompress` (definition in decompress.ts): reads and verifies a .spn file, decodes every
// image, checks its pixel hash, then writes the PNGs (each atomically).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ArgError, SpnError } from '../errors.js';
import { decompressBytes, writeImagePng } from '../codec/index.js';
import { createProgress, formatDuration } from '../train/progress.js';
import type { DecompressCommandOptions } from './decompress.js';

export interface DecompressReport {
  file: string;
  out: string;
  images: number;
  files: string[];
  seconds: number;
  images_per_s: number;
}

export async function run(file: string, o: DecompressCommandOptions): Promise<DecompressReport> {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    throw new SpnError('E_IO', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (fs.existsSync(o.out) && !fs.statSync(o.out).isDirectory()) throw new ArgError(`--out ${o.out} is a file; expected a folder`);
  const bar = createProgress('decompress', 1, { quiet: o.quiet });
  let r: Awaited<ReturnType<typeof decompressBytes>>;
  try {
    r = await decompressBytes(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length), {
      file, run: o.run, pipeline: o.pipeline,
      onProgress: (p) => bar.update((p.stage + p.done / p.tiles) / p.stages, { stage: `${p.stage + 1}/${p.stages}`, tiles: `${Math.floor(p.done)}/${p.tiles}` }),
    });
  } finally {
    bar.stop();
  }
  const files = r.images.map((im) => {
    const f = path.join(o.out, `${im.name}.png`);
    writeImagePng(f, im.data, { height: im.height, width: im.width, channels: r.channels, bits: r.bits });
    return f;
  });
  const rep = { file, out: o.out, images: files.length, files, seconds: r.seconds, images_per_s: files.length / r.seconds };
  if (o.json) process.stdout.write(JSON.stringify(rep) + '\n');
  else process.stdout.write(`${file}: ${files.length} images written to ${o.out}/ in ${formatDuration(r.seconds)} (${rep.images_per_s.toFixed(2)} images/s)\n`);
  return rep;
}
