// Upscaling pipelines end to end on a tiny generated 8×8×1 IDX dataset with 'tiny' runs of a few
// steps: (a) size: a 4×4 base (--subsample 2) + a size stage S=2; (b) depth: a 3-bit base + a
// depth stage given 3 bits; (c) 4×4 3-bit -> 8×8 3-bit -> 8×8 8-bit. The pipeline's NLL must be
// the sum of its stages' NLLs on the right views, and sampling must keep what each stage is given.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpnError } from '../../src/errors.js';
import * as torch from '../../src/torch/index.js';
import { loadDataset } from '../../src/data/index.js';
import type { ImageSet } from '../../src/data/types.js';
import { register as registerEval } from '../../src/cli/eval.js';
import { evalRun, formatReport } from '../../src/cli/eval.run.js';
import { register as registerSample } from '../../src/cli/sample.js';
import { upscaleRun } from '../../src/cli/upscale.run.js';
import { reduceBits } from '../../src/data/bits.js';
import { encodePng, tensorToBatch } from '../../src/spn/images.js';
import { evalPipeline, loadPipeline, samplePipeline, type Pipeline } from '../../src/store/pipeline.js';
import { loadModel } from '../../src/store/checkpoint.js';
import { evaluate } from '../../src/store/evaluate.js';
import { subsampleSet } from '../../src/data/subsample.js';
import { train, type TrainOptions } from '../../src/train/trainer.js';
import { cleanupTmp, smoothImages, tmpDir, writeIdx } from '../data/fixtures.js';
import { cli } from '../cli/in-process.js';

let work: string;
let cacheDir: string;
let spec: string;
let test8: ImageSet; // the 8-bit test split
let test3: ImageSet; // the same at 3 bits
const runs: Record<string, string> = {};


const trainRun = async (name: string, o: Partial<TrainOptions>) => {
  runs[name] = (await train({ data: spec, preset: 'tiny', out: path.join(work, 'runs', name), cacheDir, quiet: true, seed: 3, steps: 4, ...o })).dir;
};

/** Writes a pipeline file in `work` naming runs relative to it. */
function pipelineFile(name: string, content: unknown): string {
  const file = path.join(work, `${name}.json`);
  fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}
const chain = (...names: string[]) => ({ stages: names.map((n) => ({ run: `runs/${n}` })) });

/** Sum of the stages' NLLs computed independently: each run's own model on its view. */
async function independentNats(parts: Array<[string, ImageSet]>): Promise<number> {
  let total = 0;
  for (const [name, set] of parts) {
    const { model } = await loadModel(runs[name]!);
    try {
      total += evaluate(model, set).nats;
    } finally {
      model.dispose();
    }
  }
  return total;
}

async function checkEval(p: Pipeline, parts: Array<[string, ImageSet]>): Promise<void> {
  const r = await evalPipeline(p, test8, { bits: 8 });
  const expected = await independentNats(parts);
  expect(Math.abs(r.nats - expected) / expected).toBeLessThan(1e-9);
  expect(r.stages.map((s) => s.run)).toEqual(parts.map(([n]) => `runs/${n}`));
  expect(r.dims).toBe(16 * 64);
  expect(r.bpd).toBeCloseTo(r.nats / r.dims / Math.LN2, 12);
  expect(r.stages.reduce((a, s) => a + s.bpd_share, 0)).toBeCloseTo(r.bpd, 9);
}

/** Slice 0 of (n, H, W, C) bytes at S=2. */
function slice0(b: { data: Uint8Array; shape: number[] }): number[] {
  const [n, H, W, C] = b.shape as [number, number, number, number];
  const out: number[] = [];
  for (let i = 0; i < n; i++) for (let r = 0; r < H; r += 2) for (let x = 0; x < W; x += 2) for (let c = 0; c < C; c++) out.push(b.data[((i * H + r) * W + x) * C + c]!);
  return out;
}

async function expectConfigError(content: unknown, message: RegExp): Promise<void> {
  const err = (() => {
    try {
      loadPipeline(pipelineFile('bad', content));
      return null;
    } catch (e) {
      return e;
    }
  })();
  expect(err).toBeInstanceOf(SpnError);
  expect((err as SpnError).code).toBe('E_CONFIG');
  expect((err as SpnError).message).toMatch(message);
}

beforeAll(async () => {
  work = tmpDir('spn-pipeline-');
  cacheDir = path.join(work, 'cache');
  writeIdx(path.join(work, 'train-images.gz'), [32, 8, 8], smoothImages(32, 8, 1));
  writeIdx(path.join(work, 't10k-images.gz'), [16, 8, 8], smoothImages(16, 8, 2));
  spec = `idx:${path.join(work, 'train-images.gz')}`;
  test8 = (await loadDataset(spec, { bits: 8, cacheDir })).test;
  test3 = (await loadDataset(spec, { bits: 3, cacheDir })).test;
  await trainRun('small8', { subsample: 2 });
  await trainRun('large8size', { stage: 'size' });
  await trainRun('large3', { bits: 3 });
  await trainRun('large8depth', { stage: 'depth', givenBits: 3 });
  await trainRun('small3', { subsample: 2, bits: 3 });
  await trainRun('large3size', { stage: 'size', bits: 3 });
});

afterAll(() => cleanupTmp());

describe('size pipeline: 4×4 base + size stage S=2', () => {
  it('total NLL is the sum of the stages on x[::2, ::2] and the full image', async () => {
    const p = loadPipeline(pipelineFile('size', chain('small8', 'large8size')));
    expect(p).toMatchObject({ shape: [8, 8, 1], bits: 8 });
    await checkEval(p, [['small8', subsampleSet(test8, 2)], ['large8size', test8]]);
  });

  it('sampling keeps the base images as slice 0', async () => {
    const r = await samplePipeline(loadPipeline(pipelineFile('size', chain('small8', 'large8size'))), { n: 2, seed: 5 });
    try {
      const base = tensorToBatch(r.stages[0]!.images);
      const final = tensorToBatch(r.images);
      expect(base.shape).toEqual([2, 4, 4, 1]);
      expect(final.shape).toEqual([2, 8, 8, 1]);
      expect(slice0(final)).toEqual(Array.from(base.data));
    } finally {
      torch.dispose(r);
    }
  });
});

describe('depth pipeline: 3-bit base + depth stage given 3 bits', () => {
  it('total NLL is the sum of the stages on the 3-bit and the 8-bit images', async () => {
    await checkEval(loadPipeline(pipelineFile('depth', chain('large3', 'large8depth'))), [['large3', test3], ['large8depth', test8]]);
  });

  it('sampling keeps the given high bits: (final >> 5) == the base output', async () => {
    const r = await samplePipeline(loadPipeline(pipelineFile('depth', chain('large3', 'large8depth'))), { n: 2, seed: 1, temperature: 1.5 });
    try {
      const base = tensorToBatch(r.stages[0]!.images);
      const final = tensorToBatch(r.images);
      expect(r.bits).toBe(8);
      expect(Array.from(final.data, (v) => v >> 5)).toEqual(Array.from(base.data));
    } finally {
      torch.dispose(r);
    }
  });
});

describe('three stages: 4×4 3-bit -> 8×8 3-bit -> 8×8 8-bit', () => {
  it('total NLL is the sum of the three stages on their views', async () => {
    const p = loadPipeline(pipelineFile('three', chain('small3', 'large3size', 'large8depth')));
    await checkEval(p, [['small3', subsampleSet(test3, 2)], ['large3size', test3], ['large8depth', test8]]);
    const a = await evalPipeline(p, test8, { limit: 4 });
    expect(a).toMatchObject({ images: 4, dims: 4 * 64 });
  });

  it('sampling keeps slice 0 and the high bits through the chain', async () => {
    const r = await samplePipeline(loadPipeline(pipelineFile('three', chain('small3', 'large3size', 'large8depth'))), { n: 2, seed: 9 });
    try {
      const [s1, s2, s3] = r.stages.map((s) => tensorToBatch(s.images));
      expect(r.stages.map((s) => s.bits)).toEqual([3, 3, 8]);
      expect(slice0(s2!)).toEqual(Array.from(s1!.data));
      expect(Array.from(s3!.data, (v) => v >> 5)).toEqual(Array.from(s2!.data));
    } finally {
      torch.dispose(r);
    }
  });

  it('spn eval --pipeline and spn sample --pipeline', async () => {
    const file = pipelineFile('three', chain('small3', 'large3size', 'large8depth'));
    const spn = (...args: string[]) => cli([registerEval, registerSample], ...args);
    const json = JSON.parse(await spn('eval', '--pipeline', file, '--cache-dir', cacheDir, '--quiet', '--json', '--limit', '8'));
    expect(Object.keys(json).slice(0, 3)).toEqual(['bpd', 'images', 'stages']);
    expect(json.images).toBe(8);
    expect(json.stages.map((s: { stage: string }) => s.stage)).toEqual(['full', 'size', 'depth']);
    const direct = await evalPipeline(loadPipeline(file), test8, { limit: 8 });
    expect(json.bpd).toBe(direct.bpd);
    expect(await spn('eval', '--pipeline', file, '--cache-dir', cacheDir, '--quiet', '--limit', '2')).toMatch(/bits\/dim of the final 8×8×1 8-bit images over 2 images[^\n]*\n {2}stage 1 runs\/small3 \(full, 4×4×1 3-bit\): \d\.\d{4} bits\/dim share/);
    await expect(spn('eval', runs['small3']!, '--pipeline', file)).rejects.toThrow(/not both/);
    const out = path.join(work, 'out', 'grid.png');
    await spn('sample', '--pipeline', file, '--n', '2', '--seed', '3', '--out', out, '--frames', path.join(work, 'out', 'stages'), '--quiet');
    expect(fs.existsSync(out)).toBe(true);
    expect(fs.readdirSync(path.join(work, 'out', 'stages')).sort()).toEqual(['stage-1.png', 'stage-2.png', 'stage-3.png']);
  });
});

describe('spn upscale', () => {
  const grayPng = (file: string, side: number, values: Uint8Array) => {
    const rgb = new Uint8Array(side * side * 3);
    values.forEach((v, i) => rgb.fill(v, i * 3, i * 3 + 3));
    fs.writeFileSync(file, encodePng({ width: side, height: side, rgb }));
  };
  const opts = { n: 3, temperature: 1, seed: 4, device: 'cpu', ema: true, quiet: true };

  it('a size stage keeps the input as slice 0 exactly (reduced to the run\'s bits)', async () => {
    const input = path.join(work, 'small.png');
    const pixels = smoothImages(1, 4, 11);
    grayPng(input, 4, pixels);
    const out = path.join(work, 'up8.png');
    const r = await upscaleRun(input, { ...opts, run: runs['large8size']!, out });
    expect(r.images.shape).toEqual([3, 8, 8, 1]);
    expect(slice0(r.images)).toEqual(Array.from({ length: 3 }, () => Array.from(pixels)).flat());
    expect(fs.existsSync(out)).toBe(true);
    const r3 = await upscaleRun(input, { ...opts, run: runs['large3size']!, out: path.join(work, 'up3.png') });
    expect(slice0(r3.images)).toEqual(Array.from({ length: 3 }, () => Array.from(reduceBits(pixels, 3))).flat());
  });

  it('a depth stage keeps the input\'s high bits', async () => {
    const input = path.join(work, 'large.png');
    const pixels = smoothImages(1, 8, 12);
    grayPng(input, 8, pixels);
    const r = await upscaleRun(input, { ...opts, run: runs['large8depth']!, out: path.join(work, 'upd.png') });
    expect(Array.from(r.images.data, (v) => v >> 5)).toEqual(Array.from({ length: 3 }, () => Array.from(reduceBits(pixels, 3))).flat());
  });

  it('rejects an input of the wrong size and a full model', async () => {
    const input = path.join(work, 'large.png');
    await expect(upscaleRun(input, { ...opts, run: runs['large8size']!, out: path.join(work, 'x.png') })).rejects.toThrow(/is 8×8 \(W×H\); the model needs 4×4/);
    await expect(upscaleRun(input, { ...opts, run: runs['large3']!, out: path.join(work, 'x.png') })).rejects.toThrow(/is a 'full' model, not an upscaling stage/);
  });
});

describe('spn eval of a single upscaling stage', () => {
  it('labels the bits/dim as the modelled part', async () => {
    const o = { split: 'test', batchSize: 64, device: 'cpu', ema: true, which: 'best', cacheDir, quiet: true } as const;
    expect(formatReport(await evalRun(runs['large8size']!, o))).toMatch(/'size' upscaling stage\) .*bits\/dim of the modelled part \(slices 1\.\.3 given slice 0\)/);
    expect(formatReport(await evalRun(runs['large8depth']!, o))).toMatch(/bits\/dim of the modelled part \(the low 5 bits given the high 3\)/);
  });
});

describe('invalid pipelines', () => {
  it('give errors naming the stage and the mismatch', async () => {
    await expectConfigError(chain('large3', 'large8size'), /stage 2 \(runs\/large8size\) is a size stage with S=2 on 8×8×1: its slice 0 is 4×4×1, but stage 1 \(runs\/large3\) outputs 8×8×1 images at 3 bits/);
    await expectConfigError(chain('small3', 'large8size'), /stage 2 \(runs\/large8size\) is a size stage at 8 bits, but stage 1 \(runs\/small3\) outputs 4×4×1 images at 3 bits/);
    await expectConfigError(chain('large8size', 'small8'), /stage 1 \(runs\/large8size\) is a 'size' upscaling stage; a pipeline starts with a 'full' model/);
    await expectConfigError(chain('small8', 'large3'), /stage 2 \(runs\/large3\) is a 'full' model; only 'size' or 'depth' upscaling stages can follow/);
    await expectConfigError(chain('small8', 'large8size', 'large8depth'), /stage 3 \(runs\/large8depth\) is a depth stage given the high 3 bits, but stage 2 \(runs\/large8size\) outputs 8×8×1 images at 8 bits/);
    await expectConfigError(chain('small3', 'large8depth'), /stage 2 \(runs\/large8depth\) is a depth stage on 8×8×1 images, but stage 1 \(runs\/small3\) outputs 4×4×1/);
    await expectConfigError({ ...chain('small8'), extra: 1 }, /invalid pipeline .*Unrecognized key.*extra/);
    await expectConfigError({ stages: [{ run: 'runs/small8', wich: 'best' }] }, /stages\.0: Unrecognized key.*wich/);
    await expectConfigError({ stages: [] }, /stages: /);
    await expectConfigError(chain('small8', 'nope'), /stage 2 \(runs\/nope\): no run folder at .*nope/);
    expect(() => loadPipeline(path.join(work, 'absent.json'))).toThrow(/cannot read pipeline .*absent\.json/);
    const bad = pipelineFile('notjson', '{"stages": [');
    expect(() => loadPipeline(bad)).toThrow(/is not valid JSON/);
    const p = loadPipeline(pipelineFile('size', chain('small8', 'large8size')));
    await expect(evalPipeline(p, subsampleSet(test8, 2))).rejects.toThrow(/the images are 4×4×1, the pipeline .* outputs 8×8×1/);
  });
});
