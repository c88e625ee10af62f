// `spn demo`: the first five minutes. Trains the fmnist-cpu preset on the embedded
// Fashion-MNIST, evaluates test bits/dim, samples a grid and the slice-by-slice animation, and
// says where everything is. The definition; the work is in demo.run.ts, loaded only when the
// command runs (see main.ts).
import type { Command } from 'commander';
import { device, DEVICE_HELP, nonNegativeInt, positiveInt, positiveNum, TRAIN_THREADS_HELP } from './options.js';

export interface DemoOptions {
  minutes: number;
  data: string;
  preset: string;
  out?: string;
  seed: number;
  n: number;
  evalImages?: number;
  device: string;
  threads?: number;
  quiet?: boolean;
}

export function register(program: Command): void {
  program
    .command('demo')
    .description('train on the embedded Fashion-MNIST for a few minutes, evaluate, sample, and show where it all is')
    .option('--minutes <m>', 'training time in minutes', positiveNum('--minutes'), 5)
    .option('--data <spec>', 'dataset spec (see `spn data --help`)', 'fashion-mnist')
    .option('--preset <name>', 'model preset (see `spn presets`)', 'fmnist-cpu')
    .option('--out <dir>', 'run folder (default: a new folder runs/demo-<date>T<time>)')
    .option('--seed <n>', 'random seed', nonNegativeInt('--seed'), 0)
    .option('--n <count>', 'images to sample', positiveInt('--n'), 16)
    .option('--eval-images <n>', 'evaluate on the first n test images (0: all; `spn eval` for the full set later)', nonNegativeInt('--eval-images'), 2000)
    .option('--device <d>', DEVICE_HELP, device(), 'cpu')
    .option('--threads <n>', TRAIN_THREADS_HELP, positiveInt('--threads'))
    .option('--quiet', 'no progress output')
    .action(async (opts: DemoOptions) => {
      const { run } = await import('./demo.run.js');
      await run(opts);
    });
}
