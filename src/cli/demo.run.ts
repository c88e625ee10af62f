// `spn demo` (definition in demo.ts): the first five minutes. Trains the fmnist-cpu preset on
// the embedded Fashion-MNIST, evaluates test bits/dim, samples a grid and the slice-by-slice
// animation, and says where everything is.
import * as path from 'node:path';
import { ArgError } from '../errors.js';
import { train } from '../train/trainer.js';
import { runFiles } from '../store/run.js';
import { formatDuration } from '../train/progress.js';
import type { DemoOptions } from './demo.js';
import { defaultRunDir } from './options.js';
import { evalRun } from './eval.run.js';
import { sampleRun } from './sample.run.js';
import { setNumThreads, threadsFor } from '../torch/threads.js';

export async function demo(o: DemoOptions): Promise<{ dir: string; bpd: number; files: string[] }> {
  if (!(o.minutes > 0)) throw new ArgError(`--minutes ${o.minutes}: expected a positive number`);
  const started = Date.now();
  const dir = path.resolve(o.out ?? defaultRunDir('demo'));
  const say = (m: string) => o.quiet || process.stderr.write(m + '\n');
  say(`spn demo: training ${o.preset} on ${o.data} for ${o.minutes} min -> ${dir}`);
  say(`(watch it live: npx spn serve ${path.relative(process.cwd(), path.dirname(dir)) || '.'})`);
  await train({ data: o.data, preset: o.preset, out: dir, minutes: o.minutes, seed: o.seed, device: o.device, threads: o.threads, quiet: o.quiet });
  // evaluation and sampling: the asked-for threads, else the CLI default (train picks its own)
  setNumThreads(threadsFor('ops', o.threads));

  const limit = o.evalImages !== undefined && o.evalImages > 0 ? o.evalImages : undefined; // 0 or unset: the full test split
  say(`\nevaluating exact test bits/dim${limit !== undefined ? ` on the first ${limit} test images` : ' on the full test set'} ...`);
  const report = await evalRun(dir, {
    split: 'test', batchSize: 100, device: o.device, ema: true, which: 'best', quiet: o.quiet,
    ...(limit !== undefined ? { limit } : {}),
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

/** The action of `spn demo`. */
export async function run(o: DemoOptions): Promise<void> {
  await demo(o);
}
