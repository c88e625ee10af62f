import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, describe, expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';
import { SPN } from '../../src/spn/model.js';
import { parseModelConfig } from '../../src/spn/config.js';
import { fillNearest, framesGif, gridPng, gridRgb, readPngAsImage, type ImageBatch } from '../../src/spn/images.js';
import { recordSliceFrames, writeSampleOutputs } from '../../src/spn/frames.js';
import { sample } from '../../src/spn/sample.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'spn-images-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('gridPng', () => {
  it('lays images out with padding and upscaling, stretching values to 0..255', () => {
    const data = new Uint8Array(3 * 2 * 2).map((_, i) => i % 4); // 3 gray 2×2 images, 2 bits
    const png = PNG.sync.read(gridPng(data, { bits: 2, shape: [3, 2, 2, 1], cols: 2, pad: 1, scale: 3 }));
    expect([png.width, png.height]).toEqual([2 * 6 + 3, 2 * 6 + 3]);
    const at = (x: number, y: number) => Array.from(png.data.subarray((y * png.width + x) * 4, (y * png.width + x) * 4 + 3));
    expect(at(1, 1)).toEqual([0, 0, 0]); // image 0, pixel (0,0) = 0
    expect(at(1 + 3, 1)).toEqual([85, 85, 85]); // pixel (0,1) = 1 -> 85
    expect(at(1 + 5, 1 + 5)).toEqual([255, 255, 255]); // pixel (1,1) = 3
    expect(at(0, 0)).toEqual([40, 40, 40]); // padding
  });

  it('defaults to at least 64 px per image and takes tensors', () => {
    const t = torch.zeros([4, 28, 28, 3], { dtype: 'int64' });
    const g = gridRgb(t, { bits: 8 });
    t.dispose();
    expect(g.width).toBe(2 * 84 + 3 * 2);
    expect(() => gridRgb(new Uint8Array(5), { bits: 8, shape: [1, 2, 2, 1] })).toThrow(/5 bytes/);
  });
});

describe('readPngAsImage', () => {
  const write = (name: string, w: number, h: number, colorType: 0 | 2, fill: (i: number) => [number, number, number]) => {
    const png = new PNG({ width: w, height: h });
    for (let i = 0; i < w * h; i++) png.data.set([...fill(i), 255], i * 4);
    const file = path.join(tmp, name);
    fs.writeFileSync(file, PNG.sync.write(png, { colorType }));
    return file;
  };
  it('reads gray and RGB files and names the file when they do not fit', () => {
    const gray = write('g.png', 4, 2, 0, (i) => [i * 10, i * 10, i * 10]);
    expect(Array.from(readPngAsImage(gray, { h: 2, w: 4, c: 1 }))).toEqual([0, 10, 20, 30, 40, 50, 60, 70]);
    expect(readPngAsImage(gray, { h: 2, w: 4, c: 3 }).subarray(3, 6)).toEqual(new Uint8Array([10, 10, 10]));
    const rgb = write('c.png', 4, 2, 2, (i) => [i, 100, 200]);
    expect(Array.from(readPngAsImage(rgb, { h: 2, w: 4, c: 3 }).subarray(0, 6))).toEqual([0, 100, 200, 1, 100, 200]);
    expect(() => readPngAsImage(rgb, { h: 2, w: 4, c: 1 })).toThrow(/c\.png is a colour image/);
    expect(() => readPngAsImage(gray, { h: 4, w: 4, c: 1 })).toThrow(/g\.png is 4×2 .* needs 4×4/);
    fs.writeFileSync(path.join(tmp, 'bad.png'), 'not a png');
    expect(() => readPngAsImage(path.join(tmp, 'bad.png'), { h: 2, w: 4, c: 1 })).toThrow(/bad\.png is not a readable PNG/);
    expect(() => readPngAsImage(path.join(tmp, 'missing.png'), { h: 2, w: 4, c: 1 })).toThrow(/cannot read .*missing\.png/);
  });
});

describe('fillNearest', () => {
  it('fills each pixel from the nearest known slice of its block', () => {
    // one 4×4 gray image, S = 2; pixel value = its slice index + 1
    const data = new Uint8Array(16).map((_, p) => (Math.floor(p / 4) % 2) * 2 + (p % 2) + 1);
    const b: ImageBatch = { data, shape: [1, 4, 4, 1] };
    expect(Array.from(fillNearest(b, 2, 1).data)).toEqual(new Array(16).fill(1));
    // slices 0, 1 known: offset (1, 0) is nearest to slice 0, (1, 1) to slice 1
    expect(Array.from(fillNearest(b, 2, 2).data.subarray(0, 8))).toEqual([1, 2, 1, 2, 1, 2, 1, 2]);
    expect(Array.from(fillNearest(b, 2, 4).data)).toEqual(Array.from(data));
    expect(Array.from(fillNearest(b, 2, 0).data)).toEqual(new Array(16).fill(0));
  });
});

describe('framesGif and writeSampleOutputs', () => {
  it('encodes frames and writes the grid, one frame per slice and the animation', () => {
    const gif = framesGif([{ width: 2, height: 1, rgb: new Uint8Array([0, 0, 0, 255, 0, 0]) }, new Uint8Array([9, 9, 9, 1, 2, 3])], { width: 2, height: 1, delayMs: 100 });
    expect(gif.subarray(0, 6).toString('latin1')).toBe('GIF89a');
    expect(() => framesGif([new Uint8Array(5)], { width: 2, height: 1, delayMs: 1 })).toThrow(/5 bytes/);

    torch.setNumThreads(1);
    torch.manualSeed(0);
    const model = new SPN(parseModelConfig({ height: 8, width: 8, channels: 3, bits: 3, scale: 2, dim: 16, heads: 2, condLayers: 1, decLayers: 1 }), { dtype: 'float64' });
    const rec = recordSliceFrames();
    const x = sample(model, { n: 2, seed: 1, onSliceDone: rec.onSliceDone });
    const out = path.join(tmp, 'samples.png');
    const files = writeSampleOutputs(x, model, { out, framesDir: path.join(tmp, 'frames'), frames: rec.frames });
    expect(files.map((f) => path.basename(f))).toEqual(['samples.png', 'frame-000.png', 'frame-001.png', 'frame-002.png', 'frame-003.png', 'animation.gif']);
    // the last frame is the finished grid
    expect(fs.readFileSync(files[4]!)).toEqual(fs.readFileSync(out));
    expect(PNG.sync.read(fs.readFileSync(out)).width).toBe(2 * 64 + 3 * 2);
    x.dispose();
    model.dispose();
  });
});
