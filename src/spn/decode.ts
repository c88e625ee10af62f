// Incremental decoding of a slice, for sampling and the codec: the same function as SPN.forward,
// evaluated one pixel at a time with cached state.
//
// Per slice the conditioning network runs once (here, in TypeScript). The pixel loop runs in the
// addon (native/decode.cc): per pixel each decoder block reads its masked conv from a grid of the
// inputs written so far, appends the pixel's key and value to a cache and attends over it, and
// runs its MLP, all on (B, D) rows. That loop is about a hundred small ops a pixel, and through
// the binding each costs more than the op itself, so it is one native call per slice. A
// DecodePlan prepares the weights once per sampling call: every linear as one addmm on a
// contiguous (in, out) weight (a GEMM on a transposed weight view is 2-10× slower for a few rows,
// measured on OpenBLAS), masked convs as one matrix over their allowed taps, the attention scale
// folded into the query weights, and the tap indices of every pixel. The result equals the full
// pass up to float rounding (tested in float64).
import { ArgError, SpnError } from '../errors.js';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import type { DecodePlanHandle, Handle } from '../torch/binding.js';
import { dtypeCode } from '../torch/dtype.js';
import type { LayerNorm, Linear } from '../torch/nn/index.js';
import type { MaskedConv2d, SPN, SliceBatch } from './model.js';

/** y = x·W + b as one addmm on a contiguous (in, out) matrix W (applied in decode.cc). */
class Dense {
  private constructor(readonly w: Tensor, readonly b: Tensor | null) {}
  /** A Linear (out, in) weight, transposed and copied; `scale` (out,) multiplies its outputs. */
  static of(l: Linear, scale?: Tensor): Dense {
    return torch.tidy(() => {
      const w = l.weight.transpose(0, 1);
      const b = l.bias ? (scale ? l.bias.mul(scale) : l.bias) : null;
      return Dense.matrix(scale ? w.mul(scale) : w, b);
    });
  }
  /** An (in, out) matrix as it is (copied). */
  static matrix(w: Tensor, b: Tensor | null): Dense {
    return torch.tidy(() => new Dense(torch.keep(w.contiguous().clone()), b ? torch.keep(b.clone()) : null));
  }
  dispose(): void {
    torch.dispose([this.w, this.b]);
  }
}

/** A masked conv's allowed taps as one (K·in, out) matrix, and each pixel's tap positions. */
class ConvPlan {
  readonly dense: Dense;
  readonly taps: Tensor; // (T, K): row t holds pixel t's tap positions in the padded grid
  readonly rows: number; // positions in the padded grid
  readonly at: number[]; // per pixel t: its own position in the padded grid
  constructor(readonly conv: MaskedConv2d, h: number, w: number) {
    const c = (conv.k - 1) / 2;
    const wp = w + 2 * c;
    const K = conv.offsets.length;
    // (out, in, k·k) -> allowed taps (out, in, K) -> (K, in, out) -> (K·in, out), matching a
    // gathered patch (B, K, in) flattened tap-major.
    this.dense = torch.tidy(() => {
      const idx = torch.fromArray(new BigInt64Array(conv.offsets.map(BigInt)), undefined, { device: conv.weight.device });
      const taps = conv.weight.view([conv.outCh, conv.inCh, conv.k * conv.k]).indexSelect(2, idx); // (out, in, K)
      return Dense.matrix(taps.permute([2, 1, 0]).reshape([K * conv.inCh, conv.outCh]), conv.bias);
    });
    this.rows = (h + c) * wp;
    const taps = new BigInt64Array(h * w * K);
    this.at = [];
    for (let r = 0; r < h; r++) {
      for (let x = 0; x < w; x++) {
        // pixel (r, x) sits at padded (r + c, x + c); tap (dy, dx) reads padded (r + dy, x + dx)
        const t = r * w + x;
        conv.offsets.forEach((o, j) => { taps[t * K + j] = BigInt((r + Math.floor(o / conv.k)) * wp + x + (o % conv.k)); });
        this.at.push((r + c) * wp + x + c);
      }
    }
    this.taps = torch.keep(torch.fromArray(taps, [h * w, K], { device: conv.weight.device }));
  }
  dispose(): void {
    this.dense.dispose();
    this.taps.dispose();
  }
}

/** How decodeSlice picks each sub-pixel's values. */
export type SlicePick =
  /** Draws them: one uniform per image (libtorch's default generator), inverse CDF of softmax(logits / temperature) in `dtype`. */
  | { temperature: number; dtype: torch.DType }
  /** Calls fn(t, c) after writing the logits (B·V, row-major) into `logits`; fn writes the B values into `values`. */
  | { logits: Float32Array | Float64Array; values: Int32Array; fn: (pixel: number, channel: number) => void };

const native = torch.native;

const dense = (d: Dense) => [d.w.handle, d.b?.handle ?? null];
const norm = (n: LayerNorm) => [n.weight.handle, n.bias.handle, n.eps];
const conv = (c: ConvPlan) => ({ dense: dense(c.dense), taps: c.taps.handle, at: c.at, rows: c.rows, inCh: c.conv.inCh });

/** Weights prepared for decoding (native/decode.cc holds them); valid while the model's weights do not change. */
export class DecodePlan {
  #plan: DecodePlanHandle | null;

  constructor(readonly model: SPN) {
    const { h, w } = model;
    const D = model.cfg.dim;
    const o = { dtype: model.dtype, device: model.device };
    const held: { dispose(): void }[] = [];
    const keep = <T extends { dispose(): void }>(x: T): T => (held.push(x), x);
    try {
      const input = keep(new ConvPlan(model.inputConv, h, w));
      const blocks = model.blocks.map((b) => {
        // q·k/sqrt(hd) with the 1/sqrt(hd) applied to the query columns of the qkv projection
        const scale = torch.tidy(() => torch.cat([torch.full([D], 1 / Math.sqrt(b.attn.headDim), o), torch.ones([2 * D], o)], 0));
        const qkv = keep(Dense.of(b.attn.qkv, scale));
        scale.dispose();
        return {
          normConv: norm(b.normConv), normAttn: norm(b.normAttn), normMlp: norm(b.normMlp),
          conv: conv(keep(new ConvPlan(b.conv, h, w))),
          qkv: dense(qkv), attnProj: dense(keep(Dense.of(b.attn.proj))), fc: dense(keep(Dense.of(b.fc))), proj: dense(keep(Dense.of(b.proj))),
          heads: b.attn.heads, headDim: b.attn.headDim,
        };
      });
      const head = model.head;
      const headOut = keep(torch.tidy(() => {
        const [w, b] = head.outWeights();
        return Dense.matrix(w.transpose(0, 1), b);
      }));
      const pixelWeight = torch.tidy(() => model.pixelEmbedWeight().clone());
      held.push(pixelWeight);
      this.#plan = native.decodePlan({
        input: conv(input), blocks, norm: norm(model.norm),
        channelPos: head.channelPos.handle, headFc: dense(keep(Dense.of(head.fc))), headOut: dense(headOut),
        headEmbed: head.embed.weight.handle, pixelWeight: pixelWeight.handle, offsets: model.offsets.handle,
        C: model.cfg.channels, V: model.V, D, T: model.T,
      });
    } finally {
      for (const x of held) x.dispose(); // the native plan holds its own references
    }
  }

  /**
   * Decodes slice k of a batch, its first `pixels` pixels (default all T): embeds the context,
   * then runs the pixel loop with `pick` choosing each sub-pixel's values. Returns them,
   * (B, pixels, C) int64, in the caller's tidy scope. `onPixel(done)` runs after each pixel.
   */
  decodeSlice(batch: SliceBatch, k: number, pick: SlicePick, o: { pixels?: number; onPixel?: (done: number) => void } = {}): Tensor {
    const m = this.model;
    const S2 = m.S * m.S;
    if (!Number.isInteger(k) || k < 0 || k >= S2) throw new ArgError(`slice index ${k} is outside 0..${S2 - 1}`);
    const pixels = o.pixels ?? m.T;
    if (!Number.isInteger(pixels) || pixels < 0 || pixels > m.T) throw new ArgError(`decodeSlice: pixels ${pixels} is outside 0..${m.T}`);
    const plan = this.#plan;
    if (plan === null) throw new SpnError('E_DISPOSED', 'this decode plan was disposed');
    const B = batch.x.size(0);
    const ctx = torch.tidy(() => m.contextEmbedding(batch, torch.full([B], k, { dtype: 'int64', device: m.device })).contiguous());
    try {
      // an error thrown by a callback comes back as it was thrown; libtorch's become E_NATIVE
      let thrown: { err: unknown } | null = null;
      const guard = <A extends unknown[]>(f: (...a: A) => void) => (...a: A) => {
        try {
          f(...a);
        } catch (err) {
          thrown = { err };
          throw err;
        }
      };
      const nativePick = 'fn' in pick ? { logits: pick.logits, values: pick.values, fn: guard(pick.fn) } : { temperature: pick.temperature, dtype: dtypeCode(pick.dtype) };
      let out: Handle;
      try {
        out = native.decodeSlice(plan, ctx.handle, pixels, nativePick, o.onPixel ? guard(o.onPixel) : null); // in InferenceMode there
      } catch (err) {
        if (thrown !== null) throw (thrown as { err: unknown }).err;
        throw new SpnError('E_NATIVE', (err as Error).message.startsWith('decodeSlice') ? (err as Error).message : `decodeSlice: ${(err as Error).message}`, { cause: err });
      }
      return new torch.Tensor(out);
    } finally {
      ctx.dispose();
    }
  }

  dispose(): void {
    if (this.#plan === null) return;
    native.decodePlanFree(this.#plan);
    this.#plan = null;
  }
}
