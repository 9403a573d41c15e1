// A DeepSeek MoE layer on one device: router GEMM -> routeTopk -> getDispatchLayout -> dispatch
// -> grouped GEMM gate/up -> SiLU(gate) * up -> grouped GEMM down -> combine, plus the shared
// experts (dense GEMMs, their down projection adding onto the combined output).
// Two weight formats: bf16/f16/f32 tensors (activations stay f32), or FP8 e4m3 with 128x128 scales
// (activations cast to FP8 with 1x128 scales: in dispatch for the routed experts, by the per-token
// cast elsewhere; or, with `activations: 'f32'`, kept as they are: W8A32). The router stays in f32
// either way, as DeepSeek's gate does.
import type { GpuContext } from '../../gpu/context.ts';
import { fail } from '../../gpu/errors.ts';
import { createTensor, expectTensor, Tensor } from '../../gpu/tensor.ts';
import { planSiluMulFused } from '../nn/nn.ts';
import { perTokenCastToFp8Gpu } from '../cast/cast.ts';
import {
  bf16GemmNT,
  fp8GemmNT,
  mGroupedBf16GemmNTContiguous,
  mGroupedBf16GemmNTMasked,
  mGroupedFp8GemmNTContiguous,
  mGroupedFp8GemmNTMasked,
} from '../gemm/gemm.ts';
import type { ExpertLoadCounters } from './counters.ts';
import { combine, dispatch, getDispatchLayout, type DispatchLayout } from './dispatch.ts';
import type { DispatchLayoutKind } from './reference.ts';
import { routeTopk, type RouteOptions, type RouteOutputs } from './route.ts';

/** A weight: a bf16/f16/f32 tensor, or FP8 e4m3 with its 128x128 scales. */
export type MoeWeight = Tensor | [Tensor, Tensor];

export interface MlpWeights {
  /** Gate and up projections stacked: [(groups,) 2 * inter, hidden], gate rows first (nn.Linear layout). */
  gateUp: MoeWeight;
  /** [(groups,) hidden, inter] */
  down: MoeWeight;
}

export interface MoeLayerWeights {
  /** Router [numExperts, hidden] f32. */
  router: Tensor;
  /** Routed experts: gateUp [numExperts, 2 * inter, hidden], down [numExperts, hidden, inter]. */
  experts: MlpWeights;
  /** Shared experts (n_shared_experts of them, concatenated): gateUp [2 * interShared, hidden], down [hidden, interShared]. */
  shared?: MlpWeights;
}

export interface MoeLayerOptions {
  route: RouteOptions;
  /** 'contiguous' (prefill: many tokens) or 'masked' (decode: few tokens). Default contiguous. */
  layout?: DispatchLayoutKind;
  counters?: ExpertLoadCounters;
  layer?: number;
  /** With FP8 weights: cast activations to FP8 ('fp8', default) or keep them f32 for the FP8 GEMMs ('f32', W8A32). */
  activations?: 'fp8' | 'f32';
  /** Where the layer's temporaries go for the caller to free after its own wait (a decode step); without it the layer waits and frees them. */
  temps?: Tensor[];
}

export interface MoeLayerResult extends RouteOutputs {
  /** [tokens, hidden] f32 */
  out: Tensor;
  layout: DispatchLayout;
}


const isFp8 = (w: MoeWeight): w is [Tensor, Tensor] => Array.isArray(w);
const values = (w: MoeWeight): Tensor => (isFp8(w) ? w[0] : w);

/** f32 activations [..., k] -> what a GEMM with these weights takes: themselves, or FP8 + 1x128 scales. */
async function operand(ctx: GpuContext, a: Tensor, fp8: boolean): Promise<MoeWeight> {
  if (!fp8) return a;
  const k = a.shape[a.shape.length - 1];
  const lead = a.shape.slice(0, -1);
  const { q, scales } = await perTokenCastToFp8Gpu(ctx, a.view([a.rows, k]));
  return [q.view([...lead, k]), scales.view([...lead, Math.ceil(k / 128)])];
}

/** out = (c +) a @ b.T; `c` only for the dense GEMMs. */
type Gemm = (a: MoeWeight, b: MoeWeight, out: Tensor, c?: Tensor) => Promise<unknown>;

/**
 * Gate/up, SiLU * up and down (adding `c`) through `gemm`, from activations `x` already in the
 * weights' format. Its temporaries go to `temps`, freed once the queue has run them.
 */
async function mlp(ctx: GpuContext, x: MoeWeight, w: MlpWeights, lead: number[], gemm: Gemm, cast: boolean, out: Tensor, temps: Tensor[], c?: Tensor): Promise<void> {
  const inter = values(w.down).shape[values(w.down).shape.length - 1];
  const h = createTensor(ctx, [...lead, 2 * inter], 'f32', 'gateUp');
  await gemm(x, w.gateUp, h);
  const { launch: silu, out: a } = await planSiluMulFused(ctx, h);
  silu.submit();
  const aOp = await operand(ctx, a, cast && isFp8(w.down));
  await gemm(aOp, w.down, out, c);
  temps.push(h, a, ...(isFp8(aOp) ? aOp : []));
}

function checkMlp(where: string, name: string, w: MlpWeights, hidden: number, groups: number | undefined): void {
  const fp8 = isFp8(w.gateUp);
  if (isFp8(w.down) !== fp8) fail(where, `${name}.down`, `in the same format as ${name}.gateUp (${fp8 ? 'FP8 [q, scales]' : 'one tensor'})`, isFp8(w.down) ? 'FP8' : 'one tensor');
  const lead = groups === undefined ? [] : [groups];
  const dtype = fp8 ? 'e4m3' : (['bf16', 'f16', 'f32'] as const);
  const gu = expectTensor(where, `${name}.gateUp`, values(w.gateUp), { dtype, shape: [...lead, null, hidden] });
  const inter2 = gu.shape[gu.shape.length - 2];
  if (inter2 % 2 !== 0) fail(where, `${name}.gateUp.shape`, 'an even row count (gate rows, then up rows)', gu.shape);
  expectTensor(where, `${name}.down`, values(w.down), { dtype, shape: [...lead, hidden, inter2 / 2] });
}

/** Runs one MoE layer on x [tokens, hidden] (f32 or bf16). */
export async function moeLayer(ctx: GpuContext, x: Tensor, weights: MoeLayerWeights, opts: MoeLayerOptions): Promise<MoeLayerResult> {
  const where = 'moeLayer';
  expectTensor(where, 'x', x, { dtype: ['f32', 'bf16'] });
  if (x.shape.length !== 2) fail(where, 'x.shape', 'rank 2 [tokens, hidden]', x.shape);
  const [tokens, hidden] = x.shape;
  const E = opts.route.numExperts;
  expectTensor(where, 'router', weights.router, { dtype: 'f32', shape: [E, hidden] });
  checkMlp(where, 'experts', weights.experts, hidden, E);
  if (weights.shared) checkMlp(where, 'shared', weights.shared, hidden, undefined);
  if (opts.activations !== undefined && opts.activations !== 'fp8' && opts.activations !== 'f32') fail(where, 'activations', "'fp8' or 'f32'", opts.activations);
  const cast = opts.activations !== 'f32';
  const fp8 = cast && isFp8(weights.experts.gateUp);
  const kind = opts.layout ?? 'contiguous';

  const logits = createTensor(ctx, [tokens, E], 'f32', 'routerLogits');
  await bf16GemmNT(ctx, x, weights.router, logits);
  const routed = await routeTopk(ctx, logits, opts.route);
  const layout = await getDispatchLayout(ctx, routed.topkIdx, { numExperts: E, layout: kind, counters: opts.counters, layer: opts.layer });
  const dispatched = await dispatch(ctx, x, layout, { fp8 });
  const xs: MoeWeight = fp8 ? [dispatched.x, dispatched.scales!] : dispatched.x;

  // The grouped GEMMs take the layout's row maps as they are on the GPU (no read-back). FP8 weights
  // take FP8 or unquantised activations alike.
  const expectedM = Math.ceil((tokens * opts.route.topk) / E);
  const grouped = { checkIndices: false };
  const groupedGemm: Gemm = (a, b, out) => {
    if (kind === 'contiguous') {
      return isFp8(b)
        ? mGroupedFp8GemmNTContiguous(ctx, a, b, out, layout.mIndices!, grouped)
        : mGroupedBf16GemmNTContiguous(ctx, values(a), values(b), out, layout.mIndices!, grouped);
    }
    return isFp8(b)
      ? mGroupedFp8GemmNTMasked(ctx, a, b, out, layout.numTokensPerExpert, expectedM, grouped)
      : mGroupedBf16GemmNTMasked(ctx, values(a), values(b), out, layout.numTokensPerExpert, expectedM, grouped);
  };
  const temps: Tensor[] = [logits, dispatched.x, ...(dispatched.scales ? [dispatched.scales] : [])];
  const lead = kind === 'contiguous' ? [layout.rows] : [E, layout.mMax];
  const y = createTensor(ctx, [...lead, hidden], 'f32', 'expertOut');
  temps.push(y);
  await mlp(ctx, xs, weights.experts, lead, groupedGemm, cast, y, temps);
  const { out: combined } = await combine(ctx, y, layout, routed.topkWeights);
  let out = combined;
  if (weights.shared) {
    // The shared experts' down projection adds onto the routed sum: D = C + A @ B.T.
    out = createTensor(ctx, [tokens, hidden], 'f32', 'moeOut');
    temps.push(combined);
    const dense: Gemm = (a, b, o, c) => (isFp8(b) ? fp8GemmNT(ctx, a, b, o, { c }) : bf16GemmNT(ctx, values(a), values(b), o, { c }));
    const xs = await operand(ctx, x, cast && isFp8(weights.shared.gateUp));
    if (isFp8(xs)) temps.push(...xs);
    await mlp(ctx, xs, weights.shared, [tokens], dense, cast, out, temps, combined);
  }
  if (opts.temps) opts.temps.push(...temps);
  else {
    await ctx.sync();
    for (const t of temps) t.destroy();
  }
  return { out, layout, ...routed };
}
