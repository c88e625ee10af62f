// The codec end to end on tiny trained runs: exact round trips of real and random images for
// S = 1, 2, 4, one and three channels, a size and a depth pipeline; the container's checks
// (model, libtorch, probe, checksum, truncation, pixel hash) and the inputs it refuses; the
// commands.
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
import { subsampleSet } from '../../src/data/subsample.js';
import { compactNames, compressImages, decompressBytes, decodeContainer, encodeContainer, readImageFile, readInputs, type CompressResult } from '../../src/codec/index.js';
import { register as registerCompress } from '../../src/cli/compress.js';
import { register as registerDecompress } from '../../src/cli/decompress.js';
import { loadModel } from '../../src/store/checkpoint.js';
import { evaluate } from '../../src/store/evaluate.js';
import { cleanupTmp } from '../data/fixtures.js';
import { cli } from '../cli/in-process.js';
import { grayPng, makeFixture, noise, trainRun, type Fixture } from './fixtures.js';

let f: Fixture;
const runs: Record<string, string> = {};
let gray: ImageSet; // 16 real 8×8 gray test images
let rgb: ImageSet; // 4 real 8×8 RGB test images

const sha = (a: Uint8Array) => createHash('sha256').update(a).digest('hex');

/** n images: the first real ones from `set`, then uniform noise. */
function mixed(set: ImageSet, real: number, random: number, seed = 1): ImageSet {
  const size = set.h * set.w * set.c;
  const data = new Uint8Array((real + random) * size);
  data.set(set.data.subarray(0, real * size));
  data.set(noise(random * size, seed), real * size);
  return { ...set, n: real + random, data };
}

async function roundTrip(src: { run: string } | { pipeline: string }, set: ImageSet, batchSize = 3): Promise<CompressResult> {
  const c = await compressImages(src, set, { batchSize });
  const d = await decompressBytes(c.bytes, { file: 'round-trip.spn' });
  expect(d.images.n).toBe(set.n);
  expect(sha(d.images.data)).toBe(sha(set.data));
  expect(Buffer.from(d.images.data).equals(Buffer.from(set.data))).toBe(true);
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
      expect(c.header.stages[0]!.model.scale).toBe(S);
      // the streams cost what the model says, to within the termination bytes
      const { model } = await loadModel(runs[`s${S}`]!);
      const nll = evaluate(model, set).nats / Math.LN2;
      model.dispose();
      const modelBits = c.images.reduce((a, i) => a + i.model_bits, 0);
      expect(Math.abs(modelBits - nll) / nll).toBeLessThan(1e-4); // the incremental decoder's NLL = the full pass's
      const ideal = c.images.reduce((a, i) => a + i.ideal_bits, 0);
      expect(Math.abs(ideal - modelBits) / modelBits).toBeLessThan(1e-3); // quantization at 2^24
      for (const im of c.images) expect(8 * im.bytes).toBeLessThanOrEqual(im.ideal_bits + 16); // termination ≤ 2 bytes
      expect(c.sizes.total).toBe(c.bytes.length);
      expect(c.sizes.header + c.sizes.records + c.sizes.streams).toBe(c.sizes.total);
    });
  }

  it('three channels (real and random RGB)', async () => {
    const c = await roundTrip({ run: runs.rgb! }, mixed(rgb, 4, 1), 2);
    expect(c.header.image).toEqual({ height: 8, width: 8, channels: 3, bits: 8 });
  });

  it('a size pipeline: 4×4 base + size stage S=2, each stage with its own model', async () => {
    const c = await roundTrip({ pipeline: path.join(f.work, 'size.json') }, mixed(gray, 4, 1));
    expect(c.header.stages.map((s) => s.model.stage)).toEqual(['full', 'size']);
    // the stages' NLLs add up: base on x[::2, ::2], the size stage on the rest
    const set = mixed(gray, 4, 1);
    const a = await loadModel(runs.small!);
    const b = await loadModel(runs.size!);
    const nll = (evaluate(a.model, subsampleSet(set, 2)).nats + evaluate(b.model, set).nats) / Math.LN2;
    a.model.dispose();
    b.model.dispose();
    expect(Math.abs(c.images.reduce((s, i) => s + i.model_bits, 0) - nll) / nll).toBeLessThan(1e-4);
  });

  it('a depth pipeline: 3-bit base + depth stage given 3 bits', async () => {
    const c = await roundTrip({ pipeline: path.join(f.work, 'depth.json') }, mixed(gray, 4, 1));
    expect(c.header.stages.map((s) => s.model.stage)).toEqual(['full', 'depth']);
    expect(c.header.image.bits).toBe(8);
  });

  it('a 3-bit run codes 3-bit values; batch size does not matter for the round trip', async () => {
    const set = { ...gray, data: gray.data.map((v) => v >> 5) };
    const a = await roundTrip({ run: runs.b3! }, set, 16);
    const b = await roundTrip({ run: runs.b3! }, set, 5);
    expect(a.header.batch).toBe(16);
    expect(b.header.batch).toBe(5);
    await expect(compressImages({ run: runs.b3! }, gray)).rejects.toThrow(/image #0 has the value \d+ at sub-pixel \d+; the model codes 3-bit values \(0\.\.7\)/);
  });

  it('no images: an empty file that decodes to nothing', async () => {
    const c = await compressImages({ run: runs.s2! }, { ...gray, n: 0, data: new Uint8Array(0) });
    expect(c.header.count).toBe(0);
    expect((await decompressBytes(c.bytes)).images.n).toBe(0);
  });
});

describe('the container refuses', () => {
  let c: CompressResult;
  const set = () => mixed(gray, 3, 1);
  beforeAll(async () => {
    c = await compressImages({ run: runs.s2! }, set(), { batchSize: 2, names: ['a', 'b', 'c', 'd'] });
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
    const v2 = Uint8Array.from(c.bytes);
    v2[4] = 2;
    await fails(v2, /f\.spn is a version 2 \.spn file; this spn reads version 1/);
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
    const coded = await compressImages({ run: dir }, images, { batchSize: 2 });
    expect(coded.header.stages[0]!.checkpoint).toBe(path.join('checkpoints', 'best'));
    // training went on and was killed while writing: the recorded best cut short, a newer step of garbage
    const ck = path.join(dir, 'checkpoints');
    const st = fs.readFileSync(path.join(ck, 'best.safetensors'));
    fs.writeFileSync(path.join(ck, 'best.safetensors'), st.subarray(0, st.length - 100));
    const meta = JSON.parse(fs.readFileSync(path.join(ck, 'step-00000003.json'), 'utf8'));
    fs.writeFileSync(path.join(ck, 'step-00000009.json'), JSON.stringify({ ...meta, step: 9 }));
    fs.writeFileSync(path.join(ck, 'step-00000009.safetensors'), Buffer.alloc(st.length));
    const d = await decompressBytes(coded.bytes, { file: 'f.spn' });
    expect(Buffer.from(d.images.data).equals(Buffer.from(images.data))).toBe(true);
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
    const px = gray.data.subarray(0, 64);
    grayPng(path.join(dir, 'a.png'), 8, px);
    grayPng(path.join(dir, 'sub', 'a.png'), 8, gray.data.subarray(64, 128));
    expect(Array.from(await readImageFile(path.join(dir, 'a.png'), image))).toEqual(Array.from(px));
    expect(Array.from(await readImageFile(path.join(dir, 'a.png'), { ...image, bits: 3 }))).toEqual(Array.from(px, (v) => v >> 5));
    const { config } = await loadModel(runs.s2!).then((m) => (m.model.dispose(), m));
    const r = await readInputs([path.join(dir, 'a.png'), dir, f.gray], { image, config, limit: 2, cacheDir: f.cacheDir });
    expect(r.names).toEqual(['a', 'a-2', 'sub_a', 'test-00000', 'test-00001']);
    expect(r.set.n).toBe(5);
    expect(Array.from(r.set.data.subarray(3 * 64, 5 * 64))).toEqual(Array.from(gray.data.subarray(0, 128)));

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
    expect(Array.from(await readImageFile(jpg, image))).toEqual(Array.from({ length: 64 }, (_, i) => decoded.data[i * ch]!));
    expect(Array.from(await readImageFile(jpg, { ...image, channels: 3 }))).toEqual(Array.from({ length: 192 }, (_, i) => decoded.data[Math.floor(i / 3) * ch + (ch === 3 ? i % 3 : 0)]!));
    await expect(readImageFile(jpg, { ...image, width: 4 })).rejects.toThrow(/photo\.jpg is 8×8 \(W×H\); the model codes 4×8/);
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'x');
    await expect(readImageFile(path.join(dir, 'notes.txt'), image)).rejects.toThrow(/notes\.txt is not a PNG or JPEG/);
    fs.writeFileSync(path.join(dir, 'broken.png'), 'not a png');
    await expect(readImageFile(path.join(dir, 'broken.png'), image)).rejects.toThrow(/broken\.png is not a readable PNG/);
    await expect(readInputs(['no-such-dataset-kind'], { image, config })).rejects.toThrow(/unknown dataset spec "no-such-dataset-kind"/);
    await expect(readInputs([f.rgb], { image, config, cacheDir: f.cacheDir })).rejects.toThrow(/has images 8×8×3.*the model expects 8×8×1/);
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
});

describe('spn compress / spn decompress', () => {
  const cmds = [registerCompress, registerDecompress];
  it('round-trip PNG files bit for bit, write atomically, report, and validate options', async () => {
    const dir = path.join(f.work, 'cli-in');
    fs.mkdirSync(dir, { recursive: true });
    for (let i = 0; i < 3; i++) grayPng(path.join(dir, `img ${i}.png`), 8, i < 2 ? gray.data.subarray(i * 64, (i + 1) * 64) : noise(64, 5));
    const out = path.join(f.work, 'cli.spn');
    const rep = JSON.parse(await cli(cmds, 'compress', runs.s2!, dir, '--out', out, '--json', '--quiet', '--batch-size', '2'));
    expect(rep).toMatchObject({ file: out, images: 3, subpixels: 192, bytes: fs.statSync(out).size });
    expect(rep.bits_per_subpixel).toBeCloseTo((8 * rep.bytes) / 192, 10);
    expect(fs.readdirSync(f.work).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    const outDir = path.join(f.work, 'cli-out');
    const d = JSON.parse(await cli(cmds, 'decompress', out, '--out', outDir, '--json', '--quiet'));
    expect(d.files.map((p: string) => path.basename(p))).toEqual(['img_0.png', 'img_1.png', 'img_2.png']);
    for (let i = 0; i < 3; i++) {
      const a = PNG.sync.read(fs.readFileSync(path.join(dir, `img ${i}.png`)));
      const b = PNG.sync.read(fs.readFileSync(path.join(outDir, `img_${i}.png`)));
      expect(Buffer.from(b.data).equals(Buffer.from(a.data))).toBe(true);
    }
    // a decode that fails writes nothing
    const bad = path.join(f.work, 'bad.spn');
    fs.writeFileSync(bad, fs.readFileSync(out).subarray(0, 100));
    await expect(cli(cmds, 'decompress', bad, '--out', path.join(f.work, 'never'), '--quiet')).rejects.toThrow(/bad\.spn: checksum mismatch/);
    expect(fs.existsSync(path.join(f.work, 'never'))).toBe(false);
    // options
    await expect(cli(cmds, 'compress', runs.s2!, dir, '--out', out, '--batch-size', '0')).rejects.toThrow(/--batch-size 0: expected a positive integer/);
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
    expect(decodeContainer(fs.readFileSync(out), out).header.names).toEqual({ prefix: 'test-', digits: 5 }); // a rule, not a list
    const back = PNG.sync.read(fs.readFileSync(path.join(outDir, 'test-00002.png')));
    expect(Array.from({ length: 64 }, (_, i) => back.data[i * 4]!)).toEqual(Array.from(gray.data.subarray(128, 192)));
  });

  it('--help says what the preprocessing is', async () => {
    let help = '';
    const p = new Command().exitOverride().configureOutput({ writeOut: (t) => (help += t) });
    registerCompress(p);
    await expect(p.parseAsync(['node', 'spn', 'compress', '--help'])).rejects.toThrow();
    expect(help).toMatch(/exactly the model's H×W \(no resizing\)/);
    expect(help).toMatch(/top <bits> bits/);
    expect(help).toMatch(/16-bit PNGs are refused/);
  });
});
