// Gradient clipping by the global L2 norm, as torch.nn.utils.clip_grad_norm_.
import { ArgError } from '../../errors.js';
import { call, inplace, stack } from '../ops.js';
import { Tensor, noGrad, tidy } from '../tensor.js';
import { namedParams, type NamedParam } from './adamw.js';

const FLOAT64 = 7; // c10::ScalarType::Double: norms accumulate in float64 whatever the grads' dtype

function gradsOf(params: Tensor[] | NamedParam[]): Tensor[] {
  return namedParams(params).map((p) => p.param.grad).filter((g): g is Tensor => g !== null);
}

/** The joint L2 norm of the parameters' gradients (those without one are ignored; 0 when none has one). */
export function gradNorm(params: Tensor[] | NamedParam[]): number {
  return noGrad(() =>
    tidy(() => {
      const grads = gradsOf(params);
      if (grads.length === 0) return 0;
      // One device-to-host copy for all parameters: stack the per-tensor norms on the device.
      const norms = grads.map((g) => call('aten::linalg_vector_norm', [g, 2, null, false, FLOAT64]) as Tensor);
      const devices = new Set(norms.map((n) => n.device));
      const onOne = devices.size === 1 ? norms : norms.map((n) => n.to('cpu'));
      return (call('aten::linalg_vector_norm', [stack(onOne), 2]) as Tensor).item();
    }),
  );
}

/**
 * Scales every gradient in place so that their joint L2 norm is at most maxNorm, and returns
 * the norm before clipping (Infinity or NaN pass through, so the caller can detect them).
 * Parameters without a gradient are ignored. `norm` gives the norm to clip by instead of
 * computing it (data-parallel ranks clip by the norm they agreed on).
 */
export function clipGradNorm(params: Tensor[] | NamedParam[], maxNorm: number, norm?: number): number {
  if (!(maxNorm > 0) || !Number.isFinite(maxNorm)) throw new ArgError(`clipGradNorm: maxNorm = ${maxNorm}; expected a positive finite number`);
  const total = norm ?? gradNorm(params);
  // Same coefficient as PyTorch: the 1e-6 keeps it finite when the norm is zero.
  const coef = maxNorm / (total + 1e-6);
  if (coef < 1) noGrad(() => tidy(() => {
    for (const g of gradsOf(params)) inplace('aten::mul_.Scalar', [g, coef]);
  }));
  return total;
}
