// `spn train` (definition and flag checks in train.ts): the trainer, loaded only when the
// command runs.
import { train, type TrainOptions } from '../train/trainer.js';

/** The action of `spn train`: the options are checked (train.ts) before this module loads. */
export async function run(o: TrainOptions): Promise<void> {
  await train(o);
}
