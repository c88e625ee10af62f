// The codec end to end on tiny trained runs: exact round trips of real and random images for
// S = 1, 2, 4, one and three channels, a size and a depth pipeline, in version 2 files (the
// default) and version 1 files (still read); images of any size as tiles, batched; the version 1
// container's checks (model, libtorch, probe, checksum, truncation, pixel hash) and the inputs it
// refuses; the commands. Version 2's own checks and bad input: badinput.test.ts, container2.test.ts.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { Command } from 'commander';
import { PNG } from 'pngjs';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpnError } from '../../src/errors.js';
import { loadDataset } from '../../src/data/index.js';
import type { ImageSet } from '../../src/data/types.js';
import { memorySet, readAll } from '../../src/data/sets.js';
import { subsampleSet } from '../../src/data/subsample.js';
import { compactNames, compressImages, decompressBytes, decodeContainer, decodeContainer2, encodeContainer, readImageFile, readImages, readInputs, type CodecImage, type CodecInput, type CompressResult } from '../../src/codec/index.js';
import { register as registerCompress } from '../../src/cli/compress.js';
import { register as registerDecompress } from '../../src/cli/decompress.js';
import { loadModel } from '../../src/store/checkpoint.js';
import { evaluate } from '../../src/store/evaluate.js';
import { cleanupTmp } from '../data/fixtures.js';
import { cli } from '../cli/in-process.js';
import { grayPng, makeFixture, noise, smoothImage, trainRun, writePng, type Fixture } from './fixtures.js';

let f: Fixture;
const runs: Record<string, string> = {};
let gray: ImageSet; // 16 real 8×8 gray test images
let rgb: ImageSet; // 4 real 8×8 RGB test images

const sha = (a: Uint8Array) => createHash('sha256').update(a).digest('hex');

/** n images: the first real ones from `set`, then uniform noise. */
function mixed(set: ImageSet, real: number, random: number, seed = 1): ImageSet {
  const size = set.h * set.w * set.c;
  const data = new Uint8Array((real + random) * size);
  data.set(set.read(0, real));
  data.set(noise(random * size, seed), real * size);
  return memorySet(data, { n: real + random, h: set.h, w: set.w, c: set.c });
}

/** The images of a set or list, as (height, width, values). */
function listOf(input: CodecInput): CodecImage[] {
  if (!('read' in input)) return [...input];
  const all = readAll(input);
  const size = input.h * input.w * input.c;
  return Array.from({ length: input.n }, (_, i) => ({ height: input.h, width: input.w, data: all.subarray(i * size, (i + 1) * size) }));
}

type Src = { run: string } | { pipeline: string };

/** Compresses, decompresses (a version 2 file with the same models given) and checks every image bit for bit. */
async function roundTrip(src: Src, input: CodecInput, batchSize = 3, version: 1 | 2 = 2): Promise<CompressResult> {
  const c = await compressImages(src, input, { batchSize, version });
  expect(c.version).toBe(version);
  const d = await decompressBytes(c.bytes, { file: 'round-trip.spn', ...(version === 2 ? src : {}) });
  const want = listOf(input);
  expect(d.images.map((im) => [im.height, im.width])).toEqual(want.map((im) => [im.height, im.width]));
  d.images.forEach((im, i) => {
    expect(sha(im.data)).toBe(sha(want[i]!.data));
    expect(Buffer.from(im.data).equals(Buffer.from(want[i]!.data))).toBe(true);
  });
  return c;
}

beforeAll(async () => {
  f = makeFixture('spn-codec-');
  runs.s2 = await trainRun(f, 's2');
  runs.s1 = await trainRun(f, 's1', { scale: 1 });
  runs.s4 = await trainRun(f, 's4', { scale: 4 });
  runs.rgb = await trainRun(f, 'rgb', { data: f.rgb });
  runs.small = await trainRun(f, 'small', { subsample: 2 });
  runs.size = await trainRun(f, 'size', { stage: 'size' });
  runs.b3 = await trainRun(f, 'b3', { bits: 3 });
  runs.depth = await trainRun(f, 'depth', { stage: 'depth', givenBits: 3 });
  gray = (await loadDataset(f.gray, { cacheDir: f.cacheDir })).test;
  rgb = (await loadDataset(f.rgb, { cacheDir: f.cacheDir })).test;
  const pipe = (name: string, stages: string[]) => fs.writeFileSync(path.join(f.work, `${name}.json`), JSON.stringify({ stages: stages.map((s) => ({ run: `runs/${s}` })) }));
  pipe('size', ['small', 'size']);
  pipe('depth', ['b3', 'depth']);
});

afterAll(() => cleanupTmp());

describe('round trips', () => {
  for (const S of [1, 2, 4]) {
    it(`real and random gray images, S=${S}; the code length follows the model's NLL`, async () => {
      const set = mixed(gray, 5, 2);
      const c = await roundTrip({ run: runs[`s${S}`]! }, set);
      expect(c.stages[0]!.model.scale).toBe(S);
      // the streams cost what the model says, to within the termination bytes
      const { model } = await loadModel(runs[`s${S}`]!);
      const nll = evaluate(model, set).nats / Math.LN2;
      model.dispose();
      const modelBits = c.images.reduce((a, i) => a + i.model_bits, 0);
      expect(Math.abs(modelBits - nll) / nll).toBeLessThan(1e-4); // the incremental decoder's NLL = the full pass's
      const ideal = c.images.reduce((a, i) => a + i.ideal_bits, 0);
      expect(Math.abs(ideal - modelBits) / modelBits).toBeLessThan(1e-3); // quantization at 2^24
      for (const im of c.images) expect(8 * im.bytes).toBeLessThanOrEqual(im.ideal_bits + 16); // termination ≤ 2 bytes
      expect(c.images.map((i) => i.coded)).toEqual(Array(7).fill(64));
      expect(c.sizes.total).toBe(c.bytes.length);
      expect(c.sizes.header + c.sizes.records + c.sizes.streams).toBe(c.sizes.total);
    });
  }

  it('three channels (real and random RGB)', async () => {
    const c = await roundTrip({ run: runs.rgb! }, mixed(rgb, 4, 1), 2);
    expect(c.stages[0]!.model.channels).toBe(3);
    expect(c.subpixels).toBe(5 * 192);
  });

  it('a size pipeline: 4×4 base + size stage S=2, each stage with its own model', async () => {
    const c = await roundTrip({ pipeline: path.join(f.work, 'size.json') }, mixed(gray, 4, 1));
    expect(c.stages.map((s) => s.model.stage)).toEqual(['full', 'size']);
    // the stages' NLLs add up: base on x[::2, ::2], the size stage on the rest
    const set = mixed(gray, 4, 1);
    const a = await loadModel(runs.small!);
    const b = await loadModel(runs.size!);
    const nll = (evaluate(a.model, subsampleSet(set, 2)).nats + evaluate(b.model, set).nats) / Math.LN2;
    a.model.dispose();
    b.model.dispose();
    expect(Math.abs(c.images.reduce((s, i) => s + i.model_bits, 0) - nll) / nll).toBeLessThan(1e-4);
    expect(decodeContainer2(c.bytes, 'x').stages).toHaveLength(2);
  });

  it('a depth pipeline: 3-bit base + depth stage given 3 bits', async () => {
    const c = await roundTrip({ pipeline: path.join(f.work, 'depth.json') }, mixed(gray, 4, 1));
    expect(c.stages.map((s) => s.model.stage)).toEqual(['full', 'depth']);
    expect(c.images.map((i) => i.coded)).toEqual(Array(5).fill(128)); // every sub-pixel twice: its high bits, then its low bits
  });

  it('a 3-bit run codes 3-bit values; batch size does not matter for the round trip', async () => {
    const set = memorySet(readAll(gray).map((v) => v >> 5), gray);
    const a = await roundTrip({ run: runs.b3! }, set, 16);
    const b = await roundTrip({ run: runs.b3! }, set, 5);
    expect([a.batch, b.batch]).toEqual([16, 5]);
    expect(decodeContainer2(b.bytes, 'x').batch).toBe(5);
    await expect(compressImages({ run: runs.b3! }, gray)).rejects.toThrow(/image #0 has the value \d+ at sub-pixel \d+; the model codes 3-bit values \(0\.\.7\)/);
  });

  it('no images: an empty file that decodes to nothing', async () => {
    for (const version of [1, 2] as const) {
      const c = await compressImages({ run: runs.s2! }, memorySet(new Uint8Array(0), { n: 0, h: 8, w: 8, c: 1 }), { version });
      expect(c.images).toEqual([]);
      expect((await decompressBytes(c.bytes, version === 2 ? { run: runs.s2! } : {})).images).toEqual([]);
    }
  });

  it('the raw (non-EMA) weights: recorded in the flags, and decoded with them', async () => {
    const set = mixed(gray, 2, 1);
    const raw = await compressImages({ run: runs.s2! }, set, { ema: false });
    expect(decodeContainer2(raw.bytes, 'x').ema).toBe(false);
    expect(raw.stages[0]!.weights).not.toBe((await compressImages({ run: runs.s2! }, set)).stages[0]!.weights);
    const d = await decompressBytes(raw.bytes, { run: runs.s2! });
    expect(d.images.map((im) => sha(im.data))).toEqual(listOf(set).map((im) => sha(im.data)));
  });

  it('version 1 files are still written on request and read, with the run they record (no --run)', async () => {
    const set = mixed(gray, 3, 2);
    const c = await roundTrip({ run: runs.s2! }, set, 2, 1);
    expect(c.header!.format).toBe('spn-codec');
    expect(c.header!.stages[0]!.run).toBe(path.resolve(runs.s2!));
    expect(c.bytes[4]).toBe(1);
    // the same images cost the same streams in both versions (same batches, same walk), only the container differs
    const v2 = await compressImages({ run: runs.s2! }, set, { batchSize: 2 });
    expect(v2.images.map((i) => i.bytes)).toEqual(c.images.map((i) => i.bytes));
    expect(v2.sizes.streams).toBe(c.sizes.streams);
    expect(v2.sizes.total).toBeLessThan(c.sizes.total - 500);
    await expect(compressImages({ run: runs.s2! }, [{ height: 9, width: 8, data: new Uint8Array(72) }], { version: 1 })).rejects.toThrow(/image #0 is 8×9 \(W×H\); a version 1 file codes only the model's 8×8/);
  });
});

describe('images of any size', () => {
  it('are coded as tiles of the model\'s size; the padding is not coded; the true sizes come back', async () => {
    const sizes = [[1, 1], [5, 13], [8, 8], [20, 17], [16, 24], [3, 8]] as const;
    const images = sizes.map(([h, w], i) => ({ height: h, width: w, data: smoothImage(h, w, 1, 10 + i) }));
    const c = await roundTrip({ run: runs.s2! }, images, 4);
    expect(c.tiles).toBe(1 + 2 + 1 + 9 + 6 + 1);
    expect(c.images.map((i) => i.coded)).toEqual(sizes.map(([h, w]) => h * w));
    expect(c.images.map((i) => [i.height, i.width])).toEqual(sizes);
    expect(c.subpixels).toBe(sizes.reduce((a, [h, w]) => a + h * w, 0));
    expect(decodeContainer2(c.bytes, 'x').images.map((im) => [im.height, im.width])).toEqual(sizes);
    // a 1×1 image costs its one sub-pixel, not a tile of 64
    expect(c.images[0]!.model_bits).toBeLessThan(20);
  });

  it('in three channels, and through size and depth pipelines', async () => {
    const im = (h: number, w: number, c: number, seed: number) => ({ height: h, width: w, data: smoothImage(h, w, c, seed) });
    const a = await roundTrip({ run: runs.rgb! }, [im(11, 7, 3, 1), im(2, 19, 3, 2)], 2);
    expect(a.images.map((i) => i.coded)).toEqual([11 * 7 * 3, 2 * 19 * 3]);
    // the size pipeline's base sees every 2nd pixel of each tile: an odd edge is real at some positions, padding at others
    const b = await roundTrip({ pipeline: path.join(f.work, 'size.json') }, [im(13, 9, 1, 3), im(1, 3, 1, 4)], 3);
    expect(b.images.map((i) => i.coded)).toEqual([13 * 9, 3]);
    const d = await roundTrip({ pipeline: path.join(f.work, 'depth.json') }, [im(9, 10, 1, 5)], 3);
    expect(d.images.map((i) => i.coded)).toEqual([2 * 9 * 10]);
  });

  it('the tiles of one image are walked as a batch, and batches run across images', async () => {
    const big = { height: 24, width: 32, data: smoothImage(24, 32, 1, 7) }; // 12 tiles
    const one = await roundTrip({ run: runs.s2! }, [big], 32);
    expect([one.tiles, one.walks]).toEqual([12, 1]);
    const five = await roundTrip({ run: runs.s2! }, [big], 5);
    expect(five.walks).toBe(3);
    // the batch changes the arithmetic's grouping, not what is coded: the same image, the same sub-pixels
    expect(five.images[0]!.coded).toBe(one.images[0]!.coded);
    const small = await roundTrip({ run: runs.s2! }, [big, { height: 8, width: 8, data: smoothImage(8, 8, 1, 8) }, { height: 4, width: 20, data: smoothImage(4, 20, 1, 9) }], 8);
    expect([small.tiles, small.walks]).toEqual([12 + 1 + 3, 2]);
  });
});

describe('a version 1 file is refused when', () => {
  let c: CompressResult;
  const set = () => mixed(gray, 3, 1);
  beforeAll(async () => {
    c = await compressImages({ run: runs.s2! }, set(), { batchSize: 2, names: ['a', 'b', 'c', 'd'], version: 1 });
  });
  /** The file with its header (or records) changed and a valid checksum. */
  const edited = (edit: (x: ReturnType<typeof decodeContainer>) => void): Uint8Array => {
    const x = decodeContainer(c.bytes, 'x');
    edit(x);
    return encodeContainer(x).bytes;
  };
  const fails = async (bytes: Uint8Array, message: RegExp, o: { run?: string; pipeline?: string } = {}) => {
    const err = await decompressBytes(bytes, { file: 'f.spn', ...o }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(SpnError);
    expect((err as Error).message).toMatch(message);
  };

  it('a corrupted or truncated file (checksum), and what is not a .spn file', async () => {
    const bad = Uint8Array.from(c.bytes);
    bad[bad.length - 40]! ^= 1;
    await fails(bad, /f\.spn: checksum mismatch: the file is truncated or corrupted/);
    await fails(c.bytes.subarray(0, c.bytes.length - 5), /f\.spn: checksum mismatch/);
    await fails(c.bytes.subarray(0, 20), /f\.spn is truncated: 20 bytes/);
    await fails(Buffer.from('PNG not at all'), /f\.spn is not a \.spn file/);
    const v9 = Uint8Array.from(c.bytes);
    v9[4] = 9;
    await fails(v9, /f\.spn is a version 9 \.spn file; this spn reads versions 1 and 2/);
  });

  it('a different libtorch, thread count, or model', async () => {
    await fails(edited((x) => (x.header.libtorch = '0.0.1')), /f\.spn was coded with libtorch 0\.0\.1; this machine has \d/);
    await fails(edited((x) => (x.header.threads = 2)), /coded on 2 libtorch threads/);
    await fails(c.bytes, /stage 1: the model of .*runs\/s4\/checkpoints\/\S+ differs from the one the file was coded with: scale 2 \(file\) vs 4/, { run: runs.s4! });
    // same architecture, other weights: the rgb run differs in channels, so train a twin of s2
    const twin = await trainRun(f, 's2-twin', { seed: 9 });
    await fails(c.bytes, /stage 1: no checkpoint of .*s2-twin has the EMA weights the file was coded with \(checkpoints\/\S+, step 3, sha256 [0-9a-f]{12}…\); tried /, { run: twin });
    await fails(edited((x) => (x.header.stages[0]!.run = path.join(f.work, 'nowhere'))), /stage 1 was coded with the run .*nowhere, which is not there/);
    await fails(c.bytes, /was coded with 1 stage\(s\); .*size\.json has 2/, { pipeline: path.join(f.work, 'size.json') });
    await fails(c.bytes, /runs\/nope is neither a run folder nor a checkpoint/, { run: path.join(f.work, 'runs', 'nope') });
  });

  it("a machine whose logits differ (the probe), and pixels that do not match their hash", async () => {
    await fails(edited((x) => (x.header.stages[0]!.probe = '0'.repeat(64))), /stage 1 \(.*\): this machine computes the model's logits differently .*decoding here would give wrong pixels/);
    await fails(edited((x) => (x.records[1]!.hash = new Uint8Array(4))), /f\.spn: image 1 \(b\) decoded to pixels whose hash \(.*\) is not the recorded one \(00000000\)/);
    await fails(edited((x) => (x.header.pixels = 'f'.repeat(64))), /f\.spn: the decoded images' sha256 \(.*\) is not the recorded one \(ffffffffffffffff…\); nothing was written/);
    // a stream of another image decodes to other pixels: caught by the hash, not written
    await fails(edited((x) => ([x.records[0]!.stream, x.records[2]!.stream] = [x.records[2]!.stream, x.records[0]!.stream])), /image 0 \(a\) decoded to pixels whose hash/);
  });

  it('a damaged checkpoint among the candidates: skipped with its reason, the matching one beside it decodes', async () => {
    // a copy of s2 (the other tests keep theirs): the file records its checkpoints/best, step 3's weights
    const dir = path.join(f.work, 'runs', 's2-damaged');
    fs.cpSync(runs.s2!, dir, { recursive: true });
    const images = set();
    const coded = await compressImages({ run: dir }, images, { batchSize: 2, version: 1 });
    expect(coded.header!.stages[0]!.checkpoint).toBe(path.join('checkpoints', 'best'));
    // training went on and was killed while writing: the recorded best cut short, a newer step of garbage
    const ck = path.join(dir, 'checkpoints');
    const st = fs.readFileSync(path.join(ck, 'best.safetensors'));
    fs.writeFileSync(path.join(ck, 'best.safetensors'), st.subarray(0, st.length - 100));
    const meta = JSON.parse(fs.readFileSync(path.join(ck, 'step-00000003.json'), 'utf8'));
    fs.writeFileSync(path.join(ck, 'step-00000009.json'), JSON.stringify({ ...meta, step: 9 }));
    fs.writeFileSync(path.join(ck, 'step-00000009.safetensors'), Buffer.alloc(st.length));
    const d = await decompressBytes(coded.bytes, { file: 'f.spn' });
    expect(d.images.map((im) => sha(im.data))).toEqual(listOf(images).map((im) => sha(im.data)));
    // without the matching one: the error names each candidate tried and why it was skipped
    for (const ext of ['.json', '.safetensors']) fs.rmSync(path.join(ck, `step-00000003${ext}`));
    await fails(
      coded.bytes,
      /stage 1: no checkpoint of .*s2-damaged has the EMA weights .*; tried checkpoints\/best \(damaged: best\.safetensors holds \d+ bytes, its sidecar recorded \d+ \(cut short[^)]*\)\), checkpoints\/step-00000009 \(damaged: step-00000009\.safetensors: /,
    );
  });

  it('an invalid header (an unsafe image name), even with a valid checksum', async () => {
    // rewrite the JSON header by hand: encodeContainer itself refuses such a header
    const buf = Buffer.from(c.bytes);
    const len = buf.readUInt32LE(5);
    const header = JSON.parse(buf.subarray(9, 9 + len).toString('utf8'));
    header.names[0] = '../evil';
    const json = Buffer.from(JSON.stringify(header));
    const lenBuf = Buffer.alloc(4);
    lenBuf.writeUInt32LE(json.length);
    const body = Buffer.concat([buf.subarray(0, 5), lenBuf, json, buf.subarray(9 + len, buf.length - 32)]);
    const file = Buffer.concat([body, createHash('sha256').update(body).digest()]);
    await fails(file, /f\.spn: invalid header: names\.0: /);
    expect(() => encodeContainer({ ...decodeContainer(c.bytes, 'x'), header: { ...header } })).toThrow(/"names",\s*0\s*\][\s\S]*must match pattern/);
  });
});

describe('image names', () => {
  it('are recorded as compactly as they can be', () => {
    expect(compactNames(null)).toBe(null);
    expect(compactNames(['image-000000', 'image-000001'])).toBe(null);
    expect(compactNames(['test-00000', 'test-00001', 'test-00002'])).toEqual({ prefix: 'test-', digits: 5 });
    expect(compactNames(['0', '1'])).toEqual({ prefix: '', digits: 1 });
    expect(compactNames(['test-00000', 'test-00002'])).toEqual(['test-00000', 'test-00002']);
    expect(compactNames(['a', 'b'])).toEqual(['a', 'b']);
  });
});

describe('inputs', () => {
  const image = { height: 8, width: 8, channels: 1, bits: 8 };
  it('reads PNG and JPEG files, folders and dataset specs; refuses what the model cannot represent, naming the file', async () => {
    const dir = path.join(f.work, 'in');
    fs.mkdirSync(path.join(dir, 'sub'), { recursive: true });
    const px = readAll(gray).subarray(0, 64);
    grayPng(path.join(dir, 'a.png'), 8, px);
    grayPng(path.join(dir, 'sub', 'a.png'), 8, readAll(gray).subarray(64, 128));
    expect(Array.from((await readImageFile(path.join(dir, 'a.png'), image)).data)).toEqual(Array.from(px));
    expect(Array.from((await readImageFile(path.join(dir, 'a.png'), { ...image, bits: 3 })).data)).toEqual(Array.from(px, (v) => v >> 5));
    const { config } = await loadModel(runs.s2!).then((m) => (m.model.dispose(), m));
    const r = await readInputs([path.join(dir, 'a.png'), dir, f.gray], { image, config, limit: 2, cacheDir: f.cacheDir });
    expect(r.names).toEqual(['a', 'a-2', 'sub_a', 'test-00000', 'test-00001']);
    expect(r.set.n).toBe(5);
    expect(Array.from(readAll(r.set).subarray(3 * 64, 5 * 64))).toEqual(Array.from(readAll(gray).subarray(0, 128)));

    const bad = (name: string, png: PNG) => {
      const file = path.join(dir, name);
      fs.writeFileSync(file, PNG.sync.write(png));
      return file;
    };
    const rgba = (w: number, h: number, fill: (i: number) => [number, number, number, number]) => {
      const p = new PNG({ width: w, height: h });
      for (let i = 0; i < w * h; i++) p.data.set(fill(i), i * 4);
      return p;
    };
    await expect(readImageFile(bad('big.png', rgba(9, 8, () => [1, 1, 1, 255])), image)).rejects.toThrow(/big\.png is 9×8 \(W×H\); the model codes 8×8 images \(no resizing\)/);
    await expect(readImageFile(bad('colour.png', rgba(8, 8, (i) => [i, 0, 0, 255])), image)).rejects.toThrow(/colour\.png is a colour image \(pixel 1 is 1,0,0\)/);
    await expect(readImageFile(bad('alpha.png', rgba(8, 8, (i) => [5, 5, 5, i === 3 ? 0 : 255])), image)).rejects.toThrow(/alpha\.png has transparent pixels \(alpha 0 at pixel 3\)/);
    const deep = new PNG({ width: 8, height: 8, bitDepth: 16, colorType: 0, inputColorType: 0 } as ConstructorParameters<typeof PNG>[0]);
    deep.data = Buffer.alloc(8 * 8 * 2, 7);
    fs.writeFileSync(path.join(dir, 'deep.png'), PNG.sync.write(deep, { bitDepth: 16, colorType: 0, inputColorType: 0 } as Parameters<typeof PNG.sync.write>[1]));
    await expect(readImageFile(path.join(dir, 'deep.png'), image)).rejects.toThrow(/deep\.png has 16-bit samples/);
    // a JPEG: the pixels libvips decodes (a gray one comes out as three equal channels)
    const jpg = path.join(dir, 'photo.jpg');
    await sharp(Buffer.from(px), { raw: { width: 8, height: 8, channels: 1 } }).toColourspace('b-w').jpeg({ quality: 90 }).toFile(jpg);
    const decoded = await sharp(jpg).raw().toBuffer({ resolveWithObject: true });
    const ch = decoded.info.channels;
    expect(Array.from((await readImageFile(jpg, image)).data)).toEqual(Array.from({ length: 64 }, (_, i) => decoded.data[i * ch]!));
    expect(Array.from((await readImageFile(jpg, { ...image, channels: 3 })).data)).toEqual(Array.from({ length: 192 }, (_, i) => decoded.data[Math.floor(i / 3) * ch + (ch === 3 ? i % 3 : 0)]!));
    await expect(readImageFile(jpg, { ...image, width: 4 })).rejects.toThrow(/photo\.jpg is 8×8 \(W×H\); the model codes 4×8/);
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'x');
    await expect(readImageFile(path.join(dir, 'notes.txt'), image)).rejects.toThrow(/notes\.txt is not a PNG or JPEG/);
    fs.writeFileSync(path.join(dir, 'broken.png'), 'not a png');
    await expect(readImageFile(path.join(dir, 'broken.png'), image)).rejects.toThrow(/broken\.png is not a readable PNG/);
    await expect(readInputs(['no-such-dataset-kind'], { image, config })).rejects.toThrow(/unknown dataset spec "no-such-dataset-kind"/);
    await expect(readInputs([f.rgb], { image, config, cacheDir: f.cacheDir })).rejects.toThrow(/has images 8×8×3.*the model expects 8×8×1/);
  });

  it('spn compress reads image files of any size (spn score only the model\'s), dataset images at the model\'s', async () => {
    const dir = path.join(f.work, 'any');
    fs.mkdirSync(dir, { recursive: true });
    const wide = smoothImage(5, 21, 1, 3);
    writePng(path.join(dir, 'wide.png'), 21, 5, wide);
    const { config } = await loadModel(runs.s2!).then((m) => (m.model.dispose(), m));
    const r = await readImages([path.join(dir, 'wide.png'), f.gray], { image, config, limit: 1, cacheDir: f.cacheDir });
    expect(r.names).toEqual(['wide', 'test-00000']);
    expect(r.images.map((im) => [im.height, im.width])).toEqual([[5, 21], [8, 8]]);
    expect(Array.from(r.images[0]!.data)).toEqual(Array.from(wide));
    expect(Array.from(r.images[1]!.data)).toEqual(Array.from(readAll(gray).subarray(0, 64)));
    await expect(readInputs([path.join(dir, 'wide.png')], { image, config })).rejects.toThrow(/wide\.png is 21×5 \(W×H\); the model codes 8×8 images/);
    // an RGB file for a 3-channel model of any size; a colour one for a gray model is refused, naming it
    const colour = smoothImage(6, 4, 3, 4);
    writePng(path.join(dir, 'colour.png'), 4, 6, colour, 3);
    expect(Array.from((await readImageFile(path.join(dir, 'colour.png'), { channels: 3, bits: 8 })).data)).toEqual(Array.from(colour));
    await expect(readImageFile(path.join(dir, 'colour.png'), { channels: 1, bits: 8 })).rejects.toThrow(/colour\.png is a colour image .*the model codes 1-channel \(gray\) images/);
  });
});

describe('bench/codec.ts (quick, on a tiny run)', () => {
  it('reports the codec against the NLL, PNG and WebP, every image round-tripped', async () => {
    const { benchCodec } = await import('../../bench/codec.js');
    const r = await benchCodec({ run: runs.s2!, data: f.gray, limit: 4, batchSize: 3, cacheDir: f.cacheDir, quick: true });
    expect(r).toMatchObject({ benchmark: 'codec', images: 4, subpixels_per_image: 64, batch: 3 });
    expect(r.spn.round_trip_exact).toBe(4);
    expect(r.spn.sha256_out).toBe(r.spn.sha256_in);
    expect(Math.abs(r.spn.model_bits_per_subpixel_incremental - r.spn.model_nll_bits_per_subpixel)).toBeLessThan(1e-4);
    expect(r.spn.bits_per_subpixel).toBeCloseTo((8 * r.spn.file_bytes) / 256, 10);
    expect(r.baselines.map((b) => [b.coder, b.round_trip_exact])).toEqual(expect.arrayContaining([['png', 4], ['webp', 4]]));
    for (const b of r.baselines) expect(b.bits_per_subpixel).toBeGreaterThan(b.data_bits_per_subpixel ?? 0);
  });

  it('single-image files and mosaics: every file round-tripped, sizes from the files', async () => {
    const { benchCodecSingle, benchCodecMosaic } = await import('../../bench/codec.js');
    const s = await benchCodecSingle({ run: runs.s2!, data: f.gray, limit: 3, cacheDir: f.cacheDir, quick: true });
    expect(s).toMatchObject({ benchmark: 'codec-single', images: 3, subpixels_per_image: 64, spn: { round_trip_exact: 3 } });
    expect(s.spn.mean_container_bytes).toBe(30); // 19 of header, 7 of record, 4 of checksum (docs/spn-format.md)
    expect(s.spn.mean_file_bytes).toBeCloseTo(s.spn.mean_stream_bytes + 30, 10);
    expect(s.baselines.map((b) => b.coder)).toEqual(['png', 'webp']);
    const m = await benchCodecMosaic({ run: runs.s2!, data: f.gray, cacheDir: f.cacheDir, quick: true, limit: 9, batchSize: 3 });
    // 9 images: two 2×2 mosaics (16×16) and one odd 11×3 of the image left and the first ones again
    expect(m.mosaics.map((x) => [x.width, x.height, x.tiles, x.exact])).toEqual([[16, 16, 4, true], [16, 16, 4, true], [11, 3, 2, true]]);
    expect(m.summary.map((x) => [x.kind, x.count])).toEqual([['full', 2], ['odd', 1]]);
  });
});

describe('spn compress / spn decompress', () => {
  const cmds = [registerCompress, registerDecompress];
  it('round-trip PNG files bit for bit, write atomically, report, and validate options', async () => {
    const dir = path.join(f.work, 'cli-in');
    fs.mkdirSync(dir, { recursive: true });
    for (let i = 0; i < 3; i++) grayPng(path.join(dir, `img ${i}.png`), 8, i < 2 ? readAll(gray).subarray(i * 64, (i + 1) * 64) : noise(64, 5));
    const out = path.join(f.work, 'cli.spn');
    const rep = JSON.parse(await cli(cmds, 'compress', runs.s2!, dir, '--out', out, '--json', '--quiet', '--batch-size', '2'));
    expect(rep).toMatchObject({ file: out, version: 2, images: 3, tiles: 3, subpixels: 192, bytes: fs.statSync(out).size });
    expect(rep.bits_per_subpixel).toBeCloseTo((8 * rep.bytes) / 192, 10);
    expect(fs.readdirSync(f.work).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    const outDir = path.join(f.work, 'cli-out');
    const d = JSON.parse(await cli(cmds, 'decompress', out, '--out', outDir, '--run', runs.s2!, '--json', '--quiet'));
    expect(d.files.map((p: string) => path.basename(p))).toEqual(['img_0.png', 'img_1.png', 'img_2.png']);
    for (let i = 0; i < 3; i++) {
      const a = PNG.sync.read(fs.readFileSync(path.join(dir, `img ${i}.png`)));
      const b = PNG.sync.read(fs.readFileSync(path.join(outDir, `img_${i}.png`)));
      expect(Buffer.from(b.data).equals(Buffer.from(a.data))).toBe(true);
    }
    // a decode that fails writes nothing
    const bad = path.join(f.work, 'bad.spn');
    fs.writeFileSync(bad, fs.readFileSync(out).subarray(0, 100));
    await expect(cli(cmds, 'decompress', bad, '--out', path.join(f.work, 'never'), '--run', runs.s2!, '--quiet')).rejects.toThrow(/bad\.spn: checksum mismatch/);
    await expect(cli(cmds, 'decompress', out, '--out', path.join(f.work, 'never'), '--quiet')).rejects.toThrow(/cli\.spn names its model only by the hash of the weights; pass --run <dir>/);
    expect(fs.existsSync(path.join(f.work, 'never'))).toBe(false);
    // options
    await expect(cli(cmds, 'compress', runs.s2!, dir, '--out', out, '--batch-size', '0')).rejects.toThrow(/--batch-size 0: expected a positive integer/);
    await expect(cli(cmds, 'compress', runs.s2!, dir, '--out', out, '--batch-size', '257')).rejects.toThrow(/batch size 257: expected an integer from 1 to 256/);
    await expect(cli(cmds, 'compress', runs.s2!, '--out', out)).rejects.toThrow(/no inputs after the run folder/);
    await expect(cli(cmds, 'compress', runs.size!, dir, '--out', out)).rejects.toThrow(/is a 'size' upscaling stage: .*--pipeline/);
    await expect(cli(cmds, 'decompress', out, '--out', outDir, '--run', runs.s2!, '--pipeline', 'p.json')).rejects.toThrow(/not both/);
    await expect(cli(cmds, 'compress', runs.s2!, dir, '--out', out, '--split', 'dev')).rejects.toThrow(/--split dev: expected test or train/);
  });

  it('compress --pipeline with a dataset spec, decompress with --pipeline', async () => {
    const out = path.join(f.work, 'pipe.spn');
    const pipeline = path.join(f.work, 'size.json');
    await cli(cmds, 'compress', f.gray, '--pipeline', pipeline, '--limit', '3', '--out', out, '--quiet');
    const outDir = path.join(f.work, 'pipe-out');
    await cli(cmds, 'decompress', out, '--out', outDir, '--pipeline', pipeline, '--quiet');
    expect(fs.readdirSync(outDir).sort()).toEqual(['test-00000.png', 'test-00001.png', 'test-00002.png']);
    expect(decodeContainer2(fs.readFileSync(out), out).names).toEqual({ prefix: 'test-', digits: 5 }); // a rule, not a list
    const back = PNG.sync.read(fs.readFileSync(path.join(outDir, 'test-00002.png')));
    expect(Array.from({ length: 64 }, (_, i) => back.data[i * 4]!)).toEqual(Array.from(readAll(gray).subarray(128, 192)));
  });

  it('one image of any size: a file of its stream plus at most 48 bytes, decoded under the file\'s name', async () => {
    const dir = path.join(f.work, 'one');
    fs.mkdirSync(dir, { recursive: true });
    const px = smoothImage(19, 30, 1, 12);
    writePng(path.join(dir, 'cat.png'), 30, 19, px);
    const out = path.join(dir, 'cat.spn');
    const rep = JSON.parse(await cli(cmds, 'compress', runs.s2!, path.join(dir, 'cat.png'), '--out', out, '--json', '--quiet'));
    expect(rep).toMatchObject({ version: 2, images: 1, tiles: 3 * 4, subpixels: 19 * 30 });
    const c = decodeContainer2(fs.readFileSync(out), out);
    expect(c.names).toBe(null); // the default: the file's own name
    expect(fs.statSync(out).size - c.images[0]!.stream.length).toBeLessThanOrEqual(48);
    // renamed, it decodes under its new name
    fs.copyFileSync(out, path.join(dir, 'dog.spn'));
    for (const name of ['cat', 'dog']) {
      const d = JSON.parse(await cli(cmds, 'decompress', path.join(dir, `${name}.spn`), '--out', path.join(dir, 'out'), '--run', runs.s2!, '--json', '--quiet'));
      expect(d.files).toEqual([path.join(dir, 'out', `${name}.png`)]);
      const back = PNG.sync.read(fs.readFileSync(d.files[0]));
      expect([back.width, back.height]).toEqual([30, 19]);
      expect(Array.from({ length: 19 * 30 }, (_, i) => back.data[i * 4]!)).toEqual(Array.from(px));
    }
  });

  it('--help says what the preprocessing is', async () => {
    let help = '';
    const p = new Command().exitOverride().configureOutput({ writeOut: (t) => (help += t) });
    registerCompress(p);
    await expect(p.parseAsync(['node', 'spn', 'compress', '--help'])).rejects.toThrow();
    expect(help).toMatch(/of any size up to 8192×8192 pixels \(no\s+resizing: coded as tiles of the model's H×W/);
    expect(help).toMatch(/top <bits> bits/);
    expect(help).toMatch(/16-bit PNGs are refused/);
  });
});
