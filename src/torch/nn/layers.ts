// The basic layers: Linear, Conv2d, LayerNorm, Embedding, Dropout.
// Initialisation follows PyTorch's defaults unless the model re-initialises.
import * as ops from '../ops.js';
import type { DType } from '../dtype.js';
import { tidy, type Tensor } from '../tensor.js';
import { Module } from './module.js';

export interface LayerOptions { dtype?: DType; device?: string }

/** U(-bound, bound), as torch.nn.init.uniform_. */
export function uniform(shape: number[], bound: number, o: LayerOptions = {}): Tensor {
  return tidy(() => ops.rand(shape, o).mul(2 * bound).sub(bound));
}

export function normal(shape: number[], std: number, o: LayerOptions = {}): Tensor {
  return tidy(() => ops.randn(shape, o).mul(std));
}

export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(readonly inFeatures: number, readonly outFeatures: number, o: LayerOptions & { bias?: boolean } = {}) {
    super();
    const bound = 1 / Math.sqrt(inFeatures);
    this.weight = this.param('weight', uniform([outFeatures, inFeatures], bound, o));
    this.bias = o.bias === false ? null : this.param('bias', uniform([outFeatures], bound, o));
  }
  forward(x: Tensor): Tensor {
    return ops.linear(x, this.weight, this.bias);
  }
}

export class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    readonly options: LayerOptions & ops.Conv2dOptions & { bias?: boolean } = {},
  ) {
    super();
    const groups = options.groups ?? 1;
    const bound = 1 / Math.sqrt((inChannels / groups) * kernelSize * kernelSize);
    this.weight = this.param('weight', uniform([outChannels, inChannels / groups, kernelSize, kernelSize], bound, options));
    this.bias = options.bias === false ? null : this.param('bias', uniform([outChannels], bound, options));
  }
  forward(x: Tensor): Tensor {
    return ops.conv2d(x, this.weight, this.bias, this.options);
  }
}

export class LayerNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(readonly dim: number, readonly eps = 1e-5, o: LayerOptions = {}) {
    super();
    this.weight = this.param('weight', ops.ones([dim], o));
    this.bias = this.param('bias', ops.zeros([dim], o));
  }
  forward(x: Tensor): Tensor {
    return ops.layerNorm(x, [this.dim], this.weight, this.bias, this.eps);
  }
}

export class Embedding extends Module {
  readonly weight: Tensor;
  constructor(readonly num: number, readonly dim: number, o: LayerOptions & { std?: number } = {}) {
    super();
    this.weight = this.param('weight', normal([num, dim], o.std ?? 1, o));
  }
  forward(indices: Tensor): Tensor {
    return ops.embedding(this.weight, indices);
  }
}

export class Dropout extends Module {
  constructor(readonly p: number) {
    super();
  }
  forward(x: Tensor): Tensor {
    return this.p > 0 && this.training ? ops.dropout(x, this.p, true) : ops.clone(x);
  }
}
