// Runs the compiled `spn` command (dist/src/cli/main.js) as a user would, for the CLI tests.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const MAIN = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
/** SPN_NATIVE naming a file that does not exist: loading libtorch fails (E_BINDING). */
export const NO_LIBTORCH = { SPN_NATIVE: '/nonexistent/spn_torch.node' };

function tsFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? tsFiles(p) : e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/**
 * Compiles the project when a source file is newer than its output (`npm test` compiles first;
 * this is for `vitest run test/cli` alone). Type errors elsewhere do not stop tsc from emitting.
 */
export function ensureDist(): void {
  const stale = tsFiles(path.join(ROOT, 'src')).some((ts) => {
    const js = path.join(ROOT, 'dist', path.relative(ROOT, ts)).replace(/\.ts$/, '.js');
    return !fs.existsSync(js) || fs.statSync(js).mtimeMs < fs.statSync(ts).mtimeMs;
  });
  if (stale) spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', ROOT], { encoding: 'utf8' });
  if (!fs.existsSync(MAIN)) throw new Error(`${MAIN} missing: \`npx tsc -p .\` emitted nothing`);
}

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface SpnRunOptions {
  env?: Record<string, string>;
  cwd?: string;
  /** Node flags before the script (e.g. --import). */
  node?: string[];
  timeoutMs?: number;
}

/** Runs `spn ...args` to the end. */
export function spn(args: string[], o: SpnRunOptions = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(o.node ?? []), MAIN, ...args], {
      cwd: o.cwd ?? ROOT,
      env: { ...process.env, SPN_THREADS: '1', ...o.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The subcommands `spn --help` lists (help itself excluded). */
export function commandNames(help: string): string[] {
  const section = help.split(/\nCommands:\n/)[1] ?? '';
  return [...section.matchAll(/^ {2}([a-z][a-z0-9-]*)\b/gm)].map((m) => m[1]!).filter((c) => c !== 'help');
}
