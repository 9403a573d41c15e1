// DeepGEMM's FP8 operand casts on the CPU. The GPU kernels (src/kernels/cast) are bit-identical.
// As DeepGEMM's test utilities: amax over the group, clamped to >= 1e-4; scale = amax / 448;
// q = e4m3(x * (448 / amax)), every step rounded to f32 as torch does on f32 tensors.
import { E4M3_MAX, encodeE4M3 } from './fp8.ts';

export const FP8_GROUP = 128;
const AMAX_MIN = Math.fround(1e-4);

export interface Fp8Cast {
  /** e4m3 bytes, row-major, dense (no row padding). */
  q: Uint8Array;
  /** f32 dequantisation scales: x ≈ decodeE4M3(q) * scale. */
  scales: Float32Array;
}

function checkDims(fn: string, x: Float32Array, rows: number, cols: number, rowName: string): void {
  for (const [name, v] of [[rowName, rows], ['k', cols]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new Error(`${fn}: ${name} must be a non-negative integer, got ${v}`);
  }
  if (x.length !== rows * cols) {
    throw new Error(`${fn}: x must hold ${rowName}*k = ${rows}*${cols} = ${rows * cols} values, got ${x.length}`);
  }
}

function quantise(x: Float32Array, amax: number, idx: Iterable<number>, q: Uint8Array): number {
  const a = Math.fround(Math.max(amax, AMAX_MIN));
  const factor = Math.fround(E4M3_MAX / a);
  for (const i of idx) q[i] = encodeE4M3(Math.fround(x[i] * factor));
  return Math.fround(a / E4M3_MAX);
}

function* range(start: number, end: number): Generator<number> {
  for (let i = start; i < end; i++) yield i;
}

/** 1x128 groups along k: scales [m, ceil(k/128)]. The last group of a row may be partial. */
export function perTokenCastToFp8(x: Float32Array, m: number, k: number): Fp8Cast {
  checkDims('perTokenCastToFp8', x, m, k, 'm');
  const groups = Math.ceil(k / FP8_GROUP);
  const q = new Uint8Array(m * k);
  const scales = new Float32Array(m * groups);
  for (let r = 0; r < m; r++) {
    for (let g = 0; g < groups; g++) {
      const start = r * k + g * FP8_GROUP;
      const end = r * k + Math.min(k, (g + 1) * FP8_GROUP);
      let amax = 0;
      for (let i = start; i < end; i++) amax = Math.max(amax, Math.abs(x[i]));
      scales[r * groups + g] = quantise(x, amax, range(start, end), q);
    }
  }
  return { q, scales };
}

/** 128x128 blocks: scales [ceil(n/128), ceil(k/128)]. Edge blocks may be partial. */
export function perBlockCastToFp8(w: Float32Array, n: number, k: number): Fp8Cast {
  checkDims('perBlockCastToFp8', w, n, k, 'n');
  const bn = Math.ceil(n / FP8_GROUP);
  const bk = Math.ceil(k / FP8_GROUP);
  const q = new Uint8Array(n * k);
  const scales = new Float32Array(bn * bk);
  for (let i = 0; i < bn; i++) {
    for (let j = 0; j < bk; j++) {
      const idx: number[] = [];
      for (let r = i * FP8_GROUP; r < Math.min(n, (i + 1) * FP8_GROUP); r++) {
        for (let c = j * FP8_GROUP; c < Math.min(k, (j + 1) * FP8_GROUP); c++) idx.push(r * k + c);
      }
      let amax = 0;
      for (const t of idx) amax = Math.max(amax, Math.abs(w[t]));
      scales[i * bk + j] = quantise(w, amax, idx, q);
    }
  }
  return { q, scales };
}
