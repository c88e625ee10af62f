// `spn decompress file.spn --out <dir>`: decodes a .spn file back to PNG images, checking that the
// models, libtorch and this machine compute exactly what the encoder did (docs/spn-format.md).
// The definition; the work is in decompress.run.ts, loaded only when the command runs.
import type { Command } from 'commander';
import { ArgError } from '../errors.js';

export interface DecompressCommandOptions {
  out: string;
  run?: string;
  pipeline?: string;
  json?: boolean;
  quiet?: boolean;
}

export function register(program: Command): void {
  program
    .command('decompress')
    .description('decode a .spn file to PNG images (bit-identical to what was compressed)')
    .argument('<file.spn>', 'the compressed file')
    .requiredOption('--out <dir>', 'folder to write <name>.png into')
    .option('--run <dir>', 'the run folder to decode with (a version 2 file names its model only by the hash of its weights; a version 1 file records its run, which this replaces)')
    .option('--pipeline <file>', "decode with this pipeline's runs (a version 2 file of a pipeline needs it; their weights must match)")
    .option('--json', 'print what was written as JSON')
    .option('--quiet', 'no progress output')
    .addHelpText('after', `
The file records the models (a hash of their weights) and the coding settings; a different model,
libtorch or machine arithmetic (a probe of the model's logits), or a truncated or corrupted file
(a checksum of the file) is an error, and nothing is written. Version 1 files are read too. Every decoded image is
checked against its recorded pixel hash before any PNG is written. PNGs are 8-bit gray or RGB
holding the coded values shifted up to 8 bits (v << (8 - bits)); see \`spn compress --help\`.`)
    .action(async (file: string, opts: DecompressCommandOptions) => {
      // --run with --pipeline is refused by openModelsFor (codec/stages.ts), for every caller
      if (!opts.out.trim()) throw new ArgError('--out: expected a folder');
      const { run } = await import('./decompress.run.js');
      await run(file, opts);
    });
}
