// How a run's data becomes model input: the stage decides what is generated and what is given.
//   full:  every slice of the image at the model's bit depth;
//   size:  slices 1..S²-1 given slice 0 (size upscaling);
//   depth: the low `bits` of every sub-pixel given the high `givenBits` (depth upscaling).
// A run may also train on the image subsampled by `subsample` (slice 0 of a larger image): the
// base model of a size-upscaling pipeline.
import * as torch from '../torch/index.js';
import type { ImageSet } from '../data/types.js';
import type { ModelConfig } from '../spn/config.js';
import type { SliceBatch } from '../spn/model.js';

/** x[::s, ::s] of every image: (n, H, W, C) -> (n, H/s, W/s, C). */
export function subsampleSet(set: ImageSet, s: number): ImageSet {
  if (s === 1) return set;
  const { n, h, w, c } = set;
  const [hs, ws] = [h / s, w / s];
  const out = new Uint8Array(n * hs * ws * c);
  let o = 0;
  for (let i = 0; i < n; i++) {
    for (let r = 0; r < hs; r++) {
      for (let x = 0; x < ws; x++) {
        const src = ((i * h + r * s) * w + x * s) * c;
        for (let ch = 0; ch < c; ch++) out[o++] = set.data[src + ch]!;
      }
    }
  }
  return { data: out, n, h: hs, w: ws, c };
}

/** Turns n raw images (stored values, (n, H, W, C)) into what the model reads. */
export function toBatch(data: Uint8Array, n: number, cfg: ModelConfig, device: string): SliceBatch {
  const { height: H, width: W, channels: C } = cfg;
  return torch.tidy(() => {
    const raw = torch.fromArray(data, [n, H, W, C]).to('int64');
    const onDevice = device === 'cpu' ? raw : raw.to(device);
    if (cfg.stage !== 'depth') return { x: onDevice };
    const low = 2 ** cfg.bits;
    return { x: torch.remainder(onDevice, low), given: torch.floorDivide(onDevice, low) };
  });
}

/** Target slice indices the stage trains on: [first, S²). */
export function sliceRange(cfg: ModelConfig): [number, number] {
  return [cfg.stage === 'size' ? 1 : 0, cfg.scale * cfg.scale];
}
