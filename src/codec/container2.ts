// The compact .spn container, version 2 (docs/spn-format.md): binary, every integer a varint,
// nothing recorded that the model's own config fixes (shape, bits, scale) or that has its default
// value. A file of one image costs its coded stream plus about 30 bytes.
//
//   "SPNC"  u8 2  flags  [stage count]  per stage: weights id (8 bytes), probe (4 bytes)
//   [batch]  [precision]  count  [names]
//   per image: height, width, stream length, pixel hash (4 bytes), stream bytes
//   the first 4 bytes of sha256 of every byte before them
import { createHash } from 'node:crypto';
import { FormatError } from '../errors.js';
import { HASH_BYTES, MAGIC, NameRule, SAFE_NAME, type ContainerSizes } from './container.js';
import { DEFAULT_BATCH, DEFAULT_PRECISION } from './defaults.js';
import { MAX_BATCH, MAX_FILE_SUBPIXELS, MAX_STAGES, sizeProblem } from './limits.js';
import { MAX_PRECISION } from './rangecoder.js';
import { ByteReader, pushVarint } from './varint.js';

export const VERSION2 = 2;
/** Bytes of a stage's weights id: the start of the sha256 of its weights (hash.ts weightsHash). */
export const WEIGHTS_ID_BYTES = 8;
/** Bytes of a stage's probe: the start of the sha256 of its probe logits (hash.ts probeHash). */
export const PROBE_BYTES = 4;
export const CHECKSUM2_BYTES = 4;

const FLAG_BATCH = 1; // batch recorded (else DEFAULT_BATCH)
const FLAG_PRECISION = 2; // precision recorded (else DEFAULT_PRECISION)
const FLAG_RAW = 4; // the raw weights, not the EMA ones
const FLAG_STAGES = 8; // stage count recorded (else 1)
const NAMES_SHIFT = 4; // bits 4-5: 0 default names, 1 a rule, 2 a list
const KNOWN_FLAGS = 0x3f;

export interface StageId {
  /** WEIGHTS_ID_BYTES bytes. */
  weights: Uint8Array;
  /** PROBE_BYTES bytes. */
  probe: Uint8Array;
}

export interface ImageEntry {
  height: number;
  width: number;
  /** pixelHash of its true-size values (HASH_BYTES bytes). */
  hash: Uint8Array;
  stream: Uint8Array;
}

export interface ContainerV2 {
  stages: StageId[];
  ema: boolean;
  batch: number;
  precision: number;
  /** null: the default names (hash.ts defaultNames); a rule; or one name per image. */
  names: NameRule | string[] | null;
  images: ImageEntry[];
}

function pushString(s: string, out: number[]): void {
  const b = Buffer.from(s, 'utf8');
  pushVarint(b.length, out);
  out.push(...b);
}

export function encodeContainer2(c: ContainerV2): { bytes: Uint8Array; sizes: ContainerSizes } {
  if (c.stages.length < 1 || c.stages.length > MAX_STAGES) throw new FormatError(`container: ${c.stages.length} stages; expected 1..${MAX_STAGES}`);
  if (!Number.isInteger(c.batch) || c.batch < 1 || c.batch > MAX_BATCH) throw new FormatError(`container: batch ${c.batch}; expected 1..${MAX_BATCH}`);
  const namesKind = c.names === null ? 0 : Array.isArray(c.names) ? 2 : 1;
  if (Array.isArray(c.names) && (c.names.length !== c.images.length || c.names.some((n) => !SAFE_NAME.test(n)) || new Set(c.names).size !== c.names.length)) {
    throw new FormatError(`container: the names must be ${c.images.length} distinct file-name-safe names`);
  }
  if (c.names && !Array.isArray(c.names)) NameRule.parse(c.names);
  const flags = (c.batch !== DEFAULT_BATCH ? FLAG_BATCH : 0) | (c.precision !== DEFAULT_PRECISION ? FLAG_PRECISION : 0) | (c.ema ? 0 : FLAG_RAW) | (c.stages.length > 1 ? FLAG_STAGES : 0) | (namesKind << NAMES_SHIFT);
  const head: number[] = [...Buffer.from(MAGIC, 'latin1'), VERSION2];
  pushVarint(flags, head);
  if (flags & FLAG_STAGES) pushVarint(c.stages.length, head);
  for (const s of c.stages) {
    if (s.weights.length !== WEIGHTS_ID_BYTES || s.probe.length !== PROBE_BYTES) throw new FormatError('container: a stage id has the wrong length');
    head.push(...s.weights, ...s.probe);
  }
  if (flags & FLAG_BATCH) pushVarint(c.batch, head);
  if (flags & FLAG_PRECISION) pushVarint(c.precision, head);
  pushVarint(c.images.length, head);
  if (Array.isArray(c.names)) c.names.forEach((n) => pushString(n, head));
  else if (c.names) {
    pushString(c.names.prefix, head);
    pushVarint(c.names.digits, head);
  }
  const parts: Uint8Array[] = [Uint8Array.from(head)];
  let records = 0;
  let streams = 0;
  for (const im of c.images) {
    const problem = sizeProblem(im.height, im.width);
    if (problem) throw new FormatError(`container: an image of ${problem}`);
    if (im.hash.length !== HASH_BYTES) throw new FormatError(`container: a pixel hash has ${im.hash.length} bytes, expected ${HASH_BYTES}`);
    const r: number[] = [];
    pushVarint(im.height, r);
    pushVarint(im.width, r);
    pushVarint(im.stream.length, r);
    parts.push(Uint8Array.from(r), im.hash, im.stream);
    records += r.length + HASH_BYTES;
    streams += im.stream.length;
  }
  const body = Buffer.concat(parts);
  const bytes = Buffer.concat([body, createHash('sha256').update(body).digest().subarray(0, CHECKSUM2_BYTES)]);
  return {
    bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length),
    sizes: { total: bytes.length, header: head.length + CHECKSUM2_BYTES, records, streams },
  };
}

/** The smallest record of one image: height, width and length (a byte each) and the hash. */
const MIN_RECORD = 3 + HASH_BYTES;

/**
 * Parses a version 2 container, checking its checksum first and then every count and size against
 * the bytes left and the codec's limits (limits.ts) before it is used; `file` names it in errors.
 */
export function decodeContainer2(bytes: Uint8Array, file: string): ContainerV2 {
  const minimum = MAGIC.length + 1 + 1 + WEIGHTS_ID_BYTES + PROBE_BYTES + 1 + CHECKSUM2_BYTES;
  if (bytes.length < minimum) throw new FormatError(`${file} is truncated: ${bytes.length} bytes, a version 2 .spn file has at least ${minimum}`);
  const end = bytes.length - CHECKSUM2_BYTES;
  const sum = createHash('sha256').update(bytes.subarray(0, end)).digest().subarray(0, CHECKSUM2_BYTES);
  if (!Buffer.from(sum).equals(Buffer.from(bytes.subarray(end)))) {
    throw new FormatError(`${file}: checksum mismatch: the file is truncated or corrupted (the sha256 of its first ${end} bytes does not start with the ${CHECKSUM2_BYTES} bytes at its end)`);
  }
  const r = new ByteReader(bytes, file, MAGIC.length + 1, end);
  const flags = r.varint('the flags');
  if (flags & ~KNOWN_FLAGS) throw new FormatError(`${file}: unknown flags 0x${flags.toString(16)} (written by a newer spn?)`);
  const namesKind = (flags >> NAMES_SHIFT) & 3;
  if (namesKind === 3) throw new FormatError(`${file}: unknown kind of names (3)`);
  const nStages = flags & FLAG_STAGES ? r.bounded('the stage count', 2, MAX_STAGES) : 1;
  const stages: StageId[] = [];
  for (let i = 0; i < nStages; i++) {
    const weights = new Uint8Array(r.take(WEIGHTS_ID_BYTES, `stage ${i + 1}'s weights id`));
    stages.push({ weights, probe: new Uint8Array(r.take(PROBE_BYTES, `stage ${i + 1}'s probe`)) });
  }
  const batch = flags & FLAG_BATCH ? r.bounded('the batch', 1, MAX_BATCH) : DEFAULT_BATCH;
  const precision = flags & FLAG_PRECISION ? r.bounded('the precision', 2, MAX_PRECISION) : DEFAULT_PRECISION;
  const count = r.varint('the image count');
  if (count > Math.floor(r.left / MIN_RECORD)) {
    throw new FormatError(`${file}: the image count is ${count}; expected 0..${Math.floor(r.left / MIN_RECORD)} (${r.left} bytes are left, and each image takes at least ${MIN_RECORD})`);
  }
  const str = (what: string): string => {
    const n = r.bounded(`${what}'s length`, 0, 200);
    return Buffer.from(r.take(n, what)).toString('utf8');
  };
  let names: ContainerV2['names'] = null;
  if (namesKind === 1) {
    const rule = { prefix: str('the names\' prefix'), digits: r.bounded('the names\' digits', 1, 12) };
    if (!NameRule.safeParse(rule).success) throw new FormatError(`${file}: the names' prefix ${JSON.stringify(rule.prefix)} is not file-name safe`);
    names = rule;
  } else if (namesKind === 2) {
    const list: string[] = [];
    for (let i = 0; i < count; i++) {
      const n = str(`image ${i}'s name`);
      if (!SAFE_NAME.test(n)) throw new FormatError(`${file}: image ${i}'s name ${JSON.stringify(n)} is not a safe file name ([A-Za-z0-9_][A-Za-z0-9._-]*)`);
      list.push(n);
    }
    if (new Set(list).size !== list.length) throw new FormatError(`${file}: image names repeat`);
    names = list;
  }
  const images: ImageEntry[] = [];
  let pixels = 0;
  for (let i = 0; i < count; i++) {
    const height = r.varint(`image ${i}'s height`);
    const width = r.varint(`image ${i}'s width`);
    const problem = sizeProblem(height, width);
    if (problem) throw new FormatError(`${file}: image ${i} declares ${problem}`);
    pixels += height * width;
    if (pixels > MAX_FILE_SUBPIXELS) throw new FormatError(`${file}: its images declare more than ${MAX_FILE_SUBPIXELS} pixels together (image ${i} passes it)`);
    const n = r.varint(`image ${i}'s stream length`);
    if (n > r.left - HASH_BYTES) throw new FormatError(`${file}: image ${i}'s stream length is ${n}; expected 0..${Math.max(0, r.left - HASH_BYTES)} (${r.left} bytes are left, its pixel hash included)`);
    const hash = new Uint8Array(r.take(HASH_BYTES, `image ${i}'s pixel hash`));
    images.push({ height, width, hash, stream: new Uint8Array(r.take(n, `image ${i}'s stream`)) });
  }
  if (r.left !== 0) throw new FormatError(`${file}: ${r.left} unexpected bytes after the last image`);
  return { stages, ema: !(flags & FLAG_RAW), batch, precision, names, images };
}
