// The `spn` command as a user runs it (the compiled dist/src/cli/main.js, spawned): help and
// version without libtorch, option checks before anything is written, help texts, the spec
// error. Exit codes per class are in exit.test.ts.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { smoothImages, writeIdx } from '../data/fixtures.js';
import { commandNames, ensureDist, NO_LIBTORCH, ROOT, spn } from './spawn.js';

let work: string;
let commands: string[];

beforeAll(async () => {
  ensureDist();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'spn-cli-'));
  const help = await spn(['--help'], { env: NO_LIBTORCH });
  commands = commandNames(help.stdout);
}, 180_000);

afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

/** Static imports (not `import type`, not `import()`) of a source file, resolved to .ts paths. */
function staticImports(file: string): string[] {
  const src = fs.readFileSync(file, 'utf8');
  const specs = [...src.matchAll(/^\s*(?:import|export)\s+(?!type\b)(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]/gm)].map((m) => m[1]!);
  return specs.filter((s) => s.startsWith('.')).map((s) => path.resolve(path.dirname(file), s.replace(/\.js$/, '.ts')));
}

describe('without libtorch', () => {
  it('spn --help lists every command and exits 0', async () => {
    const r = await spn(['--help'], { env: NO_LIBTORCH });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Usage: spn \[options\] \[command\]/);
    expect(commands).toEqual(expect.arrayContaining(['info', 'data', 'serve', 'sample', 'train', 'demo', 'presets', 'eval', 'upscale']));
    expect(r.stderr).toBe('');
  });

  it('spn --version prints the version in package.json', async () => {
    const version = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    for (const flag of ['--version', '-V']) {
      const r = await spn([flag], { env: NO_LIBTORCH });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe(`${version}\n`);
    }
  });

  it('spn <cmd> --help works for every command, and spn help <cmd> too', async () => {
    for (const cmd of commands) {
      const r = await spn([cmd, '--help'], { env: NO_LIBTORCH });
      expect(r.code, `${cmd}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^Usage: spn ${cmd} `));
      expect(r.stderr).toBe('');
    }
    const r = await spn(['help', 'train'], { env: NO_LIBTORCH });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: spn train /);
  });

  it('spn info fails with the E_BINDING message alone: exit 1, no stack trace', async () => {
    const r = await spn(['info'], { env: NO_LIBTORCH });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^spn: the native addon spn_torch\.node could not be loaded\. Tried:\n {2}\/nonexistent\/spn_torch\.node \(missing\)\n/);
    expect(r.stderr).not.toMatch(/^\s+at /m);
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.stdout).toBe('');
  });

  it('registering the commands loads no libtorch: main.ts reaches src/torch only through import()', () => {
    const seen = new Set<string>();
    const queue = [path.join(ROOT, 'src', 'cli', 'main.ts')];
    while (queue.length) {
      const f = queue.pop()!;
      if (seen.has(f)) continue;
      seen.add(f);
      if (fs.existsSync(f)) queue.push(...staticImports(f));
    }
    const rel = [...seen].map((f) => path.relative(ROOT, f));
    expect(rel).toContain('src/cli/train.ts'); // the walk does follow the definitions
    expect(rel.filter((f) => f.startsWith('src/torch/') || f.endsWith('.run.ts'))).toEqual([]);
  });
});

describe('options are checked before anything is written', () => {
  it('spn train --device tpu exits 2 and creates no run folder', async () => {
    const out = path.join(work, 'tpu-run');
    // With libtorch present, so that nothing but the check can stop it.
    const r = await spn(['train', '--device', 'tpu', '--out', out, '--steps', '1', '--preset', 'tiny']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('spn: --device tpu: expected cpu, cuda or cuda:N\n');
    expect(fs.existsSync(out)).toBe(false);
  });

  const bad: [string[], RegExp][] = [
    [['train', '--steps', '0'], /^spn: --steps 0: expected a positive integer\n$/],
    [['train', '--steps', '2.5'], /^spn: --steps 2\.5: expected a positive integer\n$/],
    [['train', '--minutes', '0'], /^spn: --minutes 0: expected a positive number\n$/],
    [['train', '--minutes', '-1'], /^spn: --minutes -1: expected a positive number\n$/],
    [['train', '--steps', '5', '--batch-size', '0'], /^spn: --batch-size 0: expected a positive integer\n$/],
    [['train', '--steps', '5', '--scale', '0'], /^spn: --scale 0: expected a positive integer\n$/],
    [['train', '--steps', '5', '--subsample', '0'], /^spn: --subsample 0: expected a positive integer\n$/],
    [['train', '--steps', '5', '--size', '0'], /^spn: --size 0: expected a positive integer\n$/],
    [['train', '--steps', '5', '--bits', '0'], /^spn: --bits 0: expected an integer from 1 to 8\n$/],
    [['train', '--steps', '5', '--bits', '9'], /^spn: --bits 9: expected an integer from 1 to 8\n$/],
    [['train', '--steps', '5', '--stage', 'depth', '--given-bits', '8'], /^spn: --given-bits 8: expected an integer from 1 to 7\n$/],
    [['train', '--steps', '5', '--lr', '0'], /^spn: --lr 0: expected a positive number\n$/],
    [['train', '--steps', '5', '--lr', 'fast'], /^spn: --lr fast: expected a positive number\n$/],
    [['train', '--steps', '5', '--seed', '-1'], /^spn: --seed -1: expected an integer ≥ 0\n$/],
    [['train', '--steps', '5', '--threads', '0'], /^spn: --threads 0: expected a positive integer\n$/],
    [['train', '--steps', '5', '--stage', 'width'], /^spn: --stage width: expected full, size or depth\n$/],
    [['train', '--steps', '5', '--device', 'cuda:one'], /^spn: --device cuda:one: expected cpu, cuda or cuda:N\n$/],
    [['train', '--steps', '5', '--set', 'dim=96'], /^spn: --set dim=96: expected model\.<key>=<value> or train\.<key>=<value>\n$/],
    [['train', '--steps', '5', '--stage', 'depth', '--bits', '5'], /^spn: --bits 5: a depth stage generates the low 8 − --given-bits bits/],
    [['train', '--steps', '5', '--given-bits', '3'], /^spn: --given-bits 3: only a depth stage \(--stage depth\) is given high bits\n$/],
    [['train', '--out', 'x'], /^spn: train needs --minutes or --steps/],
    [['demo', '--minutes', '0'], /^spn: --minutes 0: expected a positive number\n$/],
    [['demo', '--n', '0'], /^spn: --n 0: expected a positive integer\n$/],
    [['demo', '--eval-images', '-1'], /^spn: --eval-images -1: expected an integer ≥ 0\n$/],
    [['sample', 'r', '--n', '0'], /^spn: --n 0: expected a positive integer\n$/],
    [['sample', 'r', '--temperature', '0'], /^spn: --temperature 0: expected a positive number\n$/],
    [['sample', 'r', '--device', 'tpu'], /^spn: --device tpu: expected cpu, cuda or cuda:N\n$/],
    [['upscale', 'in.png', '--run', 'r', '--n', '0'], /^spn: --n 0: expected a positive integer\n$/],
    [['upscale', 'in.png', '--run', 'r', '--temperature', '-2'], /^spn: --temperature -2: expected a positive number\n$/],
    [['eval', 'r', '--batch-size', '0'], /^spn: --batch-size 0: expected a positive integer\n$/],
    [['eval', 'r', '--limit', '0'], /^spn: --limit 0: expected a positive integer\n$/],
    [['eval', 'r', '--size', '0'], /^spn: --size 0: expected a positive integer\n$/],
    [['eval', 'r', '--split', 'valid'], /^spn: --split valid: expected test or train\n$/],
    [['eval', 'r', '--which', 'first'], /^spn: --which first: expected best or latest\n$/],
    [['data', '--bits', '0'], /^spn: --bits 0: expected an integer from 1 to 8\n$/],
    [['data', '--size', '0'], /^spn: --size 0: expected a positive integer\n$/],
    [['data', '--seed', 'x'], /^spn: --seed x: expected an integer ≥ 0\n$/],
    [['serve', '--port', '65536'], /^spn: --port must be a whole number from 0 to 65535, got "65536"\n$/],
  ];
  it('zero, negative and malformed values are refused with the option named: exit 2', async () => {
    for (const [args, message] of bad) {
      const r = await spn(args, { env: NO_LIBTORCH, cwd: work });
      expect(r.code, `spn ${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr, `spn ${args.join(' ')}`).toMatch(message);
    }
    expect(fs.readdirSync(work)).toEqual([]); // nothing written, no runs/ folder
  });
});

describe('--resume and --init-from', () => {
  it('--resume refuses every flag it would ignore, naming them all and pointing to --init-from', async () => {
    const r = await spn(['train', '--resume', '--out', 'runs/a', '--steps', '9', '--lr', '1e-3', '--set', 'model.dim=8', '--data', 'fashion-mnist', '--batch-size', '4', '--seed', '1'], { env: NO_LIBTORCH, cwd: work });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^spn: --resume continues runs\/a with its saved settings; .* would ignore --data, --seed, --batch-size, --lr, --set\. .*--init-from runs\/a --out <new folder>\n$/);
  });

  it('--resume takes --steps, --minutes, --device, --threads and --quiet (the trainer is reached)', async () => {
    const r = await spn(['train', '--resume', '--out', 'runs/a', '--steps', '9', '--minutes', '2', '--device', 'cpu', '--threads', '1', '--quiet'], { env: NO_LIBTORCH, cwd: work });
    // Past the checks, loading the trainer needs libtorch: here it is missing on purpose.
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^spn: the native addon spn_torch\.node could not be loaded/);
  });

  it('a run on other data, preset and seed resumes with only --steps (the defaults are not passed on); --init-from fine-tunes it', async () => {
    const data = path.join(work, 'idx');
    fs.mkdirSync(data);
    writeIdx(path.join(data, 'train-images.gz'), [32, 8, 8], smoothImages(32, 8, 1));
    writeIdx(path.join(data, 't10k-images.gz'), [8, 8, 8], smoothImages(8, 8, 2));
    const out = path.join(work, 'resumable');
    const first = await spn(['train', '--data', `idx:${path.join(data, 'train-images.gz')}`, '--preset', 'tiny', '--seed', '3', '--steps', '2', '--out', out, '--quiet'], { cwd: work });
    expect(first.code, first.stderr).toBe(0);
    const again = await spn(['train', '--resume', '--out', out, '--steps', '4', '--quiet'], { cwd: work });
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'status.json'), 'utf8'))).toMatchObject({ state: 'done', step: 4 });
    // --init-from: a new run from its weights, with another learning rate.
    const tuned = path.join(work, 'tuned');
    const ft = await spn(['train', '--init-from', out, '--data', `idx:${path.join(data, 'train-images.gz')}`, '--lr', '1e-4', '--steps', '2', '--out', tuned, '--quiet'], { cwd: work });
    expect(ft.code, ft.stderr).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(tuned, 'config.json'), 'utf8'))).toMatchObject({ initFrom: out, train: { lr: 1e-4 } });
    fs.rmSync(data, { recursive: true });
    fs.rmSync(tuned, { recursive: true });
    fs.rmSync(out, { recursive: true });
    fs.rmSync(path.join(work, '.cache'), { recursive: true, force: true });
  });

  it('--resume needs an explicit --out, and does not go with --init-from', async () => {
    let r = await spn(['train', '--resume', '--steps', '9'], { env: NO_LIBTORCH, cwd: work });
    expect([r.code, r.stderr]).toEqual([2, 'spn: --resume needs --out <run folder>: the run to continue\n']);
    r = await spn(['train', '--resume', '--out', 'runs/a', '--init-from', 'runs/b'], { env: NO_LIBTORCH, cwd: work });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^spn: --resume continues the run in --out; --init-from runs\/b starts a new run .*give one of them\n$/);
  });

  it('--init-from must name something that exists', async () => {
    const r = await spn(['train', '--init-from', 'runs/nope', '--out', 'runs/new', '--steps', '3'], { env: NO_LIBTORCH, cwd: work });
    expect([r.code, r.stderr]).toEqual([2, 'spn: --init-from runs/nope: no such run folder or checkpoint\n']);
  });
});

describe('help texts', () => {
  it('no "(default: {})", no timestamp, at most one default per option, in any command', async () => {
    for (const cmd of ['', ...commands]) {
      const r = await spn(cmd ? [cmd, '--help'] : ['--help'], { env: NO_LIBTORCH });
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^Usage: spn /);
      expect(r.stdout).not.toContain('(default: {})');
      expect(r.stdout).not.toMatch(/\d{4}-\d{2}-\d{2}T\d{2}/);
      expect(r.stdout).not.toContain('(default: undefined)');
      // Each argument's and option's entry (wrapped lines joined) mentions its default once at most.
      const entries = r.stdout.split(/\n(?=\s{2}\S)/).map((e) => e.replace(/\s+/g, ' '));
      expect(entries.length).toBeGreaterThan(2);
      for (const entry of entries) expect(entry.match(/\(default\b|; default\b/g)?.length ?? 0, `${cmd}: ${entry}`).toBeLessThanOrEqual(1);
    }
  });

  it('train describes --out in words and says which flags --resume takes', async () => {
    const r = await spn(['train', '--help'], { env: NO_LIBTORCH });
    expect(r.stdout.replace(/\s+/g, ' ')).toContain('--out <dir> run folder (default: a new folder runs/run-<date>T<time>)');
    expect(r.stdout.replace(/\s+/g, ' ')).toMatch(/--resume .*only --minutes, --steps, --device, --threads, --quiet, --dist-timeout, --bucket-cap-mb, --first-bucket-cap-mb and the launch options apply/);
    expect(r.stdout).toMatch(/--init-from <run>/);
  });
});

describe('spn data', () => {
  it('an unknown kind of dataset is named, with the known kinds', async () => {
    const r = await spn(['data', 'bogus:'], { env: NO_LIBTORCH, cwd: work });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^spn: unknown dataset spec "bogus:": the kind "bogus" is unknown; known kinds: fashion-mnist, idx:<train-images\.gz>\[,<test-images\.gz>\], mnist:<dir>, cifar10:<dir>, folder:<dir>, imagenet:<dir>\n$/);
    const noPath = await spn(['data', 'cifar10'], { env: NO_LIBTORCH, cwd: work });
    expect([noPath.code, noPath.stderr]).toEqual([2, 'spn: dataset spec "cifar10" names no path; expected cifar10:<dir>\n']);
  });
});
