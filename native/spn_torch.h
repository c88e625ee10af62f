// Shared declarations of the spn_torch addon's translation units.
#pragma once
#include <napi.h>
#include <ATen/ATen.h>
#include <exception>
#include <string>

namespace spn {
// A C++ exception's message for JS: libtorch's (c10::Error) without its C++ backtrace.
std::string ErrorText(const std::exception& e);

// Wraps a binding so that any C++ exception becomes a JS exception (never a native abort).
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value Guarded(const Napi::CallbackInfo& info) {
  try {
    return F(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), ErrorText(e));
  }
}

Napi::Value Wrap(Napi::Env env, at::Tensor t);
at::Tensor& Unwrap(Napi::Value v);
// bench_block.cc: a pre-norm transformer block's forward and backward timed inside C++,
// the reference that bench/engine compares the TypeScript binding against.
Napi::Value BenchBlock(const Napi::CallbackInfo& info);
// dist.cc: c10d process groups (TCPStore rendezvous, Gloo/NCCL collectives); adds the dist* exports.
void InitDist(Napi::Env env, Napi::Object exports);
// decode.cc: the incremental decoder's pixel loop (decodePlan, decodePlanFree, decodeSlice).
void InitDecode(Napi::Env env, Napi::Object exports);
}  // namespace spn
