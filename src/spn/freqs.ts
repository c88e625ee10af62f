// Smooth features of a sub-pixel value v ∈ 0..V−1: cos and sin of π·f·v/(V−1) for f = 1, 2, 4, …
//
// A network that reads a value as one scalar needs many units to turn it back into "a peak of the
// softmax at v"; with these features such a peak is linear (a sum of cos(π·f·(u − v)) over f is a
// bump at v), and what is learnt about a value carries over to its neighbours. The model uses them
// for the known context values (config valueFreqs), the head's output weights (headFreqs) and the
// decoder's pixel embeddings (embedFreqs).
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';

/** (V, 2F): row v holds cos, sin of π·2^i·v/(V−1) for i = 0..F−1, interleaved. */
export function freqTable(V: number, F: number, o: torch.CreateOptions = {}): Tensor {
  const t = new Float64Array(V * 2 * F);
  for (let v = 0; v < V; v++) {
    for (let i = 0; i < F; i++) {
      const a = (Math.PI * 2 ** i * v) / (V - 1);
      t[v * 2 * F + 2 * i] = Math.cos(a);
      t[v * 2 * F + 2 * i + 1] = Math.sin(a);
    }
  }
  return torch.fromArray(t, [V, 2 * F], { dtype: 'float32', ...o });
}
