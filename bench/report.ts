// BENCHMARKS.md from the JSON results in bench/results/, and the bits/dim-vs-wall-clock plot of a
// Fashion-MNIST training run (an SVG rendered headless with vega-lite). Only numbers found in
// those files are written; a missing result says so.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { writeFileAtomic } from '../src/fsutil.js';
import type { ReportHeader } from './machine.js';
import type { EngineReport } from './engine.js';
import type { EfficiencyReport, Measurement } from './efficiency.js';
import type { ThroughputReport } from './throughput.js';
import type { DistributedReport } from './distributed.js';
import { fmt, int, notRunText, readJson } from './md.js';
import { buildsSection, codecSection, codecTilesSection, gpuSection, oodSection } from './report-extra.js';
import { dataSection } from './data-report.js';
import { paperSection } from './paper-report.js';

export const BENCHMARK_NAMES = ['engine', 'efficiency', 'throughput', 'distributed', 'sampling', 'bpd'] as const;
export type BenchmarkName = (typeof BENCHMARK_NAMES)[number];
/** Benchmarks of a trained run (bench/codec.ts, bench/ood.ts): run only when named in --only. */
export const TRAINED_RUN_BENCHMARKS = ['codec', 'codec-single', 'codec-mosaic', 'ood'] as const;
export type TrainedRunBenchmark = (typeof TRAINED_RUN_BENCHMARKS)[number];
/** Benchmarks that write and read tens of GB (bench/data.ts): run only when named in --only. */
export const OPT_IN_BENCHMARKS = ['data', 'paper'] as const;
export type OptInBenchmark = (typeof OPT_IN_BENCHMARKS)[number];

/** What a benchmark that failed or could not run leaves in its JSON file. */
export interface NotRun { benchmark: BenchmarkName | TrainedRunBenchmark | OptInBenchmark; status: 'failed' | 'not available'; reason: string; date: string; command: string }

/** The parts of bench/sampling.ts's report this page shows. */
interface SamplingEntry extends Setup {
  preset: string; batch: number; parameters: number; custom_model?: boolean;
  cached: { images_per_s: number; seconds: number }; naive: { images_per_s: number }; naive_extrapolated_from_pixels: number; speedup: number;
}
export interface SamplingResults { benchmark: 'sampling'; status: 'ok'; reports: SamplingEntry[] }

export interface BpdResult {
  benchmark: 'bpd';
  status: 'ok' | 'missing';
  /** The run folder read, relative to the working directory when possible. */
  run: string;
  reason?: string;
  date: string;
  command: string;
  preset?: string;
  svg?: string; // file name beside the JSON
  test_points?: number;
  train_points?: number;
  minutes?: number;
  final_test_bpd?: number | null;
  best_test_bpd?: number | null;
}

// --- the plot -------------------------------------------------------------------------------------

interface MetricRecord { kind?: string; time_s?: number; bpd?: number; loss_bpd?: number; step?: number }

export function readMetrics(file: string): MetricRecord[] {
  const out: MetricRecord[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as MetricRecord);
    } catch {
      // A line cut by a crash mid-write: skip it.
    }
  }
  return out;
}

/** Renders bits/dim (training loss and test) against minutes of training as SVG. */
export async function renderBpdSvg(records: MetricRecord[], title: string): Promise<string> {
  const points: { minutes: number; bpd: number; series: string }[] = [];
  for (const r of records) {
    if (typeof r.time_s !== 'number') continue;
    if (r.kind === 'train' && typeof r.loss_bpd === 'number') points.push({ minutes: r.time_s / 60, bpd: r.loss_bpd, series: 'train (batch loss)' });
    if (r.kind === 'test' && typeof r.bpd === 'number') points.push({ minutes: r.time_s / 60, bpd: r.bpd, series: 'test (EMA weights)' });
  }
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width: 560,
    height: 320,
    data: { values: points },
    mark: { type: 'line', point: false, strokeWidth: 1.5 },
    encoding: {
      x: { field: 'minutes', type: 'quantitative', title: 'wall-clock time (minutes)' },
      y: { field: 'bpd', type: 'quantitative', title: 'bits/dim', scale: { zero: false } },
      color: { field: 'series', type: 'nominal', title: null, legend: { orient: 'top-right' } },
    },
  };
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Reads a run folder's metrics.jsonl, writes the SVG into resultsDir and returns the record. */
export async function plotBpdRun(runDir: string | null, resultsDir: string, command: string): Promise<BpdResult> {
  const date = new Date().toISOString();
  const shown = (p: string) => (path.isAbsolute(p) ? path.relative(process.cwd(), p) || '.' : p);
  const metrics = runDir ? path.join(runDir, 'metrics.jsonl') : null;
  if (!runDir || !metrics || !fs.existsSync(metrics)) {
    return { benchmark: 'bpd', status: 'missing', run: runDir ? shown(runDir) : 'runs/fmnist-30min', reason: `no metrics.jsonl in ${runDir ? shown(runDir) : 'runs/fmnist-30min'}`, date, command };
  }
  const records = readMetrics(metrics);
  let preset: string | undefined;
  try {
    preset = (JSON.parse(fs.readFileSync(path.join(runDir, 'config.json'), 'utf8')) as { preset?: string }).preset;
  } catch { /* a run without its config still has its metrics */ }
  const tests = records.filter((r) => r.kind === 'test' && typeof r.bpd === 'number');
  const trains = records.filter((r) => r.kind === 'train' && typeof r.loss_bpd === 'number');
  if (!tests.length && !trains.length) {
    return { benchmark: 'bpd', status: 'missing', run: shown(runDir), reason: `${shown(metrics)} holds no train or test records`, date, command };
  }
  const svg = await renderBpdSvg(records, `bits/dim vs wall-clock: run ${path.basename(runDir)} (preset ${preset ?? 'unknown'})`);
  const svgName = 'bpd-vs-time.svg';
  writeFileAtomic(path.join(resultsDir, svgName), svg);
  const last = Math.max(...records.map((r) => r.time_s ?? 0));
  return {
    benchmark: 'bpd', status: 'ok', run: shown(runDir), date, command, ...(preset ? { preset } : {}), svg: svgName,
    test_points: tests.length, train_points: trains.length, minutes: last / 60,
    final_test_bpd: tests.length ? tests[tests.length - 1]!.bpd! : null,
    best_test_bpd: tests.length ? Math.min(...tests.map((r) => r.bpd!)) : null,
  };
}

// --- BENCHMARKS.md --------------------------------------------------------------------------------

const mib = (b: number | null | undefined): string => (b === null || b === undefined ? '–' : (b / 2 ** 20).toFixed(0));
const ratio = (x: number | null): string => (x === null ? '–' : `${x.toFixed(2)}×`);

/** The header fields a section prints as its setup (see reportHeader in bench/machine.ts). */
type Setup = Omit<ReportHeader<string>, 'benchmark'> & { blas?: string };

function setupLines(r: Setup): string {
  const m = r.machine;
  const gpu = m.gpu?.length ? `; GPU ${m.gpu.join(', ')}` : '';
  return [
    `- Machine: ${m.cpuModel}, ${m.cores} of ${m.cpus} CPUs usable, ${m.memGB} GB RAM${gpu}; ${m.platform}; Node ${m.node}`,
    `- libtorch ${r.libtorch}${r.blas ? ` (BLAS: ${r.blas})` : ''}, ${r.threads} intra-op thread(s), device ${r.device}`,
    `- Date: ${r.date}; command: \`${r.command}\``,
    r.quick ? '- **Quick mode**: tiny sizes and few repetitions; these numbers show that the benchmark runs, not how fast anything is.' : '- Full mode.',
  ].join('\n');
}

function engineSection(r: EngineReport): string {
  const rows = r.matmul.map((m) => `| ${m.n} | ${m.dtype} | ${fmt(m.ms, 3)} | ${fmt(m.gflops, 1)} |`);
  const b = r.block;
  return [
    setupLines(r),
    '',
    'Square matmul, median over repetitions:',
    '',
    '| N | dtype | ms | GFLOP/s |',
    '| --: | --- | --: | --: |',
    ...rows,
    '',
    `One pre-norm transformer block, forward + backward (B=${b.batch}, T=${b.seq}, D=${b.width}, ${b.heads} heads), median of ${b.reps} runs of ${b.iters} iterations: ` +
      `TypeScript ${fmt(b.ts_ms)} ms, the same ops from C++ ${fmt(b.cpp_ms)} ms, binding overhead ${fmt(100 * b.overhead, 1)}%.`,
  ].join('\n');
}

function entryName(m: Measurement): string {
  return m.spec.model === 'spn' ? `SPN S=${m.spec.scale}` : 'baseline';
}

function efficiencySection(r: EfficiencyReport): string {
  const s0 = r.entries[0]?.spec;
  const arch = s0 ? `width ${s0.dim}, ${s0.heads} heads, blocks: ${s0.layers} (baseline transformer blocks = SPN decoder blocks; the SPN adds ${s0.condLayers} conditioning blocks), ${s0.bits}-bit softmax` : '';
  const entries = r.entries.map((m) =>
    `| ${entryName(m)} | ${m.spec.image.join('×')} | ${m.spec.batch} | ${m.parameters === null ? '–' : int(m.parameters)} | ${int(m.supervised_per_image)} | ` +
    `${fmt(m.step_ms, 1)} | ${fmt(m.ms_per_image, 1)} | ${fmt(m.us_per_subpixel, 2)} | ${mib(m.peak_bytes)} | ${mib(m.estimated_bytes)} | ${fmt(m.achieved_gflops, 2)} | ${m.status === 'ok' ? `${m.step_ms_all.length} steps` : m.reason ?? m.status} |`);
  const vsS1 = r.comparisons.filter((c) => c.scale > 1).map((c) =>
    `| ${c.image.join('×')} | ${c.scale} | ${ratio(c.vs_s1_time_per_subpixel ?? null)} | ${ratio(c.vs_s1_memory ?? null)} |`);
  const comps = r.comparisons.map((c) =>
    `| ${c.image.join('×')} | ${c.scale} | ${ratio(c.time_per_image_step)} | ${ratio(c.time_per_subpixel)} | ${ratio(c.memory)}${c.memory_estimated !== null ? ` (from the estimate: ${ratio(c.memory_estimated)})` : ''} |`);
  return [
    setupLines(r),
    `- Models: ${arch}. Memory: ${r.isolated ? 'one child process per configuration; CPU: peak resident set (VmHWM) minus the footprint before the model was built; CUDA: allocator peak' : 'measured in-process (peaks of earlier configurations may hide later ones)'}. Configurations estimated above ${fmt(r.max_bytes / 2 ** 30, 1)} GB are skipped (\`--max-gb\`).`,
    '',
    r.compared,
    '',
    'SPN S=1 / SPN S, the main reference (above 1: subscaling is cheaper by that factor):',
    '',
    '| image | S | time per supervised sub-pixel | peak memory |',
    '| --- | --: | --: | --: |',
    ...vsS1,
    '',
    '| model | image | batch | parameters | supervised sub-pixels / image-step | ms / step | ms / image-step | µs / supervised sub-pixel | peak MiB | estimated MiB | GFLOP/s | note |',
    '| --- | --- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --- |',
    ...entries,
    '',
    'Sub-pixel-token transformer / SPN, the second reference (above 1: the SPN is cheaper by that factor):',
    '',
    '| image | S | time per image-step | time per supervised sub-pixel | peak memory |',
    '| --- | --: | --: | --: | --: |',
    ...comps,
  ].join('\n');
}

function throughputSection(r: ThroughputReport): string {
  const rows = r.presets.map((p) =>
    `| ${p.preset} | ${p.model.height}×${p.model.width}×${p.model.channels} | ${p.model.scale} | ${p.model.dim} | ${int(p.parameters)} | ${p.batch} | ${p.precision ?? 'fp32'} | ${p.threads ?? r.threads} | ${fmt(p.step_ms, 1)} | ${int(p.subpixels_per_s)} | ${fmt(p.images_per_s, 1)} | ${fmt(p.train_gflop_per_step, 3)} | ${fmt(p.achieved_gflops, 2)} | ${fmt(100 * p.share_of_peak, 1)}% of ${fmt((p.reference_peak ?? r.peak).gflops, 1)} | ${fmt(p.model_matmul.gflops, 1)} |`);
  return [
    setupLines(r),
    `- Reference peak: ${r.peak.m}×${r.peak.k}×${r.peak.n} float32 matmul, ${fmt(r.peak.gflops, 1)} GFLOP/s (median of ${r.peak.reps}); a bf16 preset is measured against the same matmul in bf16 on its threads.`,
    `- FLOPs: ${r.flops_formula}.`,
    '',
    "Training step as the trainer runs it (the preset's precision and the trainer's thread count; forward, backward, gradient clipping, AdamW, EMA) on one random target slice per image; sub-pixels/s counts the sub-pixels that get a loss (batch × one slice), as the trainer's log does. Median over timed steps after warmup.",
    '',
    '| preset | image | S | width | parameters | batch | precision | threads | ms / step | sub-pixels / s | image-steps / s | GFLOP / step | GFLOP/s | share of the matmul peak (GFLOP/s) in its precision | GFLOP/s of the model\'s MLP matmul alone |',
    '| --- | --- | --: | --: | --: | --: | --- | --: | --: | --: | --: | --: | --: | --: | --: |',
    ...rows,
  ].join('\n');
}

function distributedSection(r: DistributedReport): string {
  if (!Array.isArray(r.presets)) return 'The saved report is of an older version of this benchmark: rerun `npm run bench -- --only distributed`.';
  const pct = (x: number | null) => (x === null ? '–' : `${(100 * x).toFixed(1)}%`);
  const build = (b: string) => (b === 'before' ? `before${r.before?.commit ? ` (${r.before.commit.slice(0, 7)})` : ''}` : 'this');
  const rows = r.entries.map((e) =>
    `| ${e.preset} | ${e.label} | ${build(e.build)} | ${e.precision} | ${e.status === 'ok' ? int(e.subpixels_per_s!) : `failed: ${e.reason ?? ''}`} | ${fmt(e.step_ms, 1)} | ${pct(e.comm_share)} |`);
  const comps = r.comparisons.map((c) =>
    `| ${c.preset} | ${build(c.build)} | ${c.precision} | ${ratio(c.speedup_2_processes)} | ${pct(c.scaling_efficiency)} | ${ratio(c.processes_over_threads)} | ${c.speedup_2_processes === null ? '–' : c.speedup_2_processes >= 1.5 ? 'met' : 'missed'} |`);
  const hosts = r.two_hosts;
  const hostRows = (hosts?.entries ?? []).map((e) =>
    `| ${e.rate} | ${e.mode === 'overlap' ? "the Reducer's buckets (overlapped with backward)" : e.mode === 'one bucket' ? 'one bucket (reduced after backward)' : build('before')} | ${e.status === 'ok' ? fmt(e.step_ms, 1) : `failed: ${e.reason ?? ''}`} | ${e.subpixels_per_s === null ? '–' : int(e.subpixels_per_s)} | ${pct(e.comm_share)} | ${e.rate === '10gbit' && e.mode === 'overlap' && e.comm_share !== null ? (e.comm_share <= 0.1 ? 'met' : 'missed') : ''} |`);
  return [
    setupLines(r),
    ...r.presets.map((p) => `- \`spn train --preset ${p.preset} --data ${p.data}\` itself: global batch ${p.batch}, ${int(p.parameters)} parameters, ${p.precision} (the preset's precision here); ${int(p.allreduce_bytes_per_step)} bytes all-reduced per step (float32 gradients plus the per-step agreement).`),
    `- Stopped by SIGINT after ${r.warmup_records} warm-up and ${r.records} measured train records of 10 steps; no evaluation, samples or checkpoints meanwhile. Sub-pixels/s is global (the whole batch), the median of the measured records.`,
    "- Waiting: the share of rank 0's step spent waiting on the other rank, as the trainer logs it (`comm_share`). This build: the Reducer's exposed communication (all-reduce time after backward's computation ended, from its own timings) plus the per-step agreement. A build that all-reduces after backward: all of its collectives.",
    ...(r.before ? [`- before: ${r.before.dir}${r.before.commit ? ` at ${r.before.commit}` : ''}, measured in the same run.`] : []),
    ...(r.note ? [`- ${r.note}`] : []),
    '',
    '| preset | configuration | build | precision | sub-pixels / s | ms / step | waiting on the other rank |',
    '| --- | --- | --- | --- | --: | --: | --: |',
    ...rows,
    ...(comps.length ? [
      '',
      `Target: ${r.target}.`,
      '',
      '| preset | build | precision | 2 processes / 1 process × 1 thread | scaling efficiency | 2 processes / 1 process × 2 threads | target (≥ 1.5×) |',
      '| --- | --- | --- | --: | --: | --: | --- |',
      ...comps,
    ] : []),
    ...(hosts ? [
      '',
      `Two hosts: two network namespaces joined by a veth pair, each end's sending side limited by \`tc qdisc ... tbf\`, one rank of ${hosts.preset} in each (1 thread each).${hosts.note ? ` ${hosts.note}.` : ''}`,
      '',
      '| link | gradient reduction | ms / step | sub-pixels / s | waiting on the other rank | target (≤ 10% at 10 Gbit/s) |',
      '| --- | --- | --: | --: | --: | --- |',
      ...hostRows,
    ] : []),
  ].join('\n');
}

function samplingSection(r: SamplingResults): string {
  const first = r.reports[0];
  if (!first) return 'No sampling results.';
  const rows = r.reports.map((s) =>
    `| ${s.preset}${s.custom_model ? ' (custom model)' : ''} | ${s.batch} | ${int(s.parameters)} | ${fmt(s.cached.seconds, 1)} | ${fmt(s.cached.images_per_s, 3)} | ${fmt(s.naive.images_per_s, 5)} (from ${s.naive_extrapolated_from_pixels} pixels) | ${fmt(s.speedup, 1)}× |`);
  return [
    setupLines(first),
    '',
    'Cached sampler (context embedded once per slice, incremental decoder) against the naive one (a full forward pass per sub-pixel, timed on the first pixels of slice 0, as many as the table says, and extrapolated); freshly initialised weights.',
    '',
    '| preset | batch | parameters | cached: seconds for the batch | cached images/s | naive images/s | speedup |',
    '| --- | --: | --: | --: | --: | --: | --: |',
    ...rows,
  ].join('\n');
}

function bpdSection(r: BpdResult | null, resultsDir: string, outDir: string): string {
  if (!r) return 'No result yet: run `npm run bench -- --only bpd`.';
  if (r.status !== 'ok' || !r.svg) {
    return `No Fashion-MNIST training run to plot (${r.reason ?? 'missing'}; checked ${r.date}). Train one, e.g. \`spn train --data fashion-mnist --preset fmnist-cpu --minutes 30 --out runs/fmnist-30min\`, then run \`npm run bench -- --only bpd\` (or \`--bpd-run <dir>\`).`;
  }
  const rel = path.relative(outDir, path.join(resultsDir, r.svg)).split(path.sep).join('/');
  return [
    `Run \`${r.run}\`${r.preset ? ` (preset ${r.preset})` : ''}: ${r.train_points} training-loss points and ${r.test_points} test evaluations over ${fmt(r.minutes, 1)} minutes; ` +
      `last test bits/dim ${fmt(r.final_test_bpd, 4)}, best ${fmt(r.best_test_bpd, 4)}. Plotted ${r.date} by \`${r.command}\`.` +
      (r.preset && r.preset !== 'fmnist-cpu' ? ` Note: this run used preset ${r.preset}, not fmnist-cpu.` : ''),
    '',
    `![bits/dim vs wall-clock time](${rel})`,
  ].join('\n');
}

/** BENCHMARKS.md's text from the JSON files in resultsDir; image links are relative to outDir. */
export function renderBenchmarksMd(resultsDir: string, outDir: string): string {
  const section = <T>(name: BenchmarkName, title: string, body: (r: T) => string): string => {
    const r = readJson<T | NotRun>(path.join(resultsDir, `${name}.json`));
    const missing = notRunText(r as NotRun | null, name);
    return `## ${title}\n\n${missing ?? body(r as T)}\n`;
  };
  const resultsRel = path.relative(outDir, resultsDir).split(path.sep).join('/') || '.';
  return [
    '# Benchmarks',
    '',
    `Generated by \`npm run bench\` (bench/run.ts) from the JSON files in \`${resultsRel}/\`; regenerate rather than edit. ` +
      'Times are medians over repeated runs after warmup. Each section names the machine, the libtorch build, the date and the command that produced it. ' +
      'Quick-mode sections (`--quick`) use tiny sizes: they check that the benchmark runs and say nothing about speed.',
    '',
    section<EngineReport>('engine', 'Engine: matmul and the binding\'s overhead', engineSection),
    section<EfficiencyReport>('efficiency', 'Efficiency: SPN against the fully autoregressive baseline', efficiencySection),
    section<ThroughputReport>('throughput', 'Training throughput per preset', throughputSection),
    section<DistributedReport>('distributed', 'Data-parallel training: processes against threads, and over a link', distributedSection),
    section<SamplingResults>('sampling', 'Sampling speed', samplingSection),
    `## Bits/dim against wall-clock time (Fashion-MNIST, fmnist-cpu)\n\n${bpdSection(readJson<BpdResult>(path.join(resultsDir, 'bpd.json')), resultsDir, outDir)}\n`,
    `## The two libtorch builds side by side\n\n${buildsSection(path.join(resultsDir, 'builds'))}\n`,
    `## Lossless compression (spn compress)\n\n${codecSection(resultsDir)}\n${codecTilesSection(resultsDir) ? `\n${codecTilesSection(resultsDir)}\n` : ''}`,
    `## Out-of-distribution detection (spn score --ood)\n\n${oodSection(resultsDir)}\n`,
    `## GPU check (npm run gpu-check)\n\n${gpuSection(resultsDir)}\n`,
    `## Datasets at the paper's sizes (the data cache)\n\n${dataSection(resultsDir)}\n`,
    `## The CelebA-HQ 256 recipe at its real size, on CPU (--only paper)\n\n${paperSection(resultsDir)}\n`,
  ].join('\n');
}

export function writeBenchmarksMd(resultsDir: string, outFile: string): void {
  writeFileAtomic(outFile, renderBenchmarksMd(resultsDir, path.dirname(path.resolve(outFile))));
}
