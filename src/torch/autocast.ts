// Mixed precision: run a function with libtorch's autocast to bfloat16 on a device. Convs,
// linears and matmuls run in bf16 (weights stay fp32; their gradients come back in fp32),
// everything else keeps its dtype. On CPU the bf16 kernels are oneDNN's: native where the CPU has
// AMX or AVX512-BF16, emulated where it has neither; whether they beat fp32 depends on the CPU and
// the libtorch build (cpuBf16Faster).
import * as fs from 'node:fs';
import { libtorchMajor, native } from './binding.js';

/** Runs fn with autocast to bf16 on `device`. Returns fn's result; autocast is off again after,
 * also when fn throws. Without CUDA in this build, a 'cuda' autocast simply runs fn. */
export function autocast<T>(device: 'cpu' | 'cuda', fn: () => T): T {
  if (!native.setAutocast(true, device)) return fn();
  try {
    return fn();
  } finally {
    native.setAutocast(false, device);
  }
}

let cpuFlags: string | undefined;
function flags(): string {
  if (cpuFlags === undefined) {
    try {
      cpuFlags = fs.readFileSync('/proc/cpuinfo', 'utf8');
    } catch {
      cpuFlags = ''; // not Linux: no cheap way to tell, so assume neither
    }
  }
  return cpuFlags;
}

/** Whether this CPU computes bf16 natively (AMX or AVX512-BF16, from /proc/cpuinfo's flags);
 * where it does not, bf16 arithmetic is emulated. */
export function cpuHasBf16(): boolean {
  return /\b(amx_bf16|avx512_bf16)\b/.test(flags());
}

/** Whether this CPU has AMX tiles for bf16 (Sapphire Rapids and later Xeons). */
export function cpuHasAmx(): boolean {
  return /\bamx_bf16\b/.test(flags());
}

/**
 * Whether bf16 autocast trains faster than fp32 on this CPU with this libtorch. Measured
 * (docs/experiments.md): with AMX, bf16 (libtorch 1.13: 23.3k against 9.7k sub-pixels/s for
 * fmnist-cpu); with AVX512-BF16 alone, bf16 on libtorch 1.13 (its fp32 is OpenBLAS's: cifar-cpu
 * 33k against 9.7k) but fp32 on 2.x (MKL: fmnist-cpu 22.2k against 12.7k, cifar-cpu 56k against
 * 31k); with neither, bf16 is emulated and fp32 wins.
 */
export function cpuBf16Faster(): boolean {
  if (cpuHasAmx()) return true;
  return cpuHasBf16() && libtorchMajor < 2;
}
