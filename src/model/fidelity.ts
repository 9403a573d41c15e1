// How close one run's logits are to another's (transformers' reference.json, or an f32 run): the
// measures issue 6 asks of FP8 activations, where max|diff| says little because FP8 noise is expected.
import { argmaxRef } from '../kernels/nn/reference.ts';

export interface LogitsAgreement {
  /** Cosine similarity of the logits at each position. */
  cosine: number[];
  /** Positions whose reference winner is clear: top1 - top2 > margin * max|logit| of that position. */
  clear: number[];
  /** Clear positions where the argmax differs from the reference's. */
  flipped: number[];
}

export function compareLogits(got: readonly ArrayLike<number>[], ref: readonly ArrayLike<number>[], margin = 0.05): LogitsAgreement {
  if (got.length !== ref.length) throw new Error(`compareLogits: ${got.length} positions against a reference of ${ref.length}`);
  const res: LogitsAgreement = { cosine: [], clear: [], flipped: [] };
  got.forEach((g, t) => {
    const r = ref[t];
    if (g.length !== r.length) throw new Error(`compareLogits: position ${t} has ${g.length} logits, the reference ${r.length}`);
    let gr = 0, gg = 0, rr = 0, top1 = -Infinity, top2 = -Infinity, amax = 0;
    for (let i = 0; i < r.length; i++) {
      gr += g[i] * r[i];
      gg += g[i] * g[i];
      rr += r[i] * r[i];
      amax = Math.max(amax, Math.abs(r[i]));
      if (r[i] > top1) [top1, top2] = [r[i], top1];
      else if (r[i] > top2) top2 = r[i];
    }
    res.cosine.push(gr / Math.sqrt(gg * rr));
    if (top1 - top2 > margin * amax) {
      res.clear.push(t);
      if (argmaxRef(g) !== argmaxRef(r)) res.flipped.push(t);
    }
  });
  return res;
}

/** One line: the smallest cosine and the top-1 agreement at clear positions. */
export function describeAgreement(a: LogitsAgreement): string {
  const min = Math.min(...a.cosine);
  return `cosine min ${min.toFixed(5)} (mean ${(a.cosine.reduce((s, c) => s + c, 0) / a.cosine.length).toFixed(5)}); ` +
    `top-1 agrees at ${a.clear.length - a.flipped.length} of ${a.clear.length} clear positions${a.flipped.length ? ` (differs at ${a.flipped.join(', ')})` : ''}`;
}
