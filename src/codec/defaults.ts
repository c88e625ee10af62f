// The codec's default settings, in a module of their own so that the command definitions
// (cli/compress.ts) can show them without loading libtorch.

/** Images coded together (recorded in the file; decoding uses the same). */
export const DEFAULT_BATCH = 32;
/** Bits of the range coder's frequency total (rangecoder.ts MAX_PRECISION at most). */
export const DEFAULT_PRECISION = 24;
