export { parseModelConfig, isMoeLayer, ropeInvFreq, ropeAttentionFactor, yarnMscale, ConfigError, type ModelConfig, type MoeConfig, type RopeScaling } from './config.ts';
export { readSafetensorsHeader, writeSafetensors, SafetensorsError, ST_DTYPE_BYTES, type StDtype, type StTensor } from './safetensors.ts';
export { dirSource, filesSource, urlSource, readText, type ByteFile, type ModelSource } from './source.ts';
export { openCheckpoint, expectedTensors, readWeightF64, CheckpointError, type Checkpoint, type ExpectedTensor } from './checkpoint.ts';
export { loadWeights, planWeights, checkFits, ModelWeights, type GpuWeight, type LoadOptions, type LoadProgress, type WeightPlan } from './load.ts';
export { ReferenceModel, referenceGenerate, readAllWeightsF64, type RefOptions } from './reference.ts';
export { Decoder, prefillLogits, type DecoderOptions } from './decode.ts';
export { generate, type GenerateOptions, type GenerateResult } from './generate.ts';
export { sampleToken, seededRandom, type SamplingOptions } from './sampling.ts';
