// The exit-code rule (src/cli/exit.ts), one case per class through the real `spn` command:
// 0 success, 2 usage error, 3 bad input, 1 runtime failure, 1 with "internal error" for a bug.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommanderError } from 'commander';
import { SpnError, type SpnErrorCode } from '../../src/errors.js';
import { errorText, exitCodeFor } from '../../src/cli/exit.js';
import { ensureDist, NO_LIBTORCH, spn } from './spawn.js';

let work: string;

beforeAll(() => {
  ensureDist();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'spn-exit-'));
}, 180_000);

afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const noStack = (stderr: string) => expect(stderr).not.toMatch(/^\s+at /m);

describe('exitCodeFor', () => {
  it('maps every SpnError code and commander error to its class', () => {
    const codes: Partial<Record<SpnErrorCode, number>> = {
      E_ARG: 2, E_CONFIG: 3, E_DATA: 3, E_FORMAT: 3, E_IO: 1, E_NATIVE: 1, E_NAN: 1, E_BINDING: 1, E_DISPOSED: 1,
    };
    for (const [code, exit] of Object.entries(codes)) expect(exitCodeFor(new SpnError(code as SpnErrorCode, 'x')), code).toBe(exit);
    // Any other code (one added later) is a runtime failure.
    expect(exitCodeFor(new SpnError('E_SOMETHING_NEW' as SpnErrorCode, 'x'))).toBe(1);
    expect(exitCodeFor(new CommanderError(1, 'commander.unknownOption', 'x'))).toBe(2);
    expect(exitCodeFor(new CommanderError(1, 'commander.help', 'x'))).toBe(2); // `spn` alone
    expect(exitCodeFor(new CommanderError(0, 'commander.help', 'x'))).toBe(0); // `spn help train`
    expect(exitCodeFor(new CommanderError(0, 'commander.helpDisplayed', 'x'))).toBe(0);
    expect(exitCodeFor(new TypeError('x'))).toBe(1);
    expect(errorText(new TypeError('boom'))).toMatch(/^spn: internal error: boom\nTypeError: boom\n\s+at .*\n[^]*please report it/);
    expect(errorText(new SpnError('E_NATIVE', 'shape mismatch'))).toBe('spn: shape mismatch\n');
  });
});

describe('through the spn command', () => {
  it('0: success', async () => {
    const r = await spn(['presets', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'tiny' })]));
  });

  it("2: commander's usage errors (unknown option, unknown command, missing argument, no command) and E_ARG", async () => {
    const cases: [string[], RegExp][] = [
      [['train', '--stepz', '3'], /^spn: unknown option '--stepz'/],
      [['trian'], /^spn: unknown command 'trian'/],
      [['upscale', '--run', 'r'], /^spn: missing required argument 'input\.png'/],
      [['upscale', 'in.png'], /^spn: required option '--run <dir>' not specified/],
      [['train', '--steps'], /^spn: option '--steps <n>' argument missing/],
      [['eval'], /^spn: eval needs a run folder, a checkpoint or --pipeline <file>\n$/], // E_ARG
    ];
    for (const [args, message] of cases) {
      const r = await spn(args, { env: NO_LIBTORCH, cwd: work });
      expect(r.code, `spn ${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(message);
      noStack(r.stderr);
    }
    const bare = await spn([], { env: NO_LIBTORCH });
    expect(bare.code).toBe(2);
    expect(bare.stderr).toMatch(/^Usage: spn /);
  });

  it('3: bad input (E_DATA, E_CONFIG, E_FORMAT)', async () => {
    const data = await spn(['data', `idx:${path.join(work, 'missing', 'train-images.gz')}`], { cwd: work });
    expect(data.code, data.stderr).toBe(3);
    expect(data.stderr).toMatch(/^spn: idx train images: file .*train-images\.gz does not exist\n$/);
    noStack(data.stderr);

    const out = path.join(work, 'bad-preset');
    const preset = await spn(['train', '--preset', 'nope', '--steps', '1', '--out', out], { cwd: work });
    expect(preset.code, preset.stderr).toBe(3);
    expect(preset.stderr).toMatch(/^spn: unknown preset 'nope'/);
    expect(fs.existsSync(out)).toBe(false);

    const ckpt = path.join(work, 'not-a-checkpoint');
    fs.writeFileSync(`${ckpt}.json`, JSON.stringify({ format: 'something-else' }));
    fs.writeFileSync(`${ckpt}.safetensors`, '');
    const format = await spn(['eval', ckpt], { cwd: work });
    expect(format.code, format.stderr).toBe(3);
    expect(format.stderr).toMatch(/^spn: .*not-a-checkpoint\.json is not an spn checkpoint/);
    noStack(format.stderr);
  });

  it('1: runtime failure (E_BINDING, E_IO)', async () => {
    const binding = await spn(['info'], { env: NO_LIBTORCH });
    expect(binding.code).toBe(1);
    expect(binding.stderr).toMatch(/^spn: the native addon/);

    const resume = await spn(['train', '--resume', '--out', path.join(work, 'never-trained'), '--steps', '2'], { cwd: work });
    expect(resume.code, resume.stderr).toBe(1);
    expect(resume.stderr).toMatch(/^spn: --resume: no checkpoint in /);
    noStack(resume.stderr);
  });

  it('1: an unexpected JavaScript error is an internal error, with its stack and a request to report it', async () => {
    // A real exception from inside the command: stdout that throws when written to.
    const r = await spn(['--version'], { env: NO_LIBTORCH, node: ['--import', 'data:text/javascript,process.stdout.write=()=>{throw new TypeError("stdout is broken")}'] });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^spn: internal error: stdout is broken\nTypeError: stdout is broken\n\s+at /);
    expect(r.stderr).toMatch(/This is a bug in spn, not in your input; please report it/);
    expect(r.stderr).not.toMatch(/libtorch|native addon/);
  });
});

describe('spn serve cannot listen', () => {
  const runs = () => {
    const dir = path.join(work, 'runs');
    fs.mkdirSync(dir, { recursive: true });
    return dir;
  };

  it('a host that does not resolve: one line naming it, exit 1', async () => {
    const r = await spn(['serve', runs(), '--host', 'nohost.invalid', '--port', '0'], { env: NO_LIBTORCH });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^spn: cannot listen on nohost\.invalid:0: host nohost\.invalid not found \((ENOTFOUND|EAI_AGAIN)\)\n$/);
  });

  it('a port in use: one line naming host and port, exit 1', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const r = await spn(['serve', runs(), '--port', String(port)], { env: NO_LIBTORCH });
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`spn: cannot listen on 127.0.0.1:${port}: port ${port} is in use (pass --port 0 for any free port)\n`);
    } finally {
      blocker.close();
    }
  });
});
