// Shared helpers for the dashboard tests: a temp runs folder holding a copy of the fixture run,
// and raw HTTP requests (fetch would normalise "..", which is exactly what we want to send).
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'run-fixture');

/** A fresh temp folder with runs/run-fixture copied in; returns the runs folder. */
export function tempRuns(): string {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'spn-serve-'));
  const runs = path.join(base, 'runs');
  fs.mkdirSync(runs);
  fs.cpSync(FIXTURE, path.join(runs, 'run-fixture'), { recursive: true });
  return runs;
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
  /** The body parsed as JSON; `any` so assertions can index into it freely. */
  json: () => any; // eslint-disable-line @typescript-eslint/no-explicit-any -- see above
}

/** Sends `target` exactly as written (no URL normalisation). */
export function request(port: number, target: string, opts: { method?: string; headers?: Record<string, string> } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: target, method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        const text = body.toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text, json: () => JSON.parse(text) });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}
