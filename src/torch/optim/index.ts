// Optimizers and training utilities: AdamW, gradient clipping, LR schedule, EMA of weights.
export { AdamW, namedParams, type AdamWOptions, type NamedParam } from './adamw.js';
export { clipGradNorm, gradNorm } from './clip.js';
export { lrAt, type LrSchedule } from './schedule.js';
export { EMA } from './ema.js';
