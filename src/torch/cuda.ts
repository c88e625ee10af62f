// CUDA helpers: availability, synchronisation and allocator statistics (zeros without CUDA).
import { native } from './binding.js';

export const isAvailable = (): boolean => native.info().cuda;
export const deviceCount = (): number => native.info().cudaDevices;
export const synchronize = (): void => native.cudaSynchronize();
/** Bytes allocated now, the peak since the last reset, and reserved by the caching allocator. */
export const memory = (resetPeak = false): { allocated: number; peak: number; reserved: number } => native.cudaMemory(resetPeak);
