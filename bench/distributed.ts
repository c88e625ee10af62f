// Data-parallel training throughput: sub-pixels per second of `spn train` itself (the compiled
// CLI, dist/src/cli/main.js, on the preset's data) as one process on one thread, as two processes
// of one thread each (`--nproc 2`: two ranks, Gloo), and as one process on two threads (the
// default on a 2-core CPU), for fmnist-cpu and cifar-cpu, in the preset's precision as `spn
// train` resolves it on this machine. With --before <checkout>, the same runs of another build
// of spn (e.g. the commit before the Reducer), side by side in one report. The share of rank 0's
// step spent *waiting* on the other ranks is the trainer's `comm_share`: here the Reducer's
// exposed communication (what backward waited for after its computation ended) plus the
// per-step agreement; in a build that all-reduces after backward, all of its collectives.
//
// --two-hosts: two network namespaces joined by a veth pair whose sending sides are rate-limited
// with `tc qdisc ... tbf` (1 and 10 Gbit/s), one rank in each, cifar-cpu: step time and exposed
// communication with the overlap (DDP's buckets), without it (one bucket of every gradient,
// reduced when backward ends) and in the --before build. Needs root and iproute2; the
// namespaces' addresses (10.213.1.0/24) exist only inside them.
//
//   node dist/bench/distributed.js [--device cpu|cuda] [--quick] [--preset NAME] [--before DIR] [--two-hosts] [--json out.json]
//
// Each configuration trains until `warmup + records` train records (10 steps each) are logged,
// then stops with SIGINT as a user would; the throughput is the median of the measured records.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
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

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const cliOf = (checkout: string) => path.join(checkout, 'dist', 'src', 'cli', 'main.js');
/** The CIFAR-10 subset of the workplace (../shared/data beside the checkout). */
const CIFAR = path.resolve(ROOT, '..', 'shared', 'data', 'cifar10-subset');

/** The builds measured: this checkout, and the --before one. */
export type BuildName = 'this' | 'before';

export interface DistributedEntry {
  /** e.g. "2 processes × 1 thread". */
  label: string;
  preset: string;
  build: BuildName;
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
  /** Share of rank 0's step spent waiting on the other ranks (median of the records); null for one process. */
  comm_share: number | null;
}

export interface DistributedComparison {
  preset: string;
  build: BuildName;
  precision: 'bf16' | 'fp32';
  /** 2 processes × 1 thread over 1 process × 1 thread (the issue's target: at least 1.5). */
  speedup_2_processes: number | null;
  /** speedup_2_processes / 2. */
  scaling_efficiency: number | null;
  /** 2 processes × 1 thread over 1 process × 2 threads: above 1, ranks beat threads. */
  processes_over_threads: number | null;
}

export interface PresetInfo {
  preset: string;
  data: string;
  /** Global batch. */
  batch: number;
  parameters: number;
  /** The preset's precision as `spn train` resolves it here. */
  precision: 'bf16' | 'fp32';
  /** Gradient bytes all-reduced per step (float32, one per parameter) plus the per-step agreement (4 float64). */
  allreduce_bytes_per_step: number;
}

/** One rank in each of two network namespaces over a rate-limited veth pair. */
export interface TwoHostEntry {
  rate: string;
  mode: 'overlap' | 'one bucket' | 'before';
  status: 'ok' | 'failed';
  reason?: string;
  step_ms: number | null;
  subpixels_per_s: number | null;
  comm_share: number | null;
}

export interface DistributedReport extends ReportHeader<'distributed'> {
  presets: PresetInfo[];
  /** The --before build: its checkout and commit, or null. */
  before: { dir: string; commit: string | null } | null;
  warmup_records: number;
  records: number;
  target: string;
  entries: DistributedEntry[];
  comparisons: DistributedComparison[];
  two_hosts: { preset: string; entries: TwoHostEntry[]; note?: string } | null;
  note?: string;
}

export interface DistributedOptions {
  device?: 'cpu' | 'cuda';
  quick?: boolean;
  /** Presets with their data (default fmnist-cpu on fashion-mnist, cifar-cpu on the CIFAR-10 subset when it is there). */
  presets?: { preset: string; data: string }[];
  /** Another checkout of spn (built: dist/ and its addon) measured beside this one. */
  before?: string;
  twoHosts?: boolean;
  warmupRecords?: number;
  records?: number;
  log?: (line: string) => void;
}

interface Config { processes: number; threads: number; precision: 'bf16' | 'fp32' }

/** How one configuration is started: the processes and where rank 0 writes its run folder. */
interface Launch { procs: ChildProcess[]; run: string; cleanup: () => void }

/** spn train with these arguments: one process, or --nproc ranks through the launcher. */
function launchLocal(cli: string, args: string[], out: string): Launch {
  const run = path.join(out, 'run');
  const child = spawn(process.execPath, [cli, 'train', '--out', run, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  return { procs: [child], run, cleanup: () => {} };
}

/** Trains until enough train records are logged, then stops rank 0 with SIGINT (every rank stops after the same step). */
async function measureLaunch(launch: () => Launch, o: { warmup: number; records: number; subpixelsPerStep: number }): Promise<{ ok: true; sps: number; all: number[]; comm: number | null } | { ok: false; reason: string }> {
  const l = launch();
  let stderr = '';
  for (const p of l.procs) p.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = l.procs.map((p) => new Promise<number | null>((resolve) => p.on('close', (code) => resolve(code))));
  const metrics = path.join(l.run, 'metrics.jsonl');
  const want = o.warmup + o.records;
  let recs: { subpixels_per_s: number; comm_share?: number }[] = [];
  try {
    for (;;) {
      if (fs.existsSync(metrics)) {
        recs = fs.readFileSync(metrics, 'utf8').split('\n').filter((x) => x.trim()).map((x) => JSON.parse(x) as { kind?: string; subpixels_per_s: number; comm_share?: number }).filter((r) => (r as { kind?: string }).kind === 'train');
      }
      if (recs.length >= want || l.procs.some((p) => p.exitCode !== null)) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    l.procs[0]!.kill('SIGINT');
    const codes = await Promise.all(exited);
    if (recs.length < want) return { ok: false, reason: `spn train exited (codes ${codes.join(', ')}) after ${recs.length} of ${want} train records: ${stderr.trim().split('\n').slice(-3).join(' | ')}` };
  } finally {
    for (const p of l.procs) if (p.exitCode === null) p.kill('SIGKILL');
    l.cleanup();
  }
  const measured = recs.slice(o.warmup, want);
  const comm = measured.map((r) => r.comm_share).filter((x): x is number => typeof x === 'number');
  return { ok: true, sps: median(measured.map((r) => r.subpixels_per_s)), all: measured.map((r) => r.subpixels_per_s), comm: comm.length ? median(comm) : null };
}

/** The flags that leave nothing but training steps while measuring. */
const ONLY_STEPS = ['--steps', '1000000', '--quiet', '--set', 'train.evalEverySec=1e9', '--set', 'train.sampleEverySec=1e9', '--set', 'train.checkpointEverySec=1e9'];

async function measure(c: Config, o: { cli: string; build: BuildName; preset: string; data: string; device: string; warmup: number; records: number; subpixelsPerStep: number; log: (line: string) => void }): Promise<DistributedEntry> {
  const label = `${c.processes} process${c.processes > 1 ? 'es' : ''} × ${c.threads} thread${c.threads > 1 ? 's' : ''}`;
  const base: DistributedEntry = { label, preset: o.preset, build: o.build, processes: c.processes, threads: c.threads, precision: c.precision, status: 'failed', subpixels_per_s: null, subpixels_per_s_all: [], step_ms: null, comm_share: null };
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'spn-bench-dist-'));
  const args = [
    '--preset', o.preset, '--data', o.data, '--device', o.device, '--threads', String(c.threads), '--set', `train.precision=${c.precision}`, ...ONLY_STEPS,
    ...(c.processes > 1 ? ['--nproc', String(c.processes)] : []),
  ];
  try {
    const r = await measureLaunch(() => launchLocal(o.cli, args, out), o);
    if (!r.ok) return { ...base, reason: r.reason };
    const entry: DistributedEntry = { ...base, status: 'ok', subpixels_per_s: r.sps, subpixels_per_s_all: r.all, step_ms: (1000 * o.subpixelsPerStep) / r.sps, comm_share: r.comm };
    o.log(`${o.preset} (${o.build}) ${label}, ${c.precision}: ${Math.round(r.sps)} sub-pixels/s, ${entry.step_ms!.toFixed(1)} ms/step${entry.comm_share !== null ? `, ${(100 * entry.comm_share).toFixed(1)}% of the step waiting on the other rank` : ''}`);
    return entry;
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}

/** A free TCP port on this machine (the namespaces have their own, but the test's addresses are fixed). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

const ip = (...args: string[]) => spawnSync('ip', args, { encoding: 'utf8' });

/**
 * Two network namespaces joined by a veth pair, addresses `${subnet}.1` and `${subnet}.2` (/24),
 * each end's sending side limited to `rate` by tbf when given: two hosts on one machine (this
 * benchmark and test/train/distributed.test.ts). The reason instead when that is not possible
 * here (it needs root and iproute2).
 */
export function makeHosts(o: { subnet: string; tag: string; rate?: string }): { ns: string[]; veth: string[]; addr: string[]; remove: () => void } | string {
  const ns = [`spnA${o.tag}`, `spnB${o.tag}`];
  const veth = [`spa${o.tag}`, `spb${o.tag}`];
  const addr = [`${o.subnet}.1`, `${o.subnet}.2`];
  const remove = () => {
    for (const n of ns) ip('netns', 'del', n); // takes its end of the veth pair with it
  };
  const made = ip('netns', 'add', ns[0]!);
  if (made.status !== 0) return `ip netns is not possible here (${(made.stderr || made.error?.message || '').trim()}): two namespaces need root and iproute2`;
  const steps = [
    ['netns', 'add', ns[1]!], ['link', 'add', veth[0]!, 'type', 'veth', 'peer', 'name', veth[1]!],
    ['link', 'set', veth[0]!, 'netns', ns[0]!], ['link', 'set', veth[1]!, 'netns', ns[1]!],
    ['-n', ns[0]!, 'addr', 'add', `${addr[0]}/24`, 'dev', veth[0]!], ['-n', ns[1]!, 'addr', 'add', `${addr[1]}/24`, 'dev', veth[1]!],
    ['-n', ns[0]!, 'link', 'set', veth[0]!, 'up'], ['-n', ns[1]!, 'link', 'set', veth[1]!, 'up'],
    ['-n', ns[0]!, 'link', 'set', 'lo', 'up'], ['-n', ns[1]!, 'link', 'set', 'lo', 'up'],
  ];
  if (o.rate) {
    // tbf's bucket holds 10 ms at the rate (at least 64 kB), its queue 50 ms.
    const bits = Number(/^(\d+)gbit$/.exec(o.rate)?.[1] ?? NaN) * 1e9;
    const burst = `${Math.max(64, Math.round(bits / 8 / 100 / 1024))}kb`;
    for (const [i, n] of ns.entries()) steps.push(['netns', 'exec', n, 'tc', 'qdisc', 'add', 'dev', veth[i]!, 'root', 'tbf', 'rate', o.rate, 'burst', burst, 'latency', '50ms']);
  }
  for (const st of steps) {
    const r = ip(...st);
    if (r.status !== 0) {
      remove();
      return `ip ${st.join(' ')}: ${r.stderr.trim()}`;
    }
  }
  return { ns, veth, addr, remove };
}

/** The ranks of a two-rank job, one in each namespace; rank 0 writes the run folder. */
function launchHosts(cli: string, args: string[], out: string, hosts: { ns: string[]; veth: string[]; addr: string[] }, port: number): Launch {
  const run = path.join(out, 'run');
  const procs = [0, 1].map((r) => spawn('ip', ['netns', 'exec', hosts.ns[r]!, process.execPath, cli, 'train', '--out', run, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, RANK: String(r), WORLD_SIZE: '2', LOCAL_RANK: '0', LOCAL_WORLD_SIZE: '1', MASTER_ADDR: hosts.addr[0]!, MASTER_PORT: String(port), GLOO_SOCKET_IFNAME: hosts.veth[r]! },
  }));
  return { procs, run, cleanup: () => {} };
}

async function twoHosts(o: { clis: { build: BuildName; cli: string }[]; preset: string; data: string; precision: 'bf16' | 'fp32'; warmup: number; records: number; subpixelsPerStep: number; rates: string[]; log: (line: string) => void }): Promise<{ entries: TwoHostEntry[]; note?: string }> {
  const entries: TwoHostEntry[] = [];
  for (const rate of o.rates) {
    const hosts = makeHosts({ subnet: '10.213.1', tag: `b${process.pid % 100000}`, rate });
    if (typeof hosts === 'string') return { entries, note: hosts };
    try {
      const modes: { mode: TwoHostEntry['mode']; cli: string; extra: string[] }[] = [];
      const mine = o.clis.find((c) => c.build === 'this')!.cli;
      modes.push({ mode: 'overlap', cli: mine, extra: [] });
      modes.push({ mode: 'one bucket', cli: mine, extra: ['--bucket-cap-mb', '4096', '--first-bucket-cap-mb', '4096'] });
      const before = o.clis.find((c) => c.build === 'before');
      if (before) modes.push({ mode: 'before', cli: before.cli, extra: [] });
      for (const m of modes) {
        const out = fs.mkdtempSync(path.join(os.tmpdir(), 'spn-bench-hosts-'));
        const args = ['--preset', o.preset, '--data', o.data, '--device', 'cpu', '--threads', '1', '--set', `train.precision=${o.precision}`, ...ONLY_STEPS, ...m.extra];
        const port = await freePort();
        try {
          const r = await measureLaunch(() => launchHosts(m.cli, args, out, hosts, port), o);
          const e: TwoHostEntry = r.ok
            ? { rate, mode: m.mode, status: 'ok', step_ms: (1000 * o.subpixelsPerStep) / r.sps, subpixels_per_s: r.sps, comm_share: r.comm }
            : { rate, mode: m.mode, status: 'failed', reason: r.reason, step_ms: null, subpixels_per_s: null, comm_share: null };
          entries.push(e);
          o.log(`two hosts at ${rate}, ${m.mode}: ${e.status === 'ok' ? `${e.step_ms!.toFixed(1)} ms/step, ${(100 * (e.comm_share ?? 0)).toFixed(1)}% waiting` : e.reason}`);
        } finally {
          fs.rmSync(out, { recursive: true, force: true });
        }
      }
    } finally {
      hosts.remove();
    }
  }
  return { entries };
}

function presetInfo(preset: string, data: string, device: string): PresetInfo & { subpixelsPerStep: number } {
  const tc = parseTrainConfig(getPreset(preset).train);
  const model = new SPN(presetModel(preset));
  const parameters = model.numParameters();
  const subpixelsPerStep = tc.batchSize * tc.slicesPerImage * model.dimsPerSlice;
  model.dispose();
  const precision = useBf16(tc.precision, device === 'cuda') ? 'bf16' : 'fp32';
  return { preset, data, batch: tc.batchSize, parameters, precision, allreduce_bytes_per_step: parameters * 4 + 4 * 8, subpixelsPerStep };
}

export async function runDistributedBench(opts: DistributedOptions = {}): Promise<DistributedReport> {
  const device = opts.device ?? 'cpu';
  const quick = opts.quick ?? false;
  const log = opts.log ?? (() => {});
  checkDevice(device);
  const cli = cliOf(ROOT);
  if (!fs.existsSync(cli)) throw new ArgError(`${cli} is missing: build with \`npm run build\` first (the benchmark runs spn train itself)`);
  const clis: { build: BuildName; cli: string }[] = [{ build: 'this', cli }];
  let before: DistributedReport['before'] = null;
  if (opts.before) {
    const b = cliOf(path.resolve(opts.before));
    if (!fs.existsSync(b)) throw new ArgError(`--before ${opts.before}: no ${b}; build that checkout first (npm ci, or node native/build.mjs && npx tsc)`);
    clis.push({ build: 'before', cli: b });
    const head = spawnSync('git', ['-C', opts.before, 'rev-parse', 'HEAD'], { encoding: 'utf8' });
    before = { dir: path.resolve(opts.before), commit: head.status === 0 ? head.stdout.trim() : null };
  }
  const presets = opts.presets ?? [
    { preset: 'fmnist-cpu', data: 'fashion-mnist' },
    ...(quick || !fs.existsSync(CIFAR) ? [] : [{ preset: 'cifar-cpu', data: `cifar10:${CIFAR}` }]),
  ];
  const warmup = opts.warmupRecords ?? (quick ? 1 : 2);
  const records = opts.records ?? (quick ? 2 : 6);
  const entries: DistributedEntry[] = [];
  const infos = presets.map((p) => presetInfo(p.preset, p.data, device));
  let note: string | undefined;
  for (const info of infos) {
    let configs: Config[];
    if (device === 'cuda') {
      const gpus = torch.cuda.deviceCount();
      configs = [{ processes: 1, threads: 1, precision: info.precision }, ...(gpus > 1 ? [{ processes: gpus, threads: 1, precision: info.precision }] : [])];
      if (gpus < 2) note = 'one GPU here: data parallelism on CUDA (NCCL) needs one GPU per rank, so only one process was measured';
    } else {
      configs = [{ processes: 1, threads: 1, precision: info.precision }, { processes: 2, threads: 1, precision: info.precision }, { processes: 1, threads: 2, precision: info.precision }];
    }
    for (const c of configs) for (const b of clis) entries.push(await measure(c, { ...b, preset: info.preset, data: info.data, device, warmup, records, subpixelsPerStep: info.subpixelsPerStep, log }));
  }
  const rate = (e: { preset: string; build: BuildName; precision: string }, processes: number, threads: number) =>
    entries.find((x) => x.preset === e.preset && x.build === e.build && x.precision === e.precision && x.processes === processes && x.threads === threads)?.subpixels_per_s ?? null;
  const comparisons: DistributedComparison[] = device === 'cuda' ? [] : infos.flatMap((info) => clis.map(({ build }) => {
    const key = { preset: info.preset, build, precision: info.precision };
    const [one, two, threads2] = [rate(key, 1, 1), rate(key, 2, 1), rate(key, 1, 2)];
    const speedup = one && two ? two / one : null;
    return { ...key, speedup_2_processes: speedup, scaling_efficiency: speedup === null ? null : speedup / 2, processes_over_threads: two && threads2 ? two / threads2 : null };
  }));
  for (const c of comparisons) {
    const f = (x: number | null) => (x === null ? '–' : x.toFixed(2));
    log(`${c.preset} (${c.build}): 2 processes = ${f(c.speedup_2_processes)}× one process on one thread (efficiency ${f(c.scaling_efficiency)}); ${f(c.processes_over_threads)}× one process on two threads`);
  }
  let hosts: DistributedReport['two_hosts'] = null;
  if (opts.twoHosts && device === 'cpu') {
    const info = infos.find((i) => i.preset === 'cifar-cpu') ?? infos[0]!;
    hosts = { preset: info.preset, ...(await twoHosts({ clis, preset: info.preset, data: info.data, precision: info.precision, warmup, records, subpixelsPerStep: info.subpixelsPerStep, rates: quick ? ['10gbit'] : ['1gbit', '10gbit'], log })) };
  }
  return {
    ...reportHeader('distributed', device, quick),
    presets: infos.map(({ subpixelsPerStep: _, ...p }) => p),
    before, warmup_records: warmup, records,
    target: '2 processes of 1 thread at least 1.5× one process on 1 thread; over two hosts at 10 Gbit/s, at most 10% of the step exposed communication',
    entries, comparisons, two_hosts: hosts, ...(note ? { note } : {}),
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
      before: { type: 'string' },
      'two-hosts': { type: 'boolean', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  const report = await runDistributedBench({
    device: values.device as 'cpu' | 'cuda',
    quick: values.quick,
    ...(values.preset ? { presets: [{ preset: values.preset, data: values.data ?? 'fashion-mnist' }] } : {}),
    ...(values.before ? { before: values.before } : {}),
    twoHosts: values['two-hosts'],
    log: (line) => process.stderr.write(line + '\n'),
  });
  emitReport(report, values.json);
}

runIfMain(import.meta.url, 'bench/distributed', main);
