// A DeepSeek MoE layer on one device: router GEMM -> routeTopk -> getDispatchLayout -> dispatch
// -> grouped GEMM gate/up -> SiLU(gate) * up -> grouped GEMM down -> combine, plus the shared
// experts (dense GEMMs, their down projection adding onto the combined output). The masked layout
// without an FP8 cast has no dispatch pass: its gate/up GEMM reads the token rows in place.
// Two weight formats: bf16/f16/f32 tensors (activations stay f32), or FP8 e4m3 with 128x128 scales
// (activations cast to FP8 with 1x128 scales: in dispatch for the routed experts, by the per-token
// cast elsewhere; or, with `activations: 'f32'`, kept as they are: W8A32). The router stays in f32
// either way, as DeepSeek's gate does.
import type { GpuContext } from '../../gpu/context.ts';
import { fail } from '../../gpu/errors.ts';
import { createTensor, expectTensor, Tensor } from '../../gpu/tensor.ts';
import { encodeLaunches, type Launch } from '../../jit/launch.ts';
import { planSiluMulFused } from '../nn/nn.ts';
import { planCast } from '../cast/cast.ts';
import { contiguousProblem, denseProblem, maskedProblem, planGemm } from '../gemm/gemm.ts';
import type { ExpertLoadCounters } from './counters.ts';
import { planCombine, planDispatch, planDispatchLayout, type DispatchLayout } from './dispatch.ts';
import type { DispatchLayoutKind } from './reference.ts';
import { planRouteTopk, type RouteOptions, type RouteOutputs } from './route.ts';

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
  /** Routed experts: gateUp [numExperts (+ sharedInExperts), 2 * inter, hidden], down [numExperts (+ sharedInExperts), hidden, inter]. */
  experts: MlpWeights;
  /** Shared experts (n_shared_experts of them, concatenated): gateUp [2 * interShared, hidden], down [hidden, interShared]. */
  shared?: MlpWeights;
  /**
   * Or the shared experts as the experts' last groups, one per shared expert (its gate and up rows,
   * its down columns): every token takes them with weight 1, so the routed experts' grouped GEMMs,
   * SiLU and combine serve them too (three launches fewer than `shared`). Default 0.
   */
  sharedInExperts?: number;
}

export interface MoeLayerOptions {
  route: RouteOptions;
  /** 'contiguous' (prefill: many tokens) or 'masked' (decode: few tokens). Default contiguous. */
  layout?: DispatchLayoutKind;
  counters?: ExpertLoadCounters;
  layer?: number;
  /** With FP8 weights: cast activations to FP8 ('fp8', default) or keep them f32 for the FP8 GEMMs ('f32', W8A32). */
  activations?: 'fp8' | 'f32';
  /** Where the layer's output goes ([tokens, hidden] f32); made by the plan when absent. */
  out?: Tensor;
  /** [tokens, hidden] f32 added to the output (a model's residual stream; not out's buffer): out = residual + MoE(x), with no pass of its own. */
  residual?: Tensor;
  /**
   * A plan of the same shapes whose temporaries this one uses too (layers of a model run one after
   * another, never at once): one set of temporaries for all of them. That plan must outlive this one.
   */
  shareWith?: MoeLayerPlan;
}

export interface MoeLayerResult extends RouteOutputs {
  /** [tokens, hidden] f32 */
  out: Tensor;
  layout: DispatchLayout;
}

/** A planned MoE layer: its launches (in order), over temporaries it owns, replayable on the same x. */
export interface MoeLayerPlan extends MoeLayerResult {
  launches: Launch[];
  /** What each launch does ('router', 'experts.gateUp', ...), for profiles. */
  labels: string[];
  /** Its tensors in planning order (what `shareWith` reuses). */
  tensors: readonly Tensor[];
  /** Frees the temporaries, the layout and the uniforms (not x, the weights, or a given `out`). */
  destroy(): void;
}

const isFp8 = (w: MoeWeight): w is [Tensor, Tensor] => Array.isArray(w);
const values = (w: MoeWeight): Tensor => (isFp8(w) ? w[0] : w);

/** out = (c +) a @ b.T, planned; `c` only for the dense GEMMs. */
type Gemm = (a: MoeWeight, b: MoeWeight, out: Tensor, c?: Tensor) => Promise<Launch>;

/** What planMoeLayer builds up: launches in order, its tensors, and which of them it must free. */
class Planned {
  readonly launches: Launch[] = [];
  /** Every tensor the plan made or took from `pool`, in order (a later plan may share them). */
  readonly tensors: Tensor[] = [];
  /** Made here: temporaries, then what the layer returns (moeLayer keeps those, a plan frees both). */
  readonly temps: Tensor[] = [];
  readonly outputs: Tensor[] = [];
  constructor(private readonly ctx: GpuContext, private readonly pool: readonly Tensor[] = []) {}
  free(outputs: boolean, keep?: Launch): void {
    for (const t of outputs ? [...this.temps, ...this.outputs] : this.temps) t.destroy();
    for (const l of this.launches) if (l !== keep) l.destroy();
  }
  /** What each launch does, for profiles ('experts.gateUp', 'route', ...). */
  readonly labels: string[] = [];
  add(l: Launch, label: string): void {
    this.launches.push(l);
    this.labels.push(label);
  }
  /** The next tensor: the pool's at this position when it has this shape and dtype, else a new one. */
  tensor(shape: number[], dtype: Tensor['dtype'], label: string, output = false): Tensor {
    const shared = this.pool[this.tensors.length];
    const same = shared && shared.dtype === dtype && shared.shape.length === shape.length && shared.shape.every((v, i) => v === shape[i]);
    const t = same ? shared : createTensor(this.ctx, shape, dtype, label);
    if (!same) (output ? this.outputs : this.temps).push(t);
    this.tensors.push(t);
    return t;
  }
}

/** f32 activations [..., k] -> what a GEMM with these weights takes: themselves, or FP8 + 1x128 scales (a planned cast). */
async function operand(ctx: GpuContext, p: Planned, a: Tensor, fp8: boolean, label: string): Promise<MoeWeight> {
  if (!fp8) return a;
  const k = a.shape[a.shape.length - 1];
  const lead = a.shape.slice(0, -1);
  const out = { q: p.tensor([a.rows, k], 'e4m3', 'q'), scales: p.tensor([a.rows, Math.ceil(k / 128)], 'f32', 'scales') };
  const { launch, q, scales } = await planCast(ctx, 'perToken', a.view([a.rows, k]), { out });
  p.add(launch, `${label}.cast`);
  return [q.view([...lead, k]), scales.view([...lead, Math.ceil(k / 128)])];
}

/**
 * Gate/up (through `gemmUp`, default `gemm`), SiLU * up and down (adding `c`) through `gemm`, from
 * activations `x` already in the weights' format.
 */
async function mlp(ctx: GpuContext, p: Planned, name: string, x: MoeWeight, w: MlpWeights, lead: number[], gemm: Gemm, cast: boolean, out: Tensor, c?: Tensor, gemmUp = gemm): Promise<void> {
  const inter = values(w.down).shape[values(w.down).shape.length - 1];
  const h = p.tensor([...lead, 2 * inter], 'f32', 'gateUp');
  p.add(await gemmUp(x, w.gateUp, h), `${name}.gateUp`);
  const silu = await planSiluMulFused(ctx, h, { out: p.tensor([...lead, inter], 'f32', 'silu_mul') });
  p.add(silu.launch, `${name}.siluMul`);
  const aOp = await operand(ctx, p, silu.out, cast && isFp8(w.down), `${name}.down`);
  p.add(await gemm(aOp, w.down, out, c), `${name}.down`);
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

/**
 * Plans one MoE layer on x [tokens, hidden] (f32 or bf16): every kernel validated, compiled and bound
 * over temporaries made once. Encoding `launches` in order (after x is written) computes `out`; a
 * decode step replays them every step. Nothing runs here.
 */
export async function planMoeLayer(ctx: GpuContext, x: Tensor, weights: MoeLayerWeights, opts: MoeLayerOptions): Promise<MoeLayerPlan> {
  const p = new Planned(ctx, opts.shareWith?.tensors);
  const r = await planInto(ctx, p, x, weights, opts);
  return {
    ...r,
    launches: p.launches,
    labels: p.labels,
    tensors: p.tensors,
    destroy() {
      p.free(true);
      r.layout.destroy();
    },
  };
}

async function planInto(ctx: GpuContext, p: Planned, x: Tensor, weights: MoeLayerWeights, opts: MoeLayerOptions): Promise<MoeLayerResult> {
  const where = 'moeLayer';
  expectTensor(where, 'x', x, { dtype: ['f32', 'bf16'] });
  if (x.shape.length !== 2) fail(where, 'x.shape', 'rank 2 [tokens, hidden]', x.shape);
  const [tokens, hidden] = x.shape;
  const E = opts.route.numExperts;
  const always = weights.sharedInExperts ?? 0;
  if (!Number.isInteger(always) || always < 0) fail(where, 'sharedInExperts', 'a non-negative integer', always);
  if (always > 0 && weights.shared) fail(where, 'shared', 'absent when the shared experts are held in experts (sharedInExperts)', 'shared weights');
  // The load counters count routed experts (EPLB's), which the layout would mix with the shared ones.
  if (always > 0 && opts.counters) fail(where, 'counters', 'absent with sharedInExperts (the counters count routed experts only)', 'ExpertLoadCounters');
  expectTensor(where, 'router', weights.router, { dtype: 'f32', shape: [E, hidden] });
  checkMlp(where, 'experts', weights.experts, hidden, E + always);
  if (weights.shared) checkMlp(where, 'shared', weights.shared, hidden, undefined);
  if (opts.out !== undefined) expectTensor(where, 'out', opts.out, { dtype: 'f32', shape: [tokens, hidden] });
  if (opts.residual !== undefined) expectTensor(where, 'residual', opts.residual, { dtype: 'f32', shape: [tokens, hidden] });
  if (opts.activations !== undefined && opts.activations !== 'fp8' && opts.activations !== 'f32') fail(where, 'activations', "'fp8' or 'f32'", opts.activations);
  const cast = opts.activations !== 'f32';
  const fp8 = cast && isFp8(weights.experts.gateUp);
  const kind = opts.layout ?? 'contiguous';
  let layout: DispatchLayout | undefined;
  try {
    const logits = p.tensor([tokens, E], 'f32', 'routerLogits');
    p.add(await planGemm(ctx, where, denseProblem(where, false, { a: x, b: weights.router }, logits)), 'router');
    const k = opts.route.topk + always;
    const routed = await planRouteTopk(ctx, logits, { ...opts.route, alwaysExperts: always }, { topkIdx: p.tensor([tokens, k], 'i32', 'topkIdx', true), topkWeights: p.tensor([tokens, k], 'f32', 'topkWeights', true) });
    p.add(routed.launch, 'route');
    layout = await planDispatchLayout(ctx, routed.topkIdx, { numExperts: E + always, layout: kind, counters: opts.counters, layer: opts.layer });
    p.add(layout.launch, 'layout');
    // Masked without a cast: the gate/up GEMM reads x's rows through the layout's dstToSrc (no copy).
    const gather = kind === 'masked' && !fp8;
    let xs: MoeWeight = x;
    if (!gather) {
      const dispatched = await planDispatch(ctx, x, layout, {
        fp8,
        out: { x: p.tensor([...layout.lead, hidden], fp8 ? 'e4m3' : x.dtype, 'dispatched'), scales: fp8 ? p.tensor([...layout.lead, Math.ceil(hidden / 128)], 'f32', 'dispatchedScales') : undefined },
      });
      p.add(dispatched.launch, 'dispatch');
      xs = fp8 ? [dispatched.x, dispatched.scales!] : dispatched.x;
    }

    // The grouped GEMMs take the layout's row maps as they are on the GPU (no read-back). FP8 weights
    // take FP8 or unquantised activations alike.
    const expectedM = Math.ceil((tokens * k) / (E + always));
    // Fewer picks than experts (decode): the grouped GEMMs launch over the picks, not every expert.
    const routedIds = kind === 'masked' && tokens * k < E + always ? routed.topkIdx : undefined;
    const l = layout;
    const grouped = (aRows?: Tensor): Gemm => async (a, b, out) => {
      const f = isFp8(b);
      const raw = { a: values(a), sa: isFp8(a) ? a[1] : undefined, b: values(b), sb: f ? b[1] : undefined };
      const problem =
        kind === 'contiguous'
          ? await contiguousProblem(ctx, where, f, raw, out, l.mIndices!, false)
          : await maskedProblem(ctx, where, f, raw, out, l.numTokensPerExpert, expectedM, false, routedIds, aRows);
      return planGemm(ctx, where, problem);
    };
    const y = p.tensor([...layout.lead, hidden], 'f32', 'expertOut');
    await mlp(ctx, p, 'experts', xs, weights.experts, layout.lead, grouped(), cast, y, undefined, gather ? grouped(layout.dstToSrc) : undefined);
    const out = opts.out ?? p.tensor([tokens, hidden], 'f32', 'moeOut', true);
    const combined = await planCombine(ctx, y, layout, routed.topkWeights, { out: weights.shared ? p.tensor([tokens, hidden], 'f32', 'combined') : out, residual: opts.residual });
    p.add(combined.launch, 'combine');
    if (weights.shared) {
      // The shared experts' down projection adds onto the routed sum (and the residual): D = C + A @ B.T.
      const dense: Gemm = (a, b, o, c) => {
        const f = isFp8(b);
        return planGemm(ctx, where, denseProblem(where, f, { a: values(a), sa: isFp8(a) ? a[1] : undefined, b: values(b), sb: f ? b[1] : undefined }, o, c));
      };
      const xsh = await operand(ctx, p, x, cast && isFp8(weights.shared.gateUp), 'shared.gateUp');
      await mlp(ctx, p, 'shared', xsh, weights.shared, [tokens], dense, cast, out, combined.out);
    }
    return { out, layout, topkIdx: routed.topkIdx, topkWeights: routed.topkWeights };
  } catch (e) {
    p.free(true);
    layout?.destroy();
    throw e;
  }
}

/** Runs one MoE layer on x [tokens, hidden] (f32 or bf16): plans, submits, waits, and frees its temporaries (out, the routing and the layout are the caller's). */
export async function moeLayer(ctx: GpuContext, x: Tensor, weights: MoeLayerWeights, opts: MoeLayerOptions): Promise<MoeLayerResult> {
  const p = new Planned(ctx);
  const r = await planInto(ctx, p, x, weights, opts);
  encodeLaunches(ctx, p.launches, 'moeLayer');
  await ctx.sync();
  p.free(false, r.layout.launch);
  return r;
}
