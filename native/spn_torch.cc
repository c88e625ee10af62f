// spn_torch: a thin N-API binding over libtorch.
//
// The JS side (src/torch/) validates arguments and owns tensor lifetimes; this side trusts what
// it is given and stays small. Ops are not bound one by one: every ATen operator is reachable
// through the c10 dispatcher by name ("aten::add", overload "Tensor"), and its arguments are
// converted from JS values by reading the operator's schema. Calls go through the full dispatch
// (autograd included), so the same code serves CPU and CUDA, PyTorch 1.13 and 2.x.
//
// Every entry point catches C++ exceptions and rethrows them as JS errors: a libtorch error
// (shape mismatch, wrong dtype, out of memory) must never abort the process.

#include <napi.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <ATen/autocast_mode.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/grad_mode.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/csrc/api/include/torch/version.h>

#ifdef SPN_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

#include <atomic>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "spn_torch.h"

namespace spn {

std::atomic<int64_t> g_live{0};

// Distinguishes our tensor handles from other externals. A magic number in the box rather than
// napi_type_tag_object: tagging and checking a tag cost ~2 µs per op (measured), more than
// the dispatch itself. Handles never leave the JS Tensor class, so a foreign external can only
// come from code that reaches past it.
static constexpr uint64_t kTensorMagic = 0x9c1f3a5be0d14f27ULL;

struct TensorBox {
  uint64_t magic = kTensorMagic;
  at::Tensor t;
  explicit TensorBox(at::Tensor x) : t(std::move(x)) { g_live++; }
  ~TensorBox() {
    magic = 0;
    g_live--;
  }
};

Napi::Value Wrap(Napi::Env env, at::Tensor t) {
  if (!t.defined()) return env.Null();
  auto ext = Napi::External<TensorBox>::New(env, new TensorBox(std::move(t)),
                                             [](Napi::Env, TensorBox* box) { delete box; });
  return ext;
}

static TensorBox* Box(Napi::Value v) {
  TensorBox* box = v.IsExternal() ? v.As<Napi::External<TensorBox>>().Data() : nullptr;
  if (box == nullptr || box->magic != kTensorMagic) throw Napi::TypeError::New(v.Env(), "expected a tensor handle");
  return box;
}

at::Tensor& Unwrap(Napi::Value v) {
  TensorBox* box = Box(v);
  if (!box->t.defined()) throw Napi::Error::New(v.Env(), "tensor was disposed");
  return box->t;
}

// ---------------------------------------------------------------------------------------------
// Operator registry: JS looks an operator up once and calls it by index afterwards.

static std::vector<c10::OperatorHandle>& Ops() {
  static std::vector<c10::OperatorHandle> ops;
  return ops;
}

static Napi::Value OpLookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = info[0].As<Napi::String>();
  std::string overload = info[1].As<Napi::String>();
  auto handle = c10::Dispatcher::singleton().findSchema({name, overload});
  if (!handle.has_value()) return Napi::Number::New(env, -1);
  Ops().push_back(*handle);
  return Napi::Number::New(env, static_cast<double>(Ops().size() - 1));
}

static Napi::Value OpSchema(const Napi::CallbackInfo& info) {
  size_t idx = info[0].As<Napi::Number>().Uint32Value();
  std::ostringstream s;
  s << Ops().at(idx).schema();
  return Napi::String::New(info.Env(), s.str());
}

// --- JS value -> IValue, driven by the schema's argument type ---------------------------------

// Names the argument in an error message. Built only when there is an error: composing it for
// every argument of every call measurably slowed small ops.
struct Where {
  const char* plain = nullptr;
  const c10::FunctionSchema* schema = nullptr;
  const c10::Argument* arg = nullptr;
  Where(const char* p) : plain(p) {}  // NOLINT: implicit from a literal on purpose
  Where(const c10::FunctionSchema& s, const c10::Argument& a) : schema(&s), arg(&a) {}
  std::string str() const { return plain ? std::string(plain) : schema->name() + " argument '" + arg->name() + "'"; }
};

static int64_t ToInt(Napi::Value v, const Where& what) {
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (d != static_cast<double>(static_cast<int64_t>(d)))
      throw Napi::TypeError::New(v.Env(), what.str() + ": expected an integer, got " + std::to_string(d));
    return static_cast<int64_t>(d);
  }
  if (v.IsBigInt()) {
    bool lossless = true;
    return v.As<Napi::BigInt>().Int64Value(&lossless);
  }
  if (v.IsBoolean()) return v.As<Napi::Boolean>().Value() ? 1 : 0;
  throw Napi::TypeError::New(v.Env(), what.str() + ": expected an integer");
}

static double ToDouble(Napi::Value v, const Where& what) {
  if (v.IsNumber()) return v.As<Napi::Number>().DoubleValue();
  throw Napi::TypeError::New(v.Env(), what.str() + ": expected a number");
}

static c10::IValue ToIValue(Napi::Value v, const c10::TypePtr& type, const c10::Argument& arg,
                            const Where& what) {
  Napi::Env env = v.Env();
  switch (type->kind()) {
    case c10::TypeKind::OptionalType:
      if (v.IsNull() || v.IsUndefined()) return c10::IValue();
      return ToIValue(v, type->cast<c10::OptionalType>()->getElementType(), arg, what);
    case c10::TypeKind::TensorType:
      return Unwrap(v);
    case c10::TypeKind::IntType:
    case c10::TypeKind::SymIntType:
    case c10::TypeKind::ScalarTypeType:
    case c10::TypeKind::LayoutType:
    case c10::TypeKind::MemoryFormatType:
      return ToInt(v, what);
    case c10::TypeKind::FloatType:
      return ToDouble(v, what);
    case c10::TypeKind::BoolType:
      if (!v.IsBoolean()) throw Napi::TypeError::New(env, what.str() + ": expected a boolean");
      return v.As<Napi::Boolean>().Value();
    case c10::TypeKind::NumberType:  // at::Scalar: integers stay integers, so int tensors stay int
      if (v.IsBoolean()) return v.As<Napi::Boolean>().Value();
      if (v.IsNumber()) {
        double d = v.As<Napi::Number>().DoubleValue();
        if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15)
          return static_cast<int64_t>(d);
        return d;
      }
      throw Napi::TypeError::New(env, what.str() + ": expected a number");
    case c10::TypeKind::StringType:
      if (!v.IsString()) throw Napi::TypeError::New(env, what.str() + ": expected a string");
      return v.As<Napi::String>().Utf8Value();
    case c10::TypeKind::DeviceObjType:
      if (!v.IsString()) throw Napi::TypeError::New(env, what.str() + ": expected a device string");
      return c10::Device(v.As<Napi::String>().Utf8Value());
    case c10::TypeKind::GeneratorType:
      if (v.IsNull() || v.IsUndefined()) return c10::IValue();
      throw Napi::TypeError::New(env, what.str() + ": generators are not supported; use manualSeed");
    case c10::TypeKind::ListType: {
      auto elem = type->cast<c10::ListType>()->getElementType();
      auto kind = elem->kind();
      if (kind == c10::TypeKind::IntType || kind == c10::TypeKind::SymIntType) {
        std::vector<int64_t> out;
        if (v.IsNumber()) {  // `int[2] stride=1` accepts a single int, as in PyTorch
          out.assign(arg.N() ? static_cast<size_t>(*arg.N()) : 1, ToInt(v, what));
          return out;
        }
        if (!v.IsArray()) throw Napi::TypeError::New(env, what.str() + ": expected an array of integers");
        auto a = v.As<Napi::Array>();
        for (uint32_t i = 0; i < a.Length(); i++) out.push_back(ToInt(a.Get(i), what));
        return out;
      }
      if (!v.IsArray()) throw Napi::TypeError::New(env, what.str() + ": expected an array");
      auto a = v.As<Napi::Array>();
      if (kind == c10::TypeKind::FloatType) {
        std::vector<double> out;
        for (uint32_t i = 0; i < a.Length(); i++) out.push_back(ToDouble(a.Get(i), what));
        return out;
      }
      if (kind == c10::TypeKind::BoolType) {
        c10::List<bool> out;
        for (uint32_t i = 0; i < a.Length(); i++) out.push_back(a.Get(i).ToBoolean().Value());
        return out;
      }
      if (kind == c10::TypeKind::TensorType) {
        c10::List<at::Tensor> out;
        for (uint32_t i = 0; i < a.Length(); i++) out.push_back(Unwrap(a.Get(i)));
        return out;
      }
      if (kind == c10::TypeKind::OptionalType) {  // Tensor?[] (advanced indexing)
        c10::List<c10::optional<at::Tensor>> out;
        for (uint32_t i = 0; i < a.Length(); i++) {
          Napi::Value e = a.Get(i);
          if (e.IsNull() || e.IsUndefined()) out.push_back(c10::nullopt);
          else out.push_back(Unwrap(e));
        }
        return out;
      }
      throw Napi::TypeError::New(env, what.str() + ": unsupported list type " + type->str());
    }
    default:
      throw Napi::TypeError::New(env, what.str() + ": unsupported argument type " + type->str());
  }
}

// --- IValue -> JS ------------------------------------------------------------------------------

static Napi::Value FromIValue(Napi::Env env, const c10::IValue& v) {
  if (v.isTensor()) return Wrap(env, v.toTensor());
  if (v.isNone()) return env.Null();
  if (v.isInt()) return Napi::Number::New(env, static_cast<double>(v.toInt()));
  if (v.isDouble()) return Napi::Number::New(env, v.toDouble());
  if (v.isBool()) return Napi::Boolean::New(env, v.toBool());
  if (v.isTensorList()) {
    auto list = v.toTensorList();
    auto out = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); i++) out.Set(i, Wrap(env, list.get(i)));
    return out;
  }
  if (v.isIntList()) {
    auto list = v.toIntList();
    auto out = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); i++)
      out.Set(i, Napi::Number::New(env, static_cast<double>(list.get(i))));
    return out;
  }
  if (v.isTuple()) {
    const auto& elems = v.toTupleRef().elements();
    auto out = Napi::Array::New(env, elems.size());
    for (size_t i = 0; i < elems.size(); i++) out.Set(i, FromIValue(env, elems[i]));
    return out;
  }
  if (v.isString()) return Napi::String::New(env, v.toStringRef());
  if (v.isDevice()) return Napi::String::New(env, v.toDevice().str());
  throw Napi::TypeError::New(env, std::string("unsupported return type ") + v.tagKind());
}

// call(index, args[]) -> result. `undefined` for an argument means "its default".
static Napi::Value OpCall(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t idx = info[0].As<Napi::Number>().Uint32Value();
  const auto& op = Ops().at(idx);
  const auto& schema = op.schema();
  const auto& args = schema.arguments();
  Napi::Array js = info[1].As<Napi::Array>();
  uint32_t given = js.Length();
  if (given > args.size())
    throw Napi::TypeError::New(env, schema.name() + ": takes " + std::to_string(args.size()) +
                                        " arguments, got " + std::to_string(given));
  torch::jit::Stack stack;
  stack.reserve(args.size());
  for (size_t i = 0; i < args.size(); i++) {
    const auto& arg = args[i];
    Napi::Value v = i < given ? js.Get(static_cast<uint32_t>(i)) : env.Undefined();
    if (v.IsUndefined()) {
      if (arg.default_value().has_value()) {
        stack.push_back(*arg.default_value());
        continue;
      }
      if (arg.type()->kind() == c10::TypeKind::OptionalType) {
        stack.emplace_back();
        continue;
      }
      throw Napi::TypeError::New(env, schema.name() + ": missing argument '" + arg.name() + "'");
    }
    stack.push_back(ToIValue(v, arg.type(), arg, Where(schema, arg)));
  }
  op.callBoxed(&stack);
  if (stack.size() == 1) return FromIValue(env, stack[0]);
  if (stack.empty()) return env.Undefined();
  auto out = Napi::Array::New(env, stack.size());
  for (size_t i = 0; i < stack.size(); i++) out.Set(i, FromIValue(env, stack[i]));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Tensors <-> bytes

static Napi::Value FromBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto ta = info[0].As<Napi::TypedArray>();
  auto shapeJs = info[1].As<Napi::Array>();
  auto dtype = static_cast<c10::ScalarType>(info[2].As<Napi::Number>().Int32Value());
  std::vector<int64_t> shape;
  for (uint32_t i = 0; i < shapeJs.Length(); i++) shape.push_back(ToInt(shapeJs.Get(i), "shape"));
  at::Tensor t = at::empty(shape, at::TensorOptions().dtype(dtype));
  size_t nbytes = t.numel() * t.element_size();
  if (nbytes != ta.ByteLength())
    throw Napi::RangeError::New(env, "data has " + std::to_string(ta.ByteLength()) +
                                         " bytes, shape and dtype need " + std::to_string(nbytes));
  auto* src = static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  if (nbytes) std::memcpy(t.data_ptr(), src, nbytes);
  return Wrap(env, t);
}

static Napi::Value ToBuffer(const Napi::CallbackInfo& info) {
  at::Tensor t = Unwrap(info[0]).detach().to(at::kCPU).contiguous();
  size_t nbytes = t.numel() * t.element_size();
  auto buf = Napi::ArrayBuffer::New(info.Env(), nbytes);
  if (nbytes) std::memcpy(buf.Data(), t.data_ptr(), nbytes);
  return buf;
}

static Napi::Value Item(const Napi::CallbackInfo& info) {
  at::Tensor& t = Unwrap(info[0]);
  if (t.numel() != 1)
    throw Napi::RangeError::New(info.Env(), "item() needs a tensor with one element, got " +
                                                std::to_string(t.numel()));
  at::Scalar s = t.item();
  if (s.isBoolean()) return Napi::Boolean::New(info.Env(), s.toBool());
  return Napi::Number::New(info.Env(), s.toDouble());
}

// --- tensor metadata and autograd ---------------------------------------------------------------

static Napi::Value Shape(const Napi::CallbackInfo& info) {
  at::Tensor& t = Unwrap(info[0]);
  auto sizes = t.sizes();
  auto out = Napi::Array::New(info.Env(), sizes.size());
  for (size_t i = 0; i < sizes.size(); i++) out.Set(i, Napi::Number::New(info.Env(), sizes[i]));
  return out;
}

static Napi::Value Strides(const Napi::CallbackInfo& info) {
  at::Tensor& t = Unwrap(info[0]);
  auto st = t.strides();
  auto out = Napi::Array::New(info.Env(), st.size());
  for (size_t i = 0; i < st.size(); i++) out.Set(i, Napi::Number::New(info.Env(), st[i]));
  return out;
}

static Napi::Value Dtype(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<int>(Unwrap(info[0]).scalar_type()));
}

static Napi::Value DeviceOf(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), Unwrap(info[0]).device().str());
}

static Napi::Value RequiresGrad(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), Unwrap(info[0]).requires_grad());
}

static Napi::Value SetRequiresGrad(const Napi::CallbackInfo& info) {
  Unwrap(info[0]).set_requires_grad(info[1].As<Napi::Boolean>().Value());
  return info.Env().Undefined();
}

static Napi::Value Grad(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), Unwrap(info[0]).grad());
}

static Napi::Value SetGrad(const Napi::CallbackInfo& info) {
  at::Tensor& t = Unwrap(info[0]);
  t.mutable_grad() = (info[1].IsNull() || info[1].IsUndefined()) ? at::Tensor() : Unwrap(info[1]);
  return info.Env().Undefined();
}

static Napi::Value Backward(const Napi::CallbackInfo& info) {
  at::Tensor& t = Unwrap(info[0]);
  at::Tensor g = (info[1].IsNull() || info[1].IsUndefined()) ? at::Tensor() : Unwrap(info[1]);
  bool retain = info[2].ToBoolean().Value();
  t.backward(g, retain, false);
  return info.Env().Undefined();
}

static Napi::Value IsLeaf(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), Unwrap(info[0]).is_leaf());
}

static Napi::Value DataPtr(const Napi::CallbackInfo& info) {
  // For tests of aliasing (views share storage); not a pointer anyone may dereference.
  return Napi::Number::New(info.Env(),
                           static_cast<double>(reinterpret_cast<uintptr_t>(Unwrap(info[0]).data_ptr())));
}

static Napi::Value Free(const Napi::CallbackInfo& info) {
  Box(info[0])->t.reset();  // the box itself goes when JS collects the handle
  return info.Env().Undefined();
}

// Gives the free pages of malloc's heap back to the system (glibc's malloc_trim; elsewhere a
// no-op): true when some were given back. See src/torch/heap.ts for why this is needed.
static Napi::Value MallocTrim(const Napi::CallbackInfo& info) {
#ifdef __GLIBC__
  return Napi::Boolean::New(info.Env(), malloc_trim(0) != 0);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

// ---------------------------------------------------------------------------------------------
// Global state: seeds, threads, grad mode, devices.

static Napi::Value ManualSeed(const Napi::CallbackInfo& info) {
  uint64_t seed = static_cast<uint64_t>(ToInt(info[0], "seed"));
  at::manual_seed(seed);
  return info.Env().Undefined();
}

static Napi::Value GetRngState(const Napi::CallbackInfo& info) {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return Wrap(info.Env(), gen.get_state());
}

static Napi::Value SetRngState(const Napi::CallbackInfo& info) {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(Unwrap(info[0]));
  return info.Env().Undefined();
}

static Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  at::set_num_threads(static_cast<int>(ToInt(info[0], "threads")));
  return info.Env().Undefined();
}

static Napi::Value GetNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), at::get_num_threads());
}

static Napi::Value SetGradEnabled(const Napi::CallbackInfo& info) {
  bool prev = at::GradMode::is_enabled();
  at::GradMode::set_enabled(info[0].As<Napi::Boolean>().Value());
  return Napi::Boolean::New(info.Env(), prev);
}

static Napi::Value LiveCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(g_live.load()));
}

static Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto out = Napi::Object::New(env);
  out.Set("version", std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) +
                         "." + std::to_string(TORCH_VERSION_PATCH));
  out.Set("config", at::show_config());
  out.Set("parallel", at::get_parallel_info());
  out.Set("threads", at::get_num_threads());
  bool cuda = at::detail::getCUDAHooks().hasCUDA();
  out.Set("cuda", cuda);
  out.Set("cudaDevices", cuda ? at::detail::getCUDAHooks().getNumGPUs() : 0);
#ifdef SPN_WITH_CUDA
  out.Set("cudaCompiled", true);
#else
  out.Set("cudaCompiled", false);
#endif
  return out;
}

// Waits for the current CUDA device; a no-op without CUDA (also in a CUDA build on a machine
// without a driver or GPU, where the CUDA runtime would throw).
static Napi::Value CudaSynchronize(const Napi::CallbackInfo& info) {
#ifdef SPN_WITH_CUDA
  if (at::detail::getCUDAHooks().hasCUDA()) c10::cuda::device_synchronize();
#endif
  return info.Env().Undefined();
}

// {allocated, peak, reserved} in bytes on the current CUDA device; zeros without CUDA.
static Napi::Value CudaMemory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto out = Napi::Object::New(env);
  double allocated = 0, peak = 0, reserved = 0;
#ifdef SPN_WITH_CUDA
  if (at::detail::getCUDAHooks().hasCUDA()) {
    auto dev = c10::cuda::current_device();
    auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(dev);
    auto agg = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
    allocated = static_cast<double>(stats.allocated_bytes[agg].current);
    peak = static_cast<double>(stats.allocated_bytes[agg].peak);
    reserved = static_cast<double>(stats.reserved_bytes[agg].current);
    if (info.Length() > 0 && info[0].ToBoolean().Value())
      c10::cuda::CUDACachingAllocator::resetPeakStats(dev);
  }
#endif
  out.Set("allocated", allocated);
  out.Set("peak", peak);
  out.Set("reserved", reserved);
  return out;
}

// Turns bf16 autocast on or off for one device type; the API took the device as an argument
// from libtorch 2.4 on, and had a CPU and a GPU variant of each call before.
static void EnableAutocast(c10::DeviceType type, bool on) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  at::autocast::set_autocast_dtype(type, at::kBFloat16);
  at::autocast::set_autocast_enabled(type, on);
#else
  if (type == c10::DeviceType::CPU) {
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    at::autocast::set_cpu_enabled(on);
  } else {
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    at::autocast::set_enabled(on);
  }
#endif
  if (!on) at::autocast::clear_cache();
}

// Mixed precision: ops that autocast lists (matmul, conv, linear) run in bf16 on the given
// device ("cuda" or "cpu"), the rest keeps its dtype (the residual stream stays fp32). On CPU
// the bf16 kernels are oneDNN's (fast where the CPU has AMX or AVX512-BF16). Returns false
// where the device is CUDA and this build has none.
static Napi::Value SetAutocast(const Napi::CallbackInfo& info) {
  bool on = info[0].As<Napi::Boolean>().Value();
  std::string device = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "cuda";
  if (device != "cpu" && device != "cuda")
    throw Napi::TypeError::New(info.Env(), "setAutocast: device must be 'cpu' or 'cuda', got '" + device + "'");
#ifndef SPN_WITH_CUDA
  if (device == "cuda") return Napi::Boolean::New(info.Env(), false);
#endif
  EnableAutocast(device == "cpu" ? c10::DeviceType::CPU : c10::DeviceType::CUDA, on);
  return Napi::Boolean::New(info.Env(), true);
}

std::string ErrorText(const std::exception& e) {
  if (auto* c = dynamic_cast<const c10::Error*>(&e)) return c->what_without_backtrace();
  return e.what();
}

#define SPN_EXPORT(name, fn) exports.Set(name, Napi::Function::New<Guarded<fn>>(env, name))

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
#ifdef __GLIBC__
  // libtorch's CPU tensors come straight from malloc. glibc serves blocks above its mmap
  // threshold with fresh mmaps that the kernel must zero page by page, and unmaps them on free:
  // for the many short-lived activation buffers of a training step that costs more than the
  // math (measured: a transformer block step 11% slower from JS, whose tidy() scopes keep
  // intermediates alive a little longer than C++ scopes do). Keeping blocks up to 32 MB in the
  // heap, and trimming only past 256 MB free, lets freed buffers be reused.
  // glibc's own settings, where the environment gives them (MALLOC_MMAP_THRESHOLD_ and
  // MALLOC_TRIM_THRESHOLD_, read when malloc starts), are kept: a mallopt() here would override them.
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") == nullptr) mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  if (std::getenv("MALLOC_TRIM_THRESHOLD_") == nullptr) mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024);
#endif
  SPN_EXPORT("opLookup", OpLookup);
  SPN_EXPORT("opSchema", OpSchema);
  SPN_EXPORT("call", OpCall);
  SPN_EXPORT("fromBuffer", FromBuffer);
  SPN_EXPORT("toBuffer", ToBuffer);
  SPN_EXPORT("item", Item);
  SPN_EXPORT("shape", Shape);
  SPN_EXPORT("strides", Strides);
  SPN_EXPORT("dtype", Dtype);
  SPN_EXPORT("device", DeviceOf);
  SPN_EXPORT("requiresGrad", RequiresGrad);
  SPN_EXPORT("setRequiresGrad", SetRequiresGrad);
  SPN_EXPORT("grad", Grad);
  SPN_EXPORT("setGrad", SetGrad);
  SPN_EXPORT("backward", Backward);
  SPN_EXPORT("isLeaf", IsLeaf);
  SPN_EXPORT("dataPtr", DataPtr);
  SPN_EXPORT("free", Free);
  SPN_EXPORT("mallocTrim", MallocTrim);
  SPN_EXPORT("manualSeed", ManualSeed);
  SPN_EXPORT("getRngState", GetRngState);
  SPN_EXPORT("setRngState", SetRngState);
  SPN_EXPORT("setNumThreads", SetNumThreads);
  SPN_EXPORT("getNumThreads", GetNumThreads);
  SPN_EXPORT("setGradEnabled", SetGradEnabled);
  SPN_EXPORT("liveCount", LiveCount);
  SPN_EXPORT("info", Info);
  SPN_EXPORT("cudaSynchronize", CudaSynchronize);
  SPN_EXPORT("cudaMemory", CudaMemory);
  SPN_EXPORT("setAutocast", SetAutocast);
  SPN_EXPORT("benchBlock", BenchBlock);
  InitDist(env, exports);
  InitDecode(env, exports);
  return exports;
}

}  // namespace spn

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return spn::Init(env, exports); }

NODE_API_MODULE(spn_torch, InitModule)
