// The version 2 container on its own (no model): its exact bytes, encode/decode as a bijection on
// what it holds, and every forged or damaged file refused with the field named, before anything
// is allocated from it.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decodeContainer2, encodeContainer2, MAX_BATCH, MAX_FILE_SUBPIXELS, MAX_SIDE, type ContainerV2 } from '../../src/codec/index.js';
import { defaultNames, fileStem } from '../../src/codec/index.js';
import { namesOf, recordedNames } from '../../src/codec/names.js';
import { pushVarint } from '../../src/codec/varint.js';
import { SpnError } from '../../src/errors.js';

const sum4 = (b: Uint8Array) => createHash('sha256').update(b).digest().subarray(0, 4);
/** A file of these body bytes (magic and version included) with a valid checksum: a forgery. */
const forged = (body: number[]) => {
  const b = Uint8Array.from(body);
  return Uint8Array.from([...b, ...sum4(b)]);
};
const v = (...ns: number[]) => {
  const out: number[] = [];
  ns.forEach((n) => pushVarint(n, out));
  return out;
};
const MAGIC2 = [0x53, 0x50, 0x4e, 0x43, 2];
const W8 = [1, 2, 3, 4, 5, 6, 7, 8];
const P4 = [0xa1, 0xa2, 0xa3, 0xa4];
const H4 = [0xde, 0xad, 0xbe, 0xef];

const one: ContainerV2 = {
  stages: [{ weights: Uint8Array.from(W8), probe: Uint8Array.from(P4) }],
  ema: true, batch: 32, precision: 24, names: null,
  images: [{ height: 28, width: 28, hash: Uint8Array.from(H4), stream: Uint8Array.of(0x55, 0x66) }],
};

describe('the version 2 container', () => {
  it('lays out one image with the defaults in 30 bytes besides its stream, as docs/spn-format.md says', () => {
    const { bytes, sizes } = encodeContainer2(one);
    const body = [...MAGIC2, 0x00, ...W8, ...P4, 0x01, 28, 28, 2, ...H4, 0x55, 0x66];
    expect(Array.from(bytes)).toEqual([...body, ...sum4(Uint8Array.from(body))]);
    expect(sizes).toEqual({ total: 32, header: 19 + 4, records: 7, streams: 2 });
  });

  it('records what differs from the defaults, and gives back exactly what it was given', () => {
    const cases: ContainerV2[] = [
      one,
      { ...one, batch: 5, precision: 20, ema: false },
      { ...one, names: ['cat'] },
      { ...one, names: { prefix: 'test-', digits: 5 } },
      {
        ...one,
        stages: [one.stages[0]!, { weights: Uint8Array.from(W8.map((x) => x + 8)), probe: Uint8Array.from(P4) }],
        images: [
          { height: 1, width: 1, hash: Uint8Array.from(H4), stream: new Uint8Array(0) },
          { height: 300, width: 20000, hash: Uint8Array.of(1, 2, 3, 4), stream: Uint8Array.from({ length: 300 }, (_, i) => i & 255) },
        ],
        names: ['a', 'b.c'],
      },
      { ...one, images: [] },
    ];
    for (const c of cases) {
      const { bytes } = encodeContainer2(c);
      const back = decodeContainer2(bytes, 'x.spn');
      expect(back).toEqual({ ...c, stages: c.stages.map((s) => ({ weights: new Uint8Array(s.weights), probe: new Uint8Array(s.probe) })) });
      expect(encodeContainer2(back).bytes).toEqual(bytes);
    }
    // each non-default costs its bytes: batch (1) and precision (1)
    expect(encodeContainer2(cases[1]!).bytes.length - encodeContainer2(one).bytes.length).toBe(2);
    // a name costs its length and its bytes
    expect(encodeContainer2(cases[2]!).bytes.length - encodeContainer2(one).bytes.length).toBe(4);
  });

  it('refuses every truncation and every flipped bit (the checksum)', () => {
    const { bytes } = encodeContainer2({ ...one, names: ['cat'] });
    for (let n = 5; n < bytes.length; n++) expect(() => decodeContainer2(bytes.subarray(0, n), 'x.spn')).toThrow(/x\.spn( is truncated|: checksum mismatch)/);
    for (let i = 5; i < bytes.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const bad = Uint8Array.from(bytes);
        bad[i]! ^= 1 << bit;
        expect(() => decodeContainer2(bad, 'x.spn')).toThrow(/x\.spn: checksum mismatch: the file is truncated or corrupted/);
      }
    }
  });

  it('refuses forged sizes and counts with a valid checksum, naming the field, before allocating', () => {
    const head = [...MAGIC2, 0x00, ...W8, ...P4];
    const fails = (body: number[], message: RegExp) => {
      let err: unknown = null;
      try {
        decodeContainer2(forged(body), 'f.spn');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SpnError);
      expect((err as SpnError).code).toBe('E_FORMAT');
      expect((err as Error).message).toMatch(message);
    };
    fails([...head, ...v(1, 0, 28, 0), ...H4], /f\.spn: image 0 declares 28×0 \(W×H\), not a size of at least 1×1/);
    fails([...head, ...v(1, 100000, 28, 0), ...H4], new RegExp(`image 0 declares 28×100000 \\(W×H\\), a side longer than the ${MAX_SIDE} the codec takes`));
    fails([...head, ...v(1, 12000, 12000, 0), ...H4], /image 0 declares 12000×12000 \(W×H\), 144000000 pixels, more than the 67108864/);
    // several images that are each allowed but together too many: refused at the one that passes the limit
    const big = [...v(8192, 8192, 0), ...H4];
    fails([...head, ...v(5), ...big, ...big, ...big, ...big, ...big], new RegExp(`more than ${MAX_FILE_SUBPIXELS} pixels together \\(image 4 passes it\\)`));
    fails([...head, ...v(1e9), ...v(1, 1, 0), ...H4], /f\.spn: the image count is 1000000000; expected 0\.\.1 \(7 bytes are left, and each image takes at least 7\)/);
    fails([...MAGIC2, 0x01, ...W8, ...P4, ...v(20000, 0)], new RegExp(`the batch is 20000; expected 1\\.\\.${MAX_BATCH}`));
    fails([...MAGIC2, 0x02, ...W8, ...P4, ...v(40, 0)], /the precision is 40; expected 2\.\.\d+/);
    fails([...MAGIC2, 0x08, ...v(100), ...W8, ...P4, 0], /the stage count is 100; expected 2\.\.16/);
    fails([...head, ...v(1, 8, 8, 1000), ...H4, 1, 2], /image 0's stream length is 1000; expected 0\.\.2/);
    fails([...head, ...v(1, 8, 8)], /the image count is 1; expected 0\.\.0 \(2 bytes are left/);
    fails([...MAGIC2, 0x20, ...W8, ...P4, ...v(1, 6), ...Buffer.from('abcdef'), ...v(8, 8), 0x80], /image 0's stream length runs past the end of the file/);
    fails([...MAGIC2, 0x40, ...W8, ...P4, 0], /unknown flags 0x40/);
    fails([...MAGIC2, 0x20, ...W8, ...P4, ...v(1, 7), ...Buffer.from('../evil'), ...v(8, 8, 0), ...H4], /image 0's name "\.\.\/evil" is not a safe file name/);
    fails([...MAGIC2, 0x20, ...W8, ...P4, ...v(2, 1), 0x61, ...v(1), 0x61, ...v(8, 8, 0), ...H4, ...v(8, 8, 0), ...H4], /image names repeat/);
    fails([...MAGIC2, 0x00, ...W8, ...P4, ...v(0), 0xff], /1 unexpected bytes after the last image/);
    fails([...MAGIC2, 0x00, ...W8, ...P4, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01], /the image count is not a valid varint/);
  });

  it('names: the default is the file\'s own name for one image, image-000000… for several; recorded only when they differ', () => {
    expect(fileStem('/a/b/cat.spn')).toBe('cat');
    expect(fileStem('../.hidden.spn')).toBe(null);
    expect(fileStem(undefined)).toBe(null);
    expect(defaultNames(1, 'cat')).toEqual(['cat']);
    expect(defaultNames(2, 'cat')).toEqual(['image-000000', 'image-000001']);
    expect(recordedNames(['cat'], 'cat')).toBe(null);
    expect(recordedNames(['image-000000'], 'cat')).toEqual(['image-000000']);
    expect(recordedNames(['image-000000', 'image-000001'], 'cat')).toBe(null);
    expect(recordedNames(['test-00000', 'test-00001'], null)).toEqual({ prefix: 'test-', digits: 5 });
    expect(recordedNames(['dog'], 'cat')).toEqual(['dog']);
    expect(recordedNames(null, 'cat')).toBe(null);
    for (const [names, stem] of [[['dog'], 'cat'], [['cat'], 'cat'], [['image-000000'], 'cat'], [['test-00000', 'test-00001'], null], [['a', 'b'], 'x']] as const) {
      expect(namesOf(recordedNames([...names], stem), names.length, stem)).toEqual(names);
    }
  });
});
