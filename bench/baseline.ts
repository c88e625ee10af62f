// The fully autoregressive baseline the paper compares SPN against: one causal transformer over
// every sub-pixel of the whole image in raster order (row, column, then channel), so an
// H×W×C image is a sequence of N = H·W·C tokens and attention costs O(N²) per layer.
//
//   token t = value embedding of sub-pixel t-1 (a start token for t = 0)
//           + channel embedding of sub-pixel t + position embedding of t
//   ──[LayerNorm, causal self-attention, LayerNorm, MLP] × L──> LayerNorm ──> logits over 2^bits
//
// Used by bench/efficiency.ts at the same width and depth as the SPN it is compared to.
import { ArgError } from '../src/errors.js';
import * as torch from '../src/torch/index.js';
import { Module, Linear, LayerNorm, Embedding, CausalSelfAttention } from '../src/torch/nn/index.js';
import type { Tensor } from '../src/torch/index.js';

export interface BaselineConfig {
  height: number;
  width: number;
  channels: number;
  bits: number; // a softmax over 2^bits values per sub-pixel
  dim: number; // width D
  heads: number;
  layers: number; // transformer blocks L
  mlpRatio?: number; // default 4
}

export interface BaselineOptions { dtype?: torch.DType; device?: string }

class Block extends Module {
  readonly norm1: LayerNorm;
  readonly attn: CausalSelfAttention;
  readonly norm2: LayerNorm;
  readonly fc: Linear;
  readonly proj: Linear;
  constructor(D: number, heads: number, ratio: number, o: Required<BaselineOptions>) {
    super();
    this.norm1 = this.child('norm1', new LayerNorm(D, 1e-5, o));
    this.attn = this.child('attn', new CausalSelfAttention(D, heads, o));
    this.norm2 = this.child('norm2', new LayerNorm(D, 1e-5, o));
    this.fc = this.child('fc', new Linear(D, ratio * D, o));
    this.proj = this.child('proj', new Linear(ratio * D, D, o));
  }
  /** x: (B, N, D) -> (B, N, D). */
  forward(x: Tensor): Tensor {
    x = x.add(this.attn.forward(this.norm1.forward(x)));
    return x.add(this.proj.forward(torch.gelu(this.fc.forward(this.norm2.forward(x)))));
  }
}

export class RasterTransformer extends Module {
  readonly N: number; // sub-pixels per image
  readonly V: number; // values per sub-pixel
  readonly valueEmbed: Embedding; // (V + 1, D): row V is the start token
  readonly channelEmbed: Embedding; // (C, D)
  readonly pos: Tensor; // (N, D)
  readonly blocks: Block[];
  readonly norm: LayerNorm;
  readonly head: Linear;
  readonly channelIds: Tensor; // (N,): the channel of each sub-pixel

  constructor(readonly cfg: BaselineConfig, opts: BaselineOptions = {}) {
    super();
    const { height: H, width: W, channels: C, dim: D } = cfg;
    for (const [k, v] of Object.entries(cfg)) {
      if (!Number.isInteger(v) || (v as number) < 1) throw new ArgError(`baseline config ${k}=${String(v)}: expected a positive integer`);
    }
    if (cfg.bits > 8) throw new ArgError(`baseline config bits=${cfg.bits}: expected 1..8`);
    const o = { dtype: opts.dtype ?? 'float32', device: opts.device ?? 'cpu' };
    this.N = H * W * C;
    this.V = 2 ** cfg.bits;
    this.valueEmbed = this.child('valueEmbed', new Embedding(this.V + 1, D, { std: 0.02, ...o }));
    this.channelEmbed = this.child('channelEmbed', new Embedding(C, D, { std: 0.02, ...o }));
    this.pos = this.param('pos', torch.tidy(() => torch.randn([this.N, D], o).mul(0.02)));
    this.blocks = Array.from({ length: cfg.layers }, (_, i) => this.child(`block${i}`, new Block(D, cfg.heads, cfg.mlpRatio ?? 4, o)));
    this.norm = this.child('norm', new LayerNorm(D, 1e-5, o));
    this.head = this.child('head', new Linear(D, this.V, o));
    this.channelIds = torch.keep(torch.tidy(() => torch.arange(C, undefined, 1, { device: o.device }).view([1, C]).expand([H * W, C]).reshape([-1])));
  }

  /** Logits (B, N, V) for every sub-pixel of x (B, H, W, C) int64, all positions at once. */
  forward(batch: { x: Tensor }): Tensor {
    const x = batch.x;
    const B = x.size(0);
    const seq = x.reshape([B, this.N]); // (B, N): (B, H, W, C) is already raster order
    // Shift right by one: position t sees the values before t, never its own.
    const input = torch.pad(seq.slice(1, 0, this.N - 1), [1, 0], this.V); // (B, N)
    let h = this.valueEmbed.forward(input).add(this.channelEmbed.forward(this.channelIds)).add(this.pos); // (B, N, D)
    for (const b of this.blocks) h = b.forward(h);
    return this.head.forward(this.norm.forward(h)); // (B, N, V)
  }

  /** Negative log-likelihood in nats of each whole image: (B,). */
  nll(batch: { x: Tensor }): Tensor {
    const logits = this.forward(batch);
    const B = logits.size(0);
    return torch.crossEntropy(logits.reshape([-1, this.V]), batch.x.reshape([-1]), 'none').view([B, -1]).sum(1);
  }

  /** Sub-pixels supervised per image per training step: all of them. */
  get dimsPerImage(): number {
    return this.N;
  }

  override dispose(): void {
    super.dispose();
    this.channelIds.dispose();
  }
}

/**
 * Forward multiply-accumulates per image, counted from the layer shapes (embeddings, norms,
 * softmax and the loss are memory-bound and left out):
 *   per block: QKV N·3D² + scores N²·D + weighted values N²·D + output N·D² + MLP 2·r·N·D²
 *   head:      N·D·V
 * The attention terms count the full N×N product: the engine computes every score and masks
 * the future ones (libtorch 1.13 has no fused causal kernel), so no halving for causality.
 */
export function baselineForwardMacs(cfg: BaselineConfig): number {
  const N = cfg.height * cfg.width * cfg.channels;
  const D = cfg.dim;
  const r = cfg.mlpRatio ?? 4;
  const block = N * 3 * D * D + 2 * N * N * D + N * D * D + 2 * r * N * D * D;
  return cfg.layers * block + N * D * 2 ** cfg.bits;
}

/**
 * Bytes the attention scores need when materialised: one (B, heads, N, N) float32 matrix per
 * layer. Training keeps each layer's softmax output for the backward pass and a few more of
 * these matrices live at once while one layer runs (scores, masked scores, their gradients).
 */
export function baselineAttentionBytes(cfg: BaselineConfig, batch: number, bytesPerElement = 4): { perMatrix: number; trainingPeak: number } {
  const N = cfg.height * cfg.width * cfg.channels;
  const perMatrix = batch * cfg.heads * N * N * bytesPerElement;
  // L saved softmax outputs + ~4 transient matrices in the layer being run or differentiated,
  // plus the boolean causal masks (N² bytes each, one saved per layer and one transient).
  return { perMatrix, trainingPeak: (cfg.layers + 4) * perMatrix + (cfg.layers + 2) * N * N };
}
