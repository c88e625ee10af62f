// Shared declarations of the spn_torch addon's translation units.
#pragma once
#include <napi.h>
#include <ATen/ATen.h>

namespace spn {
Napi::Value Wrap(Napi::Env env, at::Tensor t);
at::Tensor& Unwrap(Napi::Value v);
// bench_block.cc: a pre-norm transformer block's forward and backward timed inside C++,
// the reference that bench/engine compares the TypeScript binding against.
Napi::Value BenchBlock(const Napi::CallbackInfo& info);
// dist.cc: c10d process groups (TCPStore rendezvous, Gloo/NCCL collectives); adds the dist* exports.
void InitDist(Napi::Env env, Napi::Object exports);
}  // namespace spn
