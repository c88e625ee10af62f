// `spn train`: trains an SPN (or an upscaling stage) and writes a run folder. The definition and
// every check of the flags (all before anything is written); the work is the trainer, loaded by
// train.run.ts only when the command runs (see main.ts).
import * as fs from 'node:fs';
import type { Command } from 'commander';
import { ArgError } from '../errors.js';
import { isWorker, planLaunch, type LaunchFlags, type LaunchPlan } from '../train/launch.js';
import type { TrainOptions } from '../train/trainer.js';
import { choice, defaultRunDir, device, DEVICE_HELP, host, intRange, nonNegativeInt, positiveInt, positiveNum, tcpPort, TRAIN_THREADS_HELP } from './options.js';

type SetValue = number | string | boolean;
const STAGES = ['full', 'size', 'depth'] as const;

/** The flags as commander parses them (before train() gets them as TrainOptions). */
export interface TrainFlags {
  data: string;
  preset: string;
  out?: string;
  minutes?: number;
  steps?: number;
  seed: number;
  device: string;
  resume?: boolean;
  initFrom?: string;
  stage: (typeof STAGES)[number];
  bits?: number;
  givenBits?: number;
  scale?: number;
  subsample?: number;
  size?: number;
  batchSize?: number;
  lr?: number;
  set?: Record<string, SetValue>;
  threads?: number;
  quiet?: boolean;
  nproc?: number;
  nnodes?: number;
  nodeRank?: number;
  masterAddr?: string;
  masterPort?: number;
  distTimeout?: number;
}

/** What a resumed run takes from the command line; it keeps its saved settings for the rest. */
const RESUME_FLAGS = new Set(['out', 'resume', 'steps', 'minutes', 'threads', 'quiet', 'device', 'nproc', 'nnodes', 'nodeRank', 'masterAddr', 'masterPort', 'distTimeout']);

/** --set key=value, repeatable; numbers and booleans are parsed, the rest stays a string. */
function collectSet(pair: string, acc: Record<string, SetValue> | undefined): Record<string, SetValue> {
  const eq = pair.indexOf('=');
  if (eq < 1) throw new ArgError(`--set ${pair}: expected key=value, e.g. model.dim=96`);
  const key = pair.slice(0, eq);
  if (!key.startsWith('model.') && !key.startsWith('train.')) throw new ArgError(`--set ${pair}: expected model.<key>=<value> or train.<key>=<value>`);
  const raw = pair.slice(eq + 1);
  const value = raw === 'true' ? true : raw === 'false' ? false : raw !== '' && Number.isFinite(Number(raw)) ? Number(raw) : raw;
  return { ...acc, [key]: value };
}

/** The long flags given on the command line itself (commander's defaults do not count). */
function explicitFlags(cmd: Command): { key: string; flag: string }[] {
  return cmd.options
    .map((opt) => ({ key: opt.attributeName(), flag: opt.long ?? opt.flags }))
    .filter(({ key }) => cmd.getOptionValueSource(key) === 'cli');
}

/**
 * Checks the flags together and turns them into train()'s options; throws an ArgError (a usage
 * error) for anything train() would ignore or refuse, so nothing is written for a bad command.
 */
export function trainOptions(f: TrainFlags, cmd: Command): TrainOptions {
  const given = explicitFlags(cmd);
  const isGiven = (key: string) => given.some((g) => g.key === key);
  if (f.resume) {
    if (f.initFrom !== undefined) {
      throw new ArgError(`--resume continues the run in --out; --init-from ${f.initFrom} starts a new run from another run's weights: give one of them`);
    }
    if (!isGiven('out')) throw new ArgError('--resume needs --out <run folder>: the run to continue');
    const ignored = given.filter((g) => !RESUME_FLAGS.has(g.key)).map((g) => g.flag);
    if (ignored.length) {
      throw new ArgError(
        `--resume continues ${f.out} with its saved settings; it takes only --steps, --minutes, --device, --threads, --quiet and the launch options (--nproc, --nnodes, --node-rank, --master-addr, --master-port, --dist-timeout), ` +
          `and would ignore ${ignored.join(', ')}. To train with other settings from its weights, start a new run: --init-from ${f.out} --out <new folder>`,
      );
    }
  } else {
    if (f.minutes === undefined && f.steps === undefined) throw new ArgError('train needs --minutes or --steps (with both, it stops at whichever comes first)');
    // Rank 0 alone reads it (the other ranks get its weights), so only there must it exist.
    const readsFiles = !isWorker() || process.env.RANK === undefined || process.env.RANK === '0';
    if (f.initFrom !== undefined && readsFiles && !fs.existsSync(f.initFrom)) throw new ArgError(`--init-from ${f.initFrom}: no such run folder or checkpoint`);
  }
  if (f.stage === 'depth' && f.bits !== undefined) {
    throw new ArgError(`--bits ${f.bits}: a depth stage generates the low 8 − --given-bits bits of 8-bit data; set --given-bits instead`);
  }
  if (f.stage !== 'depth' && f.givenBits !== undefined) throw new ArgError(`--given-bits ${f.givenBits}: only a depth stage (--stage depth) is given high bits`);
  const out = f.out ?? defaultRunDir('run');
  const run = { out, minutes: f.minutes, steps: f.steps, device: f.device, threads: f.threads, quiet: f.quiet === true, distTimeoutS: f.distTimeout };
  // A resumed run keeps its saved settings (its device too, unless --device is given): train()
  // is given none of commander's defaults.
  if (f.resume) return { ...run, device: isGiven('device') ? f.device : undefined, resume: true };
  // Unset values stay undefined: train() takes the preset's for them.
  return {
    ...run, data: f.data, preset: f.preset, seed: f.seed, initFrom: f.initFrom, stage: f.stage,
    bits: f.bits, givenBits: f.givenBits, scale: f.scale, subsample: f.subsample, size: f.size,
    batchSize: f.batchSize, lr: f.lr, set: f.set,
  };
}

/** How `spn train` runs with these flags: alone, as a worker of a job, or launching workers (train/launch.ts). */
export function trainLaunch(f: TrainFlags): LaunchPlan {
  const flags: LaunchFlags = { nproc: f.nproc, nnodes: f.nnodes, nodeRank: f.nodeRank, masterAddr: f.masterAddr, masterPort: f.masterPort };
  return planLaunch(flags);
}

export function register(program: Command): void {
  program
    .command('train')
    .description('train an SPN by maximum likelihood; writes config, metrics and checkpoints to --out')
    .option('--data <spec>', 'dataset spec (see `spn data --help`)', 'fashion-mnist')
    .option('--preset <name>', 'architecture and training preset (see `spn presets`)', 'fmnist-cpu')
    .option('--out <dir>', 'run folder (default: a new folder runs/run-<date>T<time>)')
    .option('--minutes <m>', 'train for this many minutes (with --steps: whichever comes first)', positiveNum('--minutes'))
    .option('--steps <n>', 'train for this many steps (with --minutes: whichever comes first)', positiveInt('--steps'))
    .option('--seed <n>', 'random seed', nonNegativeInt('--seed'), 0)
    .option('--device <d>', DEVICE_HELP, device(), 'cpu')
    .option('--resume', 'continue the run in --out from its latest checkpoint, with its saved settings (only --steps, --minutes, --device, --threads, --quiet apply)')
    .option('--init-from <run>', 'start a new run from the weights of another run (its best, else latest checkpoint) or of a checkpoint: fine-tuning')
    .option('--stage <stage>', 'full, size (slices 1.. given slice 0) or depth (low bits given high bits)', choice('--stage', STAGES), 'full')
    .option('--bits <n>', "bits per sub-pixel of the generated values, 1 to 8 (full and size stages; default: the preset's)", intRange('--bits', 1, 8))
    .option('--given-bits <n>', 'depth stage: the high bits given, 1 to 7 (default: 3)', intRange('--given-bits', 1, 7))
    .option('--scale <S>', "the subscale factor S (default: the preset's)", positiveInt('--scale'))
    .option('--subsample <s>', 'train on x[::s, ::s] (the base model of a size pipeline)', positiveInt('--subsample'))
    .option('--size <N>', 'resize the dataset to N×N', positiveInt('--size'))
    .option('--batch-size <n>', "images per step (default: the preset's)", positiveInt('--batch-size'))
    .option('--lr <x>', "peak learning rate (default: the preset's)", positiveNum('--lr'))
    .option('--set <key=value>', 'override a preset setting, e.g. model.dim=96 or train.emaDecay=0.999 (repeatable)', collectSet)
    .option('--threads <n>', TRAIN_THREADS_HELP, positiveInt('--threads'))
    .option('--quiet', 'no progress output')
    .option('--nproc <n>', 'data-parallel worker processes on this machine, like torchrun --nproc-per-node: each takes batch / world images of every step (default: 1); with --device cuda, one per GPU', positiveInt('--nproc'))
    .option('--nnodes <n>', 'machines in the job; each runs this command with its own --node-rank (default: 1)', positiveInt('--nnodes'))
    .option('--node-rank <r>', "this machine's index, 0 to nnodes-1; rank 0 runs on node 0", nonNegativeInt('--node-rank'))
    .option('--master-addr <host>', 'address of node 0, where rank 0 serves the rendezvous (default with --nproc alone: 127.0.0.1)', host('--master-addr'))
    .option('--master-port <port>', 'TCP port of the rendezvous on node 0 (default: a free port with --nproc alone, 29500 with --nnodes)', tcpPort('--master-port'))
    .option('--dist-timeout <s>', 'seconds a rank waits for the others (rendezvous, each collective) before it fails (default: 600)', positiveNum('--dist-timeout'))
    .action(async (flags: TrainFlags, cmd: Command) => {
      const o = trainOptions(flags, cmd);
      const plan = trainLaunch(flags);
      const { run } = await import('./train.run.js');
      await run(o, plan);
    });
}
