// Errors the user can act on. Each carries a stable code (for scripts and tests) and a message
// that names the value, the file or the field, and what was expected.

export type SpnErrorCode =
  | 'E_NATIVE' // libtorch raised (shape mismatch, wrong dtype, out of memory, ...)
  | 'E_DISPOSED' // a tensor was used after dispose()
  | 'E_ARG' // a bad argument to a function or command
  | 'E_CONFIG' // a bad config, preset or pipeline file
  | 'E_DATA' // a dataset that cannot be read as asked
  | 'E_IO' // a file that cannot be read or written
  | 'E_FORMAT' // a file in the wrong format (safetensors, checkpoint, PNG, ...)
  | 'E_BINDING' // the native addon could not be loaded
  | 'E_DIST' // a distributed rendezvous, collective or peer failed (c10d)
  | 'E_NAN'; // training produced a NaN or infinite loss

export class SpnError extends Error {
  readonly code: SpnErrorCode;
  constructor(code: SpnErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SpnError';
    this.code = code;
  }
}

export class ArgError extends SpnError {
  constructor(message: string) {
    super('E_ARG', message);
    this.name = 'ArgError';
  }
}

export class DataError extends SpnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_DATA', message, options);
    this.name = 'DataError';
  }
}

export class ConfigError extends SpnError {
  constructor(message: string) {
    super('E_CONFIG', message);
    this.name = 'ConfigError';
  }
}

export class FormatError extends SpnError {
  constructor(message: string) {
    super('E_FORMAT', message);
    this.name = 'FormatError';
  }
}

/**
 * A file that could not be written (src/fsutil.ts: every writer goes through it). The message
 * names the file and says plainly what happened ("the disk is full (ENOSPC)"); `errno` is the
 * system's code when there is one.
 */
export class WriteError extends SpnError {
  readonly file: string;
  readonly errno: string | undefined;
  constructor(file: string, errno: string | undefined, message: string, options?: { cause?: unknown }) {
    super('E_IO', message, options);
    this.name = 'WriteError';
    this.file = file;
    this.errno = errno;
  }
}
