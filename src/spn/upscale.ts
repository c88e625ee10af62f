// Multidimensional upscaling, one stage at a time: what a stage samples given the previous
// stage's output (SPN paper, section 3.2). A 'size' stage takes the previous images as slice 0
// and samples slices 1..S²-1; a 'depth' stage takes them as the high bits and samples the low
// ones; a 'full' model takes nothing. Used by `spn upscale`, pipelines and the public API.
import { ArgError } from '../errors.js';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import type { SPN } from './model.js';
import { sample, type SampleOptions } from './sample.js';
import { sliceView } from './slices.js';
import { joinDepth } from './stage.js';

export type StageSampleOptions = Omit<SampleOptions, 'given' | 'init' | 'firstSlice'> & {
  /** The previous stage's images, (n, h, w, C) int64: slice 0 for a size stage (h = H/S),
   * the high bits for a depth stage (h = H); none for a full model. */
  prev?: Tensor;
};

/** The shape [h, w, C] a stage is given, or null for a full model. */
export function stageInputShape(model: SPN): [number, number, number] | null {
  const { height: H, width: W, channels: C, scale: S, stage } = model.cfg;
  return stage === 'full' ? null : stage === 'size' ? [H / S, W / S, C] : [H, W, C];
}

/** n images (n, H, W, C) int64 at the stage's output bits (a depth stage: givenBits + bits). */
export function sampleStage(model: SPN, o: StageSampleOptions): Tensor {
  const { prev, ...common } = o;
  const want = stageInputShape(model);
  const { height: H, width: W, channels: C, scale: S, stage } = model.cfg;
  if (want === null) {
    if (prev) throw new ArgError(`sampleStage: a 'full' model takes no previous images`);
    return sample(model, common);
  }
  const shape = [o.n, ...want];
  if (!prev || prev.shape.join() !== shape.join()) {
    throw new ArgError(`sampleStage: a '${stage}' stage needs the previous images of shape [${shape.join(', ')}], got ${prev ? `[${prev.shape.join(', ')}]` : 'none'}`);
  }
  return torch.tidy(() => {
    const given = prev.to('int64').to(model.device);
    if (stage === 'size') {
      const init = torch.zeros([o.n, H, W, C], { dtype: 'int64', device: model.device });
      sliceView(init, S, 0).copy_(given); // slice 0 = x[0::S, 0::S]
      return sample(model, { ...common, init });
    }
    return joinDepth(given, sample(model, { ...common, given }), model.cfg.bits);
  });
}
