// `spn sample <run-dir>`: draws images from a trained SPN and writes a PNG grid (and, with
// --frames, one frame per slice plus an animated GIF of the subscale order filling in).
// `spn sample --pipeline p.json` samples through a chain of upscaling stages. The definition;
// the work is in sample.run.ts, loaded only when the command runs (see main.ts).
import type { Command } from 'commander';
import { drawOptions, positiveInt, runOrPipeline, type DrawOptions } from './options.js';

export interface SampleCommandOptions extends DrawOptions {
  n: number;
  out: string;
  frames?: string;
}

export function register(program: Command): void {
  const cmd = program
    .command('sample')
    .description('draw images from a trained model (a run folder or a checkpoint) and write a PNG grid')
    .argument('[run-dir]', 'run folder (its best, else latest checkpoint) or a checkpoint path')
    .option('--pipeline <file>', 'sample through the stages of a pipeline.json instead of one run')
    .option('--n <count>', 'images to draw (one batch)', positiveInt('--n'), 16)
    .option('--out <file>', 'PNG grid to write', 'samples.png')
    .option('--frames <dir>', 'also write frame-NNN.png after each slice and animation.gif (--pipeline: stage-N.png per stage)');
  drawOptions(cmd).action(async (target: string | undefined, opts: SampleCommandOptions & { pipeline?: string }) => {
    const what = runOrPipeline('sample', target, opts.pipeline);
    const { run } = await import('./sample.run.js');
    await run(what, opts);
  });
}
