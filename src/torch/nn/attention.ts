// Causal multi-head self-attention with a key/value cache for incremental decoding.
//
// Without a cache it attends over the whole sequence under a causal mask. With a cache, each
// call appends the new positions' keys and values and attends from the new queries to every
// cached position: decoding one position at a time then costs O(T) instead of O(T²), and gives
// the same result as the full causal pass (tested).
import { ArgError } from '../../errors.js';
import * as ops from '../ops.js';
import { keep, type Tensor } from '../tensor.js';
import { Linear, type LayerOptions } from './layers.js';
import { Module } from './module.js';

export class KVCache {
  readonly k: Tensor; // (B, H, maxLen, hd)
  readonly v: Tensor;
  length = 0;
  constructor(batch: number, heads: number, maxLen: number, headDim: number, o: LayerOptions = {}) {
    this.k = keep(ops.zeros([batch, heads, maxLen, headDim], o));
    this.v = keep(ops.zeros([batch, heads, maxLen, headDim], o));
  }
  get capacity(): number {
    return this.k.size(2);
  }
  reset(): void {
    this.length = 0;
  }
  dispose(): void {
    this.k.dispose();
    this.v.dispose();
  }
}

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

  newCache(batch: number, maxLen: number): KVCache {
    const w = this.qkv.weight;
    return new KVCache(batch, this.heads, maxLen, this.headDim, { dtype: w.dtype, device: w.device });
  }

  /** x: (B, T, D) -> (B, T, D). With a cache, x holds the T positions that follow the cached ones. */
  forward(x: Tensor, cache?: KVCache): Tensor {
    const [B, T, D] = x.shape as [number, number, number];
    const H = this.heads;
    const hd = this.headDim;
    const [q, k, v] = this.qkv.forward(x).chunk(3, -1) as [Tensor, Tensor, Tensor]; // (B, T, D) each
    const split = (t: Tensor) => t.view([B, T, H, hd]).transpose(1, 2); // (B, H, T, hd)
    let y: Tensor;
    if (!cache) {
      y = ops.scaledDotProductAttention(split(q), split(k), split(v), { causal: true });
    } else {
      const start = cache.length;
      if (start + T > cache.capacity) throw new ArgError(`KV cache holds ${cache.capacity} positions; ${start + T} needed`);
      cache.k.slice(2, start, start + T).copy_(split(k));
      cache.v.slice(2, start, start + T).copy_(split(v));
      cache.length = start + T;
      const keys = cache.k.slice(2, 0, start + T);
      const values = cache.v.slice(2, 0, start + T);
      // One new query sees every cached key: no mask needed. Several new queries need the
      // causal mask aligned to the end of the key sequence, which sdpaComposed applies.
      y = T === 1 ? singleQuery(split(q), keys, values) : ops.sdpaComposed(split(q), keys, values, { causal: true });
    }
    return this.proj.forward(y.transpose(1, 2).reshape([B, T, D])); // (B, T, D)
  }
}

/**
 * Attention of one query per head over L cached keys: q (B, H, 1, hd), k and v (B, H, L, hd).
 * Broadcast multiply-and-sum instead of two batched matmuls: for a single row, B·H tiny GEMM
 * calls cost far more than two elementwise passes (measured ~3× on the sampler's shapes).
 */
function singleQuery(q: Tensor, k: Tensor, v: Tensor): Tensor {
  const scores = q.mul(k).sum(-1).mul(1 / Math.sqrt(q.size(-1))); // (B, H, L)
  return ops.softmax(scores, -1).unsqueeze(-1).mul(v).sum(2, true); // (B, H, 1, hd)
}
