// `spn recipe [name]`: the paper's experiments as chains of stages. Without a name it lists the
// recipes; with one it prints the `spn train` command of each stage, in order, and writes
// <out>/pipeline.json naming their run folders. The definition; the work is in recipe.run.ts
// (which loads no libtorch either: it only prints and writes JSON).
import type { Command } from 'commander';
import { device, positiveNum } from './options.js';

export interface RecipeCommandOptions {
  data?: string;
  out?: string;
  device: string;
  minutes?: number;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('recipe')
    .description("the paper's settings as chains of stages: print each stage's `spn train` command and write the pipeline file")
    .argument('[name]', 'a recipe (without one: list them)')
    .option('--data <spec>', "dataset spec of the final images (default: the recipe's placeholder path)")
    .option('--out <dir>', 'folder of the stages\' run folders and of pipeline.json (default: runs/<recipe>)')
    .option('--device <d>', 'the --device of every stage: cpu, cuda or cuda:N', device(), 'cuda')
    .option('--minutes <m>', 'the --minutes of every stage (default: 1440, a day each)', positiveNum('--minutes'))
    .option('--json', 'print JSON instead of text')
    .action(async (name: string | undefined, opts: RecipeCommandOptions) => {
      const { run } = await import('./recipe.run.js');
      run(name, opts);
    });
}
