// KV cache row formats. bf16/f16: a row per (token, kv head) of d halves. 'fp8' is upstream's
// "FP8 with scale" layout generalised to any d: the first dv channels (the latent, "NoPE" part) as
// e4m3 bytes in tiles of 128 with one f32 scale per tile, then the remaining d - dv channels ("RoPE")
// as bf16. For DeepSeek (d=576, dv=512): 512 + 4*4 + 64*2 = 656 bytes per token.
import { decodeE4M3, encodeE4M3, f32ToBits } from '../../formats/fp8.ts';
import { decodeBF16, decodeF16, encodeBF16, encodeF16 } from '../../formats/half.ts';
import type { DType } from '../../gpu/tensor.ts';
import { fail } from '../../gpu/errors.ts';

export type KvFormat = 'bf16' | 'f16' | 'fp8';
export const KV_FORMATS: readonly KvFormat[] = ['bf16', 'f16', 'fp8'];
export const FP8_TILE = 128;

export interface KvLayout {
  format: KvFormat;
  d: number;
  /** Channels stored as e4m3 (fp8 only; = dv). */
  dNope: number;
  tiles: number;
  /** Last dimension of the kcache tensor: d (bf16/f16) or bytes per token (fp8). */
  rowElems: number;
  dtype: DType;
}

export function kvLayout(where: string, format: KvFormat, d: number, dv: number): KvLayout {
  if (!KV_FORMATS.includes(format)) fail(where, 'kvFormat', "'bf16', 'f16' or 'fp8'", format);
  if (format !== 'fp8') return { format, d, dNope: 0, tiles: 0, rowElems: d, dtype: format };
  // Scales and the bf16 part must start on whole words.
  if (dv % 4 !== 0 || (d - dv) % 2 !== 0) {
    fail(where, 'headDimV / d for kvFormat fp8', 'dv a multiple of 4 and d - dv even', `dv=${dv}, d=${d}`);
  }
  const tiles = Math.ceil(dv / FP8_TILE);
  return { format, d, dNope: dv, tiles, rowElems: dv + 4 * tiles + 2 * (d - dv), dtype: 'e4m3' };
}

/** The fp8 scale of a tile: the smallest power of two >= max(amax / 448, 1e-4) (upstream's ue8m0 scales). */
export function fp8TileScale(amax: number): number {
  const x = Math.max(Math.fround(amax / 448), Math.fround(1e-4));
  const bits = f32ToBits(x);
  const e = (bits >>> 23) - 127 + ((bits & 0x7fffff) !== 0 ? 1 : 0);
  return 2 ** e;
}

/** One row of values -> its stored elements (bits of each element of the kcache row). */
export function encodeKvRow(layout: KvLayout, values: ArrayLike<number>): number[] {
  const { format, d, dNope, tiles } = layout;
  if (format === 'bf16') return Array.from({ length: d }, (_, i) => encodeBF16(values[i]));
  if (format === 'f16') return Array.from({ length: d }, (_, i) => encodeF16(values[i]));
  const bytes = new Uint8Array(layout.rowElems);
  const view = new DataView(bytes.buffer);
  for (let t = 0; t < tiles; t++) {
    const lo = t * FP8_TILE;
    const hi = Math.min(dNope, lo + FP8_TILE);
    let amax = 0;
    for (let i = lo; i < hi; i++) amax = Math.max(amax, Math.abs(Math.fround(values[i])));
    const scale = fp8TileScale(amax);
    view.setFloat32(dNope + 4 * t, scale, true);
    for (let i = lo; i < hi; i++) bytes[i] = encodeE4M3(Math.fround(values[i]) / scale);
  }
  for (let i = dNope; i < d; i++) view.setUint16(dNope + 4 * tiles + 2 * (i - dNope), encodeBF16(values[i]), true);
  return Array.from(bytes);
}

/** Stored elements of a row -> the d values the kernel computes with (fp8 tiles dequantised to bf16 as the kernel does). */
export function decodeKvRow(layout: KvLayout, stored: ArrayLike<number>): Float64Array {
  const { format, d, dNope, tiles } = layout;
  const out = new Float64Array(d);
  if (format !== 'fp8') {
    const dec = format === 'bf16' ? decodeBF16 : decodeF16;
    for (let i = 0; i < d; i++) out[i] = dec(stored[i]);
    return out;
  }
  const bytes = Uint8Array.from(stored);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < dNope; i++) {
    const scale = view.getFloat32(dNope + 4 * Math.floor(i / FP8_TILE), true);
    out[i] = decodeBF16(encodeBF16(decodeE4M3(bytes[i]) * scale));
  }
  for (let i = dNope; i < d; i++) out[i] = decodeBF16(view.getUint16(dNope + 4 * tiles + 2 * (i - dNope), true));
  return out;
}
