// `spn train` (definition and flag checks in train.ts): the trainer, loaded only when the
// command runs; or, with --nproc/--nnodes, the launcher of the worker processes (which loads no
// libtorch itself: each worker runs this same command as one rank of the job).
import type { LaunchPlan } from '../train/launch.js';
import type { TrainOptions } from '../train/trainer.js';

/** The action of `spn train`: the options are checked (train.ts) before this module loads. */
export async function run(o: TrainOptions, plan: LaunchPlan = { mode: 'single' }): Promise<void> {
  if (plan.mode === 'launch') {
    const { launch } = await import('../train/launch.js');
    // Every worker runs the command this process was started with.
    const command = [process.execPath, ...process.execArgv, process.argv[1]!, ...process.argv.slice(2)];
    process.exitCode = await launch(plan, { command });
    return;
  }
  if (plan.mode === 'worker') (await import('../train/launch.js')).watchLauncher();
  const { train } = await import('../train/trainer.js');
  await train(o);
}
