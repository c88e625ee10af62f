// Gradient averaging through c10d's Reducer, the engine of PyTorch's DistributedDataParallel, on
// a process group made by dist.cc. The Reducer puts the parameters into buckets
// (compute_bucket_assignment_by_size, DDP's 1 MB first bucket and 25 MB others by default) and
// hooks their gradient accumulators; during backward it copies each gradient, divided by the
// world size, into its bucket as it becomes ready and launches the bucket's asynchronous
// all-reduce as soon as the bucket is full, so communication overlaps the rest of backward. Its
// end-of-backward callback (queued on the autograd engine) waits for every bucket and copies the
// averages back into each parameter's .grad (gradient_as_bucket_view off: the JS optimizer reads
// p.grad). As DDP does, the buckets are rebuilt once, by the first prepareForBackward after the
// first reduced backward, in the order the gradients became ready (rank 0's order, broadcast).
//
// What spn adds around it, without touching its arithmetic:
//   - the ranks compare a signature of their parameter lists (count, sizes, dtypes, caps) before
//     anything else is exchanged (dist.cc's Agree), so mismatched lists fail on every rank
//     instead of hanging or aborting inside Gloo, and again (one small exchange) before each
//     reduced backward, so that a rank out of step gets an error rather than Gloo pairing a
//     bucket with another collective's buffer;
//   - hooks of its own, registered on the same gradient accumulators before the Reducer's, which
//     queue an engine callback that runs before the Reducer's finalize: it names the parameters
//     that got no gradient in this backward (the Reducer itself would only notice at the next
//     iteration, after the optimizer had used unreduced gradients), and it chains each bucket's
//     future so that a failed all-reduce names the rank, the bucket and c10d's reason;
//   - a second callback, queued behind the Reducer's finalize, that marks the iteration complete
//     and collects the Reducer's own timer readings (DDP's logging data: backward compute,
//     communication, their overlap).
// Failures on the engine's or Gloo's threads are recorded in the group's AsyncFailure, which
// breaks the group for every later collective; exceptions thrown in the engine callbacks come
// back out of backward() as JS errors (the addon's Guarded), never as an abort.
//
// Debian's libtorch-dev 1.13 ships reducer.hpp without the header it includes for RPC's
// distributed autograd (torch/csrc/distributed/autograd/context/context.h): without it the
// include fails ("fatal error: torch/csrc/distributed/autograd/context/context.h: No such file or
// directory"). build.mjs then writes a stand-in into the build folder (<out>/shim) that declares
// the two names reducer.hpp uses, with the library's types (see CONTEXT_STANDIN there).

#include "dist.h"

#include <torch/csrc/autograd/engine.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/csrc/distributed/c10d/reducer.hpp>

#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <tuple>
#include <unordered_map>

namespace spn {
namespace dist {
namespace {

using torch::autograd::variable_list;
using Future = c10::ivalue::Future;

// c10d::Reducer with read access to what it knows (its members are protected) and nothing else
// changed: the bucket layout, how far the reduction got, its futures and its timer.
class SpnReducer : public c10d::Reducer {
 public:
  using c10d::Reducer::Reducer;

  std::vector<std::vector<size_t>> Layout() const {
    std::vector<std::vector<size_t>> out;
    for (const auto& b : buckets_) out.push_back(b.variable_indices);
    return out;
  }
  size_t BucketCount() const { return buckets_.size(); }
  // Buckets whose all-reduce was launched in this backward (the Reducer launches them in order).
  size_t Launched() const { return next_bucket_; }
  bool InFlight() const {
    for (const auto& b : buckets_)
      if (b.future_work && !b.future_work->completed()) return true;
    return false;
  }
  // Replaces each bucket's future by wrap(index, parameters, bytes, future) before the
  // Reducer's finalize waits on them.
  template <typename F>
  void WrapFutures(F&& wrap) {
    for (size_t i = 0; i < buckets_.size(); i++) {
      auto& b = buckets_[i];
      if (!b.future_work) continue;
      int64_t bytes = b.gradients.defined() ? b.gradients.numel() * static_cast<int64_t>(b.gradients.element_size()) : 0;
      b.future_work = wrap(i, b.variable_indices.size(), bytes, b.future_work);
    }
  }
  // DDP's sampling of its runtime stats (every iteration up to the 10th, then every sample rate).
  bool Sampled() { return should_collect_runtime_stats(); }
  // Nanoseconds between two of the Reducer's timer events in the last iteration; -1 if unknown
  // or negative.
  int64_t Measure(c10d::Timer::Event a, c10d::Timer::Event b) {
    if (!timer_) return -1;
    auto d = timer_->measureDifference(a, b);
    return d ? *d : -1;
  }
  // Never rebuild the buckets: keeps the construction-time layout (and stops the Reducer
  // recording the order of gradients for a rebuild that will not come).
  void KeepLayout() { has_rebuilt_bucket_ = true; }
};

// What the binding, the hooks and the engine callbacks share. The callbacks run on the autograd
// engine's thread (the calling thread on CPU, a device thread on CUDA) and the future
// continuations on Gloo's or NCCL's threads, so everything here is under `mu`.
struct Shared {
  std::mutex mu;
  SpnReducer* reducer = nullptr;  // null once disposed
  std::string where;              // "backward on rank r of W, backend (reducer)"
  std::shared_ptr<AsyncFailure> groupFailure;
  std::string failure;  // this reducer's first failure
  bool findUnused = false;
  // The current iteration: armed by prepareForBackward until the end of its backward.
  bool armed = false;
  bool queued = false;     // EndOfBackward is queued
  bool finalized = false;  // the Reducer's finalize ran to its end
  std::vector<char> fired;
  size_t firedCount = 0;
  // Stats over the iterations the Reducer's timer sampled.
  int64_t reduced = 0;
  int64_t sampled = 0;
  double computeNs = 0, commNs = 0, overlapNs = 0;

  void Fail(const std::string& text) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (failure.empty()) failure = text;
    }
    groupFailure->Set(text);
  }
};

std::string FutureError(const Future& f) {
  try {
    std::rethrow_exception(f.exception_ptr());
  } catch (const std::exception& e) {
    return ErrorText(e);
  } catch (...) {
    return "unknown error";
  }
}

std::string Megabytes(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f MB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

std::string IndexList(const std::vector<size_t>& idx) {
  std::string s;
  for (size_t i = 0; i < idx.size() && i < 16; i++) s += (i ? ", " : "") + std::to_string(idx[i]);
  if (idx.size() > 16) s += ", ... (" + std::to_string(idx.size()) + " in all)";
  return s;
}

void AfterFinalize(const std::shared_ptr<Shared>& s);

// Queued by the first of our hooks to fire in a backward, so it runs when the graph is done and
// before the Reducer's finalize (queued later, by the Reducer's hook on the last gradient).
void EndOfBackward(const std::shared_ptr<Shared>& s) {
  SpnReducer* r = nullptr;
  std::string fail;
  {
    std::lock_guard<std::mutex> lock(s->mu);
    s->armed = false;
    r = s->reducer;
    if (r == nullptr) return;
    if (!s->findUnused && s->firedCount < s->fired.size()) {
      std::vector<size_t> missing;
      for (size_t i = 0; i < s->fired.size(); i++)
        if (!s->fired[i]) missing.push_back(i);
      fail = s->where + ": parameter" + (missing.size() == 1 ? " " : "s ") + IndexList(missing) + " (of " +
             std::to_string(s->fired.size()) + ") got no gradient in this backward, so " +
             (missing.size() == 1 ? "its bucket was" : "their buckets were") +
             " never all-reduced; every parameter given to the reducer must get a gradient in every backward on "
             "every rank (or pass findUnusedParameters: true)";
    } else if (r->Launched() < r->BucketCount()) {
      fail = s->where + ": only " + std::to_string(r->Launched()) + " of " + std::to_string(r->BucketCount()) +
             " buckets were all-reduced in this backward";
    }
  }
  if (!fail.empty()) {
    s->Fail(fail);
    throw std::runtime_error(fail);
  }
  const size_t count = r->BucketCount();
  r->WrapFutures([&](size_t i, size_t n, int64_t bytes, const c10::intrusive_ptr<Future>& parent) {
    std::string ctx = s->where + ": the all-reduce of bucket " + std::to_string(i) + " of " + std::to_string(count) +
                      " (" + std::to_string(n) + " parameter" + (n == 1 ? "" : "s") + ", " + Megabytes(bytes) + ") failed";
    return parent->then(
        [s, ctx](Future& f) -> c10::IValue {
          if (f.hasError()) {
            std::string msg = ctx + ": " + FutureError(f);
            s->Fail(msg);
            throw std::runtime_error(msg);
          }
          return f.value();
        },
        parent->elementType());
  });
  torch::autograd::Engine::get_default_engine().queue_callback([s] { AfterFinalize(s); });
}

// Queued by EndOfBackward, so it runs after the Reducer's finalize, and only if that succeeded.
void AfterFinalize(const std::shared_ptr<Shared>& s) {
  SpnReducer* r = nullptr;
  {
    std::lock_guard<std::mutex> lock(s->mu);
    s->finalized = true;
    s->reduced++;
    r = s->reducer;
  }
  if (r == nullptr || !r->Sampled()) return;
  using E = c10d::Timer::Event;
  int64_t compute = r->Measure(E::kBackwardComputeStart, E::kBackwardComputeEnd);
  int64_t comm = r->Measure(E::kBackwardCommStart, E::kBackwardCommEnd);
  int64_t overlap = r->Measure(E::kBackwardCommStart, E::kBackwardComputeEnd);
  if (compute < 0 || comm < 0) return;
  if (overlap < 0) overlap = 0;  // the first all-reduce started after the computation ended
  std::lock_guard<std::mutex> lock(s->mu);
  s->sampled++;
  s->computeNs += static_cast<double>(compute);
  s->commNs += static_cast<double>(comm);
  s->overlapNs += static_cast<double>(overlap);
}

// Our post hook on parameter i's gradient accumulator (registered before the Reducer's).
void OnGrad(const std::shared_ptr<Shared>& s, size_t i) {
  bool queue = false;
  {
    std::lock_guard<std::mutex> lock(s->mu);
    if (!s->armed) return;  // a backward without prepareForBackward: local accumulation, as DDP's no_sync
    if (!s->fired[i]) {
      s->fired[i] = 1;
      s->firedCount++;
    }
    if (!s->queued) queue = s->queued = true;
  }
  if (queue) torch::autograd::Engine::get_default_engine().queue_callback([s] { EndOfBackward(s); });
}

constexpr uint64_t kReducerMagic = 0x2b7e151628aed2a6ULL;

struct Handle final : Attachment {
  uint64_t magic = kReducerMagic;
  Group* group = nullptr;  // null once detached
  std::string where;       // "rank r of W, backend"
  std::string gone;        // why it cannot be used any more (disposed, group destroyed)
  std::shared_ptr<Shared> s = std::make_shared<Shared>();
  std::unique_ptr<SpnReducer> reducer;
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators;
  std::vector<uintptr_t> keys;
  bool inIteration = false;  // prepareForBackward was called at least once

  void RemoveHooks() {
    for (size_t i = 0; i < keys.size(); i++) {
      try {
        accumulators[i]->del_post_hook(keys[i]);
      } catch (const std::exception&) {
        // the node goes with its parameter anyway
      }
    }
    keys.clear();
    accumulators.clear();
  }

  void Detach() override { Close("the process group was destroyed (and the reducer with it)"); }

  void Close(const std::string& why) {
    if (!gone.empty()) return;
    gone = why;
    if (group != nullptr) {
      auto& list = group->attached;
      list.erase(std::remove(list.begin(), list.end(), static_cast<Attachment*>(this)), list.end());
      // A bucket all-reduce still in flight (a failed backward): the group cannot be torn down
      // safely (see dist.cc's Release).
      if (reducer && reducer->InFlight()) group->running = true;
    }
    {
      std::lock_guard<std::mutex> lock(s->mu);
      s->reducer = nullptr;
      s->armed = false;
    }
    try {
      reducer.reset();  // removes the Reducer's hooks; ~Reducer is noexcept(false)
    } catch (const std::exception&) {
      reducer.release();  // half destroyed: leaked rather than destroyed twice
    }
    RemoveHooks();
    group = nullptr;
  }
};

Handle* GetHandle(const Napi::Value& v) {
  Handle* h = v.IsExternal() ? v.As<Napi::External<Handle>>().Data() : nullptr;
  if (h == nullptr || h->magic != kReducerMagic) throw Napi::TypeError::New(v.Env(), "expected a reducer handle");
  return h;
}

// Marks the reducer and its group broken (on the JS thread).
void Break(Handle* h, const std::string& text) {
  h->s->Fail(text);
  if (h->group != nullptr) {
    SyncBroken(h->group);
    if (h->reducer && h->reducer->InFlight()) h->group->running = true;
  }
}

// Throws unless the reducer and its group can still be used.
void RequireUsable(Napi::Env env, Handle* h, const std::string& what) {
  if (!h->gone.empty()) throw Napi::Error::New(env, what + ": " + h->gone);
  RequireHealthy(env, h->group, what);
  std::lock_guard<std::mutex> lock(h->s->mu);
  if (!h->s->failure.empty()) throw Napi::Error::New(env, what + ": the reducer is unusable after an earlier failure (" + h->s->failure + ")");
}

bool BoolProp(const Napi::Object& o, const char* key, bool fallback) {
  return o.Has(key) && o.Get(key).IsBoolean() ? o.Get(key).As<Napi::Boolean>().Value() : fallback;
}
int64_t IntProp(const Napi::Object& o, const char* key) {
  return static_cast<int64_t>(o.Get(key).As<Napi::Number>().DoubleValue());
}

// reducerCreate(group, params[], {bucketCapBytes, firstBucketCapBytes, findUnusedParameters,
// rebuildBuckets, statsSampleRate, names[]}) -> handle
Napi::Value ReducerCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Group* g = GetGroup(info[0]);
  auto params = Tensors(info[1]);
  Napi::Object o = info[2].As<Napi::Object>();
  const int64_t cap = IntProp(o, "bucketCapBytes");
  const int64_t firstCap = IntProp(o, "firstBucketCapBytes");
  const bool findUnused = BoolProp(o, "findUnusedParameters", false);
  const bool rebuild = BoolProp(o, "rebuildBuckets", true);
  const int sampleRate = static_cast<int>(IntProp(o, "statsSampleRate"));
  const size_t n = params.size();
  std::string what = "reducer(" + std::to_string(n) + " parameters) on " + Where(g);
  RequireHealthy(env, g, what);
  if (n == 0) throw Napi::TypeError::New(env, what + ": expected at least one parameter");
  if (cap < 1 || firstCap < 1) throw Napi::TypeError::New(env, what + ": bucket caps must be at least 1 byte");

  std::unordered_map<size_t, std::string> names;
  Napi::Array nameList = o.Get("names").As<Napi::Array>();
  for (size_t i = 0; i < n; i++) names[i] = nameList.Get(static_cast<uint32_t>(i)).As<Napi::String>().Utf8Value();

  // The Reducer wants leaf tensors that require grad, dense, floating, one device, each once.
  std::unordered_map<const void*, size_t> seen;
  for (size_t i = 0; i < n; i++) {
    const auto& p = params[i];
    std::string at = what + ": " + names[i];
    if (!p.requires_grad() || !p.is_leaf())
      throw Napi::TypeError::New(env, at + " must be a leaf tensor that requires grad (a parameter), got " +
                                          (p.requires_grad() ? "a non-leaf tensor" : "a tensor without requires_grad"));
    if (!at::isFloatingType(p.scalar_type()) || p.layout() != c10::kStrided)
      throw Napi::TypeError::New(env, at + " must be a dense floating-point tensor, got " + std::string(c10::toString(p.scalar_type())));
    bool deviceOk = g->backend == "nccl" ? p.device() == g->device : p.device().is_cpu();
    if (!deviceOk)
      throw Napi::TypeError::New(env, at + " is on " + p.device().str() + "; the " + g->backend + " group works on " + g->device.str());
    auto [it, fresh] = seen.emplace(p.unsafeGetTensorImpl(), i);
    if (!fresh) throw Napi::TypeError::New(env, at + " is the same tensor as " + names[it->second]);
  }

  // Every rank must hand over the same parameter list: compared before anything else is sent.
  Signature sig{3, (findUnused ? 1 : 0) | (rebuild ? 2 : 0), static_cast<int64_t>(n)};
  for (const auto& p : params) {
    sig.Mix(p.dim());
    for (int64_t d : p.sizes()) sig.Mix(d);
    sig.Mix(static_cast<int64_t>(p.scalar_type()));
  }
  sig.Mix(cap);
  sig.Mix(firstCap);
  Agree(env, g, what, sig);

  auto h = std::make_unique<Handle>();
  h->where = Where(g);
  h->s->where = "backward on " + h->where + " (reducer)";
  h->s->groupFailure = g->async;
  h->s->findUnused = findUnused;
  h->s->fired.assign(n, 0);

  Checked(env, what, [&] {
    // DDP's assignment: buckets of one dtype and device, filled in parameter order, the first
    // closed at firstCap and the others at cap; then reversed, since gradients come roughly in
    // the reverse order of the parameters.
    std::vector<bool> sparse(n, false);
    std::vector<std::vector<size_t>> indices;
    std::vector<size_t> limits;
    std::tie(indices, limits) = c10d::compute_bucket_assignment_by_size(
        params, {static_cast<size_t>(firstCap), static_cast<size_t>(cap)}, sparse);
    std::reverse(indices.begin(), indices.end());
    std::reverse(limits.begin(), limits.end());

    // Our hooks first, so that each runs before the Reducer's on the same accumulator.
    for (size_t i = 0; i < n; i++) {
      auto acc = torch::autograd::impl::grad_accumulator(params[i]);
      if (!acc) throw std::runtime_error(names[i] + " has no gradient accumulator");
      auto s = h->s;
      h->keys.push_back(acc->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
          [s, i](const variable_list& outputs, const variable_list& /* inputs */) {
            OnGrad(s, i);
            return outputs;
          })));
      h->accumulators.push_back(std::move(acc));
    }
    try {
#if TORCH_VERSION_MAJOR >= 2
      // From 2.0 the Reducer takes the ProcessGroup front, which dispatches to per-device
      // Backends; ours is the group's Gloo or NCCL backend, registered for its device type as
      // torch.distributed does. The front's size is the divisor of the average.
      auto type = g->backend == "nccl" ? c10d::ProcessGroup::BackendType::NCCL : c10d::ProcessGroup::BackendType::GLOO;
      auto front = c10::make_intrusive<c10d::ProcessGroup>(g->store, g->rank, g->size);
      front->setBackend(g->backend == "nccl" ? c10::DeviceType::CUDA : c10::DeviceType::CPU, type, g->pg);
      front->setDefaultBackend(type);
      // 2.x (checked against 2.11): no per-bucket limits; then skip_all_reduce_unused_params,
      // use_python_reducer and bucket_bytes_cap_list (empty: rebuilds use the two caps).
      h->reducer = std::make_unique<SpnReducer>(params, indices, front, sparse, cap, findUnused,
                                                /*gradient_as_bucket_view=*/false, names, firstCap,
                                                /*skip_all_reduce_unused_params=*/false,
                                                /*use_python_reducer=*/false, std::vector<int64_t>{});
#else
      h->reducer = std::make_unique<SpnReducer>(params, indices, limits, g->pg, sparse, cap, findUnused,
                                                /*gradient_as_bucket_view=*/false, names, firstCap);
#endif
    } catch (...) {
      h->RemoveHooks();
      throw;
    }
    h->reducer->set_ddp_runtime_logging_sample_rate(sampleRate);
    if (!rebuild) h->reducer->KeepLayout();
  });
  {
    std::lock_guard<std::mutex> lock(h->s->mu);
    h->s->reducer = h->reducer.get();
  }
  h->group = g;
  g->attached.push_back(h.get());
  return Napi::External<Handle>::New(env, h.release(), [](Napi::Env, Handle* p) {
    p->Close("disposed");
    p->magic = 0;
    delete p;
  });
}

// reducerPrepare(handle, outputs[]): the ranks' agreement that a reduced backward comes, then
// DDP's prepare_for_forward, rebuild_buckets (once, a broadcast from rank 0) and
// prepare_for_backward; the next backward's gradients are reduced.
Napi::Value ReducerPrepare(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Handle* h = GetHandle(info[0]);
  std::string what = "prepareForBackward on " + h->where + " (reducer)";
  RequireUsable(env, h, what);
  auto outputs = Tensors(info[1]);
  // A prepared iteration whose backward started reducing (some gradient came) but did not finish:
  // buckets may be in flight and the ranks out of step. One where no gradient came (no backward
  // ran, e.g. a step skipped for a NaN loss) launched nothing and is simply prepared again.
  bool unfinished;
  {
    std::lock_guard<std::mutex> lock(h->s->mu);
    unfinished = h->inIteration && !h->s->finalized && h->s->firedCount > 0;
  }
  if (unfinished) {
    std::string text = what + ": the previous backward did not finish reducing its gradients (it failed after its "
                              "first gradients came), so the ranks may be out of step";
    Break(h, text);
    throw Napi::Error::New(env, text);
  }
  // The ranks about to run a reduced backward compare notes first: the Reducer's bucket
  // all-reduces (and the rebuild's broadcasts) skip dist.cc's per-collective comparison, and a
  // rank that meanwhile calls another collective would pair buffers of other sizes with them,
  // which Gloo answers by aborting the process. One small exchange per step (the same as every
  // other collective's) turns that into an error on every rank.
  Signature sig{4, h->s->findUnused ? 1 : 0, static_cast<int64_t>(h->s->fired.size())};
  Agree(env, h->group, what, sig);
  try {
    h->reducer->prepare_for_forward();
    h->reducer->rebuild_buckets();
    {
      std::lock_guard<std::mutex> lock(h->s->mu);
      h->s->armed = true;
      h->s->queued = false;
      h->s->finalized = false;
      std::fill(h->s->fired.begin(), h->s->fired.end(), 0);
      h->s->firedCount = 0;
    }
    h->reducer->prepare_for_backward(outputs);
  } catch (const std::exception& e) {
    std::string text = what + ": " + ErrorText(e);
    Break(h, text);
    throw Napi::Error::New(env, text);
  }
  h->inIteration = true;
  return env.Undefined();
}

// reducerFinish(handle, backwardError|null) -> null, or the E_DIST message: after a backward,
// whether its gradients were reduced (TS's Reducer.backward calls it).
Napi::Value ReducerFinish(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Handle* h = GetHandle(info[0]);
  std::string err = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  std::string prefix = "backward on " + h->where + " (reducer)";
  if (!h->gone.empty()) return Napi::String::New(env, prefix + ": " + h->gone);
  std::string failure;
  bool finalized;
  {
    std::lock_guard<std::mutex> lock(h->s->mu);
    failure = h->s->failure;
    finalized = h->s->finalized;
  }
  if (err.empty() && finalized && failure.empty()) return env.Null();
  std::string text = !failure.empty() ? failure
                     : !err.empty()   ? prefix + ": backward failed before its gradients were reduced: " + err
                                      : prefix + ": no parameter got a gradient in this backward, so nothing was reduced "
                                                 "(does the loss depend on the parameters?)";
  Break(h, text);
  return Napi::String::New(env, text);
}

// reducerBuckets(handle) -> parameter indices per bucket, in the order they are all-reduced.
Napi::Value ReducerBuckets(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Handle* h = GetHandle(info[0]);
  if (!h->gone.empty()) throw Napi::Error::New(env, "buckets on " + h->where + " (reducer): " + h->gone);
  auto out = Napi::Array::New(env);
  for (const auto& b : h->reducer->Layout()) {
    auto a = Napi::Array::New(env, b.size());
    for (size_t i = 0; i < b.size(); i++) a.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(b[i])));
    out.Set(out.Length(), a);
  }
  return out;
}

// reducerStats(handle) -> {iterations, sampled, computeMs, commMs, overlapMs} (averages over the
// sampled iterations; null when none was sampled).
Napi::Value ReducerStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Handle* h = GetHandle(info[0]);
  auto out = Napi::Object::New(env);
  std::lock_guard<std::mutex> lock(h->s->mu);
  const double k = h->s->sampled > 0 ? 1e-6 / static_cast<double>(h->s->sampled) : 0;
  auto avg = [&](double ns) -> Napi::Value { return h->s->sampled > 0 ? Napi::Number::New(env, ns * k) : env.Null(); };
  out.Set("iterations", Napi::Number::New(env, static_cast<double>(h->s->reduced)));
  out.Set("sampled", Napi::Number::New(env, static_cast<double>(h->s->sampled)));
  out.Set("computeMs", avg(h->s->computeNs));
  out.Set("commMs", avg(h->s->commNs));
  out.Set("overlapMs", avg(h->s->overlapNs));
  return out;
}

Napi::Value ReducerDispose(const Napi::CallbackInfo& info) {
  GetHandle(info[0])->Close("the reducer was disposed");
  return info.Env().Undefined();
}

}  // namespace

void InitReducer(Napi::Env env, Napi::Object exports) {
  exports.Set("reducerCreate", Napi::Function::New<Guarded<ReducerCreate>>(env, "reducerCreate"));
  exports.Set("reducerPrepare", Napi::Function::New<Guarded<ReducerPrepare>>(env, "reducerPrepare"));
  exports.Set("reducerFinish", Napi::Function::New<Guarded<ReducerFinish>>(env, "reducerFinish"));
  exports.Set("reducerBuckets", Napi::Function::New<Guarded<ReducerBuckets>>(env, "reducerBuckets"));
  exports.Set("reducerStats", Napi::Function::New<Guarded<ReducerStats>>(env, "reducerStats"));
  exports.Set("reducerDispose", Napi::Function::New<Guarded<ReducerDispose>>(env, "reducerDispose"));
}

}  // namespace dist
}  // namespace spn
