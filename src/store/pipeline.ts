// Multidimensional upscaling (SPN paper, section 3): a chain of trained runs, each generating
// what the next one is given. A pipeline.json names the runs in order:
//
//   { "stages": [ {"run": "runs/small3"}, {"run": "runs/large3"}, {"run": "runs/large8"} ] }
//
// (paths relative to the file). The first is a 'full' model, possibly of subsampled images
// (`--subsample S`) and/or fewer bits (`--bits 3`); then
//   size:  slices 1..S²-1 given slice 0 = the previous stage's image, so the previous image
//          must be (H/S)×(W/S)×C at the same bits;
//   depth: the low bits given the high `givenBits` = the previous stage's image, so the
//          previous image must be H×W×C at `givenBits` bits.
// The stages factor the final image's likelihood exactly, p(x) = Π p_i(view_i | view_{i-1}),
// where view_i is the final image subsampled by the later size stages' S and cut to stage i's
// bits; so the pipeline's NLL is the sum of its stages' NLLs on those views.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { ArgError, ConfigError } from '../errors.js';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import type { ImageSet } from '../data/types.js';
import { shiftSet } from '../data/bits.js';
import { headSet } from '../data/sets.js';
import { subsampleSet } from '../data/subsample.js';
import type { ModelConfig } from '../spn/config.js';
import type { SampleProgress } from '../spn/sample.js';
import { sampleStage } from '../spn/upscale.js';
import { loadModel } from './checkpoint.js';
import { evaluate } from './evaluate.js';
import { readJson, readRunConfig, runFiles, type RunConfig } from './run.js';

export const PipelineFile = z
  .object({
    stages: z.array(z.object({ run: z.string().min(1) }).strict()).min(1),
  })
  .strict();
export type PipelineFile = z.infer<typeof PipelineFile>;

export interface PipelineStage {
  /** The run as written in the pipeline file, and resolved against the file's folder. */
  run: string;
  dir: string;
  config: RunConfig;
  stage: RunConfig['stage'];
  /** What the stage outputs: images of shape [H, W, C] with values of `bits` bits. */
  shape: [number, number, number];
  bits: number;
}

export interface Pipeline {
  file: string;
  stages: PipelineStage[];
  /** The final images: shape [H, W, C] and bits. */
  shape: [number, number, number];
  bits: number;
}

/** The bits of the values a model outputs: its own bits, or givenBits + bits for a depth stage. */
export function outputBits(m: ModelConfig): number {
  return m.stage === 'depth' ? m.givenBits + m.bits : m.bits;
}

/** The image a run's model outputs: a depth stage outputs givenBits + bits = 8. */
export function stageOutput(cfg: RunConfig): { shape: [number, number, number]; bits: number } {
  const m = cfg.model;
  return { shape: [m.height, m.width, m.channels], bits: outputBits(m) };
}

const fmtShape = (s: number[]) => s.join('×');

/** Checks that each stage is given exactly what the one before it outputs. */
export function checkChain(stages: PipelineStage[], file: string): void {
  const name = (i: number) => `${file}: stage ${i + 1} (${stages[i]!.run})`;
  stages.forEach((s, i) => {
    const m = s.config.model;
    if (i === 0) {
      if (s.stage !== 'full') throw new ConfigError(`${name(0)} is a '${s.stage}' upscaling stage; a pipeline starts with a 'full' model`);
      return;
    }
    const prev = stages[i - 1]!;
    const got = `stage ${i} (${prev.run}) outputs ${fmtShape(prev.shape)} images at ${prev.bits} bits`;
    if (s.stage === 'full') throw new ConfigError(`${name(i)} is a 'full' model; only 'size' or 'depth' upscaling stages can follow stage ${i}`);
    if (s.stage === 'size') {
      const want: [number, number, number] = [m.height / m.scale, m.width / m.scale, m.channels];
      if (fmtShape(want) !== fmtShape(prev.shape)) {
        throw new ConfigError(`${name(i)} is a size stage with S=${m.scale} on ${fmtShape(s.shape)}: its slice 0 is ${fmtShape(want)}, but ${got}`);
      }
      if (m.bits !== prev.bits) throw new ConfigError(`${name(i)} is a size stage at ${m.bits} bits, but ${got}`);
    } else {
      if (fmtShape(s.shape) !== fmtShape(prev.shape)) throw new ConfigError(`${name(i)} is a depth stage on ${fmtShape(s.shape)} images, but ${got}`);
      if (m.givenBits !== prev.bits) throw new ConfigError(`${name(i)} is a depth stage given the high ${m.givenBits} bits, but ${got}`);
    }
  });
}

/** Reads and validates a pipeline file and the configs of its runs (no weights are loaded). */
export function loadPipeline(file: string): Pipeline {
  const raw = readJson(file, 'pipeline');
  const r = PipelineFile.safeParse(raw);
  if (!r.success) {
    throw new ConfigError(`invalid pipeline ${file}: ${r.error.issues.map((i) => `${i.path.length ? i.path.join('.') + ': ' : ''}${i.message}`).join('; ')}`);
  }
  const base = path.dirname(path.resolve(file));
  const stages = r.data.stages.map(({ run }, i): PipelineStage => {
    const dir = path.resolve(base, run);
    if (!fs.existsSync(runFiles(dir).config)) {
      throw new ConfigError(`${file}: stage ${i + 1} (${run}): no run folder at ${dir} (expected ${runFiles(dir).config})`);
    }
    let config: RunConfig;
    try {
      config = readRunConfig(dir);
    } catch (err) {
      throw new ConfigError(`${file}: stage ${i + 1} (${run}): ${(err as Error).message}`);
    }
    return { run, dir, config, stage: config.model.stage, ...stageOutput(config) };
  });
  checkChain(stages, file);
  const last = stages[stages.length - 1]!;
  return { file, stages, shape: last.shape, bits: last.bits };
}

export interface PipelineModelOptions {
  device?: string;
  ema?: boolean;
  which?: 'best' | 'latest';
}

// --- sampling -------------------------------------------------------------------------------------

export interface PipelineSampleOptions extends PipelineModelOptions {
  n: number;
  /** Stage i (0-based) is seeded with seed + i, so the whole chain repeats for one seed. */
  seed?: number;
  temperature?: number;
  onProgress?: (info: SampleProgress & { stage: number; stages: number }) => void;
}

export interface PipelineSamples {
  /** The final images (n, H, W, C) int64 at the pipeline's bits: the last stage's output. */
  images: Tensor;
  bits: number;
  /** Each stage's output (n, H_i, W_i, C) int64 at its bits. Dispose all with torch.dispose(result). */
  stages: { run: string; stage: PipelineStage['stage']; bits: number; images: Tensor }[];
}

/** Samples n images through the chain: each stage is given the previous stage's images. */
export async function samplePipeline(p: Pipeline, o: PipelineSampleOptions): Promise<PipelineSamples> {
  const out: PipelineSamples['stages'] = [];
  try {
    for (const [i, s] of p.stages.entries()) {
      const { model } = await loadModel(s.dir, { device: o.device, ema: o.ema, which: o.which });
      try {
        const images = torch.keep(sampleStage(model, {
          n: o.n, temperature: o.temperature,
          ...(o.seed !== undefined ? { seed: o.seed + i } : {}),
          ...(i > 0 ? { prev: out[i - 1]!.images } : {}),
          onProgress: (info: SampleProgress) => o.onProgress?.({ ...info, stage: i, stages: p.stages.length }),
        }));
        out.push({ run: s.run, stage: s.stage, bits: s.bits, images });
      } finally {
        model.dispose();
      }
    }
  } catch (err) {
    torch.dispose(out);
    throw err;
  }
  return { images: out[out.length - 1]!.images, bits: p.bits, stages: out };
}

// --- evaluation -----------------------------------------------------------------------------------

export interface PipelineStageEval {
  run: string;
  stage: PipelineStage['stage'];
  /** NLL in nats of what this stage models, over all images. */
  nats: number;
  /** This stage's part of the pipeline's bits/dim (dims of the final image); the shares add up to bpd. */
  bpd_share: number;
  /** Bits per dimension over the sub-pixels this stage models (its own `spn eval` number). */
  bpd: number;
  /** Sub-pixels this stage models. */
  dims: number;
  shape: [number, number, number];
  bits: number;
}

export interface PipelineEvalResult {
  /** Exact bits per dimension of the final images: total NLL / (images · H·W·C) / ln 2. */
  bpd: number;
  images: number;
  nats: number;
  dims: number;
  stages: PipelineStageEval[];
}

/**
 * The view of the final images stage i of a chain models: subsampled by the S of every later
 * size stage and cut to the stage's output bits (values of `setBits` bits keep their top bits).
 * `stages` is a pipeline's stages or any chain of run configs (the codec's loaded stages).
 */
export function stageView(stages: readonly { config: RunConfig }[], i: number, set: ImageSet, setBits: number): ImageSet {
  let factor = 1;
  for (const s of stages.slice(i + 1)) if (s.config.model.stage === 'size') factor *= s.config.model.scale;
  const sub = subsampleSet(set, factor);
  const shift = setBits - outputBits(stages[i]!.config.model);
  return shiftSet(sub, shift);
}

/**
 * The exact NLL of the final images under the pipeline, with each stage's part. `set` holds
 * final-resolution images with values of `bits` bits (default: the pipeline's final bits).
 */
export async function evalPipeline(
  p: Pipeline,
  set: ImageSet,
  o: PipelineModelOptions & { limit?: number; batchSize?: number; bits?: number; onProgress?: (stage: number, done: number, total: number) => void } = {},
): Promise<PipelineEvalResult> {
  const setBits = o.bits ?? p.bits;
  const [H, W, C] = p.shape;
  if (set.h !== H || set.w !== W || set.c !== C) {
    throw new ArgError(`evalPipeline: the images are ${set.h}×${set.w}×${set.c}, the pipeline ${p.file} outputs ${fmtShape(p.shape)}`);
  }
  if (!Number.isInteger(setBits) || setBits < p.bits || setBits > 8) {
    throw new ArgError(`evalPipeline: images of ${setBits} bits cannot be scored by ${p.file}, which outputs ${p.bits}-bit images`);
  }
  const n = Math.min(set.n, o.limit ?? set.n);
  const images: ImageSet = headSet(set, n);
  const dims = n * H * W * C;
  const stages: PipelineStageEval[] = [];
  for (const [i, s] of p.stages.entries()) {
    const view = stageView(p.stages, i, images, setBits);
    const { model } = await loadModel(s.dir, { device: o.device, ema: o.ema, which: o.which });
    try {
      const r = evaluate(model, view, { batchSize: o.batchSize, onProgress: (done, total) => o.onProgress?.(i, done, total) });
      stages.push({ run: s.run, stage: s.stage, nats: r.nats, bpd_share: r.nats / dims / Math.LN2, bpd: r.bpd, dims: r.dims, shape: s.shape, bits: s.bits });
    } finally {
      model.dispose();
    }
  }
  const nats = stages.reduce((a, s) => a + s.nats, 0);
  return { bpd: nats / dims / Math.LN2, images: n, nats, dims, stages };
}
