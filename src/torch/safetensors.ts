// safetensors: the Hugging Face tensor file format, so checkpoints open in PyTorch and back.
//
// Layout: an 8-byte little-endian u64 N, then N bytes of JSON header (padded with spaces to a
// multiple of 8), then every tensor's raw little-endian bytes, in header order with no gaps.
// The header maps each name to {dtype, shape, data_offsets: [begin, end]} (offsets relative
// to the start of the data), plus an optional "__metadata__" of string values.
import * as fs from 'node:fs';
import * as os from 'node:os';
import { FormatError, SpnError } from '../errors.js';
import { writeFileAtomic } from '../fsutil.js';
import { native } from './binding.js';
import { dtypeCode, type DType } from './dtype.js';
import { Tensor, type Device } from './tensor.js';
import './ops.js'; // installs the Tensor methods on what this module creates

const TO_ST: Record<DType, string> = {
  float32: 'F32', float64: 'F64', bfloat16: 'BF16', float16: 'F16', int64: 'I64', int32: 'I32',
  int16: 'I16', int8: 'I8', uint8: 'U8', bool: 'BOOL',
};
const FROM_ST = new Map<string, DType>(Object.entries(TO_ST).map(([k, v]) => [v, k as DType]));
const ELEMENT_BYTES: Record<DType, number> = {
  float32: 4, float64: 8, bfloat16: 2, float16: 2, int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, bool: 1,
};
// The reference implementation refuses larger headers; so do we, before allocating anything.
const MAX_HEADER = 100_000_000;

function checkEndianness(): void {
  if (os.endianness() !== 'LE') throw new SpnError('E_IO', 'safetensors needs a little-endian host; this one is big-endian');
}

/** A CPU tensor from raw little-endian bytes (float16/bfloat16 as their bit patterns). */
export function tensorFromBytes(bytes: Uint8Array, shape: number[], dtype: DType): Tensor {
  return new Tensor(native.fromBuffer(bytes, shape, dtypeCode(dtype)));
}

/** The safetensors bytes of named tensors (any device; copied to the CPU). */
export function encodeSafetensors(tensors: Record<string, Tensor>, metadata?: Record<string, string>): Uint8Array {
  checkEndianness();
  const header: Record<string, unknown> = {};
  if (metadata) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new SpnError('E_ARG', `safetensors metadata '${k}' must be a string, not ${typeof v}`);
    }
    header.__metadata__ = metadata;
  }
  const datas: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    if (name === '__metadata__') throw new SpnError('E_ARG', `'__metadata__' is reserved in safetensors and cannot name a tensor`);
    const d = t.data();
    const bytes = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
    header[name] = { dtype: TO_ST[t.dtype], shape: t.shape, data_offsets: [offset, offset + bytes.byteLength] };
    offset += bytes.byteLength;
    datas.push(bytes);
  }
  let json = JSON.stringify(header);
  const jsonBytes = Buffer.byteLength(json);
  json += ' '.repeat((8 - (jsonBytes % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const d of datas) {
    out.set(d, at);
    at += d.byteLength;
  }
  return out;
}

interface Entry { name: string; dtype: DType; shape: number[]; begin: number; end: number }

/** The checked layout of safetensors bytes: the tensors' entries, the metadata and where the data starts. */
interface Layout { entries: Entry[]; metadata: Record<string, string>; dataStart: number }

/**
 * Checks safetensors bytes without making tensors: the header length, the header JSON, every
 * entry's dtype, shape and offsets, and that the entries tile the data exactly. Throws a
 * FormatError naming `source` and the first inconsistency; returns the metadata and the number
 * of tensors. (A checkpoint is validated with this before it is trusted: store/checkpoint.ts.)
 */
export function checkSafetensors(buf: Uint8Array, source = 'safetensors buffer'): { metadata: Record<string, string>; tensors: number } {
  const { metadata, entries } = parseLayout(buf, source);
  return { metadata, tensors: entries.length };
}

function parseLayout(buf: Uint8Array, src: string): Layout {
  checkEndianness();
  const fail = (msg: string): never => {
    throw new FormatError(`${src}: ${msg}`);
  };
  if (buf.byteLength < 8) fail(`${buf.byteLength} bytes is too short for a safetensors file (it starts with an 8-byte header length)`);
  const n64 = new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getBigUint64(0, true);
  if (n64 > BigInt(buf.byteLength - 8)) fail(`header length ${n64} runs past the end of the file (${buf.byteLength} bytes)`);
  const n = Number(n64);
  if (n > MAX_HEADER) fail(`header length ${n} is over the limit of ${MAX_HEADER} bytes`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(8, 8 + n)));
  } catch (err) {
    fail(`the header is not valid UTF-8 JSON (${(err as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) fail('the header is not a JSON object');
  const dataStart = 8 + n;
  const dataLen = buf.byteLength - dataStart;

  const metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail('__metadata__ is not an object of strings');
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__ '${k}' is a ${typeof v}, expected a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    const at = `tensor '${name}'`;
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail(`${at} is not an object with dtype, shape and data_offsets`);
    const r = raw as Record<string, unknown>;
    const dtype = typeof r.dtype === 'string' ? FROM_ST.get(r.dtype) : undefined;
    if (!dtype) fail(`${at} has dtype ${JSON.stringify(r.dtype)}; expected one of ${[...FROM_ST.keys()].join(', ')}`);
    const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
    if (!Array.isArray(r.shape) || !r.shape.every(isCount)) fail(`${at} has shape ${JSON.stringify(r.shape)}; expected an array of non-negative integers`);
    const off = r.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every(isCount) || off[0] > off[1]) {
      fail(`${at} has data_offsets ${JSON.stringify(off)}; expected [begin, end] with 0 <= begin <= end`);
    }
    const [begin, end] = off as [number, number];
    if (end > dataLen) fail(`${at} has data_offsets [${begin}, ${end}] past the end of the data (${dataLen} bytes)`);
    const shape = r.shape as number[];
    const need = shape.reduce((a, b) => a * b, 1) * ELEMENT_BYTES[dtype!];
    if (need !== end - begin) fail(`${at} has shape [${shape.join(', ')}] of ${r.dtype as string} (${need} bytes) but data_offsets [${begin}, ${end}] hold ${end - begin} bytes`);
    entries.push({ name, dtype: dtype!, shape, begin, end });
  }
  // The data must be tiled exactly: no overlaps, no gaps, nothing after the last tensor.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  for (const e of sorted) {
    if (e.begin < expected) fail(`tensor '${e.name}' data_offsets [${e.begin}, ${e.end}] overlap the previous tensor (ending at ${expected})`);
    if (e.begin > expected) fail(`tensor '${e.name}' data_offsets [${e.begin}, ${e.end}] leave a gap after byte ${expected}`);
    expected = e.end;
  }
  if (expected !== dataLen) fail(`the tensors cover ${expected} bytes of data but the file holds ${dataLen}`);
  return { entries, metadata, dataStart };
}

/**
 * Parses safetensors bytes into CPU tensors (or on opts.device). `source` names the file in
 * errors. Every inconsistency is an E_FORMAT error: nothing is trusted before it is checked.
 */
export function decodeSafetensors(
  buf: Uint8Array,
  opts: { device?: Device; source?: string } = {},
): { tensors: Record<string, Tensor>; metadata: Record<string, string> } {
  const { entries, metadata, dataStart } = parseLayout(buf, opts.source ?? 'safetensors buffer');
  const tensors: Record<string, Tensor> = {};
  try {
    for (const e of entries) {
      let t = tensorFromBytes(buf.subarray(dataStart + e.begin, dataStart + e.end), e.shape, e.dtype);
      if (opts.device && opts.device !== 'cpu') {
        const moved = t.to(opts.device);
        t.dispose();
        t = moved;
      }
      tensors[e.name] = t;
    }
  } catch (err) {
    for (const t of Object.values(tensors)) t.dispose();
    throw err;
  }
  return { tensors, metadata };
}

/** Writes tensors (and string metadata) to a .safetensors file atomically. */
export function saveSafetensors(file: string, tensors: Record<string, Tensor>, metadata?: Record<string, string>): void {
  writeFileAtomic(file, encodeSafetensors(tensors, metadata));
}

/** Reads a .safetensors file; the caller owns (and disposes) the tensors. */
export function loadSafetensors(file: string, opts: { device?: Device } = {}): { tensors: Record<string, Tensor>; metadata: Record<string, string> } {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (err) {
    throw new SpnError('E_IO', `cannot read safetensors file ${file}: ${(err as Error).message}`, { cause: err });
  }
  return decodeSafetensors(buf, { ...opts, source: file });
}
