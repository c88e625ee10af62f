// The reference half of bench/engine: one pre-norm transformer block (layer norm, causal
// self-attention composed from matmuls, layer norm, GELU MLP), forward and backward, called
// straight from C++. bench/engine runs the same op sequence from TypeScript through the binding;
// the ratio of the two times is what the binding costs.
#include <chrono>

#ifdef SPN_WITH_CUDA
#include <c10/cuda/CUDAFunctions.h>
#endif

#include "spn_torch.h"

namespace spn {

namespace {
at::Tensor Param(at::IntArrayRef shape, double scale, const at::TensorOptions& opts) {
  return (at::randn(shape, opts) * scale).set_requires_grad(true);
}
}  // namespace

// benchBlock(batch, seq, width, heads, iters, warmup, device) -> milliseconds per iteration
Napi::Value BenchBlock(const Napi::CallbackInfo& info) {
  int64_t B = info[0].As<Napi::Number>().Int64Value();
  int64_t T = info[1].As<Napi::Number>().Int64Value();
  int64_t D = info[2].As<Napi::Number>().Int64Value();
  int64_t H = info[3].As<Napi::Number>().Int64Value();
  int iters = info[4].As<Napi::Number>().Int32Value();
  int warmup = info[5].As<Napi::Number>().Int32Value();
  std::string device = info[6].As<Napi::String>();
  auto opts = at::TensorOptions().dtype(at::kFloat).device(device);
  int64_t hd = D / H;
  double s = 1.0 / std::sqrt(static_cast<double>(D));
  at::Tensor ln1w = at::ones({D}, opts).set_requires_grad(true), ln1b = at::zeros({D}, opts).set_requires_grad(true);
  at::Tensor ln2w = at::ones({D}, opts).set_requires_grad(true), ln2b = at::zeros({D}, opts).set_requires_grad(true);
  at::Tensor wqkv = Param({3 * D, D}, s, opts), bqkv = at::zeros({3 * D}, opts).set_requires_grad(true);
  at::Tensor wo = Param({D, D}, s, opts), bo = at::zeros({D}, opts).set_requires_grad(true);
  at::Tensor w1 = Param({4 * D, D}, s, opts), b1 = at::zeros({4 * D}, opts).set_requires_grad(true);
  at::Tensor w2 = Param({D, 4 * D}, s, opts), b2 = at::zeros({D}, opts).set_requires_grad(true);
  at::Tensor x = at::randn({B, T, D}, opts);
  at::Tensor mask = at::ones({T, T}, opts.dtype(at::kBool)).triu(1);
  double scale = 1.0 / std::sqrt(static_cast<double>(hd));

  auto step = [&]() {
    at::Tensor h = at::layer_norm(x, {D}, ln1w, ln1b, 1e-5);
    at::Tensor qkv = at::linear(h, wqkv, bqkv);                             // (B, T, 3D)
    auto parts = qkv.chunk(3, -1);
    at::Tensor q = parts[0].view({B, T, H, hd}).transpose(1, 2);            // (B, H, T, hd)
    at::Tensor k = parts[1].view({B, T, H, hd}).transpose(1, 2);
    at::Tensor v = parts[2].view({B, T, H, hd}).transpose(1, 2);
    at::Tensor att = at::matmul(q, k.transpose(-2, -1)).mul(scale);         // (B, H, T, T)
    att = att.masked_fill(mask, -std::numeric_limits<double>::infinity()).softmax(-1);
    at::Tensor y = at::matmul(att, v).transpose(1, 2).reshape({B, T, D});
    at::Tensor x1 = x + at::linear(y, wo, bo);
    at::Tensor m = at::gelu(at::linear(at::layer_norm(x1, {D}, ln2w, ln2b, 1e-5), w1, b1));
    at::Tensor out = x1 + at::linear(m, w2, b2);
    out.square().mean().backward();
    for (at::Tensor* p : {&ln1w, &ln1b, &ln2w, &ln2b, &wqkv, &bqkv, &wo, &bo, &w1, &b1, &w2, &b2})
      p->mutable_grad() = at::Tensor();
  };
  for (int i = 0; i < warmup; i++) step();
  auto sync = [&]() {
#ifdef SPN_WITH_CUDA
    if (opts.device().is_cuda()) c10::cuda::device_synchronize();
#endif
  };
  sync();
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; i++) step();
  sync();
  auto t1 = std::chrono::steady_clock::now();
  double ms = std::chrono::duration<double, std::milli>(t1 - t0).count() / iters;
  return Napi::Number::New(info.Env(), ms);
}

}  // namespace spn
