// Train a tiny SPN on the embedded Fashion-MNIST for a few steps, then sample from it.
//   node dist/examples/train-and-sample.js [out-dir]
// Uses only the public API; a real run trains the 'fmnist-cpu' preset for minutes, not steps.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { gridPng, sampleImages, train } from 'spn';

const out = path.resolve(process.argv[2] ?? 'runs/example-tiny');

const result = await train({
  preset: 'tiny', // a very small model: this example is about the API, not the samples' quality
  data: 'fashion-mnist',
  out,
  steps: 30,
  seed: 0,
  quiet: true,
  onProgress: (p) => console.log(`step ${p.step}: ${p.lossBpd.toFixed(3)} bits/dim`),
});
console.log(`trained ${result.step} steps; test bits/dim ${result.lastTestBpd?.toFixed(3)} -> ${result.dir}`);

// The same seed gives the same images as `spn sample <run> --seed 1 --n 4`.
const images = await sampleImages(result.dir, { n: 4, seed: 1 });
const [n, h, w, c] = images.shape;
console.log(`sampled ${n} images of ${h}×${w}×${c} at ${images.bits} bits; first pixels: ${Array.from(images.data.subarray(0, 8)).join(' ')}`);
fs.writeFileSync(path.join(out, 'example-samples.png'), gridPng(images, { bits: images.bits }));
