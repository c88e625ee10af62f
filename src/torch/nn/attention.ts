// Causal multi-head self-attention over a sequence (B, T, D): position t attends to 0..t.
// Incremental decoding (one position at a time with a key/value cache) lives with the model
// that needs it (src/spn/decode.ts), where the cache layout serves its other caches too.
import { ArgError } from '../../errors.js';
import * as ops from '../ops.js';
import type { Tensor } from '../tensor.js';
import { Linear, type LayerOptions } from './layers.js';
import { Module } from './module.js';

export class CausalSelfAttention extends Module {
  readonly qkv: Linear;
  readonly proj: Linear;
  readonly headDim: number;
  constructor(readonly dim: number, readonly heads: number, o: LayerOptions = {}) {
    super();
    if (dim % heads !== 0) throw new ArgError(`attention width ${dim} is not divisible by ${heads} heads`);
    this.headDim = dim / heads;
    this.qkv = this.child('qkv', new Linear(dim, 3 * dim, o));
    this.proj = this.child('proj', new Linear(dim, dim, o));
  }

  /** x: (B, T, D) -> (B, T, D). */
  forward(x: Tensor): Tensor {
    const [B, T, D] = x.shape as [number, number, number];
    const [q, k, v] = this.qkv.forward(x).chunk(3, -1) as [Tensor, Tensor, Tensor]; // (B, T, D) each
    const split = (t: Tensor) => t.view([B, T, this.heads, this.headDim]).transpose(1, 2); // (B, H, T, hd)
    const y = ops.scaledDotProductAttention(split(q), split(k), split(v), { causal: true }); // (B, H, T, hd)
    return this.proj.forward(y.transpose(1, 2).reshape([B, T, D]));
  }
}
