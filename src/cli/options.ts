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

/** --threads help: the count comes from torch/threads.ts's policy when the flag is absent. */
export const THREADS_HELP = 'libtorch CPU threads (default: SPN_THREADS, else 1)';
