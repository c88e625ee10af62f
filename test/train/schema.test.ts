// The option table (src/train/schema.ts): every flag of `spn train` comes from it, every value is
// checked by it in the same words for the CLI and the API, and what --resume applies or compares
// and what the ranks must share are read from it.
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { register } from '../../src/cli/train.js';
import { ArgError } from '../../src/errors.js';
import type { RunConfig } from '../../src/store/run.js';
import { agreedRecord, checkOptions, checkValue, describeDifference, LAUNCH_OPTIONS, resumeConflicts, resumeFlags, RUN_OPTIONS } from '../../src/train/schema.js';
import type { TrainOptions } from '../../src/train/options.js';

const trainCommand = () => {
  const program = new Command();
  register(program);
  return program.commands.find((c) => c.name() === 'train')!;
};

describe('the option table', () => {
  it('is the list of spn train flags: every row with a flag is registered, nothing else is', () => {
    const registered = trainCommand().options.map((o) => o.long).sort();
    const rows = [...Object.values(RUN_OPTIONS), ...Object.values(LAUNCH_OPTIONS)].flatMap((s) => ('flag' in s && s.flag ? [s.flag] : [])).sort();
    expect(registered).toEqual(rows);
    expect(registered).toContain('--bucket-cap-mb');
    expect(registered).toContain('--first-bucket-cap-mb');
  });

  it('checks each kind of value in the words the CLI uses', () => {
    const err = (name: string, v: Parameters<typeof checkValue>[1], x: unknown) => {
      try {
        checkValue(name, v, x);
      } catch (e) {
        expect(e).toBeInstanceOf(ArgError);
        return (e as Error).message;
      }
      return null;
    };
    expect(err('--steps', RUN_OPTIONS.steps.value, 0)).toBe('--steps 0: expected a positive integer');
    expect(err('--steps', RUN_OPTIONS.steps.value, 2.5)).toBe('--steps 2.5: expected a positive integer');
    expect(err('--seed', RUN_OPTIONS.seed.value, -1)).toBe('--seed -1: expected an integer ≥ 0');
    expect(err('--bits', RUN_OPTIONS.bits.value, 9)).toBe('--bits 9: expected an integer from 1 to 8');
    expect(err('--lr', RUN_OPTIONS.lr.value, 0)).toBe('--lr 0: expected a positive number');
    expect(err('--lr', RUN_OPTIONS.lr.value, Infinity)).toBe('--lr Infinity: expected a positive number');
    expect(err('--stage', RUN_OPTIONS.stage.value, 'width')).toBe('--stage width: expected full, size or depth');
    expect(err('--device', RUN_OPTIONS.device.value, 'tpu')).toBe('--device tpu: expected cpu, cuda or cuda:N');
    expect(err('--dist-timeout', RUN_OPTIONS.distTimeoutS.value, 1e6)).toBe('--dist-timeout 1000000: expected seconds above 0 and at most 86400');
    expect(err('--bucket-cap-mb', RUN_OPTIONS.bucketCapMb.value, 0)).toBe('--bucket-cap-mb 0: expected megabytes above 0 and at most 4096');
    expect(err('--set', RUN_OPTIONS.set.value, { 'model.dim': 8, foo: 1 })).toBe('--set foo: expected model.<key>=<value> or train.<key>=<value>');
    expect(err('--steps', RUN_OPTIONS.steps.value, 3)).toBeNull();
    expect(err('--bucket-cap-mb', RUN_OPTIONS.bucketCapMb.value, 0.5)).toBeNull();
  });

  it('checks the combinations without reading files', () => {
    const base: TrainOptions = { out: 'runs/x', steps: 1 };
    expect(() => checkOptions({ out: 'runs/x' })).toThrow(/train needs --minutes or --steps/);
    expect(() => checkOptions({ ...base, resume: true, initFrom: 'runs/y' })).toThrow(/give one of them/);
    expect(() => checkOptions({ ...base, stage: 'depth', bits: 5 })).toThrow(/^--bits 5: a depth stage generates the low 8 − --given-bits bits/);
    expect(() => checkOptions({ ...base, givenBits: 3 })).not.toThrow(); // the stage is the preset's: full unless given
    expect(() => checkOptions({ ...base, stage: 'size', givenBits: 3 })).toThrow(/^--given-bits 3: only a depth stage/);
    expect(() => checkOptions({ ...base, initFrom: 'runs/y', set: { 'model.dim': 8 } })).toThrow(/takes that run's architecture/);
    expect(() => checkOptions({ ...base, batchSize: 0 })).toThrow(/^--batch-size 0: expected a positive integer$/);
    expect(() => checkOptions({ ...base, interruptAtStep: -1 })).toThrow(/^interruptAtStep -1: expected an integer ≥ 0$/);
  });

  it('says which options a resumed run applies and compares the rest with the saved run', () => {
    expect(resumeFlags()).toEqual(['--minutes', '--steps', '--device', '--threads', '--quiet', '--dist-timeout', '--bucket-cap-mb', '--first-bucket-cap-mb']);
    const prior = {
      name: 'r', preset: 'tiny', data: 'fashion-mnist', seed: 3, stage: 'full', subsample: 1, size: null,
      model: { bits: 8, givenBits: 0, scale: 2 }, train: { batchSize: 8, lr: 0.003, emaDecay: 0.999 },
    } as unknown as RunConfig;
    // the same values are harmless; limits and the device apply
    expect(resumeConflicts({ out: 'x', resume: true, preset: 'tiny', seed: 3, batchSize: 8, steps: 99, device: 'cpu' }, prior)).toEqual([]);
    expect(resumeConflicts({ out: 'x', resume: true, data: 'cifar10:/d', seed: 4, scale: 4, lr: 0.5, set: { 'train.emaDecay': 0.9 } }, prior)).toEqual([
      '--data cifar10:/d (the run has fashion-mnist)', '--seed 4 (the run has 3)', '--scale 4 (the run has 2)', '--lr 0.5 (the run has 0.003)', '--set train.emaDecay=0.9 (the run has 0.999)',
    ]);
  });

  it('gives the ranks one fingerprint: the agreed options with sorted --set keys, not threads or quiet', () => {
    const o: TrainOptions = { out: 'runs/x', steps: 5, threads: 2, quiet: true, bucketCapMb: 4, set: { 'train.lr': 1, 'model.dim': 8 } };
    const rec = agreedRecord(o, '1.13.1');
    expect(Object.keys(rec)).not.toContain('threads');
    expect(Object.keys(rec)).not.toContain('quiet');
    expect(rec).toMatchObject({ out: 'runs/x', steps: 5, bucketCapMb: 4, firstBucketCapMb: null, libtorch: '1.13.1' });
    expect(Object.keys(rec.set as object)).toEqual(['model.dim', 'train.lr']);
    expect(JSON.stringify(agreedRecord({ ...o, threads: 1, quiet: false }, '1.13.1'))).toBe(JSON.stringify(rec));
    const other = agreedRecord({ ...o, bucketCapMb: 8, set: { 'model.dim': 16, 'train.lr': 1 } }, '1.13.1');
    expect(describeDifference(rec, other, 1)).toBe('--set model.dim=8 on rank 0 but 16 on rank 1, --bucket-cap-mb 4 on rank 0 but 8 on rank 1');
  });
});
