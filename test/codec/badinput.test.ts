// Bad input, as a new user meets it: truncated, corrupted or forged .spn files of either version,
// a version 2 file for another model, images of the wrong channel count, empty or absurdly large
// image files. Each is a clear error (an SpnError whose message names the file and the field),
// exit status 3 from the commands, and nothing written.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpnError } from '../../src/errors.js';
import { memorySet } from '../../src/data/sets.js';
import { compressImages, decompressBytes, encodeContainer2, decodeContainer2, readImageFile, readInputs, type CompressResult } from '../../src/codec/index.js';
import { register as registerCompress } from '../../src/cli/compress.js';
import { register as registerDecompress } from '../../src/cli/decompress.js';
import { register as registerScore } from '../../src/cli/score.js';
import { exitCodeFor } from '../../src/cli/exit.js';
import { loadModel } from '../../src/store/checkpoint.js';
import { cleanupTmp } from '../data/fixtures.js';
import { cli } from '../cli/in-process.js';
import { bombPng, makeFixture, smoothImage, trainRun, writePng, type Fixture } from './fixtures.js';

let f: Fixture;
const runs: Record<string, string> = {};
let v2: CompressResult; // two gray images, 8×8 and 13×11, in a version 2 file of the s2 run
let v1: CompressResult; // two 8×8 gray images in a version 1 file

const images = () => [
  { height: 8, width: 8, data: smoothImage(8, 8, 1, 1) },
  { height: 13, width: 11, data: smoothImage(13, 11, 1, 2) },
];

/** The error a promise rejects with (or null). */
const errorOf = async (p: Promise<unknown>): Promise<unknown> => p.then(() => null, (e: unknown) => e);

/** Decoding fails with an SpnError of `code` whose message matches. */
async function refused(bytes: Uint8Array, message: RegExp, o: { run?: string; pipeline?: string } = {}, code = 'E_FORMAT'): Promise<void> {
  const err = await errorOf(decompressBytes(bytes, { file: 'f.spn', ...o }));
  expect(err).toBeInstanceOf(SpnError);
  expect((err as SpnError).code).toBe(code);
  expect((err as Error).message).toMatch(message);
}

/** A version 1 file with its JSON header edited and its checksum recomputed (a forgery). */
function forgedV1(bytes: Uint8Array, edit: (h: Record<string, unknown>) => void): Uint8Array {
  const buf = Buffer.from(bytes);
  const len = buf.readUInt32LE(5);
  const header = JSON.parse(buf.subarray(9, 9 + len).toString('utf8')) as Record<string, unknown>;
  edit(header);
  const json = Buffer.from(JSON.stringify(header).replace('"batch":"1e9"', '"batch":1e9'));
  const lenBuf = Buffer.alloc(4);
  lenBuf.writeUInt32LE(json.length);
  const body = Buffer.concat([buf.subarray(0, 5), lenBuf, json, buf.subarray(9 + len, buf.length - 32)]);
  return Buffer.concat([body, createHash('sha256').update(body).digest()]);
}

beforeAll(async () => {
  f = makeFixture('spn-bad-');
  runs.s2 = await trainRun(f, 's2');
  runs.twin = await trainRun(f, 'twin', { seed: 9 }); // the same architecture, other weights
  runs.rgb = await trainRun(f, 'rgb', { data: f.rgb });
  v2 = await compressImages({ run: runs.s2 }, images(), { batchSize: 2 });
  v1 = await compressImages({ run: runs.s2 }, memorySet(Uint8Array.from([...images()[0]!.data, ...images()[0]!.data.map((x) => 255 - x)]), { n: 2, h: 8, w: 8, c: 1 }), { version: 1 });
});

afterAll(() => cleanupTmp());

describe('a .spn file that cannot be decoded', () => {
  it('truncated or corrupted, in either version: refused by the checksum, naming the file', async () => {
    for (const c of [v1, v2]) {
      await refused(c.bytes.subarray(0, c.bytes.length - 3), /f\.spn: checksum mismatch: the file is truncated or corrupted/, { run: runs.s2! });
      const bad = Uint8Array.from(c.bytes);
      bad[Math.floor(bad.length / 2)]! ^= 0x10;
      await refused(bad, /f\.spn: checksum mismatch/, { run: runs.s2! });
    }
    await refused(v2.bytes.subarray(0, 12), /f\.spn is truncated: 12 bytes, a version 2 \.spn file has at least 23/, { run: runs.s2! });
    await refused(new Uint8Array(0), /f\.spn is empty \(0 bytes\)/);
    await refused(Buffer.from('GIF89a...'), /f\.spn is not a \.spn file/);
  });

  it('a version 2 file given another model, or none: refused before any pixel is decoded', async () => {
    await refused(v2.bytes, /f\.spn: stage 1: no checkpoint of .*twin has the EMA weights the file was coded with \(sha256 [0-9a-f]{16}…\); tried checkpoints\/best \(step 3, sha256 [0-9a-f]{12}…\)/, { run: runs.twin! });
    await refused(v2.bytes, /f\.spn: stage 1: no checkpoint of .*rgb has the EMA weights/, { run: runs.rgb! });
    await refused(v2.bytes, /f\.spn names its model only by the hash of the weights; pass --run <dir>/, {}, 'E_ARG');
    // the right weights, but a machine computing other logits (a forged probe)
    const c = decodeContainer2(v2.bytes, 'x');
    c.stages[0]!.probe = Uint8Array.of(0, 0, 0, 0);
    await refused(encodeContainer2(c).bytes, /f\.spn: stage 1 \(.*s2.*\): this machine computes the model's logits differently .* decoding here would give wrong pixels/, { run: runs.s2! });
    // a precision too small for the model's 256 values
    const p = decodeContainer2(v2.bytes, 'x');
    p.precision = 8;
    await refused(encodeContainer2(p).bytes, /f\.spn: precision 8 cannot code stage 1's 256 values \(it needs at least 9\)/, { run: runs.s2! });
    // a stream swapped with the other image's: caught by the pixel hash, never written
    const s = decodeContainer2(v2.bytes, 'x');
    s.images[1]!.stream = s.images[0]!.stream;
    await refused(encodeContainer2(s).bytes, /f\.spn: image 1 \(image-000001\) decoded to pixels whose hash \([0-9a-f]{8}\) is not the recorded one/, { run: runs.s2! });
  });

  it('forged sizes (with a valid checksum): refused before the model is loaded or anything allocated', async () => {
    const c = decodeContainer2(v2.bytes, 'x');
    // 8192×8192 images are each allowed; 5 of them are not: refused at the container, before the models (no --run needed to see it)
    const bytes = encodeContainer2({ ...c, images: Array.from({ length: 5 }, () => ({ ...c.images[0]!, height: 8192, width: 8192 })) }).bytes;
    await refused(bytes, /f\.spn: its images declare more than 268435456 pixels together \(image 4 passes it\)/);
  });

  it('a version 1 header whose batch is huge: refused at once (the probe would run the model on that many images)', async () => {
    const rss = process.memoryUsage().rss;
    const t0 = performance.now();
    await refused(forgedV1(v1.bytes, (h) => (h.batch = 20000)), /f\.spn: invalid header: batch: .*256/);
    await refused(forgedV1(v1.bytes, (h) => (h.batch = '1e9')), /f\.spn: invalid header: batch: .*256/);
    await refused(forgedV1(v1.bytes, (h) => (h.count = 1e9)), /f\.spn: image 2's record runs past the end of the file/);
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(process.memoryUsage().rss - rss).toBeLessThan(200 * 2 ** 20);
    // the genuine file still decodes, with the run it records
    expect((await decompressBytes(v1.bytes)).images).toHaveLength(2);
  });
});

describe('images the model cannot code', () => {
  it('the wrong channel count, from the API and from files (naming the file)', async () => {
    const rgbSet = memorySet(new Uint8Array(2 * 192), { n: 2, h: 8, w: 8, c: 3 });
    await expect(compressImages({ run: runs.s2! }, rgbSet)).rejects.toThrow(/the images have 3 channel\(s\); the model codes 1/);
    await expect(compressImages({ run: runs.s2! }, [{ height: 4, width: 5, data: new Uint8Array(60) }], { names: ['pic'] })).rejects.toThrow(/image pic has 60 values; 5×4 with the model's 1 channel\(s\) is 20/);
    await expect(compressImages({ run: runs.rgb! }, [{ height: 4, width: 5, data: new Uint8Array(20) }])).rejects.toThrow(/image #0 has 20 values; 5×4 with the model's 3 channel\(s\) is 60/);
    const file = path.join(f.work, 'colour.png');
    writePng(file, 9, 5, smoothImage(5, 9, 3, 1), 3);
    await expect(readImageFile(file, { channels: 1, bits: 8 })).rejects.toThrow(/colour\.png is a colour image \(pixel 0 is .*\); the model codes 1-channel \(gray\) images/);
  });

  it('an empty file, and a tiny PNG whose header claims 12000×12000: refused before decoding, for compress and score alike', async () => {
    const empty = path.join(f.work, 'x.png');
    fs.writeFileSync(empty, '');
    await expect(readImageFile(empty, { channels: 1, bits: 8 })).rejects.toThrow(/x\.png is empty \(0 bytes\); expected a PNG image/);
    const bomb = path.join(f.work, 'bomb.png');
    fs.writeFileSync(bomb, bombPng(12000, 12000));
    expect(fs.statSync(bomb).size).toBeLessThan(70);
    const rss = process.memoryUsage().rss;
    await expect(readImageFile(bomb, { channels: 1, bits: 8 })).rejects.toThrow(/bomb\.png declares 12000×12000 \(W×H\), 144000000 pixels, more than the 67108864 \(8192×8192\) the codec takes/);
    await expect(readImageFile(bomb, { channels: 1, bits: 8, height: 8, width: 8 })).rejects.toThrow(/bomb\.png is 12000×12000 \(W×H\); the model codes 8×8 images/);
    const { config } = await loadModel(runs.s2!).then((m) => (m.model.dispose(), m));
    await expect(readInputs([bomb], { image: { height: 8, width: 8, channels: 1, bits: 8 }, config })).rejects.toThrow(/bomb\.png is 12000×12000/);
    expect(process.memoryUsage().rss - rss).toBeLessThan(200 * 2 ** 20); // decoding it would take 576 MB
    const jpeg = path.join(f.work, 'empty.jpg');
    fs.writeFileSync(jpeg, '');
    await expect(readImageFile(jpeg, { channels: 1, bits: 8 })).rejects.toThrow(/empty\.jpg is empty \(0 bytes\); expected a JPEG image/);
  });
});

describe('the commands', () => {
  const cmds = [registerCompress, registerDecompress, registerScore];
  /** Runs the command; expects exit status 3 and the message, and `never` not to exist afterwards. */
  async function exits3(args: string[], message: RegExp, never: string): Promise<void> {
    const err = await errorOf(cli(cmds, ...args));
    expect(err).toBeInstanceOf(SpnError);
    expect((err as Error).message).toMatch(message);
    expect(exitCodeFor(err)).toBe(3);
    expect(fs.existsSync(never)).toBe(false);
  }

  it('exit 3 and write nothing for every bad input', async () => {
    const dir = path.join(f.work, 'cmd');
    fs.mkdirSync(dir, { recursive: true });
    const spn = path.join(dir, 'two.spn');
    fs.writeFileSync(spn, v2.bytes);
    const cut = path.join(dir, 'cut.spn');
    fs.writeFileSync(cut, v2.bytes.subarray(0, v2.bytes.length - 1));
    const out = path.join(dir, 'never');
    await exits3(['decompress', cut, '--out', out, '--run', runs.s2!, '--quiet'], /cut\.spn: checksum mismatch/, out);
    await exits3(['decompress', spn, '--out', out, '--run', runs.twin!, '--quiet'], /two\.spn: stage 1: no checkpoint of .*twin has the EMA weights/, out);
    const v1file = path.join(dir, 'big-batch.spn');
    fs.writeFileSync(v1file, forgedV1(v1.bytes, (h) => (h.batch = 20000)));
    await exits3(['decompress', v1file, '--out', out, '--quiet'], /big-batch\.spn: invalid header: batch/, out);
    const bomb = path.join(dir, 'bomb.png');
    fs.writeFileSync(bomb, bombPng(12000, 12000));
    const empty = path.join(dir, 'x.png');
    fs.writeFileSync(empty, '');
    const colour = path.join(dir, 'colour.png');
    writePng(colour, 9, 5, smoothImage(5, 9, 3, 1), 3);
    const file = path.join(dir, 'never.spn');
    for (const [input, message] of [[bomb, /bomb\.png declares 12000×12000 \(W×H\), 144000000 pixels/], [empty, /x\.png is empty \(0 bytes\)/], [colour, /colour\.png is a colour image/]] as const) {
      await exits3(['compress', runs.s2!, input, '--out', file, '--quiet'], message, file);
    }
    await exits3(['score', runs.s2!, bomb, '--quiet'], /bomb\.png is 12000×12000 \(W×H\); the model codes 8×8/, file);
    await exits3(['score', runs.s2!, empty, '--quiet'], /x\.png is empty \(0 bytes\)/, file);
  });
});
