// The names images are decoded under, recorded in a version 2 file only when they differ from the
// default: a file of one image takes the .spn file's own name (photo.spn gives photo.png, as gzip
// does), a file of several gives image-000000, image-000001, … (version 1's default).
import * as path from 'node:path';
import { compactNames, NameRule, SAFE_NAME } from './container.js';

/** The file-name-safe stem of a .spn file's name (`photos/cat.spn` → `cat`), or null when it has none. */
export function fileStem(file: string | undefined): string | null {
  if (!file) return null;
  const stem = path.basename(file).replace(/\.spn$/i, '');
  return SAFE_NAME.test(stem) ? stem : null;
}

/** The default names of `count` images in a file whose stem is `stem`. */
export function defaultNames(count: number, stem: string | null): string[] {
  if (count === 1 && stem) return [stem];
  return Array.from({ length: count }, (_, i) => `image-${String(i).padStart(6, '0')}`);
}

/** What a version 2 file records: null for the default names, else a rule or the list. */
export function recordedNames(names: string[] | null, stem: string | null): NameRule | string[] | null {
  if (!names) return null;
  const def = defaultNames(names.length, stem);
  if (names.every((n, i) => n === def[i])) return null;
  return compactNames(names) ?? defaultNames(names.length, null); // compactNames: null means image-000000…, which is not the default when count = 1
}

/** The names of a version 2 file's images. */
export function namesOf(recorded: NameRule | string[] | null, count: number, stem: string | null): string[] {
  if (recorded === null) return defaultNames(count, stem);
  if (Array.isArray(recorded)) return recorded;
  return Array.from({ length: count }, (_, i) => `${recorded.prefix}${String(i).padStart(recorded.digits, '0')}`);
}
