// Float64 CPU references for the GEMMs and DeepGEMM's error measure. Operands are given as host
// values already dequantised or not: FP8 callers pass decode(q) and the scales, and the reference
// computes the exact product of the dequantised operands (every term in float64).

/** DeepGEMM's calc_diff: 1 - 2*sum(x*y) / sum(x*x + y*y), in float64; 0 when both are all zeros. */
export function calcDiff(x: ArrayLike<number>, y: ArrayLike<number>): number {
  if (x.length !== y.length) throw new Error(`calcDiff: lengths differ (${x.length} vs ${y.length})`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < x.length; i++) {
    num += x[i] * y[i];
    den += x[i] * x[i] + y[i] * y[i];
  }
  return den === 0 ? 0 : 1 - (2 * num) / den;
}

export interface RefOperand {
  /** Values, row-major [rows, k] (e4m3 already decoded). */
  x: ArrayLike<number>;
  /** FP8 scales: [rows, ceil(k/128)] for A (1x128), [ceil(rows/128), ceil(k/128)] for B (128x128). */
  scales?: ArrayLike<number>;
}

function dequant(op: RefOperand, rows: number, k: number, block: number): Float64Array {
  const kb = Math.ceil(k / 128);
  const out = new Float64Array(rows * k);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < k; j++) {
      const s = op.scales ? op.scales[Math.floor(r / block) * kb + Math.floor(j / 128)] : 1;
      out[r * k + j] = op.x[r * k + j] * s;
    }
  }
  return out;
}

/** D [m, n] = C + A @ B.T in float64, A [m, k] (1x128 scales), B [n, k] (128x128 scales). */
export function gemmReference(a: RefOperand, b: RefOperand, m: number, n: number, k: number, c?: ArrayLike<number>): Float64Array {
  const A = dequant(a, m, k, 1);
  const B = dequant(b, n, k, 128);
  const d = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = c ? c[i * n + j] : 0;
      for (let t = 0; t < k; t++) s += A[i * k + t] * B[j * k + t];
      d[i * n + j] = s;
    }
  }
  return d;
}

function slice(op: RefOperand, k: number, r0: number, r1: number, scaleRows: number, s0: number): RefOperand {
  const kb = Math.ceil(k / 128);
  return {
    x: Array.prototype.slice.call(op.x, r0 * k, r1 * k) as number[],
    scales: op.scales && (Array.prototype.slice.call(op.scales, s0 * kb, (s0 + scaleRows) * kb) as number[]),
  };
}

/** Contiguous layout: row r uses B group mIndices[r]; padding rows (-1) are 0. B is [groups, n, k]. */
export function contiguousReference(a: RefOperand, b: RefOperand, mIndices: ArrayLike<number>, n: number, k: number): Float64Array {
  const m = mIndices.length;
  const nb = Math.ceil(n / 128);
  const d = new Float64Array(m * n);
  for (let r = 0; r < m; r++) {
    const g = mIndices[r];
    if (g < 0) continue;
    const row = gemmReference(slice(a, k, r, r + 1, 1, r), slice(b, k, g * n, (g + 1) * n, nb, g * nb), 1, n, k);
    d.set(row, r * n);
  }
  return d;
}

/** Masked layout: A [g, mMax, k], B [g, n, k]; rows r < maskedM[g] are computed, the rest are NaN (must stay untouched). */
export function maskedReference(a: RefOperand, b: RefOperand, maskedM: ArrayLike<number>, mMax: number, n: number, k: number): Float64Array {
  const groups = maskedM.length;
  const nb = Math.ceil(n / 128);
  const d = new Float64Array(groups * mMax * n).fill(NaN);
  for (let g = 0; g < groups; g++) {
    const rows = maskedM[g];
    if (rows === 0) continue;
    const res = gemmReference(slice(a, k, g * mMax, g * mMax + rows, rows, g * mMax), slice(b, k, g * n, (g + 1) * n, nb, g * nb), rows, n, k);
    d.set(res, g * mMax * n);
  }
  return d;
}
