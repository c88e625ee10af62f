// Writes test/fixtures/run-fixture/: a small, deterministic run folder (config, status, metrics,
// eval, sample grid, slice-by-slice frames and their GIF) for the dashboard tests.
// Run: node scripts/make-fixture.mjs   (the output is committed; rerun only to change it)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';
import gifenc from 'gifenc';

const { GIFEncoder, quantize, applyPalette } = gifenc;
const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'test', 'fixtures', 'run-fixture');

// A tiny LCG so the noise in the curves is the same on every run of this script.
let seed = 12345;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);

const created = '2025-01-15T10:00:00.000Z';
const config = {
  name: 'run-fixture',
  preset: 'celeba32-small',
  data: { dataset: 'celeba', size: 32, bits: 8, split: 'train' },
  seed: 1,
  device: 'cpu',
  model: { image_size: 32, channels: 3, subscale: 2, embed_dim: 64, conditioning_layers: 2, decoder_layers: 2, heads: 4, mixture: 10 },
  train: { batch_size: 16, lr: 3e-4, warmup_steps: 100, total_steps: 2000, eval_every: 200, checkpoint_every: 500, ema: 0.9995 },
  stage: 'full',
  created,
};

// 50 train lines (every 20 steps) and 5 test lines (every 200 steps), up to step 1000.
const lines = [];
for (let i = 1; i <= 50; i++) {
  const step = i * 20;
  const time_s = +(step * 0.85).toFixed(2);
  const loss_bpd = +(3.2 + 2.3 * Math.exp(-step / 250) + (rand() - 0.5) * 0.15).toFixed(4);
  const subpixels_per_s = Math.round(48000 + (rand() - 0.5) * 4000 + (i < 3 ? -20000 : 0));
  const lr = +(3e-4 * Math.min(1, step / 100)).toExponential(3);
  lines.push({ kind: 'train', step, time_s, loss_bpd, subpixels_per_s, lr });
  if (step % 200 === 0) {
    const bpd = +(3.35 + 2.0 * Math.exp(-step / 260) + (rand() - 0.5) * 0.04).toFixed(4);
    lines.push({ kind: 'test', step, time_s: time_s + 3, bpd, images: 512 });
  }
}

const status = {
  state: 'running',
  step: 1000,
  total_steps: 2000,
  elapsed_s: 853,
  eta_s: 850,
  updated: '2025-01-15T10:14:13.000Z',
};

const evalJson = { bpd: 3.4021, images: 512, per_slice_bpd: [3.71, 3.38, 3.31, 3.22], split: 'test', step: 1000 };

/** A smooth colourful 32x32 "sample" picked by index k; returns RGBA at (x, y). */
function samplePixel(k, x, y) {
  const a = (k * 0.7) % (2 * Math.PI);
  const u = x / 31, v = y / 31;
  const r = 128 + 110 * Math.sin(3 * u + a + 2 * v * Math.cos(a));
  const g = 128 + 110 * Math.sin(4 * v - a + u);
  const b = 128 + 110 * Math.cos(2 * (u + v) + 2 * a);
  return [r | 0, g | 0, b | 0, 255];
}

function writePng(file, width, height, pixel) {
  const png = new PNG({ width, height });
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const [r, g, b, a] = pixel(x, y);
      const i = (y * width + x) * 4;
      png.data[i] = r; png.data[i + 1] = g; png.data[i + 2] = b; png.data[i + 3] = a;
    }
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, PNG.sync.write(png));
  return png;
}

fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(out, { recursive: true });
fs.writeFileSync(path.join(out, 'config.json'), JSON.stringify(config, null, 2) + '\n');
fs.writeFileSync(path.join(out, 'status.json'), JSON.stringify(status, null, 2) + '\n');
fs.writeFileSync(path.join(out, 'metrics.jsonl'), lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
fs.writeFileSync(path.join(out, 'eval.json'), JSON.stringify(evalJson, null, 2) + '\n');

// Sample grid: 4x4 samples of 32x32 with a 2-pixel white gutter.
const cell = 32, gap = 2, n = 4, side = n * cell + (n + 1) * gap;
writePng(path.join(out, 'samples', 'latest.png'), side, side, (x, y) => {
  const cx = Math.floor((x - gap) / (cell + gap)), cy = Math.floor((y - gap) / (cell + gap));
  const ix = x - gap - cx * (cell + gap), iy = y - gap - cy * (cell + gap);
  if (cx < 0 || cy < 0 || cx >= n || cy >= n || ix >= cell || iy >= cell) return [255, 255, 255, 255];
  return samplePixel(cy * n + cx, ix, iy);
});

// Slice-by-slice frames with subscale factor 2: slice s holds pixels (y % 2, x % 2) = (s >> 1, s & 1);
// frame k shows slices 0..k, the rest grey. Drawn at 4x so a 32x32 image is visible.
const frames = [];
const zoom = 4;
for (let k = 0; k < 4; k++) {
  const png = writePng(path.join(out, 'samples', 'frames', `frame-${String(k).padStart(3, '0')}.png`), 32 * zoom, 32 * zoom, (x, y) => {
    const px = Math.floor(x / zoom), py = Math.floor(y / zoom);
    const slice = (py % 2) * 2 + (px % 2);
    return slice <= k ? samplePixel(5, px, py) : [128, 128, 128, 255];
  });
  frames.push(png);
}

const gif = GIFEncoder();
for (const png of frames) {
  const palette = quantize(png.data, 256);
  const index = applyPalette(png.data, palette);
  gif.writeFrame(index, png.width, png.height, { palette, delay: 500 });
}
gif.finish();
fs.writeFileSync(path.join(out, 'samples', 'animation.gif'), gif.bytes());

console.log(`wrote ${path.relative(root, out)}`);
