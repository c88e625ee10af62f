// The run folder's layout (docs/run-folder.md), as paths relative to the run folder: the one
// place that names its files. The trainer writes them (run.ts runFiles), the dashboard reads them.

export const RUN_LAYOUT = {
  config: 'config.json',
  status: 'status.json',
  metrics: 'metrics.jsonl',
  eval: 'eval.json',
  checkpoints: 'checkpoints',
  samples: 'samples',
  /** The newest grid of samples (the trainer rewrites it at every sample). */
  latestSample: 'samples/latest.png',
  /** Grids kept per step: samples/step-NNNNNNN.png. */
  sampleGrid: /^step-\d+\.png$/,
  /** spn demo and spn sample --frames: one frame per slice and their animation. */
  frames: 'samples/frames',
  frame: /^frame-\d+\.png$/,
  animation: 'samples/frames/animation.gif',
} as const;
