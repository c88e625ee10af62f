// `spn data <spec>`: load (and cache) a dataset and report its splits, shape and channel means.
import type { Command } from 'commander';
import { ArgError } from '../errors.js';
import { channelMeans, loadDataset, SPEC_FORMS } from '../data/index.js';

function intOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^-?\d+$/.test(value)) throw new ArgError(`--${name} ${value}: expected an integer`);
  return Number(value);
}

export function register(program: Command): void {
  program
    .command('data')
    .description('load a dataset (decoding and caching it) and print its sizes, shape and channel means')
    .argument('[spec]', `dataset: ${SPEC_FORMS.join(' | ')}`, 'fashion-mnist')
    .option('--bits <n>', 'keep the top n of 8 bits (1..8)')
    .option('--size <N>', 'center-crop to a square and area-average to N×N')
    .option('--seed <n>', 'seed of the 90/10 split of a folder: dataset without train/ and test/')
    .option('--cache-dir <dir>', 'where decoded splits are cached (default .cache/spn-data)')
    .option('--json', 'print {"train", "test", "shape", "mean"} as JSON')
    .action(async (spec: string, o: { bits?: string; size?: string; seed?: string; cacheDir?: string; json?: boolean }) => {
      const quiet = o.json === true;
      const ds = await loadDataset(spec, {
        bits: intOption('bits', o.bits),
        size: intOption('size', o.size),
        seed: intOption('seed', o.seed),
        cacheDir: o.cacheDir,
        onProgress: quiet ? undefined : (m) => process.stderr.write(`${m}\n`),
      });
      const { train, test } = ds;
      // Means over the test split, of the stored values at the requested bit depth.
      const mean = channelMeans(test).map((m) => Math.round(m * 1e4) / 1e4);
      if (quiet) {
        process.stdout.write(JSON.stringify({ train: train.n, test: test.n, shape: [test.h, test.w, test.c], mean }) + '\n');
        return;
      }
      process.stdout.write(
        [
          `dataset  ${ds.name}`,
          `train    ${train.n} images`,
          `test     ${test.n} images`,
          `shape    ${test.h}×${test.w}×${test.c} (H×W×C), ${ds.bits} bits`,
          `mean     ${mean.map((m) => m.toFixed(2)).join(', ')} (test split, per channel)`,
        ].join('\n') + '\n',
      );
    });
}
