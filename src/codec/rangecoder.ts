// A range coder (Schindler/LZMA style, carry propagated through a pending byte run) with a
// 48-bit range held in JS doubles: every quantity is an integer below 2^53, so every operation
// is exact and the coder is the same on every machine. Frequencies are integers summing to
// 2^precision (precision ≤ 24); after each symbol the range is at least 2^40, so the truncation
// r = floor(range / 2^precision) wastes under 2^-16 of the range per symbol.
//
// Stream layout: the bytes of the coded value, most significant first, without LZMA's leading
// zero byte and without trailing zero bytes (the decoder reads zeros past the end). The flush
// picks the value in the final interval with the most trailing zero bits, so termination costs
// about one byte.
import { ArgError } from '../errors.js';

export const MAX_PRECISION = 24;
const TOP = 2 ** 48; // the window of `low` and `range`
const BOT = 2 ** 40; // renormalise while range < BOT
const TOP_BYTE = 2 ** 40; // low / TOP_BYTE = the window's top byte

function checkPrecision(p: number): number {
  if (!Number.isInteger(p) || p < 1 || p > MAX_PRECISION) throw new ArgError(`range coder precision ${p}: expected an integer in 1..${MAX_PRECISION}`);
  return 2 ** p;
}

/** A growable byte buffer. */
class Bytes {
  buf = new Uint8Array(256);
  len = 0;
  push(b: number): void {
    if (this.len === this.buf.length) {
      const next = new Uint8Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.len++] = b;
  }
}

export class RangeEncoder {
  private low = 0; // < 2^49: the window plus a possible carry
  private range = TOP - 1;
  private cache = 0; // the last byte not yet written (a carry may still change it)
  private pending = 1; // the cache byte plus the run of 0xFF bytes after it
  private skipFirst = true; // the first cache byte is always 0 and is not stored
  private readonly out = new Bytes();
  private finished = false;
  private readonly total: number;

  constructor(readonly precision: number) {
    this.total = checkPrecision(precision);
  }

  /** Codes the symbol occupying [start, start + size) of 0..2^precision. */
  encode(start: number, size: number): void {
    if (this.finished) throw new ArgError('RangeEncoder.encode after finish()');
    if (!(size >= 1 && start >= 0 && start + size <= this.total)) {
      throw new ArgError(`range coder: symbol [${start}, ${start + size}) is not a non-empty part of 0..${this.total}`);
    }
    const r = Math.floor(this.range / this.total);
    this.low += r * start;
    this.range = r * size;
    while (this.range < BOT) {
      this.range *= 256;
      this.shiftLow();
    }
  }

  private shiftLow(): void {
    const carry = this.low >= TOP ? 1 : 0;
    const win = carry ? this.low - TOP : this.low;
    if (win < 0xff * TOP_BYTE || carry) {
      let byte = this.cache;
      for (; this.pending > 0; this.pending--) {
        if (this.skipFirst) this.skipFirst = false;
        else this.out.push((byte + carry) & 0xff);
        byte = 0xff;
      }
      this.cache = Math.floor(win / TOP_BYTE);
    }
    this.pending++;
    this.low = (win % TOP_BYTE) * 256;
  }

  /** Ends the stream: the value with the most trailing zeros in the final interval, then trims. */
  finish(): Uint8Array {
    if (!this.finished) {
      for (let s = 48; s >= 0; s--) {
        const unit = 2 ** s;
        const v = Math.ceil(this.low / unit) * unit;
        if (v < this.low + this.range) {
          this.low = v;
          break;
        }
      }
      for (let i = 0; i < 7; i++) this.shiftLow(); // the cache and the window's 6 bytes
      this.finished = true;
    }
    let n = this.out.len;
    while (n > 0 && this.out.buf[n - 1] === 0) n--;
    return this.out.buf.slice(0, n);
  }
}

export class RangeDecoder {
  private code = 0; // the coded value minus low, < range
  private range = TOP - 1;
  private pos = 0;
  private r = 0; // range / total of the symbol being decoded
  private readonly total: number;
  /** Set when the stream cannot have come from the encoder (a symbol beyond the total). */
  corrupt = false;

  constructor(private readonly bytes: Uint8Array, readonly precision: number) {
    this.total = checkPrecision(precision);
    for (let i = 0; i < 6; i++) this.code = this.code * 256 + this.next();
  }

  private next(): number {
    return this.pos < this.bytes.length ? this.bytes[this.pos++]! : (this.pos++, 0);
  }

  /** The target count in 0..2^precision - 1: find the symbol whose [start, start + size) holds it, then call update. */
  target(): number {
    this.r = Math.floor(this.range / this.total);
    const v = Math.floor(this.code / this.r);
    if (v >= this.total) {
      this.corrupt = true;
      return this.total - 1;
    }
    return v;
  }

  update(start: number, size: number): void {
    this.code -= this.r * start;
    this.range = this.r * size;
    if (this.code < 0 || this.code >= this.range) {
      this.corrupt = true;
      this.code = Math.min(Math.max(this.code, 0), this.range - 1);
    }
    while (this.range < BOT) {
      this.code = this.code * 256 + this.next();
      this.range *= 256;
    }
  }
}

/** The symbol s with cum[s] ≤ v < cum[s + 1] (cum: V + 1 non-decreasing counts from 0). */
export function findSymbol(cum: Uint32Array, V: number, v: number): number {
  let lo = 0;
  let hi = V; // cum[lo] ≤ v < cum[hi]
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (cum[mid]! <= v) lo = mid;
    else hi = mid;
  }
  return lo;
}
