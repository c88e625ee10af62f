// BENCHMARKS.md sections beyond the per-benchmark ones: the two libtorch builds side by side
// (bench/results/builds/), the codec and out-of-distribution benchmarks of a trained run, and the
// GPU check. Like report.ts, only numbers found in the JSON files are written.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { EngineReport } from './engine.js';
import type { ThroughputReport } from './throughput.js';
import type { DistributedReport } from './distributed.js';
import type { CodecReport } from './codec.js';
import type { OodReport } from './ood.js';

const fmt = (x: number | null | undefined, d = 2): string => (x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(d));
/** Text in a table cell: its pipes escaped. */
const cell = (s: string): string => s.replace(/\|/g, '\\|');
const int = (x: number | null | undefined): string => (x === null || x === undefined ? '–' : Math.round(x).toLocaleString('en-US'));

function read<T>(file: string): T | null {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return null;
  }
}

export const BUILDS = [['debian', "Debian's libtorch 1.13 (OpenBLAS)"], ['torch2', 'PyTorch 2.11 wheel (MKL, CUDA build run on the CPU)']] as const;

interface SamplingJson { preset: string; batch: number; cached: { images_per_s: number }; naive: { images_per_s: number }; speedup: number; date: string }
interface BuildsRun { build: string; minutes: number; steps: number; bpd: number; images: number; command: string }

/** The engine, throughput, sampling, distributed and 10-minute-run results of both builds. */
export function buildsSection(dir: string): string {
  const engine = BUILDS.map(([b]) => read<EngineReport>(path.join(dir, `engine-${b}.json`)));
  if (engine.some((e) => e === null)) return 'No side-by-side results in `bench/results/builds/` (see the commands below).';
  const [e0, e1] = engine as [EngineReport, EngineReport];
  const head = `| | ${BUILDS.map(([, name]) => name).join(' | ')} |\n| --- | --: | --: |`;
  const row = (label: string, f: (e: EngineReport) => string) => `| ${label} | ${f(e0)} | ${f(e1)} |`;
  const mm = (dtype: string, n: number) => (e: EngineReport) => fmt(e.matmul.find((m) => m.dtype === dtype && m.n === n)?.gflops, 1);
  const conv = (p: string) => (e: EngineReport) => fmt(e.conv.find((c) => c.precision === p)?.fwd_bwd_ms, 2);
  const att = (p: string, impl: string) => (e: EngineReport) => {
    const a = e.attention.find((x) => x.precision === p && x.impl === impl);
    return a ? `${fmt(a.fwd_bwd_ms, 2)}${impl === 'fused' && !a.fusedOp ? ' (no fused op: composed)' : ''}` : '–';
  };
  const lines = [
    `Same machine, same day (${e0.date.slice(0, 10)}), one after the other on a quiet machine: ${e0.machine.cpus} cores (${e0.machine.cpuModel}, AVX512-BF16, no AMX), ${e0.threads} libtorch threads unless said.`,
    '',
    head,
    row('matmul fp32 2048³, GFLOP/s', mm('float32', 2048)),
    row('matmul bf16 2048³, GFLOP/s', mm('bfloat16', 2048)),
    row('3×3 conv 32×96×7×7, fp32, forward+backward, ms', conv('fp32')),
    row('3×3 conv, bf16, forward+backward, ms', conv('bf16')),
    row('attention B 32, 4 heads, T 49, fp32 fused / composed, fwd+bwd ms', (e) => `${att('fp32', 'fused')(e)} / ${att('fp32', 'composed')(e)}`),
    row('attention, bf16 fused / composed, fwd+bwd ms', (e) => `${att('bf16', 'fused')(e)} / ${att('bf16', 'composed')(e)}`),
    row('binding overhead (transformer block, TypeScript vs C++)', (e) => `${fmt(100 * e.block.overhead, 1)}%`),
  ];
  const tp = BUILDS.map(([b]) => read<ThroughputReport>(path.join(dir, `throughput-${b}.json`)));
  if (tp.every((t) => t !== null)) {
    for (const preset of ['fmnist-cpu', 'cifar-cpu']) {
      lines.push(row(`${preset} training as \`spn train\` runs it: sub-pixels/s (precision, threads, share of that precision's matmul peak)`, (e) => {
        const t = tp[engine.indexOf(e)]!.presets.find((p) => p.preset === preset);
        return t ? `${int(t.subpixels_per_s)} (${t.precision}, ${t.threads}, ${fmt(100 * t.share_of_peak, 1)}%)` : '–';
      }));
    }
  }
  for (const [preset, batch] of [['fmnist-cpu', 16], ['fmnist-cpu', 64], ['cifar-cpu', 16], ['cifar-cpu', 64]] as const) {
    const s = BUILDS.map(([b]) => read<SamplingJson>(path.join(dir, `sampling-${b}-${preset}-${batch}.json`)));
    if (s.some((x) => x === null)) continue;
    lines.push(`| ${preset} sampling, batch ${batch}, 1 thread: cached images/s (× the naive sampler) | ${s.map((x) => `${fmt(x!.cached.images_per_s, 2)} (${fmt(x!.speedup, 1)}×)`).join(' | ')} |`);
  }
  const dist = BUILDS.map(([b]) => read<DistributedReport>(path.join(dir, `distributed-${b}.json`)));
  if (dist.every((d) => d !== null)) {
    lines.push(`| fmnist-cpu, 2 processes × 1 thread against 1 process × 1 thread / × 2 threads | ${dist.map((d) => d!.comparisons.map((c) => `${c.precision}: ${fmt(c.speedup_2_processes, 2)}× / ${fmt(c.processes_over_threads, 2)}×`).join('; ')).join(' | ')} |`);
  }
  const runs = BUILDS.map(([b]) => read<BuildsRun>(path.join(dir, `fmnist-10min-${b}.json`)));
  if (runs.every((r) => r !== null)) {
    lines.push(`| fmnist-cpu trained 10 minutes: test bits/dim, all 10,000 images (steps) | ${runs.map((r) => `${fmt(r!.bpd, 4)} (${int(r!.steps)})`).join(' | ')} |`);
  }
  lines.push('', 'Commands: `SPN_NATIVE=<addon> node dist/bench/{engine,throughput,sampling,distributed}.js --json bench/results/builds/<name>-<build>.json` (sampling with `--preset P --batch B --threads 1`), and for the 10-minute runs `spn train --preset fmnist-cpu --minutes 10 --seed 0` then `spn eval`.');
  return lines.join('\n');
}

export function codecSection(dir: string): string {
  const reports = ['codec', 'codec-cifar'].map((n) => read<CodecReport>(path.join(dir, `${n}.json`))).filter((r): r is CodecReport => r !== null && (r as { status?: string }).status !== 'failed');
  if (!reports.length) return 'Not run yet: `npm run bench -- --only codec --codec-run <run>`.';
  const rows = reports.map((r) => {
    const coder = (name: string) => r.baselines.find((b) => b.coder.toLowerCase() === name);
    const [png, webp, jxl] = [coder('png'), coder('webp'), coder('jxl')];
    return `| ${r.data} (${r.images} images) | \`${r.run}\` | ${fmt(r.spn.bits_per_subpixel, 4)} | ${fmt(r.spn.stream_bits_per_subpixel, 4)} | ${fmt(r.spn.model_nll_bits_per_subpixel, 4)} | ${fmt(r.spn.overhead_percent, 3)}% | ${int(r.spn.header_bytes)} B + ${fmt(r.spn.record_bytes / r.images, 1)} B/image; termination ${fmt(r.spn.termination_bytes_per_image, 2)} B/image | ${fmt(png?.bits_per_subpixel, 3)} | ${fmt(webp?.bits_per_subpixel, 3)} | ${jxl ? fmt(jxl.bits_per_subpixel, 3) : 'not available here'} | ${fmt(r.spn.encode_images_per_s, 1)} / ${fmt(r.spn.decode_images_per_s, 1)} | ${r.spn.round_trip_exact}/${r.images} |`;
  });
  return [
    `Bits per sub-pixel of whole files, headers counted; the round trip of every image is checked (equality and a sha256). Machine: ${reports[0]!.machine.cpus} cores; ${reports[0]!.libtorch}; one libtorch thread (the codec's fixed count). ${reports.map((r) => `${r.data}: ${r.date.slice(0, 16)} by \`${r.command}\``).join('; ')}.`,
    '',
    '| images | model | .spn file | coded streams | model NLL (`spn eval`) | overhead of the streams | header, records, termination | PNG (max compression) | WebP lossless | JPEG XL lossless | encode / decode images/s | exact round trips |',
    '| --- | --- | --: | --: | --: | --: | --- | --: | --: | --: | --: | --: |',
    ...rows,
  ].join('\n');
}

export function oodSection(dir: string): string {
  const r = read<OodReport>(path.join(dir, 'ood.json'));
  if (!r || (r as { status?: string }).status === 'failed') return 'Not run yet: `npm run bench -- --only ood --codec-run <run>`.';
  return [
    `Model \`${r.run}\`; ${r.date.slice(0, 16)}, \`${r.command}\`. AUROC of flagging the second set as out of distribution (1 = perfect, 0.5 = chance, below 0.5 = the wrong way round). The corrected score (Serrà et al., ICLR 2020) is the model's code length minus a generic lossless compressor's, both in bits, the compressor's header bytes removed.`,
    '',
    '| set | images | mean bits/dim (model) | PNG bits/dim | WebP bits/dim |',
    '| --- | --: | --: | --: | --: |',
    ...r.sets.map((s) => `| ${s.name} | ${s.images} | ${fmt(s.mean_bpd, 3)} | ${fmt(s.mean_png_bpd, 3)} | ${fmt(s.mean_webp_bpd, 3)} |`),
    '',
    '| in → out | raw likelihood | corrected (PNG) | corrected (WebP) |',
    '| --- | --: | --: | --: |',
    ...r.comparisons.map((c) => `| ${c.in} → ${c.out} | ${fmt(c.auroc_likelihood, 3)} | ${fmt(c.auroc_corrected_png, 3)} | ${fmt(c.auroc_corrected_webp, 3)} |`),
    '',
    ...Object.entries(r.conversions).map(([k, v]) => `- ${k}: ${v}`),
  ].join('\n');
}

interface GpuCheck { machine: string; command: string; run: { date: string; results: { name: string; ok: boolean; seconds: number; detail: string }[]; throughput: Record<string, number | string> | null }; rerun_nccl_with_cuda0?: { note: string; results: { name: string; ok: boolean; detail: string }[] } }

export function gpuSection(dir: string): string {
  const g = read<GpuCheck>(path.join(dir, 'gpu-check.json'));
  if (!g) return 'Not run yet: `npm run gpu-check` on a machine with an NVIDIA GPU and PyTorch.';
  const rerun = g.rerun_nccl_with_cuda0?.results.find((r) => r.name.startsWith('distributed'));
  return [
    `${g.machine}; ${g.run.date.slice(0, 16)}; \`${g.command}\`.`,
    '',
    '| check | result | seconds | detail |',
    '| --- | --- | --: | --- |',
    ...g.run.results.map((r) => `| ${cell(r.name)} | ${r.ok ? 'pass' : 'FAIL'} | ${fmt(r.seconds, 1)} | ${cell(r.detail)} |`),
    ...(rerun ? [`| ${cell(rerun.name)} (rerun) | ${rerun.ok ? 'pass' : 'FAIL'} | | ${cell(`${g.rerun_nccl_with_cuda0!.note}: ${rerun.detail}`)} |`] : []),
  ].join('\n');
}
