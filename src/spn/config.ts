// The SPN model config: one validated object (zod, strict: unknown keys and wrong types are
// errors), and the presets. A preset fixes the architecture; the data fixes the image shape.
import { z } from 'zod';
import { ConfigError } from '../errors.js';

export const ModelConfig = z
  .object({
    height: z.number().int().positive(), // image height H
    width: z.number().int().positive(), // image width W
    channels: z.number().int().positive(), // C: 1 (grayscale) or 3 (RGB)
    bits: z.number().int().min(1).max(8), // bits per generated sub-pixel: a softmax over 2^bits values
    scale: z.number().int().positive(), // S: S² slices of (H/S)×(W/S); 1 = plain raster order
    dim: z.number().int().positive(), // width of the conditioning network and the decoder
    heads: z.number().int().positive(), // attention heads in the decoder
    condLayers: z.number().int().min(0), // residual conv blocks in the conditioning network
    decLayers: z.number().int().min(1), // decoder blocks (masked conv + causal attention + MLP)
    kernel: z.number().int().min(3).max(7).default(3), // masked convolution kernel (odd)
    mlpRatio: z.number().int().positive().default(4),
    dropout: z.number().min(0).max(0.9).default(0),
    // How the context stack lays out the slices (src/spn/context.ts): 'slices' as in the paper,
    // 'relative' by offset from the target pixel.
    context: z.enum(['slices', 'relative']).default('slices'),
    // Known context values also enter through cos/sin(π·f·v/(V−1)), f = 1, 2, 4, … (this many
    // frequencies) and a 1×1 convolution: a peak at a neighbour's value is then linear in the input.
    valueFreqs: z.number().int().min(0).max(12).default(0),
    // The head's output weights get a term smooth in the value: out.weight + table·W_f with the
    // same cos/sin table (this many frequencies), so what is learnt for a value carries to its
    // neighbours.
    headFreqs: z.number().int().min(0).max(12).default(0),
    // The decoder's pixel embeddings get the same smooth term: embed[v] + table[v]·W_e.
    embedFreqs: z.number().int().min(0).max(12).default(0),
    // 'full': every slice; 'size': slices 1..S²-1 given slice 0 (size upscaling);
    // 'depth': the low `bits` of each sub-pixel given its `givenBits` high bits (depth upscaling).
    stage: z.enum(['full', 'size', 'depth']).default('full'),
    givenBits: z.number().int().min(0).max(7).default(0),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.height % c.scale || c.width % c.scale)
      ctx.addIssue({ code: 'custom', message: `scale S=${c.scale} must divide the image size ${c.height}×${c.width}` });
    if (c.dim % c.heads) ctx.addIssue({ code: 'custom', message: `dim=${c.dim} must be divisible by heads=${c.heads}` });
    if (c.kernel % 2 === 0) ctx.addIssue({ code: 'custom', message: `kernel=${c.kernel} must be odd` });
    if (c.stage === 'depth' && c.givenBits + c.bits !== 8)
      ctx.addIssue({ code: 'custom', message: `a depth stage needs givenBits + bits = 8, got ${c.givenBits} + ${c.bits}` });
    if (c.stage !== 'depth' && c.givenBits !== 0)
      ctx.addIssue({ code: 'custom', message: `givenBits is only for stage 'depth'` });
    if (c.stage === 'size' && c.scale < 2) ctx.addIssue({ code: 'custom', message: `a size stage needs scale ≥ 2` });
  });
export type ModelConfig = z.infer<typeof ModelConfig>;

export const TrainConfig = z
  .object({
    batchSize: z.number().int().positive(),
    lr: z.number().positive(),
    minLr: z.number().min(0).default(0),
    warmupSteps: z.number().int().min(0).default(200),
    weightDecay: z.number().min(0).default(0.01),
    gradClip: z.number().positive().default(1),
    emaDecay: z.number().min(0).max(1).default(0.999),
    slicesPerImage: z.number().int().positive().default(1), // target slices drawn per image per step
    // Training arithmetic (evaluation is always fp32): 'auto' is bf16 autocast on CUDA and fp32 on
    // CPU; 'bf16' is bf16 autocast on CUDA and on a CPU that computes bf16 natively (AMX or
    // AVX512-BF16), fp32 on other CPUs (where bf16 would be emulated); 'fp32' everywhere.
    precision: z.enum(['auto', 'bf16', 'fp32']).default('auto'),
    evalEverySec: z.number().positive().default(180), // test bits/dim on a fixed subset this often
    evalImages: z.number().int().positive().default(500),
    checkpointEverySec: z.number().positive().default(300),
    sampleEverySec: z.number().positive().default(600),
  })
  .strict();
export type TrainConfig = z.infer<typeof TrainConfig>;

/** A preset: the architecture and training settings; the image shape comes from the data. */
export interface Preset {
  description: string;
  model: Omit<z.input<typeof ModelConfig>, 'height' | 'width' | 'channels'> & { bits: number };
  train: z.input<typeof TrainConfig>;
  /** Image shape the preset was sized for (documentation and parameter counts). */
  shape: [number, number, number];
}

export const PRESETS: Record<string, Preset> = {
  'fmnist-cpu': {
    description: 'Fashion-MNIST 28×28 8-bit, sized to do well in 30 minutes on 2 CPU cores',
    shape: [28, 28, 1],
    // S=4, 4 conditioning + 1 decoder blocks of width 96, the relative context and all three
    // value features, lr 2e-3, bf16 on a CPU that has it: chosen by timed trials on 2 cores
    // (docs/experiments.md).
    model: { bits: 8, scale: 4, dim: 96, heads: 4, condLayers: 4, decLayers: 1, kernel: 3, context: 'relative', valueFreqs: 8, headFreqs: 8, embedFreqs: 8 },
    train: { batchSize: 32, lr: 2e-3, warmupSteps: 100, emaDecay: 0.998, evalEverySec: 240, evalImages: 400, precision: 'bf16' },
  },
  'cifar-cpu': {
    description: 'CIFAR-10 32×32×3 8-bit, small enough to train on CPU',
    shape: [32, 32, 3],
    model: { bits: 8, scale: 2, dim: 96, heads: 4, condLayers: 2, decLayers: 3, kernel: 3 },
    // bf16 where the CPU has it (docs/experiments.md)
    train: { batchSize: 16, lr: 2e-3, warmupSteps: 200, emaDecay: 0.995, evalImages: 200, precision: 'bf16' },
  },
  'tiny': {
    description: 'a very small model for tests and smoke runs',
    shape: [8, 8, 1],
    model: { bits: 8, scale: 2, dim: 16, heads: 2, condLayers: 1, decLayers: 1, kernel: 3 },
    train: { batchSize: 8, lr: 3e-3, warmupSteps: 5, evalEverySec: 1e9, evalImages: 16, checkpointEverySec: 1e9, sampleEverySec: 1e9 },
  },
  // GPU presets: the paper's settings (S, slice size, depth), trained in bf16 on CUDA. None has
  // been trained or timed on a GPU by this project yet (see the README's GPU section).
  'imagenet32-gpu': {
    description: 'ImageNet 32×32 8-bit, S=2; for one GPU (and the GPU check: 3 minutes on the CIFAR-10 subset)',
    shape: [32, 32, 3],
    model: { bits: 8, scale: 2, dim: 512, heads: 8, condLayers: 8, decLayers: 8, kernel: 3, dropout: 0.1 },
    train: { batchSize: 64, lr: 3e-4, warmupSteps: 2000, emaDecay: 0.9999, evalImages: 2000 },
  },
  'imagenet64-gpu': {
    description: 'ImageNet 64×64 8-bit, S=4, width 512; a smaller model than the paper\'s, for one GPU',
    shape: [64, 64, 3],
    model: { bits: 8, scale: 4, dim: 512, heads: 8, condLayers: 8, decLayers: 8, kernel: 3, dropout: 0.1 },
    train: { batchSize: 64, lr: 3e-4, warmupSteps: 2000, emaDecay: 0.9999, evalImages: 2000 },
  },
  'imagenet64-paper': {
    description: 'ImageNet 64×64 8-bit, S=4, at the paper\'s size (about 150M parameters); for several GPUs (--nproc)',
    shape: [64, 64, 3],
    model: { bits: 8, scale: 4, dim: 672, heads: 8, condLayers: 8, decLayers: 8, kernel: 3, dropout: 0.1 },
    train: { batchSize: 64, lr: 3e-4, warmupSteps: 2000, emaDecay: 0.9999, evalImages: 2000 },
  },
  // The first stage of the CelebA-HQ 256 recipes (store/recipes.ts): 32×32 images (the 256×256
  // image subsampled by 8, i.e. slice 0 of the size stage) at 3 (or 5) bits. S=2 and the width are
  // ours: the paper's text we could read does not give this stage's network.
  'celebahq256-base': {
    description: 'CelebA-HQ 256 recipe, first stage: 32×32 (--subsample 8) at 3 bits, S=2 (slices of 16×16)',
    shape: [32, 32, 3],
    model: { bits: 3, scale: 2, dim: 512, heads: 8, condLayers: 8, decLayers: 8, kernel: 3, dropout: 0.1 },
    train: { batchSize: 64, lr: 3e-4, warmupSteps: 2000, emaDecay: 0.9999, evalImages: 2000 },
  },
  'celebahq256-gpu': {
    description: 'CelebA-HQ 256×256, S=8 (slices of 32×32), the 3-bit stage; --stage depth for the 5 low bits',
    shape: [256, 256, 3],
    model: { bits: 3, scale: 8, dim: 512, heads: 8, condLayers: 8, decLayers: 8, kernel: 3, dropout: 0.1 },
    train: { batchSize: 16, lr: 3e-4, warmupSteps: 2000, emaDecay: 0.9999, evalImages: 500 },
  },
};

function formatIssues(err: z.ZodError, where: string): string {
  return err.issues.map((i) => `${where}${i.path.length ? '.' + i.path.join('.') : ''}: ${i.message}`).join('; ');
}

export function parseModelConfig(raw: unknown, where = 'model'): ModelConfig {
  const r = ModelConfig.safeParse(raw);
  if (!r.success) throw new ConfigError(`invalid config: ${formatIssues(r.error, where)}`);
  return r.data;
}

export function parseTrainConfig(raw: unknown, where = 'train'): TrainConfig {
  const r = TrainConfig.safeParse(raw);
  if (!r.success) throw new ConfigError(`invalid config: ${formatIssues(r.error, where)}`);
  return r.data;
}

export function getPreset(name: string): Preset {
  const p = PRESETS[name];
  if (!p) throw new ConfigError(`unknown preset '${name}'; expected one of ${Object.keys(PRESETS).join(', ')}`);
  return p;
}
