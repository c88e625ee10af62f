// Writes test/fixtures/run-fixture/: a small, deterministic run folder for the dashboard tests, in
// exactly the formats the real tools write (docs/run-folder.md):
//   config.json, status.json, metrics.jsonl   as `spn train` writes them (src/train/run.ts, trainer.ts),
//                                             here a Fashion-MNIST 28×28×1 run with S=4 (16 slices),
//                                             halfway through 2000 steps
//   eval.json                                 as `spn eval` writes it (src/cli/eval.ts)
//   samples/latest.png, samples/step-*.png    the trainer's grids of 16 samples (src/spn/images.ts gridRgb)
//   samples/frames/frame-000..015.png,
//   samples/frames/animation.gif              as `spn sample --frames` writes them (src/spn/frames.ts),
//                                             for 4 images to keep the fixture small
// Run: node scripts/make-fixture.mjs   (the output is committed; rerun only to change it)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';
import gifenc from 'gifenc';

const { GIFEncoder, quantize, applyPalette } = gifenc;
const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'test', 'fixtures', 'run-fixture');

// A tiny LCG so the noise in the curves and images is the same on every run of this script.
let seed = 12345;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);

// ---- config.json: RunConfig (src/train/run.ts), the fmnist-cpu preset with --set model.scale=4 ----
const H = 28, W = 28, C = 1, S = 4;
const created = '2025-01-15T10:00:00.000Z';
const config = {
  name: 'run-fixture',
  preset: 'fmnist-cpu',
  data: 'fashion-mnist',
  dataBits: 8,
  subsample: 1,
  size: null,
  seed: 0,
  device: 'cpu',
  stage: 'full',
  model: {
    height: H, width: W, channels: C, bits: 8, scale: S, dim: 64, heads: 4, condLayers: 2, decLayers: 3,
    kernel: 3, mlpRatio: 4, dropout: 0, stage: 'full', givenBits: 0,
  },
  train: {
    batchSize: 16, lr: 0.003, minLr: 0, warmupSteps: 100, weightDecay: 0.01, gradClip: 1, emaDecay: 0.995,
    slicesPerImage: 1, evalEverySec: 40, evalImages: 400, checkpointEverySec: 300, sampleEverySec: 60,
  },
  minutes: null,
  steps: 2000,
  created,
};

// ---- metrics.jsonl: the trainer's records (src/train/trainer.ts), a train line every 10 steps ----
// About 0.2 s a step, so the 40 s eval interval falls every 200 steps. One step supervises batch × one slice = 16 × 7·7 sub-pixels.
const { batchSize, lr: peakLr, minLr, warmupSteps } = config.train;
const totalSteps = config.steps;
const subpixelsPerStep = batchSize * (H / S) * (W / S) * C;
/** The trainer's schedule with a step budget (lrAt, cosine): linear warmup, then cosine to minLr. */
const lrAt = (step) => step < warmupSteps
  ? (peakLr * (step + 1)) / warmupSteps
  : minLr + 0.5 * (1 + Math.cos((Math.PI * (step - warmupSteps)) / (totalSteps - warmupSteps))) * (peakLr - minLr);
const lines = [];
let time = 0;
for (let step = 10; step <= 1000; step += 10) {
  const dt = 10 * (0.2 + (rand() - 0.5) * 0.04) + (step <= 20 ? 1.5 : 0); // the first steps pay for warm-up
  time += dt;
  const loss_bpd = +(3.25 + 4.4 * Math.exp(-step / 60) + 0.5 * Math.exp(-step / 400) + (rand() - 0.5) * 0.12).toFixed(5);
  const subpixels_per_s = Math.round((10 * subpixelsPerStep) / dt);
  lines.push({ kind: 'train', step, time_s: +time.toFixed(1), loss_bpd, subpixels_per_s, lr: +lrAt(step - 1).toExponential(4) }); // the rate the last step used
  if (step % 200 === 0) {
    time += 2.5 + rand(); // the test pass over evalImages images
    const bpd = +(3.36 + 0.9 * Math.exp(-step / 220) + (rand() - 0.5) * 0.02).toFixed(5);
    lines.push({ kind: 'test', step, time_s: +time.toFixed(1), bpd, images: config.train.evalImages });
  }
}

// ---- status.json: RunStatus ----
const elapsed = Math.round(time + 0.4);
const status = {
  state: 'running',
  step: 1000,
  total_steps: totalSteps,
  elapsed_s: elapsed,
  eta_s: Math.round(elapsed * ((totalSteps - 1000) / 1000)),
  updated: new Date(Date.parse(created) + elapsed * 1000).toISOString(),
};

// ---- eval.json: `spn eval` on the full test split (bpd is the mean over the 16 equal slices) ----
// Slice 0 has no context and is the hardest; later slices see more of the image.
const perSlice = Array.from({ length: S * S }, (_, k) => +(3.17 + 1.6 * Math.exp(-k / 1.5) + (rand() - 0.5) * 0.03).toFixed(5));
const meanBpd = perSlice.reduce((a, b) => a + b, 0) / perSlice.length;
const evalJson = { bpd: +meanBpd.toFixed(5), images: 10000, per_slice_bpd: perSlice, split: 'test', step: 1000 };

// ---- sample images: Fashion-MNIST-like grayscale 28×28 silhouettes, 8-bit values ----
const SHAPES = [
  (u, v) => Math.abs(u) < 0.32 + (v < -0.35 ? 0.3 : 0) && v > -0.7 && v < 0.75, // shirt with sleeves
  (u, v) => v > -0.8 && v < 0.85 && Math.abs(u) < 0.4 && !(Math.abs(u) < 0.06 && v > -0.4), // trousers
  (u, v) => (u / 0.7) ** 2 + ((v - 0.15) / 0.55) ** 2 < 1 || (Math.abs(u) < 0.35 && Math.abs(v + 0.55) < 0.08), // bag
  (u, v) => v > 0.1 && v < 0.55 && u > -0.85 && u < 0.85 - 0.6 * (0.55 - v), // sneaker
  (u, v) => Math.abs(u) < 0.25 + 0.35 * (v + 0.8) / 1.6 && v > -0.8 && v < 0.8, // dress
];
function makeImage() {
  const shape = SHAPES[Math.floor(rand() * SHAPES.length)];
  const base = 90 + rand() * 150, tilt = (rand() - 0.5) * 80, stripes = rand() < 0.3 ? 3 + Math.floor(rand() * 4) : 0;
  const img = new Uint8Array(H * W);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const u = (x - 13.5) / 13, v = (y - 13.5) / 13;
      if (!shape(u, v)) continue;
      const stripe = stripes && Math.floor((y * stripes) / H) % 2 ? -40 : 0;
      img[y * W + x] = Math.max(0, Math.min(255, Math.round(base + tilt * u + stripe + (rand() - 0.5) * 30)));
    }
  }
  return img;
}

// gridRgb (src/spn/images.ts): ceil(sqrt(n)) columns, each image scaled ×ceil(64/28) = 3, a
// 2-pixel gutter of gray 40, gray repeated into RGB.
const SCALE = Math.max(1, Math.ceil(64 / Math.min(H, W))), PAD = 2, PAD_GRAY = 40;
function gridPng(images) {
  const cols = Math.ceil(Math.sqrt(images.length)), rows = Math.ceil(images.length / cols);
  const [ih, iw] = [H * SCALE, W * SCALE];
  const width = cols * iw + (cols + 1) * PAD, height = rows * ih + (rows + 1) * PAD;
  const rgb = Buffer.alloc(width * height * 3, PAD_GRAY);
  images.forEach((img, b) => {
    const x0 = PAD + (b % cols) * (iw + PAD), y0 = PAD + Math.floor(b / cols) * (ih + PAD);
    for (let y = 0; y < ih; y++) {
      for (let x = 0; x < iw; x++) rgb.fill(img[Math.floor(y / SCALE) * W + Math.floor(x / SCALE)], ((y0 + y) * width + x0 + x) * 3, ((y0 + y) * width + x0 + x + 1) * 3);
    }
  });
  const png = new PNG({ width, height, colorType: 2, inputColorType: 2, inputHasAlpha: false });
  png.data = rgb;
  return { width, height, rgb, bytes: PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false }) };
}

// fillNearest (src/spn/images.ts): with slices 0..known-1 sampled, each pixel shows the nearest
// known offset of its S×S block; slice k is the offset (k / S, k % S).
function fillNearest(img, known) {
  const outImg = new Uint8Array(img.length);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const [a, b] = [y % S, x % S];
      let best = [0, 0], bestD = Infinity;
      for (let k = 0; k < known; k++) {
        const [i, j] = [Math.floor(k / S), k % S];
        const d = (a - i) ** 2 + (b - j) ** 2;
        if (d < bestD) [best, bestD] = [[i, j], d];
      }
      outImg[y * W + x] = img[(y - a + best[0]) * W + x - b + best[1]];
    }
  }
  return outImg;
}

const write = (rel, bytes) => {
  const file = path.join(out, rel);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, bytes);
};
const json = (value) => JSON.stringify(value, null, 2) + '\n';

fs.rmSync(out, { recursive: true, force: true });
write('config.json', json(config));
write('status.json', json(status));
write('metrics.jsonl', lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
write('eval.json', json(evalJson));

// The trainer's grids: one at the first step past each sampleEverySec, latest.png the newest.
let latest;
const gridSteps = [1, 2, 3].map((i) => lines.find((l) => l.time_s >= i * config.train.sampleEverySec).step);
for (const step of gridSteps) {
  latest = gridPng(Array.from({ length: 16 }, makeImage)).bytes;
  write(path.join('samples', `step-${String(step).padStart(8, '0')}.png`), latest);
}
write(path.join('samples', 'latest.png'), latest);

// One frame per slice and the GIF: about 3 s in all, then 1.5 s on the finished grid, looping.
const sampled = Array.from({ length: 4 }, makeImage);
const frames = [];
for (let k = 0; k < S * S; k++) {
  const frame = gridPng(sampled.map((img) => fillNearest(img, k + 1)));
  write(path.join('samples', 'frames', `frame-${String(k).padStart(3, '0')}.png`), frame.bytes);
  frames.push(frame);
}
const delay = Math.min(500, Math.max(60, Math.round(3000 / frames.length)));
const gif = GIFEncoder();
frames.forEach((f, i) => {
  const rgba = new Uint8Array(f.width * f.height * 4);
  for (let p = 0, q = 0; p < f.rgb.length; p += 3, q += 4) rgba.set([f.rgb[p], f.rgb[p + 1], f.rgb[p + 2], 255], q);
  const palette = quantize(rgba, 256);
  gif.writeFrame(applyPalette(rgba, palette), f.width, f.height, { palette, delay: i === frames.length - 1 ? 1500 : delay, ...(i === 0 ? { repeat: 0 } : {}) });
});
gif.finish();
write(path.join('samples', 'frames', 'animation.gif'), gif.bytes());

console.log(`wrote ${path.relative(root, out)}`);
