// Learning-rate schedule: linear warmup, then cosine decay to minLr (or constant).
import { ArgError } from '../../errors.js';

export interface LrSchedule {
  /** Peak learning rate, reached at the end of warmup. */
  lr: number;
  /** Steps of linear warmup: step s < warmupSteps gets lr * (s + 1) / warmupSteps. */
  warmupSteps: number;
  /** Step at which cosine decay reaches minLr (and stays there); not needed when a progress fraction is given. */
  totalSteps?: number;
  decay: 'cosine' | 'constant';
  /** Floor of the cosine decay (default 0). */
  minLr?: number;
}

/**
 * The learning rate for a step, counted from 0. After warmup the cosine follows `progress` in
 * [0, 1] when given (a time-budgeted run: the fraction of its budget used), else the steps from
 * the end of warmup to totalSteps.
 */
export function lrAt(step: number, s: LrSchedule, progress?: number): number {
  const minLr = s.minLr ?? 0;
  if (!Number.isInteger(step) || step < 0) throw new ArgError(`lrAt: step = ${step}; expected an integer >= 0`);
  if (s.decay !== 'cosine' && s.decay !== 'constant') throw new ArgError(`lrAt: decay = '${String(s.decay)}'; expected 'cosine' or 'constant'`);
  if (!(s.warmupSteps >= 0)) throw new ArgError(`lrAt: warmupSteps = ${s.warmupSteps}; expected >= 0`);
  if (progress !== undefined && !(progress >= 0 && progress <= 1)) throw new ArgError(`lrAt: progress = ${progress}; expected a fraction in [0, 1]`);
  if (progress === undefined && !(s.totalSteps !== undefined && s.totalSteps >= s.warmupSteps)) {
    throw new ArgError(`lrAt: warmupSteps = ${s.warmupSteps}, totalSteps = ${s.totalSteps}; expected 0 <= warmupSteps <= totalSteps (or a progress fraction)`);
  }
  if (step < s.warmupSteps) return (s.lr * (step + 1)) / s.warmupSteps;
  if (s.decay === 'constant') return s.lr;
  const span = (s.totalSteps ?? 0) - s.warmupSteps;
  const p = progress ?? (span === 0 ? 1 : Math.min(1, (step - s.warmupSteps) / span));
  return minLr + 0.5 * (1 + Math.cos(Math.PI * p)) * (s.lr - minLr);
}
