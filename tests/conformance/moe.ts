// MoE conformance: routing, dispatch layouts, dispatch (copy and FP8), combine, load counters.
import type { GpuContext } from '../../src/gpu/context.ts';
import { bitsToF32, f32ToBits } from '../../src/formats/fp8.ts';
import { encodeBF16 } from '../../src/formats/half.ts';
import { perBlockCastToFp8, perTokenCastToFp8 } from '../../src/formats/casts.ts';
import { decodeE4M3 } from '../../src/formats/fp8.ts';
import { calcDiff } from '../../src/kernels/gemm/reference.ts';
import { moeLayer, type MoeWeight } from '../../src/kernels/moe/layer.ts';
import { createTensor, poisonTensor, readTensor, readTensorBits, uploadTensor, type Tensor } from '../../src/gpu/tensor.ts';
import { planRouteTopk, type RouteOptions } from '../../src/kernels/moe/route.ts';
import { combine, dispatch, getDispatchLayout, type DispatchLayout } from '../../src/kernels/moe/dispatch.ts';
import { ExpertLoadCounters, parseExpertLoad } from '../../src/kernels/moe/counters.ts';
import { combineRef, dispatchLayoutRef, moeRef, routeTopkRef, type MlpRef, type RouteConfig } from '../../src/kernels/moe/reference.ts';
import { mismatches, rand, relErr, throwsLike, type Check, type CheckResult } from './check.ts';
import { randomSpread } from './random.ts';

const E = 16;
const V3: RouteConfig = { numExperts: E, topk: 4, scoringFunc: 'sigmoid', topkMethod: 'noaux_tc', nGroup: 4, topkGroup: 2, normTopkProb: true, routedScalingFactor: 2.5 };
const TOKENS = [1, 7, 33];
// Below this reference margin an f32 GPU may legitimately choose another expert: such tokens are not compared.
const MARGIN = 1e-5;

const gauss = (n: number, s = 1) => Float32Array.from({ length: n }, () => s * (rand() + rand() + rand() - 1.5) * 2);

async function routeCheck(ctx: GpuContext, config: RouteConfig, withBias: boolean, ties = false, always = 0): Promise<CheckResult> {
  let idBad = 0;
  let err = 0;
  let skipped = 0;
  let first = '';
  for (const tokens of TOKENS) {
    const logits = gauss(tokens * config.numExperts, 2);
    // Ties: copy expert 0's logit to others (the same bits give the same score on the GPU). Tokens
    // 0, 3, 6, ... get one score for all experts, so ties alone decide them and they are always compared.
    if (ties) for (let t = 0; t < tokens; t++) for (let e = 1; e < config.numExperts; e += t % 3 + 1) logits[t * config.numExperts + e] = logits[t * config.numExperts];
    const bias = withBias ? gauss(config.numExperts, 0.3) : undefined;
    const ref = routeTopkRef(logits, tokens, config, bias);
    const lt = uploadTensor(ctx, logits, [tokens, config.numExperts], 'f32');
    const opts: RouteOptions = { ...config, eScoreCorrectionBias: bias && uploadTensor(ctx, bias, [config.numExperts], 'f32'), alwaysExperts: always };
    const p = await planRouteTopk(ctx, lt, opts);
    poisonTensor(p.topkIdx);
    poisonTensor(p.topkWeights);
    await p.launch.run();
    const ids = await readTensor(p.topkIdx);
    const w = await readTensor(p.topkWeights);
    const k = config.topk;
    const n = k + always;
    // With ties too: the margin leaves exact ties out, so a token is compared unless two of its
    // unequal scores are close enough for f32 rounding to swap them.
    const keep = (t: number) => ref.margin[t] > MARGIN;
    for (let t = 0; t < tokens; t++) {
      // The always-taken experts follow, weight 1, whatever the routing.
      for (let s = 0; s < always; s++) idBad += ids[t * n + k + s] === config.numExperts + s && w[t * n + k + s] === 1 ? 0 : 1;
      if (!keep(t)) {
        skipped++;
        continue;
      }
      const bad = mismatches(ids.subarray(t * n, t * n + k), ref.ids.subarray(t * k, (t + 1) * k));
      // The first mismatch's ids and margin in the note: what it takes to tell a near tie from a bug.
      if (bad && !idBad) first = `; first: ${tokens} tokens, token ${t} got [${ids.subarray(t * n, t * n + k)}], reference [${ref.ids.subarray(t * k, (t + 1) * k)}], margin ${ref.margin[t].toExponential(2)}`;
      idBad += bad;
      err = Math.max(err, relErr(w.subarray(t * n, t * n + k), ref.weights.subarray(t * k, (t + 1) * k)));
    }
    lt.destroy();
  }
  // An id mismatch fails outright; weights are f32 sigmoid/softmax against float64.
  return { err: idBad ? Infinity : err, tol: 2e-6, note: `${idBad} id mismatches; ${skipped} near-tie tokens not compared${first}` };
}

/** Random topk ids: distinct per token, a few -1 (routed nowhere), skewed toward low experts. */
function randomIds(tokens: number, k: number, numExperts: number, holes = true): Int32Array {
  const ids = new Int32Array(tokens * k);
  for (let t = 0; t < tokens; t++) {
    const taken = new Set<number>();
    for (let j = 0; j < k; j++) {
      let e: number;
      do e = Math.floor(rand() ** 2 * numExperts);
      while (taken.has(e));
      taken.add(e);
      ids[t * k + j] = holes && rand() < 0.1 ? -1 : e;
    }
  }
  return ids;
}

/** x values as the GPU sees them: bf16 inputs rounded. */
function activations(n: number, dtype: 'f32' | 'bf16', hi = 1): Float32Array {
  const raw = randomSpread(rand, n, -2, hi);
  return dtype === 'bf16' ? raw.map((v) => bitsToF32(encodeBF16(v) << 16)) : raw;
}

async function layoutAndDispatchCheck(ctx: GpuContext, kind: 'contiguous' | 'masked', dtype: 'f32' | 'bf16', fp8: boolean): Promise<CheckResult> {
  const k = 4;
  const hidden = dtype === 'f32' ? 200 : 256;
  const alignment = 8;
  let bad = 0;
  const notes: string[] = [];
  for (const tokens of TOKENS) {
    const ids = randomIds(tokens, k, E);
    const xs = activations(tokens * hidden, dtype);
    const idT = uploadTensor(ctx, ids, [tokens, k], 'i32');
    const xT = uploadTensor(ctx, xs, [tokens, hidden], dtype);
    const layout = await getDispatchLayout(ctx, idT, { numExperts: E, layout: kind, alignment, mMax: kind === 'masked' ? tokens + 2 : undefined });
    const ref = dispatchLayoutRef(ids, E, kind, { alignment, mMax: layout.mMax, rows: layout.rows });
    let m = mismatches(await readTensor(layout.numTokensPerExpert), ref.numTokensPerExpert) + mismatches(await readTensor(layout.srcToDst), ref.srcToDst);
    if (layout.mIndices) m += mismatches(await readTensor(layout.mIndices), ref.mIndices!);
    // Every dispatched row names its token (what a GEMM reading token rows in place follows).
    const d2s = await readTensor(layout.dstToSrc);
    ref.srcToDst.forEach((r, i) => {
      if (r >= 0 && d2s[r] !== Math.floor(i / k)) m++;
    });
    if (m) notes.push(`tokens ${tokens}: ${m} layout mismatches`);
    bad += m;

    // The dispatched matrix the reference expects: token rows at their rows, zeros on contiguous
    // padding; rows past the last group (contiguous) or an expert's count (masked) are left alone.
    const rowsRef = new Float32Array(layout.rows * hidden);
    const written = new Set<number>();
    ref.srcToDst.forEach((r, i) => {
      if (r < 0) return;
      rowsRef.set(xs.subarray(Math.floor(i / k) * hidden, (Math.floor(i / k) + 1) * hidden), r * hidden);
      written.add(r);
    });
    const checked = (r: number) => (kind === 'contiguous' ? r < ref.rowsUsed : written.has(r));
    const d = await dispatch(ctx, xT, layout, { fp8 });
    // Poison, then rerun the planned pass: rows it should write show up if it does not.
    poisonTensor(d.x);
    if (d.scales) poisonTensor(d.scales);
    await d.launch.run();
    const groups = Math.ceil(hidden / 128);
    if (fp8) {
      const refQ = perTokenCastToFp8(rowsRef, layout.rows, hidden);
      const q = await readTensorBits(d.x);
      const s = await readTensor(d.scales!);
      for (let r = 0; r < layout.rows; r++) {
        if (!checked(r)) continue;
        m = mismatches(q.subarray(r * hidden, (r + 1) * hidden), refQ.q.subarray(r * hidden, (r + 1) * hidden));
        m += mismatches(Array.from(s.subarray(r * groups, (r + 1) * groups), f32ToBits), Array.from(refQ.scales.subarray(r * groups, (r + 1) * groups), f32ToBits));
        bad += m;
        if (m && notes.length < 3) notes.push(`tokens ${tokens} row ${r}: ${m} fp8 mismatches`);
      }
    } else {
      const got = await readTensor(d.x);
      for (let r = 0; r < layout.rows; r++) {
        if (!checked(r)) continue;
        m = mismatches(got.subarray(r * hidden, (r + 1) * hidden), rowsRef.subarray(r * hidden, (r + 1) * hidden));
        bad += m;
        if (m && notes.length < 3) notes.push(`tokens ${tokens} row ${r}: ${m} mismatches`);
      }
    }
    idT.destroy();
    xT.destroy();
  }
  return { err: bad, tol: 0, note: notes.join('; ') || `bit-identical, tokens ${TOKENS.join('/')}` };
}

async function readCombine(ctx: GpuContext, y: Tensor, layout: DispatchLayout, w: Tensor, residual?: Tensor): Promise<Float32Array> {
  const { out, launch } = await combine(ctx, y, layout, w, { residual });
  poisonTensor(out);
  await launch.run();
  return (await readTensor(out)) as Float32Array;
}

async function combineCheck(ctx: GpuContext, kind: 'contiguous' | 'masked', dtype: 'f32' | 'bf16', withResidual = false): Promise<CheckResult> {
  const k = 4;
  const hidden = 136;
  let err = 0;
  let differ = 0;
  for (const tokens of TOKENS) {
    const ids = randomIds(tokens, k, E);
    const weights = Float32Array.from({ length: tokens * k }, () => rand());
    const idT = uploadTensor(ctx, ids, [tokens, k], 'i32');
    const layout = await getDispatchLayout(ctx, idT, { numExperts: E, layout: kind, alignment: 4 });
    const rows = layout.rows;
    const ys = activations(rows * hidden, dtype);
    const yT = uploadTensor(ctx, ys, kind === 'contiguous' ? [rows, hidden] : [E, layout.mMax, hidden], dtype);
    const wT = uploadTensor(ctx, weights, [tokens, k], 'f32');
    const res = gauss(tokens * hidden);
    const resT = withResidual ? uploadTensor(ctx, res, [tokens, hidden], 'f32') : undefined;
    const first = await readCombine(ctx, yT, layout, wT, resT);
    const second = await readCombine(ctx, yT, layout, wT, resT);
    differ += mismatches(Array.from(first, f32ToBits), Array.from(second, f32ToBits));
    const ref = dispatchLayoutRef(ids, E, kind, { alignment: 4, mMax: layout.mMax, rows });
    const sum = combineRef(ys, hidden, ref.srcToDst, weights, tokens, k);
    const want = withResidual ? sum.map((v, i) => v + res[i]) : sum;
    err = Math.max(err, relErr(first, want));
    for (const t of [idT, yT, wT, resT]) t?.destroy();
  }
  return { err: differ ? Infinity : err, tol: 1e-6, note: `${differ} bits differ between two runs` };
}

/** 'w8a32': FP8 weights with f32 activations (moeLayer's activations: 'f32'). */
type WeightFormat = 'f32' | 'bf16' | 'fp8' | 'w8a32';

/** A weight [groups * rows, k] as the GPU gets it and the values the reference uses (rounded, or FP8 dequantised per 128x128 block). */
function weight(ctx: GpuContext, w: Float32Array, groups: number, rows: number, k: number, format: WeightFormat): { gpu: MoeWeight; ref: Float32Array } {
  const shape = groups > 1 ? [groups, rows, k] : [rows, k];
  if (format === 'f32' || format === 'bf16') {
    const ref = format === 'bf16' ? w.map((v) => bitsToF32(encodeBF16(v) << 16)) : w;
    return { gpu: uploadTensor(ctx, ref, shape, format), ref };
  }
  const q = new Uint8Array(w.length);
  const scales: number[] = [];
  const ref = new Float32Array(w.length);
  const per = rows * k;
  for (let g = 0; g < groups; g++) {
    const c = perBlockCastToFp8(w.subarray(g * per, (g + 1) * per), rows, k);
    q.set(c.q, g * per);
    scales.push(...c.scales);
    const kb = Math.ceil(k / 128);
    for (let i = 0; i < per; i++) ref[g * per + i] = decodeE4M3(c.q[i]) * c.scales[Math.floor(Math.floor(i / k) / 128) * kb + Math.floor((i % k) / 128)];
  }
  const sShape = [...(groups > 1 ? [groups] : []), Math.ceil(rows / 128), Math.ceil(k / 128)];
  return { gpu: [uploadTensor(ctx, q, shape, 'e4m3'), uploadTensor(ctx, scales, sShape, 'f32')], ref };
}

/** gateUp [groups, 2I, hidden] and down [groups, hidden, I] for the GPU, and per-group MlpRefs. */
function mlpWeights(ctx: GpuContext, groups: number, hidden: number, inter: number, format: WeightFormat) {
  const gateUp = weight(ctx, gauss(groups * 2 * inter * hidden, 1 / Math.sqrt(hidden)), groups, 2 * inter, hidden, format);
  const down = weight(ctx, gauss(groups * hidden * inter, 1 / Math.sqrt(inter)), groups, hidden, inter, format);
  const refs: MlpRef[] = Array.from({ length: groups }, (_, g) => ({
    gate: gateUp.ref.subarray(g * 2 * inter * hidden, (g * 2 + 1) * inter * hidden),
    up: gateUp.ref.subarray((g * 2 + 1) * inter * hidden, (g + 1) * 2 * inter * hidden),
    down: down.ref.subarray(g * hidden * inter, (g + 1) * hidden * inter),
    inter,
  }));
  return { gpu: { gateUp: gateUp.gpu, down: down.gpu }, refs };
}

// FP8 activations (1x128 groups, 3 mantissa bits) against float64: a few percent of the largest output.
const LAYER_TOL: Record<WeightFormat, number> = { f32: 1e-5, bf16: 1e-5, fp8: 0.08, w8a32: 1e-5 };

// One token count per layer check keeps them to seconds on software adapters; together they cover 1..33.
/**
 * Routed experts plus `n` shared ones held as their last groups (moeLayer's sharedInExperts), and
 * the one shared MLP (n * inter wide) they stand for, for the reference: gate and up rows, down columns.
 */
function sharedInExperts(ctx: GpuContext, hidden: number, inter: number, n: number, format: WeightFormat) {
  const all = mlpWeights(ctx, E + n, hidden, inter, format);
  const parts = all.refs.slice(E);
  const rows = (f: (r: MlpRef) => ArrayLike<number>) => Float32Array.from(parts.flatMap((r) => Array.from(f(r))));
  const down = new Float32Array(hidden * n * inter);
  parts.forEach((r, s) => {
    for (let h = 0; h < hidden; h++) for (let c = 0; c < inter; c++) down[h * n * inter + s * inter + c] = r.down[h * inter + c];
  });
  return { gpu: all.gpu, refs: all.refs.slice(0, E), shared: { gate: rows((r) => r.gate), up: rows((r) => r.up), down, inter: n * inter } };
}

async function moeLayerCheck(
  ctx: GpuContext,
  kind: 'contiguous' | 'masked',
  format: WeightFormat,
  tokenCounts: number[],
  opts: { residual?: boolean; sharedInExperts?: number } = {},
): Promise<CheckResult> {
  const hidden = 256;
  const inter = 96;
  const xDtype = format === 'bf16' ? 'bf16' : 'f32';
  const n = opts.sharedInExperts ?? 0;
  const merged = n > 0 ? sharedInExperts(ctx, hidden, inter, n, format) : undefined;
  const experts = merged ?? mlpWeights(ctx, E, hidden, inter, format);
  const shared = merged ? { gpu: undefined, refs: [merged.shared] } : mlpWeights(ctx, 1, hidden, inter, format);
  const router = gauss(E * hidden, 1 / Math.sqrt(hidden));
  const bias = gauss(E, 0.1);
  const routerT = uploadTensor(ctx, router, [E, hidden], 'f32');
  const biasT = uploadTensor(ctx, bias, [E], 'f32');
  let err = 0;
  let diff = 0;
  let skipped = 0;
  for (const tokens of tokenCounts) {
    const xs = activations(tokens * hidden, xDtype, 2);
    const x = uploadTensor(ctx, xs, [tokens, hidden], xDtype);
    const res = gauss(tokens * hidden);
    const residual = opts.residual ? uploadTensor(ctx, res, [tokens, hidden], 'f32') : undefined;
    const weights = { router: routerT, experts: experts.gpu, shared: shared.gpu, sharedInExperts: n };
    const r = await moeLayer(ctx, x, weights, { route: { ...V3, eScoreCorrectionBias: biasT }, layout: kind, activations: format === 'w8a32' ? 'f32' : 'fp8', residual });
    const got = await readTensor(r.out);
    const ref = moeRef(xs, tokens, hidden, { router, eScoreCorrectionBias: bias, experts: experts.refs, shared: shared.refs[0] }, V3);
    if (residual) ref.out.forEach((v, i) => (ref.out[i] = v + res[i]));
    // Tokens whose routing is a near-tie in float64 may go to other experts in f32: not compared.
    const rows = Array.from({ length: tokens }, (_, t) => t).filter((t) => ref.route.margin[t] > 1e-4);
    skipped += tokens - rows.length;
    const pick = (a: ArrayLike<number>) => rows.flatMap((t) => Array.from({ length: hidden }, (_, c) => a[t * hidden + c]));
    err = Math.max(err, relErr(pick(got), pick(ref.out)));
    diff = Math.max(diff, calcDiff(pick(got), pick(ref.out)));
    x.destroy();
    r.out.destroy();
    residual?.destroy();
  }
  return { err, tol: LAYER_TOL[format], note: `calcDiff ${diff.toExponential(2)}; ${skipped} near-tie tokens not compared` };
}

export const moeChecks: Check[] = [
  { name: 'moe routeTopk V3 (sigmoid, noaux_tc, bias, norm, scale) vs float64', run: (ctx) => routeCheck(ctx, V3, true) },
  { name: 'moe routeTopk V3 without bias, not normalised', run: (ctx) => routeCheck(ctx, { ...V3, normTopkProb: false, routedScalingFactor: 1 }, false) },
  { name: 'moe routeTopk V2 greedy softmax', run: (ctx) => routeCheck(ctx, { ...V3, scoringFunc: 'softmax', topkMethod: 'greedy', topk: 6 }, false) },
  { name: 'moe routeTopk V2 greedy softmax, two always-taken experts after the topk', run: (ctx) => routeCheck(ctx, { ...V3, scoringFunc: 'softmax', topkMethod: 'greedy', topk: 6 }, false, false, 2) },
  { name: 'moe routeTopk V2 group_limited_greedy softmax', run: (ctx) => routeCheck(ctx, { ...V3, scoringFunc: 'softmax', topkMethod: 'group_limited_greedy', nGroup: 8, topkGroup: 3 }, false) },
  {
    name: 'moe routeTopk V3 at DeepSeek-V3 size (256 experts, k 8, 8 groups keep 4)',
    run: (ctx) => routeCheck(ctx, { ...V3, numExperts: 256, topk: 8, nGroup: 8, topkGroup: 4 }, true),
  },
  {
    name: 'moe routeTopk V2 at DeepSeek-V2 size (160 experts, k 6, group-limited 8 keep 3, softmax)',
    run: (ctx) => routeCheck(ctx, { ...V3, numExperts: 160, topk: 6, nGroup: 8, topkGroup: 3, scoringFunc: 'softmax', topkMethod: 'group_limited_greedy', normTopkProb: false, routedScalingFactor: 16 }, false),
  },
  { name: 'moe routeTopk ties go to the lower expert and group index', run: (ctx) => routeCheck(ctx, V3, false, true) },
  {
    name: 'moe routeTopk ties at 256 experts (several experts per invocation)',
    run: (ctx) => routeCheck(ctx, { ...V3, numExperts: 256, topk: 8, nGroup: 8, topkGroup: 4 }, false, true),
  },
  { name: 'moe layout + dispatch contiguous f32 copy, bit-identical', run: (ctx) => layoutAndDispatchCheck(ctx, 'contiguous', 'f32', false) },
  { name: 'moe layout + dispatch contiguous f32 -> fp8 1x128, bit-identical to perTokenCastToFp8', run: (ctx) => layoutAndDispatchCheck(ctx, 'contiguous', 'f32', true) },
  { name: 'moe layout + dispatch masked bf16 copy, bit-identical', run: (ctx) => layoutAndDispatchCheck(ctx, 'masked', 'bf16', false) },
  { name: 'moe layout + dispatch masked bf16 -> fp8 1x128, bit-identical', run: (ctx) => layoutAndDispatchCheck(ctx, 'masked', 'bf16', true) },
  {
    name: 'moe dispatch fp8 subgroup-shuffle reduction path',
    needs: ['subgroups'],
    run: (ctx) => layoutAndDispatchCheck(ctx, 'contiguous', 'bf16', true),
  },
  { name: 'moe combine contiguous f32: float64 reference, same bits twice', run: (ctx) => combineCheck(ctx, 'contiguous', 'f32') },
  { name: 'moe combine masked bf16: float64 reference, same bits twice', run: (ctx) => combineCheck(ctx, 'masked', 'bf16') },
  { name: 'moe combine masked f32 onto a residual', run: (ctx) => combineCheck(ctx, 'masked', 'f32', true) },
  { name: 'moe layer f32 weights, contiguous layout: float64 MoE (routed + shared experts)', run: (ctx) => moeLayerCheck(ctx, 'contiguous', 'f32', [33]) },
  { name: 'moe layer bf16 weights and activations, masked layout: float64 MoE', run: (ctx) => moeLayerCheck(ctx, 'masked', 'bf16', [7]) },
  { name: 'moe layer FP8 weights and activations, contiguous layout: float64 MoE', run: (ctx) => moeLayerCheck(ctx, 'contiguous', 'fp8', [1, 17]) },
  { name: 'moe layer FP8 weights and activations, masked layout: float64 MoE', run: (ctx) => moeLayerCheck(ctx, 'masked', 'fp8', [33]) },
  { name: 'moe layer FP8 weights, f32 activations (W8A32), masked layout, onto a residual: float64 MoE', run: (ctx) => moeLayerCheck(ctx, 'masked', 'w8a32', [3], { residual: true }) },
  {
    name: 'moe layer W8A32, masked layout, 2 shared experts held as grouped ones, onto a residual (the decode step): float64 MoE',
    run: (ctx) => moeLayerCheck(ctx, 'masked', 'w8a32', [1, 5], { residual: true, sharedInExperts: 2 }),
  },
  { name: 'moe layer f32 weights, contiguous layout, a shared expert held as a grouped one: float64 MoE', run: (ctx) => moeLayerCheck(ctx, 'contiguous', 'f32', [9], { sharedInExperts: 1 }) },
  {
    name: 'moe expert load counters accumulate across calls, per layer, and reset (the masked layout through all three passes)',
    async run(ctx) {
      const counters = new ExpertLoadCounters(ctx, 3, E);
      const expect = [new Array(E).fill(0), new Array(E).fill(0), new Array(E).fill(0)];
      let err = 0;
      for (const [layer, tokens] of [[1, 7], [1, 33], [2, 5]]) {
        const ids = randomIds(tokens, 4, E);
        ids.forEach((e) => e >= 0 && expect[layer][e]++);
        const layout = await getDispatchLayout(ctx, uploadTensor(ctx, ids, [tokens, 4], 'i32'), { numExperts: E, layout: 'masked', counters, layer });
        const ref = dispatchLayoutRef(ids, E, 'masked', { mMax: layout.mMax });
        err += mismatches(await readTensor(layout.srcToDst), ref.srcToDst);
        const d2s = await readTensor(layout.dstToSrc);
        ref.srcToDst.forEach((r, i) => {
          if (r >= 0 && d2s[r] !== Math.floor(i / 4)) err++;
        });
      }
      const json = parseExpertLoad(JSON.parse(JSON.stringify(await counters.toJson())), E);
      err += mismatches(json.layers.flat(), expect.flat());
      counters.reset();
      err += mismatches((await counters.read()).flat(), new Array(3 * E).fill(0));
      return { err, tol: 0, note: `layer 1: [${expect[1].join(', ')}]` };
    },
  },
  {
    name: 'moe bad input is refused before any dispatch, with the expected and received value',
    async run(ctx) {
      let err = 0;
      const logits = uploadTensor(ctx, gauss(2 * E), [2, E], 'f32');
      err += await throwsLike(() => planRouteTopk(ctx, logits, { ...V3, nGroup: 5 }), /nGroup must be a divisor of numExperts \(16\), got 5/);
      err += await throwsLike(() => planRouteTopk(ctx, logits, { ...V3, topk: 9 }), /topk must be an integer in 1\.\.8 .*got 9/);
      err += await throwsLike(() => planRouteTopk(ctx, logits, { ...V3, topkGroup: 5 }), /topkGroup must be an integer in 1\.\.nGroup \(4\), got 5/);
      err += await throwsLike(() => planRouteTopk(ctx, logits, { ...V3, numExperts: 32 }), /logits.shape must be \[\*, 32\], got \[2, 16\]/);
      err += await throwsLike(
        () => planRouteTopk(ctx, logits, { ...V3, eScoreCorrectionBias: uploadTensor(ctx, gauss(8), [8], 'f32') }),
        /eScoreCorrectionBias.shape must be \[16\], got \[8\]/,
      );
      const ids = uploadTensor(ctx, randomIds(2, 4, E), [2, 4], 'i32');
      err += await throwsLike(() => getDispatchLayout(ctx, ids, { numExperts: E, layout: 'masked', mMax: 1 }), /mMax must be an integer >= tokens \(2\).*got 1/);
      err += await throwsLike(() => getDispatchLayout(ctx, ids, { numExperts: E, layout: 'ragged' as 'masked' }), /layout must be 'contiguous' or 'masked', got 'ragged'/);
      err += await throwsLike(() => getDispatchLayout(ctx, ids, { numExperts: 3, layout: 'masked' }), /topk\) must be at most numExperts \(3\), got 4/);
      const counters = new ExpertLoadCounters(ctx, 2, 8);
      err += await throwsLike(() => getDispatchLayout(ctx, ids, { numExperts: E, layout: 'masked', counters }), /counters.numExperts must be numExperts \(16\), got 8/);
      const c16 = new ExpertLoadCounters(ctx, 2, E);
      err += await throwsLike(() => getDispatchLayout(ctx, ids, { numExperts: E, layout: 'masked', counters: c16, layer: 2 }), /layer must be an integer in 0\.\.1, got 2/);
      const layout = await getDispatchLayout(ctx, ids, { numExperts: E, layout: 'contiguous' });
      err += await throwsLike(() => dispatch(ctx, uploadTensor(ctx, gauss(3 * 8), [3, 8], 'f32'), layout), /x.shape must be \[2, \*\], got \[3, 8\]/);
      err += await throwsLike(() => dispatch(ctx, logits, {} as DispatchLayout), /layout must be the result of getDispatchLayout/);
      const y = createTensor(ctx, [layout.rows + 1, 8], 'f32');
      const w = createTensor(ctx, [2, 4], 'f32');
      err += await throwsLike(() => combine(ctx, y, layout, w), new RegExp(`y.shape must be \\[${layout.rows}, \\*\\], got \\[${layout.rows + 1}, 8\\]`));
      const y2 = createTensor(ctx, [layout.rows, 8], 'f32');
      err += await throwsLike(() => combine(ctx, y2, layout, createTensor(ctx, [2, 3], 'f32')), /topkWeights.shape must be \[2, 4\], got \[2, 3\]/);
      const h = 8;
      const xl = uploadTensor(ctx, gauss(2 * h), [2, h], 'f32');
      const router = uploadTensor(ctx, gauss(E * h), [E, h], 'f32');
      const gu = createTensor(ctx, [E, 6, h], 'f32');
      const dn = createTensor(ctx, [E, h, 3], 'f32');
      const route = { ...V3 };
      err += await throwsLike(() => moeLayer(ctx, xl, { router: createTensor(ctx, [E, h + 1], 'f32'), experts: { gateUp: gu, down: dn } }, { route }), /router.shape must be \[16, 8\], got \[16, 9\]/);
      err += await throwsLike(() => moeLayer(ctx, xl, { router, experts: { gateUp: createTensor(ctx, [E, 5, h], 'f32'), down: dn } }, { route }), /experts.gateUp.shape must be an even row count/);
      err += await throwsLike(() => moeLayer(ctx, xl, { router, experts: { gateUp: gu, down: createTensor(ctx, [E, h, 4], 'f32') } }, { route }), /experts.down.shape must be \[16, 8, 3\], got \[16, 8, 4\]/);
      err += await throwsLike(
        () => moeLayer(ctx, xl, { router, experts: { gateUp: gu, down: [createTensor(ctx, [E, h, 3], 'e4m3'), createTensor(ctx, [E, 1, 1], 'f32')] } }, { route }),
        /experts.down must be in the same format as experts.gateUp \(one tensor\), got 'FP8'/,
      );
      err += await throwsLike(() => moeLayer(ctx, xl, { router, experts: { gateUp: gu, down: dn }, shared: { gateUp: createTensor(ctx, [6, h + 1], 'f32'), down: dn } }, { route }), /shared.gateUp.shape must be \[\*, 8\]/);
      // Shared experts held in experts: the experts' groups count them, and no shared MLP or load counters beside them.
      err += await throwsLike(() => moeLayer(ctx, xl, { router, experts: { gateUp: gu, down: dn }, sharedInExperts: 2 }, { route }), /experts.gateUp.shape must be \[18, \*, 8\], got \[16, 6, 8\]/);
      const gu18 = createTensor(ctx, [E + 2, 6, h], 'f32');
      const dn18 = createTensor(ctx, [E + 2, h, 3], 'f32');
      err += await throwsLike(
        () => moeLayer(ctx, xl, { router, experts: { gateUp: gu18, down: dn18 }, shared: { gateUp: createTensor(ctx, [6, h], 'f32'), down: createTensor(ctx, [h, 3], 'f32') }, sharedInExperts: 2 }, { route }),
        /moeLayer: shared must be absent when the shared experts are held in experts/,
      );
      err += await throwsLike(() => moeLayer(ctx, xl, { router, experts: { gateUp: gu18, down: dn18 }, sharedInExperts: 2 }, { route, counters: c16 }), /moeLayer: counters must be absent with sharedInExperts/);
      err += await throwsLike(() => planRouteTopk(ctx, logits, { ...V3, alwaysExperts: -1 }), /routeTopk: alwaysExperts must be a non-negative integer, got -1/);
      const res = createTensor(ctx, [2, 8], 'f32');
      err += await throwsLike(() => combine(ctx, y2, layout, w, { out: res, residual: res }), /combine: residual must be a buffer other than out's/);
      err += await throwsLike(() => parseExpertLoad({ layers: [[1, 2, 3], [1, 2]] }), /layers\[1\] length must be 3 \(one count per expert\), got 2/);
      err += await throwsLike(() => parseExpertLoad({ layers: [[1, 2]] }, 3), /layers\[0\] length must be 3/);
      return { err, tol: 0 };
    },
  },
];
