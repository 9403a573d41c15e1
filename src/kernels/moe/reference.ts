// Float64 CPU references for the MoE kernels: DeepSeek routing, DeepEP-style dispatch layouts,
// combine, and a whole MoE layer (routed experts + shared experts).
//
// Routing semantics (DeepSeek-V3's gate, and V2's greedy / group-limited greedy gates):
//   scores  = softmax(logits) or sigmoid(logits), per token over the experts
//   choice  = scores + e_score_correction_bias (the bias only steers selection)
//   groups  = n_group equal groups of experts; a group's score is the sum of its top-2 choice
//             scores ('noaux_tc', V3) or its max ('group_limited_greedy', V2); the best topk_group
//             groups are kept and the experts of the other groups are excluded ('greedy' has no groups)
//   ids     = the num_experts_per_tok best choice scores among the kept experts
//   weights = scores[ids] (unbiased), divided by (their sum + 1e-20) when norm_topk_prob, then
//             multiplied by routed_scaling_factor.
// Ties break toward the lower expert (and group) index, which is what torch.topk does on the CPU for
// these sizes in practice; ids come out in order of decreasing choice score. Excluded experts are
// out of the race entirely, as DeepSeek's own inference code does (it fills them with -inf);
// transformers fills them with 0.0 instead, which differs only when every remaining choice score is
// negative. DeepSeek-V2's gate skips the scaling when it normalises; V2 checkpoints ship
// norm_topk_prob=false, where both agree.
import { fail } from '../../gpu/errors.ts';

export type ScoringFunc = 'softmax' | 'sigmoid';
export type TopkMethod = 'greedy' | 'group_limited_greedy' | 'noaux_tc';

export interface RouteConfig {
  numExperts: number;
  /** num_experts_per_tok */
  topk: number;
  scoringFunc: ScoringFunc;
  topkMethod: TopkMethod;
  /** n_group and topk_group; ignored by 'greedy'. */
  nGroup?: number;
  topkGroup?: number;
  normTopkProb: boolean;
  routedScalingFactor: number;
}

/** The most groups one routing kernel handles (a u32 bit mask of kept groups). */
export const MAX_GROUPS = 32;

const isPosInt = (v: unknown): v is number => Number.isInteger(v) && (v as number) > 0;

/** Validates a routing config; the same clear errors on the CPU and GPU paths. */
export function checkRouteConfig(where: string, c: RouteConfig): Required<RouteConfig> {
  if (!isPosInt(c.numExperts)) fail(where, 'numExperts', 'a positive integer', c.numExperts);
  if (c.scoringFunc !== 'softmax' && c.scoringFunc !== 'sigmoid') fail(where, 'scoringFunc', "'softmax' or 'sigmoid'", c.scoringFunc);
  if (!['greedy', 'group_limited_greedy', 'noaux_tc'].includes(c.topkMethod)) {
    fail(where, 'topkMethod', "'greedy', 'group_limited_greedy' or 'noaux_tc'", c.topkMethod);
  }
  if (typeof c.normTopkProb !== 'boolean') fail(where, 'normTopkProb', 'a boolean', c.normTopkProb);
  if (!Number.isFinite(c.routedScalingFactor)) fail(where, 'routedScalingFactor', 'a finite number', c.routedScalingFactor);
  const grouped = c.topkMethod !== 'greedy';
  const nGroup = grouped ? c.nGroup : 1;
  const topkGroup = grouped ? c.topkGroup : 1;
  if (!isPosInt(nGroup)) fail(where, 'nGroup', 'a positive integer', nGroup);
  if (c.numExperts % nGroup !== 0) fail(where, 'nGroup', `a divisor of numExperts (${c.numExperts})`, nGroup);
  if (nGroup > MAX_GROUPS) fail(where, 'nGroup', `at most ${MAX_GROUPS}`, nGroup);
  if (!isPosInt(topkGroup) || topkGroup > nGroup) fail(where, 'topkGroup', `an integer in 1..nGroup (${nGroup})`, topkGroup);
  const groupSize = c.numExperts / nGroup;
  if (c.topkMethod === 'noaux_tc' && groupSize < 2) {
    fail(where, 'nGroup', `at most numExperts / 2 (${c.numExperts / 2}): 'noaux_tc' scores a group by its top-2 experts`, nGroup);
  }
  const left = grouped ? topkGroup * groupSize : c.numExperts;
  if (!isPosInt(c.topk) || c.topk > left) {
    fail(where, 'topk', `an integer in 1..${left} (the experts left in ${grouped ? `topkGroup=${topkGroup} groups of ${groupSize}` : 'the pool'})`, c.topk);
  }
  return { ...c, nGroup, topkGroup };
}

export interface RouteResult {
  /** [tokens * topk] expert ids, in order of decreasing choice score. */
  ids: Int32Array;
  /** [tokens * topk] routing weights. */
  weights: Float64Array;
  /** Per token, the smallest nonzero score gap that decided its groups, experts or their order:
   * where this is tiny, an f32 computation may legitimately choose differently. Exact ties do not
   * count: equal bits go to the lower index in f32 as in float64. */
  margin: Float64Array;
}

/** Index of the best value among allowed entries; ties to the lower index. */
function argmax(vals: ArrayLike<number>, allowed: (i: number) => boolean): number {
  let best = -1;
  for (let i = 0; i < vals.length; i++) if (allowed(i) && (best < 0 || vals[i] > vals[best])) best = i;
  return best;
}

/**
 * Picks n entries by repeated argmax. `gap`: the smallest nonzero difference that decided the
 * outcome, between the last pick and the best entry left out and, when the order counts, between picks.
 */
function pickTop(vals: ArrayLike<number>, n: number, allowed: (i: number) => boolean, ordered: boolean): { picked: number[]; gap: number } {
  const taken = new Set<number>();
  const picked: number[] = [];
  for (let j = 0; j < n; j++) {
    const b = argmax(vals, (i) => allowed(i) && !taken.has(i));
    taken.add(b);
    picked.push(b);
  }
  const next = argmax(vals, (i) => allowed(i) && !taken.has(i));
  const decisive = (d: number) => (d > 0 ? d : Infinity);
  let gap = next < 0 ? Infinity : decisive(vals[picked[n - 1]] - vals[next]);
  if (ordered) for (let j = 1; j < n; j++) gap = Math.min(gap, decisive(vals[picked[j - 1]] - vals[picked[j]]));
  return { picked, gap };
}

export function routeTopkRef(logits: ArrayLike<number>, tokens: number, config: RouteConfig, bias?: ArrayLike<number>): RouteResult {
  const c = checkRouteConfig('routeTopkRef', config);
  const E = c.numExperts;
  if (logits.length !== tokens * E) fail('routeTopkRef', 'logits length', `tokens * numExperts = ${tokens * E}`, logits.length);
  if (bias && bias.length !== E) fail('routeTopkRef', 'eScoreCorrectionBias length', `numExperts = ${E}`, bias.length);
  const ids = new Int32Array(tokens * c.topk);
  const weights = new Float64Array(tokens * c.topk);
  const margin = new Float64Array(tokens);
  const gs = E / c.nGroup;
  for (let t = 0; t < tokens; t++) {
    const row = Array.from({ length: E }, (_, e) => logits[t * E + e]);
    let scores: number[];
    if (c.scoringFunc === 'sigmoid') scores = row.map((x) => 1 / (1 + Math.exp(-x)));
    else {
      const m = Math.max(...row);
      const ex = row.map((x) => Math.exp(x - m));
      const s = ex.reduce((a, b) => a + b, 0);
      scores = ex.map((v) => v / s);
    }
    const choice = scores.map((s, e) => s + (bias ? bias[e] : 0));
    let kept = (_e: number) => true;
    let gap = Infinity;
    if (c.topkMethod !== 'greedy') {
      const groupScore = Array.from({ length: c.nGroup }, (_, g) => {
        const members = choice.slice(g * gs, (g + 1) * gs);
        if (c.topkMethod === 'group_limited_greedy') return Math.max(...members);
        const top = pickTop(members, 2, () => true, false).picked;
        return members[top[0]] + members[top[1]];
      });
      const groups = pickTop(groupScore, c.topkGroup, () => true, false);
      gap = groups.gap;
      const keep = new Set(groups.picked);
      kept = (e) => keep.has(Math.floor(e / gs));
    }
    const experts = pickTop(choice, c.topk, kept, true);
    margin[t] = Math.min(gap, experts.gap);
    const w = experts.picked.map((e) => scores[e]);
    const denom = c.normTopkProb ? w.reduce((a, b) => a + b, 0) + 1e-20 : 1;
    experts.picked.forEach((e, j) => {
      ids[t * c.topk + j] = e;
      weights[t * c.topk + j] = (w[j] / denom) * c.routedScalingFactor;
    });
  }
  return { ids, weights, margin };
}

export type DispatchLayoutKind = 'contiguous' | 'masked';

export interface DispatchLayoutRef {
  /** Tokens routed to each expert (entries with id -1 go nowhere). */
  numTokensPerExpert: Int32Array;
  /** [tokens * topk] the dispatched row of each (token, slot); -1 where the id is -1. */
  srcToDst: Int32Array;
  /** Contiguous layout: [rows] the expert of each row, -1 for padding rows. */
  mIndices?: Int32Array;
  /** Contiguous layout: rows in use (each expert's group padded to the alignment). */
  rowsUsed: number;
}

/**
 * Rows of an expert are its tokens in token order. Contiguous: experts' groups one after another,
 * each padded to a multiple of `alignment` rows (DeepGEMM's m-grouped contiguous layout).
 * Masked: expert e's rows start at e * mMax (DeepGEMM's masked layout, DeepEP's low-latency output).
 */
export function dispatchLayoutRef(
  ids: ArrayLike<number>,
  numExperts: number,
  kind: DispatchLayoutKind,
  opts: { alignment?: number; mMax?: number; rows?: number } = {},
): DispatchLayoutRef {
  const counts = new Int32Array(numExperts);
  const pos = Array.from(ids, (e) => (e >= 0 && e < numExperts ? counts[e]++ : -1));
  const start = new Int32Array(numExperts);
  let acc = 0;
  const align = opts.alignment ?? 1;
  for (let e = 0; e < numExperts; e++) {
    start[e] = kind === 'masked' ? e * (opts.mMax ?? 0) : acc;
    acc += Math.ceil(counts[e] / align) * align;
  }
  const srcToDst = Int32Array.from(ids, (e, i) => (pos[i] < 0 ? -1 : start[e] + pos[i]));
  if (kind === 'masked') return { numTokensPerExpert: counts, srcToDst, rowsUsed: numExperts * (opts.mMax ?? 0) };
  const mIndices = new Int32Array(opts.rows ?? acc).fill(-1);
  for (let e = 0; e < numExperts; e++) mIndices.fill(e, start[e], start[e] + counts[e]);
  return { numTokensPerExpert: counts, srcToDst, mIndices, rowsUsed: acc };
}

/** out[t] = sum_j weights[t, j] * y[srcToDst[t, j]] over slots with a row. */
export function combineRef(y: ArrayLike<number>, hidden: number, srcToDst: ArrayLike<number>, weights: ArrayLike<number>, tokens: number, topk: number): Float64Array {
  const out = new Float64Array(tokens * hidden);
  for (let t = 0; t < tokens; t++) {
    for (let j = 0; j < topk; j++) {
      const r = srcToDst[t * topk + j];
      if (r < 0) continue;
      const w = weights[t * topk + j];
      for (let c = 0; c < hidden; c++) out[t * hidden + c] += w * y[r * hidden + c];
    }
  }
  return out;
}

/** One SwiGLU MLP: down(silu(gate x) * up x), weights row-major [out, in] as nn.Linear. */
export function mlpRef(x: ArrayLike<number>, gate: ArrayLike<number>, up: ArrayLike<number>, down: ArrayLike<number>, hidden: number, inter: number): Float64Array {
  const h = new Float64Array(inter);
  for (let i = 0; i < inter; i++) {
    let g = 0;
    let u = 0;
    for (let c = 0; c < hidden; c++) {
      g += gate[i * hidden + c] * x[c];
      u += up[i * hidden + c] * x[c];
    }
    h[i] = (g / (1 + Math.exp(-g))) * u;
  }
  const out = new Float64Array(hidden);
  for (let c = 0; c < hidden; c++) {
    let s = 0;
    for (let i = 0; i < inter; i++) s += down[c * inter + i] * h[i];
    out[c] = s;
  }
  return out;
}

export interface MlpRef {
  /** [inter, hidden] */
  gate: ArrayLike<number>;
  /** [inter, hidden] */
  up: ArrayLike<number>;
  /** [hidden, inter] */
  down: ArrayLike<number>;
  inter: number;
}

export interface MoeRefWeights {
  /** Router [numExperts, hidden]. */
  router: ArrayLike<number>;
  eScoreCorrectionBias?: ArrayLike<number>;
  experts: MlpRef[];
  shared?: MlpRef;
}

/** A DeepSeek MoE layer in float64: routed experts weighted by the gate, plus the shared experts. */
export function moeRef(x: ArrayLike<number>, tokens: number, hidden: number, w: MoeRefWeights, config: RouteConfig): { out: Float64Array; route: RouteResult } {
  const E = config.numExperts;
  const logits = new Float64Array(tokens * E);
  for (let t = 0; t < tokens; t++) {
    for (let e = 0; e < E; e++) {
      let s = 0;
      for (let c = 0; c < hidden; c++) s += x[t * hidden + c] * w.router[e * hidden + c];
      logits[t * E + e] = s;
    }
  }
  const route = routeTopkRef(logits, tokens, config, w.eScoreCorrectionBias);
  const out = new Float64Array(tokens * hidden);
  for (let t = 0; t < tokens; t++) {
    const xt = Array.prototype.slice.call(x, t * hidden, (t + 1) * hidden) as number[];
    const add = (y: Float64Array, scale: number) => y.forEach((v, c) => (out[t * hidden + c] += scale * v));
    for (let j = 0; j < config.topk; j++) {
      const m = w.experts[route.ids[t * config.topk + j]];
      add(mlpRef(xt, m.gate, m.up, m.down, hidden, m.inter), route.weights[t * config.topk + j]);
    }
    if (w.shared) add(mlpRef(xt, w.shared.gate, w.shared.up, w.shared.down, hidden, w.shared.inter), 1);
  }
  return { out, route };
}
