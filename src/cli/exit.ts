// The one exit-code rule of the `spn` command, applied in main.ts to whatever a command throws:
//
//   0    success (and --help, --version)
//   2    usage error: commander's own (unknown option or command, missing argument) and E_ARG
//   3    bad input: E_CONFIG, E_DATA, E_FORMAT (a file or dataset that cannot be used as given)
//   1    runtime failure: E_IO, E_NATIVE, E_NAN, E_BINDING, any other SpnError; and an
//        unexpected JavaScript error (a bug), reported as an internal error with its stack
//   130  interrupted (SIGINT): `spn train` checkpoints and exits 0 on the first Ctrl-C, 130 on a second
import { CommanderError } from 'commander';
import { SpnError, type SpnErrorCode } from '../errors.js';

export const EXIT = { ok: 0, runtime: 1, usage: 2, badInput: 3, interrupted: 130 } as const;

const BAD_INPUT: ReadonlySet<SpnErrorCode> = new Set(['E_CONFIG', 'E_DATA', 'E_FORMAT']);

/** The exit code for an error that ended a command. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof CommanderError) {
    // --help, `spn help <cmd>` and --version end through the exit override with exit code 0;
    // every other (`spn` alone shows the help as an error) is a usage error.
    return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
  if (err instanceof SpnError) {
    if (err.code === 'E_ARG') return EXIT.usage;
    return BAD_INPUT.has(err.code) ? EXIT.badInput : EXIT.runtime;
  }
  return EXIT.runtime;
}

/**
 * What to print for an error on stderr (nothing for commander's: it has printed its message).
 * An SpnError is one message the user can act on; anything else is a bug in spn, shown with its
 * stack so that it can be reported, and never passed off as a libtorch or input error.
 */
export function errorText(err: unknown): string {
  if (err instanceof CommanderError) return '';
  if (err instanceof SpnError) return `spn: ${err.message}\n`;
  const e = err instanceof Error ? err : new Error(String(err));
  return [
    `spn: internal error: ${e.message}`,
    e.stack ?? '(no stack)',
    'This is a bug in spn, not in your input; please report it with the command you ran and the lines above.',
  ].join('\n') + '\n';
}
