// bf16 and f16 <-> f32 on the CPU, round to nearest even, as torch's `.to(torch.bfloat16 / float16)`.
import { bitsToF32, f32ToBits } from './fp8.ts';

export function encodeBF16(x: number): number {
  const bits = f32ToBits(x);
  if ((bits & 0x7fffffff) > 0x7f800000) return 0x7fc0; // NaN, as torch
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

export function decodeBF16(bits: number): number {
  return bitsToF32((bits & 0xffff) << 16);
}

export function encodeF16(x: number): number {
  const bits = f32ToBits(x);
  const sign = (bits >>> 16) & 0x8000;
  const a = bits & 0x7fffffff;
  if (a > 0x7f800000) return sign | 0x7e00;
  if (a >= 0x477ff000) return sign | 0x7c00; // rounds to >= 65520: inf
  const e = a >>> 23;
  if (e < 113) {
    // Subnormal f16: quantum 2^-24, code = significand >> (126 - e), rounded to nearest even.
    if (e < 101) return sign;
    const m = (a & 0x7fffff) | 0x800000;
    const s = 126 - e;
    const q = m >>> s;
    const rem = m & ((1 << s) - 1);
    const half = 1 << (s - 1);
    return sign | (rem > half || (rem === half && (q & 1) === 1) ? q + 1 : q);
  }
  const r = a - (112 << 23) + 0xfff + ((a >>> 13) & 1);
  return sign | (r >>> 13);
}

export function decodeF16(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const e = (bits >>> 10) & 0x1f;
  const m = bits & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}
