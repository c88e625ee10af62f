// Tensor: a JS handle on a libtorch tensor, and the scopes that free tensors deterministically.
//
// Lifetimes are explicit (as in tfjs): dispose() frees now; tidy(fn) frees every tensor made
// inside fn except what fn returns; liveTensors() counts what is still held. A garbage-collected
// handle frees its tensor too, but only as a backstop: GC does not see libtorch's memory.
import { SpnError } from '../errors.js';
import { native, type Handle } from './binding.js';
import { dtypeCode, dtypeName, isFloating, typedArrayFor, type DType, type TypedArray } from './dtype.js';
import * as ops from './ops.js';

let live = 0;
const scopes: Set<Tensor>[] = [];

export type Device = string; // 'cpu' | 'cuda' | 'cuda:N'
export type Scalar = number | boolean;

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
  detach(): Tensor { return ops.detach(this); }

  // --- data out ---------------------------------------------------------------------------------
  /** The elements as a typed array, row-major (bool as 0/1 bytes; float16/bfloat16 as raw bits). */
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

  // --- conversions ----------------------------------------------------------------------------
  to(target: DType | Device): Tensor {
    return isDTypeName(target) ? ops.toDtype(this, target) : ops.toDevice(this, target);
  }
  float(): Tensor { return ops.toDtype(this, 'float32'); }
  long(): Tensor { return ops.toDtype(this, 'int64'); }
  clone(): Tensor { return ops.clone(this); }
  contiguous(): Tensor { return ops.contiguous(this); }

  // --- shape ----------------------------------------------------------------------------------
  reshape(shape: number[]): Tensor { return ops.reshape(this, shape); }
  view(shape: number[]): Tensor { return ops.view(this, shape); }
  permute(dims: number[]): Tensor { return ops.permute(this, dims); }
  transpose(a: number, b: number): Tensor { return ops.transpose(this, a, b); }
  squeeze(dim?: number): Tensor { return ops.squeeze(this, dim); }
  unsqueeze(dim: number): Tensor { return ops.unsqueeze(this, dim); }
  expand(shape: number[]): Tensor { return ops.expand(this, shape); }
  flatten(start = 0, end = -1): Tensor { return ops.flatten(this, start, end); }
  /** x[..., start:end:step, ...] on one dim: a view that shares storage (writable with copy_). */
  slice(dim: number, start = 0, end: number | null = null, step = 1): Tensor { return ops.slice(this, dim, start, end, step); }
  select(dim: number, index: number): Tensor { return ops.select(this, dim, index); }
  narrow(dim: number, start: number, length: number): Tensor { return ops.narrow(this, dim, start, length); }
  chunk(n: number, dim = 0): Tensor[] { return ops.chunk(this, n, dim); }
  gather(dim: number, index: Tensor): Tensor { return ops.gather(this, dim, index); }
  indexSelect(dim: number, index: Tensor): Tensor { return ops.indexSelect(this, dim, index); }

  // --- math -----------------------------------------------------------------------------------
  add(o: Tensor | Scalar, alpha = 1): Tensor { return ops.add(this, o, alpha); }
  sub(o: Tensor | Scalar, alpha = 1): Tensor { return ops.sub(this, o, alpha); }
  mul(o: Tensor | Scalar): Tensor { return ops.mul(this, o); }
  div(o: Tensor | Scalar): Tensor { return ops.div(this, o); }
  pow(e: Tensor | number): Tensor { return ops.pow(this, e); }
  neg(): Tensor { return ops.neg(this); }
  exp(): Tensor { return ops.exp(this); }
  log(): Tensor { return ops.log(this); }
  sqrt(): Tensor { return ops.sqrt(this); }
  abs(): Tensor { return ops.abs(this); }
  square(): Tensor { return ops.square(this); }
  matmul(o: Tensor): Tensor { return ops.matmul(this, o); }
  sum(dim?: number | number[], keepdim = false): Tensor { return ops.sum(this, dim, keepdim); }
  mean(dim?: number | number[], keepdim = false): Tensor { return ops.mean(this, dim, keepdim); }
  max(): Tensor { return ops.max(this); }
  argmax(dim?: number, keepdim = false): Tensor { return ops.argmax(this, dim, keepdim); }
  softmax(dim: number): Tensor { return ops.softmax(this, dim); }
  logSoftmax(dim: number): Tensor { return ops.logSoftmax(this, dim); }
  eq(o: Tensor | Scalar): Tensor { return ops.eq(this, o); }
  lt(o: Tensor | Scalar): Tensor { return ops.lt(this, o); }
  gt(o: Tensor | Scalar): Tensor { return ops.gt(this, o); }
  maskedFill(mask: Tensor, value: number): Tensor { return ops.maskedFill(this, mask, value); }

  // --- in place (return this) -----------------------------------------------------------------
  copy_(src: Tensor): this { ops.inplace('aten::copy_', [this, src]); return this; }
  zero_(): this { ops.inplace('aten::zero_', [this]); return this; }
  fill_(v: number): this { ops.inplace('aten::fill_.Scalar', [this, v]); return this; }
  add_(o: Tensor | Scalar, alpha = 1): this {
    ops.inplace(o instanceof Tensor ? 'aten::add_.Tensor' : 'aten::add_.Scalar', [this, o, alpha]);
    return this;
  }
  mul_(o: Tensor | Scalar): this { ops.inplace(o instanceof Tensor ? 'aten::mul_.Tensor' : 'aten::mul_.Scalar', [this, o]); return this; }
}

function isDTypeName(s: string): s is DType {
  try {
    dtypeCode(s as DType);
    return true;
  } catch {
    return false;
  }
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
