// The trainer end to end on a tiny generated IDX dataset (8×8×1, 64 train / 16 test) with the
// 'tiny' preset: run folder contents, exact resume, NaN handling, bad input, `spn eval` and Ctrl-C.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpnError } from '../../src/errors.js';
import * as torch from '../../src/torch/index.js';
import { headSet, loadDataset } from '../../src/data/index.js';
import { evalRun, reportJson } from '../../src/cli/eval.run.js';
import { evaluate } from '../../src/store/evaluate.js';
import { listCheckpoints, loadModel, readCheckpoint } from '../../src/store/checkpoint.js';
import { runFiles } from '../../src/store/run.js';
import { train, type TrainOptions } from '../../src/train/trainer.js';
import { cleanupTmp, smoothImages, tmpDir, writeIdx } from '../data/fixtures.js';
import { cli } from '../cli/in-process.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

let work: string;
let cacheDir: string;
let spec: string; // 8×8 images
let spec4: string; // 4×4 images: a shape the 8×8 runs do not fit


beforeAll(() => {
  work = tmpDir('spn-train-');
  cacheDir = path.join(work, 'cache');
  writeIdx(path.join(work, 'train-images.gz'), [64, 8, 8], smoothImages(64, 8, 1));
  writeIdx(path.join(work, 't10k-images.gz'), [16, 8, 8], smoothImages(16, 8, 2));
  fs.mkdirSync(path.join(work, 'small'));
  writeIdx(path.join(work, 'small', 'train-images.gz'), [16, 4, 4], smoothImages(16, 4, 3));
  writeIdx(path.join(work, 'small', 't10k-images.gz'), [8, 4, 4], smoothImages(8, 4, 4));
  spec = `idx:${path.join(work, 'train-images.gz')}`;
  spec4 = `idx:${path.join(work, 'small', 'train-images.gz')}`;
});

afterAll(() => cleanupTmp());

let runCount = 0;
const opts = (o: Partial<TrainOptions> = {}): TrainOptions => ({
  data: spec, preset: 'tiny', out: path.join(work, `run-${runCount++}`), cacheDir, quiet: true, seed: 7, ...o,
});

const readLines = (file: string) => fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
const readStatus = (dir: string) => JSON.parse(fs.readFileSync(runFiles(dir).status, 'utf8')) as Record<string, unknown>;

/** The subset the trainer tests on: the first evalImages test images. */
async function testSubset(n: number) {
  const d = await loadDataset(spec, { bits: 8, cacheDir });
  return headSet(d.test, n);
}

async function expectCode(p: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(SpnError);
  expect((err as SpnError).code).toBe(code);
  expect((err as SpnError).message).toMatch(message);
}

describe('train', () => {
  let done: Awaited<ReturnType<typeof train>>;
  const uninterrupted: Record<string, number | string>[] = [];

  beforeAll(async () => {
    done = await train(opts({ steps: 30, onLog: (r) => uninterrupted.push(r) }));
  });

  it('writes config, status, metrics, at most 2 step checkpoints and best', () => {
    const f = runFiles(done.dir);
    expect(done).toMatchObject({ step: 30, state: 'done' });
    const cfg = JSON.parse(fs.readFileSync(f.config, 'utf8'));
    expect(cfg).toMatchObject({ preset: 'tiny', seed: 7, steps: 30, stage: 'full', model: { height: 8, width: 8, channels: 1, bits: 8 } });
    expect(readStatus(done.dir)).toMatchObject({ state: 'done', step: 30, total_steps: 30 });
    const metrics = readLines(f.metrics);
    const trainRecs = metrics.filter((m) => m.kind === 'train');
    const testRecs = metrics.filter((m) => m.kind === 'test');
    expect(trainRecs.map((m) => m.step)).toEqual([10, 20, 30]);
    for (const m of trainRecs) expect(Object.keys(m).sort()).toEqual(['kind', 'loss_bpd', 'lr', 'rss_peak_mb', 'step', 'subpixels_per_s', 'time_s']);
    expect(testRecs).toHaveLength(1);
    expect(testRecs[0]).toMatchObject({ step: 30, images: 16 });
    // the process's peak RSS so far, in MB, on every record: a high-water mark never goes down
    const peaks = metrics.map((m) => m.rss_peak_mb);
    for (const p of peaks) expect(p).toSatisfy((x: unknown) => typeof x === 'number' && Number.isFinite(x) && x > 0);
    for (let i = 1; i < peaks.length; i++) expect(peaks[i] as number).toBeGreaterThanOrEqual(peaks[i - 1] as number);
    const ckpts = listCheckpoints(done.dir);
    expect(ckpts.length).toBeGreaterThan(0);
    expect(ckpts.length).toBeLessThanOrEqual(2);
    expect(ckpts.at(-1)).toBe('step-00000030');
    expect(fs.existsSync(path.join(f.checkpoints, 'best.safetensors'))).toBe(true);
    expect(fs.existsSync(path.join(f.checkpoints, 'best.json'))).toBe(true);
  });

  it('loadModel gives back the model the final test metric was measured on', async () => {
    const testRec = readLines(runFiles(done.dir).metrics).find((m) => m.kind === 'test')!;
    const subset = await testSubset(16);
    for (const which of ['best', 'latest'] as const) {
      const { model, step } = await loadModel(done.dir, { which });
      try {
        expect(step).toBe(30);
        const r = evaluate(model, subset, { batchSize: 50 });
        expect(r.bpd).toBe(done.lastTestBpd);
        expect(r.bpd).toBeCloseTo(testRec.bpd as number, 4);
      } finally {
        model.dispose();
      }
    }
  });

  it('resumes exactly: an interrupted run follows the uninterrupted loss trajectory', async () => {
    // Step 15: mid-epoch (8 batches of 8 per epoch) and mid-way between train records.
    const o = opts({ steps: 30 });
    const first: Record<string, number | string>[] = [];
    const a = await train({ ...o, interruptAtStep: 15, onLog: (r) => first.push(r) });
    expect(a).toMatchObject({ state: 'stopped', step: 15 });
    expect(readStatus(a.dir)).toMatchObject({ state: 'stopped', step: 15 });
    expect(listCheckpoints(a.dir)).toEqual(['step-00000015']);
    const second: Record<string, number | string>[] = [];
    const b = await train({ ...o, resume: true, onLog: (r) => second.push(r) });
    expect(b).toMatchObject({ state: 'done', step: 30 });
    const losses = (recs: Record<string, unknown>[]) => recs.map((r) => [r.step, r.loss_bpd, r.lr]);
    expect(losses([...first, ...second])).toEqual(losses(uninterrupted));
    const fromFile = readLines(runFiles(b.dir).metrics).filter((m) => m.kind === 'train');
    expect(losses(fromFile)).toEqual(losses(uninterrupted));
    // Bit for bit: weights, EMA weights, optimizer moments and RNG state of the last checkpoint.
    const x = readCheckpoint(path.join(runFiles(done.dir).checkpoints, 'step-00000030'));
    const y = readCheckpoint(path.join(runFiles(b.dir).checkpoints, 'step-00000030'));
    try {
      expect(Object.keys(y.tensors).sort()).toEqual(Object.keys(x.tensors).sort());
      for (const [k, t] of Object.entries(x.tensors)) expect(Array.from<number | bigint>(y.tensors[k]!.data()), k).toEqual(Array.from<number | bigint>(t.data()));
      expect(y.meta.data_position).toEqual(x.meta.data_position);
    } finally {
      torch.dispose(x.tensors);
      torch.dispose(y.tensors);
    }
    expect(b.lastTestBpd).toBe(done.lastTestBpd);
  });
});

describe('precision', () => {
  it('bf16 trains under autocast where it is faster on this CPU and libtorch (else in fp32), on the asked-for threads, then restores them', async () => {
    const before = torch.getNumThreads();
    const f32: unknown[] = [];
    const b16: unknown[] = [];
    const seen: number[] = [];
    const rf = await train(opts({ steps: 10, threads: 2, set: { 'train.precision': 'fp32' }, onLog: (r) => f32.push(r.loss_bpd) }));
    const r = await train(opts({ steps: 10, threads: 2, set: { 'train.precision': 'bf16' }, onLog: (rec) => { b16.push(rec.loss_bpd); seen.push(torch.getNumThreads()); } }));
    expect(seen).toEqual([2]);
    expect(torch.getNumThreads()).toBe(before);
    // reproducible from the seed in bf16 too
    const again: unknown[] = [];
    await train(opts({ steps: 10, threads: 2, set: { 'train.precision': 'bf16' }, onLog: (rec) => again.push(rec.loss_bpd) }));
    expect(again).toEqual(b16);
    expect(JSON.parse(fs.readFileSync(runFiles(r.dir).config, 'utf8')).train.precision).toBe('bf16');
    // The weights after 10 steps, through the (fp32) test bits/dim at full precision: the logged
    // losses are rounded to 5 decimals, which bf16's small differences can hide.
    if (torch.cpuBf16Faster()) {
      // the same seed and data: bf16 arithmetic moves the result a little, not far
      expect(r.lastTestBpd).not.toBe(rf.lastTestBpd);
      expect(Math.abs(r.lastTestBpd! - rf.lastTestBpd!)).toBeLessThan(0.1);
      expect(Math.abs((b16[0] as number) - (f32[0] as number))).toBeLessThan(0.1);
    } else {
      expect(b16).toEqual(f32);
      expect(r.lastTestBpd).toBe(rf.lastTestBpd);
    }
  });
});

describe('NaN', () => {
  it('a NaN loss stops the run (E_NAN, status failed) and keeps the last good checkpoint', async () => {
    const o = opts({ steps: 200, lr: 1e6 });
    const a = await train({ ...o, interruptAtStep: 1 });
    expect(a).toMatchObject({ state: 'stopped', step: 1 });
    await expectCode(train({ ...o, resume: true }), 'E_NAN', /training loss became NaN at step \d+/);
    const status = readStatus(a.dir);
    expect(status.state).toBe('failed');
    expect(status.message).toMatch(/NaN/);
    expect(listCheckpoints(a.dir)).toEqual(['step-00000001']);
    const { model, step } = await loadModel(a.dir, { which: 'latest', ema: false });
    try {
      expect(step).toBe(1);
      for (const p of model.parameters()) expect(torch.tidy(() => torch.min(torch.isfinite(p).to('int64')).item()), 'finite weights').toBe(1);
    } finally {
      model.dispose();
    }
  });
});

describe('bad input', () => {
  it('unknown preset', async () => {
    const o = opts({ preset: 'nope', steps: 5 });
    await expectCode(train(o), 'E_CONFIG', /unknown preset 'nope'; expected one of .*tiny/);
    expect(fs.existsSync(o.out)).toBe(false);
  });

  it('neither --minutes nor --steps', async () => {
    await expectCode(train(opts()), 'E_ARG', /--minutes or --steps/);
  });

  it('an out folder that already holds a run, without --resume', async () => {
    const o = opts({ steps: 1 });
    await train(o);
    await expectCode(train(o), 'E_ARG', /already holds a run; use --resume/);
  });

  it('--resume with no checkpoint', async () => {
    const o = opts({ steps: 1, resume: true });
    await expectCode(train(o), 'E_IO', /--resume: no checkpoint in .*checkpoints/);
    fs.mkdirSync(path.join(o.out, 'checkpoints'), { recursive: true });
    fs.writeFileSync(path.join(o.out, 'checkpoints', 'step-00000005.safetensors'), 'half-written, no sidecar');
    await expectCode(train(o), 'E_IO', /--resume: no checkpoint/);
  });

  it('resuming on data whose images no longer fit the run', async () => {
    // The run keeps its data spec; the files behind it change to 4×4 images.
    const dir = tmpDir('spn-train-data-');
    const train8 = path.join(dir, 'train-images.gz');
    fs.copyFileSync(path.join(work, 'train-images.gz'), train8);
    fs.copyFileSync(path.join(work, 't10k-images.gz'), path.join(dir, 't10k-images.gz'));
    const o = opts({ data: `idx:${train8}`, steps: 2 });
    await train({ ...o, interruptAtStep: 1 });
    fs.copyFileSync(path.join(work, 'small', 'train-images.gz'), train8);
    fs.copyFileSync(path.join(work, 'small', 't10k-images.gz'), path.join(dir, 't10k-images.gz'));
    await expectCode(train({ ...o, resume: true }), 'E_ARG', /has images 4×4×1, the run expects 8×8×1/);
  });
});

describe('options', () => {
  it('a bad device is refused before anything is written', async () => {
    const o = opts({ steps: 1, device: 'tpu' });
    await expectCode(train(o), 'E_ARG', /--device tpu: expected cpu, cuda or cuda:N/);
    expect(fs.existsSync(o.out)).toBe(false);
    if (!torch.cuda.isAvailable()) {
      await expectCode(train({ ...o, device: 'cuda' }), 'E_ARG', /--device cuda: (no CUDA device|this libtorch build has no CUDA)/);
      expect(fs.existsSync(o.out)).toBe(false);
    }
  });

  it('zero or negative counts are refused with the option named', async () => {
    for (const [key, flag] of [['steps', '--steps'], ['batchSize', '--batch-size'], ['scale', '--scale'], ['subsample', '--subsample'], ['size', '--size']] as const) {
      const o = opts({ steps: 1, [key]: 0 });
      await expectCode(train(o), 'E_ARG', new RegExp(`${flag} 0: expected a positive integer`));
      expect(fs.existsSync(o.out)).toBe(false);
    }
    await expectCode(train(opts({ minutes: -1 })), 'E_ARG', /--minutes -1: expected a positive number/);
  });

  it('--resume refuses settings that would change the run, names them, and applies --steps and --device', async () => {
    const o = opts({ steps: 4 });
    await train({ ...o, interruptAtStep: 2 });
    await expectCode(train({ ...o, resume: true, lr: 0.5, batchSize: 4, set: { 'train.emaDecay': 0.9 } }), 'E_ARG',
      /these would change it: --batch-size 4 \(the run has 8\), --lr 0.5 \(the run has 0.003\), --set train.emaDecay=0.9 \(the run has 0.999\)\. Start a new run from its weights with --init-from/);
    // the same values as the run's are harmless; a longer --steps applies
    const r = await train({ ...o, resume: true, preset: 'tiny', lr: 3e-3, steps: 6, device: 'cpu' });
    expect(r).toMatchObject({ state: 'done', step: 6 });
    expect(JSON.parse(fs.readFileSync(runFiles(r.dir).config, 'utf8')).steps).toBe(4); // config.json keeps what the run was started with
  });

  it('--init-from starts a new run from the EMA weights of another run, with its architecture', async () => {
    const src = await train(opts({ steps: 10 }));
    const o = opts({ steps: 5, initFrom: src.dir, lr: 1e-3 });
    const r = await train({ ...o, interruptAtStep: 0 });
    expect(r).toMatchObject({ state: 'stopped', step: 0 });
    const cfg = JSON.parse(fs.readFileSync(runFiles(r.dir).config, 'utf8'));
    expect(cfg.initFrom).toBe(src.dir);
    expect(cfg.train.lr).toBe(1e-3);
    const a = readCheckpoint(path.join(runFiles(src.dir).checkpoints, 'best'));
    const b = readCheckpoint(path.join(runFiles(r.dir).checkpoints, 'step-00000000'));
    try {
      for (const [k, t] of Object.entries(a.tensors)) {
        if (!k.startsWith('ema.')) continue;
        expect(Array.from(b.tensors[`model.${k.slice(4)}`]!.data() as Float32Array), k).toEqual(Array.from(t.data() as Float32Array));
      }
    } finally {
      torch.dispose([a.tensors, b.tensors]);
    }
    await expectCode(train(opts({ steps: 1, initFrom: src.dir, set: { 'model.dim': 32 } })), 'E_ARG', /takes that run's architecture/);
    await expectCode(train(opts({ steps: 1, initFrom: src.dir, resume: true })), 'E_ARG', /give one of them/);
    await expectCode(train(opts({ steps: 1, initFrom: src.dir, data: spec4 })), 'E_ARG', /reads 8×8×1 images, the data has 4×4×1/);
  });
});

describe('eval', () => {
  it('total nats are the sum of the per-slice nats; an untrained model scores about 8 bits/dim', async () => {
    const { SPN } = await import('../../src/spn/model.js');
    const { PRESETS, parseModelConfig } = await import('../../src/spn/config.js');
    torch.manualSeed(0);
    const model = new SPN(parseModelConfig({ ...PRESETS.tiny!.model, height: 8, width: 8, channels: 1 }));
    try {
      const r = evaluate(model, await testSubset(16), { batchSize: 5 });
      expect(r.images).toBe(16);
      expect(r.dims).toBe(16 * 64);
      expect(r.per_slice_nats).toHaveLength(4);
      const sum = (r.per_slice_nats as number[]).reduce((a, b) => a + b, 0);
      expect(r.nats).toBeCloseTo(sum, 6);
      expect(r.bpd).toBeCloseTo(r.nats / r.dims / Math.LN2, 10);
      // Each slice has a quarter of the sub-pixels: bpd is the mean of the per-slice bpd.
      expect(r.bpd).toBeCloseTo((r.per_slice_bpd as number[]).reduce((a, b) => a + b, 0) / 4, 10);
      expect(Math.abs(r.bpd - 8)).toBeLessThan(0.5);
    } finally {
      model.dispose();
    }
  });

  it('spn eval --json prints the documented JSON and writes eval.json on a full split', async () => {
    const { register } = await import('../../src/cli/eval.js');
    const dir = (await train(opts({ steps: 10 }))).dir;
    const run = (...args: string[]) => cli([register], 'eval', dir, '--cache-dir', cacheDir, '--quiet', ...args);
    const limited = JSON.parse(await run('--json', '--limit', '4'));
    expect(limited).toMatchObject({ images: 4, split: 'test', step: 10 });
    expect(fs.existsSync(runFiles(dir).eval)).toBe(false);
    const full = JSON.parse(await run('--json', '--batch-size', '7'));
    expect(Object.keys(full).slice(0, 3)).toEqual(['bpd', 'images', 'per_slice_bpd']);
    expect(full.images).toBe(16);
    expect(full.per_slice_bpd).toHaveLength(4);
    const evalJson = JSON.parse(fs.readFileSync(runFiles(dir).eval, 'utf8'));
    expect(evalJson).toEqual({ bpd: full.bpd, images: 16, per_slice_bpd: full.per_slice_bpd, split: 'test', step: 10 });
    // The run's final test metric is on the same 16 images with the same (EMA) weights.
    const testRec = readLines(runFiles(dir).metrics).find((m) => m.kind === 'test')!;
    expect(full.bpd).toBeCloseTo(testRec.bpd as number, 4);
    // The raw weights score differently; the train split has 64 images.
    const raw = await evalRun(dir, { split: 'train', batchSize: 64, device: 'cpu', ema: false, which: 'latest', cacheDir, quiet: true, limit: 8 });
    expect(reportJson(raw)).toMatchObject({ images: 8, split: 'train', step: 10 });
    expect(await run('--limit', '2')).toMatch(/bits\/dim over 2 images\nper slice: 0: \d\.\d{4}/);
    await expect(run('--split', 'valid')).rejects.toThrow(/--split valid: expected test or train/);
    await expect(run('--size', '4')).rejects.toThrow(/has images 4×4×1, the model expects 8×8×1/);
    // Data of another size is resized to the model's (a run's config does not record --size).
    expect(JSON.parse(await run('--data', spec4, '--json'))).toMatchObject({ images: 8, data: spec4 });
  });
});

describe('compiled CLI', () => {
  let compileError: string | null = null;

  beforeAll(() => {
    const tsc = spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', ROOT], { encoding: 'utf8' });
    if (tsc.status !== 0) compileError = (tsc.stdout + tsc.stderr).split('\n').slice(0, 5).join('\n');
  }, 120_000);

  it('Ctrl-C stops a run cleanly: exit 0, status stopped, a complete checkpoint', async (ctx) => {
    if (compileError) {
      console.warn(`skipping the Ctrl-C test: \`tsc -p .\` failed (another file may be half-written):\n${compileError}`);
      ctx.skip();
    }
    const out = path.join(work, 'run-ctrl-c');
    const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'src', 'cli', 'main.js'), 'train', '--data', spec, '--preset', 'tiny', '--out', out, '--steps', '100000', '--quiet'], {
      cwd: work, // the data cache goes to <cwd>/.cache
      env: { ...process.env, SPN_THREADS: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const deadline = Date.now() + 60_000;
    const metrics = runFiles(out).metrics;
    while (!(fs.existsSync(metrics) && fs.readFileSync(metrics, 'utf8').includes('\n'))) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`training never logged a step: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill('SIGINT');
    expect(await exited, stderr).toBe(0);
    const status = readStatus(out);
    expect(status.state).toBe('stopped');
    expect(status.step as number).toBeGreaterThanOrEqual(10);
    const ckpts = listCheckpoints(out);
    expect(ckpts.at(-1)).toBe(`step-${String(status.step).padStart(8, '0')}`);
    const c = readCheckpoint(path.join(runFiles(out).checkpoints, ckpts.at(-1)!));
    expect(c.meta.step).toBe(status.step);
    torch.dispose(c.tensors);

    // And `spn eval --json` through the same binary.
    const ev = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'src', 'cli', 'main.js'), 'eval', out, '--json', '--limit', '4'], { cwd: work, encoding: 'utf8', env: { ...process.env, SPN_THREADS: '1' } });
    expect(ev.status, ev.stderr).toBe(0);
    expect(JSON.parse(ev.stdout)).toMatchObject({ images: 4, split: 'test', step: status.step, per_slice_bpd: expect.any(Array) });
  });
});
