// `npm run bench`: runs the benchmarks, writes one JSON per benchmark to bench/results/<name>.json,
// plots bits/dim against wall-clock time for a Fashion-MNIST run, and regenerates BENCHMARKS.md
// from whatever JSON files are there (so `--only` refreshes one section and keeps the others).
//
//   npm run bench -- [--quick] [--only engine|efficiency|throughput|distributed|sampling|bpd|codec|codec-single|codec-mosaic|ood|report]...
//                    [--device cpu|cuda] [--threads N] [--max-gb N] [--bpd-run DIR]
//                    [--codec-run DIR] [--codec-data SPEC] [--codec-limit N]
//                    [--data-count N] [--data-jpegs N]   (data: --only data)
//                    (paper: --only paper, the CelebA-HQ 256 recipe's stages at full size on CPU)
//                    [--before DIR] [--two-hosts]        (distributed: another build beside this one; two network namespaces)
//                    [--results DIR] [--out BENCHMARKS.md]
//
// `--only report` regenerates BENCHMARKS.md without running anything.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { ArgError } from '../src/errors.js';
import { writeFileAtomic } from '../src/fsutil.js';
import * as torch from '../src/torch/index.js';
import { runEngineBench } from './engine.js';
import { runEfficiencyBench } from './efficiency.js';
import { runIfMain } from './machine.js';
import { runThroughputBench } from './throughput.js';
import { BENCHMARK_NAMES, TRAINED_RUN_BENCHMARKS, plotBpdRun, writeBenchmarksMd, type BenchmarkName, type NotRun, type SamplingResults, type TrainedRunBenchmark } from './report.js';
import { OPT_IN_BENCHMARKS, type OptInBenchmark } from './report.js';

export interface RunOptions {
  quick?: boolean;
  only?: string[];
  device?: 'cpu' | 'cuda';
  threads?: number;
  maxGB?: number;
  bpdRun?: string;
  /** codec and ood (run only when named in --only): the trained run, the data and how many images. */
  codecRun?: string;
  codecData?: string;
  codecLimit?: number;
  /** data (run only when named in --only): training images of the synthetic ImageNet 64 release, and JPEGs. */
  dataCount?: number;
  dataJpegs?: number;
  /** distributed: another checkout of spn measured beside this one, and the two-host runs. */
  before?: string;
  twoHosts?: boolean;
  resultsDir?: string;
  out?: string;
  log?: (line: string) => void;
}

/** The sampling benchmark is someone else's file: load it if it is there. */
interface SamplingModule {
  benchSampling(o: { preset: 'fmnist-cpu' | 'cifar-cpu'; batch: 16 | 64; quick?: boolean; device?: 'cpu' | 'cuda'; threads?: number; log?: (line: string) => void }): SamplingResults['reports'][number];
}

async function loadSampling(): Promise<SamplingModule | null> {
  const specifier = './sampling.js';
  try {
    const mod = (await import(specifier)) as Partial<SamplingModule>;
    return typeof mod.benchSampling === 'function' ? (mod as SamplingModule) : null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') return null;
    throw err;
  }
}

export async function runAll(o: RunOptions = {}): Promise<void> {
  const quick = o.quick ?? false;
  const device = o.device ?? 'cpu';
  const log = o.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const resultsDir = o.resultsDir ?? path.join('bench', 'results');
  const out = o.out ?? 'BENCHMARKS.md';
  const only = o.only?.length ? o.only : [...BENCHMARK_NAMES];
  for (const n of only) {
    if (n !== 'report' && !(BENCHMARK_NAMES as readonly string[]).includes(n) && !(TRAINED_RUN_BENCHMARKS as readonly string[]).includes(n) && !(OPT_IN_BENCHMARKS as readonly string[]).includes(n)) {
      throw new ArgError(`--only ${n}: expected one of ${[...BENCHMARK_NAMES, ...TRAINED_RUN_BENCHMARKS, ...OPT_IN_BENCHMARKS, 'report'].join(', ')}`);
    }
  }
  if (device !== 'cpu' && device !== 'cuda') throw new ArgError(`--device ${String(device)}: expected cpu or cuda`);
  if (o.threads !== undefined) {
    if (!Number.isInteger(o.threads) || o.threads < 1) throw new ArgError(`--threads ${o.threads}: expected a positive integer`);
    torch.setNumThreads(o.threads);
    process.env.SPN_THREADS = String(o.threads); // the efficiency benchmark's child processes
  }
  const command = `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim().replace(/ --$/, '');
  fs.mkdirSync(resultsDir, { recursive: true });
  const save = (name: BenchmarkName | TrainedRunBenchmark | OptInBenchmark, report: object) => {
    writeFileAtomic(path.join(resultsDir, `${name}.json`), JSON.stringify({ ...report, command }, null, 2) + '\n');
  };
  const attempt = async (name: BenchmarkName | TrainedRunBenchmark | OptInBenchmark, fn: () => Promise<object> | object) => {
    if (!only.includes(name)) return;
    log(`\n== ${name}${quick ? ' (quick)' : ''} ==`);
    const t0 = Date.now();
    try {
      save(name, await fn());
    } catch (err) {
      const failed: NotRun = { benchmark: name, status: 'failed', reason: (err as Error).message, date: new Date().toISOString(), command };
      save(name, failed);
      log(`${name} failed: ${(err as Error).message}`);
    }
    log(`${name}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  };

  await attempt('engine', () => runEngineBench({ device, quick, log }));
  await attempt('efficiency', () => runEfficiencyBench({ device, quick, log, ...(o.maxGB !== undefined ? { maxGB: o.maxGB } : {}) }));
  await attempt('throughput', () => runThroughputBench({ device, quick, log }));
  await attempt('distributed', async () => (await import('./distributed.js')).runDistributedBench({ device, quick, log, ...(o.before ? { before: o.before } : {}), twoHosts: o.twoHosts ?? false }));
  await attempt('sampling', async () => {
    const mod = await loadSampling();
    if (!mod) {
      const na: NotRun = { benchmark: 'sampling', status: 'not available', reason: 'bench/sampling.ts (benchSampling) is not in this build', date: new Date().toISOString(), command };
      return na;
    }
    const runs: { preset: 'fmnist-cpu' | 'cifar-cpu'; batch: 16 | 64 }[] = quick
      ? [{ preset: 'fmnist-cpu', batch: 16 }]
      : [{ preset: 'fmnist-cpu', batch: 16 }, { preset: 'fmnist-cpu', batch: 64 }, { preset: 'cifar-cpu', batch: 16 }, { preset: 'cifar-cpu', batch: 64 }];
    // one libtorch thread, as `spn sample` runs (threads.ts: sampling is 'ops' work)
    const reports = runs.map((r) => ({ ...mod.benchSampling({ ...r, quick, device, log, threads: 1 }), command }));
    const res: SamplingResults = { benchmark: 'sampling', status: 'ok', reports };
    return res;
  });
  await attempt('bpd', async () => {
    const dir = o.bpdRun ?? (fs.existsSync(path.join('runs', 'fmnist-30min')) ? path.join('runs', 'fmnist-30min') : null);
    const r = await plotBpdRun(dir, resultsDir, command);
    log(r.status === 'ok' ? `plotted ${r.run} -> ${path.join(resultsDir, r.svg!)}` : `bpd plot: ${r.reason}`);
    return r;
  });
  // Benchmarks of a trained run: run only when named in --only (they are not in BENCHMARK_NAMES).
  const trainedRun = (name: TrainedRunBenchmark): string => {
    if (!o.codecRun) throw new ArgError(`--only ${name} needs --codec-run <run folder> (e.g. the 30-minute fmnist-cpu run)`);
    return o.codecRun;
  };
  await attempt('codec', async () => {
    const run = trainedRun('codec');
    return (await import('./codec.js')).benchCodec({ run, data: o.codecData, limit: o.codecLimit, quick, log });
  });
  await attempt('codec-single', async () => {
    const run = trainedRun('codec-single');
    return (await import('./codec.js')).benchCodecSingle({ run, data: o.codecData, limit: o.codecLimit, quick, log });
  });
  await attempt('codec-mosaic', async () => {
    const run = trainedRun('codec-mosaic');
    return (await import('./codec.js')).benchCodecMosaic({ run, data: o.codecData, limit: o.codecLimit, quick, log });
  });
  await attempt('ood', async () => {
    const run = trainedRun('ood');
    return (await import('./ood.js')).benchOod({ run, limit: o.codecLimit, quick, log });
  });
  await attempt('data', async () =>
    (await import('./data.js')).runDataBench({ quick, log, ...(o.dataCount !== undefined ? { count: o.dataCount } : {}), ...(o.dataJpegs !== undefined ? { jpegs: o.dataJpegs } : {}) }));
  await attempt('paper', async () => (await import('./paper.js')).runPaperBench({ quick, log }));
  writeBenchmarksMd(resultsDir, out);
  log(`\nwrote ${out} from ${resultsDir}/`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string', multiple: true },
      device: { type: 'string', default: 'cpu' },
      threads: { type: 'string' },
      'max-gb': { type: 'string' },
      'bpd-run': { type: 'string' },
      'codec-run': { type: 'string' },
      'codec-data': { type: 'string' },
      'codec-limit': { type: 'string' },
      'data-count': { type: 'string' },
      'data-jpegs': { type: 'string' },
      before: { type: 'string' },
      'two-hosts': { type: 'boolean', default: false },
      results: { type: 'string' },
      out: { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  const num = (flag: string, v: string | undefined): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!(n > 0)) throw new ArgError(`${flag} ${v}: expected a positive number`);
    return n;
  };
  const threads = num('--threads', values.threads);
  const maxGB = num('--max-gb', values['max-gb']);
  await runAll({
    quick: values.quick,
    only: values.only?.flatMap((s) => s.split(',')),
    device: values.device as 'cpu' | 'cuda',
    ...(threads !== undefined ? { threads } : {}),
    ...(maxGB !== undefined ? { maxGB } : {}),
    ...(values['bpd-run'] ? { bpdRun: values['bpd-run'] } : {}),
    ...(values['codec-run'] ? { codecRun: values['codec-run'] } : {}),
    ...(values['codec-data'] ? { codecData: values['codec-data'] } : {}),
    ...(values['codec-limit'] !== undefined ? { codecLimit: num('--codec-limit', values['codec-limit']) } : {}),
    ...(values['data-count'] !== undefined ? { dataCount: num('--data-count', values['data-count']) } : {}),
    ...(values['data-jpegs'] !== undefined ? { dataJpegs: num('--data-jpegs', values['data-jpegs']) } : {}),
    ...(values.before !== undefined ? { before: values.before } : {}),
    twoHosts: values['two-hosts'],
    ...(values.results ? { resultsDir: values.results } : {}),
    ...(values.out ? { out: values.out } : {}),
  });
}

runIfMain(import.meta.url, 'bench', main);
