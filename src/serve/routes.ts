// The dashboard's HTTP routes: the static page, its vendored Chart.js, and the JSON API over run
// folders. Every route only reads; anything but GET/HEAD is 405.
//
//   GET /                                   web/index.html (and /app.js, /style.css)
//   GET /vendor/chart.js                    Chart.js UMD build from node_modules
//   GET /api/runs                           { runs: RunSummary[] }, newest first
//   GET /api/runs/:name                     RunDetail: config, status, eval, sample files
//   GET /api/runs/:name/metrics?since=N     MetricsPage: records from line N on
//   GET /api/runs/:name/files/<path>        a PNG/GIF/JSON file inside the run
import * as fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SpnError } from '../errors.js';
import { decodeSegments, HttpError } from './paths.js';
import type { RunReader } from './runs.js';

const DEFAULT_LIMIT = 20000;
const MAX_LIMIT = 100000;

/** Headers on every response: nothing is cached (files change while training), nothing sniffed or framed. */
const BASE_HEADERS: Readonly<Record<string, string>> = {
  'Cache-Control': 'no-store, max-age=0',
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Content-Security-Policy': "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
};

export interface StaticAssets {
  /** URL path → file and content type. A fixed table: no URL ever names a file directly. */
  files: ReadonlyMap<string, { file: string; contentType: string }>;
  /** What could not be found, as advice for the user; the page still works without charts. */
  warnings: string[];
}

/** Finds web/ (beside src/ in the checkout, or beside dist/ when built) and Chart.js. */
export function locateAssets(): StaticAssets {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const webDir = findUp(here, path.join('web', 'index.html'));
  if (webDir === null) throw new SpnError('E_IO', `cannot find web/index.html in any folder above ${here}; reinstall spn or run it from a checkout`);
  const html = { file: path.join(webDir, 'index.html'), contentType: 'text/html; charset=utf-8' };
  const files = new Map<string, { file: string; contentType: string }>([
    ['/', html],
    ['/index.html', html],
    ['/app.js', { file: path.join(webDir, 'app.js'), contentType: 'text/javascript; charset=utf-8' }],
    ['/style.css', { file: path.join(webDir, 'style.css'), contentType: 'text/css; charset=utf-8' }],
  ]);
  const warnings: string[] = [];
  // The duration format shared with the terminal (src/format.ts), compiled: beside this module
  // when it runs from dist/, in the checkout's dist/ when it runs from its TypeScript source.
  const format = [path.join(here, '..', 'format.js'), path.join(webDir, '..', 'dist', 'src', 'format.js')].find((f) => fs.existsSync(f));
  if (format) files.set('/format.js', { file: format, contentType: 'text/javascript; charset=utf-8' });
  else warnings.push('the compiled src/format.js is missing, so the dashboard cannot start; build it with: npm run build');
  try {
    // chart.js's exports map hides dist/chart.umd.js; resolve the package entry and look beside it.
    const chartDir = path.dirname(createRequire(import.meta.url).resolve('chart.js'));
    files.set('/vendor/chart.js', { file: path.join(chartDir, 'chart.umd.js'), contentType: 'text/javascript; charset=utf-8' });
  } catch {
    warnings.push('chart.js is not installed, so the dashboard will show no charts; fix with: npm install chart.js');
  }
  return { files, warnings };
}

function findUp(from: string, rel: string): string | null {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, rel))) return path.join(dir, path.dirname(rel));
    if (path.dirname(dir) === dir) return null;
  }
}

/** Handles one request; never throws (errors become JSON error responses). */
export function handle(req: IncomingMessage, res: ServerResponse, reader: RunReader, assets: StaticAssets): void {
  try {
    route(req, res, reader, assets);
  } catch (err) {
    const status = err instanceof HttpError ? err.status : 500;
    const message = err instanceof Error ? err.message : String(err);
    if (status === 500) process.stderr.write(`spn serve: ${req.method} ${req.url}: ${err instanceof Error ? (err.stack ?? message) : message}\n`);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    sendJson(req, res, status, { error: message }, status === 405 ? { Allow: 'GET, HEAD' } : {});
  }
}

function route(req: IncomingMessage, res: ServerResponse, reader: RunReader, assets: StaticAssets): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, `method ${req.method} not allowed; the dashboard is read-only`);
  const url = req.url ?? '';
  // Node's parser already refuses most of these; NULs and control characters name no run file.
  // eslint-disable-next-line no-control-regex -- control characters are exactly what this refuses
  if (/[\u0000-\u001f\u007f]/.test(url)) throw new HttpError(400, 'control characters in URL');
  const q = url.indexOf('?');
  const rawPath = q === -1 ? url : url.slice(0, q);
  const query = new URLSearchParams(q === -1 ? '' : url.slice(q + 1));

  const asset = assets.files.get(rawPath);
  if (asset !== undefined) return sendFile(req, res, asset.file, asset.contentType);

  const seg = decodeSegments(rawPath);
  if (seg[0] !== 'api' || seg[1] !== 'runs') throw new HttpError(404, `no route for ${rawPath}`);
  if (seg.length === 2) return sendJson(req, res, 200, { runs: reader.list() });
  const name = seg[2]!;
  if (seg.length === 3) return sendJson(req, res, 200, reader.detail(name));
  if (seg[3] === 'metrics' && seg.length === 4) {
    const since = intParam(query, 'since', 0, Number.MAX_SAFE_INTEGER, 0);
    const limit = intParam(query, 'limit', 1, MAX_LIMIT, DEFAULT_LIMIT);
    return sendJson(req, res, 200, reader.index(name).page(since, limit));
  }
  if (seg[3] === 'files') {
    const { file, contentType } = reader.root.runFile(name, seg.slice(4));
    return sendFile(req, res, file, contentType);
  }
  throw new HttpError(404, `no route for ${rawPath}`);
}

function intParam(query: URLSearchParams, key: string, min: number, max: number, dflt: number): number {
  const raw = query.get(key);
  if (raw === null || raw === '') return dflt;
  if (!/^\d{1,16}$/.test(raw)) throw new HttpError(400, `${key} must be a whole number, got ${JSON.stringify(raw)}`);
  const v = Number(raw);
  if (v < min || v > max) throw new HttpError(400, `${key} must be between ${min} and ${max}, got ${v}`);
  return v;
}

function sendJson(req: IncomingMessage, res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
  const data = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { ...BASE_HEADERS, ...extra, 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': data.length });
  res.end(req.method === 'HEAD' ? undefined : data);
}

/** Streams a file that was already checked; the size comes from the open descriptor, not the path. */
function sendFile(req: IncomingMessage, res: ServerResponse, file: string, contentType: string): void {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    throw new HttpError(404, `file ${path.basename(file)} is gone`);
  }
  let size: number;
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new HttpError(404, `${path.basename(file)} is not a file`);
    size = st.size;
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
  res.writeHead(200, { ...BASE_HEADERS, 'Content-Type': contentType, 'Content-Length': size });
  if (req.method === 'HEAD') {
    fs.closeSync(fd);
    res.end();
    return;
  }
  // Read exactly `size` bytes: a file growing meanwhile must not overrun Content-Length.
  const stream = fs.createReadStream('', { fd, start: 0, end: Math.max(0, size - 1) });
  if (size === 0) {
    stream.destroy();
    res.end();
    return;
  }
  stream.on('error', () => res.destroy());
  stream.pipe(res);
}
