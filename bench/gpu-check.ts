// The GPU check (`npm run gpu-check`, scripts/gpu-check.sh): on a machine with an NVIDIA GPU and
// PyTorch, after the addon is built against that PyTorch, runs the checks that have a CUDA variant
// and a short training run, and prints what they measured.
//
//   node dist/bench/gpu-check.js [--device cuda] [--minutes 3] [--data SPEC] [--preset imagenet32-gpu] [--work DIR]
//                                [--json FILE [--rerun-note TEXT]]
//
// Checks, each PASS or FAIL with its numbers: CUDA ops and autograd against the CPU, bf16 autocast,
// a training step through the trainer, the cached sampler against the naive one (same seed, same
// images), a 1-rank NCCL group; then `imagenet32-gpu` trained for --minutes on --data (default the
// CIFAR-10 subset), reporting sub-pixels/s, peak memory and the share of the bf16 matmul peak.
// --device cpu runs the same script on a CPU (to test the script itself; NCCL is skipped), best
// with --preset tiny.
//
// The report (GpuCheckReport: the header every benchmark writes, then the checks) goes to stdout
// after the PASS/FAIL lines, and with --json to FILE. With --rerun-note, FILE must hold an earlier
// report: this run is added to it as its `rerun`, with the note saying why it was run again.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { ArgError } from '../src/errors.js';
import * as torch from '../src/torch/index.js';
import { parseModelConfig } from '../src/spn/config.js';
import { SPN } from '../src/spn/model.js';
import { sample, sampleNaive } from '../src/spn/sample.js';
import { train } from '../src/train/trainer.js';
import { measureMatmul, spnForwardMacs } from './flops.js';
import { readRunConfig } from '../src/store/run.js';
import { emitReport, reportHeader, runIfMain, type MachineInfo, type ReportHeader } from './machine.js';

export interface CheckResult { name: string; ok: boolean; seconds: number; detail: string }

/**
 * One run of the checks as --json writes it. The optional header fields are absent only from the
 * first committed report (bench/results/gpu-check.json, 2026-11-29), assembled by hand before this
 * script wrote its own: its machine is a line of text (nvidia-smi and what else was known then),
 * and its rerun has no machine or command.
 */
export interface GpuCheckRun extends Omit<ReportHeader<'gpu-check'>, 'machine' | 'threads' | 'command' | 'quick'> {
  machine?: MachineInfo | string;
  threads?: number;
  command?: string;
  quick?: boolean;
  /** How many CUDA devices libtorch sees ("N CUDA device(s)", or "none"). */
  gpu: string;
  /** The training run: preset, data and minutes. */
  preset: string;
  data: string;
  minutes: number;
  results: CheckResult[];
  throughput: Record<string, number | string> | null;
}

/** What --json writes: a run, and with --rerun-note a second run of the same checks. */
export interface GpuCheckReport extends GpuCheckRun {
  rerun?: GpuCheckRun & { note: string };
}

const results: CheckResult[] = [];
const log = (m: string) => process.stdout.write(m + '\n');

/** Runs one check; a throw is a FAIL with its message, never the end of the script. */
async function check(name: string, fn: () => string | Promise<string>): Promise<void> {
  const t0 = performance.now();
  let ok = true;
  let detail: string;
  try {
    detail = await fn();
  } catch (err) {
    ok = false;
    detail = err instanceof Error ? err.message.split('\n')[0]! : String(err);
  }
  const seconds = (performance.now() - t0) / 1000;
  results.push({ name, ok, seconds, detail });
  log(`${ok ? 'PASS' : 'FAIL'} ${name} (${seconds.toFixed(1)} s): ${detail}`);
}

function assert(cond: boolean, message: string): void {
  if (!cond) throw new Error(message);
}

const maxDiff = (a: torch.Tensor, b: torch.Tensor): number => torch.tidy(() => torch.max(torch.abs(a.to('cpu').to('float64').sub(b.to('cpu').to('float64')))).item());

function tinyModel(device: string, dtype: torch.DType = 'float32'): SPN {
  torch.manualSeed(0);
  const cfg = parseModelConfig({ height: 8, width: 8, channels: 3, bits: 3, scale: 2, dim: 32, heads: 2, condLayers: 1, decLayers: 2, context: 'relative', valueFreqs: 2, headFreqs: 2, embedFreqs: 2 });
  return new SPN(cfg, { device, dtype });
}

async function main(): Promise<void> {
  const { values: a } = parseArgs({
    options: {
      device: { type: 'string', default: 'cuda' },
      minutes: { type: 'string', default: '3' },
      data: { type: 'string', default: 'cifar10:../shared/data/cifar10-subset' },
      work: { type: 'string', default: path.join(os.tmpdir(), 'spn-gpu-check') },
      preset: { type: 'string', default: 'imagenet32-gpu' },
      json: { type: 'string' },
      'rerun-note': { type: 'string' },
    },
  });
  // With --rerun-note, the earlier report this run is added to: read now, not after the checks.
  let first: GpuCheckReport | null = null;
  if (a['rerun-note'] !== undefined) {
    if (!a.json) throw new ArgError('--rerun-note needs --json FILE, the report of the run this one repeats');
    first = JSON.parse(fs.readFileSync(a.json, 'utf8')) as GpuCheckReport;
  }
  const preset = a.preset!;
  const device = a.device!;
  const minutes = Number(a.minutes);
  const info = torch.native.info();
  log(`spn gpu-check: libtorch ${info.version}, CUDA compiled ${info.cudaCompiled}, available ${info.cuda}, ${info.cudaDevices} device(s); node ${process.version}`);
  if (device.startsWith('cuda') && !info.cuda) throw new Error('no CUDA device visible: nothing to check (use --device cpu to test the script)');
  fs.rmSync(a.work!, { recursive: true, force: true });
  fs.mkdirSync(a.work!, { recursive: true });

  await check('ops: matmul, conv2d, layer norm, softmax, gather equal the CPU', () => torch.tidy(() => {
    torch.manualSeed(1);
    const x = torch.randn([4, 8, 9, 9]);
    const w = torch.randn([16, 8, 3, 3]);
    const m = torch.randn([64, 96]);
    const n = torch.randn([96, 48]);
    const idx = torch.randint(0, 64, [10]);
    const on = (t: torch.Tensor) => t.to(device);
    const diffs = [
      maxDiff(torch.conv2d(on(x), on(w), null, { padding: 1 }), torch.conv2d(x, w, null, { padding: 1 })),
      maxDiff(torch.mm(on(m), on(n)), torch.mm(m, n)),
      maxDiff(torch.layerNorm(on(m), [96]), torch.layerNorm(m, [96])),
      maxDiff(torch.softmax(on(m), 1), torch.softmax(m, 1)),
      maxDiff(on(m).indexSelect(0, on(idx)), m.indexSelect(0, idx)),
    ];
    // TF32 may be on for CUDA matmuls and convs: allow its rounding
    assert(Math.max(...diffs) < 5e-2, `max difference ${Math.max(...diffs)}`);
    return `max |cuda - cpu| per op: ${diffs.map((d) => d.toExponential(1)).join(', ')}`;
  }));

  await check('autograd: gradients of gelu(x·W)·v equal the CPU', () => torch.tidy(() => {
    torch.manualSeed(2);
    const grads = (dev: string) => {
      const x = torch.randn([5, 7], { dtype: 'float64' }).to(dev).requiresGrad_();
      const w = torch.randn([7, 3], { dtype: 'float64' }).to(dev).requiresGrad_();
      torch.gelu(torch.mm(x, w)).mul(torch.arange(0, 3, 1, { dtype: 'float64', device: dev })).sum().backward();
      return [x.grad!, w.grad!];
    };
    torch.manualSeed(2);
    const g = grads(device);
    torch.manualSeed(2);
    const c = grads('cpu');
    const d = Math.max(maxDiff(g[0]!, c[0]!), maxDiff(g[1]!, c[1]!));
    assert(d < 1e-10, `max gradient difference ${d}`);
    return `max |cuda - cpu| ${d.toExponential(1)} (float64)`;
  }));

  await check('bf16 autocast: linear in bf16, the SPN NLL within 1% of fp32', () => {
    const model = tinyModel(device);
    try {
      return torch.tidy(() => {
        const lin = torch.autocast(device.startsWith('cuda') ? 'cuda' : 'cpu', () => torch.linear(torch.randn([4, 8], { device }), torch.randn([3, 8], { device })).dtype);
        const x = torch.randint(0, 8, [4, 8, 8, 3], { device });
        const k = torch.randint(0, 4, [4], { device });
        const f32 = model.nll({ x }, k).mean().item();
        const b16 = torch.autocast(device.startsWith('cuda') ? 'cuda' : 'cpu', () => model.nll({ x }, k).mean().item());
        const rel = Math.abs(b16 - f32) / f32;
        if (device.startsWith('cuda') || torch.cpuHasBf16()) assert(lin === 'bfloat16', `autocast linear gave ${lin}`);
        assert(rel < 0.01, `bf16 NLL ${b16} vs fp32 ${f32}`);
        return `linear -> ${lin}; NLL fp32 ${f32.toFixed(4)}, bf16 ${b16.toFixed(4)} (relative ${rel.toExponential(1)})`;
      });
    } finally {
      model.dispose();
    }
  });

  await check('training: 20 steps of the tiny preset through the trainer', async () => {
    const losses: number[] = [];
    const r = await train({ preset: 'tiny', data: a.data!, out: path.join(a.work!, 'tiny'), steps: 20, device, quiet: true, cacheDir: path.join(a.work!, 'cache'), onLog: (rec) => losses.push(rec.loss_bpd as number) });
    assert(r.state === 'done' && losses.length === 2 && losses.every(Number.isFinite), `state ${r.state}, losses ${losses.join(', ')}`);
    return `train loss ${losses.map((l) => l.toFixed(3)).join(' -> ')} bits/dim, test ${r.lastTestBpd?.toFixed(3)}`;
  });

  await check('sampling: cached and naive samplers draw the same images (float64, same seed)', () => {
    const model = tinyModel(device, 'float64');
    try {
      return torch.tidy(() => {
        const t0 = performance.now();
        const cached = sample(model, { n: 4, seed: 5 });
        const t1 = performance.now();
        const naive = sampleNaive(model, { n: 4, seed: 5 });
        const t2 = performance.now();
        const va = Array.from(cached.to('cpu').contiguous().data() as BigInt64Array, Number);
        const vb = Array.from(naive.to('cpu').contiguous().data() as BigInt64Array, Number);
        const differ = va.filter((v, i) => v !== vb[i]).length;
        assert(differ === 0, `${differ} of ${va.length} sub-pixels differ`);
        assert(new Set(va).size > 4, 'constant samples');
        return `${va.length} sub-pixels equal; cached ${(t1 - t0).toFixed(0)} ms, naive ${(t2 - t1).toFixed(0)} ms`;
      });
    } finally {
      model.dispose();
    }
  });

  if (device.startsWith('cuda')) {
    await check('distributed: a 1-rank NCCL group all-reduces and broadcasts CUDA tensors', () => {
      const backends = torch.distributed.availableBackends();
      assert(backends.includes('nccl'), `this build has backends [${backends.join(', ')}], no nccl`);
      const pg = torch.distributed.initProcessGroup({ backend: 'nccl', rank: 0, worldSize: 1, masterAddr: '127.0.0.1', masterPort: 29500 + Math.floor(Math.random() * 1000), timeoutS: 60, device: device.includes(':') ? device : 'cuda:0' });
      try {
        return torch.tidy(() => {
          const t = torch.arange(0, 6, 1, { dtype: 'float32', device });
          pg.allReduce(t);
          const b = torch.full([3], 7, { device });
          pg.broadcast(b, 0);
          const sum = pg.allReduceNumbers([1.5, 2]);
          assert(maxDiff(t, torch.arange(0, 6, 1, { dtype: 'float32' })) === 0 && b.to('cpu').sum().item() === 21 && sum[0] === 1.5, 'values changed');
          return `backends [${backends.join(', ')}]; all-reduce, broadcast and allReduceNumbers give the 1-rank identities`;
        });
      } finally {
        pg.destroy();
      }
    });
  }

  let throughput: Record<string, number | string> | null = null;
  await check(`throughput: ${preset} trained for ${minutes} min on ${a.data}`, async () => {
    if (device.startsWith('cuda')) torch.cuda.memory(true);
    const recs: Record<string, number | string>[] = [];
    const r = await train({
      preset, data: a.data!, out: path.join(a.work!, 'throughput'), minutes, device, quiet: true, cacheDir: path.join(a.work!, 'cache'),
      // no evaluation or samples during the run: the figures are of training
      set: { 'train.evalEverySec': 1e9, 'train.sampleEverySec': 1e9, 'train.checkpointEverySec': 1e9, 'train.evalImages': 100 },
      onLog: (rec) => recs.push(rec),
    });
    const mem = device.startsWith('cuda') ? torch.cuda.memory() : { peak: 0 };
    assert(recs.length >= 2, `only ${recs.length} train records`);
    const steady = recs.slice(Math.floor(recs.length / 2)); // past warm-up and autotuning
    const rate = steady.reduce((s, x) => s + (x.subpixels_per_s as number), 0) / steady.length;
    const cfg = readRunConfig(r.dir).model;
    const dims = (cfg.height / cfg.scale) * (cfg.width / cfg.scale) * cfg.channels; // sub-pixels per image-step
    const achieved = (rate / dims) * 6 * spnForwardMacs(cfg); // FLOP/s
    const size = device.startsWith('cuda') ? 8192 : 1024;
    const peak = measureMatmul(size, size, size, device, 3, 200, 'bfloat16');
    throughput = {
      steps: r.step, subpixels_per_s: Math.round(rate), peak_memory_gib: +(mem.peak / 2 ** 30).toFixed(2),
      achieved_tflops: +(achieved / 1e12).toFixed(2), bf16_matmul_tflops: +(peak.gflops / 1e3).toFixed(1), share_of_bf16_peak: +(achieved / (peak.gflops * 1e9)).toFixed(4),
      test_bpd: r.lastTestBpd ?? 'none', final_loss_bpd: recs.at(-1)!.loss_bpd!,
    };
    return Object.entries(throughput).map(([k, v]) => `${k} ${v}`).join(', ');
  });

  const failed = results.filter((r) => !r.ok).length;
  log(`${results.length - failed} passed, ${failed} failed`);
  const run: GpuCheckRun = {
    ...reportHeader('gpu-check', device, false),
    gpu: info.cuda ? `${info.cudaDevices} CUDA device(s)` : 'none', preset, data: a.data!, minutes, results, throughput,
  };
  emitReport(first ? { ...first, rerun: { note: a['rerun-note']!, ...run } } : run, a.json);
  process.exitCode = failed ? 1 : 0;
}

runIfMain(import.meta.url, 'gpu-check', main);
