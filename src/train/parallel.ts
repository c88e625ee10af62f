// Data-parallel training (issue #13): what one rank of a job does beyond what a single process
// does, on the c10d process group of src/torch/distributed.ts (Gloo on CPU, NCCL on CUDA). The
// trainer's loop is the same on every rank; session.ts calls in here at the few places where the
// ranks must agree.
//
// The examples are exactly a single process's. Every rank keeps the same BatchIterator over the
// global batch (same seed, same position) and takes its contiguous share of it, images
// [r·b/W, (r+1)·b/W). The target slices are drawn for the whole global batch from the CPU
// generator, whose state is the same on every rank (seeded alike, saved in checkpoints, restored
// from rank 0's), and rank r takes the slices of its images. Its loss is the mean over its share;
// the gradients, averaged over the ranks in coalesced buckets (allReduceCoalesced), are then the
// gradient of the global batch's mean loss, equal to a single process's up to the order of float
// additions.
//
// Every rank then takes the identical optimizer step. After the gradients, one small float64
// all-reduce per step (`step` below) gives every rank the same four numbers: the global batch's
// loss (the mean of the ranks' losses: what the log, the NaN check and onStep see), rank 0's
// clock (so the time budget, the learning-rate schedule of a --minutes run and the moments to
// evaluate, sample and checkpoint are decided alike everywhere), rank 0's stop flag (Ctrl-C:
// every rank stops after the same step) and rank 0's gradient norm (clipping scales every rank's
// gradient by the same number, whatever each rank's thread count did to its own norm's rounding).
// Clipping, AdamW and the EMA are elementwise after that, so the ranks' weights stay bitwise
// identical; checkWeights compares their sha256 at every checkpoint and at the end.
//
// Dropout draws from its own stream, seeded from (seed, step, rank) for each forward and
// backward pass (session.ts withDropoutStream), apart from the shared generator of the data and
// slice draws: ranks drop different units, as different examples would, and the shared draws
// stay in step.
//
// Test bits/dim: rank r evaluates batches r, r+W, r+2W, ... of the single process's partition
// into batches (so each batch, and each image's NLL, is computed exactly as one process computes
// it), the per-image NLLs are gathered by a float64 sum (each entry has one non-zero
// contribution, so the sum is exact), and every rank adds them up in the single process's order:
// the number equals a single process's bit for bit.
//
// Setup: the ranks compare their options (checkOptions: the same command everywhere) and, after
// loading, their data (checkData); rank 0 alone reads and writes the run folder and tells the
// others what they need (fromRoot: the data to load, the config, a checkpoint's bytes); rank 0's
// initial weights are broadcast. An error on one rank during setup reaches the others as an
// error naming that rank (fromRoot, agree), and a failed collective names the ranks on this
// machine that have exited (explain).
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { performance } from 'node:perf_hooks';
import { ArgError, SpnError, type SpnErrorCode } from '../errors.js';
import * as torch from '../torch/index.js';
import { envRendezvous, initProcessGroup, type Backend, type ProcessGroup, type Rendezvous } from '../torch/distributed.js';
import type { ImageSet } from '../data/types.js';
import { sliceSet } from '../data/sets.js';
import type { SPN } from '../spn/model.js';
import { clipGradNorm, gradNorm } from '../torch/optim/index.js';
import { evaluate, type EvalResult } from '../store/evaluate.js';
import type { TrainOptions } from './options.js';

/** Seconds any rank waits for the others (the rendezvous, each collective, each store read) by default. */
export const DEFAULT_DIST_TIMEOUT_S = 600;

/**
 * This process's place in the job from the torchrun variables. Without LOCAL_RANK (a Kubernetes
 * PyTorchJob starts one process per pod and sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT
 * only), the process is alone on its machine: LOCAL_RANK 0 (cuda:0), LOCAL_WORLD_SIZE 1 unless
 * set, as PyTorch scripts commonly assume.
 */
export function jobFromEnv(env: NodeJS.ProcessEnv = process.env): Rendezvous {
  if (env.LOCAL_RANK !== undefined && env.LOCAL_RANK !== '') return envRendezvous(env);
  return envRendezvous({ ...env, LOCAL_RANK: '0', LOCAL_WORLD_SIZE: env.LOCAL_WORLD_SIZE || '1' });
}

/**
 * This rank's device and backend for the run's device: 'cpu' on Gloo; 'cuda' on NCCL, rank r
 * on cuda:LOCAL_RANK; 'cuda:N' only with one rank on the machine.
 */
export function rankDevice(device: string, rv: Rendezvous): { device: string; backend: Backend } {
  if (device === 'cpu') return { device: 'cpu', backend: 'gloo' };
  const m = /^cuda(?::(\d+))?$/.exec(device);
  if (!m) throw new ArgError(`--device ${device}: expected cpu, cuda or cuda:N`);
  if (m[1] !== undefined) {
    if (rv.localWorldSize > 1) {
      throw new ArgError(`--device ${device} with ${rv.localWorldSize} ranks on this machine: give --device cuda, and each rank uses cuda:LOCAL_RANK (this one cuda:${rv.localRank})`);
    }
    return { device, backend: 'nccl' };
  }
  const count = torch.cuda.deviceCount();
  if (rv.localRank >= count) {
    throw new ArgError(`LOCAL_RANK=${rv.localRank} with --device cuda: this machine has ${count} CUDA device${count === 1 ? '' : 's'}; start at most ${count} rank${count === 1 ? '' : 's'} on it (one per GPU)`);
  }
  return { device: `cuda:${rv.localRank}`, backend: 'nccl' };
}

/**
 * libtorch threads of one rank on a CPU when neither --threads nor SPN_THREADS says: what
 * torch/threads.ts gives the work in one process, shared out among the machine's ranks.
 */
export function rankThreads(work: torch.ThreadWork, localWorldSize: number): number {
  return Math.max(1, Math.floor(torch.threadsFor(work) / localWorldSize));
}

/** The options that shape a run, in a fixed order: every rank must have the same. */
const RUN_OPTIONS = [
  'data', 'preset', 'out', 'resume', 'initFrom', 'minutes', 'steps', 'seed', 'device', 'stage', 'bits', 'givenBits',
  'scale', 'subsample', 'size', 'batchSize', 'lr', 'set', 'interruptAtStep',
] as const satisfies readonly (keyof TrainOptions)[];

function optionsRecord(o: TrainOptions): Record<string, unknown> {
  const rec: Record<string, unknown> = {};
  for (const k of RUN_OPTIONS) {
    const v = o[k];
    rec[k] = k === 'set' && v ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1))) : (v ?? null);
  }
  rec.libtorch = torch.native.info().version;
  return rec;
}

const flagOf = (key: string) => (key === 'libtorch' ? 'libtorch' : key === 'interruptAtStep' ? 'interruptAtStep' : `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
const show = (v: unknown) => (v === null ? '(unset)' : typeof v === 'string' ? v : JSON.stringify(v));

/** "--lr 0.003 on rank 0 but 0.002 on rank 1, ..." for the options that differ. */
function describeDifference(a: Record<string, unknown>, b: Record<string, unknown>, rank: number): string {
  const parts: string[] = [];
  for (const key of Object.keys(a)) {
    if (key === 'set') {
      const [sa, sb] = [(a.set ?? {}) as Record<string, unknown>, (b.set ?? {}) as Record<string, unknown>];
      for (const k of [...new Set([...Object.keys(sa), ...Object.keys(sb)])].sort()) {
        if (JSON.stringify(sa[k]) !== JSON.stringify(sb[k])) parts.push(`--set ${k}=${show(sa[k] ?? null)} on rank 0 but ${show(sb[k] ?? null)} on rank ${rank}`);
      }
    } else if (JSON.stringify(a[key]) !== JSON.stringify(b[key])) {
      parts.push(`${flagOf(key)} ${show(a[key])} on rank 0 but ${show(b[key])} on rank ${rank}`);
    }
  }
  return parts.join(', ');
}

/** n, shape and the sha256 of up to 1024 evenly spaced images: cheap for any size of set. */
function dataFingerprint(set: ImageSet): string {
  const h = createHash('sha256').update(`${set.n} ${set.h} ${set.w} ${set.c}`);
  const picks = Math.min(set.n, 1024);
  for (let i = 0; i < picks; i++) {
    const img = Math.floor((i * set.n) / picks);
    h.update(set.read(img, 1));
  }
  return `${set.n} images of ${set.h}×${set.w}×${set.c} (sha256 of a sample ${h.digest('hex').slice(0, 12)})`;
}

interface ErrorRecord { code: SpnErrorCode; message: string }

function errorRecord(err: unknown): ErrorRecord {
  return err instanceof SpnError ? { code: err.code, message: err.message } : { code: 'E_DIST', message: `internal error: ${(err as Error)?.message ?? String(err)}` };
}

/** Another rank's error, on this rank: the same code (so the same exit code), naming that rank. */
function mirrored(e: ErrorRecord, rank: number, what: string): SpnError {
  return new SpnError(e.code, `rank ${rank} could not ${what}: ${e.message}`);
}

/** Whether a process of this machine is still running (a zombie has exited). */
function running(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

const sleepMs = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** What the ranks agree on after each step's gradients (see the file's header). */
export interface StepValues {
  /** Bits per sub-pixel: this rank's share of the batch going in, the global batch's coming out. */
  loss: number;
  /** Seconds of training: this rank's clock going in, rank 0's coming out. */
  elapsed: number;
  /** Stop after this step: this rank's wish going in, rank 0's decision coming out. */
  stop: boolean;
}

export class DataParallel {
  readonly rank: number;
  readonly worldSize: number;
  readonly localRank: number;
  readonly localWorldSize: number;
  /** This rank's device: 'cpu', or 'cuda:N'. */
  readonly device: string;
  readonly pg: ProcessGroup;
  /** Milliseconds spent in the per-step collectives (gradients and agreement), for the log. */
  commMs = 0;
  #peers: { host: string; pid: number }[] = [];
  #explained = new WeakSet<Error>();

  private constructor(pg: ProcessGroup, rv: Rendezvous, device: string) {
    this.pg = pg;
    this.rank = rv.rank;
    this.worldSize = rv.worldSize;
    this.localRank = rv.localRank;
    this.localWorldSize = rv.localWorldSize;
    this.device = device;
  }

  /** Joins the job (the rendezvous at MASTER_ADDR:MASTER_PORT, within timeoutS) for a run on `device`. */
  static join(rv: Rendezvous, o: { device: string; timeoutS: number }): DataParallel {
    const { device, backend } = rankDevice(o.device, rv);
    const pg = initProcessGroup({
      backend, rank: rv.rank, worldSize: rv.worldSize, masterAddr: rv.masterAddr, masterPort: rv.masterPort, timeoutS: o.timeoutS,
      ...(backend === 'nccl' ? { device, localRank: rv.localRank } : {}),
    });
    const par = new DataParallel(pg, rv, device);
    try {
      par.#peers = par.#exchange('share its host and pid', JSON.stringify({ host: os.hostname(), pid: process.pid })).map((s) => JSON.parse(s) as { host: string; pid: number });
    } catch (err) {
      par.destroy();
      throw err;
    }
    return par;
  }

  get isRoot(): boolean {
    return this.rank === 0;
  }

  get backend(): Backend {
    return this.pg.backend;
  }

  /** Every rank's string, in rank order (ProcessGroup.allGatherStrings); `what` says what for, in errors. */
  #exchange(what: string, value: string): string[] {
    try {
      return this.pg.allGatherStrings(value);
    } catch (err) {
      if (!(err instanceof SpnError)) throw err;
      throw this.explain(new SpnError(err.code, `rank ${this.rank} could not ${what} with the other ranks: ${err.message}`, { cause: err }));
    }
  }

  /**
   * Runs fn on rank 0 only and gives its result (JSON) to every rank; an error there is thrown on
   * every rank, naming rank 0 and keeping its code. `what` completes "rank 0 could not ...".
   */
  async fromRoot<T>(what: string, fn: () => T | Promise<T>): Promise<T> {
    if (this.isRoot) {
      let value: T;
      try {
        value = await fn();
      } catch (err) {
        this.#exchange(what, JSON.stringify({ error: errorRecord(err) }));
        throw err;
      }
      this.#exchange(what, JSON.stringify({ ok: value ?? null }));
      return value;
    }
    const rec = JSON.parse(this.#exchange(what, '')[0]!) as { ok?: T; error?: ErrorRecord };
    if (rec.error) throw mirrored(rec.error, 0, what);
    return rec.ok as T;
  }

  /** Runs fn on every rank, then every rank learns whether all succeeded: the first failure is thrown everywhere, naming its rank. */
  async agree<T>(what: string, fn: () => T | Promise<T>): Promise<T> {
    let value: T | undefined;
    let failure: { err: unknown } | null = null;
    try {
      value = await fn();
    } catch (err) {
      failure = { err };
    }
    const all = this.#exchange(what, JSON.stringify(failure ? { error: errorRecord(failure.err) } : { ok: true }));
    if (failure) throw failure.err;
    for (const [r, s] of all.entries()) {
      const rec = JSON.parse(s) as { error?: ErrorRecord };
      if (rec.error) throw mirrored(rec.error, r, what);
    }
    return value as T;
  }

  /** Every rank must be running the same command: the options that shape the run, and the libtorch version. */
  checkOptions(o: TrainOptions): void {
    const all = this.#exchange('compare its options', JSON.stringify(optionsRecord(o)));
    const other = all.findIndex((s) => s !== all[0]);
    if (other >= 0) {
      const diff = describeDifference(JSON.parse(all[0]!) as Record<string, unknown>, JSON.parse(all[other]!) as Record<string, unknown>, other);
      throw new ArgError(`the ranks were started with different options: ${diff}; every rank must run the same spn train command`);
    }
  }

  /** Every rank must read the same images (a cluster: the same copy of the data on every machine). */
  checkData(spec: string, train: ImageSet, test: ImageSet): void {
    const mine = `train: ${dataFingerprint(train)}; test: ${dataFingerprint(test)}`;
    const all = this.#exchange('compare its data', mine);
    const other = all.findIndex((s) => s !== all[0]);
    if (other >= 0) {
      throw new SpnError('E_DATA', `data ${spec} differs between the ranks: rank 0 has ${all[0]}, rank ${other} has ${all[other]}; every rank must read the same images`);
    }
  }

  /** Every rank's weights must be bitwise the same (their sha256). */
  checkWeights(sha256: string, step: number): void {
    const all = this.#exchange('compare its weights', sha256);
    const other = all.findIndex((s) => s !== all[0]);
    if (other >= 0) {
      throw new SpnError('E_DIST', `the ranks' weights differ at step ${step} (sha256 ${all[0]!.slice(0, 12)} on rank 0, ${all[other]!.slice(0, 12)} on rank ${other}): the ranks' optimizer steps are no longer identical`);
    }
  }

  /** Rank 0's values of these tensors, into every rank's (in place). */
  broadcast(tensors: torch.Tensor[]): void {
    this.pg.broadcast(tensors, 0);
  }

  /** Rank 0's bytes (`length` of them) on every rank. */
  broadcastBytes(bytes: Uint8Array | null, length: number): Uint8Array {
    return torch.tidy(() => {
      const t = this.isRoot
        ? torch.fromArray(bytes!, [length], { dtype: 'uint8', device: this.pg.device })
        : torch.zeros([length], { dtype: 'uint8', device: this.pg.device });
      this.pg.broadcast(t, 0);
      return t.data() as Uint8Array;
    });
  }

  /**
   * After this rank's backward pass: averages the gradients over the ranks, agrees on the step's
   * values (see StepValues) and clips every rank's gradient with rank 0's norm, as clipGradNorm
   * would with it.
   */
  step(params: torch.Tensor[], local: StepValues, maxNorm: number): StepValues {
    const t0 = performance.now();
    torch.tidy(() => {
      // A parameter the forward pass did not use would have no gradient; it takes part as zeros,
      // so every rank reduces the same list.
      const grads = params.map((p) => p.grad ?? ((p.grad = torch.zerosLike(p)), p.grad!));
      this.pg.allReduceCoalesced(grads, { average: true });
    });
    const t1 = performance.now();
    const norm = gradNorm(params);
    const t2 = performance.now();
    const root = this.isRoot;
    const [loss, elapsed, stop, rootNorm] = this.pg.allReduceNumbers([local.loss, root ? local.elapsed : 0, root && local.stop ? 1 : 0, root ? norm : 0]);
    this.commMs += t1 - t0 + (performance.now() - t2);
    clipGradNorm(params, maxNorm, rootNorm!);
    return { loss: loss! / this.worldSize, elapsed: elapsed!, stop: stop! > 0 };
  }

  /**
   * The test bits/dim of `set`, equal to evaluate(model, set, {batchSize}) in one process: this
   * rank evaluates batches rank, rank+W, ... of the same partition; see the file's header.
   */
  evaluate(model: SPN, set: ImageSet, batchSize: number): Pick<EvalResult, 'bpd' | 'images' | 'nats' | 'dims'> {
    const n = set.n;
    const end = model.S * model.S;
    const first = model.firstSlice;
    const perImage = new Float64Array(n * end);
    for (let b = this.rank; b * batchSize < n; b += this.worldSize) {
      const i = b * batchSize;
      const m = Math.min(batchSize, n - i);
      const batch: ImageSet = sliceSet(set, i, m);
      evaluate(model, batch, { batchSize, onImages: (j, nats) => perImage.set(nats, (i + j) * end) });
    }
    const all = torch.tidy(() => {
      const t = torch.fromArray(perImage, [perImage.length], { device: this.pg.device });
      this.pg.allReduce(t);
      return t.data() as Float64Array;
    });
    // The sums of evaluate(), in its order: per slice, image after image.
    const perSlice = new Float64Array(end);
    for (let j = 0; j < n; j++) for (let k = first; k < end; k++) perSlice[k]! += all[j * end + k]!;
    const nats = perSlice.slice(first).reduce((a, b) => a + b, 0);
    const dims = n * model.dimsPerSlice * (end - first);
    return { bpd: nats / dims / Math.LN2, images: n, nats, dims };
  }

  /**
   * A failed collective, completed with the ranks of this machine that have exited (a dead peer
   * closes its connections, so the survivors fail within milliseconds; the peer's process may
   * take a moment longer to be gone).
   */
  explain(err: unknown): unknown {
    if (!(err instanceof SpnError) || err.code !== 'E_DIST' || this.#explained.has(err)) return err;
    const host = os.hostname();
    const local = this.#peers.map((p, r) => ({ ...p, r })).filter((p) => p.r !== this.rank && p.host === host);
    let gone = local.filter((p) => !running(p.pid));
    for (let waited = 0; !gone.length && local.length && waited < 1000; waited += 50) {
      sleepMs(50);
      gone = local.filter((p) => !running(p.pid));
    }
    if (!gone.length) return err;
    const names = gone.map((p) => `rank ${p.r} (pid ${p.pid})`).join(', ');
    const explained = new SpnError('E_DIST', `${err.message} [${names} on this machine ${gone.length > 1 ? 'have' : 'has'} exited]`, { cause: err });
    this.#explained.add(explained);
    return explained;
  }

  /** Leaves the job (best effort: after a failure the group may be unusable). */
  destroy(): void {
    try {
      this.pg.destroy();
    } catch {
      // The error that ended the run is the one to report.
    }
  }
}
