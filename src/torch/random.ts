// Seeds and random-number state: identical results run to run on CPU for the same seed.
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

export function setRngState(state: Tensor): void {
  native.setRngState(state.handle);
}
