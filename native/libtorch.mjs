// Finds a libtorch to build against, in the documented order:
//   1. LIBTORCH: a libtorch folder or a PyTorch package folder (both hold include/ and lib/),
//      or a Python environment that has torch installed (a venv such as .venv, or its
//      site-packages folder);
//   2. the PyTorch of `python3`, if it imports;
//   3. Debian's libtorch-dev under /usr.
// Returns null with the list of places tried when none is usable.
//
// A libtorch with CUDA (lib/libtorch_cuda.so) also needs the CUDA runtime headers, which the
// PyTorch wheel does not ship: they come from the nvidia-* pip packages beside it
// (site-packages/nvidia/*/include), or from a CUDA toolkit (CUDA_HOME, /usr/local/cuda).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const isDir = (p) => {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
};

/** Folders holding cuda_runtime_api.h and the other CUDA headers for a libtorch at `root`. */
function cudaIncludeDirs(root) {
  const dirs = [];
  // A pip PyTorch: site-packages/torch beside site-packages/nvidia/<pkg>/include. CUDA 13 wheels
  // put the toolkit headers in nvidia/cu13/include, CUDA 12 wheels one package each
  // (nvidia/cuda_runtime/include, nvidia/cublas/include, ...): take every one that is there.
  const nvidia = path.join(path.dirname(root), 'nvidia');
  if (isDir(nvidia)) {
    for (const pkg of fs.readdirSync(nvidia).sort()) {
      const inc = path.join(nvidia, pkg, 'include');
      if (isDir(inc)) dirs.push(inc);
    }
  }
  // A CUDA toolkit.
  for (const home of [process.env.CUDA_HOME, process.env.CUDA_PATH, '/usr/local/cuda']) {
    if (home && isDir(path.join(home, 'include'))) dirs.push(path.join(home, 'include'));
  }
  const unique = [...new Set(dirs)];
  return unique.some((d) => fs.existsSync(path.join(d, 'cuda_runtime_api.h'))) ? unique : null;
}

/**
 * Whether libtorch was built with the C++11 std::string ABI (PyTorch wheels before 2.7 and
 * Debian's may differ): the addon must be compiled with the same _GLIBCXX_USE_CXX11_ABI. libc10
 * exports functions taking std::string, mangled with `__cxx11` only under the new ABI.
 */
function cxx11Abi(libDir) {
  try {
    return fs.readFileSync(path.join(libDir, 'libc10.so')).includes('St7__cxx11');
  } catch {
    return true;
  }
}

function fromFolder(root, source) {
  const inc = path.join(root, 'include');
  const lib = path.join(root, 'lib');
  if (!fs.existsSync(path.join(inc, 'ATen', 'ATen.h'))) return null;
  if (!fs.existsSync(path.join(lib, 'libtorch_cpu.so'))) return null;
  return described(source, root, inc, lib);
}

/** A libtorch found at `inc` and `lib`: its include dirs, ABI flag, and CUDA when it has it and its headers are there. */
function described(source, root, inc, lib) {
  const found = {
    source,
    root,
    includeDirs: [inc, path.join(inc, 'torch', 'csrc', 'api', 'include')],
    libDir: lib,
    cuda: false,
    flags: [`-D_GLIBCXX_USE_CXX11_ABI=${cxx11Abi(lib) ? 1 : 0}`],
  };
  if (fs.existsSync(path.join(lib, 'libtorch_cuda.so'))) {
    const cudaDirs = cudaIncludeDirs(root);
    if (cudaDirs) {
      found.cuda = true;
      found.includeDirs.push(...cudaDirs);
      // c10/cuda/CUDAEvent.h aligns to std::hardware_destructive_interference_size, which g++
      // warns about at every include (64 on x86-64, as PyTorch's wheels were built).
      found.flags.push('-Wno-interference-size');
    } else {
      // Without the headers the CUDA parts of the addon cannot compile; the CPU parts still do.
      found.cudaNote = `${lib}/libtorch_cuda.so is there but no cuda_runtime_api.h was found ` +
        `(looked in ${path.join(path.dirname(root), 'nvidia', '*', 'include')}, $CUDA_HOME/include, /usr/local/cuda/include): building without CUDA`;
    }
  }
  return found;
}

/**
 * The torch package folder inside a Python environment given as LIBTORCH: a site-packages folder
 * (…/site-packages/torch) or a venv (…/lib/python3.X/site-packages/torch). Null when `dir` is
 * neither.
 */
function torchInEnv(dir) {
  if (isDir(path.join(dir, 'torch', 'include'))) return path.join(dir, 'torch');
  const libDir = path.join(dir, 'lib');
  if (!fs.existsSync(path.join(dir, 'pyvenv.cfg')) || !isDir(libDir)) return null;
  for (const py of fs.readdirSync(libDir).filter((n) => /^python3(\.\d+)?$/.test(n)).sort().reverse()) {
    const pkg = path.join(libDir, py, 'site-packages', 'torch');
    if (isDir(pkg)) return pkg;
  }
  return null;
}

function pythonTorchDir() {
  try {
    const out = execFileSync(
      'python3',
      ['-c', 'import torch, os; print(os.path.dirname(torch.__file__))'],
      { stdio: ['ignore', 'pipe', 'ignore'], timeout: 60_000 },
    );
    return out.toString().trim() || null;
  } catch {
    return null;
  }
}

export function findLibtorch() {
  const tried = [];
  if (process.env.LIBTORCH) {
    const dir = path.resolve(process.env.LIBTORCH);
    const pkg = torchInEnv(dir);
    const found = fromFolder(dir, 'LIBTORCH') ?? (pkg ? fromFolder(pkg, 'LIBTORCH') : null);
    if (found) return { found, tried };
    tried.push(`LIBTORCH=${process.env.LIBTORCH} (no include/ATen/ATen.h and lib/libtorch_cpu.so there${pkg ? ` nor in ${pkg}` : ', and not a Python environment with torch installed'})`);
  } else {
    tried.push('LIBTORCH (not set)');
  }
  const py = pythonTorchDir();
  if (py) {
    const found = fromFolder(py, 'python3 torch');
    if (found) return { found, tried };
    tried.push(`python3's torch at ${py} (no include/ and lib/ there)`);
  } else {
    tried.push('python3 -c "import torch" (not importable)');
  }
  const deb = fromDebian();
  if (deb) return { found: deb, tried };
  tried.push("Debian's libtorch-dev (/usr/include/ATen/ATen.h, /usr/lib/*/libtorch_cpu.so: not installed)");
  return { found: null, tried };
}

function fromDebian() {
  const multiarch = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib'];
  const libDir = multiarch.find((d) => fs.existsSync(path.join(d, 'libtorch_cpu.so')));
  if (!libDir || !fs.existsSync('/usr/include/ATen/ATen.h')) return null;
  return described('debian', '/usr', '/usr/include', libDir);
}

export const FIX_HINT = [
  'Fix it with one of:',
  '  apt-get install -y --no-install-recommends libtorch-dev libopenblas0-pthread   (Debian, CPU)',
  "  python3 -m venv .venv && .venv/bin/pip install torch==2.11.0 'cuda-toolkit[crt,cccl]==13.0.2' && LIBTORCH=.venv npm install   (PyTorch 2.x from PyPI, with CUDA; docs/pytorch2.md)",
  '  LIBTORCH=$(python3 -c "import torch, os; print(os.path.dirname(torch.__file__))") npm install   (an installed PyTorch, CUDA if it has it)',
  '  LIBTORCH=/path/to/libtorch npm install   (an unpacked libtorch folder)',
].join('\n');
