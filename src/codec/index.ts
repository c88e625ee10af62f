// Lossless image compression with an SPN (spn compress / spn decompress); docs/spn-format.md.
export {
  compressImages, decompressBytes, DEFAULT_BATCH, DEFAULT_PRECISION,
  type CodecImage, type CodecInput, type CodecProgress, type CompressOptions, type CompressResult, type DecodedImage, type DecompressOptions, type DecompressResult, type ImageCodeStats,
} from './codec.js';
export { closeModels, openModels, openModelsFor, openModelsById, CODEC_THREADS, type CodecModels, type CodecStage, type ImageSpec, type ModelSource } from './stages.js';
export { compactNames, containerVersion, decodeContainer, encodeContainer, imageName, Header, NameRule, StageEntry, MAGIC, VERSION, type Container, type ContainerSizes, type ImageRecord } from './container.js';
export { decodeContainer2, encodeContainer2, VERSION2, WEIGHTS_ID_BYTES, PROBE_BYTES, type ContainerV2, type ImageEntry, type StageId } from './container2.js';
export { MAX_BATCH, MAX_SIDE, MAX_IMAGE_PIXELS, MAX_FILE_SUBPIXELS, MAX_STAGES } from './limits.js';
export { defaultNames, fileStem } from './names.js';
export { planTiles, tileCount, type Tile, type Size } from './tiles.js';
export { RangeEncoder, RangeDecoder, findSymbol, MAX_PRECISION } from './rangecoder.js';
export { quantize, detExp, QUANTIZER_ID } from './quantize.js';
export { pixelHash, pixelsHash, probeHash, weightsHash } from './hash.js';
export { walkBatch, type SubpixelFn, type WalkInput } from './walk.js';
export { readImages, readInputs, type InputImages, type InputImageList, type ReadInputsOptions } from './inputs.js';
export { readImageFile, encodeImagePng, writeImagePng, type FileImage, type ReadSpec } from './images.js';
