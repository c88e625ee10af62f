// Unsigned LEB128 varints (7 bits per byte, low first), the integers of .spn files, and a reader
// over a file's bytes whose every read is checked against the end: a truncated or forged file is
// an error naming the file and the field, never an out-of-range read.
import { FormatError } from '../errors.js';

/** Appends n (a non-negative safe integer) as a varint. */
export function pushVarint(n: number, out: number[]): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new FormatError(`varint: ${n} is not a non-negative integer`);
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
}

/** Sequential reads of a byte range, each bounded by `end`. */
export class ByteReader {
  pos: number;
  constructor(
    private readonly bytes: Uint8Array,
    private readonly file: string,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }

  get left(): number {
    return this.end - this.pos;
  }

  /** A varint of at most 2^42 (6 bytes of payload), `what` naming the field in errors. */
  varint(what: string): number {
    let n = 0;
    let mul = 1;
    for (;;) {
      if (this.pos >= this.end) throw new FormatError(`${this.file}: ${what} runs past the end of the file (truncated?)`);
      const b = this.bytes[this.pos++]!;
      n += (b & 0x7f) * mul;
      mul *= 0x80;
      if (b < 0x80) return n;
      if (mul > 2 ** 42) throw new FormatError(`${this.file}: ${what} is not a valid varint`);
    }
  }

  /** A varint in [min, max]; `what` names it and the bound's reason is in `why`. */
  bounded(what: string, min: number, max: number, why = ''): number {
    const n = this.varint(what);
    if (n < min || n > max) throw new FormatError(`${this.file}: ${what} is ${n}; expected ${min}..${max}${why ? ` (${why})` : ''}`);
    return n;
  }

  /** n bytes (a view), checked against the end. */
  take(n: number, what: string): Uint8Array {
    if (n > this.left) throw new FormatError(`${this.file}: ${what} (${n} bytes) runs past the end of the file (${this.left} bytes left)`);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}
