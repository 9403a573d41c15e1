// Float64 CPU references of the nn kernels (the model reference builds on the same functions).

export function embeddingRef(table: ArrayLike<number>, hidden: number, ids: ArrayLike<number>): Float64Array {
  const out = new Float64Array(ids.length * hidden);
  for (let t = 0; t < ids.length; t++) for (let c = 0; c < hidden; c++) out[t * hidden + c] = table[ids[t] * hidden + c];
  return out;
}

/** One row: x / sqrt(mean(x^2) + eps) * w. */
export function rmsNormRef(x: ArrayLike<number>, w: ArrayLike<number>, eps: number): Float64Array {
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += x[i] * x[i];
  const r = 1 / Math.sqrt(ss / x.length + eps);
  return Float64Array.from(x, (v, i) => v * r * w[i]);
}

/**
 * In-place rope of x[off .. off + 2*cos.length), layout kept: pair i is (2i, 2i+1) when
 * interleaved, else (i, i + d/2). (transformers additionally moves interleaved pairs to halves
 * order; attention scores are the same either way, as q and k are permuted alike.)
 */
export function ropeRef(x: Float64Array, off: number, cos: ArrayLike<number>, sin: ArrayLike<number>, interleave: boolean): void {
  const h = cos.length;
  for (let i = 0; i < h; i++) {
    const ia = off + (interleave ? 2 * i : i);
    const ib = off + (interleave ? 2 * i + 1 : i + h);
    const a = x[ia];
    const b = x[ib];
    x[ia] = a * cos[i] - b * sin[i];
    x[ib] = b * cos[i] + a * sin[i];
  }
}

export function siluMulRef(gate: ArrayLike<number>, up: ArrayLike<number>): Float64Array {
  return Float64Array.from(gate, (g, i) => (g / (1 + Math.exp(-g))) * up[i]);
}

/** First index of the row maximum, NaN ignored (-1 when nothing is comparable). */
export function argmaxRef(row: ArrayLike<number>): number {
  let best = -1;
  for (let i = 0; i < row.length; i++) if (!Number.isNaN(row[i]) && (best < 0 || row[i] > row[best])) best = i;
  return best;
}

export interface MlaDimsRef {
  heads: number;
  qkNopeHeadDim: number;
  qkRopeHeadDim: number;
  vHeadDim: number;
  kvLoraRank: number;
}

/** [W_UK^T q_nope, q_rope] per (token, head); kvB [heads * (nope + v), kvLoraRank] dequantized. */
export function mlaAbsorbQRef(q: ArrayLike<number>, kvB: ArrayLike<number>, m: MlaDimsRef): Float64Array {
  const { heads: nh, qkNopeHeadDim: dn, qkRopeHeadDim: dr, vHeadDim: dv, kvLoraRank: kvr } = m;
  const tokens = q.length / (nh * (dn + dr));
  const out = new Float64Array(tokens * nh * (kvr + dr));
  for (let th = 0; th < tokens * nh; th++) {
    const h = th % nh;
    for (let c = 0; c < kvr; c++) {
      let s = 0;
      for (let j = 0; j < dn; j++) s += q[th * (dn + dr) + j] * kvB[(h * (dn + dv) + j) * kvr + c];
      out[th * (kvr + dr) + c] = s;
    }
    for (let i = 0; i < dr; i++) out[th * (kvr + dr) + kvr + i] = q[th * (dn + dr) + dn + i];
  }
  return out;
}

/** W_UV o per (token, head): o [tokens, heads, kvLoraRank] -> [tokens, heads * v]. */
export function mlaAbsorbORef(o: ArrayLike<number>, kvB: ArrayLike<number>, m: MlaDimsRef): Float64Array {
  const { heads: nh, qkNopeHeadDim: dn, vHeadDim: dv, kvLoraRank: kvr } = m;
  const tokens = o.length / (nh * kvr);
  const out = new Float64Array(tokens * nh * dv);
  for (let th = 0; th < tokens * nh; th++) {
    const h = th % nh;
    for (let v = 0; v < dv; v++) {
      let s = 0;
      for (let c = 0; c < kvr; c++) s += o[th * kvr + c] * kvB[(h * (dn + dv) + dn + v) * kvr + c];
      out[th * dv + v] = s;
    }
  }
  return out;
}
