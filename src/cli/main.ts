#!/usr/bin/env node
// The `spn` command. Each subcommand is two files in this folder:
//
//   <cmd>.ts      its definition: `register(program)` with the arguments, options, help texts and
//                 the checks that need no libtorch. It imports nothing that loads libtorch.
//   <cmd>.run.ts  its implementation, loaded by the action handler with `await import('./<cmd>.run.js')`
//                 only once the command runs.
//
// So `spn --help`, `spn <cmd> --help`, `spn --version` and every usage error work without
// libtorch (test/cli/main.test.ts checks this). To add a command: write both files and add its
// `register` below. Errors become exit codes in one place: exit.ts.
import { Command } from 'commander';
import { errorText, exitCodeFor } from './exit.js';
import { packageVersion } from './version.js';
import { register as registerInfo } from './info.js';
import { register as registerData } from './data.js';
import { register as registerServe } from './serve.js';
import { register as registerSample } from './sample.js';
import { register as registerTrain } from './train.js';
import { register as registerDemo } from './demo.js';
import { register as registerPresets } from './presets.js';
import { register as registerEval } from './eval.js';
import { register as registerUpscale } from './upscale.js';
import { register as registerCompress } from './compress.js';
import { register as registerDecompress } from './decompress.js';
import { register as registerScore } from './score.js';
import { register as registerRecipe } from './recipe.js';

const program = new Command();
// Set before the subcommands are added: they inherit the exit override and the output settings.
program
  .name('spn')
  .description('Subscale Pixel Networks and Multidimensional Upscaling on libtorch')
  .version(packageVersion(), '-V, --version', 'print the version')
  .helpOption('-h, --help', 'print this help')
  .helpCommand('help [command]', 'print the help of a command')
  .exitOverride()
  .configureOutput({ outputError: (str, write) => write(str.replace(/^error: /, 'spn: ')) })
  .showHelpAfterError('(add --help for usage)');

registerInfo(program);
registerData(program);
registerServe(program);
registerSample(program);
registerTrain(program);
registerDemo(program);
registerPresets(program);
registerEval(program);
registerUpscale(program);
registerCompress(program);
registerDecompress(program);
registerScore(program);
registerRecipe(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  process.stderr.write(errorText(err));
  process.exit(exitCodeFor(err));
}
