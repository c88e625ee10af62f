// The Subscale Pixel Network (Menick & Kalchbrenner, ICLR 2019), top to bottom:
//
//   image (B, H, W, C) ──subscale──> slices (B, S², h, w, C), h = H/S, w = W/S
//   conditioning network: context stack (slices before the target, the others masked; planes
//                         by slice or by offset from the target, context.ts) [+ cos/sin
//                         features of the known values, freqs.ts] + meta-position embedding of
//                         the target index k ──convs──> (B, T, D)
//   decoder over the target slice (T = h·w pixels in raster order):
//       masked conv (type A: a pixel sees only earlier pixels) of the pixel embeddings
//       + context embedding + position embedding
//       ──[masked conv B, causal self-attention, MLP] × L──> (B, T, D)
//   channel head: sub-pixel c of a pixel given the decoder state and channels < c
//                 ──> logits (B, T, C, 2^bits)
//
// The product of these conditionals over slices, pixels and channels is the exact likelihood.
// A depth stage adds the image's given high bits to the context and to the decoder input.
import * as torch from '../torch/index.js';
import { Module, Linear, Conv2d, LayerNorm, Embedding, CausalSelfAttention, uniform } from '../torch/nn/index.js';
import type { Tensor } from '../torch/index.js';
import type { ModelConfig } from './config.js';
import { toSlices } from './slices.js';
import { contextTables } from './context.js';
import { freqTable } from './freqs.js';

export interface ModelOptions { dtype?: torch.DType; device?: string }

// --- masked convolution ---------------------------------------------------------------------------

/** Kernel offsets (dy, dx) a masked conv may read: rows above, and the left part of its own row
 * (plus the centre for type B). Rows below are never read, so no bottom padding is needed. */
function maskedOffsets(k: number, type: 'A' | 'B'): number[] {
  const c = (k - 1) / 2;
  const out: number[] = [];
  for (let dy = 0; dy < k; dy++) {
    for (let dx = 0; dx < k; dx++) {
      if (dy < c || (dy === c && (dx < c || (dx === c && type === 'B')))) out.push(dy * k + dx);
    }
  }
  return out;
}

export class MaskedConv2d extends Module {
  readonly weight: Tensor; // (out, in, k, k), zero where masked
  readonly bias: Tensor;
  readonly mask: Tensor; // (1, 1, k, k)
  readonly offsets: number[];
  constructor(readonly inCh: number, readonly outCh: number, readonly k: number, readonly type: 'A' | 'B', o: ModelOptions) {
    super();
    this.offsets = maskedOffsets(k, type);
    const bound = 1 / Math.sqrt(inCh * this.offsets.length);
    const m = new Float32Array(k * k);
    for (const i of this.offsets) m[i] = 1;
    this.mask = this.buffer('mask', torch.fromArray(m, [1, 1, k, k], o));
    this.weight = this.param('weight', torch.tidy(() => uniform([outCh, inCh, k, k], bound, o).mul(this.mask)));
    this.bias = this.param('bias', uniform([outCh], bound, o));
  }
  /** x: (B, in, h, w) -> (B, out, h, w). */
  forward(x: Tensor): Tensor {
    const c = (this.k - 1) / 2;
    // Masking the weight (not only at init) keeps the gradient from ever reaching masked taps.
    return torch.conv2d(x, this.weight.mul(this.mask), this.bias, { padding: c });
  }
}

// --- conditioning network -------------------------------------------------------------------------

class ResBlock extends Module {
  readonly conv1: Conv2d;
  readonly conv2: Conv2d;
  constructor(dim: number, o: ModelOptions) {
    super();
    this.conv1 = this.child('conv1', new Conv2d(dim, dim, 3, { padding: 1, ...o }));
    this.conv2 = this.child('conv2', new Conv2d(dim, dim, 3, { padding: 1, ...o }));
  }
  forward(x: Tensor): Tensor {
    return x.add(this.conv2.forward(torch.gelu(this.conv1.forward(torch.gelu(x)))));
  }
}

/** Embeds the context stack at slice resolution: (B, inCh, h[+2], w[+2]) + target index k -> (B, T, D). */
class ConditioningNetwork extends Module {
  readonly input: Conv2d;
  readonly meta: Embedding; // the meta-position: which slice is being generated
  readonly blocks: ResBlock[];
  readonly norm: LayerNorm;
  readonly freqs: Conv2d | null; // 1×1 conv of the known values' cos/sin features
  /** ring: the stack's extra grid positions on each side (context.ts), read instead of padding. */
  constructor(inCh: number, freqCh: number, readonly ring: number, cfg: ModelConfig, o: ModelOptions) {
    super();
    this.input = this.child('input', new Conv2d(inCh, cfg.dim, 3, { padding: 1 - ring, ...o }));
    this.freqs = freqCh ? this.child('freqs', new Conv2d(freqCh, cfg.dim, 1, o)) : null;
    this.meta = this.child('meta', new Embedding(cfg.scale * cfg.scale, cfg.dim, { std: 0.02, ...o }));
    this.blocks = Array.from({ length: cfg.condLayers }, (_, i) => this.child(`block${i}`, new ResBlock(cfg.dim, o)));
    this.norm = this.child('norm', new LayerNorm(cfg.dim, 1e-5, o));
  }
  forward(stack: Tensor, k: Tensor, freqs?: Tensor): Tensor {
    const [B, D] = [stack.size(0), this.meta.dim];
    let x = this.input.forward(stack).add(this.meta.forward(k).view([B, D, 1, 1])); // (B, D, h, w)
    if (this.freqs && freqs) {
      // a 1×1 conv: only the grid's inner h×w positions reach the output
      const inner = this.ring ? freqs.narrow(2, this.ring, x.size(2)).narrow(3, this.ring, x.size(3)) : freqs;
      x = x.add(this.freqs.forward(inner));
    }
    for (const b of this.blocks) x = b.forward(x);
    return this.norm.forward(x.flatten(2).transpose(1, 2)); // (B, T, D)
  }
}

// --- decoder --------------------------------------------------------------------------------------

class DecoderBlock extends Module {
  readonly normConv: LayerNorm;
  readonly conv: MaskedConv2d;
  readonly normAttn: LayerNorm;
  readonly attn: CausalSelfAttention;
  readonly normMlp: LayerNorm;
  readonly fc: Linear;
  readonly proj: Linear;
  constructor(cfg: ModelConfig, o: ModelOptions) {
    super();
    const D = cfg.dim;
    this.normConv = this.child('normConv', new LayerNorm(D, 1e-5, o));
    this.conv = this.child('conv', new MaskedConv2d(D, D, cfg.kernel, 'B', o));
    this.normAttn = this.child('normAttn', new LayerNorm(D, 1e-5, o));
    this.attn = this.child('attn', new CausalSelfAttention(D, cfg.heads, o));
    this.normMlp = this.child('normMlp', new LayerNorm(D, 1e-5, o));
    this.fc = this.child('fc', new Linear(D, cfg.mlpRatio * D, o));
    this.proj = this.child('proj', new Linear(cfg.mlpRatio * D, D, o));
  }
  /**
   * The block's residual structure, shared by the training pass (all pixels of the slice at
   * once) and the incremental decoder (one pixel, with cached state, decode.ts): pre-norm masked
   * conv, causal attention and MLP sublayers, each added to the stream. The caller supplies how
   * each sublayer is computed on its normed input.
   */
  residual(x: Tensor, sub: { conv: (h: Tensor) => Tensor; attn: (h: Tensor) => Tensor; mlp: (h: Tensor) => Tensor }, dropout = 0): Tensor {
    x = x.add(drop(sub.conv(this.normConv.forward(x)), dropout, this.training));
    x = x.add(drop(sub.attn(this.normAttn.forward(x)), dropout, this.training));
    return x.add(drop(sub.mlp(this.normMlp.forward(x)), dropout, this.training));
  }
  /** x: (B, T, D) over the slice grid h×w. */
  forward(x: Tensor, h: number, w: number, dropout: number): Tensor {
    const [B, T, D] = x.shape as [number, number, number];
    return this.residual(x, {
      conv: (n) => this.conv.forward(n.transpose(1, 2).reshape([B, D, h, w])).flatten(2).transpose(1, 2), // (B, T, D)
      attn: (n) => this.attn.forward(n),
      mlp: (n) => this.proj.forward(torch.gelu(this.fc.forward(n))),
    }, dropout).view([B, T, D]);
  }
}

function drop(x: Tensor, p: number, training: boolean): Tensor {
  return p > 0 && training ? torch.dropout(x, p, true) : x;
}

/** Sub-pixel c of a pixel given the decoder state and the pixel's channels before c. */
class ChannelHead extends Module {
  readonly embed: Embedding; // (C·V, D): value v of channel c at row c·V + v
  readonly channelPos: Tensor; // (C, D)
  readonly fc: Linear;
  readonly out: Linear;
  readonly freqOut: Linear | null; // (D -> 2F): the smooth part of the output weights
  readonly table: Tensor | null; // (V, 2F) cos/sin of the values
  constructor(readonly C: number, readonly V: number, D: number, freqs: number, o: ModelOptions) {
    super();
    this.embed = this.child('embed', new Embedding(C * V, D, { std: 0.02, ...o }));
    this.channelPos = this.param('channelPos', torch.tidy(() => torch.randn([C, D], o).mul(0.02)));
    this.fc = this.child('fc', new Linear(D, D, o));
    this.out = this.child('out', new Linear(D, V, o));
    this.freqOut = freqs ? this.child('freqOut', new Linear(D, 2 * freqs, o)) : null;
    // starts at zero: the same initial logits as without it
    if (this.freqOut) torch.noGrad(() => [this.freqOut!.weight, this.freqOut!.bias!].forEach((p) => p.mul_(0)));
    this.table = freqs ? this.buffer('table', freqTable(V, freqs, o)) : null;
  }
  /** The output layer's weight (V, D) and bias (V,): out, plus table·freqOut when smooth. */
  outWeights(): [Tensor, Tensor] {
    const { out, freqOut, table } = this;
    if (!freqOut || !table) return [out.weight, out.bias!];
    return [out.weight.add(torch.mm(table, freqOut.weight)), out.bias!.add(torch.matmul(table, freqOut.bias!))];
  }
  /** h (B, T, D), target values x (B, T, C) -> logits (B, T, C, V). */
  forward(h: Tensor, x: Tensor, offsets: Tensor): Tensor {
    const e = this.embed.forward(x.add(offsets)); // (B, T, C, D)
    // Sum over channels strictly before c: a cumsum shifted by one channel (exact, unlike
    // cumsum - e, so a channel's own value cannot leak into its logits even by rounding).
    const earlier = torch.pad(torch.cumsum(e.slice(2, 0, this.C - 1), 2), [0, 0, 1, 0]);
    return this.logits(h.unsqueeze(2).add(earlier).add(this.channelPos));
  }
  logits(z: Tensor): Tensor {
    const [w, b] = this.outWeights();
    return torch.linear(torch.gelu(this.fc.forward(z)), w, b);
  }
}

// --- the model ------------------------------------------------------------------------------------

export interface SliceBatch {
  /** Values of the generated variable, (B, H, W, C) int64, in 0..2^bits-1. */
  x: Tensor;
  /** Depth stage: the given high bits, (B, H, W, C) int64. */
  given?: Tensor;
}

export class SPN extends Module {
  readonly S: number;
  readonly h: number; // slice height H/S
  readonly w: number;
  readonly T: number; // pixels per slice
  readonly V: number; // values per sub-pixel: 2^bits
  readonly cond: ConditioningNetwork;
  readonly pixelEmbed: Embedding; // (C·V, D)
  readonly pixelFreqs: Tensor | null; // (C, 2F, D): the smooth part of the pixel embeddings
  readonly embedTable: Tensor | null; // (V, 2F)
  readonly givenEmbed: Embedding | null; // depth stage: (C·2^givenBits, D)
  readonly inputConv: MaskedConv2d; // type A: a pixel's input holds only earlier pixels
  readonly pos: Tensor; // (T, D)
  readonly blocks: DecoderBlock[];
  readonly norm: LayerNorm;
  readonly head: ChannelHead;
  readonly offsets: Tensor; // (C,): c·V, to index the per-channel embedding tables
  readonly givenOffsets: Tensor | null;
  readonly freqTable: Tensor | null; // (V, 2·valueFreqs)
  readonly ctxIndex: Tensor; // (S², S²·rows·cols) int64: the pixel each context plane reads (context.ts)
  readonly ctxKnown: Tensor; // (S², S², rows, cols): that pixel is known
  readonly ctxInside: Tensor; // (S², S², rows, cols): that pixel is inside the image

  constructor(readonly cfg: ModelConfig, readonly opts: ModelOptions = {}) {
    super();
    const { scale: S, channels: C, dim: D } = cfg;
    this.S = S;
    this.h = cfg.height / S;
    this.w = cfg.width / S;
    this.T = this.h * this.w;
    this.V = 2 ** cfg.bits;
    const o = { dtype: opts.dtype ?? 'float32', device: opts.device ?? 'cpu' };
    const given = cfg.stage === 'depth';
    // Context stack: S²·C values, a "known" indicator per plane, and the given bits.
    const t = contextTables(cfg.height, cfg.width, S, cfg.context);
    const inCh = S * S * C + S * S + (given ? S * S * C : 0);
    this.cond = this.child('cond', new ConditioningNetwork(inCh, S * S * C * 2 * cfg.valueFreqs, t.ring, cfg, o));
    this.freqTable = cfg.valueFreqs ? this.buffer('freqTable', freqTable(this.V, cfg.valueFreqs, o)) : null;
    this.pixelEmbed = this.child('pixelEmbed', new Embedding(C * this.V, D, { std: 0.02, ...o }));
    this.pixelFreqs = cfg.embedFreqs ? this.param('pixelFreqs', torch.tidy(() => torch.randn([C, 2 * cfg.embedFreqs, D], o).mul(0.02))) : null;
    this.embedTable = cfg.embedFreqs ? this.buffer('embedTable', freqTable(this.V, cfg.embedFreqs, o)) : null;
    this.givenEmbed = given ? this.child('givenEmbed', new Embedding(C * 2 ** cfg.givenBits, D, { std: 0.02, ...o })) : null;
    this.inputConv = this.child('inputConv', new MaskedConv2d(D, D, cfg.kernel, 'A', o));
    this.pos = this.param('pos', torch.tidy(() => torch.randn([this.T, D], o).mul(0.02)));
    this.blocks = Array.from({ length: cfg.decLayers }, (_, i) => this.child(`block${i}`, new DecoderBlock(cfg, o)));
    this.norm = this.child('norm', new LayerNorm(D, 1e-5, o));
    this.head = this.child('head', new ChannelHead(C, this.V, D, cfg.headFreqs, o));
    this.offsets = this.buffer('offsets', torch.arange(0, C * this.V, this.V, { device: o.device }));
    this.givenOffsets = given ? this.buffer('givenOffsets', torch.arange(0, C * 2 ** cfg.givenBits, 2 ** cfg.givenBits, { device: o.device })) : null;
    const P = S * S;
    this.ctxIndex = this.buffer('ctxIndex', torch.fromArray(t.index, [P, P * t.rows * t.cols], { device: o.device }));
    this.ctxKnown = this.buffer('ctxKnown', torch.fromArray(t.known, [P, P, t.rows, t.cols], o));
    this.ctxInside = this.buffer('ctxInside', torch.fromArray(t.inside, [P, P, t.rows, t.cols], o));
  }

  get dtype(): torch.DType { return this.pos.dtype; }
  get device(): string { return this.pos.device; }

  /** Target slices a stage models: size upscaling skips slice 0, which comes from a base model. */
  get firstSlice(): number { return this.cfg.stage === 'size' ? 1 : 0; }

  /** Values to [-1, 1]. */
  private normalize(v: Tensor, levels: number): Tensor {
    return v.to(this.dtype).mul(2 / (levels - 1)).sub(1);
  }

  /** The pixels of v (B, H, W, C) that the context planes read for targets k: (B, P, rows, cols, C),
   * P = S², 0 where a plane reads outside the image (context.ts). */
  private contextPixels(v: Tensor, k: Tensor): Tensor {
    const [B, P, h, w] = [v.size(0), ...this.ctxKnown.shape.slice(1)] as [number, number, number, number];
    const C = this.cfg.channels;
    const idx = this.ctxIndex.indexSelect(0, k).unsqueeze(2).expand([B, P * h * w, C]);
    // (B, H·W + 1, C): an extra zero pixel at the end for reads outside the image
    return torch.pad(v.reshape([B, -1, C]), [0, 0, 0, 1]).gather(1, idx).view([B, P, h, w, C]);
  }

  /**
   * The conditioning network's inputs for target slices k (B,), P = S² planes laid out as
   * cfg.context says (context.ts; rows×cols is h×w or, for 'relative', (h+2)×(w+2)):
   *   stack (B, P·C + P [+ P·C], rows, cols): the values, zero where not yet known, their "known"
   *         indicator planes (so "unknown" differs from the value 0) and, for a depth stage, the
   *         given high bits of the same pixels;
   *   freqs (B, P·C·2F, rows, cols), with valueFreqs: the known values' cos/sin features (freqs.ts).
   */
  contextInputs(batch: SliceBatch, k: Tensor): { stack: Tensor; freqs?: Tensor } {
    const [B, P, h, w] = [batch.x.size(0), ...this.ctxKnown.shape.slice(1)] as [number, number, number, number];
    const C = this.cfg.channels;
    const planes = (px: Tensor, levels: number, mask: Tensor) =>
      this.normalize(px, levels).mul(mask.unsqueeze(4)).permute([0, 1, 4, 2, 3]).reshape([B, P * C, h, w]);
    const known = this.ctxKnown.indexSelect(0, k); // (B, P, rows, cols)
    const px = this.contextPixels(batch.x, k); // (B, P, rows, cols, C)
    const parts = [planes(px, this.V, known), known];
    if (batch.given) parts.push(planes(this.contextPixels(batch.given, k), 2 ** this.cfg.givenBits, this.ctxInside.indexSelect(0, k)));
    const stack = torch.cat(parts, 1);
    if (!this.freqTable) return { stack };
    const F2 = this.freqTable.size(1);
    const f = this.freqTable.indexSelect(0, px.reshape([-1])).view([B, P, h, w, C, F2]);
    const freqs = f.mul(known.view([B, P, h, w, 1, 1])).permute([0, 1, 4, 5, 2, 3]).reshape([B, P * C * F2, h, w]);
    return { stack, freqs };
  }

  /** The values of slice k of each image: (B, H, W, C) -> (B, T, C). */
  targetSlice(v: Tensor, k: Tensor): Tensor {
    const { S, h, w, T } = this;
    const C = this.cfg.channels;
    const B = v.size(0);
    const xs = toSlices(v, S); // (B, S², h, w, C)
    const idx = k.view([B, 1, 1, 1, 1]).expand([B, 1, h, w, C]);
    return xs.gather(1, idx).reshape([B, T, C]);
  }

  /**
   * Everything the decoder input holds besides the slice's own earlier pixels, (B, T, D): the
   * context embedding of slice k, the position embedding and, for a depth stage, the given high
   * bits of the target slice. The incremental decoder computes it once per slice.
   */
  contextEmbedding(batch: SliceBatch, k: Tensor): Tensor {
    const { stack, freqs } = this.contextInputs(batch, k);
    let x = this.cond.forward(stack, k, freqs).add(this.pos); // (B, T, D)
    if (batch.given && this.givenEmbed && this.givenOffsets) {
      x = x.add(this.givenEmbed.forward(this.targetSlice(batch.given, k).add(this.givenOffsets)).sum(2));
    }
    return x;
  }

  /** The pixel embedding table (C·V, D): learnt rows, plus their smooth part with embedFreqs. */
  pixelEmbedWeight(): Tensor {
    const w = this.pixelEmbed.weight;
    if (!this.pixelFreqs || !this.embedTable) return w;
    return w.add(torch.matmul(this.embedTable, this.pixelFreqs).reshape([-1, this.cfg.dim]));
  }

  /** Embedding of pixel values (..., C) int64: the sum of their per-channel embeddings, (..., D).
   * `weight`: the table from pixelEmbedWeight(), when the caller keeps it (the decoder). */
  embedPixels(values: Tensor, weight: Tensor = this.pixelEmbedWeight()): Tensor {
    return torch.embedding(weight, values.add(this.offsets)).sum(-2);
  }

  /** Logits (B, T, C, V) for target slice k (B,) of each image, all positions at once (training). */
  forward(batch: SliceBatch, k: Tensor): Tensor {
    const target = this.targetSlice(batch.x, k); // (B, T, C)
    const [B, T, D] = [target.size(0), this.T, this.cfg.dim];
    // masked conv A: a pixel's input holds only the embeddings of earlier pixels of the slice
    const grid = this.embedPixels(target).transpose(1, 2).reshape([B, D, this.h, this.w]);
    let x = this.inputConv.forward(grid).flatten(2).transpose(1, 2).add(this.contextEmbedding(batch, k)).view([B, T, D]);
    for (const b of this.blocks) x = b.forward(x, this.h, this.w, this.cfg.dropout);
    return this.head.forward(this.norm.forward(x), target, this.offsets);
  }

  /** Negative log-likelihood in nats of slice k of each image: (B,). */
  nll(batch: SliceBatch, k: Tensor): Tensor {
    // the softmax in the model's dtype also when autocast computed the logits in bf16
    const logits = this.forward(batch, k).to(this.dtype); // (B, T, C, V)
    const B = logits.size(0);
    const target = this.targetSlice(batch.x, k).reshape([-1]);
    return torch.crossEntropy(logits.reshape([-1, this.V]), target, 'none').view([B, -1]).sum(1);
  }

  /** Sub-pixels per slice. */
  get dimsPerSlice(): number {
    return this.T * this.cfg.channels;
  }
}
