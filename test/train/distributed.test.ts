// Data-parallel training (issue #13) with two ranks on this machine: the trainer as one rank
// (test/train/fixtures/train-worker.ts, train() with the torchrun variables set) and
// `spn train --nproc 2` (the launcher), both compiled with their imports into a folder under
// node_modules/.cache by beforeAll (so the test does not depend on dist/ being current).
//
// Runs are the 'tiny' preset on a generated 8×8×1 IDX dataset (64 train, 128 test images),
// global batch 16, 110 test images evaluated (3 batches of the evaluation's 50: rank 0 takes two
// of them, rank 1 one).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';
import { headSet, loadDataset } from '../../src/data/index.js';
import { checkCheckpoint, listCheckpoints, loadModel, readCheckpoint } from '../../src/store/checkpoint.js';
import { evaluate } from '../../src/store/evaluate.js';
import { freePort, planLaunch } from '../../src/train/launch.js';
import { jobFromEnv, rankDevice } from '../../src/train/c10d-world.js';
import { renderBenchmarksMd } from '../../bench/report.js';
import { makeHosts, type DistributedReport } from '../../bench/distributed.js';
import { runFiles } from '../../src/store/run.js';
import type { TrainOptions, TrainResult } from '../../src/train/trainer.js';
import { cleanupTmp, smoothImages, tmpDir, writeIdx } from '../data/fixtures.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
// The children load the same addon as this process.
const ADDON = process.env.SPN_NATIVE ? path.resolve(process.env.SPN_NATIVE) : path.join(ROOT, 'native', 'build', 'spn_torch.node');
const MY_FILES = ['src/train/', 'src/cli/train', 'src/cli/options.ts', 'src/torch/distributed.ts', 'test/train/fixtures/train-worker.ts'];
const STEPS = 20;
const EVAL_IMAGES = 110;

let build = ''; // the compiled CLI and worker
let cli = '';
let worker = '';
let work = '';
let cacheDir = '';
let spec = '';

beforeAll(() => {
  fs.mkdirSync(path.join(ROOT, 'node_modules', '.cache'), { recursive: true });
  build = fs.mkdtempSync(path.join(ROOT, 'node_modules', '.cache', 'spn-dist-train-')); // node_modules resolve from here
  fs.writeFileSync(path.join(build, 'package.json'), '{"type":"module"}\n');
  const tsc = spawnSync(process.execPath, [
    path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
    '--outDir', build, '--rootDir', ROOT, '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--target', 'ES2022',
    '--strict', '--skipLibCheck', '--types', 'node', '--resolveJsonModule', '--esModuleInterop',
    path.join(ROOT, 'src', 'cli', 'main.ts'), path.join(ROOT, 'test', 'train', 'fixtures', 'train-worker.ts'),
  ], { cwd: ROOT, encoding: 'utf8' });
  const out = tsc.stdout + tsc.stderr;
  // Errors in the files under test fail the suite; errors elsewhere (another file half-edited)
  // only matter if they stopped tsc from writing the programs.
  const mine = out.split('\n').filter((l) => MY_FILES.some((f) => l.startsWith(f)));
  if (mine.length) throw new Error(`tsc failed on the distributed training files:\n${mine.join('\n')}`);
  cli = path.join(build, 'src', 'cli', 'main.js');
  worker = path.join(build, 'test', 'train', 'fixtures', 'train-worker.js');
  for (const f of [cli, worker]) if (!fs.existsSync(f)) throw new Error(`tsc wrote no ${f}:\n${out}`);

  work = tmpDir('spn-dist-train-');
  cacheDir = path.join(work, 'cache');
  writeIdx(path.join(work, 'train-images.gz'), [64, 8, 8], smoothImages(64, 8, 1));
  writeIdx(path.join(work, 't10k-images.gz'), [128, 8, 8], smoothImages(128, 8, 2));
  spec = `idx:${path.join(work, 'train-images.gz')}`;
}, 120_000);

afterAll(() => {
  cleanupTmp();
  if (build) fs.rmSync(build, { recursive: true, force: true });
});

interface Proc {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Exit code or signal, and milliseconds from start (or from `since()` when called). */
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

function start(argv: string[], o: { env?: Record<string, string>; cwd?: string; netns?: string } = {}): Proc {
  const [program, args] = o.netns ? ['ip', ['netns', 'exec', o.netns, process.execPath, ...argv]] : [process.execPath, argv];
  const child = spawn(program, args as string[], {
    cwd: o.cwd ?? work,
    env: { ...process.env, SPN_NATIVE: ADDON, SPN_THREADS: '1', ...o.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, at: Date.now() })),
  );
  return { child, stdout: () => stdout, stderr: () => stderr, done };
}

const rankEnv = (rank: number, world: number, port: number, addr = '127.0.0.1'): Record<string, string> => ({
  RANK: String(rank), WORLD_SIZE: String(world), LOCAL_RANK: String(rank), LOCAL_WORLD_SIZE: String(world), MASTER_ADDR: addr, MASTER_PORT: String(port),
});

const trainOpts = (o: Partial<TrainOptions>): TrainOptions => ({
  data: spec, preset: 'tiny', seed: 7, batchSize: 16, steps: STEPS, cacheDir, quiet: true, distTimeoutS: 20,
  set: { 'train.evalImages': EVAL_IMAGES }, out: '', ...o,
});

interface WorkerOut { event: 'result' | 'error'; result: TrainResult; losses: [number, number][]; code: string | null; message: string }

async function workerOut(p: Proc): Promise<WorkerOut> {
  await p.done;
  const line = p.stdout().trim().split('\n').filter((l) => l.startsWith('{')).at(-1);
  if (!line) throw new Error(`the worker printed no result; stderr:\n${p.stderr()}`);
  return JSON.parse(line) as WorkerOut;
}

/** A single process (no torchrun variables) running train(o). */
async function single(o: Partial<TrainOptions>): Promise<WorkerOut> {
  const r = await workerOut(start([worker, JSON.stringify(trainOpts(o))]));
  expect(r.event, r.message).toBe('result');
  return r;
}

/** A job of `world` ranks running train(o), each rank with its own options and cwd if given. */
async function job(world: number, o: Partial<TrainOptions>, each: (rank: number) => { o?: Partial<TrainOptions>; cwd?: string; netns?: string; env?: Record<string, string> } = () => ({}), addr = '127.0.0.1'): Promise<WorkerOut[]> {
  const port = await freePort();
  const procs = Array.from({ length: world }, (_, r) => {
    const e = each(r);
    return start([worker, JSON.stringify(trainOpts({ ...o, ...e.o }))], { env: { ...rankEnv(r, world, port, addr), ...e.env }, ...(e.cwd ? { cwd: e.cwd } : {}), ...(e.netns ? { netns: e.netns } : {}) });
  });
  return Promise.all(procs.map(workerOut));
}

let runs = 0;
const newOut = () => path.join(work, `run-${runs++}`);

/** The model weights of a checkpoint, by name. */
function weights(dir: string, name = `step-${String(STEPS).padStart(8, '0')}`): Map<string, Float32Array> {
  const c = readCheckpoint(path.join(runFiles(dir).checkpoints, name));
  try {
    return new Map(Object.entries(c.tensors).filter(([k]) => k.startsWith('model.')).map(([k, t]) => [k, t.data() as Float32Array]));
  } finally {
    torch.dispose(c.tensors);
  }
}

function sha256Of(w: Map<string, Float32Array>): string {
  const h = createHash('sha256');
  for (const a of w.values()) h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  return h.digest('hex');
}

function maxAbsDiff(a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  let m = 0;
  for (const [k, x] of a) {
    const y = b.get(k)!;
    for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]! - y[i]!));
  }
  return m;
}

/** Every step's loss within relative 1e-5 of the other run's. */
function expectSameLosses(a: [number, number][], b: [number, number][]): void {
  expect(a.map(([s]) => s)).toEqual(b.map(([s]) => s));
  for (const [i, [step, x]] of a.entries()) expect(Math.abs(x - b[i]![1]) / Math.abs(x), `step ${step}: ${x} vs ${b[i]![1]}`).toBeLessThan(1e-5);
}

// Adam moves a weight by about lr (3e-3 in 'tiny') per step at most, so 20 steps move each by up
// to ~0.06; float summation order (the gradient's mean taken per rank, then averaged) may move
// the result by far less. Measured: 7.5e-5.
const WEIGHT_TOLERANCE = 1e-3;

const readStatus = (dir: string) => JSON.parse(fs.readFileSync(runFiles(dir).status, 'utf8')) as Record<string, unknown>;
const readMetrics = (dir: string) => fs.readFileSync(runFiles(dir).metrics, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
const sidecar = (dir: string, name: string) => JSON.parse(fs.readFileSync(path.join(runFiles(dir).checkpoints, `${name}.json`), 'utf8')) as Record<string, unknown>;

describe('two ranks train on exactly the examples of one process', () => {
  let one: WorkerOut;
  let pair: WorkerOut[];
  let oneDir = '';
  let pairDir = '';

  beforeAll(async () => {
    oneDir = newOut();
    one = await single({ out: oneDir });
    // Rank 1 runs in another folder with the same relative --out: whatever it wrote would land there.
    pairDir = newOut();
    const elsewhere = path.join(work, 'rank1-cwd');
    fs.mkdirSync(elsewhere);
    pair = await job(2, { out: path.basename(pairDir) }, (r) => ({ cwd: r === 0 ? work : elsewhere }));
  }, 120_000);

  it('gives the same per-step losses (relative 1e-5) and weights after 20 steps as 1 process with batch 16', () => {
    for (const p of pair) expect(p.event, p.message).toBe('result');
    expect(pair.map((p) => [p.result.rank, p.result.worldSize, p.result.step, p.result.state])).toEqual([[0, 2, STEPS, 'done'], [1, 2, STEPS, 'done']]);
    expect(one.losses).toHaveLength(STEPS);
    expectSameLosses(pair[0]!.losses, one.losses);
    expect(pair[1]!.losses).toEqual(pair[0]!.losses); // every rank sees the global batch's loss
    const diff = maxAbsDiff(weights(pairDir), weights(oneDir));
    expect(diff).toBeLessThan(WEIGHT_TOLERANCE);
    expect(diff).toBeGreaterThan(0); // the float sums do differ: the comparison above is not vacuous
  });

  it('leaves every rank with bitwise identical weights', () => {
    const [r0, r1] = pair.map((p) => p.result);
    expect(r1!.weightsSha256).toBe(r0!.weightsSha256);
    expect(sha256Of(weights(pairDir))).toBe(r0!.weightsSha256); // the hash is of the checkpointed weights
    expect(r0!.weightsSha256).not.toBe(one.result.weightsSha256);
  });

  it('evaluates test bits/dim on shards to exactly the single-process number', async () => {
    const [r0, r1] = pair.map((p) => p.result);
    expect(r1!.lastTestBpd).toBe(r0!.lastTestBpd);
    const d = await loadDataset(spec, { bits: 8, cacheDir });
    const set = headSet(d.test, EVAL_IMAGES);
    const { model } = await loadModel(pairDir, { which: 'latest' });
    try {
      expect(evaluate(model, set, { batchSize: 50 }).bpd).toBe(r0!.lastTestBpd);
    } finally {
      model.dispose();
    }
    expect(readMetrics(pairDir).find((m) => m.kind === 'test')).toMatchObject({ step: STEPS, images: EVAL_IMAGES });
  });

  it('writes the run folder from rank 0 alone, with global throughput and the world size recorded', () => {
    expect(fs.existsSync(path.join(work, 'rank1-cwd', path.basename(pairDir)))).toBe(false);
    const train = readMetrics(pairDir).filter((m) => m.kind === 'train');
    expect(train.map((m) => [m.step, m.world_size])).toEqual([[10, 2], [20, 2]]);
    for (const m of train) expect(m.comm_share as number).toBeGreaterThan(0);
    expect(sidecar(pairDir, 'step-00000020').world_size).toBe(2);
    expect(sidecar(oneDir, 'step-00000020').world_size).toBe(1);
    expect(readStatus(pairDir)).toMatchObject({ state: 'done', step: STEPS });
    // Global throughput: sub-pixels of the whole batch (16 images × one 4×4 slice) per second.
    expect(train[1]!.subpixels_per_s as number).toBeGreaterThan(0);
  });

  it('a one-rank job is bit for bit the single process', async () => {
    const [r] = await job(1, { out: newOut() });
    expect(r!.result.worldSize).toBe(1);
    expect(r!.losses).toEqual(one.losses);
    expect(r!.result.weightsSha256).toBe(one.result.weightsSha256);
    expect(r!.result.lastTestBpd).toBe(one.result.lastTestBpd);
  });

  it('a run stopped on 2 ranks resumes on 1 and follows the 2-rank trajectory', async () => {
    const dir = newOut();
    const first = await job(2, { out: dir, interruptAtStep: 10 });
    expect(first.map((p) => [p.result.state, p.result.step])).toEqual([['stopped', 10], ['stopped', 10]]);
    expect(listCheckpoints(dir)).toEqual(['step-00000010']);
    expect(sidecar(dir, 'step-00000010').world_size).toBe(2);
    const second = await single({ out: dir, resume: true });
    expect(second.result).toMatchObject({ state: 'done', step: STEPS, worldSize: 1 });
    expectSameLosses([...first[0]!.losses, ...second.losses], pair[0]!.losses);
    expect(maxAbsDiff(weights(dir), weights(pairDir))).toBeLessThan(WEIGHT_TOLERANCE);
    expect(sidecar(dir, 'step-00000020').world_size).toBe(1);
  });

  it('with dropout (its own stream per rank and step) the ranks stay identical and a resume repeats the run exactly', async () => {
    const o = { steps: 10, set: { 'train.evalImages': EVAL_IMAGES, 'model.dropout': 0.2 } };
    const wholeDir = newOut();
    const whole = await job(2, { ...o, out: wholeDir });
    const dir = newOut();
    await job(2, { ...o, out: dir, interruptAtStep: 5 });
    const resumed = await job(2, { out: dir, resume: true, steps: 10, set: undefined });
    for (const r of [...whole, ...resumed]) expect(r.event, r.message).toBe('result');
    expect(whole[1]!.result.weightsSha256).toBe(whole[0]!.result.weightsSha256);
    expect(resumed.map((r) => r.result.weightsSha256)).toEqual([whole[0]!.result.weightsSha256, whole[0]!.result.weightsSha256]);
    expect(resumed[0]!.losses).toEqual(whole[0]!.losses.slice(5));
    expect(whole[0]!.losses[0]![1]).not.toBe(pair[0]!.losses[0]![1]); // dropout is on
    // The shared generator (data order, slices) never served dropout: after 10 steps it is where
    // a run without dropout leaves it.
    const plain = await single({ steps: 10, out: newOut() });
    const rng = (dir: string) => {
      const c = readCheckpoint(path.join(runFiles(dir).checkpoints, 'step-00000010'));
      try {
        return Array.from(c.tensors.rng_state!.data() as Uint8Array);
      } finally {
        torch.dispose(c.tensors);
      }
    };
    expect(rng(wholeDir)).toEqual(rng(plain.result.dir));
  });

  it('two hosts (network namespaces joined by a veth pair) give the same run, bit for bit', async (ctx) => {
    const made = makeHosts({ subnet: '10.213.0', tag: String(process.pid) });
    if (typeof made === 'string') ctx.skip(true, made);
    const { ns, veth, addr, remove } = made as Exclude<typeof made, string>;
    try {
      const dir = newOut();
      // GLOO_SOCKET_IFNAME: this machine's name resolves to a loopback address, which the other
      // namespace cannot reach (as on hosts whose name does not resolve to the cluster network).
      const hosts = await job(2, { out: dir }, (r) => ({ netns: ns[r]!, env: { GLOO_SOCKET_IFNAME: veth[r]! } }), addr[0]);
      for (const h of hosts) expect(h.event, h.message).toBe('result');
      expect(hosts[0]!.losses).toEqual(pair[0]!.losses);
      expect(hosts.map((h) => h.result.weightsSha256)).toEqual([pair[0]!.result.weightsSha256, pair[0]!.result.weightsSha256]);
      expect(hosts[0]!.result.lastTestBpd).toBe(pair[0]!.result.lastTestBpd);
    } finally {
      remove();
    }
  });
});

/** The pids of the workers a launcher started, by rank (from /proc: parent pid and RANK). */
function workerPids(launcher: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) !== launcher) continue;
      const rank = /(?:^|\0)RANK=(\d+)\0/.exec(fs.readFileSync(`/proc/${d}/environ`, 'utf8'));
      if (rank) out.set(Number(rank[1]), Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

const alive = (pid: number) => {
  try {
    return !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
};

async function until<T>(what: string, fn: () => T | undefined | null | false, p: Proc, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (p.child.exitCode !== null || p.child.signalCode !== null || Date.now() > deadline) throw new Error(`never ${what}; stderr:\n${p.stderr()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// `spn train` caches the data in <cwd>/.cache (cwd: the work folder).
const cliArgs = (out: string, ...more: string[]) => [cli, 'train', '--data', spec, '--preset', 'tiny', '--seed', '7', '--batch-size', '16', '--set', `train.evalImages=${EVAL_IMAGES}`, '--out', out, ...more];

describe('spn train --nproc 2 (the launcher)', () => {
  it('runs two ranks to the end: the same checkpoint as the two-rank job, exit 0', async () => {
    const out = newOut();
    const p = start(cliArgs(out, '--steps', String(STEPS), '--nproc', '2'));
    const { code } = await p.done;
    expect(code, p.stderr()).toBe(0);
    expect(p.stderr()).toMatch(/2 ranks \(gloo\), 8 images each per step/);
    expect(p.stderr()).not.toMatch(/\[rank 1\]/); // rank 1 runs quiet
    expect(readStatus(out)).toMatchObject({ state: 'done', step: STEPS });
    expect(sidecar(out, 'step-00000020').world_size).toBe(2);
    const ref = await single({ out: newOut() });
    expect(maxAbsDiff(weights(out), weights(ref.result.dir))).toBeLessThan(WEIGHT_TOLERANCE);
  });

  it('Ctrl-C stops every rank after the same step: exit 0, status stopped, a complete checkpoint', async () => {
    const out = newOut();
    const p = start(cliArgs(out, '--steps', '100000', '--nproc', '2', '--quiet'));
    await until('logged a step', () => fs.existsSync(runFiles(out).metrics), p);
    const pids = workerPids(p.child.pid!);
    expect([...pids.keys()].sort()).toEqual([0, 1]);
    p.child.kill('SIGINT');
    const { code } = await p.done;
    expect(code, p.stderr()).toBe(0);
    for (const pid of pids.values()) expect(alive(pid)).toBe(false);
    const status = readStatus(out);
    expect(status.state).toBe('stopped');
    const last = listCheckpoints(out).at(-1)!;
    expect(last).toBe(`step-${String(status.step).padStart(8, '0')}`);
    expect(checkCheckpoint(path.join(runFiles(out).checkpoints, last)).ok).toBe(true);
  });

  it('a SIGKILLed worker stops the job within seconds, naming the rank; no half checkpoint; --resume continues', async () => {
    const out = newOut();
    const p = start(cliArgs(out, '--steps', '100000', '--nproc', '2', '--quiet', '--dist-timeout', '30', '--set', 'train.checkpointEverySec=0.2'));
    await until('wrote a checkpoint', () => listCheckpoints(out).length > 0, p);
    const pids = workerPids(p.child.pid!);
    const killedAt = Date.now();
    process.kill(pids.get(1)!, 'SIGKILL');
    const { code, at } = await p.done;
    const stderr = p.stderr();
    expect(code, stderr).toBe(1);
    expect(at - killedAt).toBeLessThan(15_000); // the survivor sees the closed connection at once: well under the 30 s timeout (8.0 s was seen with the 2 cores busy with another test file)
    expect(stderr).toContain(`spn: rank 1 of 2 (pid ${pids.get(1)}) was killed by SIGKILL, the first to fail; rank 0 exited with code 1`);
    // Rank 0's own line: the failed collective, the rank that is gone, the last good checkpoint.
    expect(stderr).toMatch(new RegExp(`spn: .* on rank 0 of 2, gloo[^:]*: .*\\[rank 1 \\(pid ${pids.get(1)}\\) on this machine has exited\\]; training stopped at step \\d+; the last good checkpoint is step-\\d{8} \\(step \\d+\\); fix what stopped it, then resume with: spn train --out \\S+ --resume --steps 100000 \\(on any number of ranks\\)`));
    expect(readStatus(out).state).toBe('failed');
    const folder = runFiles(out).checkpoints;
    const files = fs.readdirSync(folder);
    expect(files.filter((f) => f.endsWith('.tmp'))).toEqual([]);
    for (const f of files.filter((x) => x.endsWith('.json'))) expect(files).toContain(f.replace(/\.json$/, '.safetensors'));
    const last = listCheckpoints(out).at(-1)!;
    expect(checkCheckpoint(path.join(folder, last)).ok).toBe(true);
    const lastStep = Number(last.slice(5));
    const r = start([cli, 'train', '--out', out, '--resume', '--steps', String(lastStep + 10), '--nproc', '2', '--quiet']);
    const resumed = await r.done;
    expect(resumed.code, r.stderr()).toBe(0);
    expect(readStatus(out)).toMatchObject({ state: 'done', step: lastStep + 10 });
  });

  it('when the launcher itself is killed, its workers stop after a step with a checkpoint', async () => {
    const out = newOut();
    const p = start(cliArgs(out, '--steps', '100000', '--nproc', '2', '--quiet'));
    await until('logged a step', () => fs.existsSync(runFiles(out).metrics), p);
    const pids = workerPids(p.child.pid!);
    p.child.kill('SIGKILL');
    await p.done;
    const deadline = Date.now() + 30_000;
    while ([...pids.values()].some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect([...pids.values()].filter(alive)).toEqual([]);
    const status = readStatus(out);
    expect(status.state).toBe('stopped');
    expect(listCheckpoints(out).at(-1)).toBe(`step-${String(status.step).padStart(8, '0')}`);
  });
});

describe('bad setups are clear errors within the timeout, never a hang', () => {
  it('a global batch the world size does not divide: refused before anything is written', async () => {
    const out = newOut();
    const p = start(cliArgs(out, '--steps', '5', '--nproc', '2', '--batch-size', '15'));
    const { code } = await p.done;
    expect(code).toBe(2);
    expect(p.stderr()).toMatch(/^spn: --batch-size 15 does not split over 2 ranks: the batch size is the global batch, and each rank takes batch \/ world images \(a multiple of 2, e\.g\. 14 or 16; or another number of ranks\)$/m);
    expect(p.stderr()).toMatch(/^\[rank 1\] spn: rank 0 could not open the run: --batch-size 15 does not split/m);
    expect(p.stderr()).toMatch(/spn: rank \d of 2 \(pid \d+\) exited with code 2, the first to fail/);
    expect(fs.existsSync(out)).toBe(false);
  });

  it('ranks started with different options fail together, naming the option and the ranks', async () => {
    const port = await freePort();
    const out = newOut();
    const t0 = Date.now();
    const ps = [0, 1].map((r) => start([...cliArgs(out, '--steps', '5'), ...(r === 1 ? ['--lr', '0.002'] : [])], { env: rankEnv(r, 2, port) }));
    for (const p of ps) {
      expect((await p.done).code, p.stderr()).toBe(2);
      expect(p.stderr()).toContain('spn: the ranks were started with different options: --lr (unset) on rank 0 but 0.002 on rank 1; every rank must run the same spn train command');
    }
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(fs.existsSync(out)).toBe(false);
  });

  it('ranks that read different data under the same spec fail together before anything is written', async () => {
    const port = await freePort();
    const dirs = [0, 1].map((r) => {
      const d = path.join(work, `data-rank${r}`);
      fs.mkdirSync(d);
      writeIdx(path.join(d, 'train-images.gz'), [64, 8, 8], smoothImages(64, 8, 1 + r));
      writeIdx(path.join(d, 't10k-images.gz'), [16, 8, 8], smoothImages(16, 8, 2));
      return d;
    });
    const ps = [0, 1].map((r) => start([cli, 'train', '--data', 'idx:train-images.gz', '--preset', 'tiny', '--out', 'run', '--steps', '5', '--quiet'], { cwd: dirs[r]!, env: rankEnv(r, 2, port) }));
    for (const p of ps) {
      expect((await p.done).code, p.stderr()).toBe(3);
      expect(p.stderr()).toMatch(/^spn: data idx:train-images\.gz differs between the ranks: rank 0 has train: 64 images of 8×8×1 \(sha256 of a sample \w{12}\); test: .*, rank 1 has train: 64 images of 8×8×1 \(sha256 of a sample \w{12}\)/);
    }
    for (const d of dirs) expect(fs.existsSync(path.join(d, 'run'))).toBe(false);
  });

  it('a rendezvous port in use on rank 0 fails at once', async () => {
    const srv = net.createServer();
    await new Promise<void>((resolve) => srv.listen(0, resolve));
    const port = (srv.address() as net.AddressInfo).port;
    try {
      const t0 = Date.now();
      const p = start(cliArgs(newOut(), '--steps', '5', '--dist-timeout', '5'), { env: rankEnv(0, 2, port) });
      const { code, at } = await p.done;
      expect(code).toBe(1);
      expect(p.stderr()).toMatch(new RegExp(`^spn: TCPStore: rank 0 hosting the rendezvous on port ${port} for 2 ranks \\(timeout 5s\\): .*address already in use`, 'im'));
      expect(at - t0).toBeLessThan(10_000); // the process's start included
    } finally {
      srv.close();
    }
  });

  it('through the launcher, a port in use fails rank 0 at once and the launcher stops rank 1 within seconds', async () => {
    const srv = net.createServer();
    await new Promise<void>((resolve) => srv.listen(0, resolve));
    const port = (srv.address() as net.AddressInfo).port;
    try {
      const t0 = Date.now();
      const p = start(cliArgs(newOut(), '--steps', '5', '--nproc', '2', '--master-port', String(port)));
      const { code, at } = await p.done;
      expect(code).toBe(1);
      expect(p.stderr()).toMatch(/address already in use/i);
      expect(p.stderr()).toMatch(/spn: rank 0 of 2 \(pid \d+\) exited with code 1, the first to fail; rank 1 was stopped by SIG(TERM|KILL)\n$/);
      expect(at - t0).toBeLessThan(3000 + 5000 + 5000); // settle + grace + the processes' start
    } finally {
      srv.close();
    }
  });

  it('an unreachable master fails within the timeout (libtorch 2.x: about twice)', async () => {
    const port = await freePort();
    const t0 = Date.now();
    const p = start(cliArgs(newOut(), '--steps', '5', '--dist-timeout', '2'), { env: rankEnv(1, 2, port) });
    const { code, at } = await p.done;
    expect(code).toBe(1);
    expect(p.stderr()).toMatch(new RegExp(`^spn: TCPStore: rank 1 joining the rendezvous at 127\\.0\\.0\\.1:${port} \\(timeout 2s\\): .*timed out`, 'm'));
    expect(at - t0).toBeLessThan(2 * 2000 + 2500 + 5000); // the process's start included
  });
});

describe('launch flags', () => {
  const torchrun = { RANK: '1', WORLD_SIZE: '4', LOCAL_RANK: '1', LOCAL_WORLD_SIZE: '2', MASTER_ADDR: 'node0', MASTER_PORT: '29500' };

  it('one process by default; --nproc launches; --nnodes needs the master address and this node\'s rank', () => {
    expect(planLaunch({}, {})).toEqual({ mode: 'single' });
    expect(planLaunch({ nproc: 2 }, {})).toEqual({ mode: 'launch', nproc: 2, nnodes: 1, nodeRank: 0, masterAddr: '127.0.0.1', masterPort: null });
    expect(planLaunch({ nproc: 4, nnodes: 2, nodeRank: 1, masterAddr: 'node0' }, {})).toEqual({ mode: 'launch', nproc: 4, nnodes: 2, nodeRank: 1, masterAddr: 'node0', masterPort: 29500 });
    expect(() => planLaunch({ nnodes: 2, nodeRank: 0 }, {})).toThrow(/^--nnodes 2 needs --master-addr: the address of node 0/);
    expect(() => planLaunch({ nnodes: 2, masterAddr: 'a' }, {})).toThrow(/^--nnodes 2 needs --node-rank/);
    expect(() => planLaunch({ nnodes: 2, nodeRank: 2, masterAddr: 'a' }, {})).toThrow(/^--node-rank 2: expected 0 to 1 for --nnodes 2$/);
    expect(() => planLaunch({ masterPort: 1234 }, {})).toThrow(/^--master-port applies to a job of several processes/);
  });

  it('a PyTorchJob pod (RANK, WORLD_SIZE and MASTER_* alone) is the only rank on its machine', () => {
    expect(jobFromEnv({ RANK: '3', WORLD_SIZE: '4', MASTER_ADDR: 'pod-0', MASTER_PORT: '23456' })).toEqual({ rank: 3, worldSize: 4, localRank: 0, localWorldSize: 1, masterAddr: 'pod-0', masterPort: 23456 });
    expect(jobFromEnv(torchrun)).toEqual({ rank: 1, worldSize: 4, localRank: 1, localWorldSize: 2, masterAddr: 'node0', masterPort: 29500 });
  });

  it('each rank\'s device: gloo on cpu; nccl on cuda:LOCAL_RANK; one explicit GPU only for one rank per machine', () => {
    const rv = { rank: 1, worldSize: 4, localRank: 1, localWorldSize: 2, masterAddr: 'node0', masterPort: 29500 };
    expect(rankDevice('cpu', rv)).toEqual({ device: 'cpu', backend: 'gloo' });
    expect(() => rankDevice('cuda:1', rv)).toThrow(/^--device cuda:1 with 2 ranks on this machine: give --device cuda, and each rank uses cuda:LOCAL_RANK \(this one cuda:1\)$/);
    expect(rankDevice('cuda:3', { ...rv, localRank: 0, localWorldSize: 1 })).toEqual({ device: 'cuda:3', backend: 'nccl' });
    if (torch.cuda.deviceCount() < 2) expect(() => rankDevice('cuda', rv)).toThrow(/^LOCAL_RANK=1 with --device cuda: this machine has [01] CUDA devices?; start at most [01] ranks? on it \(one per GPU\)$/);
  });

  it('a process with the torchrun variables is a worker; its launch flags must agree with them', () => {
    expect(planLaunch({}, torchrun)).toEqual({ mode: 'worker' });
    expect(planLaunch({ nproc: 2, nnodes: 2, nodeRank: 0, masterAddr: 'node0', masterPort: 29500 }, torchrun)).toEqual({ mode: 'worker' });
    expect(() => planLaunch({ nproc: 8 }, torchrun)).toThrow(/^--nproc 8 disagrees with LOCAL_WORLD_SIZE=2: this process is rank 1 of WORLD_SIZE=4 \(RANK\/WORLD_SIZE set by its launcher, e\.g\. torchrun\), a worker that launches nothing; drop --nproc or make it agree$/);
    expect(() => planLaunch({ nnodes: 3 }, torchrun)).toThrow(/^--nnodes 3 × 2 processes per machine disagrees with WORLD_SIZE=4/);
    expect(() => planLaunch({ nodeRank: 1 }, torchrun)).toThrow(/^--node-rank 1 disagrees with RANK \/ LOCAL_WORLD_SIZE=0/);
    expect(() => planLaunch({ masterPort: 1 }, torchrun)).toThrow(/^--master-port 1 disagrees with MASTER_PORT=29500/);
  });
});

describe('the benchmark report', () => {
  it('BENCHMARKS.md shows processes against threads for both builds, the bytes all-reduced, the waiting share and the two-host table with its targets', () => {
    const results = path.join(work, 'bench-results');
    fs.mkdirSync(results, { recursive: true });
    const entry = (label: string, build: 'this' | 'before', processes: number, threads: number, sps: number, comm: number | null) => ({
      label, preset: 'fmnist-cpu', build, processes, threads, precision: 'fp32' as const, status: 'ok' as const, subpixels_per_s: sps, subpixels_per_s_all: [sps], step_ms: 1000 * 512 / sps, comm_share: comm,
    });
    const report: DistributedReport = {
      benchmark: 'distributed', machine: { cpus: 2, cpuModel: 'Test CPU', cores: 2, memGB: 8, platform: 'linux', node: 'v20' }, libtorch: '1.13.0', threads: 1,
      device: 'cpu', date: '2026-01-01T00:00:00Z', command: 'npm run bench -- --only distributed', quick: false,
      presets: [{ preset: 'fmnist-cpu', data: 'fashion-mnist', batch: 32, parameters: 1087952, precision: 'fp32', allreduce_bytes_per_step: 1087952 * 4 + 32 }],
      before: { dir: '/tmp/before', commit: 'e5da8e1aaaaaaaaa' },
      warmup_records: 2, records: 8, target: '2 processes of 1 thread at least 1.5× one process on 1 thread',
      entries: [entry('1 process × 1 thread', 'this', 1, 1, 10000, null), entry('2 processes × 1 thread', 'this', 2, 1, 16000, 0.05), entry('1 process × 2 threads', 'this', 1, 2, 16000, null), entry('2 processes × 1 thread', 'before', 2, 1, 13000, 0.19)],
      comparisons: [{ preset: 'fmnist-cpu', build: 'this', precision: 'fp32', speedup_2_processes: 1.6, scaling_efficiency: 0.8, processes_over_threads: 1 }, { preset: 'fmnist-cpu', build: 'before', precision: 'fp32', speedup_2_processes: 1.3, scaling_efficiency: 0.65, processes_over_threads: 0.81 }],
      two_hosts: { preset: 'cifar-cpu', entries: [{ rate: '10gbit', mode: 'overlap', status: 'ok', step_ms: 400, subpixels_per_s: 20000, comm_share: 0.08 }, { rate: '10gbit', mode: 'one bucket', status: 'ok', step_ms: 450, subpixels_per_s: 17800, comm_share: 0.15 }] },
    };
    fs.writeFileSync(path.join(results, 'distributed.json'), JSON.stringify(report));
    const md = renderBenchmarksMd(results, work);
    expect(md).toContain('## Data-parallel training: processes against threads, and over a link');
    expect(md).toContain('| fmnist-cpu | 2 processes × 1 thread | this | fp32 | 16,000 | 32.0 | 5.0% |');
    expect(md).toContain('| fmnist-cpu | 2 processes × 1 thread | before (e5da8e1) | fp32 | 13,000 | 39.4 | 19.0% |');
    expect(md).toContain('4,351,840 bytes all-reduced per step');
    expect(md).toContain('| fmnist-cpu | this | fp32 | 1.60× | 80.0% | 1.00× | met |');
    expect(md).toContain('| fmnist-cpu | before (e5da8e1) | fp32 | 1.30× | 65.0% | 0.81× | missed |');
    expect(md).toContain("| 10gbit | the Reducer's buckets (overlapped with backward) | 400.0 | 20,000 | 8.0% | met |");
    expect(md).toContain('| 10gbit | one bucket (reduced after backward) | 450.0 | 17,800 | 15.0% |  |');
  });
});
