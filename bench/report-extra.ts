// BENCHMARKS.md sections beyond the per-benchmark ones: the two libtorch builds side by side
// (bench/results/builds/), the codec and out-of-distribution benchmarks of a trained run, and the
// GPU check. Like report.ts, only numbers found in the JSON files are written.
import * as path from 'node:path';
import type { EngineReport } from './engine.js';
import type { ThroughputReport } from './throughput.js';
import type { DistributedReport } from './distributed.js';
import type { CodecMosaicReport, CodecReport, CodecSingleReport, RunTraining } from './codec.js';
import type { OodReport } from './ood.js';
import type { GpuCheckReport } from './gpu-check.js';
import type { MachineInfo } from './machine.js';
import { cell, fmt, int, notRunText, readJson as read, type NotRunFields } from './md.js';

/** The builds compared, by the name in their files' names (engine-<build>.json, …). */
const BUILDS = ['debian', 'torch2'] as const;

/** A build's column title, from its engine report: libtorch version, BLAS, and whether a CUDA build ran on the CPU. */
function buildLabel(name: string, e: EngineReport): string {
  const cuda = e.build.cudaCompiled ? `, CUDA build${e.device === 'cpu' ? ' run on the CPU' : ''}` : '';
  return `\`${name}\`: libtorch ${e.libtorch} (BLAS ${e.blas}${cuda})`;
}

/** The CPU's bf16 support as an engine report records it. */
function bf16Support(e: EngineReport): string {
  if (!e.build.cpuBf16) return 'no bf16 in hardware';
  if (e.build.cpuAmx === undefined) return 'bf16 in hardware: AVX512-BF16 or AMX';
  return e.build.cpuAmx ? 'AMX' : 'AVX512-BF16, no AMX';
}

interface SamplingJson { preset: string; batch: number; cached: { images_per_s: number }; naive: { images_per_s: number }; speedup: number; date: string; machine: MachineInfo }
interface BuildsRun { build: string; minutes: number; steps: number; bpd: number; images: number; command: string }

/** The engine, throughput, sampling, distributed and 10-minute-run results of both builds. */
export function buildsSection(dir: string): string {
  const engine = BUILDS.map((b) => read<EngineReport>(path.join(dir, `engine-${b}.json`)));
  if (engine.some((e) => e === null)) return 'No side-by-side results in `bench/results/builds/` (see the commands below).';
  const [e0, e1] = engine as [EngineReport, EngineReport];
  const head = `| | ${BUILDS.map((b, i) => buildLabel(b, engine[i]!)).join(' | ')} |\n| --- | --: | --: |`;
  const row = (label: string, f: (e: EngineReport) => string) => `| ${label} | ${f(e0)} | ${f(e1)} |`;
  const mm = (dtype: string, n: number) => (e: EngineReport) => fmt(e.matmul.find((m) => m.dtype === dtype && m.n === n)?.gflops, 1);
  const conv = (p: string) => (e: EngineReport) => fmt(e.conv.find((c) => c.precision === p)?.fwd_bwd_ms, 2);
  const att = (p: string, impl: string) => (e: EngineReport) => {
    const a = e.attention.find((x) => x.precision === p && x.impl === impl);
    return a ? `${fmt(a.fwd_bwd_ms, 2)}${impl === 'fused' && !a.fusedOp ? ' (no fused op: composed)' : ''}` : '–';
  };
  const lines = [
    `Same machine, same day (${e0.date.slice(0, 10)}), one after the other on a quiet machine: ${e0.machine.cpus} cores (${e0.machine.cpuModel}, ${bf16Support(e0)}), ${e0.threads} libtorch threads unless said.`,
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
  const tp = BUILDS.map((b) => read<ThroughputReport>(path.join(dir, `throughput-${b}.json`)));
  if (tp.every((t) => t !== null)) {
    for (const preset of ['fmnist-cpu', 'cifar-cpu']) {
      lines.push(row(`${preset} training as \`spn train\` runs it: sub-pixels/s (precision, threads, share of that precision's matmul peak)`, (e) => {
        const t = tp[engine.indexOf(e)]!.presets.find((p) => p.preset === preset);
        return t ? `${int(t.subpixels_per_s)} (${t.precision}, ${t.threads}, ${fmt(100 * t.share_of_peak, 1)}%)` : '–';
      }));
    }
  }
  for (const [preset, batch] of [['fmnist-cpu', 16], ['fmnist-cpu', 64], ['cifar-cpu', 16], ['cifar-cpu', 64]] as const) {
    const s = BUILDS.map((b) => read<SamplingJson>(path.join(dir, `sampling-${b}-${preset}-${batch}.json`)));
    if (s.some((x) => x === null)) continue;
    // measured apart from the engine reports: the day and the CPU are named where they are not theirs
    const apart = [...new Set(s.map((x) => `${x!.date.slice(0, 10)} on ${x!.machine.cpuModel}`))].filter((d) => d !== `${e0.date.slice(0, 10)} on ${e0.machine.cpuModel}`);
    const when = apart.length ? `, measured ${apart.join(' and ')}` : '';
    lines.push(`| ${preset} sampling, batch ${batch}, 1 thread${when}: cached images/s (× the naive sampler) | ${s.map((x) => `${fmt(x!.cached.images_per_s, 2)} (${fmt(x!.speedup, 1)}×)`).join(' | ')} |`);
  }
  const dist = BUILDS.map((b) => read<DistributedReport>(path.join(dir, `distributed-${b}.json`)));
  if (dist.every((d) => d !== null)) {
    lines.push(`| fmnist-cpu, 2 processes × 1 thread against 1 process × 1 thread / × 2 threads | ${dist.map((d) => d!.comparisons.map((c) => `${c.precision}: ${fmt(c.speedup_2_processes, 2)}× / ${fmt(c.processes_over_threads, 2)}×`).join('; ')).join(' | ')} |`);
  }
  const runs = BUILDS.map((b) => read<BuildsRun>(path.join(dir, `fmnist-10min-${b}.json`)));
  if (runs.every((r) => r !== null)) {
    lines.push(`| fmnist-cpu trained 10 minutes: test bits/dim, all 10,000 images (steps) | ${runs.map((r) => `${fmt(r!.bpd, 4)} (${int(r!.steps)})`).join(' | ')} |`);
  }
  lines.push('', 'Commands: `SPN_NATIVE=<addon> node dist/bench/{engine,throughput,sampling,distributed}.js --json bench/results/builds/<name>-<build>.json` (sampling with `--preset P --batch B --threads 1`), and for the 10-minute runs `spn train --preset fmnist-cpu --minutes 10 --seed 0` then `spn eval`.');
  return lines.join('\n');
}

const failedOrMissing = (r: object | null): r is NotRunFields | null => r === null || (r as { status?: string }).status === 'failed';

export function codecSection(dir: string): string {
  const files = ['codec', 'codec-cifar'].map((n) => ({ name: n, r: read<CodecReport | NotRunFields>(path.join(dir, `${n}.json`)) }));
  const reports = files.map((f) => f.r).filter((r): r is CodecReport => !failedOrMissing(r));
  const failed = files.filter((f) => f.r !== null && failedOrMissing(f.r)).map((f) => `- \`${f.name}.json\`: ${notRunText(f.r as NotRunFields, 'codec')}`);
  if (!reports.length) {
    const first = files.find((f) => f.r !== null);
    return notRunText(first ? (first.r as NotRunFields) : null, 'codec', 'npm run bench -- --only codec --codec-run <run>')!;
  }
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
    ...[...new Set(reports.map((r) => r.note).filter((n) => n !== undefined))].map((n) => `\nTimings: ${n}.`),
    ...(failed.length ? ['', ...failed] : []),
  ].join('\n');
}

const trainedText = (t: RunTraining | null): string => (t ? `${int(t.steps)} steps, the last logged after ${fmt(t.seconds / 60, 1)} minutes of wall-clock training` : 'training time not recorded');
const loadText = (l: [number, number] | undefined): string => (l ? `, with the machine's 1-minute load average ${fmt(l[0], 1)} at the start and ${fmt(l[1], 1)} at the end (shared cores: timings are upper bounds)` : '');
const flagsText = (flags: string[]): string => (flags.length ? flags.join(', ') : 'none of avx2, avx512f, avx512_bf16, amx_tile');

/** Single-image files (bench/codec.ts benchCodecSingle) and mosaics (benchCodecMosaic), when their reports are there. */
export function codecTilesSection(dir: string): string {
  const single = read<CodecSingleReport | NotRunFields>(path.join(dir, 'codec-single.json'));
  const mosaic = read<CodecMosaicReport | NotRunFields>(path.join(dir, 'codec-mosaic.json'));
  const parts: string[] = [];
  if (single && !failedOrMissing(single)) {
    const r = single as CodecSingleReport;
    const [png, webp] = [r.baselines.find((b) => b.coder === 'png')!, r.baselines.find((b) => b.coder === 'webp')!];
    parts.push([
      `### One image per file

${r.images} images (${r.data}), each compressed alone into a version 2 \`.spn\` file with \`${r.run}\` (${trainedText(r.trained)}); CPU flags ${flagsText(r.cpu_flags)}; ${r.date.slice(0, 16)} by \`${r.command}\`.`,
      '',
      '| per file | `.spn` | PNG (max compression) | WebP lossless |',
      '| --- | --: | --: | --: |',
      `| mean bytes | ${fmt(r.spn.mean_file_bytes, 1)} (stream ${fmt(r.spn.mean_stream_bytes, 1)} + container ${fmt(r.spn.mean_container_bytes, 1)}, at most ${int(r.spn.max_container_bytes)}) | ${fmt(png.mean_file_bytes, 1)} | ${fmt(webp.mean_file_bytes, 1)} |`,
      `| bits per sub-pixel | ${fmt(r.spn.bits_per_subpixel, 3)} (model NLL ${fmt(r.spn.model_bits_per_subpixel, 3)}) | ${fmt(png.bits_per_subpixel, 3)} | ${fmt(webp.bits_per_subpixel, 3)} |`,
      `| files where \`.spn\` is smaller | | ${r.smaller_than.png}/${r.images} | ${r.smaller_than.webp}/${r.images} |`,
      `| exact round trips | ${r.spn.round_trip_exact}/${r.images} | ${png.round_trip_exact}/${r.images} | ${webp.round_trip_exact}/${r.images} |`,
      '',
      `Encode ${fmt(r.spn.encode_seconds_per_image, 3)} s, decode ${fmt(r.spn.decode_seconds_per_image, 3)} s per image${loadText(r.load_average)} (${r.note}).`,
    ].join('\n'));
  } else if (single) parts.push(`- \`codec-single.json\`: ${notRunText(single as NotRunFields, 'codec-single')}`);
  if (mosaic && !failedOrMissing(mosaic)) {
    const r = mosaic as CodecMosaicReport;
    parts.push([
      `### Large images as tiles

The ${r.images} images of ${r.data} laid out as mosaics, each mosaic one version 2 \`.spn\` file of ${r.tile[1]}×${r.tile[0]} tiles coded in batches of ${r.batch}, with \`${r.run}\` (${trainedText(r.trained)}); CPU flags ${flagsText(r.cpu_flags)}; ${r.date.slice(0, 16)} by \`${r.command}\`.`,
      '',
      '| mosaics | size (W×H) | `.spn` bits/sub-pixel | model NLL | PNG | WebP lossless | encode / decode s per mosaic | exact round trips |',
      '| --- | --- | --: | --: | --: | --: | --: | --: |',
      ...r.summary.map((m) => `| ${m.count} ${m.kind === 'odd' ? '(odd size, edge tiles padded)' : ''} | ${m.width}×${m.height} | ${fmt(m.bits_per_subpixel, 4)} | ${fmt(m.model_bits_per_subpixel, 4)} | ${fmt(m.png_bits_per_subpixel, 3)} | ${fmt(m.webp_bits_per_subpixel, 3)} | ${fmt(m.encode_seconds, 1)} / ${fmt(m.decode_seconds, 1)} | ${m.exact}/${m.count} |`),
      '',
      `Timings${loadText(r.load_average)}: ${r.note}.`,
    ].join('\n'));
  } else if (mosaic) parts.push(`- \`codec-mosaic.json\`: ${notRunText(mosaic as NotRunFields, 'codec-mosaic')}`);
  return parts.join('\n\n');
}

export function oodSection(dir: string): string {
  const r = read<OodReport | NotRunFields>(path.join(dir, 'ood.json'));
  if (failedOrMissing(r)) return notRunText(r, 'ood', 'npm run bench -- --only ood --codec-run <run>')!;
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

const passed = (rs: { ok: boolean }[]): string => `${rs.filter((x) => x.ok).length} of ${rs.length}`;
/** "the distributed check", from "distributed: a 1-rank NCCL group …". */
const checkName = (name: string): string => `the ${name.split(':')[0]!} check`;

function gpuMachine(m: MachineInfo | string | undefined, libtorch: string): string {
  if (m === undefined) return `libtorch ${libtorch}`;
  if (typeof m === 'string') return m;
  return `${m.gpu?.join(', ') ?? 'no GPU'}; ${m.cpuModel}, ${m.cores} of ${m.cpus} CPUs usable, ${m.memGB} GB RAM; libtorch ${libtorch}; Node ${m.node}`;
}

export function gpuSection(dir: string): string {
  const g = read<GpuCheckReport>(path.join(dir, 'gpu-check.json'));
  if (!g) return 'Not run yet: `npm run gpu-check` on a machine with an NVIDIA GPU and PyTorch.';
  const failed = g.results.filter((r) => !r.ok);
  const rerun = g.rerun;
  // the checks that failed in the first run, as the rerun ran them
  const again = rerun ? rerun.results.filter((r) => failed.some((f) => f.name === r.name)) : [];
  const summary = [
    `In the ${g.minutes}-minute run ${passed(g.results)} checks passed${failed.map((f) => `; ${checkName(f.name)} failed: ${f.detail}`).join('')}.`,
    ...(rerun ? [
      `A rerun (${rerun.date.slice(0, 16)}, device ${rerun.device}, ${rerun.minutes}-minute training) passed ${passed(rerun.results)}` +
        `${again.map((r) => `, ${checkName(r.name)} ${r.ok ? 'included' : 'failing again'}`).join('')}: ${rerun.note}.`,
    ] : []),
  ].join(' ');
  return [
    `${gpuMachine(g.machine, g.libtorch)}; ${g.date.slice(0, 16)}${g.command ? `; \`${g.command}\`` : ''}.`,
    '',
    summary,
    '',
    '| check | result | seconds | detail |',
    '| --- | --- | --: | --- |',
    ...g.results.map((r) => `| ${cell(r.name)} | ${r.ok ? 'pass' : 'FAIL'} | ${fmt(r.seconds, 1)} | ${cell(r.detail)} |`),
    ...again.map((r) => `| ${cell(r.name)} (rerun) | ${r.ok ? 'pass' : 'FAIL'} | ${fmt(r.seconds, 1)} | ${cell(r.detail)} |`),
  ].join('\n');
}
