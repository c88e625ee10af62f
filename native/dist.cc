// Data-parallel training on c10d, libtorch's own distributed engine: a TCPStore for the
// rendezvous (rank 0 hosts it, every rank connects to MASTER_ADDR:MASTER_PORT), a Gloo process
// group on CPU or an NCCL one where libtorch has CUDA, and the collectives a synchronous trainer
// needs. Nothing here opens a socket or moves a byte itself: c10d does all of it.
//
// Every entry point turns failures into JS exceptions that say what was being done (which
// collective, rank, peer address, timeout) followed by c10d's own message. A failed collective
// leaves the ranks out of step, so it marks the group broken: later collectives refuse to run
// and name the first failure. Gloo runs collectives on its own threads and hands their
// exceptions back through the Work object, so no exception escapes on a background thread.
//
// Calls block the JS thread until c10d returns (training is synchronous); each is bounded by the
// group's timeout (c10d's per-operation timeout, plus a backstop on the wait itself).
//
// Gradients go through c10d's Reducer (DDP's engine) in reducer.cc, on a group made here.

#include "dist.h"

#include <ATen/core/grad_mode.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>
#ifndef SPN_NO_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef SPN_WITH_CUDA
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <cstdlib>
#include <sstream>
#include <thread>

namespace spn {
namespace dist {
namespace {

using std::chrono::milliseconds;

}  // namespace

Group* GetGroup(const Napi::Value& v, bool allowDestroyed) {
  Group* g = v.IsExternal() ? v.As<Napi::External<Group>>().Data() : nullptr;
  if (g == nullptr || g->magic != kGroupMagic) throw Napi::TypeError::New(v.Env(), "expected a process group handle");
  if (g->destroyed && !allowDestroyed) throw Napi::Error::New(v.Env(), "the process group was destroyed");
  return g;
}

std::string Where(const Group* g) {
  return "rank " + std::to_string(g->rank) + " of " + std::to_string(g->size) + ", " + g->backend;
}

void SyncBroken(Group* g) {
  if (g->broken.empty()) g->broken = g->async->Get();
}

void RequireHealthy(Napi::Env env, Group* g, const std::string& what) {
  SyncBroken(g);
  if (!g->broken.empty())
    throw Napi::Error::New(env, what + ": the process group is unusable after an earlier failure (" + g->broken + ")");
}

namespace {

// Tears a group down. A process group whose collective is still running (it outlived the wait's
// backstop) cannot be destroyed safely: its destructor joins the threads running it. Such a group
// is leaked on purpose, threads and sockets with it, until the process exits.
void Release(Group* g) {
  if (g->destroyed) return;
  g->destroyed = true;
  // Reducers first: they hold the backend and hooks on parameters; one whose bucket all-reduce
  // is still in flight marks the group running.
  auto attached = std::move(g->attached);
  for (Attachment* a : attached) a->Detach();
#if defined(SPN_WITH_CUDA) && (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4))
  // From libtorch 2.4 an NCCL backend is shut down (or aborted, when a collective failed) before
  // it is destroyed; its destructor otherwise warns and cleans up the slow way.
  if (g->backend == "nccl" && g->pg) {
    try {
      if (g->broken.empty() && !g->running) g->pg->shutdown();
      else g->pg->abort();
    } catch (const std::exception&) {
      // the process group goes anyway
    }
  }
#endif
  if (g->running) {
    g->pg.release();  // intentionally leaked (see above)
    g->store.release();
    return;
  }
  g->pg.reset();
  g->store.reset();
}

std::string Seconds(milliseconds ms) {
  std::ostringstream s;
  s << static_cast<double>(ms.count()) / 1000.0 << "s";
  return s.str();
}


std::string StringProp(const Napi::Object& o, const char* key) {
  return o.Get(key).As<Napi::String>().Utf8Value();
}
int64_t IntProp(const Napi::Object& o, const char* key) {
  return static_cast<int64_t>(o.Get(key).As<Napi::Number>().DoubleValue());
}

bool IsLoopback(const std::string& addr) {
  return addr == "localhost" || addr == "::1" || addr.rfind("127.", 0) == 0;
}

// Every rank checks in under its own key and waits until all have: a rank that never comes (not
// started, another MASTER_PORT or WORLD_SIZE) is named, and a rank started twice is refused.
void Join(Napi::Env env, Group* g, std::chrono::steady_clock::time_point deadline) {
  const std::string what = "rendezvous at " + g->master + ": rank " + std::to_string(g->rank) + " of " +
                           std::to_string(g->size);
  auto& store = g->store;
  Checked(env, what, [&] {
    if (store->add("spn/join/" + std::to_string(g->rank), 1) > 1)
      throw std::runtime_error("another process already joined as rank " + std::to_string(g->rank) +
                               " (each rank needs its own RANK)");
    int64_t n = store->add("spn/joined", 1);
    while (n < g->size) {
      if (std::chrono::steady_clock::now() > deadline) {
        std::string missing;
        int count = 0;
        for (int r = 0; r < g->size; r++) {
          if (store->check({"spn/join/" + std::to_string(r)})) continue;
          if (count++ < 16) missing += (missing.empty() ? "" : ", ") + std::to_string(r);
        }
        if (count > 16) missing += ", ...";
        throw std::runtime_error("timed out after " + Seconds(g->timeout) + " waiting for the other ranks: " +
                                 std::to_string(n) + " of " + std::to_string(g->size) + " joined; missing rank" +
                                 (count == 1 ? " " : "s ") + missing +
                                 " (were they started, with the same MASTER_ADDR, MASTER_PORT and WORLD_SIZE?)");
      }
      std::this_thread::sleep_for(milliseconds(10));
      n = store->add("spn/joined", 0);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// initProcessGroup({backend, rank, worldSize, masterAddr, masterPort, timeoutMs}) -> handle

#ifndef SPN_NO_GLOO
c10::intrusive_ptr<PG> MakeGloo(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                 milliseconds timeout, const std::string& masterAddr) {
  auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
  // As torch.distributed does: GLOO_SOCKET_IFNAME picks the interfaces (comma-separated);
  // otherwise the address this host's name resolves to. A loopback master means every rank runs
  // on this machine, so the loopback interface serves (and works without a resolvable hostname).
  const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
  if (ifname != nullptr && *ifname != '\0') {
    std::stringstream list(ifname);
    std::string name;
    while (std::getline(list, name, ','))
      if (!name.empty()) opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(name));
  } else if (IsLoopback(masterAddr)) {
    opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  } else {
    opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  }
  opts->threads = static_cast<int>(opts->devices.size()) * 2;
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, opts);
}
#endif

#ifdef SPN_WITH_CUDA
c10::intrusive_ptr<PG> MakeNccl(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                 milliseconds timeout, c10::Device device) {
  // TORCH_NCCL_BLOCKING_WAIT is set when the addon loads (InitDist).
  auto opts = c10d::ProcessGroupNCCL::Options::create();
  opts->timeout = timeout;
  if (device.is_cuda() && device.has_index()) c10::cuda::set_device(device.index());
  return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, opts);
}
#endif

std::string BackendNote() {
  std::string note;
#ifdef SPN_NO_GLOO
  note = "no 'gloo': the addon was built without Gloo's headers; apt-get install libgloo-dev and rebuild";
#endif
#ifndef SPN_WITH_CUDA
  note += std::string(note.empty() ? "" : "; ") + "no 'nccl': libtorch without CUDA";
#endif
  return note;
}

Napi::Value DistInit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = info[0].As<Napi::Object>();
  auto g = std::make_unique<Group>();
  g->backend = StringProp(o, "backend");
  g->rank = static_cast<int>(IntProp(o, "rank"));
  g->size = static_cast<int>(IntProp(o, "worldSize"));
  g->timeout = milliseconds(IntProp(o, "timeoutMs"));
  std::string addr = StringProp(o, "masterAddr");
  if (o.Has("device") && o.Get("device").IsString()) {
    std::string dev = StringProp(o, "device");
    g->device = Checked(env, "device '" + dev + "'", [&] { return c10::Device(dev); });
  }
  auto port = static_cast<uint16_t>(IntProp(o, "masterPort"));
  g->master = addr + ":" + std::to_string(port);

  c10d::TCPStoreOptions so;
  so.port = port;
  so.isServer = g->rank == 0;
  so.waitWorkers = false;  // Join() below waits, with a deadline and a message naming the missing ranks
  so.timeout = g->timeout;
  std::string what = g->rank == 0
      ? "TCPStore: rank 0 hosting the rendezvous on port " + std::to_string(port) + " for " +
            std::to_string(g->size) + " ranks (timeout " + Seconds(g->timeout) + ")"
      : "TCPStore: rank " + std::to_string(g->rank) + " joining the rendezvous at " + g->master +
            " (timeout " + Seconds(g->timeout) + ")";
  g->store = Checked(env, what, [&]() -> c10::intrusive_ptr<c10d::Store> {
    return c10::make_intrusive<c10d::TCPStore>(addr, so);
  });
  Join(env, g.get(), std::chrono::steady_clock::now() + g->timeout);
  auto pgStore = c10::make_intrusive<c10d::PrefixStore>("spn/pg", g->store);

  what = "ProcessGroup" + std::string(g->backend == "nccl" ? "NCCL" : "Gloo") + ": " + Where(g.get()) +
         ", connecting to the other ranks through " + g->master + " (timeout " + Seconds(g->timeout) + ")";
  g->pg = Checked(env, what, [&]() -> c10::intrusive_ptr<PG> {
#ifndef SPN_NO_GLOO
    if (g->backend == "gloo") return MakeGloo(pgStore, g->rank, g->size, g->timeout, addr);
#endif
#ifdef SPN_WITH_CUDA
    if (g->backend == "nccl") return MakeNccl(pgStore, g->rank, g->size, g->timeout, g->device);
#endif
    throw std::runtime_error("backend '" + g->backend + "' is not in this build (" + BackendNote() + ")");
  });
  return Napi::External<Group>::New(env, g.release(), [](Napi::Env, Group* p) {
    Release(p);
    p->magic = 0;
    delete p;
  });
}

// ---------------------------------------------------------------------------------------------
// Collectives. Tensors are gathered into buckets (one dtype and device each, about bucketBytes
// each; bucketBytes <= 0: one tensor per bucket); a bucket of one contiguous tensor is reduced
// in place, others are flattened into one buffer and copied back. Every bucket's collective is
// launched before the first wait, so c10d overlaps them.

// What a rank is about to do, compared across ranks before anything is sent (Agree below).
}  // namespace

std::string Signature::Str() const {
  static const char* kOps[] = {"sum", "max", "min"};
  if (kind == 1) return "allReduce(" + std::string(param >= 0 && param < 3 ? kOps[param] : "?") + ", " + std::to_string(count) + " tensors)";
  if (kind == 2) return "broadcast(root " + std::to_string(param) + ", " + std::to_string(count) + " tensors)";
  if (kind == 3) return "reducer(" + std::to_string(count) + " parameters)";
  if (kind == 4) return "prepareForBackward(" + std::to_string(count) + " parameters)";
  return "unknown collective " + std::to_string(kind);
}

namespace {

struct Bucket {
  std::vector<size_t> members;
  at::Tensor buffer;
  bool inPlace = false;
  c10::intrusive_ptr<c10d::Work> work;
};

// The dtype a tensor travels in. Gloo has no int16 reductions, and in libtorch 1.13 no bool or
// bfloat16 ones either; NCCL has no int16. Such tensors go through a buffer of a wider type:
// bool as uint8 (sum and max act as a logical or, min as a logical and), bfloat16 as float32 on
// Gloo in every version (the sum is then rounded once, not at every step of the reduction).
c10::ScalarType WireType(const Group* g, c10::ScalarType t) {
  if (t == at::kShort) return at::kInt;
  if (g->backend == "gloo") {
    if (t == at::kBool) return at::kByte;
    if (t == at::kBFloat16) return at::kFloat;
  }
  return t;
}

std::vector<Bucket> MakeBuckets(const Group* g, const std::vector<at::Tensor>& ts, double bucketBytes, Signature& sig) {
  std::vector<Bucket> buckets;
  std::vector<size_t> open;  // per (dtype, device): index of its open bucket
  std::vector<std::pair<c10::ScalarType, c10::Device>> keys;
  std::vector<double> fill;
  for (size_t i = 0; i < ts.size(); i++) {
    const auto& t = ts[i];
    double bytes = static_cast<double>(t.numel()) * static_cast<double>(t.element_size());
    size_t k = 0;
    while (k < keys.size() && !(keys[k].first == t.scalar_type() && keys[k].second == t.device())) k++;
    if (bucketBytes <= 0 || k == keys.size() || fill[k] + bytes > bucketBytes) {
      if (k == keys.size()) {
        keys.emplace_back(t.scalar_type(), t.device());
        open.push_back(0);
        fill.push_back(0);
      }
      buckets.emplace_back();
      open[k] = buckets.size() - 1;
      fill[k] = 0;
    }
    buckets[open[k]].members.push_back(i);
    fill[k] += bytes;
    sig.Mix(t.numel());
    sig.Mix(static_cast<int64_t>(t.scalar_type()));
    sig.Mix(static_cast<int64_t>(open[k]));
  }
  for (auto& b : buckets) {
    const auto& first = ts[b.members[0]];
    auto wire = WireType(g, first.scalar_type());
    if (b.members.size() == 1 && first.is_contiguous() && wire == first.scalar_type()) {
      b.buffer = first;
      b.inPlace = true;
    } else {
      std::vector<at::Tensor> flat;
      flat.reserve(b.members.size());
      for (size_t i : b.members) flat.push_back(ts[i].reshape({-1}));
      b.buffer = at::cat(flat, 0).to(wire);
    }
  }
  return buckets;
}

void CopyBack(std::vector<Bucket>& buckets, std::vector<at::Tensor>& ts, c10::optional<double> scale) {
  for (auto& b : buckets) {
    if (scale) b.buffer.mul_(*scale);
    if (b.inPlace) continue;
    int64_t off = 0;
    for (size_t i : b.members) {
      auto& t = ts[i];
      int64_t n = t.numel();
      t.copy_(b.buffer.narrow(0, off, n).view(t.sizes()));
      off += n;
    }
  }
}

}  // namespace

std::vector<at::Tensor> Tensors(const Napi::Value& v) {
  auto a = v.As<Napi::Array>();
  std::vector<at::Tensor> out;
  out.reserve(a.Length());
  for (uint32_t i = 0; i < a.Length(); i++) out.push_back(Unwrap(a.Get(i)));
  return out;
}

namespace {

// The wait on each Work is bounded too, in case a collective hangs where c10d's own timeout
// does not reach; the collective then stays in flight and the group is leaked on destroy.
milliseconds Backstop(const Group* g) { return g->timeout * 2 + milliseconds(10000); }

// --- agreement -----------------------------------------------------------------------------------
// Gloo aborts the process (an enforce on its I/O thread) when two ranks exchange buffers of
// different sizes, and ranks that call different collectives deadlock or corrupt each other.
// So every collective starts with a small fixed-size exchange of what each rank is about to do:
// rank r writes its signature into row r of a [size, 3] int64 tensor of zeros and the group sums
// it, so every rank sees every signature. On a mismatch every rank throws the same error before
// anything else was sent, naming the ranks that differ; the group stays usable.

constexpr int64_t kMask = (int64_t{1} << 62) - 1;

}  // namespace

void Agree(Napi::Env env, Group* g, const std::string& what, const Signature& sig) {
  const int64_t mine[3] = {(sig.kind << 32) | (sig.param & 0xffffffff), sig.count,
                           static_cast<int64_t>(sig.hash & static_cast<uint64_t>(kMask))};
  at::Tensor table = at::zeros({g->size, 3}, at::kLong);
  auto cells = table.accessor<int64_t, 2>();
  for (int i = 0; i < 3; i++) cells[g->rank][i] = mine[i];
  c10::intrusive_ptr<c10d::Work> work;
  std::string error;
  try {
    std::vector<at::Tensor> one{g->device.is_cpu() ? table : table.to(g->device)};
    work = g->pg->allreduce(one, c10d::AllreduceOptions());
    work->wait(Backstop(g));
    table = one[0].cpu();
  } catch (const std::exception& e) {
    error = ErrorText(e);
  }
  if (!error.empty()) {
    if (work && !work->isCompleted()) g->running = true;
    g->broken = what + ": " + error;
    throw Napi::Error::New(env, g->broken);
  }
  auto acc = table.accessor<int64_t, 2>();
  std::vector<int> differ;
  for (int r = 0; r < g->size; r++)
    if (acc[r][0] != acc[0][0] || acc[r][1] != acc[0][1] || acc[r][2] != acc[0][2]) differ.push_back(r);
  if (differ.empty()) return;
  auto describe = [&](int r) {
    Signature s;
    s.kind = acc[r][0] >> 32;
    s.param = static_cast<int32_t>(acc[r][0] & 0xffffffff);
    s.count = acc[r][1];
    return "rank " + std::to_string(r) + " called " + s.Str();
  };
  std::string msg = what + ": the ranks disagree on this collective: " + describe(0);
  for (size_t i = 0; i < differ.size() && i < 8; i++) {
    int r = differ[i];
    bool sameCall = acc[r][0] == acc[0][0] && acc[r][1] == acc[0][1];
    msg += ", " + describe(r) + (sameCall ? " with other tensor sizes, dtypes or bucket size" : "");
  }
  if (differ.size() > 8) msg += ", ...";
  throw Napi::Error::New(env, msg + " (nothing was exchanged; every rank must issue the same collectives in the same order)");
}

namespace {

// Launches one collective per bucket and waits for all of them. On the first failure the group
// is marked broken, the other works are given a moment to finish, and the error is thrown.
template <typename Launch>
void RunBuckets(Napi::Env env, Group* g, const std::string& what, std::vector<Bucket>& buckets, Launch launch) {
  size_t launched = 0;
  std::string error;
  try {
    for (auto& b : buckets) {
      std::vector<at::Tensor> one{b.buffer};
      b.work = launch(one);
      launched++;
    }
  } catch (const std::exception& e) {
    error = ErrorText(e);
    if (launched == 0) throw Napi::Error::New(env, what + ": " + error);  // nothing started: no harm done
  }
  for (size_t i = 0; i < launched; i++) {
    auto& w = buckets[i].work;
    try {
      w->wait(error.empty() ? Backstop(g) : milliseconds(100));
    } catch (const std::exception& e) {
      if (error.empty()) error = ErrorText(e);
    }
    if (!w->isCompleted()) g->running = true;
  }
  if (!error.empty()) {
    g->broken = what + ": " + error;
    throw Napi::Error::New(env, g->broken);
  }
}

c10d::ReduceOp ReduceOpOf(Napi::Env env, const std::string& op) {
  if (op == "sum") return c10d::ReduceOp::SUM;
  if (op == "max") return c10d::ReduceOp::MAX;
  if (op == "min") return c10d::ReduceOp::MIN;
  throw Napi::TypeError::New(env, "reduce op must be 'sum', 'max' or 'min', got '" + op + "'");
}

// allReduce(group, tensors[], op, bucketBytes, scale|null): in place on every tensor.
Napi::Value DistAllReduce(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Group* g = GetGroup(info[0]);
  auto ts = Tensors(info[1]);
  std::string opName = info[2].As<Napi::String>().Utf8Value();
  double bucketBytes = info[3].As<Napi::Number>().DoubleValue();
  c10::optional<double> scale;
  if (info[4].IsNumber()) scale = info[4].As<Napi::Number>().DoubleValue();
  std::string what = "allReduce(" + opName + ", " + std::to_string(ts.size()) + " tensors) on " + Where(g);
  RequireHealthy(env, g, what);
  c10d::AllreduceOptions opts;
  opts.reduceOp = ReduceOpOf(env, opName);
  at::NoGradGuard noGrad;
  Signature sig{1, opName == "sum" ? 0 : opName == "max" ? 1 : 2, static_cast<int64_t>(ts.size())};
  auto buckets = Checked(env, what, [&] { return MakeBuckets(g, ts, bucketBytes, sig); });
  Agree(env, g, what, sig);
  RunBuckets(env, g, what, buckets, [&](std::vector<at::Tensor>& one) { return g->pg->allreduce(one, opts); });
  Checked(env, what, [&] { CopyBack(buckets, ts, scale); });
  return env.Undefined();
}

// broadcast(group, tensors[], root, bucketBytes): root's values into every rank's tensors.
Napi::Value DistBroadcast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Group* g = GetGroup(info[0]);
  auto ts = Tensors(info[1]);
  int root = info[2].As<Napi::Number>().Int32Value();
  double bucketBytes = info[3].As<Napi::Number>().DoubleValue();
  std::string what = "broadcast(root " + std::to_string(root) + ", " + std::to_string(ts.size()) + " tensors) on " + Where(g);
  RequireHealthy(env, g, what);
  c10d::BroadcastOptions opts;
  opts.rootRank = root;
  at::NoGradGuard noGrad;
  Signature sig{2, root, static_cast<int64_t>(ts.size())};
  auto buckets = Checked(env, what, [&] { return MakeBuckets(g, ts, bucketBytes, sig); });
  Agree(env, g, what, sig);
  RunBuckets(env, g, what, buckets, [&](std::vector<at::Tensor>& one) { return g->pg->broadcast(one, opts); });
  if (g->rank != root) Checked(env, what, [&] { CopyBack(buckets, ts, c10::nullopt); });
  return env.Undefined();
}

Napi::Value DistDestroy(const Napi::CallbackInfo& info) {
  Group* g = GetGroup(info[0], true);
  Checked(info.Env(), "destroy on " + Where(g), [&] { Release(g); });
  return info.Env().Undefined();
}

// {broken: string|null}: the first collective failure that broke the group.
Napi::Value DistState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Group* g = GetGroup(info[0], true);
  SyncBroken(g);
  auto out = Napi::Object::New(env);
  out.Set("broken", g->broken.empty() ? env.Null() : Napi::String::New(env, g->broken));
  return out;
}

// distBackendNote() -> why a backend is missing from this build ('' when both are there).
Napi::Value DistBackendNote(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), BackendNote()); }

// The backends this build can create.
Napi::Value DistBackends(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto out = Napi::Array::New(env);
#ifndef SPN_NO_GLOO
  out.Set(out.Length(), Napi::String::New(env, "gloo"));
#endif
#ifdef SPN_WITH_CUDA
  out.Set(out.Length(), Napi::String::New(env, "nccl"));
#endif
  return out;
}

}  // namespace
}  // namespace dist

void InitDist(Napi::Env env, Napi::Object exports) {
  using namespace dist;
#ifdef SPN_WITH_CUDA
  // With blocking wait, an NCCL collective that times out throws from Work::wait on the calling
  // thread; without it, ProcessGroupNCCL's watchdog thread takes the whole process down instead.
  // Set once here, while the addon loads, not when a group is made (setenv while other threads
  // may read the environment is a data race). An explicit setting in the environment wins.
  if (std::getenv("TORCH_NCCL_BLOCKING_WAIT") == nullptr && std::getenv("NCCL_BLOCKING_WAIT") == nullptr)
    setenv("TORCH_NCCL_BLOCKING_WAIT", "1", 0);
#endif
  exports.Set("distInit", Napi::Function::New<Guarded<DistInit>>(env, "distInit"));
  exports.Set("distAllReduce", Napi::Function::New<Guarded<DistAllReduce>>(env, "distAllReduce"));
  exports.Set("distBroadcast", Napi::Function::New<Guarded<DistBroadcast>>(env, "distBroadcast"));
  exports.Set("distDestroy", Napi::Function::New<Guarded<DistDestroy>>(env, "distDestroy"));
  exports.Set("distState", Napi::Function::New<Guarded<DistState>>(env, "distState"));
  exports.Set("distBackends", Napi::Function::New<Guarded<DistBackends>>(env, "distBackends"));
  exports.Set("distBackendNote", Napi::Function::New<Guarded<DistBackendNote>>(env, "distBackendNote"));
  InitReducer(env, exports);
}

}  // namespace spn
