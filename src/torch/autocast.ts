// Mixed precision: run a function with libtorch's autocast to bfloat16 on a device. Convs,
// linears and matmuls run in bf16 (weights stay fp32; their gradients come back in fp32),
// everything else keeps its dtype. On CPU the bf16 kernels are oneDNN's: several times faster
// than fp32 where the CPU has AMX or AVX512-BF16 (measured here), emulated where it has neither
// (so the trainer keeps fp32 there; see cpuHasBf16).
import * as fs from 'node:fs';
import { native } from './binding.js';

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

let bf16Cpu: boolean | undefined;
/** Whether this CPU computes bf16 natively (AMX or AVX512-BF16, from /proc/cpuinfo's flags);
 * where it does not, bf16 arithmetic is emulated. */
export function cpuHasBf16(): boolean {
  if (bf16Cpu === undefined) {
    let flags = '';
    try {
      flags = fs.readFileSync('/proc/cpuinfo', 'utf8');
    } catch {
      // not Linux: no cheap way to tell, so assume not
    }
    bf16Cpu = /\b(amx_bf16|avx512_bf16)\b/.test(flags);
  }
  return bf16Cpu;
}
