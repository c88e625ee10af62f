// CUDA helpers: availability, synchronisation and allocator statistics (zeros without CUDA).
import { native } from './binding.js';

export const isAvailable = (): boolean => native.info().cuda;
export const deviceCount = (): number => native.info().cudaDevices;
export const synchronize = (): void => native.cudaSynchronize();
/** Bytes allocated now, the peak since the last reset, and reserved by the caching allocator. */
export const memory = (resetPeak = false): { allocated: number; peak: number; reserved: number } => native.cudaMemory(resetPeak);

/**
 * Runs fn with CUDA autocast to bfloat16 (matmuls, convs and attention in bf16, reductions and
 * losses in fp32). Without CUDA in this build it simply runs fn.
 */
export function autocast<T>(fn: () => T): T {
  if (!native.setAutocast(true)) return fn();
  try {
    return fn();
  } finally {
    native.setAutocast(false);
  }
}
