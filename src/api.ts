// The few high-level calls of the public API that the layers below do not already offer as one
// function: a model from a preset, and samples as pixel arrays from a model or a run.
import { ArgError } from './errors.js';
import * as torch from './torch/index.js';
import { getPreset, parseModelConfig } from './spn/config.js';
import { tensorToBatch, type ImageBatch } from './spn/images.js';
import { SPN, type ModelOptions } from './spn/model.js';
import { sample, type SampleProgress } from './spn/sample.js';
import { loadModel } from './store/checkpoint.js';

export interface CreateModelOptions extends ModelOptions {
  /** Overrides of the preset's model settings, e.g. { dim: 64, scale: 2 }. */
  model?: Record<string, number | string | boolean>;
  /** Seeds the initial weights (default 0). */
  seed?: number;
}

/** A freshly initialised model from a preset, for images of shape [H, W, C]. */
export function createModel(preset: string, shape: [number, number, number], o: CreateModelOptions = {}): SPN {
  const p = getPreset(preset);
  const [height, width, channels] = shape;
  const cfg = parseModelConfig({ ...p.model, ...o.model, height, width, channels });
  torch.manualSeed(o.seed ?? 0);
  return new SPN(cfg, { ...(o.dtype ? { dtype: o.dtype } : {}), ...(o.device ? { device: o.device } : {}) });
}

export interface SampleImagesOptions {
  n: number;
  /** The same seed gives the same images as `spn sample --seed` on the same run. */
  seed?: number;
  temperature?: number;
  /** Where a run's model is loaded (default 'cpu'). */
  device?: string;
  onProgress?: (p: SampleProgress) => void;
}

/**
 * Samples n images from a 'full' model, or from a run folder or checkpoint (its best EMA
 * weights, as `spn sample`). Returns the pixel values (n, H, W, C) at the model's bits.
 */
export async function sampleImages(source: SPN | string, o: SampleImagesOptions): Promise<ImageBatch & { bits: number }> {
  const owned = typeof source === 'string';
  const model = owned ? (await loadModel(source, { device: o.device ?? 'cpu' })).model : source;
  try {
    if (model.cfg.stage !== 'full') {
      throw new ArgError(`sampleImages: the model is a '${model.cfg.stage}' upscaling stage; it samples given a smaller or coarser image (samplePipeline)`);
    }
    const values = sample(model, { n: o.n, ...(o.seed !== undefined ? { seed: o.seed } : {}), ...(o.temperature !== undefined ? { temperature: o.temperature } : {}), ...(o.onProgress ? { onProgress: o.onProgress } : {}) });
    try {
      return { ...tensorToBatch(values), bits: model.cfg.bits };
    } finally {
      values.dispose();
    }
  } finally {
    if (owned) model.dispose();
  }
}
