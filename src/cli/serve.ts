// `spn serve [runs-dir]`: the read-only training dashboard (src/serve/, web/). The definition;
// the work is in serve.run.ts, loaded only when the command runs (see main.ts).
import type { Command } from 'commander';
import { port } from './options.js';

export interface ServeCommandOptions {
  port: number;
  host: string;
}

export function register(program: Command): void {
  program
    .command('serve')
    .description('read-only web dashboard over run folders: curves, samples, slice-by-slice animation')
    .argument('[runs-dir]', 'folder holding one folder per run', 'runs')
    .option('--port <port>', 'port to listen on (0: any free port)', port('--port'), 8080)
    .option('--host <host>', 'interface to bind; the default keeps the dashboard on this machine', '127.0.0.1')
    .action(async (runsDir: string, opts: ServeCommandOptions) => {
      const { run } = await import('./serve.run.js');
      await run(runsDir, opts);
    });
}
