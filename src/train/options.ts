// What `train()` is asked to do: the options, their validation (before anything is written),
// and the run config they resolve to, for a new run, a resumed run or a fine-tuning run.
import * as path from 'node:path';
import { ArgError } from '../errors.js';
import { getPreset, parseModelConfig, parseTrainConfig, type ModelConfig, type Preset, type TrainConfig } from '../spn/config.js';
import * as torch from '../torch/index.js';
import type { Rendezvous } from '../torch/distributed.js';
import type { RunConfig } from '../store/run.js';
import { checkOptions, resumeConflicts } from './schema.js';

export type SetValue = number | string | boolean;

export interface TrainOptions {
  /** Dataset spec (default 'fashion-mnist'; a resumed run keeps its own). */
  data?: string;
  /** Architecture and training preset (default 'fmnist-cpu'; a resumed run keeps its own). */
  preset?: string;
  out: string;
  minutes?: number;
  steps?: number;
  seed?: number;
  device?: string;
  resume?: boolean;
  /** Start a new run from the weights of another run or checkpoint (fine-tuning): its architecture, its EMA weights. */
  initFrom?: string;
  stage?: 'full' | 'size' | 'depth';
  bits?: number; // bits of the generated values (full/size); depth stages always read 8-bit data
  givenBits?: number; // depth stage: the high bits given (default 3)
  scale?: number; // override the preset's S
  subsample?: number;
  size?: number; // dataset --size
  /** Train on random crop×crop patches of the full-resolution images; the test split is cut into crop×crop tiles (data/crop.ts). */
  crop?: number;
  batchSize?: number;
  lr?: number;
  /** Overrides of the preset, e.g. {'model.dim': 96, 'train.emaDecay': 0.999}; validated like the preset. */
  set?: Record<string, SetValue>;
  cacheDir?: string;
  /** libtorch CPU threads while training; unset: the policy of torch/threads.ts. */
  threads?: number;
  quiet?: boolean;
  /**
   * Data-parallel training: this process's place in the job. Default: read from the torchrun
   * variables (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT) when
   * RANK or WORLD_SIZE is set (parallel.ts jobFromEnv), else one process (see parallel.ts for
   * what the ranks share).
   */
  rendezvous?: Rendezvous;
  /** Data-parallel training: seconds any rank waits for the others (the rendezvous, each collective). Default 600. */
  distTimeoutS?: number;
  /** Data-parallel training: the gradient buckets' size in MiB (c10d's Reducer, as DDP's bucket_cap_mb). Default 25. */
  bucketCapMb?: number;
  /** Data-parallel training: the first bucket's size in MiB (DDP's first bucket, reduced earliest in backward). Default 1. */
  firstBucketCapMb?: number;
  /** Test hook: stop (as Ctrl-C would) once this step is reached. */
  interruptAtStep?: number;
  /** Called with each logged training record (tests, the demo, API users). */
  onLog?: (record: Record<string, number | string>) => void;
  /** Called after every optimizer step with its number and the loss of the (global) batch, bits per sub-pixel. */
  onStep?: (step: number, lossBpd: number) => void;
  /** Progress for a caller that draws its own (the terminal bar is off when this is given). */
  onProgress?: (p: TrainProgress) => void;
}

/** What the terminal progress bar shows, every train record (10 steps). */
export interface TrainProgress {
  step: number;
  /** The run's --steps, or null for a time-budgeted run. */
  totalSteps: number | null;
  /** How far through its budget (steps or minutes) the run is, in [0, 1]. */
  fraction: number;
  /** Mean training loss since the last record, bits per sub-pixel. */
  lossBpd: number;
  /** The last in-training test bits/dim, or null before the first evaluation. */
  testBpd: number | null;
  subpixelsPerS: number;
  /** Seconds left at the current pace, or null before it is known. */
  etaS: number | null;
  elapsedS: number;
}

export const DEFAULT_PRESET = 'fmnist-cpu';
export const DEFAULT_DATA = 'fashion-mnist';

/**
 * The options of one `train()` call, checked and resolved once, before anything is read or
 * written: every value against its row of the option table (schema.ts), the combinations, the
 * device, and for a new run its preset and training settings.
 */
export interface ResolvedOptions {
  o: TrainOptions;
  /** The run folder, absolute. */
  dir: string;
  /** A new run's preset (name and settings) and its training config; null for --resume (they come from the run). */
  fresh: { presetName: string; preset: Preset; train: TrainConfig } | null;
}

/** Checks every option that can be checked without reading files and resolves them; throws an ArgError before anything is written. */
export function resolveTrainOptions(o: TrainOptions): ResolvedOptions {
  checkOptions(o);
  if (o.device !== undefined) checkDevice(o.device);
  let fresh: ResolvedOptions['fresh'] = null;
  if (!o.resume) {
    const presetName = o.preset ?? DEFAULT_PRESET;
    const preset = getPreset(presetName); // unknown preset: the list of known ones
    const train = parseTrainConfig({
      ...preset.train,
      ...overrides(o, 'train'),
      ...(o.batchSize !== undefined ? { batchSize: o.batchSize } : {}),
      ...(o.lr !== undefined ? { lr: o.lr } : {}),
    });
    fresh = { presetName, preset, train };
  } else if (o.preset !== undefined) {
    getPreset(o.preset);
  }
  return { o, dir: path.resolve(o.out), fresh };
}

/** The bits of stored values a new run reads (before its data is loaded). */
export function dataBitsOf(r: ResolvedOptions): number {
  return r.o.stage === 'depth' ? 8 : (r.o.bits ?? r.fresh!.preset.model.bits);
}

/** 'cpu', 'cuda' or 'cuda:N', on a device this libtorch build and machine have. */
export function checkDevice(device: string): void {
  const m = /^(cpu|cuda)(?::(\d+))?$/.exec(device);
  if (!m || (m[1] === 'cpu' && m[2] !== undefined)) throw new ArgError(`--device ${device}: expected cpu, cuda or cuda:N`);
  if (m[1] === 'cuda') {
    if (!torch.cuda.isAvailable()) {
      const why = torch.native.info().cudaCompiled ? 'no CUDA device is visible' : 'this libtorch build has no CUDA (build against a CUDA PyTorch: docs/pytorch2.md)';
      throw new ArgError(`--device ${device}: ${why}`);
    }
    const index = m[2] === undefined ? 0 : Number(m[2]);
    if (index >= torch.cuda.deviceCount()) throw new ArgError(`--device ${device}: there are ${torch.cuda.deviceCount()} CUDA devices (0..${torch.cuda.deviceCount() - 1})`);
  }
}

/** Splits --set overrides by section: {'model.dim': 96} -> {dim: 96} for 'model'. */
function overrides(o: TrainOptions, section: 'model' | 'train'): Record<string, SetValue> {
  const prefix = `${section}.`;
  return Object.fromEntries(Object.entries(o.set ?? {}).filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
}

/**
 * The config of a new run, from the options, the data's image shape and, when fine-tuning, the
 * source run's model config (its architecture: the new run must read images of the same shape).
 */
export function newRunConfig(r: ResolvedOptions, images: { h: number; w: number; c: number }, source?: { model: ModelConfig; from: string }): RunConfig {
  const { o } = r;
  // The model reads what it trains on: the crops, or the whole images.
  const shape = o.crop ? { h: o.crop, w: o.crop, c: images.c } : images;
  if (!r.fresh) throw new Error('newRunConfig: a resumed run has its own config');
  const { presetName, preset, train } = r.fresh;
  const stage = source?.model.stage ?? o.stage ?? 'full';
  let model: ModelConfig;
  if (source) {
    model = source.model;
    if (model.height !== shape.h || model.width !== shape.w || model.channels !== shape.c) {
      throw new ArgError(`--init-from ${source.from}: its model reads ${model.height}×${model.width}×${model.channels} images, the data has ${shape.h}×${shape.w}×${shape.c}`);
    }
  } else {
    const givenBits = stage === 'depth' ? (o.givenBits ?? 3) : 0;
    model = parseModelConfig({
      ...preset.model,
      ...overrides(o, 'model'),
      height: shape.h,
      width: shape.w,
      channels: shape.c,
      bits: stage === 'depth' ? 8 - givenBits : (o.bits ?? preset.model.bits),
      stage,
      givenBits,
      ...(o.scale !== undefined ? { scale: o.scale } : {}),
    });
  }
  return {
    name: path.basename(path.resolve(o.out)),
    preset: presetName,
    data: o.data ?? DEFAULT_DATA,
    dataBits: stage === 'depth' ? 8 : model.bits,
    subsample: o.subsample ?? 1,
    size: o.size ?? null,
    crop: o.crop ?? null,
    seed: o.seed ?? 0,
    device: o.device ?? 'cpu',
    stage,
    model,
    train,
    minutes: o.minutes ?? null,
    steps: o.steps ?? null,
    created: new Date().toISOString(),
    ...(source ? { initFrom: source.from } : {}),
  };
}

/**
 * A data-parallel run splits each global batch evenly: every rank takes batch / world images.
 * `what` names where the batch size comes from.
 */
export function checkBatchSplit(batchSize: number, worldSize: number, what: string): void {
  if (batchSize % worldSize !== 0) {
    const near = [Math.floor(batchSize / worldSize) * worldSize, Math.ceil(batchSize / worldSize) * worldSize].filter((b) => b > 0);
    throw new ArgError(
      `${what} ${batchSize} does not split over ${worldSize} ranks: the batch size is the global batch, and each rank takes batch / world images ` +
        `(a multiple of ${worldSize}, e.g. ${[...new Set(near)].join(' or ')}; or another number of ranks)`,
    );
  }
}

/**
 * A resumed run's config: its saved config with the limits (--steps, --minutes) and --device of
 * this call. Any other option that would change the run is refused, naming each one with the
 * run's value (start a new run with --init-from to change them).
 */
export function resumedRunConfig(o: TrainOptions, prior: RunConfig): RunConfig {
  const conflicts = resumeConflicts(o, prior);
  if (conflicts.length) {
    throw new ArgError(`--resume continues ${prior.name} with its own settings; these would change it: ${conflicts.join(', ')}. Start a new run from its weights with --init-from instead`);
  }
  return {
    ...prior,
    ...(o.steps !== undefined ? { steps: o.steps } : {}),
    ...(o.minutes !== undefined ? { minutes: o.minutes } : {}),
    ...(o.device !== undefined ? { device: o.device } : {}),
  };
}
