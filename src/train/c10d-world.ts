// A data-parallel job as a World (world.ts) on c10d, libtorch's distributed engine
// (src/torch/distributed.ts: a TCPStore rendezvous, Gloo on CPU, NCCL on CUDA). The trainer's
// loop is the same on every rank and the same as a single process's; this file says what the
// ranks exchange at the few places where they must agree.
//
// The examples are exactly a single process's. Every rank keeps the same BatchIterator over the
// global batch (same seed, same position) and takes its contiguous share of it, images
// [r·b/W, (r+1)·b/W). The target slices are drawn for the whole global batch from the CPU
// generator, whose state is the same on every rank (seeded alike, saved in checkpoints, restored
// from rank 0's), and rank r takes the slices of its images. Its loss is the mean over its share.
//
// Gradients: c10d's Reducer (PyTorch DDP's engine) averages them over the ranks in buckets whose
// all-reduce starts during backward, as soon as every gradient of the bucket is ready, and
// finishes before the optimizer step: the gradient of the global batch's mean loss, equal to a
// single process's up to the order of float additions, and bitwise the same on every rank.
//
// Every rank then takes the identical optimizer step. One small float64 all-reduce per step
// (agreeStep) gives every rank the same four numbers: the global batch's loss (what the log, the
// NaN check and onStep see), rank 0's clock (so the time budget, the learning-rate schedule of a
// --minutes run and the moments to evaluate, sample and checkpoint are decided alike
// everywhere), rank 0's stop flag (Ctrl-C: every rank stops after the same step) and rank 0's
// gradient norm (clipping scales every rank's gradient by the same number, whatever each rank's
// thread count did to its own norm's rounding). Clipping, AdamW and the EMA are elementwise after
// that, so the ranks' weights stay bitwise identical; the session compares their sha256 at every
// checkpoint and at the end.
//
// Test bits/dim: rank r evaluates batches r, r+W, r+2W, ... of the single process's partition
// into batches (store/evaluate.ts `shard`), the per-image NLLs are gathered by a float64 sum
// (`sum`: each entry has one non-zero contribution, so the sum is exact), and every rank adds
// them up in the single process's order: the number equals a single process's bit for bit.
//
// Setup: rank 0 alone reads and writes the run folder and tells the others what they need
// (fromRoot); an error on one rank during setup reaches the others as an error naming that rank
// (fromRoot, agree), and a failed collective names the ranks on this machine that have exited
// (explain).
import * as fs from 'node:fs';
import * as os from 'node:os';
import { performance } from 'node:perf_hooks';
import { ArgError, SpnError, type SpnErrorCode } from '../errors.js';
import * as torch from '../torch/index.js';
import { envRendezvous, initProcessGroup, type Backend, type ProcessGroup, type Reducer, type Rendezvous } from '../torch/distributed.js';
import type { BucketCaps, GradientSync, StepValues, World } from './world.js';

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

export class C10dWorld implements World {
  readonly rank: number;
  readonly size: number;
  readonly localSize: number;
  readonly device: string;
  readonly pg: ProcessGroup;
  /** Milliseconds spent waiting in the per-step collectives since takeWaitMs last asked. */
  #waitMs = 0;
  #reducer: Reducer | null = null;
  /** The Reducer's total exposed communication at the last takeWaitMs. */
  #exposedBefore = 0;
  #peers: { host: string; pid: number }[] = [];
  #explained = new WeakSet<Error>();

  private constructor(pg: ProcessGroup, rv: Rendezvous, device: string) {
    this.pg = pg;
    this.rank = rv.rank;
    this.size = rv.worldSize;
    this.localSize = rv.localWorldSize;
    this.device = device;
  }

  /** Joins the job (the rendezvous at MASTER_ADDR:MASTER_PORT, within timeoutS) for a run on `device`. */
  static join(rv: Rendezvous, o: { device: string; timeoutS: number }): C10dWorld {
    const { device, backend } = rankDevice(o.device, rv);
    const pg = initProcessGroup({
      backend, rank: rv.rank, worldSize: rv.worldSize, masterAddr: rv.masterAddr, masterPort: rv.masterPort, timeoutS: o.timeoutS,
      ...(backend === 'nccl' ? { device, localRank: rv.localRank } : {}),
    });
    const w = new C10dWorld(pg, rv, device);
    try {
      w.#peers = w.#exchange('share its host and pid', JSON.stringify({ host: os.hostname(), pid: process.pid })).map((s) => JSON.parse(s) as { host: string; pid: number });
    } catch (err) {
      w.destroy();
      throw err;
    }
    return w;
  }

  deviceFor(runDevice: string): string {
    const kind = (d: string) => (d.startsWith('cuda') ? 'cuda' : 'cpu');
    if (kind(runDevice) !== kind(this.device)) {
      throw new ArgError(`--resume: the run trained on ${runDevice}; on several ranks give --device ${kind(runDevice)} (or --device ${kind(this.device)} to continue there): each rank picks its backend from --device before the run is read`);
    }
    return this.device;
  }

  get writes(): boolean {
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

  async fromRoot<T>(what: string, fn: () => T | Promise<T>): Promise<T> {
    if (this.writes) {
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

  same(what: string, value: string, mismatch: (root: string, other: string, rank: number) => Error): void {
    const all = this.#exchange(what, value);
    const other = all.findIndex((s) => s !== all[0]);
    if (other >= 0) throw mismatch(all[0]!, all[other]!, other);
  }

  broadcast(tensors: torch.Tensor[]): void {
    this.pg.broadcast(tensors, 0);
  }

  broadcastBytes(bytes: Uint8Array | null, length: number): Uint8Array {
    return torch.tidy(() => {
      const t = this.writes
        ? torch.fromArray(bytes!, [length], { dtype: 'uint8', device: this.pg.device })
        : torch.zeros([length], { dtype: 'uint8', device: this.pg.device });
      this.pg.broadcast(t, 0);
      return t.data() as Uint8Array;
    });
  }

  gradients(params: torch.Tensor[], caps: BucketCaps): GradientSync {
    const reducer = this.pg.reducer(params, { bucketCapBytes: Math.round(caps.bucketBytes), firstBucketCapBytes: Math.round(caps.firstBucketBytes) });
    this.#reducer = reducer;
    return {
      backward: (loss) => reducer.backward(loss),
      dispose: () => {
        if (this.#reducer === reducer) this.#reducer = null;
        reducer.dispose();
      },
    };
  }

  agreeStep(local: StepValues): StepValues {
    const t0 = performance.now();
    const root = this.writes;
    const [loss, elapsed, stop, norm] = this.pg.allReduceNumbers([local.loss, root ? local.elapsed : 0, root && local.stop ? 1 : 0, root ? local.gradNorm : 0]);
    this.#waitMs += performance.now() - t0;
    return { loss: loss! / this.size, elapsed: elapsed!, stop: stop! > 0, gradNorm: norm! };
  }

  sum(values: Float64Array): Float64Array {
    return torch.tidy(() => {
      const t = torch.fromArray(values, [values.length], { device: this.pg.device });
      this.pg.allReduce(t);
      return t.data() as Float64Array;
    });
  }

  takeWaitMs(): number {
    // The Reducer's exposed communication (what backward waited for after its computation
    // ended), from its own timings: a running average over the timed backwards (every one on
    // Gloo), taken as a total since the last call.
    let exposed = 0;
    const s = this.#reducer && !this.#reducer.isDisposed ? this.#reducer.stats() : null;
    if (s && s.exposedCommMs !== null) {
      const total = s.exposedCommMs * s.sampled;
      exposed = total - this.#exposedBefore;
      this.#exposedBefore = total;
    }
    const ms = this.#waitMs + exposed;
    this.#waitMs = 0;
    return ms;
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
