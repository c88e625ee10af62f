#!/usr/bin/env bash
# Prepares a GPU machine that has PyTorch but no Node.js or network (../shared/gpu/README.md):
# .gpu/ gets the node binary (../shared/gpu/prepare.sh) and bench/gpu-check as one JavaScript file;
# .gpudata/ the CIFAR-10 subset. Carry .gpu, .gpudata, node_modules/node-addon-api and
# node_modules/node-api-headers, then run there:
#   source .gpu/enter.sh && bash scripts/gpu-check.sh --data cifar10:.gpudata/cifar10-subset
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x ../shared/gpu/prepare.sh ] && ../shared/gpu/prepare.sh
npx tsc -p tsconfig.json
mkdir -p .gpu .gpudata
grep -qx '/.gpudata/' .git/info/exclude 2>/dev/null || echo '/.gpudata/' >> .git/info/exclude
# sharp is loaded only for folder: datasets, which the check does not read
npx esbuild dist/bench/gpu-check.js --bundle --platform=node --format=esm --target=node20 --external:sharp \
  --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" \
  --outfile=.gpu/gpu-check.mjs --log-level=warning
cp -r ../shared/data/cifar10-subset .gpudata/
du -sh .gpu .gpudata
