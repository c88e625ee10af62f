// `spn serve [runs-dir]` (definition in serve.ts): starts the dashboard and keeps it up until
// Ctrl-C.
import { startServer } from '../serve/server.js';
import type { ServeCommandOptions } from './serve.js';

export async function run(runsDir: string, opts: ServeCommandOptions): Promise<void> {
  const running = await startServer({ runsDir, host: opts.host, port: opts.port });
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
}
