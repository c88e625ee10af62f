// The options of a training run, in one table. Everything else is derived from it: the flags of
// `spn train` (cli/train.ts registers one commander option per row), the check of each value
// (the same words for a flag on the command line and for a field of the API's TrainOptions),
// what `--resume` may change and what it compares with the saved run, and the fingerprint every
// rank of a data-parallel job must share. A new training option is one row here (and its field,
// with its documentation, in TrainOptions).
import { ArgError } from '../errors.js';
import { orList } from '../format.js';
import type { RunConfig } from '../store/run.js';
import type { SetValue, TrainOptions } from './options.js';

/** The kinds of value an option takes, each with its check and its words for "expected". */
export type ValueKind =
  | { kind: 'int'; min: number; max?: number; expected?: string }
  | { kind: 'num'; max?: number; expected?: string } // finite and > 0 (and ≤ max)
  | { kind: 'choice'; values: readonly string[] }
  | { kind: 'device' }
  | { kind: 'string' }
  | { kind: 'host' } // a host name or an IP address
  | { kind: 'flag' } // a boolean switch
  | { kind: 'set' }; // repeatable key=value pairs

export interface OptionSpec {
  /** The command-line flag; absent for an option of the API alone (a test hook, the cache folder). */
  flag?: string;
  /** Commander's placeholder, e.g. '<n>'. */
  arg?: string;
  value: ValueKind;
  help?: string;
  /** Commander's default (the value an omitted flag takes on a new run). */
  cliDefault?: string | number;
  /**
   * What `--resume` does with it. 'applies': the resumed run takes it (limits, device, threads,
   * launch). 'compared': it shaped the saved run; the same value is harmless, another one is
   * refused naming the run's (`saved`), and on the command line giving it at all is refused.
   */
  resume: 'applies' | 'compared';
  /** The saved run's value of a 'compared' option. */
  saved?: (cfg: RunConfig) => SetValue | null;
  /** Part of the ranks' fingerprint: every rank must be started with the same value. */
  agreed: boolean;
}

/** The keys of TrainOptions that are options (the rest are callbacks and the rendezvous). */
export type RunOptionKey = Exclude<keyof TrainOptions, 'rendezvous' | 'onLog' | 'onStep' | 'onProgress'>;

const posInt: ValueKind = { kind: 'int', min: 1 };

/** Every option of a run, in the order `spn train --help` lists them. */
export const RUN_OPTIONS = {
  data: { flag: '--data', arg: '<spec>', value: { kind: 'string' }, help: 'dataset spec (see `spn data --help`)', cliDefault: 'fashion-mnist', resume: 'compared', saved: (c) => c.data, agreed: true },
  preset: { flag: '--preset', arg: '<name>', value: { kind: 'string' }, help: 'architecture and training preset (see `spn presets`)', cliDefault: 'fmnist-cpu', resume: 'compared', saved: (c) => c.preset, agreed: true },
  out: { flag: '--out', arg: '<dir>', value: { kind: 'string' }, help: 'run folder (default: a new folder runs/run-<date>T<time>)', resume: 'applies', agreed: true },
  minutes: { flag: '--minutes', arg: '<m>', value: { kind: 'num' }, help: 'train for this many minutes (with --steps: whichever comes first)', resume: 'applies', agreed: true },
  steps: { flag: '--steps', arg: '<n>', value: posInt, help: 'train for this many steps (with --minutes: whichever comes first)', resume: 'applies', agreed: true },
  seed: { flag: '--seed', arg: '<n>', value: { kind: 'int', min: 0 }, help: 'random seed', cliDefault: 0, resume: 'compared', saved: (c) => c.seed, agreed: true },
  device: { flag: '--device', arg: '<d>', value: { kind: 'device' }, help: 'cpu, cuda or cuda:N', cliDefault: 'cpu', resume: 'applies', agreed: true },
  resume: { flag: '--resume', value: { kind: 'flag' }, help: '', resume: 'applies', agreed: true }, // help: resumeHelp()
  initFrom: { flag: '--init-from', arg: '<run>', value: { kind: 'string' }, help: 'start a new run from the weights of another run (its best, else latest checkpoint) or of a checkpoint: fine-tuning', resume: 'compared', agreed: true },
  stage: { flag: '--stage', arg: '<stage>', value: { kind: 'choice', values: ['full', 'size', 'depth'] }, help: 'full, size (slices 1.. given slice 0) or depth (low bits given high bits)', cliDefault: 'full', resume: 'compared', saved: (c) => c.stage, agreed: true },
  bits: { flag: '--bits', arg: '<n>', value: { kind: 'int', min: 1, max: 8 }, help: "bits per sub-pixel of the generated values, 1 to 8 (full and size stages; default: the preset's)", resume: 'compared', saved: (c) => c.model.bits, agreed: true },
  givenBits: { flag: '--given-bits', arg: '<n>', value: { kind: 'int', min: 1, max: 7 }, help: 'depth stage: the high bits given, 1 to 7 (default: 3)', resume: 'compared', saved: (c) => c.model.givenBits, agreed: true },
  scale: { flag: '--scale', arg: '<S>', value: posInt, help: "the subscale factor S (default: the preset's)", resume: 'compared', saved: (c) => c.model.scale, agreed: true },
  subsample: { flag: '--subsample', arg: '<s>', value: posInt, help: 'train on x[::s, ::s] (the base model of a size pipeline)', resume: 'compared', saved: (c) => c.subsample, agreed: true },
  size: { flag: '--size', arg: '<N>', value: posInt, help: 'resize the dataset to N×N', resume: 'compared', saved: (c) => c.size, agreed: true },
  crop: { flag: '--crop', arg: '<N>', value: posInt, help: 'train on random N×N crops of the full-resolution images (seeded per image and epoch); the test split is cut into N×N tiles: a model for the codec', resume: 'compared', saved: (c) => c.crop, agreed: true },
  batchSize: { flag: '--batch-size', arg: '<n>', value: posInt, help: "images per step (default: the preset's)", resume: 'compared', saved: (c) => c.train.batchSize, agreed: true },
  lr: { flag: '--lr', arg: '<x>', value: { kind: 'num' }, help: "peak learning rate (default: the preset's)", resume: 'compared', saved: (c) => c.train.lr, agreed: true },
  set: { flag: '--set', arg: '<key=value>', value: { kind: 'set' }, help: 'override a preset setting, e.g. model.dim=96 or train.emaDecay=0.999 (repeatable)', resume: 'compared', agreed: true },
  threads: { flag: '--threads', arg: '<n>', value: posInt, help: 'libtorch CPU threads for training (default: SPN_THREADS, else every core in bf16 and in fp32 on libtorch 2.x, 1 in fp32 on 1.x)', resume: 'applies', agreed: false },
  quiet: { flag: '--quiet', value: { kind: 'flag' }, help: 'no progress output', resume: 'applies', agreed: false },
  distTimeoutS: { flag: '--dist-timeout', arg: '<s>', value: { kind: 'num', max: 86_400, expected: 'seconds above 0 and at most 86400' }, help: 'seconds a rank waits for the others (rendezvous, each collective) before it fails (default: 600)', resume: 'applies', agreed: false },
  bucketCapMb: { flag: '--bucket-cap-mb', arg: '<MB>', value: { kind: 'num', max: 4096, expected: 'megabytes above 0 and at most 4096' }, help: "data-parallel: the gradient all-reduce's bucket size in MiB, as DDP's bucket_cap_mb (default: 25)", resume: 'applies', agreed: true },
  firstBucketCapMb: { flag: '--first-bucket-cap-mb', arg: '<MB>', value: { kind: 'num', max: 4096, expected: 'megabytes above 0 and at most 4096' }, help: 'data-parallel: the first bucket, whose all-reduce starts earliest in backward (default: 1)', resume: 'applies', agreed: true },
  cacheDir: { value: { kind: 'string' }, resume: 'applies', agreed: false },
  interruptAtStep: { value: { kind: 'int', min: 0 }, resume: 'applies', agreed: true },
} as const satisfies { [K in RunOptionKey]: OptionSpec };

/** `spn train`'s launch flags (train/launch.ts): every one applies to a resumed run; none is part of TrainOptions. */
export const LAUNCH_OPTIONS = {
  nproc: { flag: '--nproc', arg: '<n>', value: posInt, help: 'data-parallel worker processes on this machine, like torchrun --nproc-per-node: each takes batch / world images of every step (default: 1); with --device cuda, one per GPU', resume: 'applies', agreed: false },
  nnodes: { flag: '--nnodes', arg: '<n>', value: posInt, help: 'machines in the job; each runs this command with its own --node-rank (default: 1)', resume: 'applies', agreed: false },
  nodeRank: { flag: '--node-rank', arg: '<r>', value: { kind: 'int', min: 0 }, help: "this machine's index, 0 to nnodes-1; rank 0 runs on node 0", resume: 'applies', agreed: false },
  masterAddr: { flag: '--master-addr', arg: '<host>', value: { kind: 'host' }, help: 'address of node 0, where rank 0 serves the rendezvous (default with --nproc alone: 127.0.0.1)', resume: 'applies', agreed: false },
  masterPort: { flag: '--master-port', arg: '<port>', value: { kind: 'int', min: 1, max: 65535, expected: 'a TCP port, 1 to 65535' }, help: 'TCP port of the rendezvous on node 0 (default: a free port with --nproc alone, 29500 with --nnodes)', resume: 'applies', agreed: false },
} as const satisfies Record<string, OptionSpec>;

type Spec = OptionSpec & { readonly value: ValueKind };
const runSpec = (key: RunOptionKey): Spec => RUN_OPTIONS[key];

/** The name of an option in messages: its flag, or the API field of an option without one. */
const optionName = (key: RunOptionKey): string => runSpec(key).flag ?? key;

/** What a value of this kind is, in words: "--steps 0: expected <this>". */
function expected(v: ValueKind): string {
  switch (v.kind) {
    case 'int':
      if (v.expected !== undefined) return v.expected;
      if (v.max !== undefined) return `an integer from ${v.min} to ${v.max}`;
      return v.min === 1 ? 'a positive integer' : `an integer ≥ ${v.min}`;
    case 'num':
      return v.expected ?? 'a positive number';
    case 'choice':
      return orList(v.values);
    case 'device':
      return 'cpu, cuda or cuda:N';
    case 'string':
      return 'a string';
    case 'host':
      return 'a host name or an IP address';
    case 'flag':
      return 'true or false';
    case 'set':
      return 'model.<key>=<value> or train.<key>=<value>';
  }
}

/** Whether a (parsed) value is of its kind. */
function isValid(v: ValueKind, x: unknown): boolean {
  switch (v.kind) {
    case 'int':
      return Number.isSafeInteger(x) && (x as number) >= v.min && (v.max === undefined || (x as number) <= v.max);
    case 'num':
      return typeof x === 'number' && Number.isFinite(x) && x > 0 && (v.max === undefined || x <= v.max);
    case 'choice':
      return typeof x === 'string' && v.values.includes(x);
    case 'device':
      return typeof x === 'string' && /^(cpu|cuda(:\d+)?)$/.test(x);
    case 'string':
      return typeof x === 'string' && x !== '';
    case 'host':
      return typeof x === 'string' && x !== '' && !/\s/.test(x);
    case 'flag':
      return typeof x === 'boolean';
    case 'set':
      return typeof x === 'object' && x !== null && Object.keys(x).every((k) => /^(model|train)\.\w+$/.test(k));
  }
}

/** Throws the option's ArgError ("<flag> <value>: expected ...") unless the value is of its kind. */
export function checkValue(name: string, v: ValueKind, x: unknown): void {
  if (isValid(v, x)) return;
  if (v.kind === 'set') {
    const bad = Object.keys(x as object).find((k) => !/^(model|train)\.\w+$/.test(k));
    throw new ArgError(`${name} ${bad ?? JSON.stringify(x)}: expected ${expected(v)}`);
  }
  throw new ArgError(`${name} ${typeof x === 'object' && x !== null ? JSON.stringify(x) : String(x)}: expected ${expected(v)}`);
}

/**
 * Checks every option's value that TrainOptions holds, each against its row, and the
 * combinations; reads no file and loads no libtorch (the CLI checks with it before it launches
 * workers; train() again, with the device and the preset).
 */
export function checkOptions(o: TrainOptions): void {
  for (const key of Object.keys(RUN_OPTIONS) as RunOptionKey[]) {
    const x = o[key];
    if (x !== undefined) checkValue(optionName(key), runSpec(key).value, x);
  }
  // a resumed run continues to its saved limit unless given a new one
  if (!o.resume && o.minutes === undefined && o.steps === undefined) throw new ArgError('train needs --minutes or --steps (with both, it stops at whichever comes first)');
  if (o.resume && o.initFrom) throw new ArgError("--resume continues a run and --init-from starts a new one from another run's weights: give one of them");
  if (o.stage === 'depth' && o.bits !== undefined) {
    throw new ArgError(`--bits ${o.bits}: a depth stage generates the low 8 − --given-bits bits of 8-bit data; set --given-bits instead`);
  }
  if (o.stage !== undefined && o.stage !== 'depth' && o.givenBits !== undefined) throw new ArgError(`--given-bits ${o.givenBits}: only a depth stage (--stage depth) is given high bits`);
  if (o.initFrom && Object.keys(o.set ?? {}).some((k) => k.startsWith('model.'))) {
    throw new ArgError(`--init-from ${o.initFrom} takes that run's architecture; model.* settings cannot change it (train.* settings can)`);
  }
}

/** The options `--resume` applies, as flags: "--steps, --minutes, ...". */
export function resumeFlags(): string[] {
  return Object.values(RUN_OPTIONS).flatMap((s: Spec) => (s.resume === 'applies' && s.flag && s.flag !== '--resume' && s.flag !== '--out' ? [s.flag] : []));
}

/** --resume's help: which flags apply to a resumed run. */
export function resumeHelp(): string {
  return `continue the run in --out from its latest checkpoint, with its saved settings (only ${resumeFlags().join(', ')} and the launch options apply)`;
}

/**
 * The options a resumed run was given that would change it: "--lr 0.5 (the run has 0.003)"
 * for each 'compared' option whose value differs from the saved run's (the same value is harmless).
 */
export function resumeConflicts(o: TrainOptions, prior: RunConfig): string[] {
  const conflicts: string[] = [];
  for (const key of Object.keys(RUN_OPTIONS) as RunOptionKey[]) {
    const spec = runSpec(key);
    const given = o[key];
    if (spec.resume !== 'compared' || given === undefined || !spec.saved) continue;
    const saved = spec.saved(prior);
    if (given !== saved) conflicts.push(`${optionName(key)} ${String(given)} (the run has ${saved})`);
  }
  for (const [key, value] of Object.entries(o.set ?? {})) {
    const [section, field] = key.split('.', 2) as ['model' | 'train', string];
    const saved = (prior[section] as Record<string, SetValue>)[field] ?? null;
    if (value !== saved) conflicts.push(`--set ${key}=${value} (the run has ${saved})`);
  }
  return conflicts;
}

/** The agreed options of a run with sorted --set keys, plus the libtorch version: what every rank must share. */
export function agreedRecord(o: TrainOptions, libtorch: string): Record<string, unknown> {
  const rec: Record<string, unknown> = {};
  for (const key of Object.keys(RUN_OPTIONS) as RunOptionKey[]) {
    if (!runSpec(key).agreed) continue;
    const v = o[key];
    rec[key] = key === 'set' && v ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1))) : (v ?? null);
  }
  rec.libtorch = libtorch;
  return rec;
}

const show = (v: unknown) => (v === null || v === undefined ? '(unset)' : typeof v === 'string' ? v : JSON.stringify(v));

/** "--lr 0.003 on rank 0 but 0.002 on rank 1, ..." for the agreed options that differ. */
export function describeDifference(a: Record<string, unknown>, b: Record<string, unknown>, rank: number): string {
  const parts: string[] = [];
  for (const key of Object.keys(a)) {
    if (key === 'set') {
      const [sa, sb] = [(a.set ?? {}) as Record<string, unknown>, (b.set ?? {}) as Record<string, unknown>];
      for (const k of [...new Set([...Object.keys(sa), ...Object.keys(sb)])].sort()) {
        if (JSON.stringify(sa[k]) !== JSON.stringify(sb[k])) parts.push(`--set ${k}=${show(sa[k] ?? null)} on rank 0 but ${show(sb[k] ?? null)} on rank ${rank}`);
      }
    } else if (JSON.stringify(a[key]) !== JSON.stringify(b[key])) {
      const name = key in RUN_OPTIONS ? optionName(key as RunOptionKey) : key;
      parts.push(`${name} ${show(a[key])} on rank 0 but ${show(b[key])} on rank ${rank}`);
    }
  }
  return parts.join(', ');
}
