// The .spn container, version 1 (docs/spn-format.md; read, and written on request, beside the
// compact version 2 of container2.ts): magic and version, a JSON header naming everything
// that fixes the numbers, one record per image (its coded stream and a hash of its pixels), and
// a sha256 of all of it at the end.
//
//   "SPNC"  u8 version  u32le header length  header (UTF-8 JSON)
//   per image: varint stream length, 4-byte pixel hash, stream bytes
//   sha256 of every byte before it (32 bytes)
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { FormatError } from '../errors.js';
import { ModelConfig } from '../spn/config.js';
import { QUANTIZER_ID } from './quantize.js';
import { MAX_BATCH } from './limits.js';
import { MAX_PRECISION } from './rangecoder.js';
import { pushVarint } from './varint.js';

export const MAGIC = 'SPNC';
export const VERSION = 1;
const CHECKSUM_BYTES = 32;
export const HASH_BYTES = 4;

/** Image names become file names: no path separators, no leading dot. */
export const SAFE_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,199}$/;

/** Names that are a prefix and the image's index, zero-padded: image i is `${prefix}${i padded to digits}`. */
export const NameRule = z.object({ prefix: z.string().regex(/^([A-Za-z0-9_][A-Za-z0-9._-]{0,99})?$/), digits: z.number().int().min(1).max(12) }).strict();
export type NameRule = z.infer<typeof NameRule>;

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);

export const StageEntry = z
  .object({
    run: z.string().min(1), // the run folder, absolute, as it was when compressed
    checkpoint: z.string().min(1), // the checkpoint's path inside the run folder, without extension
    step: z.number().int().min(0),
    ema: z.boolean(),
    model: ModelConfig, // the architecture, shape, bits, scale and stage
    weights: hex64, // sha256 of the state dict coded with (codec/hash.ts)
    probe: hex64, // sha256 of the probe's logits (codec/hash.ts)
  })
  .strict();
export type StageEntry = z.infer<typeof StageEntry>;

export const Header = z
  .object({
    format: z.literal('spn-codec'),
    coder: z.object({ kind: z.literal('range48'), precision: z.number().int().min(1).max(MAX_PRECISION), quantizer: z.literal(QUANTIZER_ID) }).strict(),
    libtorch: z.string(),
    threads: z.number().int().positive(),
    batch: z.number().int().positive().max(MAX_BATCH), // the probe runs the model on this many images: bounded
    dtype: z.literal('float32'),
    device: z.literal('cpu'),
    image: z.object({ height: z.number().int().positive(), width: z.number().int().positive(), channels: z.number().int().positive(), bits: z.number().int().min(1).max(8) }).strict(),
    pipeline: z.string().nullable(),
    stages: z.array(StageEntry).min(1),
    count: z.number().int().min(0),
    pixels: hex64, // sha256 over all images' pixels, in order (each image's H·W·C values)
    // a list, a rule (prefix + zero-padded index), or null: image-000000, image-000001, ...
    names: z.union([z.array(z.string().regex(SAFE_NAME)), NameRule]).nullable(),
    source: z.string(),
  })
  .strict()
  .superRefine((h, ctx) => {
    if (Array.isArray(h.names) && h.names.length !== h.count) ctx.addIssue({ code: 'custom', message: `${h.names.length} names for ${h.count} images` });
    if (Array.isArray(h.names) && new Set(h.names).size !== h.names.length) ctx.addIssue({ code: 'custom', message: 'image names repeat' });
  });
export type Header = z.infer<typeof Header>;

export interface ImageRecord {
  /** pixelHash of the image (HASH_BYTES bytes). */
  hash: Uint8Array;
  stream: Uint8Array;
}

export interface Container {
  header: Header;
  records: ImageRecord[];
}

/** Sizes of a container's parts, in bytes (they add up to the file size). */
export interface ContainerSizes {
  total: number;
  /** Magic, version, header length, the JSON header and the checksum. */
  header: number;
  /** Per image: the stream length and the pixel hash. */
  records: number;
  /** The coded streams. */
  streams: number;
}

/** The version byte of a .spn file, after checking its magic; `file` names it in errors. */
export function containerVersion(bytes: Uint8Array, file: string): number {
  if (bytes.length === 0) throw new FormatError(`${file} is empty (0 bytes); a .spn file starts with "${MAGIC}"`);
  if (bytes.length < MAGIC.length + 1 || Buffer.from(bytes.subarray(0, MAGIC.length)).toString('latin1') !== MAGIC) {
    throw new FormatError(`${file} is not a .spn file (it does not start with "${MAGIC}")`);
  }
  return bytes[MAGIC.length]!;
}

export function encodeContainer(c: Container): { bytes: Uint8Array; sizes: ContainerSizes } {
  const header = Header.parse(c.header);
  if (c.records.length !== header.count) throw new FormatError(`container: ${c.records.length} records for a header of ${header.count} images`);
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const parts: Uint8Array[] = [Buffer.from(MAGIC, 'latin1'), Uint8Array.of(VERSION)];
  const len = Buffer.alloc(4);
  len.writeUInt32LE(json.length);
  parts.push(len, json);
  let records = 0;
  let streams = 0;
  for (const r of c.records) {
    if (r.hash.length !== HASH_BYTES) throw new FormatError(`container: a pixel hash has ${r.hash.length} bytes, expected ${HASH_BYTES}`);
    const v: number[] = [];
    pushVarint(r.stream.length, v);
    parts.push(Uint8Array.from(v), r.hash, r.stream);
    records += v.length + HASH_BYTES;
    streams += r.stream.length;
  }
  const body = Buffer.concat(parts);
  const bytes = Buffer.concat([body, createHash('sha256').update(body).digest()]);
  const headerBytes = MAGIC.length + 1 + 4 + json.length + CHECKSUM_BYTES;
  return { bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length), sizes: { total: bytes.length, header: headerBytes, records, streams } };
}

/** Parses and checks a container; `file` names it in errors. Verifies the checksum before anything else. */
export function decodeContainer(bytes: Uint8Array, file: string): Container {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const minimum = MAGIC.length + 1 + 4 + CHECKSUM_BYTES;
  if (buf.length < MAGIC.length || buf.subarray(0, MAGIC.length).toString('latin1') !== MAGIC) {
    throw new FormatError(`${file} is not a .spn file (it does not start with "${MAGIC}")`);
  }
  if (buf.length < minimum) throw new FormatError(`${file} is truncated: ${buf.length} bytes, a .spn file has at least ${minimum}`);
  const version = buf[MAGIC.length]!;
  if (version !== VERSION) throw new FormatError(`${file} is a version ${version} .spn file; this spn reads version ${VERSION}`);
  const body = buf.subarray(0, buf.length - CHECKSUM_BYTES);
  const sum = createHash('sha256').update(body).digest();
  if (!sum.equals(buf.subarray(buf.length - CHECKSUM_BYTES))) {
    throw new FormatError(`${file}: checksum mismatch: the file is truncated or corrupted (sha256 of its ${body.length} bytes does not match the one stored at its end)`);
  }
  let pos = MAGIC.length + 1;
  const hlen = buf.readUInt32LE(pos);
  pos += 4;
  if (pos + hlen > body.length) throw new FormatError(`${file}: the header's length (${hlen} bytes) runs past the end of the file`);
  let raw: unknown;
  try {
    raw = JSON.parse(body.subarray(pos, pos + hlen).toString('utf8'));
  } catch (err) {
    throw new FormatError(`${file}: the header is not valid JSON (${(err as Error).message})`);
  }
  pos += hlen;
  const parsed = Header.safeParse(raw);
  if (!parsed.success) {
    throw new FormatError(`${file}: invalid header: ${parsed.error.issues.map((i) => `${i.path.length ? i.path.join('.') + ': ' : ''}${i.message}`).join('; ')}`);
  }
  const header = parsed.data;
  const records: ImageRecord[] = [];
  for (let i = 0; i < header.count; i++) {
    let n = 0;
    let mul = 1;
    for (;;) {
      if (pos >= body.length) throw new FormatError(`${file}: image ${i}'s record runs past the end of the file`);
      const b = body[pos++]!;
      n += (b & 0x7f) * mul;
      mul *= 0x80;
      if (b < 0x80) break;
      if (mul > 2 ** 42) throw new FormatError(`${file}: image ${i}'s stream length is not a valid varint`);
    }
    if (pos + HASH_BYTES + n > body.length) throw new FormatError(`${file}: image ${i}'s stream (${n} bytes) runs past the end of the file`);
    const hash = new Uint8Array(body.subarray(pos, pos + HASH_BYTES));
    pos += HASH_BYTES;
    records.push({ hash, stream: new Uint8Array(body.subarray(pos, pos + n)) });
    pos += n;
  }
  if (pos !== body.length) throw new FormatError(`${file}: ${body.length - pos} unexpected bytes after the last image`);
  return { header, records };
}

/** The name image i is written under. */
export function imageName(h: Header, i: number): string {
  const n = h.names;
  if (Array.isArray(n)) return n[i]!;
  return n ? `${n.prefix}${String(i).padStart(n.digits, '0')}` : `image-${String(i).padStart(6, '0')}`;
}

/** Names as compact as they can be recorded: null for the default, a rule for prefix + index, else the list. */
export function compactNames(names: string[] | null): Header['names'] {
  if (!names) return null;
  const m = /^(.*?)(0*0)$/.exec(names[0] ?? '');
  if (m) {
    const rule = { prefix: m[1]!, digits: m[2]!.length };
    if (NameRule.safeParse(rule).success && names.every((n, i) => n === `${rule.prefix}${String(i).padStart(rule.digits, '0')}`)) {
      return rule.prefix === 'image-' && rule.digits === 6 ? null : rule;
    }
  }
  return names;
}
