// Finds a libtorch to build against, in the documented order:
//   1. LIBTORCH: a libtorch folder, or a PyTorch package folder (both hold include/ and lib/);
//   2. the PyTorch of `python3`, if it imports;
//   3. Debian's libtorch-dev under /usr.
// Returns null with the list of places tried when none is usable.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

function fromFolder(root, source) {
  const inc = path.join(root, 'include');
  const lib = path.join(root, 'lib');
  if (!fs.existsSync(path.join(inc, 'ATen', 'ATen.h'))) return null;
  if (!fs.existsSync(path.join(lib, 'libtorch_cpu.so'))) return null;
  return {
    source,
    root,
    includeDirs: [inc, path.join(inc, 'torch', 'csrc', 'api', 'include')],
    libDir: lib,
    cuda: fs.existsSync(path.join(lib, 'libtorch_cuda.so')),
  };
}

function fromDebian() {
  const multiarch = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib'];
  const libDir = multiarch.find((d) => fs.existsSync(path.join(d, 'libtorch_cpu.so')));
  if (!libDir || !fs.existsSync('/usr/include/ATen/ATen.h')) return null;
  return {
    source: 'debian',
    root: '/usr',
    includeDirs: ['/usr/include', '/usr/include/torch/csrc/api/include'],
    libDir,
    cuda: fs.existsSync(path.join(libDir, 'libtorch_cuda.so')),
  };
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
    const found = fromFolder(process.env.LIBTORCH, 'LIBTORCH');
    if (found) return { found, tried };
    tried.push(`LIBTORCH=${process.env.LIBTORCH} (no include/ATen/ATen.h and lib/libtorch_cpu.so there)`);
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

export const FIX_HINT = [
  'Fix it with one of:',
  '  apt-get install -y --no-install-recommends libtorch-dev libopenblas0-pthread   (Debian, CPU)',
  '  LIBTORCH=$(python3 -c "import torch, os; print(os.path.dirname(torch.__file__))") npm install   (a PyTorch install, CUDA if it has it)',
  '  LIBTORCH=/path/to/libtorch npm install   (an unpacked libtorch folder)',
].join('\n');
