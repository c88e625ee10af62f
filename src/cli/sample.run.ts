// `spn sample <run-dir>` (definition in sample.ts): draws images from a trained SPN and writes
// a PNG grid (and, with --frames, one frame per slice plus an animated GIF of the subscale order
// filling in). `spn sample --pipeline p.json` samples through a chain of upscaling stages
// (store/pipeline.ts).
import * as path from 'node:path';
import { ArgError } from '../errors.js';
import { writeFileAtomic } from '../fsutil.js';
import { recordSliceFrames, writeSampleOutputs } from '../spn/frames.js';
import { gridPng } from '../spn/images.js';
import { loadPipeline, samplePipeline } from '../store/pipeline.js';
import { sample } from '../spn/sample.js';
import type { SPN } from '../spn/model.js';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { loadModel } from '../store/checkpoint.js';
import { createProgress, formatDuration } from '../train/progress.js';
import type { ModelTarget } from './options.js';
import { checkDevice } from '../train/options.js';
import type { SampleCommandOptions } from './sample.js';

/** Samples a single full-stage model and writes the outputs; returns the files written. */
export async function sampleRun(target: string, o: SampleCommandOptions): Promise<string[]> {
  checkDevice(o.device);
  // Decoding one pixel at a time is many small ops: on a busy or shared CPU, extra libtorch
  // threads mostly contend (measured 20× slower with 2 threads than 1 on a loaded 2-core box).
  torch.setNumThreads(torch.threadsFor('ops', o.threads));
  const { model, config } = await loadModel(target, { ema: o.ema, device: o.device });
  try {
    if (config.stage !== 'full') {
      throw new ArgError(`${target} is a '${config.stage}' upscaling stage: it samples given ${config.stage === 'size' ? 'slice 0 from a base model' : 'the high bits from a base model'}, not on its own (use \`spn upscale\` or \`spn sample --pipeline\`)`);
    }
    return drawAndWrite(model, o);
  } finally {
    model.dispose();
  }
}

function drawAndWrite(model: SPN, o: SampleCommandOptions): string[] {
  const seed = o.seed ?? Math.floor(Math.random() * 2 ** 31);
  const slices = model.S * model.S - model.firstSlice;
  const total = slices * model.T;
  const progress = createProgress(`sampling ${o.n}`, total, { quiet: o.quiet });
  const recorder = o.frames !== undefined ? recordSliceFrames() : undefined;
  const started = performance.now();
  let values: Tensor;
  try {
    values = sample(model, {
      n: o.n, temperature: o.temperature, seed,
      onProgress: (p) => {
        const done = (p.slice - model.firstSlice) * p.pixels + p.pixel;
        progress.update(done, { slice: `${p.slice + 1}/${p.slices}`, pixel: `${p.pixel}/${p.pixels}` });
      },
      onSliceDone: recorder?.onSliceDone,
    });
  } finally {
    progress.stop();
  }
  const secs = (performance.now() - started) / 1000;
  try {
    const files = writeSampleOutputs(values, model, { out: o.out, framesDir: o.frames, frames: recorder?.frames });
    if (!o.quiet) {
      process.stderr.write(`${o.n} images in ${formatDuration(secs)} (${(o.n / secs).toFixed(2)} images/s), seed ${seed}, temperature ${o.temperature}\n`);
      for (const f of files.length > 4 ? [files[0]!, `${o.frames}/ (${files.length - 2} frames + animation.gif)`] : files) process.stdout.write(`${f}\n`);
    }
    return files;
  } finally {
    values.dispose();
  }
}

/** Samples through a pipeline: the final images' grid, and with --frames each stage's grid. */
export async function samplePipelineRun(file: string, o: SampleCommandOptions): Promise<string[]> {
  checkDevice(o.device);
  torch.setNumThreads(torch.threadsFor('ops', o.threads));
  const p = loadPipeline(file);
  const seed = o.seed ?? Math.floor(Math.random() * 2 ** 31);
  const progress = createProgress(`sampling ${o.n}`, p.stages.length, { quiet: o.quiet });
  const started = performance.now();
  let r: Awaited<ReturnType<typeof samplePipeline>>;
  try {
    r = await samplePipeline(p, {
      n: o.n, seed, temperature: o.temperature, device: o.device, ema: o.ema,
      onProgress: (i) => progress.update(i.stage + (i.slice * i.pixels + i.pixel) / (i.slices * i.pixels), { stage: `${i.stage + 1}/${i.stages}`, slice: `${i.slice + 1}/${i.slices}` }),
    });
  } finally {
    progress.stop();
  }
  try {
    writeFileAtomic(o.out, gridPng(r.images, { bits: r.bits }));
    const files = [o.out];
    r.stages.forEach((s, i) => {
      if (o.frames === undefined) return;
      const f = path.join(o.frames, `stage-${i + 1}.png`);
      writeFileAtomic(f, gridPng(s.images, { bits: s.bits }));
      files.push(f);
    });
    if (!o.quiet) {
      process.stderr.write(`${o.n} images through ${p.stages.length} stages in ${formatDuration((performance.now() - started) / 1000)}, seed ${seed}, temperature ${o.temperature}\n`);
      for (const f of files) process.stdout.write(`${f}\n`);
    }
    return files;
  } finally {
    torch.dispose(r);
  }
}

/** The action of `spn sample`: one run or checkpoint, or a pipeline. */
export async function run(what: ModelTarget, opts: SampleCommandOptions): Promise<void> {
  if ('pipeline' in what) await samplePipelineRun(what.pipeline, opts);
  else await sampleRun(what.target, opts);
}
