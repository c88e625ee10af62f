// `spn data <spec>`: load (and cache) a dataset and report its splits, shape and channel means.
// The definition; the work is in data.run.ts, loaded only when the command runs (see main.ts).
import type { Command } from 'commander';
import { SPEC_FORMS } from '../data/specs.js';
import { intRange, nonNegativeInt, positiveInt } from './options.js';

export interface DataCommandOptions {
  bits?: number;
  size?: number;
  seed?: number;
  cacheDir?: string;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('data')
    .description('load a dataset (decoding and caching it) and print its sizes, shape and channel means')
    .argument('[spec]', `dataset: ${SPEC_FORMS.map((f) => f.replace(/ \(.*\)$/, '')).join(' | ')}`, 'fashion-mnist')
    .option('--bits <n>', 'keep the top n of 8 bits (1 to 8)', intRange('--bits', 1, 8))
    .option('--size <N>', 'center-crop to a square and area-average to N×N', positiveInt('--size'))
    .option('--seed <n>', 'seed of the 90/10 split of a folder: dataset without train/ and test/ (default: 0)', nonNegativeInt('--seed'))
    .option('--cache-dir <dir>', 'where decoded splits are cached (default: .cache/spn-data)')
    .option('--json', 'print {"train", "test", "shape", "mean"} as JSON')
    .action(async (spec: string, opts: DataCommandOptions) => {
      const { run } = await import('./data.run.js');
      await run(spec, opts);
    });
}
