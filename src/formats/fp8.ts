// FP8 (e4m3fn, e5m2) <-> f32, bit-identical to PyTorch's c10 casts (round to nearest even, subnormals
// kept, signed zero). Out-of-range values follow PyTorch, not saturation: |x| > 464 rounds onto
// e4m3's NaN code (0x7f), |x| >= 61440 becomes e5m2's inf. Callers scale first (the casts do).
// The integer algorithm here is the one shaders/common/fp8.wgsl runs, so CPU and GPU agree bit for bit.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function f32ToBits(x: number): number {
  f32[0] = x;
  return u32[0];
}

export function bitsToF32(bits: number): number {
  u32[0] = bits;
  return f32[0];
}

// Round m >> s to nearest even (s >= 1).
function shiftRne(m: number, s: number): number {
  const q = Math.floor(m / 2 ** s);
  const rem = m - q * 2 ** s;
  const half = 2 ** (s - 1);
  return rem > half || (rem === half && q % 2 === 1) ? q + 1 : q;
}

interface Fp8Format {
  mantBits: number; // 3 for e4m3, 2 for e5m2
  bias: number;
  overflowBits: number; // |x| bits at and above which the result is the overflow code
  overflowCode: (absBits: number) => number;
}

const E4M3: Fp8Format = {
  mantBits: 3,
  bias: 7,
  overflowBits: 1087 << 20, // 480.0f
  overflowCode: () => 0x7f,
};

const E5M2: Fp8Format = {
  mantBits: 2,
  bias: 15,
  overflowBits: 143 << 23, // 65536.0f
  overflowCode: (a) => (a > 0x7f800000 ? 0x7f : 0x7c),
};

function encodeFp8(x: number, fmt: Fp8Format): number {
  const bits = f32ToBits(x);
  const sign = (bits >>> 24) & 0x80;
  const a = bits & 0x7fffffff;
  if (a >= fmt.overflowBits) return sign | fmt.overflowCode(a);
  const e = a >>> 23;
  const minNormalExp = 127 - fmt.bias + 1;
  if (e < minNormalExp) {
    // Subnormal result: quantum is 2^(1 - bias - mantBits); an f32 with exponent e and 24-bit
    // significand m is m * 2^(e - 150), so the code is m >> (150 + quantumExp - e), rounded.
    if (e === 0) return sign; // f32 subnormals are far below half a quantum
    const m = (a & 0x7fffff) | 0x800000;
    const s = 151 - fmt.bias - fmt.mantBits - e;
    if (s > 25) return sign;
    return sign | shiftRne(m, s);
  }
  // Normal: rebias the exponent and round the mantissa to nearest even in one integer add.
  const drop = 23 - fmt.mantBits;
  const odd = (a >>> drop) & 1;
  const r = (a + ((fmt.bias - 127) << 23) + (1 << (drop - 1)) - 1 + odd) >>> 0;
  return sign | ((r >>> drop) & 0x7f);
}

function decodeFp8(code: number, fmt: Fp8Format, isNaN: (c: number) => boolean, isInf: (c: number) => boolean): number {
  const sign = code & 0x80 ? -1 : 1;
  const c = code & 0x7f;
  if (isNaN(c)) return NaN;
  if (isInf(c)) return sign * Infinity;
  const e = c >> fmt.mantBits;
  const m = c & ((1 << fmt.mantBits) - 1);
  const scale = 1 << fmt.mantBits;
  if (e === 0) return sign * m * 2 ** (1 - fmt.bias - fmt.mantBits);
  return sign * (1 + m / scale) * 2 ** (e - fmt.bias);
}

/** f32 -> float8_e4m3fn bits (as torch's `.to(torch.float8_e4m3fn)`). */
export function encodeE4M3(x: number): number {
  return encodeFp8(x, E4M3);
}

/** float8_e4m3fn bits -> value. 0x7f/0xff are NaN; there is no infinity. */
export function decodeE4M3(bits: number): number {
  return decodeFp8(bits & 0xff, E4M3, (c) => c === 0x7f, () => false);
}

/** f32 -> float8_e5m2 bits (as torch's `.to(torch.float8_e5m2)`). */
export function encodeE5M2(x: number): number {
  return encodeFp8(x, E5M2);
}

/** float8_e5m2 bits -> value (IEEE-like: 0x7c is inf, 0x7d..0x7f NaN). */
export function decodeE5M2(bits: number): number {
  return decodeFp8(bits & 0xff, E5M2, (c) => c > 0x7c, (c) => c === 0x7c);
}

/** Largest finite e4m3fn value. */
export const E4M3_MAX = 448;
