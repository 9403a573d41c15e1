// CPU formats against an independent oracle: the nearest representable value by exhaustive search
// over all codes in float64, ties to the even code, PyTorch's overflow rules.
import { describe, expect, it } from 'vitest';
import {
  bitsToF32, decodeBF16, decodeE4M3, decodeE5M2, decodeF16, encodeBF16, encodeE4M3, encodeE5M2, encodeF16,
  f32ToBits, perBlockCastToFp8, perTokenCastToFp8,
} from '../src/formats/index.ts';
import { mulberry32, randomSpread } from './conformance/random.ts';

const rand = mulberry32(1234);

/** Nearest finite code by search; ties go to the even mantissa. */
function oracle(x: number, codes: number, decode: (c: number) => number): number {
  let best = -1;
  let bestD = Infinity;
  for (let c = 0; c < codes; c++) {
    const v = decode(c);
    if (!Number.isFinite(v) || Object.is(v, -0)) continue;
    const dist = Math.abs(v - Math.abs(x));
    if (dist < bestD || (dist === bestD && (c & 1) === 0)) {
      best = c;
      bestD = dist;
    }
  }
  return best;
}

function sampleF32(): number[] {
  const xs: number[] = [];
  for (let i = 0; i < 20000; i++) xs.push(bitsToF32((rand() * 2 ** 32) >>> 0));
  for (let i = 0; i < 20000; i++) xs.push(Math.fround((rand() - 0.5) * 2 ** (rand() * 40 - 25)));
  return xs;
}

describe('e4m3fn', () => {
  it('matches the nearest-even oracle inside the range and PyTorch outside it', () => {
    for (const x of sampleF32()) {
      const a = Math.abs(x);
      const sign = f32ToBits(x) >>> 31 ? 0x80 : 0;
      // PyTorch: above 464 (the midpoint of 448 and the NaN code's 480) the rounding lands on 0x7f, NaN.
      const want = Number.isNaN(x) || a > 464 ? 0x7f | sign : oracle(x, 0x7f, decodeE4M3) | sign;
      expect(encodeE4M3(x), `x=${x}`).toBe(want);
    }
  });
  it('round-trips every finite code and keeps signed zero', () => {
    for (let c = 0; c < 256; c++) {
      if ((c & 0x7f) === 0x7f) continue;
      expect(encodeE4M3(decodeE4M3(c))).toBe(c);
    }
    expect(encodeE4M3(-0)).toBe(0x80);
    expect(decodeE4M3(0x7e)).toBe(448);
    expect(decodeE4M3(0x01)).toBe(2 ** -9);
    expect(encodeE4M3(464)).toBe(0x7e); // tie between 448 and 480 (not representable): even code
    expect(encodeE4M3(2 ** -10)).toBe(0); // half the smallest subnormal: ties to even (0)
    expect(encodeE4M3(3 * 2 ** -10)).toBe(0x02);
    expect(Number.isNaN(decodeE4M3(0xff))).toBe(true);
  });
});

describe('e5m2', () => {
  it('matches the nearest-even oracle and PyTorch overflow', () => {
    for (const x of sampleF32()) {
      const a = Math.abs(x);
      const sign = f32ToBits(x) >>> 31 ? 0x80 : 0;
      let want: number;
      if (Number.isNaN(x)) want = 0x7f | sign;
      else if (a >= 61440) want = 0x7c | sign; // 61440: midpoint of 57344 and the next (infinite) step
      else want = oracle(x, 0x7c, decodeE5M2) | sign;
      expect(encodeE5M2(x), `x=${x}`).toBe(want);
    }
    expect(decodeE5M2(0x7c)).toBe(Infinity);
    expect(decodeE5M2(0x7b)).toBe(57344);
  });
});

describe('f16 and bf16', () => {
  it('f16 matches the oracle over finite values and overflows to inf', () => {
    for (const x of sampleF32()) {
      if (Number.isNaN(x)) continue;
      const sign = f32ToBits(x) >>> 31 ? 0x8000 : 0;
      const a = Math.abs(x);
      const want = a >= 65520 ? 0x7c00 | sign : oracleF16(a) | sign;
      expect(encodeF16(x), `x=${x}`).toBe(want);
    }
  });
  it('bf16 rounds to nearest even and decodes exactly', () => {
    expect(encodeBF16(1 + 2 ** -8)).toBe(0x3f80); // tie: even
    expect(encodeBF16(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(encodeBF16(NaN)).toBe(0x7fc0);
    for (const x of randomSpread(rand, 1000, -20, 20)) {
      const r = decodeBF16(encodeBF16(x));
      expect(Math.abs(r - x)).toBeLessThanOrEqual(Math.abs(x) * 2 ** -8);
    }
  });
});

function oracleF16(a: number): number {
  // f16 codes are monotone in value: binary search, then compare neighbours.
  let lo = 0;
  let hi = 0x7bff;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (decodeF16(mid) <= a) lo = mid;
    else hi = mid - 1;
  }
  const d0 = a - decodeF16(lo);
  const d1 = decodeF16(lo + 1) - a;
  return d0 < d1 || (d0 === d1 && (lo & 1) === 0) ? lo : lo + 1;
}

describe('DeepGEMM casts', () => {
  it('perTokenCastToFp8: scale = amax/448 per 1x128 group, partial last group, amax clamped', () => {
    const m = 3;
    const k = 200;
    const x = randomSpread(rand, m * k, -2, 2);
    x.fill(0, k, k + 128); // row 1, group 0: all zeros -> amax clamps to 1e-4
    const { q, scales } = perTokenCastToFp8(x, m, k);
    expect(scales.length).toBe(m * 2);
    expect(scales[2]).toBe(Math.fround(Math.fround(1e-4) / 448));
    for (let r = 0; r < m; r++) {
      for (let g = 0; g < 2; g++) {
        let amax = 0;
        for (let c = g * 128; c < Math.min(k, g * 128 + 128); c++) amax = Math.max(amax, Math.abs(x[r * k + c]));
        if (amax === 0) continue;
        expect(scales[r * 2 + g]).toBe(Math.fround(amax / 448));
        for (let c = g * 128; c < Math.min(k, g * 128 + 128); c++) {
          const deq = decodeE4M3(q[r * k + c]) * scales[r * 2 + g];
          // e4m3 keeps 3 mantissa bits: relative error <= 2^-4, plus subnormal quantum near zero.
          expect(Math.abs(deq - x[r * k + c])).toBeLessThanOrEqual(Math.abs(x[r * k + c]) / 16 + amax * 2 ** -10);
        }
      }
    }
    // The group's largest element maps to exactly +-448.
    const r0 = Array.from(x.subarray(0, 128)).map(Math.abs);
    expect(decodeE4M3(q[r0.indexOf(Math.max(...r0))] & 0x7f)).toBe(448);
  });

  it('perBlockCastToFp8: one scale per 128x128 block, edge blocks partial', () => {
    const n = 130;
    const k = 131;
    const w = randomSpread(rand, n * k, -3, 1);
    const { q, scales } = perBlockCastToFp8(w, n, k);
    expect(scales.length).toBe(4);
    const amax = [0, 0, 0, 0];
    for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) {
      const b = (i >= 128 ? 2 : 0) + (j >= 128 ? 1 : 0);
      amax[b] = Math.max(amax[b], Math.abs(w[i * k + j]));
    }
    amax.forEach((a, b) => expect(scales[b]).toBe(Math.fround(a / 448)));
    expect(q.length).toBe(n * k);
  });

  it('refuses mismatched sizes naming the argument', () => {
    expect(() => perTokenCastToFp8(new Float32Array(10), 3, 4)).toThrow(/x must hold m\*k = 3\*4 = 12 values, got 10/);
    expect(() => perBlockCastToFp8(new Float32Array(4), 2, 2.5)).toThrow(/k must be a non-negative integer, got 2.5/);
  });
});
