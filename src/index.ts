// deepwgsl: DeepSeek's inference kernels as JIT-generated WGSL.
// The API speaks in GPUDevice, GPUBuffer, ...: an app's type check gets WebGPU's types with ours.
/// <reference types="@webgpu/types" preserve="true" />
export * from './formats/index.ts';
export { createContext, GpuContext, type ContextOptions, type DeviceLimits, type AdapterDescription } from './gpu/context.ts';
export { DeepwgslError, GpuError } from './gpu/errors.ts';
export {
  Tensor,
  createTensor,
  uploadTensor,
  writeTensor,
  readTensor,
  readTensorBits,
  poisonTensor,
  packTensorData,
  expectTensor,
  rowPitch,
  DTYPES,
  DTYPE_BYTES,
  type DType,
} from './gpu/tensor.ts';
export { composeWgsl, type KernelModule, type WgslConst, type WgslSource } from './jit/compose.ts';
export { WgslCompileError } from './jit/pipeline-cache.ts';
export { Launch, planKernel, type KernelSpec, type LaunchInfo } from './jit/launch.ts';
// typegpu's schemas (d.struct, d.u32, ...) for a kernel's parameter struct, the same copy the JIT resolves.
export * as d from 'typegpu/data';
export { autotune, type AutotuneRequest, type AutotuneResult } from './jit/autotune.ts';
export { timeLaunch, type Timing } from './jit/timing.ts';
export { Profiler, type ProfileEvent, type TimedPass, type ChromeTrace, type ChromeTraceEvent } from './jit/profiler.ts';
export { MemoryTuningStore, FileTuningStore, IndexedDbTuningStore, defaultTuningStore, type TuningStore } from './jit/tuning-cache.ts';
export * from './kernels/cast/index.ts';
export * from './eplb/index.ts';
export { measureCeilings, raiseClocks, CEILING_KERNELS, type Ceiling } from './bench/ceilings.ts';
export * from './kernels/gemm/index.ts';
export * from './kernels/moe/index.ts';
export { SUITES, runBench, BENCH_COLUMNS, CEILING_COLUMNS, markdownHeader, markdownRow, type TableColumn, type BenchSuite, type BenchRow, type BenchReport, type BenchOptions } from './bench/suites.ts';
export * from './kernels/mla/index.ts';
export * from './kernels/nn/index.ts';
export * from './model/index.ts';
