// The CelebA-HQ 256 recipe end to end at 256×256×3 with tiny models: a folder of generated PNGs,
// the recipe's three `spn train` commands (printed by `spn recipe celebahq256-8bit`) run as
// printed plus --set overrides that shrink the networks and --steps 2; then `spn eval
// --pipeline` (the exact combined NLL = the sum of the stages' NLLs on their views), `spn sample
// --pipeline` (a 256×256 image whose slice 0 is the base stage's image and whose high 3 bits are
// the size stage's) and `spn compress/decompress --pipeline` (one 256×256 image bit for bit).
//
// Time: the stages train and evaluate in seconds; what costs is drawing a 256×256 image, one
// sub-pixel at a time (196,608 sequential steps per upscaling stage). The pixel loop runs in the
// addon (native/decode.cc), so a tiny model's pixel costs a few hundred µs rather than the 1–3 ms
// it cost from TypeScript: measured on 2 cores at load 4 to 5, the sample 57 s (was 244 s) and
// the round trip 101 s (was 333 s). The runs stop at their last step as Ctrl-C would (the
// trainer's interruptAtStep hook; a stopped run skips the final sample grid, which would draw a
// 256×256 image per stage). SPN_TEST_256_DRAW=0 leaves out the sample and the round trip (CI
// does so for its second run, against PyTorch 2.x: the decoder there is the same decode.cc, and
// test/spn/sample.test.ts checks it on both builds).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { register as registerCompress } from '../../src/cli/compress.js';
import { register as registerDecompress } from '../../src/cli/decompress.js';
import { register as registerEval } from '../../src/cli/eval.js';
import { register as registerRecipe } from '../../src/cli/recipe.js';
import { register as registerSample } from '../../src/cli/sample.js';
import { train } from '../../src/train/trainer.js';
import { loadDataset } from '../../src/data/index.js';
import { subsampleSet } from '../../src/data/subsample.js';
import { shiftSet } from '../../src/data/bits.js';
import { encodePng } from '../../src/spn/images.js';
import { loadModel } from '../../src/store/checkpoint.js';
import { evaluate } from '../../src/store/evaluate.js';
import { cleanupTmp, tmpDir } from '../data/fixtures.js';
import { cli, parseTrain } from '../cli/in-process.js';

const SIDE = 256;
let work: string;
let spec: string;
let pipeline: string;
let cacheDir: string;
const DRAW = process.env.SPN_TEST_256_DRAW !== '0';
const spn = (...args: string[]) => cli([registerRecipe, registerEval, registerSample, registerCompress, registerDecompress], ...args);


/** A smooth deterministic RGB image: gradients and a few blobs, different per index. */
function image(index: number): Uint8Array {
  const rgb = new Uint8Array(SIDE * SIDE * 3);
  for (let y = 0; y < SIDE; y++) {
    for (let x = 0; x < SIDE; x++) {
      const o = (y * SIDE + x) * 3;
      const d = Math.hypot(x - 80 - 30 * index, y - 128 + 20 * index) / 40;
      rgb[o] = (x + 37 * index) & 255;
      rgb[o + 1] = (y * 0.7 + 255 * Math.exp(-d * d) * 0.3) & 255;
      rgb[o + 2] = ((x ^ y) * 0.25 + 64 * index) & 255;
    }
  }
  return rgb;
}

/** The tiny network every stage trains: the recipe's structure (S, bits, stages), not its size. */
const TINY = ['model.dim=16', 'model.heads=2', 'model.condLayers=1', 'model.decLayers=1', 'model.dropout=0', 'train.batchSize=2', 'train.evalImages=1', 'train.warmupSteps=1'].flatMap((s) => ['--set', s]);

/** The pixels of image `i` of a grid PNG with pad 2: (h·w·3) values at `bits` bits. */
function gridImage(file: string, h: number, w: number, bits: number): Uint8Array {
  const png = PNG.sync.read(fs.readFileSync(file));
  const scale = Math.max(1, Math.ceil(64 / Math.min(h, w)));
  expect([png.width, png.height]).toEqual([w * scale + 4, h * scale + 4]);
  const max = 2 ** bits - 1;
  const out = new Uint8Array(h * w * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) out[(y * w + x) * 3 + c] = Math.round((png.data[((2 + y * scale) * png.width + 2 + x * scale) * 4 + c]! * max) / 255);
    }
  }
  return out;
}

beforeAll(async () => {
  work = tmpDir('spn-256-');
  cacheDir = path.join(work, 'cache');
  for (const [split, first, n] of [['train', 0, 4], ['test', 4, 2]] as const) {
    fs.mkdirSync(path.join(work, 'faces', split), { recursive: true });
    for (let i = 0; i < n; i++) fs.writeFileSync(path.join(work, 'faces', split, `${i}.png`), encodePng({ width: SIDE, height: SIDE, rgb: image(first + i) }));
  }
  spec = `folder:${path.join(work, 'faces')}`;
  const plan = JSON.parse(await spn('recipe', 'celebahq256-8bit', '--data', spec, '--out', path.join(work, 'runs'), '--device', 'cpu', '--json')) as { pipeline: string; stages: { argv: string[] }[] };
  pipeline = plan.pipeline;
  expect(plan.stages.map((s) => s.argv.slice(s.argv.indexOf('--preset'), s.argv.indexOf('--preset') + 2))).toEqual([['--preset', 'celebahq256-base'], ['--preset', 'celebahq256-gpu'], ['--preset', 'celebahq256-gpu']]);
  // each command as printed, shrunk, run to step 2 of 3 and stopped there (see above)
  for (const s of plan.stages) await train({ ...(await parseTrain([...s.argv, ...TINY, '--steps', '3', '--seed', '1', '--quiet'])), cacheDir, interruptAtStep: 2 });
}, 600_000);

afterAll(() => cleanupTmp());

describe('the CelebA-HQ 256 recipe at 256×256×3', () => {
  it('spn eval --pipeline: the exact NLL is the sum of the stages\' NLLs on their views', async () => {
    const json = JSON.parse(await spn('eval', '--pipeline', pipeline, '--data', spec, '--cache-dir', cacheDir, '--quiet', '--json'));
    expect(json.images).toBe(2);
    expect(json.stages.map((s: { stage: string }) => s.stage)).toEqual(['full', 'size', 'depth']);
    const test8 = (await loadDataset(spec, { cacheDir })).test;
    expect([test8.n, test8.h, test8.w, test8.c]).toEqual([2, 256, 256, 3]);
    // each stage on its own view: 32×32 3-bit, 256×256 3-bit, 256×256 8-bit
    const views = [subsampleSet(shiftSet(test8, 5), 8), shiftSet(test8, 5), test8];
    let total = 0;
    for (const [i, run] of ['base', 'size', 'depth'].entries()) {
      const { model } = await loadModel(path.join(work, 'runs', run));
      try {
        total += evaluate(model, views[i]!).nats;
      } finally {
        model.dispose();
      }
    }
    const nats = json.bpd * 2 * SIDE * SIDE * 3 * Math.LN2;
    expect(Math.abs(nats - total) / total).toBeLessThan(1e-9);
  });

  it.runIf(DRAW)('spn sample --pipeline draws a 256×256 image; slice 0 and the high bits chain', { timeout: 3_600_000 }, async () => {
    const out = path.join(work, 'sample.png');
    const frames = path.join(work, 'stages');
    await spn('sample', '--pipeline', pipeline, '--n', '1', '--seed', '2', '--out', out, '--frames', frames, '--quiet');
    const final = gridImage(out, SIDE, SIDE, 8);
    const base = gridImage(path.join(frames, 'stage-1.png'), 32, 32, 3);
    const size = gridImage(path.join(frames, 'stage-2.png'), SIDE, SIDE, 3);
    expect(Array.from(gridImage(path.join(frames, 'stage-3.png'), SIDE, SIDE, 8))).toEqual(Array.from(final));
    const slice0 = new Uint8Array(32 * 32 * 3);
    for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) for (let c = 0; c < 3; c++) slice0[(y * 32 + x) * 3 + c] = size[(y * 8 * SIDE + x * 8) * 3 + c]!;
    expect(Array.from(slice0)).toEqual(Array.from(base));
    expect(Array.from(final, (v) => v >> 5)).toEqual(Array.from(size));
  });

  it.runIf(DRAW)('spn compress --pipeline round-trips one 256×256 image bit for bit', { timeout: 3_600_000 }, async () => {
    const input = path.join(work, 'faces', 'test', '0.png');
    const file = path.join(work, 'one.spn');
    await spn('compress', '--pipeline', pipeline, input, '--out', file, '--quiet');
    const outDir = path.join(work, 'decoded');
    await spn('decompress', file, '--pipeline', pipeline, '--out', outDir, '--quiet');
    const decoded = fs.readdirSync(outDir).filter((f) => f.endsWith('.png'));
    expect(decoded).toHaveLength(1);
    const a = PNG.sync.read(fs.readFileSync(input));
    const b = PNG.sync.read(fs.readFileSync(path.join(outDir, decoded[0]!)));
    expect([b.width, b.height]).toEqual([SIDE, SIDE]);
    expect(Buffer.compare(a.data, b.data)).toBe(0);
  });
});
