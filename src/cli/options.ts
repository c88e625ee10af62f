// Option parsers for commander that reject bad values with a message naming the flag.
import { ArgError } from '../errors.js';

export function intOpt(flag: string, min = 0) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new ArgError(`${flag} ${v}: expected an integer ≥ ${min}`);
    return n;
  };
}

export function numOpt(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new ArgError(`${flag} ${v}: expected a positive number`);
    return n;
  };
}

/**
 * libtorch intra-op threads for a CLI command. The engine's default is every core, but for the
 * small per-step ops of the CPU presets one thread measured fastest here (OpenBLAS still spreads
 * matmuls over the cores): training the earlier fmnist-cpu preset (2 conditioning + 3 decoder
 * blocks) ran at 10.9k sub-pixels/s with 1 thread and 5.6k with 2 on a quiet 2-core machine.
 * SPN_THREADS, when set, wins over this default. `spn train` picks its own (trainThreads in
 * src/train/trainer.ts): every core for bf16 on CPU, whose oneDNN kernels do use them.
 */
export const THREADS_HELP = 'libtorch CPU threads (default 1, or SPN_THREADS; see docs)';
export function defaultThreads(): number | undefined {
  return process.env.SPN_THREADS ? undefined : 1;
}
