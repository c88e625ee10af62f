// The programs in examples/ use only the public API (`import ... from 'spn'`); `npm test`
// type-checks them with everything else (tsconfig includes examples/) and this runs the compiled
// ones, as a user would, from a folder outside the checkout.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupTmp, tmpDir } from './data/fixtures.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = (...p: string[]) => path.join(ROOT, 'dist', ...p);
let work: string;

function node(args: string[]) {
  const r = spawnSync(process.execPath, args, { cwd: work, encoding: 'utf8', env: { ...process.env, SPN_THREADS: '1' }, timeout: 240_000 });
  expect(r.status, `${args.join(' ')}\n${r.stdout}\n${r.stderr}`).toBe(0);
  return r.stdout;
}

beforeAll(() => {
  work = tmpDir('spn-examples-');
  if (!fs.existsSync(dist('examples', 'train-and-sample.js'))) throw new Error('dist/examples is missing: `npm test` compiles it first (tsc -p .)');
});
afterAll(() => cleanupTmp());

describe('examples', () => {
  it('train-and-sample trains, samples, and its images equal `spn sample` with the same seed', () => {
    const run = path.join(work, 'run');
    const out = node([dist('examples', 'train-and-sample.js'), run]);
    expect(out).toMatch(/^step 10: \d+\.\d{3} bits\/dim$/m);
    expect(out).toMatch(/trained 30 steps; test bits\/dim \d+\.\d{3}/);
    expect(out).toMatch(/sampled 4 images of 28×28×1 at 8 bits/);
    node([dist('src', 'cli', 'main.js'), 'sample', run, '--n', '4', '--seed', '1', '--out', path.join(work, 'cli.png'), '--quiet']);
    expect(fs.readFileSync(path.join(run, 'example-samples.png')).equals(fs.readFileSync(path.join(work, 'cli.png')))).toBe(true);
  }, 240_000);

  it('score-images scores every image; their mean is the exact total', () => {
    const out = node([dist('examples', 'score-images.js'), path.join(work, 'run'), '40']);
    const m = /mean (\d+\.\d+) bits\/dim over 40 images \(evaluate: (\d+\.\d+)\)/.exec(out);
    expect(m, out).not.toBeNull();
    expect(m![1]).toBe(m![2]);
    expect(out).toMatch(/most likely: {2}#\d+ \d\.\d{3}/);
  }, 240_000);
});
