// Safe path resolution for the dashboard: turns URL segments into files inside the runs folder,
// or refuses. Every check here is about one way a request could reach a file outside it.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Run names: what `spn train --name` accepts; no separators, no leading dot. */
const RUN_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** File types a run folder may serve; anything else (checkpoints, temp files) is refused. */
export const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.png': 'image/png',
  '.gif': 'image/gif',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.json': 'application/json; charset=utf-8',
  '.jsonl': 'application/x-ndjson; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

/** A refused request: an HTTP status and a message for the JSON error body. */
export class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = 'HttpError';
    this.status = status;
  }
}

export function isRunName(name: string): boolean {
  return RUN_NAME.test(name);
}

/**
 * Splits a raw URL path (still percent-encoded) into decoded segments. Decoding happens per
 * segment, after splitting, so `%2f` can never become a separator; a decoded segment that is
 * empty, `.`, `..` or holds `/`, `\` or a control character is refused.
 */
export function decodeSegments(rawPath: string): string[] {
  if (!rawPath.startsWith('/')) throw new HttpError(400, `path must start with "/", got ${JSON.stringify(rawPath)}`);
  if (rawPath.includes('\\')) throw new HttpError(400, 'backslashes are not allowed in paths');
  const raw = rawPath.slice(1).split('/');
  // A trailing slash ("/api/runs/") is tolerated; empty segments elsewhere are not.
  if (raw.length > 1 && raw[raw.length - 1] === '') raw.pop();
  if (raw.length === 1 && raw[0] === '') return [];
  return raw.map((seg) => {
    let s: string;
    try {
      s = decodeURIComponent(seg);
    } catch {
      throw new HttpError(400, `bad percent-encoding in path segment ${JSON.stringify(seg)}`);
    }
    // eslint-disable-next-line no-control-regex -- control characters are exactly what this refuses
    if (s === '' || s === '.' || s === '..' || /[/\\\u0000-\u001f\u007f]/.test(s)) {
      throw new HttpError(400, `path segment ${JSON.stringify(s)} is not allowed`);
    }
    return s;
  });
}

/** The runs folder, resolved once through symlinks so later containment checks compare real paths. */
export class RunsRoot {
  readonly dir: string;
  readonly real: string;

  constructor(dir: string) {
    this.dir = path.resolve(dir);
    this.real = fs.realpathSync(this.dir);
  }

  /** True when `real` (an already-resolved path) is the root or below it. */
  contains(real: string): boolean {
    return real === this.real || real.startsWith(this.real + path.sep);
  }

  /** The real path of run `name`'s folder; 404 when the name is bad, missing or escapes the root. */
  runDir(name: string): string {
    if (!isRunName(name)) throw new HttpError(404, `no run named ${JSON.stringify(name)}`);
    const real = this.realOrNull(path.join(this.dir, name));
    if (real === null || !this.contains(real) || real === this.real || !isDir(real)) {
      throw new HttpError(404, `no run named ${JSON.stringify(name)}`);
    }
    return real;
  }

  /**
   * The real path of a regular file `segments` inside run `name`, with its content type. Segments
   * must come from decodeSegments. Symlinks are followed and the target must stay under the root.
   */
  runFile(name: string, segments: readonly string[]): { file: string; contentType: string } {
    const dir = this.runDir(name);
    if (segments.length === 0) throw new HttpError(404, 'no file named');
    const rel = segments.join('/');
    const contentType = CONTENT_TYPES[path.extname(rel).toLowerCase()];
    if (contentType === undefined) {
      throw new HttpError(403, `files of type ${JSON.stringify(path.extname(rel) || rel)} are not served; allowed: ${Object.keys(CONTENT_TYPES).join(', ')}`);
    }
    if (segments.some((s) => s.startsWith('.'))) throw new HttpError(403, `hidden files are not served: ${rel}`);
    const real = this.realOrNull(path.join(dir, ...segments));
    if (real === null) throw new HttpError(404, `run ${name} has no file ${rel}`);
    if (!this.contains(real)) throw new HttpError(403, `${rel} resolves outside the runs folder`);
    let st: fs.Stats;
    try {
      st = fs.statSync(real);
    } catch {
      throw new HttpError(404, `run ${name} has no file ${rel}`);
    }
    if (!st.isFile()) throw new HttpError(404, `run ${name} has no file ${rel}`);
    return { file: real, contentType };
  }

  /** Resolves a path inside a run folder for the readers; null when missing or outside the root. */
  safeReal(p: string): string | null {
    const real = this.realOrNull(p);
    return real !== null && this.contains(real) ? real : null;
  }

  private realOrNull(p: string): string | null {
    try {
      return fs.realpathSync(p);
    } catch {
      return null;
    }
  }
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}
