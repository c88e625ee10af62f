// `spn eval <run-dir|checkpoint>`: the exact negative log-likelihood of a trained model on a
// dataset split, in bits per dimension, with the breakdown per slice; `spn eval --pipeline p.json`
// for a chain of stages. The definition; the work is in eval.run.ts, loaded only when the
// command runs (see main.ts).
import type { Command } from 'commander';
import { choice, device, DEVICE_HELP, positiveInt, runOrPipeline, THREADS_HELP } from './options.js';

export interface EvalCommandOptions {
  /** Dataset spec; default: the run's own. */
  data?: string;
  split: 'test' | 'train';
  limit?: number;
  batchSize: number;
  json?: boolean;
  device: string;
  ema: boolean;
  which: 'best' | 'latest';
  /** Resize the dataset to N×N (default: inferred from the model when the data does not fit). */
  size?: number;
  cacheDir?: string;
  /** libtorch CPU threads; unset: the policy of torch/threads.ts. */
  threads?: number;
  quiet?: boolean;
}

export function register(program: Command): void {
  program
    .command('eval')
    .description('exact test (or train) bits/dim of a trained model, with the breakdown per slice')
    .argument('[run-dir|checkpoint]', 'run folder (its best, else latest checkpoint) or a checkpoint path')
    .option('--pipeline <file>', "evaluate a pipeline.json's chain of stages on its final images instead of one run")
    .option('--data <spec>', "dataset spec (default: the run's own data; --pipeline: its last stage's)")
    .option('--split <split>', 'test or train', choice('--split', ['test', 'train'] as const), 'test')
    .option('--limit <n>', 'evaluate the first n images only (no eval.json then)', positiveInt('--limit'))
    .option('--batch-size <n>', 'images per forward pass', positiveInt('--batch-size'), 64)
    .option('--size <N>', "resize the dataset to N×N (default: the run's image size when the data differs)", positiveInt('--size'))
    .option('--cache-dir <dir>', 'where decoded splits are cached (default: .cache/spn-data)')
    .option('--which <which>', 'best or latest checkpoint of a run folder', choice('--which', ['best', 'latest'] as const), 'best')
    .option('--device <d>', DEVICE_HELP, device(), 'cpu')
    .option('--ema', 'use the EMA weights', true)
    .option('--no-ema', 'use the raw (non-EMA) weights')
    .option('--json', 'print {"bpd", "images", "per_slice_bpd", ...} as JSON')
    .option('--threads <n>', THREADS_HELP, positiveInt('--threads'))
    .option('--quiet', 'no progress output')
    .action(async (target: string | undefined, opts: EvalCommandOptions & { pipeline?: string }) => {
      const what = runOrPipeline('eval', target, opts.pipeline);
      const { run } = await import('./eval.run.js');
      await run(what, opts);
    });
}
