// Tensor: a JS handle on a libtorch tensor, and the scopes that free tensors deterministically.
//
// Lifetimes are explicit (as in tfjs): dispose() frees now; tidy(fn) frees every tensor made
// inside fn except what fn returns; liveTensors() counts what is still held. A garbage-collected
// handle frees its tensor too, but only as a backstop: GC does not see libtorch's memory.
import { SpnError } from '../errors.js';
import { native, type Handle } from './binding.js';
import { dtypeName, isFloating, typedArrayFor, type DType, type TypedArray } from './dtype.js';

let live = 0;
const scopes: Set<Tensor>[] = [];

export type Device = string; // 'cpu' | 'cuda' | 'cuda:N'
export type Scalar = number | boolean;

// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging -- the op methods: declared below, installed by ops.ts
export class Tensor {
  #h: Handle | null;

  constructor(h: Handle) {
    this.#h = h;
    live++;
    scopes[scopes.length - 1]?.add(this);
  }

  /** The native handle; throws a catchable error once the tensor is disposed. */
  get handle(): Handle {
    if (this.#h === null) throw new SpnError('E_DISPOSED', 'this tensor was disposed and cannot be used');
    return this.#h;
  }

  get isDisposed(): boolean {
    return this.#h === null;
  }

  dispose(): void {
    if (this.#h === null) return;
    native.free(this.#h);
    this.#h = null;
    live--;
    for (const s of scopes) s.delete(this);
  }

  get shape(): number[] { return native.shape(this.handle); }
  get strides(): number[] { return native.strides(this.handle); }
  get ndim(): number { return this.shape.length; }
  get numel(): number { return this.shape.reduce((a, b) => a * b, 1); }
  get dtype(): DType { return dtypeName(native.dtype(this.handle)); }
  get device(): Device { return native.device(this.handle); }
  size(dim: number): number {
    const s = this.shape;
    return s[dim < 0 ? dim + s.length : dim]!;
  }

  // --- autograd -------------------------------------------------------------------------------
  get requiresGrad(): boolean { return native.requiresGrad(this.handle); }
  set requiresGrad(on: boolean) {
    if (on && !isFloating(this.dtype)) throw new SpnError('E_ARG', `requiresGrad needs a floating dtype, not ${this.dtype}`);
    native.setRequiresGrad(this.handle, on);
  }
  requiresGrad_(on = true): this { this.requiresGrad = on; return this; }
  get isLeaf(): boolean { return native.isLeaf(this.handle); }
  /** The accumulated gradient (a new handle on it each call: dispose it or use tidy), or null. */
  get grad(): Tensor | null {
    const g = native.grad(this.handle);
    return g === null ? null : new Tensor(g);
  }
  set grad(g: Tensor | null) { native.setGrad(this.handle, g === null ? null : g.handle); }
  backward(grad?: Tensor, opts: { retainGraph?: boolean } = {}): void {
    native.backward(this.handle, grad ? grad.handle : null, opts.retainGraph ?? false);
  }

  // --- data out ---------------------------------------------------------------------------------
  /** A copy of the elements as a typed array, row-major (bool as 0/1 bytes; float16/bfloat16 as raw bits), from any device. */
  data(): TypedArray {
    return typedArrayFor(this.dtype, native.toBuffer(this.handle));
  }
  /** The elements converted to float32 (any dtype). */
  toFloat32(): Float32Array {
    if (this.dtype === 'float32') return this.data() as Float32Array;
    return tidy(() => this.to('float32').data()) as Float32Array;
  }
  /** Nested JS arrays of numbers, like PyTorch's tolist(). */
  tolist(): unknown {
    const flat = Array.from(this.toFloat32());
    const shape = this.shape;
    const build = (dim: number, offset: number): unknown => {
      if (dim === shape.length) return flat[offset];
      const stride = shape.slice(dim + 1).reduce((a, b) => a * b, 1);
      return Array.from({ length: shape[dim]! }, (_, i) => build(dim + 1, offset + i * stride));
    };
    return build(0, 0);
  }
  item(): number {
    const v = native.item(this.handle);
    return typeof v === 'boolean' ? Number(v) : v;
  }
  toString(): string { return `Tensor(shape=[${this.shape.join(', ')}], dtype=${this.dtype}, device=${this.device})`; }
}

// The tensor ops as methods (x.add(y), x.view([...])), named as in PyTorch. Declared here,
// installed on the prototype by ops.ts, so this module does not import the ops: ops.ts builds
// on the Tensor class, not the other way round.
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging -- see the class
export interface Tensor {
  detach(): Tensor;
  to(target: DType | Device): Tensor;
  float(): Tensor;
  long(): Tensor;
  clone(): Tensor;
  contiguous(): Tensor;
  reshape(shape: number[]): Tensor;
  view(shape: number[]): Tensor;
  permute(dims: number[]): Tensor;
  transpose(a: number, b: number): Tensor;
  squeeze(dim?: number): Tensor;
  unsqueeze(dim: number): Tensor;
  expand(shape: number[]): Tensor;
  flatten(start?: number, end?: number): Tensor;
  /** x[..., start:end:step, ...] on one dim: a view that shares storage (writable with copy_). */
  slice(dim: number, start?: number, end?: number | null, step?: number): Tensor;
  select(dim: number, index: number): Tensor;
  narrow(dim: number, start: number, length: number): Tensor;
  chunk(n: number, dim?: number): Tensor[];
  gather(dim: number, index: Tensor): Tensor;
  indexSelect(dim: number, index: Tensor): Tensor;
  add(o: Tensor | Scalar, alpha?: number): Tensor;
  sub(o: Tensor | Scalar, alpha?: number): Tensor;
  mul(o: Tensor | Scalar): Tensor;
  div(o: Tensor | Scalar): Tensor;
  pow(e: Tensor | number): Tensor;
  neg(): Tensor;
  exp(): Tensor;
  log(): Tensor;
  sqrt(): Tensor;
  abs(): Tensor;
  square(): Tensor;
  matmul(o: Tensor): Tensor;
  sum(dim?: number | number[], keepdim?: boolean): Tensor;
  mean(dim?: number | number[], keepdim?: boolean): Tensor;
  max(): Tensor;
  argmax(dim?: number, keepdim?: boolean): Tensor;
  softmax(dim: number): Tensor;
  logSoftmax(dim: number): Tensor;
  eq(o: Tensor | Scalar): Tensor;
  lt(o: Tensor | Scalar): Tensor;
  gt(o: Tensor | Scalar): Tensor;
  maskedFill(mask: Tensor, value: number): Tensor;
  // in place: return this
  copy_(src: Tensor): this;
  zero_(): this;
  fill_(v: number): this;
  add_(o: Tensor | Scalar, alpha?: number): this;
  mul_(o: Tensor | Scalar): this;
}

// --- memory -------------------------------------------------------------------------------------

/** How many tensors have been made and not yet disposed. */
export function liveTensors(): number {
  return live;
}

/** Native tensor boxes still allocated (disposed-but-not-collected handles count until GC). */
export function nativeLiveTensors(): number {
  return native.liveCount();
}

function collectTensors(value: unknown, out: Set<Tensor>, seen = new Set<unknown>()): void {
  if (value instanceof Tensor) { out.add(value); return; }
  if (value === null || typeof value !== 'object' || seen.has(value)) return;
  seen.add(value);
  if (Array.isArray(value)) for (const v of value) collectTensors(v, out, seen);
  else if (value instanceof Map) for (const v of value.values()) collectTensors(v, out, seen);
  else if (Object.getPrototypeOf(value) === Object.prototype) for (const v of Object.values(value)) collectTensors(v, out, seen);
}

/**
 * Runs fn and disposes every tensor created inside it, except the tensors it returns (also
 * inside arrays, Maps and plain objects), which move to the enclosing scope. Synchronous only:
 * an async fn would let the scope close before its work is done.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } finally {
    scopes.pop();
  }
  if (result instanceof Promise) throw new SpnError('E_ARG', 'tidy() takes a synchronous function');
  const keep = new Set<Tensor>();
  collectTensors(result, keep);
  const parent = scopes[scopes.length - 1];
  for (const t of scope) {
    if (keep.has(t)) parent?.add(t);
    else t.dispose();
  }
  return result;
}

/** Exempts tensors from the enclosing tidy() scopes (e.g. parameters, running state). */
export function keep<T extends Tensor | Tensor[]>(t: T): T {
  for (const x of Array.isArray(t) ? t : [t]) for (const s of scopes) s.delete(x);
  return t;
}

/** Disposes tensors found in a value (arrays, Maps, plain objects). */
export function dispose(value: unknown): void {
  const all = new Set<Tensor>();
  collectTensors(value, all);
  for (const t of all) t.dispose();
}

/** Runs fn with gradient recording off (like torch.no_grad()). */
export function noGrad<T>(fn: () => T): T {
  const prev = native.setGradEnabled(false);
  try {
    return fn();
  } finally {
    native.setGradEnabled(prev);
  }
}

export function isGradEnabled(): boolean {
  const prev = native.setGradEnabled(true);
  native.setGradEnabled(prev);
  return prev;
}
