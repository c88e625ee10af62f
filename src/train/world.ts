// What the processes of a training job share, as one interface: a single process is the world
// of one (LocalWorld, below: every method is the identity or runs the function), a data-parallel
// job is a world of N on c10d (c10d-world.ts). The trainer, evaluation and checkpointing are
// written once against this interface and have no data-parallel branch.
import type { Backend } from '../torch/distributed.js';
import type { Tensor } from '../torch/index.js';

/** What the ranks agree on after each step's gradients, going in (this rank's) and coming out (the job's). */
export interface StepValues {
  /** Bits per sub-pixel: this rank's share of the batch going in, the global batch's coming out. */
  loss: number;
  /** Seconds of training: this rank's clock going in, rank 0's coming out. */
  elapsed: number;
  /** Stop after this step: this rank's wish going in, rank 0's decision coming out. */
  stop: boolean;
  /** The gradient's norm: this rank's going in, rank 0's coming out (every rank clips by the same number). */
  gradNorm: number;
}

/** The gradient reduction of a model's parameters over the ranks (c10d's Reducer in a job). */
export interface GradientSync {
  /**
   * loss.backward(); on return every parameter's gradient is the mean over the ranks, the same
   * bits on every rank (in a job, each bucket's all-reduce starts during backward, as soon as
   * its gradients are ready).
   */
  backward(loss: Tensor): void;
  dispose(): void;
}

/** The gradient buckets, in bytes (DDP's bucket_cap_mb and its first bucket). */
export interface BucketCaps {
  bucketBytes: number;
  firstBucketBytes: number;
}

export interface World {
  readonly rank: number;
  readonly size: number;
  /** The ranks on this machine, which share its cores. */
  readonly localSize: number;
  /**
   * This process's device for a run on `runDevice`: that device alone; in a job this rank's
   * (cpu, or cuda:LOCAL_RANK), which must be of the run's kind (the backend was chosen by it).
   */
  deviceFor(runDevice: string): string;
  /** The c10d backend, or null alone. */
  readonly backend: Backend | null;
  /** Whether this process writes the run folder and shows progress: rank 0. */
  readonly writes: boolean;
  /** Runs fn on rank 0 alone and gives its result (as JSON) to every rank; an error there is thrown everywhere, naming rank 0. */
  fromRoot<T>(what: string, fn: () => T | Promise<T>): Promise<T>;
  /** Runs fn on every rank; the first failure is thrown on every rank, naming its rank. */
  agree<T>(what: string, fn: () => T | Promise<T>): Promise<T>;
  /**
   * Every rank must hold the same value: otherwise every rank throws `mismatch(rank 0's value,
   * the first other value, its rank)`. The one check behind "the same command", "the same data"
   * and "the same weights".
   */
  same(what: string, value: string, mismatch: (root: string, other: string, rank: number) => Error): void;
  /** Rank 0's values into every rank's tensors (in place). */
  broadcast(tensors: Tensor[]): void;
  /** Rank 0's bytes (`length` of them) on every rank; rank 0 passes its own. */
  broadcastBytes(bytes: Uint8Array | null, length: number): Uint8Array;
  /** The gradient reduction of these parameters (the same list, in the same order, on every rank). */
  gradients(params: Tensor[], caps: BucketCaps): GradientSync;
  /** The step's values for the whole job (see StepValues). */
  agreeStep(local: StepValues): StepValues;
  /** The elementwise sum over the ranks (float64): sharded evaluation, where each entry comes from one rank, so the sum is exact. */
  sum(values: Float64Array): Float64Array;
  /** Milliseconds this rank spent waiting on the other ranks since the last call (0 alone). */
  takeWaitMs(): number;
  /** An error completed with what this rank knows about the others (e.g. which exited). */
  explain(err: unknown): unknown;
  destroy(): void;
}

const ALONE: GradientSync = { backward: (loss) => loss.backward(), dispose() {} };

/** One process: the world of one. */
export class LocalWorld implements World {
  readonly rank = 0;
  readonly size = 1;
  readonly localSize = 1;
  readonly backend = null;
  readonly writes = true;

  deviceFor(runDevice: string): string {
    return runDevice;
  }

  async fromRoot<T>(_what: string, fn: () => T | Promise<T>): Promise<T> {
    return fn();
  }

  async agree<T>(_what: string, fn: () => T | Promise<T>): Promise<T> {
    return fn();
  }

  same(): void {}

  broadcast(): void {}

  broadcastBytes(bytes: Uint8Array | null): Uint8Array {
    return bytes!;
  }

  gradients(): GradientSync {
    return ALONE;
  }

  agreeStep(local: StepValues): StepValues {
    return local;
  }

  sum(values: Float64Array): Float64Array {
    return values;
  }

  takeWaitMs(): number {
    return 0;
  }

  explain(err: unknown): unknown {
    return err;
  }

  destroy(): void {}
}
