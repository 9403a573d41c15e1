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
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < sQ; t++) {
      const rows = attendedRows(x, b, t);
      for (let h = 0; h < hQ; h++) {
        const g = Math.floor(h / hpk);
        const qo = ((b * sQ + t) * hQ + h) * d;
        const ks = rows.map((r) => x.k(r, g));
        const s = ks.map((k) => {
          let acc = 0;
          for (let c = 0; c < d; c++) acc += x.q[qo + c] * k[c];
          return acc * scale;
        });
        const li = (b * hQ + h) * sQ + t;
        const oo = ((b * sQ + t) * hQ + h) * dv;
        if (s.length === 0) {
          lse[li] = Infinity;
          continue;
        }
        const mx = Math.max(...s);
        const p = s.map((v) => Math.exp(v - mx));
        const sum = p.reduce((a, v) => a + v, 0);
        const l = mx + Math.log(sum);
        lse[li] = l;
        const sink = x.attnSink ? 1 / (1 + Math.exp(x.attnSink[h] - l)) : 1;
        for (let c = 0; c < dv; c++) {
          let acc = 0;
          for (let j = 0; j < ks.length; j++) acc += p[j] * ks[j][c];
          out[oo + c] = (acc / sum) * sink;
        }
      }
    }
  }
  return { out, lse };
}
