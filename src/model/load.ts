// Streams a checkpoint's weights to the GPU one tensor at a time, with progress, each checked for
// NaN and Inf on the way (a corrupt weight would otherwise decode to token -1). FP8 weights stay
// FP8 (e4m3 + f32 128x128 block scales); `quantize: 'fp8'` casts BF16/F16/F32 linear weights to
// that layout on the GPU (perBlockCastToFp8Gpu) as they arrive. Sizes are planned first, and a
// model that cannot fit the device's limits is refused before anything is uploaded.
import { DeepwgslError } from '../gpu/errors.ts';
import type { GpuContext } from '../gpu/context.ts';
import { createTensor, DTYPE_BYTES, packTensorData, rowPitch, type DType, type Tensor } from '../gpu/tensor.ts';
import { perBlockCastToFp8Gpu } from '../kernels/cast/cast.ts';
import { blockScaleShape, CheckpointError, decodeStBytes, readStBytes, scaleName, type Checkpoint, type ExpectedTensor } from './checkpoint.ts';
import { firstNonFinite, ST_DTYPE_BYTES, type StTensor } from './safetensors.ts';

export interface GpuWeight {
  t: Tensor;
  /** e4m3 weights: f32 [ceil(n/128), ceil(k/128)] block scales (weight = e4m3 * scale). */
  scale?: Tensor;
}

export interface LoadProgress {
  bytesDone: number;
  bytesTotal: number;
  tensor: string;
}

export interface LoadOptions {
  /** Cast non-FP8 linear weights to e4m3 with 128x128 block scales at load. */
  quantize?: 'fp8';
  onProgress?: (p: LoadProgress) => void;
  /** Refuse the model when its weights need more GPU bytes than this (WebGPU does not report memory). */
  memoryBudget?: number;
}

/** How one checkpoint tensor lands on the GPU. */
export interface PlannedTensor {
  expected: ExpectedTensor;
  src: StTensor;
  dtype: DType;
  /** GPU bytes (row padding included), scales included. */
  gpuBytes: number;
  /** Cast on the GPU to e4m3 after upload. */
  quantize: boolean;
}

export interface WeightPlan {
  tensors: PlannedTensor[];
  /** Bytes read from the files. */
  fileBytes: number;
  /** GPU bytes of all weights. */
  gpuBytes: number;
  /** GPU bytes by dtype (scales count as f32). */
  byDtype: Record<string, number>;
  /** Parameters by checkpoint dtype (scales not counted). */
  paramsByDtype: Record<string, number>;
}

const bytesOf = (shape: readonly number[], dtype: DType) => {
  const rows = shape.slice(0, -1).reduce((a, b) => a * b, 1);
  return Math.max(4, rows * rowPitch(shape[shape.length - 1], dtype) * DTYPE_BYTES[dtype]);
};

// Small tensors the kernels read as f32 (norms, router, bias); embeddings keep bf16, f16 goes to f32.
function gpuDtype(e: ExpectedTensor, st: StTensor): DType {
  if (e.role === 'norm' || e.role === 'bias' || e.role === 'router') return 'f32';
  if (st.dtype === 'F8_E4M3') return 'e4m3';
  if (st.dtype === 'BF16') return 'bf16';
  if (st.dtype === 'F16') return e.role === 'embed' ? 'f32' : 'f16';
  return 'f32';
}

export function planWeights(ck: Checkpoint, opts: Pick<LoadOptions, 'quantize'> = {}): WeightPlan {
  const plan: WeightPlan = { tensors: [], fileBytes: 0, gpuBytes: 0, byDtype: {}, paramsByDtype: {} };
  const add = (d: string, n: number) => (plan.byDtype[d] = (plan.byDtype[d] ?? 0) + n);
  for (const e of ck.expected) {
    const src = ck.tensors.get(e.name)!;
    const quantize = opts.quantize === 'fp8' && e.role === 'linear' && src.dtype !== 'F8_E4M3';
    const dtype = quantize ? 'e4m3' : gpuDtype(e, src);
    let gpuBytes = bytesOf(e.shape, dtype);
    add(dtype, gpuBytes);
    plan.fileBytes += src.byteLength;
    if (dtype === 'e4m3') {
      const s = bytesOf(blockScaleShape(e.shape[0], e.shape[1]!), 'f32');
      gpuBytes += s;
      add('f32', s);
      if (!quantize) plan.fileBytes += ck.tensors.get(scaleName(e.name))!.byteLength;
    }
    plan.paramsByDtype[src.dtype] = (plan.paramsByDtype[src.dtype] ?? 0) + e.shape.reduce((a, b) => a * b, 1);
    plan.gpuBytes += gpuBytes;
    plan.tensors.push({ expected: e, src, dtype, gpuBytes, quantize });
  }
  return plan;
}

export const formatBytes = (b: number) =>
  b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(2)} GiB` : b >= 2 ** 20 ? `${(b / 2 ** 20).toFixed(2)} MiB` : `${(b / 2 ** 10).toFixed(1)} KiB`;

/** Throws, naming the tensor and the sizes, when a weight cannot be a buffer or binding on this device. */
export function checkFits(ctx: GpuContext, plan: WeightPlan, memoryBudget?: number): void {
  const { maxBufferSize, maxStorageBufferBindingSize } = ctx.limits;
  for (const p of plan.tensors) {
    // A cast reads the bf16/f32 original: it must fit too.
    const widest = bytesOf(p.expected.shape, p.quantize ? (p.src.dtype === 'BF16' ? 'bf16' : 'f32') : p.dtype);
    const limit = Math.min(maxBufferSize, maxStorageBufferBindingSize);
    if (widest > limit) {
      throw new DeepwgslError(
        `model too large for this device: tensor '${p.expected.name}' [${p.expected.shape.join(', ')}] ${p.dtype} needs ${formatBytes(widest)} ` +
          `in one buffer, over the device's limit of ${formatBytes(limit)} (maxBufferSize ${maxBufferSize}, maxStorageBufferBindingSize ${maxStorageBufferBindingSize}); nothing was uploaded`,
      );
    }
  }
  if (memoryBudget !== undefined && plan.gpuBytes > memoryBudget) {
    throw new DeepwgslError(`model too large: its weights need ${formatBytes(plan.gpuBytes)} of GPU memory, over the budget of ${formatBytes(memoryBudget)}; nothing was uploaded`);
  }
}

const SAME: Record<StTensor['dtype'], DType> = { F8_E4M3: 'e4m3', BF16: 'bf16', F16: 'f16', F32: 'f32' };

// Raw bytes of a checkpoint tensor -> the Tensor layout: as they are where the dtype is the same
// and rows are whole words, else repacked (row padding) or converted.
function tensorBytes(bytes: Uint8Array, shape: readonly number[], st: StTensor, dtype: DType): Uint8Array<ArrayBuffer> {
  if (SAME[st.dtype] !== dtype) return packTensorData(decodeStBytes(bytes, st.dtype), shape, dtype);
  if ((shape[shape.length - 1] * DTYPE_BYTES[dtype]) % 4 === 0) return bytes as Uint8Array<ArrayBuffer>;
  const copy = bytes.slice().buffer;
  return packTensorData(dtype === 'e4m3' ? new Uint8Array(copy) : dtype === 'f32' ? new Float32Array(copy) : new Uint16Array(copy), shape, dtype);
}

/** A checkpoint tensor's bytes, refused where they hold NaN or Inf (a corrupt file, or weights saved from a diverged run). */
async function finiteBytes(st: StTensor): Promise<Uint8Array> {
  const bytes = await readStBytes(st);
  const i = firstNonFinite(bytes, st.dtype);
  if (i >= 0) {
    const size = ST_DTYPE_BYTES[st.dtype];
    const v = decodeStBytes(bytes.subarray(i * size, (i + 1) * size), st.dtype)[0];
    throw new CheckpointError(`${st.file.name}: tensor '${st.name}' ${st.dtype} [${st.shape.join(', ')}] holds ${v} at element ${i}: the checkpoint is corrupt; nothing was loaded`);
  }
  return bytes;
}

async function upload(ctx: GpuContext, st: StTensor, shape: readonly number[], dtype: DType, label: string): Promise<Tensor> {
  const bytes = await finiteBytes(st);
  const t = createTensor(ctx, shape, dtype, label);
  ctx.device.queue.writeBuffer(t.buffer, 0, tensorBytes(bytes, shape, st, dtype));
  return t;
}

export class ModelWeights {
  constructor(
    readonly plan: WeightPlan,
    readonly tensors: Map<string, GpuWeight>,
  ) {}

  get(name: string): GpuWeight {
    const w = this.tensors.get(name);
    if (!w) throw new DeepwgslError(`ModelWeights: no weight '${name}'`);
    return w;
  }

  destroy(): void {
    for (const w of this.tensors.values()) {
      w.t.destroy();
      w.scale?.destroy();
    }
  }
}

// Staging memory is bounded by waiting for the queue after this many uploaded bytes.
const SYNC_EVERY = 256 * 2 ** 20;

export async function loadWeights(ctx: GpuContext, ck: Checkpoint, opts: LoadOptions = {}): Promise<ModelWeights> {
  const plan = planWeights(ck, opts);
  checkFits(ctx, plan, opts.memoryBudget);
  const tensors = new Map<string, GpuWeight>();
  const weights = new ModelWeights(plan, tensors);
  let done = 0;
  let sinceSync = 0;
  try {
    for (const p of plan.tensors) {
      const { name, shape } = p.expected;
      let w: GpuWeight;
      if (p.quantize) {
        // The GPU cast reads bf16 or f32.
        const wide = await upload(ctx, p.src, shape, p.src.dtype === 'BF16' ? 'bf16' : 'f32', name);
        const { q, scales } = await perBlockCastToFp8Gpu(ctx, wide);
        await ctx.sync();
        wide.destroy();
        w = { t: q, scale: scales };
      } else {
        w = { t: await upload(ctx, p.src, shape, p.dtype, name) };
        if (p.dtype === 'e4m3') {
          const s = ck.tensors.get(scaleName(name))!;
          w.scale = await upload(ctx, s, s.shape, 'f32', scaleName(name));
          done += s.byteLength;
        }
      }
      tensors.set(name, w);
      done += p.src.byteLength;
      sinceSync += p.gpuBytes;
      if (sinceSync > SYNC_EVERY) {
        await ctx.sync();
        sinceSync = 0;
      }
      opts.onProgress?.({ bytesDone: done, bytesTotal: plan.fileBytes, tensor: name });
    }
    await ctx.sync();
  } catch (e) {
    weights.destroy();
    throw e;
  }
  return weights;
}
