// Small file helpers shared by the loaders: existence checks with a DataError naming the path,
// and reading a file that may or may not be gzipped.
import * as fs from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { DataError } from '../errors.js';

export function requireDir(dir: string, what: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch {
    throw new DataError(`${what}: folder ${dir} does not exist`);
  }
  if (!st.isDirectory()) throw new DataError(`${what}: ${dir} is not a folder`);
}

export function requireFile(file: string, what: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    throw new DataError(`${what}: file ${file} does not exist`);
  }
  if (!st.isFile()) throw new DataError(`${what}: ${file} is not a file`);
}

/** Reads a file, gunzipping it when it starts with the gzip magic (whatever its name). */
export function readMaybeGzip(file: string): Uint8Array {
  const raw = fs.readFileSync(file);
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      return gunzipSync(raw);
    } catch (err) {
      throw new DataError(`${file}: corrupt gzip data (${(err as Error).message})`, { cause: err });
    }
  }
  return raw;
}
