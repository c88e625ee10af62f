// The decoded-split cache: one binary file per split, a 64-byte header (magic, n, h, w, c and a
// SHA-256 key of the spec, options and source files' sizes and mtimes) followed by the raw
// (N, H, W, C) bytes. Written with an atomic rename, so an interrupted load never leaves a file
// that a later run would trust.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../fsutil.js';
import { memorySet } from './sets.js';
import type { DatasetSource, ImageSet } from './types.js';

const MAGIC = 'SPNDATA1';
const HEADER = 64;

/** The cache key of a source: changes when the spec, `size` or any source file changes. */
export function cacheKey(src: DatasetSource, size: number | undefined): Buffer {
  const files = src.files.map((f) => {
    const st = fs.statSync(f);
    return [f, st.size, st.mtimeMs];
  });
  const text = JSON.stringify({ v: 1, name: src.name, key: src.key ?? '', size: size ?? null, files });
  return createHash('sha256').update(text).digest();
}

/** Where one split of a source is cached. */
export function cachePath(cacheDir: string, src: DatasetSource, key: Buffer, split: 'train' | 'test'): string {
  const slug = src.name.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+/, '').slice(-60);
  return path.join(cacheDir, `${slug}-${key.toString('hex').slice(0, 16)}.${split}.bin`);
}

/** Reads a cached split; undefined when missing, from another key, or damaged. */
export function readCache(file: string, key: Buffer): ImageSet | undefined {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch {
    return undefined;
  }
  if (buf.length < HEADER || buf.toString('latin1', 0, 8) !== MAGIC) return undefined;
  if (!buf.subarray(24, 56).equals(key)) return undefined;
  const n = buf.readUInt32LE(8);
  const h = buf.readUInt32LE(12);
  const w = buf.readUInt32LE(16);
  const c = buf.readUInt32LE(20);
  if (buf.length !== HEADER + n * h * w * c) return undefined;
  return memorySet(new Uint8Array(buf.buffer, buf.byteOffset + HEADER, n * h * w * c), { n, h, w, c });
}

export function writeCache(file: string, key: Buffer, set: ImageSet): void {
  const header = Buffer.alloc(HEADER);
  header.write(MAGIC, 0, 'latin1');
  header.writeUInt32LE(set.n, 8);
  header.writeUInt32LE(set.h, 12);
  header.writeUInt32LE(set.w, 16);
  header.writeUInt32LE(set.c, 20);
  key.copy(header, 24);
  writeFileAtomic(file, Buffer.concat([header, set.read(0, set.n)]));
}
