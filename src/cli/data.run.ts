// `spn data <spec>` (definition in data.ts): load (and cache) a dataset and report its splits,
// shape and channel means.
import { channelMeans, loadDataset } from '../data/index.js';
import type { DataCommandOptions } from './data.js';

export async function run(spec: string, o: DataCommandOptions): Promise<void> {
  const quiet = o.json === true;
  const ds = await loadDataset(spec, {
    ...(o.bits !== undefined ? { bits: o.bits } : {}),
    ...(o.size !== undefined ? { size: o.size } : {}),
    ...(o.seed !== undefined ? { seed: o.seed } : {}),
    ...(o.cacheDir !== undefined ? { cacheDir: o.cacheDir } : {}),
    onProgress: quiet ? undefined : (m) => process.stderr.write(`${m}\n`),
  });
  const { train, test } = ds;
  // Means over the test split, of the stored values at the requested bit depth.
  const mean = channelMeans(test).map((m) => Math.round(m * 1e4) / 1e4);
  if (quiet) {
    process.stdout.write(JSON.stringify({ train: train.n, test: test.n, shape: [test.h, test.w, test.c], mean }) + '\n');
    return;
  }
  process.stdout.write(
    [
      `dataset  ${ds.name}`,
      `train    ${train.n} images`,
      `test     ${test.n} images`,
      `shape    ${test.h}×${test.w}×${test.c} (H×W×C), ${ds.bits} bits`,
      `mean     ${mean.map((m) => m.toFixed(2)).join(', ')} (test split, per channel)`,
    ].join('\n') + '\n',
  );
}
