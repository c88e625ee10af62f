#!/usr/bin/env bash
# `npm run gpu-check [-- options]`: on a machine with an NVIDIA GPU and PyTorch, builds the addon
# against that PyTorch (LIBTORCH, else python3's torch) into native/build-gpu, then runs the GPU
# checks and a 3-minute training run (bench/gpu-check.ts; options are passed on, e.g.
# --data cifar10:DIR --minutes 3 --json FILE). Needs a CUDA build of PyTorch; downloads nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
if [ -z "${LIBTORCH:-}" ]; then
  LIBTORCH=$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))')
  export LIBTORCH
fi
node native/build.mjs --out native/build-gpu
echo "gpu-check: addon built against $LIBTORCH in $(( $(date +%s) - start )) s"
# The compiled checks, or (on a machine with node but no node_modules) the one-file bundle that
# scripts/gpu-bundle.sh writes.
js=dist/bench/gpu-check.js
[ -f "$js" ] || js=.gpu/gpu-check.mjs
SPN_NATIVE="$PWD/native/build-gpu/spn_torch.node" node "$js" "$@"
echo "gpu-check: done in $(( $(date +%s) - start )) s"
