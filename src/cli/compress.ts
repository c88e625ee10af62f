// `spn compress <run> <inputs...> --out file.spn`: lossless compression of images with a trained
// model (arithmetic coding of every sub-pixel with the model's distribution; src/codec/,
// docs/spn-format.md). The definition; the work is in compress.run.ts, loaded only when the
// command runs (see main.ts).
import type { Command } from 'commander';
import { DEFAULT_BATCH } from '../codec/defaults.js';
import { MAX_BATCH } from '../codec/limits.js';
import { ArgError } from '../errors.js';
import { choice, positiveInt } from './options.js';

export interface CompressCommandOptions {
  out: string;
  pipeline?: string;
  split: 'test' | 'train';
  limit?: number;
  batchSize: number;
  which: 'best' | 'latest';
  ema: boolean;
  cacheDir?: string;
  json?: boolean;
  quiet?: boolean;
}

export const PREPROCESSING_HELP = `
What is coded (the run's preprocessing; decompress gives these values back exactly):
  image files   PNG (the stored samples: no gamma or colour management) or JPEG (decoded by
                libvips, EXIF orientation not applied), of any size up to 8192×8192 pixels (no
                resizing: coded as tiles of the model's H×W in raster order, the edge tiles'
                padding not coded); a 1-channel model takes gray images (or RGB with three equal channels), a
                3-channel model RGB (gray repeated); 8-bit samples (16-bit PNGs are refused),
                fully opaque (transparent pixels are refused); then the top <bits> bits of each
                sample, <bits> being the model's (a pipeline's final bits).
  folders       every PNG and JPEG under it, recursively, in path order, read as above.
  dataset specs (fashion-mnist, cifar10:<dir>, ...) the --split as the run was trained on it:
                its bit depth, --size and --subsample.
An input the model cannot represent is refused with its file named. \`spn decompress\` writes
8-bit PNGs (gray or RGB) of the values shifted up to 8 bits (v << (8 - bits)).
The file (docs/spn-format.md, version 2) names the model only by a hash of its weights: decode
it with \`spn decompress <file.spn> --run <the same run>\` (or --pipeline <the same file>). A file
of one image is decoded under the .spn file's own name (cat.spn gives cat.png).`;

export function register(program: Command): void {
  program
    .command('compress')
    .description("compress images losslessly with a trained model's exact likelihood (arithmetic coding)")
    .argument('<run-and-inputs...>', 'the run folder (or checkpoint), then image files, folders or dataset specs; with --pipeline only the inputs')
    .requiredOption('--out <file.spn>', 'the compressed file to write')
    .option('--pipeline <file>', "code through a pipeline.json's chain of stages (each stage's sub-pixels with its own model)")
    .option('--split <split>', 'the split of dataset-spec inputs: test or train', choice('--split', ['test', 'train'] as const), 'test')
    .option('--limit <n>', 'at most n images from each dataset-spec input', positiveInt('--limit'))
    .option('--batch-size <n>', `tiles coded together, 1 to ${MAX_BATCH} (recorded; decoding uses the same)`, positiveInt('--batch-size'), DEFAULT_BATCH)
    .option('--which <which>', 'best or latest checkpoint of a run folder', choice('--which', ['best', 'latest'] as const), 'best')
    .option('--ema', 'use the EMA weights', true)
    .option('--no-ema', 'use the raw (non-EMA) weights')
    .option('--cache-dir <dir>', 'where decoded dataset splits are cached (default: .cache/spn-data)')
    .option('--json', 'print the report as JSON')
    .option('--quiet', 'no progress output')
    .addHelpText('after', PREPROCESSING_HELP)
    .action(async (args: string[], opts: CompressCommandOptions) => {
      const [models, inputs] = opts.pipeline !== undefined ? [{ pipeline: opts.pipeline }, args] : [{ run: args[0]! }, args.slice(1)];
      if (!inputs.length) throw new ArgError(opts.pipeline !== undefined ? 'spn compress --pipeline needs inputs' : `spn compress ${args[0]}: no inputs after the run folder`);
      if (!opts.out.trim()) throw new ArgError('--out: expected a file name');
      const { run } = await import('./compress.run.js');
      await run(models, inputs, opts);
    });
}
