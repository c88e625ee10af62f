// Runs `spn <args>` in-process for tests: a fresh commander program with the given command
// registrations, stdout captured and returned.
import { Command } from 'commander';
import { register as registerTrain, trainOptions } from '../../src/cli/train.js';
import type { TrainOptions } from '../../src/train/options.js';

export async function cli(registers: Array<(p: Command) => void>, ...args: string[]): Promise<string> {
  const program = new Command().exitOverride();
  for (const r of registers) r(program);
  let out = '';
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string) => ((out += chunk), true)) as typeof process.stdout.write;
  try {
    await program.parseAsync(['node', 'spn', ...args]);
  } finally {
    process.stdout.write = write;
  }
  return out;
}

/** The options `spn train <argv>` resolves to: parsed by the train command itself, its action replaced (nothing runs). */
export async function parseTrain(argv: string[]): Promise<TrainOptions> {
  const program = new Command().exitOverride();
  registerTrain(program);
  let got: TrainOptions | undefined;
  program.commands.find((c) => c.name() === 'train')!.action((flags: Record<string, unknown>, c: Command) => void (got = trainOptions(flags, c)));
  await program.parseAsync(['node', 'spn', ...argv]);
  return got!;
}
