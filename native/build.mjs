// Builds native/build/spn_torch.node with g++ against the libtorch that findLibtorch() picks.
// Offline by construction: N-API headers come from the node-api-headers package and the C++
// wrapper from node-addon-api; nothing is downloaded. Node's symbols resolve at load time.
import { execFile, execFileSync } from 'node:child_process';
import * as os from 'node:os';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findLibtorch, FIX_HINT } from './libtorch.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
// dist.cc: c10d (TCPStore, ProcessGroupGloo/NCCL), see the Gloo headers below; reducer.cc:
// c10d's Reducer (DDP's gradient engine), see the distributed-autograd stand-in below.
// decode.cc: the incremental decoder's pixel loop.
const sources = ['spn_torch.cc', 'bench_block.cc', 'dist.cc', 'reducer.cc', 'decode.cc'];

// reducer.hpp includes torch/csrc/distributed/autograd/context/context.h (RPC's distributed
// autograd), which Debian's libtorch-dev 1.13 does not install. reducer.hpp needs two names from
// it: DistAutogradContext::GradCallback, which it static_asserts to be
// std::function<bool(at::Tensor&)>, and ContextPtr, a std::shared_ptr<DistAutogradContext> held
// in a Reducer member. This stand-in declares both with the same types, so the Reducer's layout
// is the library's (a shared_ptr is two pointers whatever it points to); spn never calls
// anything that takes a context.
const CONTEXT_H = 'torch/csrc/distributed/autograd/context/context.h';
const CONTEXT_STANDIN = `// Written by native/build.mjs: a stand-in for ${CONTEXT_H}, which this libtorch lacks.
#pragma once
#include <ATen/core/Tensor.h>
#include <functional>
#include <memory>
namespace torch {
namespace distributed {
namespace autograd {
class DistAutogradContext {
 public:
  using GradCallback = std::function<bool(at::Tensor&)>;
};
using ContextPtr = std::shared_ptr<DistAutogradContext>;
}  // namespace autograd
}  // namespace distributed
}  // namespace torch
`;

/** Runs g++ and resolves when it exits (its output goes to this process's stderr). */
function gxx(args) {
  return new Promise((resolve, reject) => {
    const child = execFile('g++', args, { maxBuffer: 64 * 1024 * 1024 }, (err) => (err ? reject(new Error(`g++ failed: ${args.at(-3)}`)) : resolve()));
    child.stdout.pipe(process.stderr);
    child.stderr.pipe(process.stderr);
  });
}

/**
 * Builds into `outDir` (default native/build); a second build dir lets two libtorchs sit side by
 * side. The translation units compile in parallel, as many at a time as there are cores.
 */
export async function build({ quiet = false, outDir = path.join(here, 'build') } = {}) {
  const { found, tried } = findLibtorch();
  if (!found) {
    throw new Error(`spn: no libtorch found. Looked at:\n  ${tried.join('\n  ')}\n${FIX_HINT}`);
  }
  const napiInclude = require('node-api-headers').include_dir;
  const addonInclude = path.dirname(require.resolve('node-addon-api/package.json'));
  const defines = [
    '-DNAPI_VERSION=8',
    '-DNAPI_CPP_EXCEPTIONS',
    '-DNODE_ADDON_API_DISABLE_DEPRECATED',
    ...(found.cuda ? ['-DSPN_WITH_CUDA'] : []),
    ...(found.flags ?? []), // libtorch.mjs: what this libtorch needs (its std::string ABI, ...)
  ];
  const includes = [napiInclude, addonInclude, ...found.includeDirs].map((d) => `-I${d}`);
  const libs = ['c10', 'torch_cpu', 'torch', ...(found.cuda ? ['torch_cuda', 'c10_cuda'] : [])];
  fs.mkdirSync(outDir, { recursive: true });
  const log = (m) => quiet || process.stderr.write(m + '\n');
  log(`spn: building the native addon against libtorch from ${found.source} (${found.root})${found.cuda ? ' with CUDA' : ''}`);
  if (found.cudaNote) log(`spn: ${found.cudaNote}`);
  // dist.cc: the Gloo backend needs Gloo's headers, from Debian's libgloo-dev (/usr/include/gloo,
  // a default include dir; the PyTorch wheel ships none). Without them it builds without Gloo.
  if (![...found.includeDirs, '/usr/include', '/usr/local/include'].some((d) => fs.existsSync(path.join(d, 'gloo', 'config.h')))) {
    defines.push('-DSPN_NO_GLOO');
    log("spn: no Gloo headers (gloo/config.h; apt-get install libgloo-dev): building without the 'gloo' distributed backend");
  }
  if (![...found.includeDirs, '/usr/include', '/usr/local/include'].some((d) => fs.existsSync(path.join(d, CONTEXT_H)))) {
    const shim = path.join(outDir, 'shim');
    fs.mkdirSync(path.dirname(path.join(shim, CONTEXT_H)), { recursive: true });
    fs.writeFileSync(path.join(shim, CONTEXT_H), CONTEXT_STANDIN);
    includes.push(`-I${shim}`);
    log(`spn: this libtorch has no ${CONTEXT_H} (reducer.hpp includes it): using a stand-in`);
  }
  const objects = sources.map((src) => path.join(outDir, src.replace(/\.cc$/, '.o')));
  // An object is rebuilt unless it is newer than its source and every header here, and was built
  // against this libtorch with these flags (so editing one .cc recompiles only that one).
  const flagsFile = path.join(outDir, 'flags.json');
  const flags = JSON.stringify({ root: found.root, defines, includes });
  const sameFlags = fs.existsSync(flagsFile) && fs.readFileSync(flagsFile, 'utf8') === flags;
  const headers = fs.readdirSync(here).filter((f) => f.endsWith('.h')).map((f) => fs.statSync(path.join(here, f)).mtimeMs);
  const stale = (src, obj) => !sameFlags || !fs.existsSync(obj) || fs.statSync(obj).mtimeMs < Math.max(fs.statSync(path.join(here, src)).mtimeMs, ...headers);
  const todo = sources.filter((src, i) => stale(src, objects[i]));
  if (!sameFlags) fs.rmSync(flagsFile, { force: true });
  const queue = todo.map((src) => ['-std=c++17', '-O2', '-fPIC', '-fvisibility=hidden', '-Wno-deprecated-declarations',
    ...defines, ...includes, '-c', path.join(here, src), '-o', objects[sources.indexOf(src)]]);
  log(`  g++ ${todo.length ? todo.join(' ') : '(every object is up to date)'}`);
  const worker = async () => {
    for (let args = queue.shift(); args; args = queue.shift()) await gxx(args);
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(todo.length, 1), os.availableParallelism()) }, worker));
  fs.writeFileSync(flagsFile, flags);
  const target = path.join(outDir, 'spn_torch.node');
  const tmp = `${target}.tmp`;
  // --no-as-needed: libtorch registers its operators in static initialisers; a library the
  // linker thinks unused would be dropped and its kernels (CUDA above all) never registered.
  execFileSync('g++', ['-shared', '-o', tmp, ...objects, `-L${found.libDir}`, `-Wl,-rpath,${found.libDir}`,
    '-Wl,--no-as-needed', ...libs.map((l) => `-l${l}`), '-Wl,--as-needed'], { stdio: ['ignore', 'inherit', 'inherit'] });
  fs.renameSync(tmp, target);
  fs.writeFileSync(path.join(outDir, 'libtorch.json'), JSON.stringify({ ...found, built: new Date().toISOString() }, null, 2));
  log(`spn: built ${path.relative(process.cwd(), target)}`);
  return target;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  // node native/build.mjs [--out DIR]
  const at = process.argv.indexOf('--out');
  build(at > 0 && process.argv[at + 1] ? { outDir: path.resolve(process.argv[at + 1]) } : {}).catch((err) => {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  });
}
