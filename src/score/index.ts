// Per-image likelihood scores and out-of-distribution detection (spn score).
export { scoreImages, type ImageScore, type ScoreOptions, type ScoreResult } from './score.js';
export { auroc } from './auroc.js';
export {
  codeLength, complexityCorrected, decodeRaw, encodePngMax, encodeWebpLossless, pngIdatBytes, webpVp8lBytes, COMPRESSORS,
  type CodeLength, type Compressor, type RawImage,
} from './complexity.js';
