// The input-complexity correction of Serrà et al. (ICLR 2020, "Input complexity and
// out-of-distribution detection with likelihood-based generative models"): a generic lossless
// compressor's code length L(x) estimates how complex an image is, and
//   S(x) = −log2 p(x) − L(x)
// (both in bits; here per sub-pixel) corrects the likelihood for it: large S = out of
// distribution. L(x) counts only the compressed image data, the container's headers removed:
//   PNG:  the zlib stream in the IDAT chunks without its 2-byte header and 4-byte Adler-32;
//   WebP: the VP8L bitstream without its 5-byte header (signature, size, alpha, version).
import sharp from 'sharp';
import { ArgError, FormatError } from '../errors.js';

export type Compressor = 'png' | 'webp';
export const COMPRESSORS: readonly Compressor[] = ['png', 'webp'];

/** One image: H×W×C 8-bit values, C = 1 or 3. */
export interface RawImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 1 | 3;
}

export interface CodeLength {
  /** The whole file. */
  fileBytes: number;
  /** Headers and containers: fileBytes − the image data counted in bits. */
  headerBytes: number;
  /** The compressed image data in bits (headers removed). */
  bits: number;
  /** The file itself (for round-trip checks). */
  file: Buffer;
}

/** PNG at maximum compression: zlib level 9, adaptive filtering, no palette, effort 10; gray or RGB as the image is. */
export async function encodePngMax(img: RawImage): Promise<Buffer> {
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: img.channels } })
    .toColourspace(img.channels === 1 ? 'b-w' : 'srgb') // a gray image stays a gray PNG (sharp writes RGB otherwise)
    .png({ compressionLevel: 9, adaptiveFiltering: true, palette: false, effort: 10 })
    .toBuffer();
}

/** Lossless WebP at maximum effort. */
export async function encodeWebpLossless(img: RawImage): Promise<Buffer> {
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: img.channels } }).webp({ lossless: true, effort: 6, exact: true }).toBuffer();
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Bytes of IDAT payload in a PNG file (all IDAT chunks), checking the chunk structure. */
export function pngIdatBytes(file: Buffer): number {
  if (file.length < 8 || !file.subarray(0, 8).equals(PNG_SIGNATURE)) throw new FormatError('not a PNG file (bad signature)');
  let pos = 8;
  let idat = 0;
  let end = false;
  while (!end && pos + 12 <= file.length) {
    const len = file.readUInt32BE(pos);
    const type = file.subarray(pos + 4, pos + 8).toString('latin1');
    if (pos + 12 + len > file.length) throw new FormatError(`PNG chunk ${type} at byte ${pos} runs past the end of the file`);
    if (type === 'IDAT') idat += len;
    pos += 12 + len;
    end = type === 'IEND';
  }
  if (!end) throw new FormatError('PNG file ends before its IEND chunk (truncated)');
  if (!idat) throw new FormatError('PNG file without IDAT data');
  return idat;
}

/** Bytes of the VP8L bitstream in a WebP file (its chunk payload). */
export function webpVp8lBytes(file: Buffer): number {
  if (file.length < 12 || file.subarray(0, 4).toString('latin1') !== 'RIFF' || file.subarray(8, 12).toString('latin1') !== 'WEBP') {
    throw new FormatError('not a WebP file (no RIFF/WEBP header)');
  }
  let pos = 12;
  while (pos + 8 <= file.length) {
    const type = file.subarray(pos, pos + 4).toString('latin1');
    const len = file.readUInt32LE(pos + 4);
    if (pos + 8 + len > file.length) throw new FormatError(`WebP chunk ${type} at byte ${pos} runs past the end of the file`);
    if (type === 'VP8L') return len;
    pos += 8 + len + (len & 1);
  }
  throw new FormatError('WebP file without a VP8L (lossless) chunk');
}

/** The compressor's code length of an image, headers removed. */
export async function codeLength(img: RawImage, compressor: Compressor): Promise<CodeLength> {
  if (img.data.length !== img.width * img.height * img.channels) throw new ArgError(`codeLength: ${img.data.length} bytes for a ${img.width}×${img.height}×${img.channels} image`);
  if (compressor === 'png') {
    const file = await encodePngMax(img);
    const data = pngIdatBytes(file) - 6; // zlib: 2-byte header, 4-byte Adler-32
    return { fileBytes: file.length, headerBytes: file.length - data, bits: 8 * data, file };
  }
  if (compressor === 'webp') {
    const file = await encodeWebpLossless(img);
    const data = webpVp8lBytes(file) - 5; // signature byte, 14+14+1+3 bits of size, alpha, version
    return { fileBytes: file.length, headerBytes: file.length - data, bits: 8 * data, file };
  }
  throw new ArgError(`compressor ${String(compressor)}: expected ${COMPRESSORS.join(' or ')}`);
}

/** S(x) in bits per sub-pixel: the model's bits/dim minus the compressor's (headers removed). */
export function complexityCorrected(modelBpd: number, compressorBits: number, dims: number): number {
  return modelBpd - compressorBits / dims;
}

/** Decodes a compressor's file back to the image's H×W×C values (gray: the first of libvips' channels). */
export async function decodeRaw(file: Buffer, channels: 1 | 3): Promise<Uint8Array> {
  const { data, info } = await sharp(file).raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  const n = info.width * info.height;
  if (info.channels === channels) return new Uint8Array(data.buffer, data.byteOffset, data.length);
  const out = new Uint8Array(n * channels);
  for (let i = 0; i < n; i++) for (let c = 0; c < channels; c++) out[i * channels + c] = data[i * info.channels + (channels === 1 ? 0 : c)]!;
  return out;
}
