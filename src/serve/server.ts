// `spn serve`: a read-only HTTP dashboard over a runs folder. Binds to 127.0.0.1 unless asked.
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ArgError, SpnError } from '../errors.js';
import { RunsRoot } from './paths.js';
import { handle, locateAssets } from './routes.js';
import { RunReader } from './runs.js';

export interface ServeOptions {
  /** The folder holding one sub-folder per run. */
  runsDir: string;
  /** Interface to bind; 127.0.0.1 unless the user asks for more. */
  host?: string;
  /** 0 picks a free port. */
  port?: number;
}

export interface RunningServer {
  url: string;
  port: number;
  /** Things the user should fix that do not stop the dashboard (a missing Chart.js). */
  warnings: string[];
  server: http.Server;
  close(): Promise<void>;
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

export async function startServer(opts: ServeOptions): Promise<RunningServer> {
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? 8080;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ArgError(`--port must be a whole number from 0 to 65535, got ${port}`);
  let st: fs.Stats;
  try {
    st = fs.statSync(opts.runsDir);
  } catch {
    throw new ArgError(`runs folder ${opts.runsDir} does not exist; train a run first (spn train) or pass the folder that holds your runs`);
  }
  if (!st.isDirectory()) throw new ArgError(`runs folder ${opts.runsDir} is not a folder`);

  const reader = new RunReader(new RunsRoot(opts.runsDir));
  const assets = locateAssets();
  const loopbackOnly = LOOPBACK_HOSTS.has(host);
  const server = http.createServer((req, res) => {
    // On a loopback bind, a foreign Host header means a web page is reaching in through DNS
    // rebinding; refuse so run data never reaches another origin.
    if (loopbackOnly && req.headers.host !== undefined && !LOOPBACK_HOSTS.has(hostname(req.headers.host))) {
      res.writeHead(403, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('forbidden host\n');
      return;
    }
    handle(req, res, reader, assets);
  });
  server.keepAliveTimeout = 5000;

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => reject(listenError(err, host, port));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const urlHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${urlHost}:${addr.port}/`,
    port: addr.port,
    warnings: assets.warnings,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The hostname part of a Host header ("127.0.0.1:8080" → "127.0.0.1", "[::1]:80" → "[::1]"). */
function hostname(header: string): string {
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  const colon = h.indexOf(':');
  return colon === -1 ? h : h.slice(0, colon);
}

/**
 * Why the server could not listen, in one line naming the host and port (E_IO: the address is
 * taken, unknown or not this machine's; nothing spn can fix by retrying with the same values).
 */
export function listenError(err: NodeJS.ErrnoException, host: string, port: number): SpnError {
  const where = `${host}:${port}`;
  const reason =
    err.code === 'EADDRINUSE' ? `port ${port} is in use (pass --port 0 for any free port)`
      : err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN' ? `host ${host} not found (${err.code})`
        : err.code === 'EADDRNOTAVAIL' ? `${host} is not an address of this machine (EADDRNOTAVAIL)`
          : err.code === 'EACCES' ? `permission denied (EACCES; ports below 1024 need privileges)`
            : err.message;
  return new SpnError('E_IO', `cannot listen on ${where}: ${reason}`, { cause: err });
}
