// The tensor engine: libtorch from TypeScript. Import as `import * as torch from './torch/index.js'`.
export { Tensor, tidy, keep, dispose, liveTensors, nativeLiveTensors, noGrad, isGradEnabled } from './tensor.js';
export type { Device, Scalar } from './tensor.js';
export type { DType } from './dtype.js';
export * from './ops.js';
export * from './random.js';
export { threadsFor, withThreads, setNumThreads, getNumThreads, envThreads, type ThreadWork } from './threads.js';
export { native } from './binding.js';
export { trimHeap } from './heap.js';
export * as cuda from './cuda.js';
export { autocast, cpuHasBf16, cpuHasAmx, cpuBf16Faster } from './autocast.js';
export * as nn from './nn/index.js';
export * as optim from './optim/index.js';
export { saveSafetensors, loadSafetensors, encodeSafetensors, decodeSafetensors } from './safetensors.js';
export * as distributed from './distributed.js';
