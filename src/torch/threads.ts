// How many libtorch intra-op threads a piece of work gets: the one policy every command, the
// trainer and the benchmarks use.
//
//   1. an explicit count (a command's --threads) wins;
//   2. else SPN_THREADS, when set;
//   3. else by the kind of work: 'bf16' (training under CPU autocast: oneDNN's bf16 kernels use
//      every core) gets every core; 'blas' (fp32 training) every core on libtorch 2.x, whose
//      MKL and oneDNN kernels use them, and one on Debian's 1.13, where two threads measured
//      slower than one; 'ops' (evaluation, sampling, coding: many small ops, where extra threads
//      mostly contend) gets one. The measurements behind this are in docs/experiments.md;
//   4. ranks of a data-parallel job that share this machine's CPU share that count out.
import * as os from 'node:os';
import { ArgError } from '../errors.js';
import { libtorchMajor, native } from './binding.js';

export type ThreadWork = 'bf16' | 'blas' | 'ops';

/** SPN_THREADS as a count, or undefined when unset; a bad value is an error naming it. */
export function envThreads(): number | undefined {
  const raw = process.env.SPN_THREADS;
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new ArgError(`SPN_THREADS=${raw}: expected a positive integer`);
  return n;
}

/**
 * The thread count for `work`, given an explicit request (undefined: none) and the number of
 * processes that share this machine's cores for it (the ranks of a job on one machine; 1 alone).
 */
export function threadsFor(work: ThreadWork, asked?: number, sharers = 1): number {
  if (asked !== undefined) {
    if (!Number.isInteger(asked) || asked < 1) throw new ArgError(`threads ${asked}: expected a positive integer`);
    return asked;
  }
  const env = envThreads();
  if (env !== undefined) return env;
  const all = work === 'bf16' || (work === 'blas' && libtorchMajor >= 2) ? os.availableParallelism() : 1;
  return Math.max(1, Math.floor(all / sharers));
}


export function setNumThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new ArgError(`setNumThreads(${n}): expected a positive integer`);
  native.setNumThreads(n);
}

export function getNumThreads(): number {
  return native.getNumThreads();
}

/** Runs fn (sync or async) on n threads and restores the previous count afterwards. */
export function withThreads<T>(n: number, fn: () => T): T {
  const before = getNumThreads();
  setNumThreads(n);
  let async = false;
  try {
    const r = fn();
    if (r instanceof Promise) {
      async = true;
      return r.finally(() => setNumThreads(before)) as T;
    }
    return r;
  } finally {
    if (!async) setNumThreads(before);
  }
}

// The engine's starting count: SPN_THREADS, else every core this process may use (what a
// library user expects from libtorch); commands then pick theirs through threadsFor.
setNumThreads(threadsFor('bf16'));
