// Declarations shared by the addon's two c10d translation units: dist.cc (the process group and
// its collectives) and reducer.cc (c10d's Reducer, DDP's gradient engine, on such a group).
#pragma once

// SPN_NO_GLOO (set by build.mjs when Gloo's headers, Debian's libgloo-dev, are missing): no
// 'gloo' backend in this build.
#if !defined(SPN_NO_GLOO) && !defined(USE_C10D_GLOO)
#define USE_C10D_GLOO  // ProcessGroupGloo.hpp is empty without it
#endif
#ifdef SPN_WITH_CUDA
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL
#endif
#endif

#include <napi.h>

#include <ATen/ATen.h>
#include <torch/csrc/api/include/torch/version.h>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>  // and Backend.hpp from 2.0 on
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "spn_torch.h"

namespace spn {
namespace dist {

// libtorch 2.0 split the process group into a ProcessGroup front and per-device Backends;
// ProcessGroupGloo and ProcessGroupNCCL became Backends with the same collective methods.
#if TORCH_VERSION_MAJOR >= 2
using PG = c10d::Backend;
#else
using PG = c10d::ProcessGroup;
#endif

// A failure seen off the JS thread (on an autograd engine or Gloo thread, during backward): the
// first one is kept, and the JS thread turns it into the group's `broken` at its next call.
struct AsyncFailure {
  std::mutex mu;
  std::string text;
  void Set(const std::string& t) {
    std::lock_guard<std::mutex> lock(mu);
    if (text.empty()) text = t;
  }
  std::string Get() {
    std::lock_guard<std::mutex> lock(mu);
    return text;
  }
};

// Something that lives on a group and must go before it (a reducer holds the group's backend
// and hooks on the parameters' gradient accumulators).
struct Attachment {
  virtual void Detach() = 0;
  virtual ~Attachment() = default;
};

constexpr uint64_t kGroupMagic = 0x5d1c0a7e3b9f2e41ULL;

struct Group {
  uint64_t magic = kGroupMagic;
  std::string backend;
  int rank = 0;
  int size = 1;
  std::chrono::milliseconds timeout{0};
  std::string master;                     // "addr:port", for messages
  c10::intrusive_ptr<c10d::Store> store;  // the TCPStore
  c10::intrusive_ptr<PG> pg;
  c10::Device device{c10::kCPU};  // where the group's own small tensors live (CUDA for NCCL)
  std::string broken;    // the first collective failure; empty while the group is healthy
  bool running = false;  // a collective may still be running on c10d's threads
  bool destroyed = false;
  std::shared_ptr<AsyncFailure> async = std::make_shared<AsyncFailure>();
  std::vector<Attachment*> attached;  // detached (and so destroyed) before the group goes
};

// What a rank is about to do, compared across ranks before anything is sent (Agree).
struct Signature {
  int64_t kind = 0;   // 1 all-reduce, 2 broadcast, 3 reducer construction, 4 a reduced backward
  int64_t param = 0;  // the reduce op, the broadcast's root, the reducer's flags
  int64_t count = 0;  // number of tensors
  uint64_t hash = 14695981039346656037ULL;  // FNV-1a over sizes, dtypes, bucket sizes
  void Mix(int64_t v) {
    for (int i = 0; i < 8; i++) {
      hash ^= static_cast<uint64_t>(v >> (8 * i)) & 0xff;
      hash *= 1099511628211ULL;
    }
  }
  std::string Str() const;
};

// The group behind a handle; a TypeError for anything else, an Error once destroyed.
Group* GetGroup(const Napi::Value& v, bool allowDestroyed = false);
// "rank r of W, backend".
std::string Where(const Group* g);
// Moves a failure recorded off the JS thread into g->broken.
void SyncBroken(Group* g);
// Throws "<what>: the process group is unusable after an earlier failure (...)" once broken.
void RequireHealthy(Napi::Env env, Group* g, const std::string& what);
// Every rank compares its signature with every other's in one small fixed-size all-reduce; a
// mismatch throws on every rank, naming the ranks that differ, with nothing else exchanged.
void Agree(Napi::Env env, Group* g, const std::string& what, const Signature& sig);
std::vector<at::Tensor> Tensors(const Napi::Value& v);

// Runs fn; any C++ exception becomes a JS Error "<what>: <c10d's message>".
template <typename F>
auto Checked(Napi::Env env, const std::string& what, F&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, what + ": " + ErrorText(e));
  } catch (...) {
    throw Napi::Error::New(env, what + ": unknown C++ exception");
  }
}

// reducer.cc: adds the reducer* exports.
void InitReducer(Napi::Env env, Napi::Object exports);

}  // namespace dist
}  // namespace spn
