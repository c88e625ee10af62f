// `spn train`: trains an SPN (or an upscaling stage) and writes a run folder.
import type { Command } from 'commander';
import { train } from '../train/trainer.js';
import { ArgError } from '../errors.js';
import { intOpt, numOpt } from './options.js';

/** --set key=value, repeatable; numbers and booleans are parsed, the rest stays a string. */
function collectSet(pair: string, acc: Record<string, number | string | boolean>): Record<string, number | string | boolean> {
  const eq = pair.indexOf('=');
  if (eq < 1) throw new ArgError(`--set ${pair}: expected key=value, e.g. model.dim=96`);
  const raw = pair.slice(eq + 1);
  const value = raw === 'true' ? true : raw === 'false' ? false : raw !== '' && Number.isFinite(Number(raw)) ? Number(raw) : raw;
  return { ...acc, [pair.slice(0, eq)]: value };
}

export function register(program: Command): void {
  program
    .command('train')
    .description('train an SPN by maximum likelihood; writes config, metrics, checkpoints to --out')
    .option('--data <spec>', 'dataset spec (see `spn data --help`)', 'fashion-mnist')
    .option('--preset <name>', 'architecture and training preset', 'fmnist-cpu')
    .option('--out <dir>', 'run folder', `runs/run-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}`)
    .option('--minutes <m>', 'train for this many minutes', numOpt('--minutes'))
    .option('--steps <n>', 'train for this many steps', intOpt('--steps'))
    .option('--seed <n>', 'random seed', intOpt('--seed'), 0)
    .option('--device <d>', 'cpu or cuda', 'cpu')
    .option('--resume', 'continue the run in --out from its latest checkpoint')
    .option('--stage <stage>', 'full | size (slices 1.. given slice 0) | depth (low bits given high bits)', 'full')
    .option('--bits <n>', 'bits per sub-pixel of the generated values (full and size stages)', intOpt('--bits'))
    .option('--given-bits <n>', 'depth stage: high bits given (default 3)', intOpt('--given-bits'))
    .option('--scale <S>', "override the preset's subscale factor S", intOpt('--scale'))
    .option('--subsample <s>', 'train on x[::s, ::s] (the base model of a size pipeline)', intOpt('--subsample'))
    .option('--size <N>', 'resize the dataset to N×N', intOpt('--size'))
    .option('--batch-size <n>', "override the preset's batch size", intOpt('--batch-size'))
    .option('--lr <x>', "override the preset's learning rate", numOpt('--lr'))
    .option('--set <key=value>', 'override a preset setting, e.g. model.dim=96 or train.emaDecay=0.999 (repeatable)', collectSet, {})
    .option('--threads <n>', 'libtorch CPU threads (default: 1 in fp32, every core with bf16 on a CPU that has it; SPN_THREADS wins over the default)', intOpt('--threads', 1))
    .option('--quiet', 'no progress output')
    .action(async (opts) => {
      if (!['full', 'size', 'depth'].includes(opts.stage)) throw new ArgError(`--stage ${opts.stage}: expected full, size or depth`);
      await train({
        data: opts.data, preset: opts.preset, out: opts.out, minutes: opts.minutes, steps: opts.steps, seed: opts.seed,
        device: opts.device, resume: !!opts.resume, stage: opts.stage, bits: opts.bits, givenBits: opts.givenBits,
        scale: opts.scale, subsample: opts.subsample, size: opts.size, batchSize: opts.batchSize, lr: opts.lr, set: opts.set, threads: opts.threads, quiet: !!opts.quiet,
      });
    });
}
