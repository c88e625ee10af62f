// `spn demo`: the first five minutes. Trains the fmnist-cpu preset on the embedded
// Fashion-MNIST, evaluates test bits/dim, samples a grid and the slice-by-slice animation, and
// says where everything is.
import * as path from 'node:path';
import type { Command } from 'commander';
import { ArgError } from '../errors.js';
import { train } from '../train/trainer.js';
import { runFiles } from '../train/run.js';
import { formatDuration } from '../train/progress.js';
import { evalRun } from './eval.js';
import { sampleRun } from './sample.js';
import { intOpt, numOpt, THREADS_HELP } from './options.js';
import { setNumThreads, threadsFor } from '../torch/threads.js';

export interface DemoOptions {
  minutes: number;
  data: string;
  preset: string;
  out?: string;
  seed: number;
  n: number;
  evalImages?: number;
  device: string;
  threads?: number;
  quiet?: boolean;
}

export async function demo(o: DemoOptions): Promise<{ dir: string; bpd: number; files: string[] }> {
  if (!(o.minutes > 0)) throw new ArgError(`--minutes ${o.minutes}: expected a positive number`);
  const started = Date.now();
  const dir = path.resolve(o.out ?? path.join('runs', `demo-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}`));
  const say = (m: string) => o.quiet || process.stderr.write(m + '\n');
  say(`spn demo: training ${o.preset} on ${o.data} for ${o.minutes} min -> ${dir}`);
  say(`(watch it live: npx spn serve ${path.relative(process.cwd(), path.dirname(dir)) || '.'})`);
  await train({ data: o.data, preset: o.preset, out: dir, minutes: o.minutes, seed: o.seed, device: o.device, threads: o.threads, quiet: o.quiet });
  // evaluation and sampling: the asked-for threads, else the CLI default (train picks its own)
  setNumThreads(threadsFor('ops', o.threads));

  say(`\nevaluating exact test bits/dim${o.evalImages ? ` on the first ${o.evalImages} test images` : ' on the full test set'} ...`);
  const report = await evalRun(dir, {
    split: 'test', batchSize: 100, device: o.device, ema: true, which: 'best', quiet: o.quiet,
    ...(o.evalImages ? { limit: o.evalImages } : {}), // 0 or unset: the full test split
  });

  say(`\nsampling ${o.n} images slice by slice ...`);
  const samples = runFiles(dir).samples;
  const files = await sampleRun(dir, {
    n: o.n, out: path.join(samples, 'latest.png'), frames: path.join(samples, 'frames'),
    temperature: 1, seed: o.seed, device: o.device, ema: true, quiet: o.quiet,
  });

  const rel = (f: string) => path.relative(process.cwd(), f) || '.';
  const lines = [
    '',
    `done in ${formatDuration((Date.now() - started) / 1000)}`,
    `  test bits/dim  ${report.bpd.toFixed(4)} (exact NLL over ${report.images} test images; per slice ${report.per_slice_bpd.map((b) => (b === null ? '-' : b.toFixed(3))).join(', ')})`,
    `  run folder     ${rel(dir)}  (config.json, metrics.jsonl, checkpoints/${report.written ? ', eval.json' : ''})`,
    `  samples        ${rel(path.join(samples, 'latest.png'))}`,
    `  animation      ${rel(path.join(samples, 'frames', 'animation.gif'))} (one frame per slice)`,
    `  dashboard      npx spn serve ${rel(path.dirname(dir))}`,
    `  more           npx spn sample ${rel(dir)} --n 64 --out more.png ; npx spn eval ${rel(dir)}`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
  return { dir, bpd: report.bpd, files };
}

export function register(program: Command): void {
  program
    .command('demo')
    .description('train on the embedded Fashion-MNIST for a few minutes, evaluate, sample, and show where it all is')
    .option('--minutes <m>', 'training time', numOpt('--minutes'), 5)
    .option('--data <spec>', 'dataset spec', 'fashion-mnist')
    .option('--preset <name>', 'model preset', 'fmnist-cpu')
    .option('--out <dir>', 'run folder (default: runs/demo-<time>)')
    .option('--seed <n>', 'random seed', intOpt('--seed'), 0)
    .option('--n <count>', 'images to sample', intOpt('--n', 1), 16)
    .option('--eval-images <n>', 'evaluate on the first n test images (0: all; `spn eval` for the full set later)', intOpt('--eval-images'), 2000)
    .option('--device <d>', 'cpu or cuda', 'cpu')
    .option('--threads <n>', THREADS_HELP, intOpt('--threads', 1))
    .option('--quiet', 'no progress output')
    .action(async (opts: DemoOptions) => {
      await demo(opts);
    });
}
