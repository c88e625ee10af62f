// Seeds and random-number state: identical results run to run on CPU for the same seed.
import { ArgError, SpnError } from '../errors.js';
import { native } from './binding.js';
import { Tensor } from './tensor.js';
import './ops.js'; // installs the Tensor methods on what this module creates

export function manualSeed(seed: number): void {
  native.manualSeed(seed);
}

/** The CPU generator's state as a uint8 tensor (saved in checkpoints for exact resume). */
export function getRngState(): Tensor {
  return new Tensor(native.getRngState());
}

/** Restores the CPU generator from getRngState()'s tensor (a CPU uint8 tensor of that size). */
export function setRngState(state: Tensor): void {
  if (state.device !== 'cpu' || state.dtype !== 'uint8') {
    throw new ArgError(`setRngState: expected the CPU uint8 tensor getRngState() returns, got ${state.dtype} on ${state.device}`);
  }
  try {
    native.setRngState(state.handle);
  } catch (err) {
    throw new SpnError('E_NATIVE', `setRngState: ${(err as Error).message}`, { cause: err });
  }
}
