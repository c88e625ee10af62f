// Score the test images of a trained run: exact bits/dim of every image, the most and the least
// likely ones, and the total, which equals `spn eval <run> --limit N`.
//   node dist/examples/score-images.js <run-dir> [images]
import { evaluate, loadModel, loadRunSplit } from 'spn';

const [run, limitArg] = process.argv.slice(2);
if (!run) {
  console.error('usage: node dist/examples/score-images.js <run-dir> [images]');
  process.exit(2);
}
const limit = Number(limitArg ?? 100);

const { model, config } = await loadModel(run);
try {
  const { set } = await loadRunSplit(config, { split: 'test' });
  const S2 = model.S * model.S;
  const dims = model.dimsPerSlice * (S2 - model.firstSlice); // sub-pixels the model scores per image
  const scores: { index: number; bpd: number }[] = [];
  const total = evaluate(model, set, {
    limit,
    onImages: (first, nats) => {
      for (let i = 0; i < nats.length / S2; i++) {
        let sum = 0;
        for (let k = 0; k < S2; k++) sum += nats[i * S2 + k]!;
        scores.push({ index: first + i, bpd: sum / dims / Math.LN2 });
      }
    },
  });
  scores.sort((a, b) => a.bpd - b.bpd);
  const show = (s: { index: number; bpd: number }) => `#${s.index} ${s.bpd.toFixed(3)}`;
  console.log(`most likely:  ${scores.slice(0, 3).map(show).join(', ')}`);
  console.log(`least likely: ${scores.slice(-3).map(show).join(', ')}`);
  const mean = scores.reduce((a, s) => a + s.bpd, 0) / scores.length;
  console.log(`mean ${mean.toFixed(5)} bits/dim over ${scores.length} images (evaluate: ${total.bpd.toFixed(5)})`);
} finally {
  model.dispose();
}
