// What `spn sample` writes: the PNG grid of samples and, on request, one frame per generated
// slice (the grid as subscale sampling fills it in, unknown pixels shown as their nearest
// known slice) with the GIF of those frames.
import * as path from 'node:path';
import { ArgError } from '../errors.js';
import { writeFileAtomic } from '../fsutil.js';
import type { Tensor } from '../torch/index.js';
import { encodePng, fillNearest, framesGif, gridRgb, tensorToBatch, type ImageBatch } from './images.js';
import type { SPN } from './model.js';

/** The canvas after slice k (slices 0..k known). */
export interface SliceFrame { k: number; batch: ImageBatch }

/** A recorder to pass as the sampler's onSliceDone: copies the canvas after each slice. */
export function recordSliceFrames(): { frames: SliceFrame[]; onSliceDone: (k: number, canvas: Tensor) => void } {
  const frames: SliceFrame[] = [];
  return { frames, onSliceDone: (k, canvas) => frames.push({ k, batch: tensorToBatch(canvas) }) };
}

export interface SampleOutputOptions {
  out: string; // the PNG grid
  framesDir?: string; // frame-000.png ... and animation.gif
  frames?: SliceFrame[]; // from recordSliceFrames; required with framesDir
  bits?: number; // bit depth of the values; default the model's
  cols?: number;
}

/** Writes the grid (and the frames) atomically; returns the paths written. */
export function writeSampleOutputs(values: Tensor | ImageBatch, model: SPN, o: SampleOutputOptions): string[] {
  const bits = o.bits ?? model.cfg.bits;
  const grid = { bits, cols: o.cols };
  writeFileAtomic(o.out, encodePng(gridRgb(values, grid)));
  const written = [o.out];
  if (o.framesDir === undefined) return written;
  if (!o.frames?.length) throw new ArgError(`writeSampleOutputs: frames for ${o.framesDir} need the sampler's onSliceDone (recordSliceFrames)`);
  const pictures = o.frames.map((f) => gridRgb(fillNearest(f.batch, model.S, f.k + 1), grid));
  pictures.forEach((p, i) => {
    const file = path.join(o.framesDir!, `frame-${String(i).padStart(3, '0')}.png`);
    writeFileAtomic(file, encodePng(p));
    written.push(file);
  });
  const { width, height } = pictures[0]!;
  // About three seconds whatever S is, then a pause on the finished grid.
  const delayMs = Math.min(500, Math.max(60, Math.round(3000 / pictures.length)));
  const gif = path.join(o.framesDir, 'animation.gif');
  writeFileAtomic(gif, framesGif(pictures, { width, height, delayMs, lastDelayMs: 1500 }));
  written.push(gif);
  return written;
}
