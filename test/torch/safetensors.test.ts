import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';
import { decodeSafetensors, encodeSafetensors, loadSafetensors, saveSafetensors } from '../../src/torch/safetensors.js';
import { SpnError } from '../../src/errors.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spn-st-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A safetensors buffer from a header object and raw data, for corrupt-file cases. */
function build(header: unknown, data: Uint8Array, headerLen?: bigint): Uint8Array {
  const json = Buffer.from(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, headerLen ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const values = (t: torch.Tensor): (number | bigint)[] => Array.from(t.data() as ArrayLike<number | bigint>);

const expectFormatError = (buf: Uint8Array, pattern: RegExp) => {
  let caught: unknown;
  try {
    decodeSafetensors(buf, { source: 'bad.safetensors' });
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(SpnError);
  expect((caught as SpnError).code).toBe('E_FORMAT');
  expect((caught as SpnError).message).toMatch(/^bad\.safetensors: /);
  expect((caught as SpnError).message).toMatch(pattern);
};

describe('safetensors', () => {
  it('lays out bytes exactly as the format says', () => {
    torch.tidy(() => {
      const buf = encodeSafetensors({ x: torch.fromArray([1, 2]) });
      const json = '{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'; // 54 bytes
      const padded = json + '  '; // padded with spaces to 56, a multiple of 8
      const expected = Buffer.alloc(8 + 56 + 8);
      expected.writeBigUInt64LE(56n, 0);
      expected.write(padded, 8, 'utf8');
      expected.writeFloatLE(1, 64);
      expected.writeFloatLE(2, 68);
      expect(Buffer.from(buf)).toEqual(expected);
      expect(Array.from(buf.subarray(64))).toEqual([0, 0, 0x80, 0x3f, 0, 0, 0, 0x40]);
    });
  });

  it('round-trips every dtype with metadata through a file', () => {
    torch.tidy(() => {
      const base = torch.fromArray([0, 1, -2, 3.5, 100, -7], [2, 3]);
      const src: Record<string, torch.Tensor> = {};
      for (const d of ['float32', 'float64', 'bfloat16', 'float16', 'int64', 'int32', 'int16', 'int8', 'uint8', 'bool'] as torch.DType[]) {
        src[d] = d === 'uint8' ? base.abs().to(d) : base.to(d);
      }
      src.scalar = torch.fromArray([42], []);
      src.empty = torch.zeros([0, 3]);
      src.strided = torch.arange(12, undefined, 1, { dtype: 'float32' }).reshape([3, 4]).transpose(0, 1); // non-contiguous
      const file = path.join(dir, 'all.safetensors');
      saveSafetensors(file, src, { format: 'pt', step: '12' });
      const { tensors, metadata } = loadSafetensors(file);
      expect(metadata).toEqual({ format: 'pt', step: '12' });
      expect(Object.keys(tensors)).toEqual(Object.keys(src));
      for (const [k, t] of Object.entries(src)) {
        const u = tensors[k]!;
        expect(u.dtype).toBe(t.dtype);
        expect(u.shape).toEqual(t.shape);
        expect(values(u)).toEqual(values(t)); // raw bits for 16-bit floats
      }
      expect(Array.from(tensors.bfloat16!.toFloat32())).toEqual([0, 1, -2, 3.5, 100, -7]);
      expect(values(tensors.bool!)).toEqual([0, 1, 1, 1, 1, 1]);
      torch.dispose(tensors);
    });
  });

  it('rejects corrupted files with E_FORMAT errors naming the file and tensor', () => {
    const ok = { x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
    const data = new Uint8Array(8);
    expectFormatError(new Uint8Array(4), /too short/);
    expectFormatError(build(ok, data, 10_000n), /header length 10000 runs past the end/);
    expectFormatError(build(ok, data, 2n ** 63n), /runs past the end/);
    const notJson = build(ok, data);
    notJson[9] = 0x7b; // '{{' is not JSON
    expectFormatError(notJson, /not valid UTF-8 JSON/);
    expectFormatError(build([1, 2], data), /not a JSON object/);
    expectFormatError(build({ x: { ...ok.x, dtype: 'F8' } }, data), /tensor 'x' has dtype "F8"/);
    expectFormatError(build({ x: { ...ok.x, shape: [3] } }, data), /tensor 'x' has shape \[3\] of F32 \(12 bytes\)/);
    expectFormatError(build({ x: { ...ok.x, shape: [-2] } }, data), /tensor 'x' has shape/);
    expectFormatError(build({ x: { ...ok.x, data_offsets: [0, 16] } }, data), /past the end of the data/);
    expectFormatError(build({ x: { ...ok.x, data_offsets: [4, 2] } }, data), /data_offsets \[4,2\]/);
    expectFormatError(build(ok, new Uint8Array(12)), /cover 8 bytes of data but the file holds 12/);
    const two = (b: number[]) => ({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: b } });
    expectFormatError(build(two([2, 6]), data), /tensor 'b' .* overlap/);
    expectFormatError(build(two([8, 12]), new Uint8Array(12)), /tensor 'b' .* leave a gap after byte 4/);
    expectFormatError(build({ __metadata__: { n: 3 }, ...ok }, data), /__metadata__ 'n' is a number/);
    // A well-formed hand-built file loads.
    const good = decodeSafetensors(build(ok, new Uint8Array(new Float32Array([5, 6]).buffer)));
    expect(values(good.tensors.x!)).toEqual([5, 6]);
    torch.dispose(good.tensors);
  });

  it('reports a missing file as E_IO', () => {
    expect(() => loadSafetensors(path.join(dir, 'nope.safetensors'))).toThrow(/cannot read safetensors file .*nope\.safetensors/);
  });
});
