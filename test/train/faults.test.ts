// When the disk or a checkpoint fails (issue #17): every writer stops with one line that names
// the file, says what happened and (for training) names the last good checkpoint and how to
// resume; no temp file and no half checkpoint pair is left; the run resumes to the same weights
// as an uninterrupted one. Damaged newest checkpoints are skipped (and kept), kill -9 at random
// moments never loses the run, and a real full disk (tmpfs, where the test may mount one) gives
// the same one line through the compiled CLI.
//
// Runs are the 'tiny' preset on a generated 8×8×1 IDX dataset, as in trainer.test.ts.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpnError, WriteError } from '../../src/errors.js';
import { appendLine, injectWriteFault, removeStaleTempFiles, writeFileAtomic } from '../../src/fsutil.js';
import * as torch from '../../src/torch/index.js';
import { loadDataset } from '../../src/data/index.js';
import { evalRun } from '../../src/cli/eval.run.js';
import { writeSampleOutputs } from '../../src/spn/frames.js';
import { checkCheckpoint, listCheckpoints, loadModel, openCheckpoint, pruneCheckpoints, readCheckpoint, resolveCheckpoint } from '../../src/store/checkpoint.js';
import { runFiles } from '../../src/store/run.js';
import { train, type TrainOptions } from '../../src/train/trainer.js';
import { Rng } from '../../src/data/rng.js';
import { cleanupTmp, smoothImages, tmpDir, writeIdx } from '../data/fixtures.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
const STEPS = 20;

let work: string;
let cacheDir: string;
let spec: string;
/** An uninterrupted run of STEPS steps, and one stopped at step 10 (its checkpoint step-00000010). */
let ref: string;
let stopped10: string;

beforeAll(async () => {
  work = tmpDir('spn-faults-');
  cacheDir = path.join(work, 'cache');
  writeIdx(path.join(work, 'train-images.gz'), [64, 8, 8], smoothImages(64, 8, 1));
  writeIdx(path.join(work, 't10k-images.gz'), [16, 8, 8], smoothImages(16, 8, 2));
  spec = `idx:${path.join(work, 'train-images.gz')}`;
  ref = (await train(opts({ steps: STEPS }))).dir;
  stopped10 = (await train({ ...opts({ steps: STEPS }), interruptAtStep: 10 })).dir;
});

afterAll(() => cleanupTmp());

let runCount = 0;
function opts(o: Partial<TrainOptions> = {}): TrainOptions {
  return { data: spec, preset: 'tiny', out: path.join(work, `run-${runCount++}`), cacheDir, quiet: true, seed: 7, ...o };
}

/** A copy of a run folder to resume (the copy's config keeps the original's name; that changes nothing). */
function copyRun(dir: string): string {
  const out = path.join(work, `copy-${runCount++}`);
  fs.cpSync(dir, out, { recursive: true });
  return out;
}

/** Every file under `dir`, relative. */
function filesUnder(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(dir, f)).isFile()).sort();
}

/** Temp files of the write path left anywhere under `dir`. */
const tempFiles = (dir: string) => filesUnder(dir).filter((f) => /\.tmp$/.test(f));

/** Checkpoint names in checkpoints/ that have one of their two files only. */
function halfPairs(dir: string): string[] {
  const folder = runFiles(dir).checkpoints;
  const files = new Set(fs.readdirSync(folder).filter((f) => /\.(json|safetensors)$/.test(f)));
  return [...files].filter((f) => !files.has(f.endsWith('.json') ? f.replace(/\.json$/, '.safetensors') : f.replace(/\.safetensors$/, '.json')));
}

const readStatus = (dir: string) => JSON.parse(fs.readFileSync(runFiles(dir).status, 'utf8')) as Record<string, unknown>;

async function rejection(p: Promise<unknown>): Promise<Error> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err, 'expected the call to fail').toBeInstanceOf(Error);
  return err as Error;
}

/** The error `run()` fails with while every write to a file matching `pattern` (after `skip` good ones) fails. */
async function rejectionUnderFault(pattern: RegExp, run: () => Promise<unknown>, skip = 0): Promise<Error> {
  const undo = injectWriteFault(pattern, { skip });
  try {
    return await rejection(run());
  } finally {
    undo();
  }
}

/** Asserts the final checkpoint of `dir` holds exactly the tensors of the uninterrupted run's. */
function expectSameFinal(dir: string, other = ref, step = STEPS): void {
  const name = `step-${String(step).padStart(8, '0')}`;
  const x = readCheckpoint(path.join(runFiles(other).checkpoints, name));
  const y = readCheckpoint(path.join(runFiles(dir).checkpoints, name));
  try {
    expect(Object.keys(y.tensors).sort()).toEqual(Object.keys(x.tensors).sort());
    for (const [k, t] of Object.entries(x.tensors)) expect(bytesOf(y.tensors[k]!).equals(bytesOf(t)), k).toBe(true);
    expect(y.meta.data_position).toEqual(x.meta.data_position);
  } finally {
    torch.dispose([x.tensors, y.tensors]);
  }
}

const bytesOf = (t: torch.Tensor) => {
  const d = t.data();
  return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
};

const ONE_LINE_RESUME = (file: string, stoppedAt: string, last: number) =>
  new RegExp(
    `^cannot write [^\\n]*${file}: the disk is full \\(ENOSPC\\); ${stoppedAt}; ` +
      `the last good checkpoint is step-${String(last).padStart(8, '0')} \\(step ${last}\\); ` +
      `free some space, then resume with: spn train --out \\S+ --resume --steps ${STEPS}$`,
  );

/**
 * Resumes a copy of the run stopped at step 10 with a write fault on `pattern`: the one-line
 * WriteError; no temp file, no half pair, the last good checkpoint intact; then, the fault gone,
 * --resume finishes the run with the uninterrupted run's weights.
 */
async function faultedResume(pattern: RegExp, o: { skip?: number; message: RegExp; last: number; status?: 'failed' | 'stopped' | 'running'; check?: (dir: string) => void }): Promise<void> {
  const dir = copyRun(stopped10);
  const before = filesUnder(dir);
  const err = await rejectionUnderFault(pattern, () => train({ ...opts({ out: dir, steps: STEPS }), resume: true }), o.skip);
  expect(err).toBeInstanceOf(WriteError);
  expect((err as WriteError).code).toBe('E_IO');
  expect((err as WriteError).errno).toBe('ENOSPC');
  expect(err.message).not.toContain('\n');
  expect(err.message).toMatch(o.message);
  expect(tempFiles(dir), 'temp files left').toEqual([]);
  expect(halfPairs(dir), 'half checkpoint pairs').toEqual([]);
  const last = `step-${String(o.last).padStart(8, '0')}`;
  expect(listCheckpoints(dir).at(-1)).toBe(last);
  expect(checkCheckpoint(path.join(runFiles(dir).checkpoints, last)).ok).toBe(true);
  expect(readStatus(dir).state).toBe(o.status ?? 'failed');
  if ((o.status ?? 'failed') === 'failed') expect(readStatus(dir).message).toBe(err.message);
  expect(filesUnder(dir).filter((f) => !before.includes(f) && !/^(samples\/|checkpoints\/(best|step-\d{8})\.)/.test(f))).toEqual([]);
  o.check?.(dir);
  const r = await train({ ...opts({ out: dir, steps: STEPS }), resume: true });
  expect(r).toMatchObject({ state: 'done', step: STEPS });
  expectSameFinal(dir);
}

describe('one write path', () => {
  it('a failed atomic write leaves the old file and no temp file; the message names the file and the errno in words', () => {
    const dir = tmpDir('spn-write-');
    const file = path.join(dir, 'a.json');
    writeFileAtomic(file, 'old\n');
    for (const [errno, words] of [['ENOSPC', 'the disk is full'], ['EACCES', 'permission denied'], ['EROFS', 'the filesystem is read-only'], ['EDQUOT', 'the disk quota is used up']] as const) {
      const undo = injectWriteFault(/a\.json$/, { errno });
      try {
        expect(() => writeFileAtomic(file, 'x'.repeat(10_000))).toThrow(`cannot write ${file}: ${words} (${errno})`);
      } finally {
        undo();
      }
      expect(fs.readFileSync(file, 'utf8')).toBe('old\n');
      expect(fs.readdirSync(dir)).toEqual(['a.json']);
    }
    // A real errno from the system: a folder where the file should go.
    fs.mkdirSync(path.join(dir, 'isdir'));
    const e = (() => {
      try {
        writeFileAtomic(path.join(dir, 'isdir'), 'x');
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(WriteError);
    expect((e as WriteError).message).toBe(`cannot write ${path.join(dir, 'isdir')}: a folder has that name (EISDIR)`);
    expect(fs.readdirSync(dir).sort()).toEqual(['a.json', 'isdir']);
  });

  it('a failed append leaves the file as it was (no half line)', () => {
    const file = path.join(tmpDir('spn-append-'), 'm.jsonl');
    appendLine(file, '{"a":1}');
    const undo = injectWriteFault(/m\.jsonl$/, { skip: 1 });
    try {
      appendLine(file, '{"b":2}'); // skipped by the fault
      expect(() => appendLine(file, JSON.stringify({ c: 'x'.repeat(1000) }))).toThrow(/cannot write .*m\.jsonl: the disk is full \(ENOSPC\)$/);
    } finally {
      undo();
    }
    expect(fs.readFileSync(file, 'utf8')).toBe('{"a":1}\n{"b":2}\n');
  });

  it('temp files of killed processes are removed, those of live ones kept', () => {
    const dir = tmpDir('spn-stale-');
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const deadPid = Number(dead.stdout);
    for (const f of [`.status.json.${deadPid}.1.tmp`, `.step-00000010.safetensors.${deadPid}.2-0.tmp`, `.x.json.${process.pid}.3-1.tmp`, 'keep.json']) fs.writeFileSync(path.join(dir, f), 'x');
    expect(removeStaleTempFiles(dir).sort()).toEqual([`.status.json.${deadPid}.1.tmp`, `.step-00000010.safetensors.${deadPid}.2-0.tmp`]);
    expect(fs.readdirSync(dir).sort()).toEqual([`.x.json.${process.pid}.3-1.tmp`, 'keep.json']);
  });
});

describe('a write failure at each writer', () => {
  it('checkpoint tensors (.safetensors): one line, no half pair, the last good checkpoint named; --resume finishes the run', async () => {
    await faultedResume(/checkpoints\/step-\d{8}\.safetensors$/, {
      message: ONE_LINE_RESUME('checkpoints/step-00000020\\.safetensors', 'training stopped at step 20', 10), last: 10,
    });
  });

  it('checkpoint sidecar (.json): the tensor file just written is not left without it', async () => {
    await faultedResume(/checkpoints\/step-\d{8}\.json$/, {
      message: ONE_LINE_RESUME('checkpoints/step-00000020\\.json', 'training stopped at step 20', 10), last: 10,
      check: (dir) => expect(fs.readdirSync(runFiles(dir).checkpoints).filter((f) => f.startsWith('step-00000020'))).toEqual([]),
    });
  });

  it('best checkpoint', async () => {
    await faultedResume(/checkpoints\/best\.(safetensors|json)$/, {
      message: ONE_LINE_RESUME('checkpoints/best\\.safetensors', 'training stopped at step 20', 10), last: 10,
      check: (dir) => expect(fs.readdirSync(runFiles(dir).checkpoints).filter((f) => f.startsWith('best'))).toEqual([]),
    });
  });

  it('status.json: its own failure is the error; the failure path cannot write it either and does not crash', async () => {
    // The first status write of the resumed run fails, and so does the 'failed' one after it.
    await faultedResume(/status\.json$/, {
      message: ONE_LINE_RESUME('status\\.json', 'training stopped at step 10', 10), last: 10, status: 'stopped',
    });
  });

  it('metrics.jsonl (append): the file keeps its lines; status.json failing too does not mask the real error', async () => {
    let metricsBefore = '';
    await faultedResume(/(metrics\.jsonl|status\.json)$/, {
      skip: 1, // the 'running' status passes; the append at step 20 fails, then the 'failed' status
      message: ONE_LINE_RESUME('metrics\\.jsonl', 'training stopped at step 20', 10), last: 10, status: 'running', // the disk refused 'failed'
      check: (dir) => {
        metricsBefore = fs.readFileSync(runFiles(stopped10).metrics, 'utf8');
        expect(fs.readFileSync(runFiles(dir).metrics, 'utf8')).toBe(metricsBefore);
      },
    });
  });

  it('metrics.jsonl (rewritten on resume): the run does not resume, and says from where it will', async () => {
    const dir = copyRun(stopped10);
    fs.appendFileSync(runFiles(dir).metrics, '{"kind":"train","step":14,"lo'); // a line a killed process left half-written
    const err = await rejectionUnderFault(/metrics\.jsonl$/, () => train({ ...opts({ out: dir, steps: STEPS }), resume: true }));
    expect(err).toBeInstanceOf(WriteError);
    expect(err.message).toMatch(ONE_LINE_RESUME('metrics\\.jsonl', 'the run did not resume', 10));
    expect(tempFiles(dir)).toEqual([]);
    const r = await train({ ...opts({ out: dir, steps: STEPS }), resume: true });
    expect(r).toMatchObject({ state: 'done', step: STEPS });
    expectSameFinal(dir);
    expect(fs.readFileSync(runFiles(dir).metrics, 'utf8')).not.toContain('"lo\n');
  });

  it('samples (PNG): the checkpoint before them is the last good one', async () => {
    await faultedResume(/samples\/.*\.png$/, {
      message: ONE_LINE_RESUME('samples/latest\\.png', 'training stopped at step 20', 20), last: 20,
    });
  });

  it('config.json of a new run: the run did not start and leaves no folder', async () => {
    const o = opts({ steps: 5 });
    const err = await rejectionUnderFault(/config\.json$/, () => train(o));
    expect(err).toBeInstanceOf(WriteError);
    expect(err.message).toMatch(/^cannot write \S*config\.json: the disk is full \(ENOSPC\); the run did not start; free some space, then start it again$/);
    expect(fs.existsSync(o.out)).toBe(false);
  });

  it('eval.json (spn eval)', async () => {
    const dir = copyRun(ref);
    const err = await rejectionUnderFault(/eval\.json$/, () => evalRun(dir, { split: 'test', batchSize: 16, device: 'cpu', ema: true, which: 'latest', cacheDir, quiet: true }));
    expect(err).toBeInstanceOf(WriteError);
    expect(err.message).toBe(`cannot write ${runFiles(dir).eval}: the disk is full (ENOSPC)`);
    expect(fs.existsSync(runFiles(dir).eval)).toBe(false);
    expect(tempFiles(dir)).toEqual([]);
  });

  it('sample frames and animation (spn sample --frames)', async () => {
    const dir = tmpDir('spn-frames-');
    const { model } = await loadModel(ref, { which: 'latest' });
    try {
      const batch = { data: new Uint8Array(4 * 64).fill(100), shape: [4, 8, 8, 1] as [number, number, number, number] };
      const frames = [0, 1, 2, 3].map((k) => ({ k, batch }));
      const undo = injectWriteFault(/frames\/animation\.gif$/);
      try {
        expect(() => writeSampleOutputs(batch, model, { out: path.join(dir, 'grid.png'), framesDir: path.join(dir, 'frames'), frames }))
          .toThrow(new RegExp(`^cannot write ${path.join(dir, 'frames', 'animation.gif')}: the disk is full \\(ENOSPC\\)$`));
      } finally {
        undo();
      }
      expect(tempFiles(dir)).toEqual([]);
      expect(fs.readdirSync(path.join(dir, 'frames')).sort()).toEqual(['frame-000.png', 'frame-001.png', 'frame-002.png', 'frame-003.png']);
    } finally {
      model.dispose();
    }
  });

  it('data cache: a failed cache write costs speed, not the load; the message names the file', async () => {
    const dir = tmpDir('spn-cache-');
    const messages: string[] = [];
    const undo = injectWriteFault(/\.train\.bin$/);
    try {
      const d = await loadDataset(spec, { cacheDir: dir, onProgress: (m) => messages.push(m) });
      expect(d.train.n).toBe(64);
    } finally {
      undo();
    }
    expect(messages.join('\n')).toMatch(/cache not written \(cannot write \S+\.train\.bin: the disk is full \(ENOSPC\)\)/);
    expect(fs.readdirSync(dir)).toEqual([]);
    await loadDataset(spec, { cacheDir: dir });
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.bin'))).toHaveLength(2);
  });
});

describe('damaged checkpoints', () => {
  /** A run stopped at step 15 with checkpoints step-10 and step-15; the newest is then damaged. */
  let twoCkpts: string;
  beforeAll(async () => {
    twoCkpts = copyRun(stopped10);
    await train({ ...opts({ out: twoCkpts, steps: STEPS }), resume: true, interruptAtStep: 15 });
    expect(listCheckpoints(twoCkpts)).toEqual(['step-00000010', 'step-00000015']);
  });

  const damages: [string, (b: Buffer) => Buffer, RegExp][] = [
    ['truncated', (b) => b.subarray(0, b.length >> 1), /step-00000015\.safetensors holds \d+ bytes, its sidecar recorded \d+ \(cut short: a truncated or partly copied file\)/],
    ['zeroed', (b) => Buffer.alloc(b.length), /step-00000015\.safetensors: the header is not valid UTF-8 JSON/],
    ['bit-flipped', (b) => {
      const c = Buffer.from(b);
      c[c.length - 1000]! ^= 0x10; // in the tensor data: only the checksum can tell
      return c;
    }, /step-00000015\.safetensors does not match the sha256 its sidecar recorded/],
  ];

  for (const [what, damage, reason] of damages) {
    it(`a ${what} newest checkpoint: --resume falls back to the previous one, says why, keeps the damaged file`, async () => {
      const dir = copyRun(twoCkpts);
      const folder = runFiles(dir).checkpoints;
      const st = path.join(folder, 'step-00000015.safetensors');
      const damagedBytes = damage(fs.readFileSync(st));
      fs.writeFileSync(st, damagedBytes);
      const sidecar = fs.readFileSync(path.join(folder, 'step-00000015.json'));
      expect(listCheckpoints(dir)).toEqual(['step-00000010', 'step-00000015']); // listed: both files, a sidecar that parses
      // spn eval / loadModel skip it with a message.
      const warned: string[] = [];
      expect(resolveCheckpoint(dir, 'latest', { warn: (m) => warned.push(m) })).toBe(path.join(folder, 'step-00000010'));
      expect(warned).toHaveLength(1);
      expect(warned[0]).toMatch(reason);
      const { step, model } = await loadModel(dir, { which: 'latest', warn: () => {} });
      model.dispose();
      expect(step).toBe(10);
      // openCheckpoint picks the same one, validated; loadModel takes it as it is.
      const picked = openCheckpoint(dir, 'latest', { warn: () => {} });
      expect(picked.base).toBe(path.join(folder, 'step-00000010'));
      const again = await loadModel(picked);
      again.model.dispose();
      expect(again.step).toBe(10);
      // A damaged checkpoint named by its path is an error naming it and why.
      expect(() => openCheckpoint(path.join(folder, 'step-00000015'))).toThrow(new RegExp(`checkpoint ${esc(path.join(folder, 'step-00000015'))} cannot be used: .*${reason.source}`));
      // --resume: skipped, moved aside, reported (even with --quiet).
      const stderr = await captureStderr(() => train({ ...opts({ out: dir, steps: STEPS }), resume: true }));
      expect(stderr.result).toMatchObject({ state: 'done', step: STEPS });
      const line = stderr.text.split('\n').find((l) => l.includes('skipping checkpoint'));
      expect(line).toMatch(new RegExp(`^warning: skipping checkpoint ${esc(path.join(folder, 'step-00000015'))}: `));
      expect(line).toMatch(reason);
      expect(line).toContain(`moved to ${path.join(folder, 'damaged', 'step-00000015')}.{safetensors,json} (kept, not deleted)`);
      // The damaged pair is kept byte for byte; the run wrote its own step-15 and step-20 since.
      expect(fs.readFileSync(path.join(folder, 'damaged', 'step-00000015.safetensors')).equals(damagedBytes)).toBe(true);
      expect(fs.readFileSync(path.join(folder, 'damaged', 'step-00000015.json')).equals(sidecar)).toBe(true);
      expectSameFinal(dir);
    });
  }

  it('a second damaged checkpoint of the same step does not overwrite the first one kept', async () => {
    const dir = copyRun(twoCkpts);
    const folder = runFiles(dir).checkpoints;
    fs.truncateSync(path.join(folder, 'step-00000015.safetensors'), 100);
    const first = await captureStderr(() => train({ ...opts({ out: dir, steps: STEPS }), resume: true, interruptAtStep: 15 }));
    expect(first.text).toContain(`moved to ${path.join(folder, 'damaged', 'step-00000015')}.{safetensors,json}`);
    fs.truncateSync(path.join(folder, 'step-00000015.safetensors'), 200);
    const r = await captureStderr(() => train({ ...opts({ out: dir, steps: STEPS }), resume: true }));
    expect(r.text).toContain(`moved to ${path.join(folder, 'damaged', 'step-00000015.2')}.{safetensors,json}`);
    expect(fs.statSync(path.join(folder, 'damaged', 'step-00000015.safetensors')).size).toBe(100);
    expect(fs.statSync(path.join(folder, 'damaged', 'step-00000015.2.safetensors')).size).toBe(200);
    expectSameFinal(dir);
  });

  it('every checkpoint damaged: --resume refuses, names each and why, and moves nothing', async () => {
    const dir = copyRun(twoCkpts);
    const folder = runFiles(dir).checkpoints;
    for (const n of ['step-00000010', 'step-00000015']) fs.truncateSync(path.join(folder, `${n}.safetensors`), 64);
    const err = await rejection(train({ ...opts({ out: dir, steps: STEPS }), resume: true }));
    expect(err).toBeInstanceOf(SpnError);
    expect(err.message).toMatch(/^--resume: no checkpoint of \S+ validates: step-00000015 \(step-00000015\.safetensors holds 64 bytes.*\); step-00000010 \(step-00000010\.safetensors holds 64 bytes/);
    expect(fs.existsSync(path.join(folder, 'damaged'))).toBe(false);
    expect(listCheckpoints(dir)).toEqual(['step-00000010', 'step-00000015']);
  });

  it('a checkpoint is listed only with both files and a sidecar that parses; pruning keeps damaged pairs', () => {
    const dir = copyRun(twoCkpts);
    const folder = runFiles(dir).checkpoints;
    fs.writeFileSync(path.join(folder, 'step-00000012.json'), '{"format": "spn-checkpoint-1", "st'); // does not parse
    fs.copyFileSync(path.join(folder, 'step-00000010.safetensors'), path.join(folder, 'step-00000012.safetensors'));
    fs.copyFileSync(path.join(folder, 'step-00000010.safetensors'), path.join(folder, 'step-00000003.safetensors')); // a lone half
    fs.writeFileSync(path.join(folder, 'step-00000016.json'), '{}'); // a lone sidecar
    expect(listCheckpoints(dir)).toEqual(['step-00000010', 'step-00000015']);
    pruneCheckpoints(dir, 1);
    // step-10 (complete, old) and the lone old half go; the damaged pair and the newer lone sidecar stay
    expect(fs.readdirSync(folder).filter((f) => f.startsWith('step-')).sort()).toEqual([
      'step-00000012.json', 'step-00000012.safetensors', 'step-00000015.json', 'step-00000015.safetensors', 'step-00000016.json',
    ]);
  });

  it('a checkpoint written before checksums were recorded still validates and loads', () => {
    const dir = copyRun(twoCkpts);
    const base = path.join(runFiles(dir).checkpoints, 'step-00000015');
    const meta = JSON.parse(fs.readFileSync(`${base}.json`, 'utf8')) as Record<string, unknown>;
    expect(meta.checksum).toMatchObject({ sha256: expect.stringMatching(/^[0-9a-f]{64}$/), bytes: fs.statSync(`${base}.safetensors`).size });
    delete meta.checksum;
    fs.writeFileSync(`${base}.json`, JSON.stringify(meta));
    const c = readCheckpoint(base);
    expect(c.meta.step).toBe(15);
    torch.dispose(c.tensors);
    // Without a checksum the header is still checked.
    fs.truncateSync(`${base}.safetensors`, 1000);
    expect(checkCheckpoint(base)).toMatchObject({ ok: false, reason: expect.stringMatching(/step-00000015\.safetensors: .*(runs past the end|past the end of the data)/) });
  });
});

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

async function captureStderr<T>(fn: () => Promise<T>): Promise<{ result: T; text: string }> {
  let text = '';
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array) => ((text += String(chunk)), true)) as typeof process.stderr.write;
  try {
    return { result: await fn(), text };
  } finally {
    process.stderr.write = write;
  }
}

describe('compiled CLI', () => {
  let compileError: string | null = null;
  beforeAll(() => {
    if (distIsFresh()) return; // `npm test` compiled it just now
    const tsc = spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', ROOT], { encoding: 'utf8' });
    if (tsc.status !== 0) compileError = (tsc.stdout + tsc.stderr).split('\n').slice(0, 5).join('\n');
  }, 180_000);

  const spn = (args: string[]) => spawn(process.execPath, [CLI, ...args], { cwd: work, env: { ...process.env, SPN_THREADS: '1' }, stdio: ['ignore', 'ignore', 'pipe'] });
  const finished = (child: ChildProcess) => new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => {
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('close', (code, signal) => resolve({ code, signal, stderr }));
  });

  it('a real full disk (4 MB tmpfs): exit 1, one line naming the file and the last good checkpoint; then --resume works', async (ctx) => {
    if (compileError) {
      console.warn(`skipping: \`tsc -p .\` failed (another file may be half-written):\n${compileError}`);
      ctx.skip();
    }
    const mnt = path.join(work, 'small-disk');
    fs.mkdirSync(mnt);
    const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt], { encoding: 'utf8' });
    if (mount.status !== 0) {
      console.warn(`skipping the full-disk test: cannot mount a tmpfs here (${(mount.stderr || mount.error?.message || '').trim() || `exit ${mount.status}`}; it needs root and mount permission)`);
      ctx.skip();
    }
    try {
      // Room for the run's small files and two checkpoints, not for a third beside them.
      const ckpt = fs.statSync(path.join(runFiles(ref).checkpoints, `step-${String(STEPS).padStart(8, '0')}.safetensors`)).size;
      const free = Number(spawnSync('df', ['-B1', '--output=avail', mnt], { encoding: 'utf8' }).stdout.trim().split('\n').pop());
      fs.writeFileSync(path.join(mnt, 'filler'), Buffer.alloc(Math.max(0, free - Math.round(2.5 * ckpt) - 64 * 1024)));
      const out = path.join(mnt, 'run');
      const r = await finished(spn(['train', '--data', spec, '--preset', 'tiny', '--out', out, '--steps', '100000', '--seed', '7', '--quiet', '--set', 'train.checkpointEverySec=0.2']));
      expect(r.code, r.stderr).toBe(1);
      const lines = r.stderr.split('\n').filter(Boolean);
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(
        `^spn: cannot write ${esc(out)}/\\S+: the disk is full \\(ENOSPC\\); training stopped at step \\d+; ` +
          `the last good checkpoint is step-\\d{8} \\(step \\d+\\); free some space, then resume with: spn train --out ${esc(out)} --resume --steps 100000$`,
      ));
      expect(tempFiles(out)).toEqual([]);
      expect(halfPairs(out)).toEqual([]);
      const last = /last good checkpoint is (step-\d{8})/.exec(lines[0]!)![1]!;
      expect(listCheckpoints(out).at(-1)).toBe(last);
      expect(checkCheckpoint(path.join(runFiles(out).checkpoints, last)).ok).toBe(true);
      const lastStep = Number(last.slice(5));
      // Space freed: the run resumes from there.
      fs.rmSync(path.join(mnt, 'filler'));
      const again = await finished(spn(['train', '--out', out, '--resume', '--steps', String(lastStep + 3), '--quiet']));
      expect(again.code, again.stderr).toBe(0);
      expect(readStatus(out)).toMatchObject({ state: 'done', step: lastStep + 3 });
    } finally {
      spawnSync('umount', [mnt]);
    }
  });

  it('kill -9 at 20 random moments, each followed by --resume, ends with the weights of an uninterrupted run', async (ctx) => {
    if (compileError) {
      console.warn(`skipping: \`tsc -p .\` failed (another file may be half-written):\n${compileError}`);
      ctx.skip();
    }
    const steps = 160;
    const reference = (await train(opts({ steps, set: { 'train.precision': 'fp32' } }))).dir; // default cadences: checkpoints, evaluations and samples must not change the weights
    const out = path.join(work, 'killed');
    const rng = new Rng(17); // the kill moments are the same on every run of the test
    const firstArgs = ['--data', spec, '--preset', 'tiny', '--seed', '7', '--set', 'train.checkpointEverySec=0.05', '--set', 'train.evalEverySec=0.4', '--set', 'train.sampleEverySec=0.4', '--set', 'train.precision=fp32'];
    const targets = Array.from({ length: 20 }, () => rng.int(steps)).sort((a, b) => a - b);
    let killedLive = 0;
    const history: string[] = [];
    for (let i = 0; i < 20; i++) {
      const resume = fs.existsSync(runFiles(out).config);
      const child = spn(['train', '--out', out, '--steps', String(steps), ...(resume ? ['--resume'] : firstArgs)]);
      const done = finished(child);
      // A fifth of the kills at any moment from the start (loading libtorch, validating and
      // resuming); the rest once training runs and has reached the i-th of 20 sorted random
      // steps: then either after a random delay (a step, a checkpoint, an evaluation, a sample
      // being written) or at the next change in checkpoints/ (a checkpoint being written).
      let stderr = '';
      child.stderr!.on('data', (d) => (stderr += d));
      const mode = rng.next();
      if (mode < 0.2) {
        await sleep(rng.next() * 2000);
      } else {
        const delay = rng.next() * 300;
        const t0 = Date.now();
        while (!(/^model: /m.test(stderr) && newestStep(out) >= targets[i]!) && child.exitCode === null && Date.now() - t0 < 60_000) await sleep(10);
        if (mode < 0.5) {
          const watcher = fs.watch(runFiles(out).checkpoints, () => child.kill('SIGKILL'));
          await Promise.race([done, sleep(2000)]);
          watcher.close();
        } else {
          await sleep(delay);
        }
      }
      if (child.exitCode === null) child.kill('SIGKILL');
      const r = await done;
      if (r.signal === 'SIGKILL') killedLive++;
      history.push(`${i}: ${resume ? 'resume' : 'start'} -> ${r.signal ?? r.code}, newest checkpoint step ${newestStep(out)}`);
      // No error, and no damaged checkpoint: a kill never leaves a pair that fails to validate.
      expect(r.stderr, history.join('\n')).not.toMatch(/internal error|spn: |warning: /);
    }
    expect(killedLive, history.join('\n')).toBeGreaterThanOrEqual(15);
    const last = await finished(spn(['train', '--out', out, '--resume', '--steps', String(steps), '--quiet']));
    expect(last.code, `${last.stderr}\n${history.join('\n')}`).toBe(0);
    expect(readStatus(out)).toMatchObject({ state: 'done', step: steps });
    expectSameFinal(out, reference, steps);
    expect(tempFiles(out)).toEqual([]);
    expect(halfPairs(out)).toEqual([]);
    // Train records: the uninterrupted run's losses, each step once.
    const losses = (dir: string) => fs.readFileSync(runFiles(dir).metrics, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((m) => m.kind === 'train').map((m) => [m.step, m.loss_bpd, m.lr]);
    expect(losses(out)).toEqual(losses(reference));
  }, 300_000);
});

/** The step of the newest step checkpoint of a run folder (-1 when none). */
function newestStep(dir: string): number {
  const names = fs.existsSync(runFiles(dir).checkpoints) ? fs.readdirSync(runFiles(dir).checkpoints).filter((f) => /^step-\d{8}\.json$/.test(f)).sort() : [];
  return names.length ? Number(names.at(-1)!.slice(5, 13)) : -1;
}

/** Whether every src/ file has a compiled dist/ file at least as new. */
function distIsFresh(): boolean {
  const src = path.join(ROOT, 'src');
  return (fs.readdirSync(src, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')).every((f) => {
    const js = path.join(ROOT, 'dist', 'src', f.replace(/\.ts$/, '.js'));
    return fs.existsSync(js) && fs.statSync(js).mtimeMs >= fs.statSync(path.join(src, f)).mtimeMs;
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
