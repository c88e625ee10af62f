// Runs `spn <args>` in-process for tests: a fresh commander program with the given command
// registrations, stdout captured and returned.
import { Command } from 'commander';

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
