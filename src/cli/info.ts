// `spn info [--json]`: what the engine runs on (libtorch build, CUDA, threads, BLAS, Node).
// The definition; the work is in info.run.ts, loaded only when the command runs (see main.ts).
import type { Command } from 'commander';

export interface InfoCommandOptions {
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('info')
    .description('print the libtorch version, CUDA devices, threads and BLAS in use')
    .option('--json', 'print JSON instead of text')
    .action(async (opts: InfoCommandOptions) => {
      const { run } = await import('./info.run.js');
      await run(opts);
    });
}
