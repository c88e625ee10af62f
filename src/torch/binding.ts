// Loads the native addon (native/build/spn_torch.node, or the one SPN_NATIVE names). One loader,
// one error: when the addon cannot be loaded, the message lists every place tried and the
// commands that fix it.
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SpnError } from '../errors.js';

/** An opaque libtorch tensor handle (an N-API external). Only this package creates them. */
export type Handle = { readonly __handle: unique symbol };

/** A native decode plan (native/decode.cc), made by src/spn/decode.ts's DecodePlan. */
export type DecodePlanHandle = { readonly __decodePlan: unique symbol };

/** The addon's functions. It trusts its arguments: the TypeScript layer validates them. */
export interface Native {
  opLookup(name: string, overload: string): number;
  opSchema(index: number): string;
  call(index: number, args: unknown[]): unknown;
  fromBuffer(data: ArrayBufferView, shape: number[], dtype: number): Handle;
  toBuffer(h: Handle): ArrayBuffer;
  item(h: Handle): number | boolean;
  shape(h: Handle): number[];
  strides(h: Handle): number[];
  dtype(h: Handle): number;
  device(h: Handle): string;
  requiresGrad(h: Handle): boolean;
  setRequiresGrad(h: Handle, on: boolean): void;
  grad(h: Handle): Handle | null;
  setGrad(h: Handle, g: Handle | null): void;
  backward(h: Handle, grad: Handle | null, retainGraph: boolean): void;
  isLeaf(h: Handle): boolean;
  dataPtr(h: Handle): number;
  free(h: Handle): void;
  mallocTrim(): boolean;
  manualSeed(seed: number): void;
  getRngState(): Handle;
  setRngState(h: Handle): void;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  setGradEnabled(on: boolean): boolean;
  liveCount(): number;
  info(): {
    version: string;
    config: string;
    parallel: string;
    threads: number;
    cuda: boolean;
    cudaDevices: number;
    cudaCompiled: boolean;
  };
  cudaSynchronize(): void;
  setAutocast(on: boolean, device?: 'cpu' | 'cuda'): boolean;
  cudaMemory(resetPeak?: boolean): { allocated: number; peak: number; reserved: number };
  /** native/decode.cc: the incremental decoder's pixel loop; spec and pick as src/spn/decode.ts builds them. */
  decodePlan(spec: object): DecodePlanHandle;
  decodePlanFree(plan: DecodePlanHandle): void;
  decodeSlice(plan: DecodePlanHandle, ctx: Handle, pixels: number, pick: object, onPixel: ((done: number) => void) | null): Handle;
  benchBlock(b: number, t: number, d: number, h: number, iters: number, warmup: number, device: string): number;
}

const here = path.dirname(fileURLToPath(import.meta.url));

// The package root, from dist/src/torch (compiled) and from src/torch (vitest runs the sources).
const roots = [path.resolve(here, '..', '..'), path.resolve(here, '..', '..', '..')];

function candidates(): string[] {
  // SPN_NATIVE names the one addon to load (e.g. a second build against another libtorch). A
  // relative path is taken from the working directory or, where it is not there, from the
  // package root: child processes (the CLI started by a test or a script) inherit the variable
  // but may run elsewhere.
  const named = process.env.SPN_NATIVE;
  if (named) {
    if (path.isAbsolute(named)) return [named];
    const fromCwd = path.resolve(named);
    return [fromCwd, ...roots.map((r) => path.join(r, named)).filter((f) => f !== fromCwd)];
  }
  return roots.map((base) => path.join(base, 'native', 'build', 'spn_torch.node'));
}

function load(): Native {
  const require = createRequire(import.meta.url);
  const tried: string[] = [];
  for (const file of candidates()) {
    if (!fs.existsSync(file)) {
      tried.push(`${file} (missing)`);
      continue;
    }
    try {
      return require(file) as Native;
    } catch (err) {
      tried.push(`${file} (${(err as Error).message.split('\n')[0]})`);
    }
  }
  throw new SpnError(
    'E_BINDING',
    [
      'the native addon spn_torch.node could not be loaded. Tried:',
      ...tried.map((t) => `  ${t}`),
      ...(process.env.SPN_NATIVE ? [`(SPN_NATIVE=${process.env.SPN_NATIVE} names the one addon to load; unset it to load native/build/spn_torch.node)`] : []),
      'Build it with `npm run build:native` (it looks for libtorch in LIBTORCH, python3\'s torch, then /usr).',
      'If no libtorch is installed:',
      '  apt-get install -y --no-install-recommends libtorch-dev libopenblas0-pthread',
      '  or, for PyTorch 2.x from PyPI (with CUDA; docs/pytorch2.md):',
      "  python3 -m venv .venv && .venv/bin/pip install torch==2.11.0 'cuda-toolkit[crt,cccl]==13.0.2' && LIBTORCH=.venv npm run build:native",
    ].join('\n'),
  );
}

export const native: Native = load();

/** The major version of the libtorch this addon was built against (1 for Debian's 1.13, 2 for PyTorch 2.x). */
export const libtorchMajor: number = Number(native.info().version.split('.')[0]);
