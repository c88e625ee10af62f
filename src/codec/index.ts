// Lossless image compression with an SPN (spn compress / spn decompress); docs/spn-format.md.
export {
  compressImages, decompressBytes, DEFAULT_BATCH, DEFAULT_PRECISION,
  type CodecProgress, type CompressOptions, type CompressResult, type DecompressOptions, type DecompressResult, type ImageCodeStats,
} from './codec.js';
export { closeModels, openModels, openModelsFor, CODEC_THREADS, type CodecModels, type CodecStage, type ImageSpec, type ModelSource } from './stages.js';
export { compactNames, decodeContainer, encodeContainer, imageName, Header, NameRule, StageEntry, MAGIC, VERSION, type Container, type ContainerSizes, type ImageRecord } from './container.js';
export { RangeEncoder, RangeDecoder, findSymbol, MAX_PRECISION } from './rangecoder.js';
export { quantize, detExp, QUANTIZER_ID } from './quantize.js';
export { pixelHash, pixelsHash, probeHash, weightsHash } from './hash.js';
export { walkBatch, type SubpixelFn, type WalkInput } from './walk.js';
export { readInputs, type InputImages, type ReadInputsOptions } from './inputs.js';
export { readImageFile, encodeImagePng, writeImagePng } from './images.js';
