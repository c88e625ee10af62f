// `spn score` (definition in score.ts): per-image bits/dim (src/score/), printed as each batch is
// done, then the grids of the worst and best images.
import { ArgError } from '../errors.js';
import { writeFileAtomic } from '../fsutil.js';
import { readInputs } from '../codec/inputs.js';
import { scoreImages, type ImageScore, type ScoreResult } from '../score/index.js';
import { gridPng } from '../spn/images.js';
import * as torch from '../torch/index.js';
import { loadModel } from '../store/checkpoint.js';
import { stageOutput } from '../store/pipeline.js';
import type { ScoreCommandOptions } from './score.js';

const csvField = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

function line(s: ImageScore, o: ScoreCommandOptions): string {
  if (o.json) return JSON.stringify(s);
  const extra = o.ood ? [s.compressor_bpd!, s.corrected!] : [];
  if (o.csv) return [String(s.index), csvField(s.name), ...[s.bpd, ...extra, ...s.per_slice_bpd.map((v) => v ?? NaN)].map((v) => (Number.isNaN(v) ? '' : String(v)))].join(',');
  return `${s.name}\t${s.bpd.toFixed(4)}${o.ood ? `\tcorrected ${s.corrected!.toFixed(4)} (${o.compressor} ${s.compressor_bpd!.toFixed(4)})` : ''}`;
}

export interface ScoreReport extends ScoreResult {
  grids: string[];
}

export async function run(target: string, inputs: string[], o: ScoreCommandOptions): Promise<ScoreReport> {
  torch.setNumThreads(torch.threadsFor('ops'));
  const log = (m: string) => o.quiet || process.stderr.write(m + '\n');
  const { model, config } = await loadModel(target, { ema: o.ema, which: o.which, device: 'cpu' });
  try {
    if (config.stage !== 'full') throw new ArgError(`${target} is a '${config.stage}' upscaling stage; spn score scores whole images with a 'full' model`);
    const m = config.model;
    const { shape: [height, width, channels], bits } = stageOutput(config);
    const image = { height, width, channels, bits };
    const { set, names } = await readInputs(inputs, { image, config, split: o.split, limit: o.limit, cacheDir: o.cacheDir, onProgress: log });
    const S2 = m.scale * m.scale;
    if (o.csv) {
      const head = ['index', 'name', 'bpd', ...(o.ood ? [`${o.compressor}_bpd`, 'corrected'] : []), ...Array.from({ length: S2 }, (_, k) => `slice_${k}`)];
      process.stdout.write(head.join(',') + '\n');
    }
    const r = await scoreImages(model, set, {
      names, batchSize: o.batchSize, ...(o.ood ? { compressor: o.compressor } : {}),
      onImage: (s) => void process.stdout.write(line(s, o) + '\n'),
    });
    const grids: string[] = [];
    const size = set.h * set.w * set.c;
    const grid = (which: 'worst' | 'best', n: number) => {
      const order = [...r.scores].sort((a, b) => (which === 'worst' ? b.bpd - a.bpd : a.bpd - b.bpd)).slice(0, n);
      const data = new Uint8Array(order.length * size);
      order.forEach((s, i) => data.set(set.read(s.index, 1), i * size));
      const file = `${o.grid}-${which}.png`;
      writeFileAtomic(file, gridPng(data, { bits, shape: [order.length, set.h, set.w, set.c] }));
      grids.push(file);
      log(`${which} ${order.length}: ${file} (${order.map((s) => `${s.name} ${s.bpd.toFixed(3)}`).join(', ')})`);
    };
    if (o.worst) grid('worst', o.worst);
    if (o.best) grid('best', o.best);
    log(`${r.eval.images} images: ${r.eval.bpd.toFixed(4)} bits/dim (exact, the mean over the images' sub-pixels)`);
    return { ...r, grids };
  } finally {
    model.dispose();
  }
}
