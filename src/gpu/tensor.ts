// Tensor: a GPUBuffer with a shape and dtype, row-major. Sub-word dtypes are packed little-endian
// into u32 words (element i is byte/half i). Each innermost row is padded to a whole number of
// words so a row always starts on a word: the padding is part of the layout contract.
import { decodeE4M3, decodeE5M2, encodeE4M3, encodeE5M2 } from '../formats/fp8.ts';
import { decodeBF16, decodeF16, encodeBF16, encodeF16 } from '../formats/half.ts';
import type { GpuContext } from './context.ts';
import { DeepwgslError, fail } from './errors.ts';

export type DType = 'f32' | 'f16' | 'bf16' | 'e4m3' | 'e5m2' | 'i32' | 'u32';
export const DTYPES: readonly DType[] = ['f32', 'f16', 'bf16', 'e4m3', 'e5m2', 'i32', 'u32'];
export const DTYPE_BYTES: Record<DType, number> = { f32: 4, f16: 2, bf16: 2, e4m3: 1, e5m2: 1, i32: 4, u32: 4 };

const ENCODERS: Partial<Record<DType, (x: number) => number>> = {
  f16: encodeF16,
  bf16: encodeBF16,
  e4m3: encodeE4M3,
  e5m2: encodeE5M2,
};
const DECODERS: Partial<Record<DType, (bits: number) => number>> = {
  f16: decodeF16,
  bf16: decodeBF16,
  e4m3: decodeE4M3,
  e5m2: decodeE5M2,
};

function checkShape(where: string, shape: readonly number[]): void {
  if (!Array.isArray(shape) || shape.length === 0 || shape.some((d) => !Number.isInteger(d) || d < 0)) {
    fail(where, 'shape', 'a non-empty list of non-negative integers', shape);
  }
}

function checkDtype(where: string, dtype: string): asserts dtype is DType {
  if (!DTYPES.includes(dtype as DType)) fail(where, 'dtype', `one of ${DTYPES.join(', ')}`, dtype);
}

/** Elements per stored row: the last dimension rounded up to a whole number of u32 words. */
export function rowPitch(lastDim: number, dtype: DType): number {
  const perWord = 4 / DTYPE_BYTES[dtype];
  return Math.ceil(lastDim / perWord) * perWord;
}

export class Tensor {
  constructor(
    readonly ctx: GpuContext,
    readonly buffer: GPUBuffer,
    readonly shape: readonly number[],
    readonly dtype: DType,
    readonly byteOffset = 0,
  ) {}

  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
  /** Number of innermost rows (product of all but the last dimension). */
  get rows(): number {
    return this.shape.slice(0, -1).reduce((a, b) => a * b, 1);
  }
  /** Elements per stored row, padding included. */
  get pitch(): number {
    return rowPitch(this.shape[this.shape.length - 1], this.dtype);
  }
  /** Bytes the tensor occupies in its buffer, a multiple of 4. */
  get byteLength(): number {
    return this.rows * this.pitch * DTYPE_BYTES[this.dtype];
  }

  /** The same bytes seen with another row-major shape (callers keep padded rows where they were). */
  view(shape: readonly number[]): Tensor {
    return new Tensor(this.ctx, this.buffer, shape, this.dtype, this.byteOffset);
  }

  /** A binding of this tensor's bytes, checked against the device's storage binding limit. */
  binding(where: string, arg: string): GPUBufferBinding {
    const limit = this.ctx.limits.maxStorageBufferBindingSize;
    if (this.byteLength > limit) {
      throw new DeepwgslError(
        `${where}: ${arg} [${this.shape.join(', ')}] ${this.dtype} needs a ${this.byteLength}-byte storage binding, ` +
          `over this device's maxStorageBufferBindingSize of ${limit} bytes. Split it along its first dimension ` +
          `(several calls or shards), or run on an adapter with a larger limit.`,
      );
    }
    return { buffer: this.buffer, offset: this.byteOffset, size: Math.max(4, this.byteLength) };
  }

  destroy(): void {
    this.buffer.destroy();
  }
}

export function createTensor(ctx: GpuContext, shape: readonly number[], dtype: DType, label = 'tensor'): Tensor {
  checkShape('createTensor', shape);
  checkDtype('createTensor', dtype);
  const probe = new Tensor(ctx, undefined as unknown as GPUBuffer, shape, dtype);
  const size = Math.max(4, probe.byteLength);
  if (size > ctx.limits.maxBufferSize) {
    throw new DeepwgslError(
      `createTensor: ${label} [${shape.join(', ')}] ${dtype} needs ${size} bytes, over this device's maxBufferSize of ` +
        `${ctx.limits.maxBufferSize} bytes; split it into several tensors.`,
    );
  }
  const buffer = ctx.device.createBuffer({
    label,
    size,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  });
  return new Tensor(ctx, buffer, shape, dtype);
}

type Data = ArrayLike<number>;

/** Host values -> the tensor's packed bytes. Uint8Array for fp8 and Uint16Array for f16/bf16 are taken as raw bits. */
export function packTensorData(data: Data, shape: readonly number[], dtype: DType): Uint8Array<ArrayBuffer> {
  const numel = shape.reduce((a, b) => a * b, 1);
  if (data.length !== numel) fail('packTensorData', 'data length', `${numel} (shape [${shape.join(', ')}])`, data.length);
  const last = shape[shape.length - 1];
  const pitch = rowPitch(last, dtype);
  const rows = last === 0 ? 0 : numel / last;
  const bytes = DTYPE_BYTES[dtype];
  const out = new Uint8Array(Math.max(4, rows * pitch * bytes));
  const view = new DataView(out.buffer);
  const raw = (dtype === 'e4m3' || dtype === 'e5m2') ? data instanceof Uint8Array : (dtype === 'f16' || dtype === 'bf16') && data instanceof Uint16Array;
  const enc = raw ? undefined : ENCODERS[dtype];
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < last; c++) {
      const v = data[r * last + c];
      const at = (r * pitch + c) * bytes;
      if (dtype === 'f32') view.setFloat32(at, v, true);
      else if (dtype === 'i32') view.setInt32(at, v, true);
      else if (dtype === 'u32') view.setUint32(at, v, true);
      else {
        const bits = enc ? enc(v) : v;
        if (bytes === 2) view.setUint16(at, bits, true);
        else out[at] = bits;
      }
    }
  }
  return out;
}

export function writeTensor(t: Tensor, data: Data): void {
  t.ctx.device.queue.writeBuffer(t.buffer, t.byteOffset, packTensorData(data, t.shape, t.dtype));
}

export function uploadTensor(ctx: GpuContext, data: Data, shape: readonly number[], dtype: DType, label = 'tensor'): Tensor {
  const t = createTensor(ctx, shape, dtype, label);
  writeTensor(t, data);
  return t;
}

/** Fills a tensor's bytes with 0xff (NaN in every float dtype) so unwritten elements show. */
export function poisonTensor(t: Tensor): void {
  t.ctx.device.queue.writeBuffer(t.buffer, t.byteOffset, new Uint8Array(Math.max(4, t.byteLength)).fill(0xff));
}

async function readBytes(t: Tensor): Promise<Uint8Array> {
  const { device } = t.ctx;
  const size = Math.max(4, t.byteLength);
  const staging = device.createBuffer({ size, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ });
  const enc = device.createCommandEncoder();
  enc.copyBufferToBuffer(t.buffer, t.byteOffset, staging, 0, size);
  device.queue.submit([enc.finish()]);
  await t.ctx.sync();
  await staging.mapAsync(GPUMapMode.READ);
  const copy = new Uint8Array(staging.getMappedRange().slice(0));
  staging.destroy();
  t.ctx.throwIfFailed();
  return copy;
}

/** The tensor's elements as raw bits, row padding removed: Uint8Array (1-byte), Uint16Array (2-byte) or Uint32Array. */
export async function readTensorBits(t: Tensor): Promise<Uint8Array | Uint16Array | Uint32Array> {
  const bytes = await readBytes(t);
  const w = DTYPE_BYTES[t.dtype];
  const last = t.shape[t.shape.length - 1];
  const out = w === 1 ? new Uint8Array(t.numel) : w === 2 ? new Uint16Array(t.numel) : new Uint32Array(t.numel);
  const src = w === 1 ? bytes : w === 2 ? new Uint16Array(bytes.buffer) : new Uint32Array(bytes.buffer);
  for (let r = 0; r < t.rows; r++) out.set(src.subarray(r * t.pitch, r * t.pitch + last), r * last);
  return out;
}

/** The tensor's values: Float32Array for float dtypes (decoded), Int32Array/Uint32Array for integers. */
export async function readTensor(t: Tensor): Promise<Float32Array | Int32Array | Uint32Array> {
  const bits = await readTensorBits(t);
  if (t.dtype === 'f32') return new Float32Array(bits.buffer, bits.byteOffset, bits.length);
  if (t.dtype === 'i32') return new Int32Array(bits.buffer, bits.byteOffset, bits.length);
  if (t.dtype === 'u32') return bits as Uint32Array;
  const dec = DECODERS[t.dtype]!;
  return Float32Array.from(bits, dec);
}

export interface TensorSpec {
  dtype?: DType | readonly DType[];
  /** Expected shape; null entries match any size. */
  shape?: readonly (number | null)[];
}

/** Validates a kernel argument and says which argument, what was expected and what came. */
export function expectTensor(where: string, arg: string, t: unknown, spec: TensorSpec): Tensor {
  if (!(t instanceof Tensor)) fail(where, arg, 'a Tensor', t === null ? 'null' : typeof t);
  if (spec.dtype !== undefined) {
    const ok = typeof spec.dtype === 'string' ? [spec.dtype] : spec.dtype;
    if (!ok.includes(t.dtype)) fail(where, `${arg}.dtype`, ok.map((d) => `'${d}'`).join(' or '), t.dtype);
  }
  if (spec.shape !== undefined) {
    const s = spec.shape;
    const matches = s.length === t.shape.length && s.every((d, i) => d === null || d === t.shape[i]);
    if (!matches) fail(where, `${arg}.shape`, `[${s.map((d) => (d === null ? '*' : d)).join(', ')}]`, t.shape);
  }
  return t;
}

// One-word buffers for bindings a kernel variant never touches (the layout wants every binding).
// Several per context: two writable bindings of one pass may not alias.
const UNUSED = new WeakMap<object, Tensor[]>();

/** The `index`-th per-context placeholder word (i32, contents unspecified): bind it where nothing is read or written. */
export function unusedTensor(ctx: GpuContext, index = 0): Tensor {
  let list = UNUSED.get(ctx);
  if (!list) UNUSED.set(ctx, (list = []));
  while (list.length <= index) list.push(createTensor(ctx, [1], 'i32', 'unused'));
  return list[index];
}
