// The incremental decoder's pixel loop (src/spn/decode.ts prepares the weights): one slice of an
// SPN decoded pixel by pixel in raster order, channel by channel, with cached state.
//
// Why in C++: a pixel costs about a hundred small tensor ops on (B, D) rows, and through the
// binding's boxed dispatch each costs ~5 µs more than the op itself, so from TypeScript the loop
// was bound by the binding (~1 ms a pixel for a width-16 model; 196,608 sub-pixels per 256×256
// stage). Here the same ATen functions are called unboxed, so autocast, CPU and CUDA behave as
// from JS. The arithmetic is SPN.forward's (src/spn/model.ts), restricted to one pixel:
//   x = inputConv(earlier pixels)[t] + context[t]
//   per block (DecoderBlock.residual, pre-norm):
//     x += maskedConvB(LN(x))[t];  x += attn(LN(x)) over pixels 0..t;  x += MLP(LN(x))
//   h = LN(x); per channel c: logits = out(gelu(fc(h + channelPos[c] + Σ_{c'<c} embed(v_c'))))
// test/spn/sample.test.ts checks it against the full pass in float64 and the fast sampler
// against the naive one (same draws, same images).
//
// At every sub-pixel the values come from one of two pickers: `sample` draws them in C++ (one
// uniform per image from libtorch's default generator, inverse CDF: the same draws as the naive
// sampler), `callback` copies the logits into a JS typed array and calls JS, which writes the
// values into an Int32Array (the codec: its range coder picks them).
#include <torch/csrc/api/include/torch/version.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "spn_torch.h"

namespace spn {

namespace {

struct Dense {  // y = x·w + b, w (in, out) contiguous
  at::Tensor w, b;
  at::Tensor operator()(const at::Tensor& x) const { return b.defined() ? at::addmm(b, x, w) : at::mm(x, w); }
};

struct Norm {  // layer norm over the last dimension
  at::Tensor w, b;
  double eps = 1e-5;
  at::Tensor operator()(const at::Tensor& x) const { return at::layer_norm(x, {w.size(0)}, w, b, eps); }
};

struct Conv {  // a masked conv as one matrix over its allowed taps (decode.ts ConvPlan)
  Dense dense;
  std::vector<at::Tensor> taps;  // per pixel t: (K,) positions in the padded grid
  std::vector<int64_t> at;       // per pixel t: its own position in the padded grid
  int64_t rows = 0, inCh = 0;
};

struct Block {
  Norm nConv, nAttn, nMlp;
  Conv conv;
  Dense qkv, attnProj, fc, proj;  // qkv's query columns pre-scaled by 1/sqrt(head dim)
  int64_t heads = 0, headDim = 0;
};

struct Plan {
  Conv input;
  std::vector<Block> blocks;
  Norm norm;
  std::vector<at::Tensor> channelPos;  // per channel (D,)
  Dense headFc, headOut;
  std::vector<at::Tensor> headEmbed;  // per channel c: (V, D), rows c·V.. of the head's embedding table
  at::Tensor pixelWeight;  // (C·V, D) pixel embedding table
  at::Tensor offsets;      // (C,) int64: c·V
  int64_t C = 0, V = 0, D = 0, T = 0;
};

at::Tensor Opt(Napi::Value v) { return v.IsNull() || v.IsUndefined() ? at::Tensor() : Unwrap(v); }
int64_t Int(const Napi::Object& o, const char* k) { return o.Get(k).As<Napi::Number>().Int64Value(); }
Dense ToDense(Napi::Value v) {
  auto a = v.As<Napi::Array>();
  return {Unwrap(a.Get(0u)), Opt(a.Get(1u))};
}
Norm ToNorm(Napi::Value v) {
  auto a = v.As<Napi::Array>();
  return {Unwrap(a.Get(0u)), Unwrap(a.Get(1u)), a.Get(2u).As<Napi::Number>().DoubleValue()};
}
Conv ToConv(Napi::Value v) {
  auto o = v.As<Napi::Object>();
  Conv c;
  c.dense = ToDense(o.Get("dense"));
  at::Tensor taps = Unwrap(o.Get("taps"));  // (T, K)
  auto at = o.Get("at").As<Napi::Array>();
  for (int64_t t = 0; t < taps.size(0); t++) c.taps.push_back(taps.select(0, t));
  for (uint32_t i = 0; i < at.Length(); i++) c.at.push_back(at.Get(i).As<Napi::Number>().Int64Value());
  c.rows = Int(o, "rows");
  c.inCh = Int(o, "inCh");
  return c;
}

// The plan lives in an external; decodePlanFree empties it at once (the JS DecodePlan's dispose),
// the finalizer frees the box.
struct PlanBox {
  static constexpr uint64_t kMagic = 0x5a3c9e01d7b24f68ULL;
  uint64_t magic = kMagic;
  std::unique_ptr<Plan> plan;
};

Plan& PlanOf(Napi::Value v) {
  PlanBox* box = v.IsExternal() ? v.As<Napi::External<PlanBox>>().Data() : nullptr;
  if (box == nullptr || box->magic != PlanBox::kMagic) throw Napi::TypeError::New(v.Env(), "expected a decode plan");
  if (!box->plan) throw Napi::Error::New(v.Env(), "this decode plan was disposed");
  return *box->plan;
}

// Whether the attention uses libtorch's fused kernel: PyTorch 2.x has it; the fused CPU kernel
// in bf16 measured 5× slower than the composed math (src/torch/ops.ts), so not there.
bool UseFused(const at::Tensor& q) {
#if TORCH_VERSION_MAJOR >= 2
  return !(q.scalar_type() == at::kBFloat16 && q.device().is_cpu());
#else
  (void)q;
  return false;
#endif
}

// The state of one slice being decoded: each masked conv's inputs so far (B, rows, in), zero at
// padding and future pixels, and each block's keys and values so far (B, T, 2, H, hd).
struct SliceState {
  const Plan& p;
  int64_t B;
  at::Tensor ctx;  // (B, T, D)
  at::Tensor inputGrid;
  std::vector<at::Tensor> grids, kv;

  SliceState(const Plan& plan, const at::Tensor& context) : p(plan), B(context.size(0)), ctx(context) {
    auto o = context.options();
    inputGrid = at::zeros({B, p.input.rows, p.input.inCh}, o);
    for (const Block& b : p.blocks) {
      grids.push_back(at::zeros({B, b.conv.rows, b.conv.inCh}, o));
      kv.push_back(at::zeros({B, p.T, 2, b.heads, b.headDim}, o));
    }
  }

  static at::Tensor ConvRead(const Conv& c, const at::Tensor& grid, int64_t t) {
    at::Tensor patch = grid.index_select(1, c.taps[t]);  // (B, K, in)
    return c.dense(patch.view({patch.size(0), -1}));
  }

  at::Tensor Attend(size_t i, const at::Tensor& n, int64_t t) {
    const Block& b = p.blocks[i];
    const int64_t D = p.D, H = b.heads;
    at::Tensor qkv = b.qkv(n);  // (B, 3D), the query pre-scaled
    kv[i].select(1, t).copy_(qkv.narrow(1, D, 2 * D).view({B, 2, H, -1}));
    at::Tensor past = kv[i].narrow(1, 0, t + 1);  // (B, L, 2, H, hd)
    at::Tensor q = qkv.narrow(1, 0, D);
    at::Tensor y;  // (B, H, hd) or (B, H, 1, hd)
#if TORCH_VERSION_MAJOR >= 2
    if (UseFused(q)) {
      at::Tensor k = past.select(2, 0).permute({0, 2, 1, 3});  // (B, H, L, hd)
      at::Tensor v = past.select(2, 1).permute({0, 2, 1, 3});
      y = at::scaled_dot_product_attention(q.view({B, H, 1, -1}), k, v, {}, 0.0, false, 1.0);
      return b.attnProj(y.reshape({B, D}));
    }
#endif
    // one query: a multiply-and-sum beats B·H tiny GEMMs (measured ~3× on these shapes)
    at::Tensor scores = past.select(2, 0).mul(q.view({B, 1, H, -1})).sum(-1);  // (B, L, H)
    y = past.select(2, 1).mul(at::softmax(scores, 1).unsqueeze(-1)).sum(1);
    return b.attnProj(y.reshape({B, D}));
  }

  // The decoder's output at pixel t (B, D); every earlier pixel must have been set.
  at::Tensor Pixel(int64_t t) {
    at::Tensor x = ConvRead(p.input, inputGrid, t).add(ctx.select(1, t));
    for (size_t i = 0; i < p.blocks.size(); i++) {
      const Block& b = p.blocks[i];
      at::Tensor n = b.nConv(x);
      grids[i].select(1, b.conv.at[t]).copy_(n);  // type B: the pixel's own input first
      x = x.add(ConvRead(b.conv, grids[i], t));
      x = x.add(Attend(i, b.nAttn(x), t));
      x = x.add(b.proj(at::gelu(b.fc(b.nMlp(x)))));
    }
    return p.norm(x);
  }

  at::Tensor ChannelLogits(const at::Tensor& h, int64_t c, const at::Tensor& earlier) {
    at::Tensor z = h.add(p.channelPos[c]);
    if (earlier.defined()) z = z.add(earlier);
    return p.headOut(at::gelu(p.headFc(z)));  // (B, V)
  }

  void SetPixel(int64_t t, const at::Tensor& values) {  // values (B, C) int64
    inputGrid.select(1, p.input.at[t]).copy_(at::embedding(p.pixelWeight, values.add(p.offsets)).sum(-2));
  }
};

// decodePlan({input, blocks, norm, channelPos, headFc, headOut, headEmbed, pixelWeight, offsets, C, V, D, T})
Napi::Value DecodePlanNew(const Napi::CallbackInfo& info) {
  auto o = info[0].As<Napi::Object>();
  auto plan = std::make_unique<Plan>();
  plan->input = ToConv(o.Get("input"));
  auto blocks = o.Get("blocks").As<Napi::Array>();
  for (uint32_t i = 0; i < blocks.Length(); i++) {
    auto b = blocks.Get(i).As<Napi::Object>();
    plan->blocks.push_back({ToNorm(b.Get("normConv")), ToNorm(b.Get("normAttn")), ToNorm(b.Get("normMlp")),
                            ToConv(b.Get("conv")), ToDense(b.Get("qkv")), ToDense(b.Get("attnProj")),
                            ToDense(b.Get("fc")), ToDense(b.Get("proj")), Int(b, "heads"), Int(b, "headDim")});
  }
  plan->norm = ToNorm(o.Get("norm"));
  at::Tensor pos = Unwrap(o.Get("channelPos"));
  plan->C = Int(o, "C");
  plan->V = Int(o, "V");
  plan->D = Int(o, "D");
  plan->T = Int(o, "T");
  for (int64_t c = 0; c < plan->C; c++) plan->channelPos.push_back(pos.select(0, c));
  plan->headFc = ToDense(o.Get("headFc"));
  plan->headOut = ToDense(o.Get("headOut"));
  at::Tensor embed = Unwrap(o.Get("headEmbed"));
  for (int64_t c = 0; c < plan->C; c++) plan->headEmbed.push_back(embed.narrow(0, c * plan->V, plan->V));
  plan->pixelWeight = Unwrap(o.Get("pixelWeight"));
  plan->offsets = Unwrap(o.Get("offsets"));
  auto* box = new PlanBox();
  box->plan = std::move(plan);
  return Napi::External<PlanBox>::New(info.Env(), box, [](Napi::Env, PlanBox* b) { delete b; });
}

Napi::Value DecodePlanFree(const Napi::CallbackInfo& info) {
  PlanOf(info[0]);  // checks the handle
  info[0].As<Napi::External<PlanBox>>().Data()->plan.reset();
  return info.Env().Undefined();
}

// decodeSlice(plan, ctx (B, T, D), pixels, pick, onPixel | null) -> values (B, pixels, C) int64
//   pick: {temperature, dtype} draws; {logits: Float32Array | Float64Array (B·V), values:
//   Int32Array (B), fn(t, c)} calls JS at each sub-pixel after writing the logits.
Napi::Value DecodeSlice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Plan& p = PlanOf(info[0]);
  const at::Tensor& ctx = Unwrap(info[1]);
  const int64_t pixels = info[2].As<Napi::Number>().Int64Value();
  auto pick = info[3].As<Napi::Object>();
  Napi::Function onPixel = info[4].IsFunction() ? info[4].As<Napi::Function>() : Napi::Function();
  if (ctx.dim() != 3 || ctx.size(1) != p.T || ctx.size(2) != p.D)
    throw Napi::RangeError::New(env, "decodeSlice: the context must be (B, " + std::to_string(p.T) + ", " + std::to_string(p.D) + ")");
  if (pixels < 0 || pixels > p.T) throw Napi::RangeError::New(env, "decodeSlice: pixels must be in 0.." + std::to_string(p.T));
  const int64_t B = ctx.size(0), C = p.C, V = p.V;

  const bool draw = !pick.Has("fn");
  double temperature = 1;
  at::TensorOptions drawOpts;
  Napi::Function fn;
  Napi::TypedArray logitsBuf;
  int32_t* valuesOut = nullptr;
  at::ScalarType bufType = at::kFloat;
  if (draw) {
    temperature = pick.Get("temperature").As<Napi::Number>().DoubleValue();
    drawOpts = at::TensorOptions().dtype(static_cast<c10::ScalarType>(pick.Get("dtype").As<Napi::Number>().Int32Value())).device(ctx.device());
  } else {
    fn = pick.Get("fn").As<Napi::Function>();
    logitsBuf = pick.Get("logits").As<Napi::TypedArray>();
    auto values = pick.Get("values").As<Napi::Int32Array>();
    bool f32 = logitsBuf.TypedArrayType() == napi_float32_array, f64 = logitsBuf.TypedArrayType() == napi_float64_array;
    if (!(f32 || f64) || logitsBuf.ElementLength() != static_cast<size_t>(B * V) || values.ElementLength() != static_cast<size_t>(B))
      throw Napi::TypeError::New(env, "decodeSlice: pick.logits must be a Float32Array or Float64Array of B·V, pick.values an Int32Array of B");
    bufType = f32 ? at::kFloat : at::kDouble;
    valuesOut = values.Data();
  }

  c10::InferenceMode inference;  // no autograd or version-counter bookkeeping on the many small ops
  SliceState s(p, ctx);
  at::Tensor out = at::zeros({B, pixels, C}, ctx.options().dtype(at::kLong));
  std::vector<int32_t> got(static_cast<size_t>(B));
  for (int64_t t = 0; t < pixels; t++) {
    Napi::HandleScope scope(env);  // the callbacks' arguments, freed pixel by pixel
    at::Tensor h = s.Pixel(t);
    at::Tensor earlier;
    std::vector<at::Tensor> vs;  // (B,) int64 per channel
    for (int64_t c = 0; c < C; c++) {
      at::Tensor logits = s.ChannelLogits(h, c, earlier);
      at::Tensor v;
      if (draw) {
        at::Tensor u = at::rand({B, 1}, drawOpts);
        at::Tensor z = logits.scalar_type() == u.scalar_type() ? logits : logits.to(u.scalar_type());
        if (temperature != 1) z = z.div(temperature);
        at::Tensor cdf = at::cumsum(at::softmax(z, 1), 1);
        v = at::clamp_max(at::searchsorted(cdf, u), V - 1).view({-1});
      } else {
        at::Tensor l = logits.to(at::kCPU, bufType).contiguous();
        std::memcpy(static_cast<uint8_t*>(logitsBuf.ArrayBuffer().Data()) + logitsBuf.ByteOffset(), l.data_ptr(), l.nbytes());
        fn.Call({Napi::Number::New(env, static_cast<double>(t)), Napi::Number::New(env, static_cast<double>(c))});
        for (int64_t i = 0; i < B; i++) {
          int32_t x = valuesOut[i];
          if (x < 0 || x >= V)
            throw Napi::RangeError::New(env, "decodeSlice: value " + std::to_string(x) + " for image " + std::to_string(i) + " is outside 0.." + std::to_string(V - 1));
          got[static_cast<size_t>(i)] = x;
        }
        v = at::from_blob(got.data(), {B}, at::kInt).to(ctx.device(), at::kLong);
      }
      if (c < C - 1) {  // no later channel of this pixel reads the last one
        at::Tensor e = p.headEmbed[c].index_select(0, v);  // = embedding(table, v + c·V)
        earlier = earlier.defined() ? earlier.add(e) : e;
      }
      vs.push_back(std::move(v));
    }
    at::Tensor px = C == 1 ? vs[0].view({B, 1}) : at::stack(vs, 1);  // (B, C)
    out.select(1, t).copy_(px);
    s.SetPixel(t, px);
    if (onPixel) onPixel.Call({Napi::Number::New(env, static_cast<double>(t + 1))});
  }
  return Wrap(env, out);
}

}  // namespace

void InitDecode(Napi::Env env, Napi::Object exports) {
  exports.Set("decodePlan", Napi::Function::New<Guarded<DecodePlanNew>>(env, "decodePlan"));
  exports.Set("decodePlanFree", Napi::Function::New<Guarded<DecodePlanFree>>(env, "decodePlanFree"));
  exports.Set("decodeSlice", Napi::Function::New<Guarded<DecodeSlice>>(env, "decodeSlice"));
}

}  // namespace spn
