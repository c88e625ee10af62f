// `spn presets`: the model presets, what each is for, and its parameter count. The definition;
// the work is in presets.run.ts, loaded only when the command runs (see main.ts).
import type { Command } from 'commander';

export interface PresetsCommandOptions {
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('presets')
    .description('list the model presets with their image shape, size and parameter count')
    .option('--json', 'print JSON instead of text')
    .action(async (opts: PresetsCommandOptions) => {
      const { run } = await import('./presets.run.js');
      run(opts);
    });
}
