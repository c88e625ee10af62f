// `spn score <run> <inputs...>`: the exact likelihood of every image in bits per sub-pixel, in
// total and per slice, streamed as each batch is done; optionally the input-complexity-corrected
// out-of-distribution score (Serrà et al., ICLR 2020) and PNG grids of the worst and best
// images. The definition; the work is in score.run.ts, loaded only when the command runs.
import type { Command } from 'commander';
import { ArgError } from '../errors.js';
import { choice, positiveInt } from './options.js';

export interface ScoreCommandOptions {
  json?: boolean;
  csv?: boolean;
  split: 'test' | 'train';
  limit?: number;
  batchSize: number;
  worst?: number;
  best?: number;
  grid: string;
  ood?: boolean;
  compressor: 'png' | 'webp';
  which: 'best' | 'latest';
  ema: boolean;
  cacheDir?: string;
  quiet?: boolean;
}

export function register(program: Command): void {
  program
    .command('score')
    .description('bits/dim of every image under a trained model (total and per slice), streamed; --ood for the complexity-corrected score')
    .argument('<run>', "the run folder (its best, else latest checkpoint) or a checkpoint path; a 'full' model")
    .argument('<inputs...>', 'image files, folders or dataset specs (read as `spn compress --help` describes)')
    .option('--json', 'one JSON object per image per line: {"index","name","bpd","per_slice_bpd",...}')
    .option('--csv', 'CSV: index,name,bpd[,compressor_bpd,corrected],slice_0,...')
    .option('--split <split>', 'the split of dataset-spec inputs: test or train', choice('--split', ['test', 'train'] as const), 'test')
    .option('--limit <n>', 'at most n images from each dataset-spec input', positiveInt('--limit'))
    .option('--batch-size <n>', 'images per forward pass', positiveInt('--batch-size'), 64)
    .option('--worst <n>', 'write a PNG grid of the n images of highest bits/dim to <grid>-worst.png', positiveInt('--worst'))
    .option('--best <n>', 'write a PNG grid of the n images of lowest bits/dim to <grid>-best.png', positiveInt('--best'))
    .option('--grid <prefix>', 'path prefix of the --worst/--best grids', 'score')
    .option('--ood', "also the complexity-corrected score S = bits/dim − the compressor's bits/dim (headers removed): high = out of distribution")
    .option('--compressor <name>', 'the generic lossless compressor of --ood: png (level 9) or webp (lossless)', choice('--compressor', ['png', 'webp'] as const), 'png')
    .option('--which <which>', 'best or latest checkpoint of a run folder', choice('--which', ['best', 'latest'] as const), 'best')
    .option('--ema', 'use the EMA weights', true)
    .option('--no-ema', 'use the raw (non-EMA) weights')
    .option('--cache-dir <dir>', 'where decoded dataset splits are cached (default: .cache/spn-data)')
    .option('--quiet', 'no summary on stderr')
    .action(async (target: string, inputs: string[], opts: ScoreCommandOptions) => {
      if (opts.json && opts.csv) throw new ArgError('give --json or --csv, not both');
      if (!opts.grid.trim()) throw new ArgError('--grid: expected a path prefix');
      const { run } = await import('./score.run.js');
      await run(target, inputs, opts);
    });
}
