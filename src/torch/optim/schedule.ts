// Learning-rate schedule: linear warmup, then cosine decay to minLr (or constant).
import { ArgError } from '../../errors.js';

export interface LrSchedule {
  /** Peak learning rate, reached at the end of warmup. */
  lr: number;
  /** Steps of linear warmup: step s < warmupSteps gets lr * (s + 1) / warmupSteps. */
  warmupSteps: number;
  /** Step at which cosine decay reaches minLr (and stays there). */
  totalSteps: number;
  decay: 'cosine' | 'constant';
  /** Floor of the cosine decay (default 0). */
  minLr?: number;
}

/** The learning rate for a step, counted from 0. */
export function lrAt(step: number, s: LrSchedule): number {
  const minLr = s.minLr ?? 0;
  if (!Number.isInteger(step) || step < 0) throw new ArgError(`lrAt: step = ${step}; expected an integer >= 0`);
  if (!(s.warmupSteps >= 0) || !(s.totalSteps >= s.warmupSteps)) {
    throw new ArgError(`lrAt: warmupSteps = ${s.warmupSteps}, totalSteps = ${s.totalSteps}; expected 0 <= warmupSteps <= totalSteps`);
  }
  if (s.decay !== 'cosine' && s.decay !== 'constant') throw new ArgError(`lrAt: decay = '${String(s.decay)}'; expected 'cosine' or 'constant'`);
  if (step < s.warmupSteps) return (s.lr * (step + 1)) / s.warmupSteps;
  if (s.decay === 'constant') return s.lr;
  const span = s.totalSteps - s.warmupSteps;
  const progress = span === 0 ? 1 : Math.min(1, (step - s.warmupSteps) / span);
  return minLr + 0.5 * (1 + Math.cos(Math.PI * progress)) * (s.lr - minLr);
}
