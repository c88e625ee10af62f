#!/usr/bin/env node
// The `spn` command: one subcommand per file in this folder, each exporting `register`.
import { Command } from 'commander';
import { SpnError } from '../errors.js';
import { register as registerInfo } from './info.js';
import { register as registerData } from './data.js';
import { register as registerServe } from './serve.js';
import { register as registerSample } from './sample.js';
import { register as registerTrain } from './train.js';
import { register as registerDemo } from './demo.js';
import { register as registerPresets } from './presets.js';
import { register as registerEval } from './eval.js';
import { register as registerUpscale } from './upscale.js';

const program = new Command();
program
  .name('spn')
  .description('Subscale Pixel Networks and Multidimensional Upscaling on libtorch')
  .showHelpAfterError();

registerInfo(program);
registerData(program);
registerServe(program);
registerSample(program);
registerTrain(program);
registerDemo(program);
registerPresets(program);
registerEval(program);
registerUpscale(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof SpnError) {
    process.stderr.write(`spn: ${err.message}\n`);
    process.exit(2);
  }
  throw err;
}
