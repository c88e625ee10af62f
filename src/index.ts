// The public API of spn: `import { ... } from 'spn'`. The tensor engine on its own is
// `import * as torch from 'spn/torch'` (also exported here as `torch`).
//
//   model      SPN, configs and presets, createModel, subscale slices, the depth split
//   data       loadDataset and the dataset specs, ImageSet views (memorySet, sliceSet, applyBits,
//              subsampleSet), reduceBits
//   training   train (with onLog/onProgress callbacks), the run folder and its checkpoints
//   scoring    evaluate (total, per slice, per image through onImages), loadRunSplit
//   sampling   sample / sampleImages, the incremental decoder, pipelines of upscaling stages
//   codec      compressImages / decompressBytes: lossless coding with a model (spn compress)
//   score      scoreImages: per-image bits/dim, the complexity-corrected OOD score (spn score)
export * as torch from './torch/index.js';
export { SpnError, ArgError, ConfigError, DataError, FormatError, type SpnErrorCode } from './errors.js';

// model
export { SPN, MaskedConv2d, type SliceBatch, type ModelOptions } from './spn/model.js';
export { ModelConfig, TrainConfig, PRESETS, getPreset, parseModelConfig, parseTrainConfig, type Preset } from './spn/config.js';
export { toSlices, fromSlices, sliceView, generationOrder, checkDivisible } from './spn/slices.js';
export { splitDepth, joinDepth, toBatch } from './spn/stage.js';
export { createModel, sampleImages, type CreateModelOptions, type SampleImagesOptions } from './api.js';

// data
export { loadDataset, resolveSpec, SPEC_FORMS, DEFAULT_SPEC, BatchIterator, channelMeans } from './data/index.js';
export type { Dataset, ImageSet, LoadOptions, BatchPosition } from './data/index.js';
export { reduceBits } from './data/bits.js';
export { subsampleSet } from './data/subsample.js';
export { applyBits, memorySet, sliceSet, headSet, readAll } from './data/index.js';

// training and runs
export { train, type TrainOptions, type TrainProgress, type TrainResult } from './train/trainer.js';
export { RunConfig, readRunConfig, runFiles, type RunStatus } from './store/run.js';
export { loadModel, openCheckpoint, resolveCheckpoint, listCheckpoints, readCheckpoint, type CheckpointMeta, type ValidCheckpoint } from './store/checkpoint.js';

// scoring
export { evaluate, type EvalResult, type EvaluateOptions } from './store/evaluate.js';
export { loadRunSplit, type RunSplitOptions } from './store/data.js';

// sampling and upscaling
export { sample, sampleNaive, type SampleOptions, type SampleProgress } from './spn/sample.js';
export { DecodePlan, type SlicePick } from './spn/decode.js';
export { sampleStage, stageInputShape, type StageSampleOptions } from './spn/upscale.js';
export { loadPipeline, samplePipeline, evalPipeline, type Pipeline, type PipelineSamples, type PipelineEvalResult } from './store/pipeline.js';
export { gridPng, encodePng, tensorToBatch, readPngAsImage, type ImageBatch } from './spn/images.js';

// lossless coding and per-image scores
export { compressImages, decompressBytes, readInputs, type CompressOptions, type CompressResult, type DecompressOptions, type DecompressResult } from './codec/index.js';
export { scoreImages, auroc, codeLength, complexityCorrected, type ImageScore, type ScoreOptions, type ScoreResult } from './score/index.js';
