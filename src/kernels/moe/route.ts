// routeTopk on the GPU: DeepSeek's gate (V3 noaux_tc, V2 greedy and group-limited greedy) over
// router logits. Semantics, tie-breaking and the float64 reference: ./reference.ts.
import * as d from 'typegpu/data';
import type { GpuContext } from '../../gpu/context.ts';
import { fail } from '../../gpu/errors.ts';
import { createTensor, expectTensor, type Tensor } from '../../gpu/tensor.ts';
import { planKernel, type Launch } from '../../jit/launch.ts';
import wgArgmax from '../../../shaders/common/wg_argmax.wgsl';
import wgReduce from '../../../shaders/common/wg_reduce.wgsl';
import routeTemplate from '../../../shaders/moe/route_topk.wgsl';
import { checkRouteConfig, type RouteConfig } from './reference.ts';

export interface RouteOptions extends RouteConfig {
  /** e_score_correction_bias [numExperts] f32: added to the scores for selection only. */
  eScoreCorrectionBias?: Tensor;
  /**
   * Experts every token also takes, after its topk: ids numExperts .. numExperts + alwaysExperts - 1
   * with weight 1 (shared experts held as extra grouped experts, so one grouped GEMM serves both). Default 0.
   */
  alwaysExperts?: number;
}

export interface RouteOutputs {
  /** [tokens, topk + alwaysExperts] i32: the picked experts in order of decreasing choice score, then the always-taken ones. */
  topkIdx: Tensor;
  /** [tokens, topk + alwaysExperts] f32 */
  topkWeights: Tensor;
}

const RouteParams = d.struct({ tokens: d.u32, grid_x: d.u32, scale: d.f32 });
const METHOD_CODE = { greedy: 0, group_limited_greedy: 1, noaux_tc: 2 } as const;
// Invocations per token: a power of two, each owning E / WG experts.
const WG = 64;

/** The routing options of a Hugging Face DeepSeek-V2/V3 config.json (n_routed_experts, topk_method, ...). */
export function routeConfigFromHf(cfg: Record<string, unknown>): RouteConfig {
  const method = (cfg.topk_method as string | undefined) ?? 'noaux_tc';
  return {
    numExperts: cfg.n_routed_experts as number,
    topk: cfg.num_experts_per_tok as number,
    scoringFunc: (cfg.scoring_func as RouteConfig['scoringFunc'] | undefined) ?? (method === 'noaux_tc' ? 'sigmoid' : 'softmax'),
    topkMethod: method as RouteConfig['topkMethod'],
    nGroup: (cfg.n_group as number | undefined) ?? 1,
    topkGroup: (cfg.topk_group as number | undefined) ?? 1,
    normTopkProb: (cfg.norm_topk_prob as boolean | undefined) ?? false,
    routedScalingFactor: (cfg.routed_scaling_factor as number | undefined) ?? 1,
  };
}

/** Plans routing for logits [tokens, numExperts] f32: validated, compiled (cached) and bound. */
export async function planRouteTopk(
  ctx: GpuContext,
  logits: Tensor,
  opts: RouteOptions,
  out?: RouteOutputs,
): Promise<{ launch: Launch } & RouteOutputs> {
  const where = 'routeTopk';
  const c = checkRouteConfig(where, opts);
  const E = c.numExperts;
  // Each invocation keeps a 32-bit mask of its taken experts.
  if (E > 32 * WG) fail(where, 'numExperts', `at most ${32 * WG} on the GPU`, E);
  expectTensor(where, 'logits', logits, { dtype: 'f32', shape: [null, E] });
  const tokens = logits.shape[0];
  if (tokens < 1) fail(where, 'logits.shape[0] (tokens)', 'at least 1', tokens);
  const bias = opts.eScoreCorrectionBias;
  if (bias !== undefined) expectTensor(where, 'eScoreCorrectionBias', bias, { dtype: 'f32', shape: [E] });
  const always = opts.alwaysExperts ?? 0;
  if (!Number.isInteger(always) || always < 0) fail(where, 'alwaysExperts', 'a non-negative integer', always);
  const slots = c.topk + always;
  const outs = out ?? {
    topkIdx: createTensor(ctx, [tokens, slots], 'i32', 'topkIdx'),
    topkWeights: createTensor(ctx, [tokens, slots], 'f32', 'topkWeights'),
  };
  expectTensor(where, 'out.topkIdx', outs.topkIdx, { dtype: 'i32', shape: [tokens, slots] });
  expectTensor(where, 'out.topkWeights', outs.topkWeights, { dtype: 'f32', shape: [tokens, slots] });

  const consts = {
    WG,
    E,
    K: c.topk,
    S: always,
    N_GROUP: c.nGroup,
    TOPK_GROUP: c.topkGroup,
    SIGMOID: c.scoringFunc === 'sigmoid',
    METHOD: METHOD_CODE[c.topkMethod],
    HAS_BIAS: bias !== undefined,
    NORM: c.normTopkProb,
  };
  // Without a bias the shader never reads binding 2; the logits stand in for it.
  const launch = await planKernel(ctx, {
    module: {
      kernel: 'moe.routeTopk',
      config: consts,
      template: { file: 'moe/route_topk.wgsl', code: routeTemplate },
      helpers: [
        { file: 'common/wg_reduce.wgsl', code: wgReduce },
        { file: 'common/wg_argmax.wgsl', code: wgArgmax },
      ],
      consts,
      structs: { Params: RouteParams },
    },
    params: RouteParams,
    values: { tokens, scale: c.routedScalingFactor },
    bindings: [
      logits.binding(where, 'logits'),
      (bias ?? logits).binding(where, 'eScoreCorrectionBias'),
      outs.topkIdx.binding(where, 'topkIdx'),
      outs.topkWeights.binding(where, 'topkWeights'),
    ],
    workgroups: tokens,
    bytes: logits.byteLength + (bias?.byteLength ?? 0) + outs.topkIdx.byteLength + outs.topkWeights.byteLength,
    flops: 0,
  });
  return { launch, ...outs };
}

/** DeepSeek routing on the GPU: logits [tokens, numExperts] f32 -> topk ids and weights. */
export async function routeTopk(ctx: GpuContext, logits: Tensor, opts: RouteOptions, out?: RouteOutputs): Promise<RouteOutputs> {
  const { launch, ...outs } = await planRouteTopk(ctx, logits, opts, out);
  launch.submit();
  return outs;
}
