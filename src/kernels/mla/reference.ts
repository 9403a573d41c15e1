// Float64 CPU reference of flashMlaWithKvcache, written from upstream's semantics (tests/ref.py and
// test_flash_mla_dense_decoding.py): dense paged attention with an optional causal mask, or sparse
// attention over `indices`; attnSink scales the output only; a query that attends to nothing gets
// out = 0 and lse = +inf.

export interface MlaReferenceInput {
  /** q [b, s_q, h_q, d], the values the kernel sees (already rounded to q's dtype). */
  q: ArrayLike<number>;
  b: number;
  sQ: number;
  hQ: number;
  d: number;
  dv: number;
  hKv: number;
  blockSize: number;
  /** Channel c of cache row `row` (= block * blockSize + offset) for kv head g, as the kernel computes with it. */
  k: (row: number, g: number) => ArrayLike<number>;
  numRows: number;
  blockTable?: ArrayLike<number>;
  maxBlocks?: number;
  cacheSeqlens?: ArrayLike<number>;
  softmaxScale?: number;
  causal?: boolean;
  indices?: ArrayLike<number>;
  topk?: number;
  topkLength?: ArrayLike<number>;
  attnSink?: ArrayLike<number>;
}

/** Cache rows a query token attends to, in order (upstream's masking, with invalid entries dropped). */
export function attendedRows(x: MlaReferenceInput, b: number, t: number): number[] {
  if (x.indices) {
    const topk = x.topk!;
    const n = x.topkLength ? Math.max(0, Math.min(topk, x.topkLength[b])) : topk;
    const rows: number[] = [];
    for (let i = 0; i < n; i++) {
      const idx = x.indices[(b * x.sQ + t) * topk + i];
      if (idx >= 0 && idx < x.numRows) rows.push(idx);
    }
    return rows;
  }
  const len = x.cacheSeqlens![b];
  const visible = x.causal ? Math.min(len, len - x.sQ + t + 1) : len;
  return Array.from({ length: Math.max(0, visible) }, (_, n) => x.blockTable![b * x.maxBlocks! + Math.floor(n / x.blockSize)] * x.blockSize + (n % x.blockSize));
}

export function mlaReference(x: MlaReferenceInput): { out: Float64Array; lse: Float64Array } {
  const { b: B, sQ, hQ, d, dv, hKv } = x;
  const scale = x.softmaxScale ?? 1 / Math.sqrt(d);
  const hpk = hQ / hKv;
  const out = new Float64Array(B * sQ * hQ * dv);
  const lse = new Float64Array(B * hQ * sQ);
  const acc = new Float64Array(dv);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < sQ; t++) {
      const rows = attendedRows(x, b, t);
      for (let g = 0; g < hKv; g++) {
        // Rows looked up once per kv head, then shared by its query heads (the full sweep needs the speed).
        const ks = rows.map((r) => Float64Array.from(x.k(r, g)));
        for (let h = g * hpk; h < (g + 1) * hpk; h++) {
          const qo = ((b * sQ + t) * hQ + h) * d;
          const q = Float64Array.from({ length: d }, (_, c) => x.q[qo + c]);
          const s = ks.map((k) => {
            let dot = 0;
            for (let c = 0; c < d; c++) dot += q[c] * k[c];
            return dot * scale;
          });
          const li = (b * hQ + h) * sQ + t;
          const oo = ((b * sQ + t) * hQ + h) * dv;
          if (s.length === 0) {
            lse[li] = Infinity;
            continue;
          }
          const mx = s.reduce((a, v) => Math.max(a, v), -Infinity);
          const p = s.map((v) => Math.exp(v - mx));
          const sum = p.reduce((a, v) => a + v, 0);
          const l = mx + Math.log(sum);
          lse[li] = l;
          const sink = x.attnSink ? 1 / (1 + Math.exp(x.attnSink[h] - l)) : 1;
          acc.fill(0);
          ks.forEach((k, j) => {
            for (let c = 0; c < dv; c++) acc[c] += p[j] * k[c];
          });
          for (let c = 0; c < dv; c++) out[oo + c] = (acc[c] / sum) * sink;
        }
      }
    }
  }
  return { out, lse };
}
