// The efficiency and throughput benchmarks at tiny sizes, in-process: they run and report the
// documented JSON; the baseline is causal; BENCHMARKS.md renders from fixture JSON into a temp dir.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';
import { RasterTransformer } from '../../bench/baseline.js';
import { estimate, runEfficiencyBench, type EfficiencyReport } from '../../bench/efficiency.js';
import { runThroughputBench, type ThroughputReport } from '../../bench/throughput.js';
import { plotBpdRun, renderBenchmarksMd, writeBenchmarksMd, type NotRun } from '../../bench/report.js';
import { gpuSection } from '../../bench/report-extra.js';
import type { GpuCheckReport, GpuCheckRun } from '../../bench/gpu-check.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'spn-bench-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const tinyEfficiency = { quick: true, isolate: false, sizes: [[4, 4, 3]] as [number, number, number][], scales: [1, 2], dim: 8, heads: 2, layers: 1, condLayers: 1, batch: 1, warmup: 1, reps: 2 };
let efficiency: EfficiencyReport;
let throughput: ThroughputReport;

describe('baseline', () => {
  it('is causal over the raster order of sub-pixels', () => {
    torch.manualSeed(0);
    const m = new RasterTransformer({ height: 3, width: 3, channels: 3, bits: 3, dim: 8, heads: 2, layers: 2 });
    torch.tidy(() => {
      const x = torch.randint(0, 8, [1, 3, 3, 3]);
      const j = 13; // a sub-pixel in the middle: row 1, column 1, channel 1
      const vals = x.data() as BigInt64Array;
      const changed = BigInt64Array.from(vals);
      changed[j] = (vals[j]! + 1n) % 8n;
      const a = m.forward({ x });
      const b = m.forward({ x: torch.fromArray(changed, [1, 3, 3, 3]) });
      const d = Array.from(a.sub(b).abs().sum([0, 2]).toFloat32()); // (27,): change of each position's logits
      expect(Math.max(...d.slice(0, j + 1))).toBe(0); // positions up to j never see sub-pixel j
      expect(d[j + 1]!).toBeGreaterThan(0);
      expect(m.nll({ x }).shape).toEqual([1]);
    });
    m.dispose();
  });
});

describe('efficiency (quick, in-process)', () => {
  it('measures the baseline and the SPNs and compares them', () => {
    efficiency = runEfficiencyBench(tinyEfficiency);
    const r = JSON.parse(JSON.stringify(efficiency)) as EfficiencyReport;
    expect(r.benchmark).toBe('efficiency');
    expect(r.isolated).toBe(false);
    expect(r.entries.map((e) => [e.spec.model, e.spec.scale])).toEqual([['baseline', 1], ['spn', 1], ['spn', 2]]);
    for (const e of r.entries) {
      expect(e.status).toBe('ok');
      expect(e.step_ms_all).toHaveLength(2);
      expect(e.step_ms).toBeGreaterThan(0);
      expect(e.ms_per_image).toBeCloseTo(e.step_ms!, 6);
      expect(e.parameters).toBeGreaterThan(0);
      expect(e.memory_method).toBe('rss-in-process');
      expect(e.train_gflop_per_step).toBeGreaterThan(0);
    }
    expect(r.entries.map((e) => e.supervised_per_image)).toEqual([48, 48, 12]);
    expect(r.comparisons).toHaveLength(2);
    const c = r.comparisons[1]!;
    const [b, s2] = [r.entries[0]!, r.entries[2]!];
    expect(c.time_per_image_step).toBeCloseTo(b.ms_per_image! / s2.ms_per_image!, 6);
    // Per supervised sub-pixel the S=2 SPN is charged for 4 steps per image.
    expect(c.time_per_subpixel).toBeCloseTo(c.time_per_image_step! / 4, 6);
    // The main reference: SPN S=1 against S=2, per supervised sub-pixel and in peak memory (a ratio
    // only where both peaks were measured above the footprint: in-process, an earlier peak may hide a later one).
    const s1 = r.entries[1]!;
    expect(r.comparisons.map((x) => x.scale)).toEqual([1, 2]);
    expect(c.vs_s1_time_per_subpixel).toBeCloseTo(s1.us_per_subpixel! / s2.us_per_subpixel!, 6);
    if (s1.peak_bytes! > 0 && s2.peak_bytes! > 0) expect(c.vs_s1_memory).toBeCloseTo(s1.peak_bytes! / s2.peak_bytes!, 6);
    else expect(c.vs_s1_memory).toBeNull();
    // S=1 against the baseline: the same sub-pixels supervised per image, so both ratios agree.
    const c1 = r.comparisons[0]!;
    expect(c1.time_per_image_step).toBeCloseTo(b.ms_per_image! / s1.ms_per_image!, 6);
    expect(c1.time_per_subpixel).toBeCloseTo(c1.time_per_image_step!, 6);
  });

  it('skips what would not fit and records the estimate instead', () => {
    const r = runEfficiencyBench({ ...tinyEfficiency, scales: [2], maxGB: 1e-9 });
    for (const e of r.entries) {
      expect(e.status).toBe('skipped');
      expect(e.reason).toMatch(/would need ~[\d.]+ GB/);
      expect(e.estimated_bytes).toBeGreaterThan(0);
      expect(e.step_ms).toBeNull();
    }
    expect(r.comparisons[0]!.time_per_image_step).toBeNull();
  });

  it('counts materialised attention scores only where libtorch has no fused attention', () => {
    const spec = { model: 'baseline' as const, scale: 1, image: [64, 64, 3] as [number, number, number], batch: 1, dim: 64, heads: 4, layers: 2, condLayers: 2, bits: 8, warmup: 1, reps: 1, minSeconds: 0, maxSeconds: 1, device: 'cpu' as const };
    const composed = estimate(spec, false);
    const fused = estimate(spec, true);
    // 12,288 tokens, 4 heads, fp32: one layer's scores are 2.25 GiB, and the composed estimate holds several.
    expect(composed.attentionMatrix).toBe(4 * 12288 * 12288 * 4);
    expect(composed.bytes - fused.bytes).toBeGreaterThan(2 * composed.attentionMatrix);
    expect(fused.bytes).toBeLessThan(1 * 2 ** 30);
  });
});

describe('throughput (quick)', () => {
  it('reports sub-pixels per second and the share of the matmul peak', () => {
    throughput = runThroughputBench({ quick: true, presets: ['tiny'], batch: 2, warmup: 1, reps: 2, peakSize: 32 });
    const r = JSON.parse(JSON.stringify(throughput)) as ThroughputReport;
    expect(r.benchmark).toBe('throughput');
    expect(r.peak.gflops).toBeGreaterThan(0);
    const p = r.presets[0]!;
    expect(p.preset).toBe('tiny');
    expect(p.subpixels_per_step).toBe(2 * 4 * 4 * 1); // batch × one 4×4 slice of an 8×8×1 image
    expect(p.subpixels_per_s).toBeCloseTo(p.subpixels_per_step / (p.step_ms / 1000), 6);
    // 'tiny' trains in fp32 ('auto' on CPU), so its reference is the report's fp32 peak
    expect(p.precision).toBe('fp32');
    expect(p.threads).toBe(1); // SPN_THREADS=1 under vitest, as `spn train` would take it
    expect(p.reference_peak).toEqual(r.peak);
    expect(p.share_of_peak).toBeCloseTo(p.achieved_gflops / r.peak.gflops, 6);
    expect(p.train_gflop_per_step).toBeGreaterThan(0);
  });
});

describe('BENCHMARKS.md', () => {
  it('renders from fixture JSON into a temp dir, plot included', async () => {
    const results = path.join(tmp, 'results');
    fs.mkdirSync(results, { recursive: true });
    const write = (name: string, obj: object) => fs.writeFileSync(path.join(results, `${name}.json`), JSON.stringify(obj));
    write('efficiency', efficiency);
    write('throughput', throughput);
    write('sampling', { benchmark: 'sampling', status: 'not available', reason: 'bench/sampling.ts is not in this build', date: '2025-01-01T00:00:00Z', command: 'npm run bench' } satisfies NotRun);
    const bpd = await plotBpdRun(path.join('test', 'fixtures', 'run-fixture'), results, 'npm run bench -- --only bpd');
    expect(bpd.status).toBe('ok');
    write('bpd', bpd);
    const svg = fs.readFileSync(path.join(results, 'bpd-vs-time.svg'), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('bits/dim');

    const out = path.join(tmp, 'doc', 'BENCHMARKS.md');
    writeBenchmarksMd(results, out);
    const md = fs.readFileSync(out, 'utf8');
    expect(md).toContain('## Efficiency: SPN against the fully autoregressive baseline');
    expect(md).toContain('| SPN S=2 | 4×4×3 |');
    expect(md).toContain('| tiny | 8×8×1 |');
    expect(md).toContain('**Quick mode**');
    expect(md).toContain('No result yet: run `npm run bench -- --only engine`.');
    expect(md).toContain('Not available');
    expect(md).toContain('![bits/dim vs wall-clock time](../results/bpd-vs-time.svg)');
    expect(md).toContain(`libtorch ${efficiency.libtorch}`);
  });

  it('says so when there is no training run to plot', async () => {
    const results = path.join(tmp, 'empty');
    fs.mkdirSync(results, { recursive: true });
    const bpd = await plotBpdRun(path.join(tmp, 'no-such-run'), results, 'npm run bench');
    expect(bpd.status).toBe('missing');
    fs.writeFileSync(path.join(results, 'bpd.json'), JSON.stringify(bpd));
    const md = renderBenchmarksMd(results, tmp);
    expect(md).toContain('No Fashion-MNIST training run to plot');
    expect(fs.existsSync(path.join(results, 'bpd-vs-time.svg'))).toBe(false);
  });

  it('renders the GPU check as gpu-check.ts writes it, a rerun of a failed check included', () => {
    const dir = path.join(tmp, 'gpu');
    fs.mkdirSync(dir, { recursive: true });
    const run = (device: string, minutes: number, nccl: boolean): GpuCheckRun => ({
      benchmark: 'gpu-check', machine: { cpus: 16, cpuModel: 'cpu', cores: 16, memGB: 128, platform: 'linux', node: 'v20', gpu: ['NVIDIA X, 1000 MiB'] },
      libtorch: '2.11.0', threads: 16, device, date: '2026-01-02T03:04:05.000Z', command: 'gpu-check.js', quick: false,
      gpu: '1 CUDA device(s)', preset: 'imagenet32-gpu', data: 'cifar10:d', minutes,
      results: [{ name: 'ops: equal the CPU', ok: true, seconds: 0.25, detail: 'max |d| 1e-5' }, { name: 'distributed: NCCL', ok: nccl, seconds: 0.5, detail: nccl ? 'fine' : "needs 'cuda:N'" }],
      throughput: null,
    });
    const report: GpuCheckReport = { ...run('cuda', 3, false), rerun: { note: 'the device was cuda', ...run('cuda:0', 0.1, true) } };
    fs.writeFileSync(path.join(dir, 'gpu-check.json'), JSON.stringify(report));
    const md = gpuSection(dir);
    expect(md).toContain('NVIDIA X, 1000 MiB; cpu, 16 of 16 CPUs usable');
    expect(md).toContain("In the 3-minute run 1 of 2 checks passed; the distributed check failed: needs 'cuda:N'.");
    expect(md).toContain('A rerun (2026-01-02T03:04, device cuda:0, 0.1-minute training) passed 2 of 2, the distributed check included: the device was cuda.');
    expect(md).toContain('| ops: equal the CPU | pass | 0.3 | max \\|d\\| 1e-5 |');
    expect(md).toContain('| distributed: NCCL (rerun) | pass | 0.5 | fine |');
    expect(md).not.toContain('ops: equal the CPU (rerun)');
  });
});
