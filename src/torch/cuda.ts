// CUDA helpers: availability, synchronisation and allocator statistics (zeros without CUDA).
import { native } from './binding.js';
import { autocast as autocastOn } from './autocast.js';

export const isAvailable = (): boolean => native.info().cuda;
export const deviceCount = (): number => native.info().cudaDevices;
export const synchronize = (): void => native.cudaSynchronize();
/** Bytes allocated now, the peak since the last reset, and reserved by the caching allocator. */
export const memory = (resetPeak = false): { allocated: number; peak: number; reserved: number } => native.cudaMemory(resetPeak);

/** Runs fn with CUDA autocast to bfloat16 (autocast.ts). Without CUDA in this build it simply runs fn. */
export function autocast<T>(fn: () => T): T {
  return autocastOn('cuda', fn);
}
