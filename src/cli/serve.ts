// `spn serve [runs-dir]`: the read-only training dashboard (src/serve/, web/).
import type { Command } from 'commander';
import { ArgError } from '../errors.js';
import { startServer } from '../serve/server.js';

export function register(program: Command): void {
  program
    .command('serve')
    .description('read-only web dashboard over run folders: curves, samples, slice-by-slice animation')
    .argument('[runs-dir]', 'folder holding one folder per run', 'runs')
    .option('--port <port>', 'port to listen on (0 = any free port)', '8080')
    .option('--host <host>', 'interface to bind; the default keeps the dashboard on this machine', '127.0.0.1')
    .action(async (runsDir: string, opts: { port: string; host: string }) => {
      if (!/^\d{1,5}$/.test(opts.port)) throw new ArgError(`--port must be a whole number from 0 to 65535, got ${JSON.stringify(opts.port)}`);
      const running = await startServer({ runsDir, host: opts.host, port: Number(opts.port) });
      process.stdout.write(`spn serve: dashboard for ${runsDir} at ${running.url}  (Ctrl-C to stop)\n`);
      for (const w of running.warnings) process.stderr.write(`spn serve: warning: ${w}\n`);
      if (opts.host !== '127.0.0.1' && opts.host !== 'localhost' && opts.host !== '::1') {
        process.stdout.write(`spn serve: listening on ${opts.host}: anyone who can reach this address can read these runs\n`);
      }
      const stop = () => {
        void running.close().then(() => process.exit(0));
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
