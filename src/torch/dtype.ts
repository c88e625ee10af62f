// Tensor element types, named as in PyTorch, with libtorch's ScalarType codes.
import { ArgError } from '../errors.js';

export type DType = 'uint8' | 'int8' | 'int16' | 'int32' | 'int64' | 'float16' | 'float32' | 'float64' | 'bool' | 'bfloat16';

// c10::ScalarType enum values: stable across libtorch releases.
const CODES: Record<DType, number> = {
  uint8: 0, int8: 1, int16: 2, int32: 3, int64: 4, float16: 5, float32: 6, float64: 7, bool: 11, bfloat16: 15,
};
const NAMES = new Map<number, DType>(Object.entries(CODES).map(([k, v]) => [v, k as DType]));

/** Whether a string names a dtype (as opposed to a device, where both are accepted). */
export function isDType(s: string): s is DType {
  return Object.prototype.hasOwnProperty.call(CODES, s);
}

export function dtypeCode(d: DType): number {
  const code = CODES[d];
  if (code === undefined) throw new ArgError(`unknown dtype '${String(d)}'; expected one of ${Object.keys(CODES).join(', ')}`);
  return code;
}

export function dtypeName(code: number): DType {
  const name = NAMES.get(code);
  if (!name) throw new ArgError(`libtorch returned an unsupported dtype code ${code}`);
  return name;
}

export type TypedArray =
  | Uint8Array | Int8Array | Int16Array | Int32Array | BigInt64Array | Float32Array | Float64Array | Uint16Array;

/** The typed array that holds one element type (bool as bytes; float16/bfloat16 as raw bits). */
export function typedArrayFor(d: DType, buf: ArrayBuffer): TypedArray {
  switch (d) {
    case 'uint8': case 'bool': return new Uint8Array(buf);
    case 'int8': return new Int8Array(buf);
    case 'int16': return new Int16Array(buf);
    case 'int32': return new Int32Array(buf);
    case 'int64': return new BigInt64Array(buf);
    case 'float16': case 'bfloat16': return new Uint16Array(buf);
    case 'float32': return new Float32Array(buf);
    case 'float64': return new Float64Array(buf);
  }
}

/** The dtype a typed array maps to when no dtype is given. */
export function dtypeOfArray(a: ArrayBufferView): DType {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Float64Array) return 'float64';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof BigInt64Array) return 'int64';
  if (a instanceof Uint8Array) return 'uint8';
  if (a instanceof Int8Array) return 'int8';
  if (a instanceof Int16Array) return 'int16';
  throw new ArgError(`cannot make a tensor from ${a.constructor.name}; pass a dtype or a supported typed array`);
}

export function isFloating(d: DType): boolean {
  return d === 'float16' || d === 'float32' || d === 'float64' || d === 'bfloat16';
}
