// Data-parallel training throughput: sub-pixels per second of `spn train` itself (the compiled
// CLI, dist/src/cli/main.js, on the preset's data) as one process on one thread, as two processes
// of one thread each (`--nproc 2`: two ranks, Gloo), and as one process on two threads (the
// default on a 2-core CPU with bf16), in the preset's precision as `spn train` resolves it on
// this machine and in fp32. Also the bytes all-reduced per step, and the share of rank 0's step
// time spent in the per-step collectives (gradients and agreement, waiting for the slower rank
// included), as the trainer logs them. On CUDA: one process, and one rank per GPU where there
// are several (NCCL).
//
//   node dist/bench/distributed.js [--device cpu|cuda] [--quick] [--preset NAME] [--json out.json]
//
// Each configuration trains until `warmup + records` train records (10 steps each) are logged,
// then stops with SIGINT as a user would; the throughput is the median of the measured records.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ArgError } from '../src/errors.js';
import * as torch from '../src/torch/index.js';
import { getPreset, parseTrainConfig } from '../src/spn/config.js';
import { SPN } from '../src/spn/model.js';
import { useBf16 } from '../src/train/session.js';
import { checkDevice, emitReport, median, reportHeader, runIfMain, type ReportHeader } from './machine.js';
import { presetModel } from './throughput.js';

const CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');

export interface DistributedEntry {
  /** e.g. "2 processes × 1 thread". */
  label: string;
  processes: number;
  /** libtorch threads of each process. */
  threads: number;
  precision: 'bf16' | 'fp32';
  status: 'ok' | 'failed';
  reason?: string;
  /** Global sub-pixels per second (the whole batch's), median of the measured train records, and each record's. */
  subpixels_per_s: number | null;
  subpixels_per_s_all: number[];
  /** Milliseconds per step at that rate. */
  step_ms: number | null;
  /** Share of rank 0's time in the per-step collectives (median of the records); null for one process. */
  comm_share: number | null;
}

export interface DistributedComparison {
  precision: 'bf16' | 'fp32';
  /** 2 processes × 1 thread over 1 process × 1 thread (the issue's target: at least 1.8). */
  speedup_2_processes: number | null;
  /** speedup_2_processes / 2. */
  scaling_efficiency: number | null;
  /** 2 processes × 1 thread over 1 process × 2 threads: above 1, ranks beat threads. */
  processes_over_threads: number | null;
}

export interface DistributedReport extends ReportHeader<'distributed'> {
  preset: string;
  data: string;
  /** Global batch, and images per rank with 2 ranks. */
  batch: number;
  parameters: number;
  /** The preset's precision as `spn train` resolves it here. */
  preset_precision: 'bf16' | 'fp32';
  /** Gradient bytes all-reduced per step (float32, one per parameter) plus the per-step agreement (4 float64). */
  allreduce_bytes_per_step: number;
  warmup_records: number;
  records: number;
  target: string;
  entries: DistributedEntry[];
  comparisons: DistributedComparison[];
  note?: string;
}

export interface DistributedOptions {
  device?: 'cpu' | 'cuda';
  quick?: boolean;
  preset?: string;
  /** Dataset spec (default fashion-mnist, the data of fmnist-cpu and tiny). */
  data?: string;
  warmupRecords?: number;
  records?: number;
  log?: (line: string) => void;
}

interface Config { processes: number; threads: number; precision: 'bf16' | 'fp32' }

/** Trains with `spn train` until enough train records are logged, then stops it (SIGINT). */
async function measure(c: Config, o: { preset: string; data: string; device: string; warmup: number; records: number; subpixelsPerStep: number; log: (line: string) => void }): Promise<DistributedEntry> {
  const label = `${c.processes} process${c.processes > 1 ? 'es' : ''} × ${c.threads} thread${c.threads > 1 ? 's' : ''}`;
  const base: DistributedEntry = { label, processes: c.processes, threads: c.threads, precision: c.precision, status: 'failed', subpixels_per_s: null, subpixels_per_s_all: [], step_ms: null, comm_share: null };
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'spn-bench-dist-'));
  const run = path.join(out, 'run');
  const args = [
    CLI, 'train', '--preset', o.preset, '--data', o.data, '--out', run, '--steps', '1000000', '--quiet', '--device', o.device,
    '--threads', String(c.threads), '--set', `train.precision=${c.precision}`,
    // nothing but training steps while measuring
    '--set', 'train.evalEverySec=1e9', '--set', 'train.sampleEverySec=1e9', '--set', 'train.checkpointEverySec=1e9',
    ...(c.processes > 1 ? ['--nproc', String(c.processes)] : []),
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const metrics = path.join(run, 'metrics.jsonl');
  const want = o.warmup + o.records;
  let recs: { subpixels_per_s: number; comm_share?: number }[] = [];
  try {
    for (;;) {
      if (fs.existsSync(metrics)) {
        recs = fs.readFileSync(metrics, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as { kind: string; subpixels_per_s: number; comm_share?: number }).filter((r) => (r as { kind?: string }).kind === 'train');
      }
      if (recs.length >= want || child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    child.kill('SIGINT');
    const code = await exited;
    if (recs.length < want) return { ...base, reason: `spn train exited (code ${code}) after ${recs.length} of ${want} train records: ${stderr.trim().split('\n').slice(-3).join(' | ')}` };
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    fs.rmSync(out, { recursive: true, force: true });
  }
  const measured = recs.slice(o.warmup, want);
  const sps = median(measured.map((r) => r.subpixels_per_s));
  const comm = measured.map((r) => r.comm_share).filter((x): x is number => typeof x === 'number');
  const entry: DistributedEntry = {
    ...base, status: 'ok', subpixels_per_s: sps, subpixels_per_s_all: measured.map((r) => r.subpixels_per_s),
    step_ms: (1000 * o.subpixelsPerStep) / sps, comm_share: comm.length ? median(comm) : null,
  };
  o.log(`${label}, ${c.precision}: ${Math.round(sps)} sub-pixels/s, ${entry.step_ms!.toFixed(1)} ms/step${entry.comm_share !== null ? `, ${(100 * entry.comm_share).toFixed(1)}% of the step in collectives` : ''}`);
  return entry;
}

export async function runDistributedBench(opts: DistributedOptions = {}): Promise<DistributedReport> {
  const device = opts.device ?? 'cpu';
  const quick = opts.quick ?? false;
  const log = opts.log ?? (() => {});
  checkDevice(device);
  if (!fs.existsSync(CLI)) throw new ArgError(`${CLI} is missing: build with \`npm run build\` first (the benchmark runs spn train itself)`);
  const preset = opts.preset ?? 'fmnist-cpu';
  const p = getPreset(preset);
  const tc = parseTrainConfig(p.train);
  const data = opts.data ?? 'fashion-mnist';
  const cfg = presetModel(preset);
  const model = new SPN(cfg);
  const parameters = model.numParameters();
  const subpixelsPerStep = tc.batchSize * tc.slicesPerImage * model.dimsPerSlice;
  model.dispose();
  const batch = tc.batchSize;
  const presetPrecision = useBf16(tc.precision, device === 'cuda') ? 'bf16' : 'fp32';
  const warmup = opts.warmupRecords ?? (quick ? 1 : 2);
  const records = opts.records ?? (quick ? 2 : 8);
  const precisions: ('bf16' | 'fp32')[] = quick || presetPrecision === 'fp32' ? [presetPrecision] : [presetPrecision, 'fp32'];
  let configs: Config[];
  let note: string | undefined;
  if (device === 'cuda') {
    const gpus = torch.cuda.deviceCount();
    configs = precisions.flatMap((precision) => [{ processes: 1, threads: 1, precision }, ...(gpus > 1 ? [{ processes: gpus, threads: 1, precision }] : [])]);
    if (gpus < 2) note = `one GPU here: data parallelism on CUDA (NCCL) needs one GPU per rank, so only one process was measured`;
  } else {
    configs = precisions.flatMap((precision) => [{ processes: 1, threads: 1, precision }, { processes: 2, threads: 1, precision }, { processes: 1, threads: 2, precision }]);
  }
  const entries: DistributedEntry[] = [];
  for (const c of configs) entries.push(await measure(c, { preset, data, device, warmup, records, subpixelsPerStep, log }));
  const rate = (precision: string, processes: number, threads: number) => entries.find((e) => e.precision === precision && e.processes === processes && e.threads === threads)?.subpixels_per_s ?? null;
  const comparisons: DistributedComparison[] = device === 'cuda' ? [] : precisions.map((precision) => {
    const [one, two, threads2] = [rate(precision, 1, 1), rate(precision, 2, 1), rate(precision, 1, 2)];
    const speedup = one && two ? two / one : null;
    return { precision, speedup_2_processes: speedup, scaling_efficiency: speedup === null ? null : speedup / 2, processes_over_threads: two && threads2 ? two / threads2 : null };
  });
  for (const c of comparisons) {
    const f = (x: number | null) => (x === null ? '–' : x.toFixed(2));
    log(`${c.precision}: 2 processes = ${f(c.speedup_2_processes)}× one process on one thread (efficiency ${f(c.scaling_efficiency)}); ${f(c.processes_over_threads)}× one process on two threads`);
  }
  return {
    ...reportHeader('distributed', device, quick),
    preset, data, batch, parameters, preset_precision: presetPrecision,
    allreduce_bytes_per_step: parameters * 4 + 4 * 8,
    warmup_records: warmup, records,
    target: '2 processes of 1 thread at least 1.8× one process on 1 thread; where 2 ranks beat 2 threads, ranks should be spn train\'s default on a CPU (train/launch.ts DEFAULT_NPROC)',
    entries, comparisons, ...(note ? { note } : {}),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      json: { type: 'string' },
      device: { type: 'string', default: 'cpu' },
      quick: { type: 'boolean', default: false },
      preset: { type: 'string' },
      data: { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  const report = await runDistributedBench({
    device: values.device as 'cpu' | 'cuda',
    quick: values.quick,
    ...(values.preset ? { preset: values.preset } : {}),
    ...(values.data ? { data: values.data } : {}),
    log: (line) => process.stderr.write(line + '\n'),
  });
  emitReport(report, values.json);
}

runIfMain(import.meta.url, 'bench/distributed', main);
