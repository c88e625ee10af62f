// What a stage generates and what it is given (SPN paper, section 3.2):
//   full:  every slice of the image at the model's bit depth;
//   size:  slices 1..S²-1 given slice 0 (size upscaling; SPN.firstSlice is 1);
//   depth: the low `bits` of every sub-pixel given its high `givenBits` (depth upscaling).
// The depth split is one pair of functions on tensors, used by training, evaluation, sampling,
// upscaling and the codec.
import { ArgError } from '../errors.js';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import type { ModelConfig } from './config.js';
import type { SliceBatch } from './model.js';

function checkLowBits(lowBits: number): void {
  if (!Number.isInteger(lowBits) || lowBits < 1 || lowBits > 7) throw new ArgError(`lowBits=${lowBits} must be an integer in 1..7`);
}

/** Depth split of integer values: high = x >> lowBits, low = x mod 2^lowBits. */
export function splitDepth(x: Tensor, lowBits: number): { high: Tensor; low: Tensor } {
  checkLowBits(lowBits);
  return { high: torch.floorDivide(x, 2 ** lowBits), low: torch.remainder(x, 2 ** lowBits) };
}

/** The inverse of splitDepth: high · 2^lowBits + low. */
export function joinDepth(high: Tensor, low: Tensor, lowBits: number): Tensor {
  checkLowBits(lowBits);
  return high.mul(2 ** lowBits).add(low);
}

/** Turns n raw images (stored values, (n, H, W, C) row-major) into what the model reads. */
export function toBatch(data: Uint8Array, n: number, cfg: ModelConfig, device: string): SliceBatch {
  const { height: H, width: W, channels: C } = cfg;
  if (data.length !== n * H * W * C) throw new ArgError(`toBatch: ${data.length} values do not hold ${n} images of ${H}×${W}×${C}`);
  return torch.tidy(() => {
    const raw = torch.fromArray(data, [n, H, W, C]).to('int64');
    const x = device === 'cpu' ? raw : raw.to(device);
    if (cfg.stage !== 'depth') return { x };
    const { high, low } = splitDepth(x, cfg.bits);
    return { x: low, given: high };
  });
}
