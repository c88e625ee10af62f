// `spn upscale <input.png> --run <upscaler-run>`: upscales a user's image with one trained
// upscaling stage (a size stage's slice 0, or a depth stage's high bits). The definition; the
// work is in upscale.run.ts, loaded only when the command runs (see main.ts).
import type { Command } from 'commander';
import { drawOptions, positiveInt, type DrawOptions } from './options.js';

export interface UpscaleCommandOptions extends DrawOptions {
  run: string;
  n: number;
  out: string;
}

export function register(program: Command): void {
  const cmd = program
    .command('upscale')
    .description("upscale an image with a trained upscaling stage: a size stage's slice 0, or a depth stage's high bits")
    .argument('<input.png>', 'the image: (H/S)×(W/S)×C for a size stage, H×W×C for a depth stage')
    .requiredOption('--run <dir>', 'the upscaling run (its best, else latest checkpoint) or a checkpoint path')
    .option('--n <count>', 'upscaled images to draw (one batch)', positiveInt('--n'), 8)
    .option('--out <file>', 'PNG grid to write: the input first, then the samples', 'upscaled.png');
  drawOptions(cmd).action(async (input: string, opts: UpscaleCommandOptions) => {
    const { run } = await import('./upscale.run.js');
    await run(input, opts);
  });
}
