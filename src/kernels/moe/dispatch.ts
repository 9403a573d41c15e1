// DeepEP's dispatch and combine on one device, into DeepGEMM's grouped layouts:
//   getDispatchLayout: tokens per expert and each (token, slot)'s dispatched row, for the
//     contiguous layout (experts' rows back to back, each group padded to `alignment` rows,
//     mIndices = expert per row, -1 on padding) or the masked layout ([numExperts, mMax, hidden],
//     expert counts as maskedM). Rows of an expert are its tokens in token order. Ids of -1 route
//     nowhere (DeepEP's convention); ids out of range are treated the same.
//   dispatch: copies (or casts to FP8 e4m3 with 1x128 scales, bit-identical to perTokenCastToFp8)
//     the token rows into that layout, in one pass.
//   combine: out[t] = sum_j w[t, j] * y[row(t, j)] in slot order: deterministic, no atomics.
// Every pass is a plain gather/scan: the same bits every run.
import * as d from 'typegpu/data';
import type { GpuContext } from '../../gpu/context.ts';
import { fail } from '../../gpu/errors.ts';
import { createTensor, expectTensor, unusedTensor, type Tensor } from '../../gpu/tensor.ts';
import type { KernelModule } from '../../jit/compose.ts';
import { bindGroup, grid, Launch, nextPow2, paramsBuffer, planKernel, type Dispatch } from '../../jit/launch.ts';
import loadX from '../../../shaders/common/load_x.wgsl';
import combineTemplate from '../../../shaders/moe/combine.wgsl';
import dispatchTemplate from '../../../shaders/moe/dispatch.wgsl';
import countTemplate from '../../../shaders/moe/layout_count.wgsl';
import mapTemplate from '../../../shaders/moe/layout_map.wgsl';
import offsetsTemplate from '../../../shaders/moe/layout_offsets.wgsl';
import { castHelpers } from '../cast/cast.ts';
import { getMkAlignmentForContiguousLayout } from '../gemm/gemm.ts';
import type { DispatchLayoutKind } from './reference.ts';
import { ExpertLoadCounters } from './counters.ts';

export interface DispatchLayoutOptions {
  numExperts: number;
  layout: DispatchLayoutKind;
  /** Contiguous layout: rows per group multiple (default getMkAlignmentForContiguousLayout(), what the grouped GEMM takes). */
  alignment?: number;
  /** Masked layout: rows per expert (default tokens: always enough, as an expert takes a token once). */
  mMax?: number;
  /** Add the tokens per expert to these counters' row `layer`. */
  counters?: ExpertLoadCounters;
  layer?: number;
}

export interface DispatchLayout {
  kind: DispatchLayoutKind;
  tokens: number;
  topk: number;
  numExperts: number;
  /** Rows of the dispatched tensor: contiguous, an upper bound of the padded total; masked, numExperts * mMax. */
  rows: number;
  /** Leading shape of the dispatched tensors (and the expert outputs combine reads): [rows] or [numExperts, mMax]. */
  lead: number[];
  alignment: number;
  mMax: number;
  /** [numExperts] i32: tokens routed to each expert (the masked GEMM's maskedM). */
  numTokensPerExpert: Tensor;
  /** [tokens, topk] i32: the dispatched row of each (token, slot), -1 where routed nowhere. */
  srcToDst: Tensor;
  /** Contiguous layout: [rows] i32, the expert of each row, -1 on padding (DeepGEMM's m_indices). */
  mIndices?: Tensor;
  /**
   * [rows] i32, the token of each row: -1 on the contiguous layout's padding; the masked layout's
   * rows past an expert's count are not written (a masked grouped GEMM reads token rows through it: `aRows`).
   */
  dstToSrc: Tensor;
  /** [numExperts + 1] i32: the first row of each expert; the last entry ends the rows in use. */
  starts: Tensor;
  /** Planned passes: `launch.submit()` recomputes the layout from the same topkIdx buffer (for replay; it counts into the load counters again). */
  launch: Launch;
  /** Frees the layout's tensors and uniforms (once the GPU is done with them). */
  destroy(): void;
}

const LayoutParams = d.struct({
  entries: d.u32,
  experts: d.u32,
  rows: d.u32,
  m_max: d.u32,
  load_offset: d.u32,
  grid_x: d.u32,
});
const SCAN_WG = 256;
const MAP_WG = 128;

/** Contiguous rows to allocate: every expert group padded, at most min(E, entries) of them non-empty. */
export function contiguousRowsBound(entries: number, numExperts: number, alignment: number): number {
  return Math.ceil((entries + Math.min(numExperts, entries) * (alignment - 1)) / alignment) * alignment;
}

function module(kernel: string, file: string, code: string, consts: Record<string, number | boolean>, structs: object): KernelModule {
  return { kernel, config: consts, template: { file, code }, consts, structs: structs as KernelModule['structs'] };
}

/** Plans the layout passes for topkIdx [tokens, topk] i32 (not run: `layout.launch` runs them). */
export async function planDispatchLayout(ctx: GpuContext, topkIdx: Tensor, opts: DispatchLayoutOptions): Promise<DispatchLayout> {
  const where = 'getDispatchLayout';
  expectTensor(where, 'topkIdx', topkIdx, { dtype: 'i32' });
  if (topkIdx.shape.length !== 2 || topkIdx.shape[0] < 1 || topkIdx.shape[1] < 1) fail(where, 'topkIdx.shape', '[tokens >= 1, topk >= 1]', topkIdx.shape);
  const [tokens, topk] = topkIdx.shape;
  const E = opts.numExperts;
  if (!Number.isInteger(E) || E < 1) fail(where, 'numExperts', 'a positive integer', E);
  if (topk > E) fail(where, 'topkIdx.shape[1] (topk)', `at most numExperts (${E})`, topk);
  if (opts.layout !== 'contiguous' && opts.layout !== 'masked') fail(where, 'layout', "'contiguous' or 'masked'", opts.layout);
  const contiguous = opts.layout === 'contiguous';
  const alignment = opts.alignment ?? getMkAlignmentForContiguousLayout();
  if (!Number.isInteger(alignment) || alignment < 1) fail(where, 'alignment', 'a positive integer', alignment);
  const mMax = opts.mMax ?? tokens;
  if (!contiguous && (!Number.isInteger(mMax) || mMax < tokens)) {
    fail(where, 'mMax', `an integer >= tokens (${tokens}): an expert may receive every token`, mMax);
  }
  const counters = opts.counters;
  const layer = opts.layer ?? 0;
  if (counters) {
    if (!(counters instanceof ExpertLoadCounters)) fail(where, 'counters', 'an ExpertLoadCounters', typeof counters);
    if (counters.numExperts !== E) fail(where, 'counters.numExperts', `numExperts (${E})`, counters.numExperts);
    if (!Number.isInteger(layer) || layer < 0 || layer >= counters.numLayers) fail(where, 'layer', `an integer in 0..${counters.numLayers - 1}`, layer);
  } else if (opts.layer !== undefined) fail(where, 'layer', 'given only with counters', layer);

  const entries = tokens * topk;
  const rows = contiguous ? contiguousRowsBound(entries, E, alignment) : E * mMax;
  const pos = createTensor(ctx, [tokens, topk], 'i32', 'pos');
  const numTokensPerExpert = createTensor(ctx, [E], 'i32', 'numTokensPerExpert');
  const starts = createTensor(ctx, [E + 1], 'i32', 'starts');
  const srcToDst = createTensor(ctx, [tokens, topk], 'i32', 'srcToDst');
  const mIndices = contiguous ? createTensor(ctx, [rows], 'i32', 'mIndices') : undefined;
  const dstToSrc = createTensor(ctx, [rows], 'i32', 'dstToSrc');

  const countGrid = grid(ctx, E);
  const mapGrid = grid(ctx, Math.ceil(Math.max(entries, contiguous ? rows : 0) / MAP_WG));
  const [countP, offsetsP, mapP] = [countGrid[0], 1, mapGrid[0]].map((grid_x) =>
    paramsBuffer(ctx, LayoutParams, { entries, experts: E, rows, m_max: mMax, load_offset: layer * E, grid_x }),
  );
  // The masked layout's starts do not depend on the counts: written once here, and without load
  // counters the count pass writes the rows itself (one pass instead of three).
  const direct = !contiguous && !counters;
  if (!contiguous) ctx.device.queue.writeBuffer(starts.buffer, starts.byteOffset, Int32Array.from({ length: E + 1 }, (_, e) => e * mMax));
  // The scan's width: the entries rounded up to a power of two (a decode step has a few dozen), at most SCAN_WG.
  const scanWg = Math.min(SCAN_WG, Math.max(32, nextPow2(entries)));
  const [count, offsets, map] = await Promise.all([
    ctx.pipelines.get(module('moe.layoutCount', 'moe/layout_count.wgsl', countTemplate, { WG: scanWg, K: topk, DIRECT: direct }, { Params: LayoutParams })),
    ctx.pipelines.get(
      module('moe.layoutOffsets', 'moe/layout_offsets.wgsl', offsetsTemplate, { CONTIGUOUS: contiguous, ALIGN: alignment, COUNT_LOAD: !!counters }, { Params: LayoutParams }),
    ),
    ctx.pipelines.get(module('moe.layoutMap', 'moe/layout_map.wgsl', mapTemplate, { WG: MAP_WG, K: topk, CONTIGUOUS: contiguous }, { Params: LayoutParams })),
  ]);
  const b = (t: Tensor, name: string) => t.binding(where, name);
  // Bindings a layout never touches (the masked layout's row maps, load counters when not counting).
  const [unused0, unused1] = [0, 1].map((i) => b(unusedTensor(ctx, i), 'unused'));
  const countPass: Dispatch = {
    pipeline: count,
    bindGroup: bindGroup(ctx, count, [countP, b(topkIdx, 'topkIdx'), b(pos, 'pos'), b(numTokensPerExpert, 'numTokensPerExpert'), ...(direct ? [b(srcToDst, 'srcToDst'), b(dstToSrc, 'dstToSrc')] : [unused0, unused1])]),
    workgroups: countGrid,
  };
  const dispatches: Dispatch[] = direct
    ? [countPass]
    : [
        countPass,
        {
          pipeline: offsets,
          bindGroup: bindGroup(ctx, offsets, [offsetsP, b(numTokensPerExpert, 'numTokensPerExpert'), b(starts, 'starts'), counters ? b(counters.tensor, 'counters') : unused0]),
          workgroups: [1, 1, 1],
        },
        {
          pipeline: map,
          bindGroup: bindGroup(ctx, map, [
            mapP,
            b(topkIdx, 'topkIdx'),
            b(pos, 'pos'),
            b(numTokensPerExpert, 'numTokensPerExpert'),
            b(starts, 'starts'),
            b(srcToDst, 'srcToDst'),
            b(dstToSrc, 'dstToSrc'),
            mIndices ? b(mIndices, 'mIndices') : unused1,
          ]),
          workgroups: mapGrid,
        },
      ];
  const bytes = topkIdx.byteLength * (E + 2) + srcToDst.byteLength + (mIndices ? 2 * mIndices.byteLength : srcToDst.byteLength);
  const launch = new Launch(ctx, dispatches, { kernel: 'moe.getDispatchLayout', config: { layout: opts.layout, alignment, mMax }, bytes, flops: 0 }, [countP, offsetsP, mapP]);
  const lead = contiguous ? [rows] : [E, mMax];
  const destroy = () => {
    for (const t of [pos, numTokensPerExpert, starts, srcToDst, mIndices, dstToSrc]) t?.destroy();
    launch.destroy();
  };
  return { kind: opts.layout, tokens, topk, numExperts: E, rows, lead, alignment, mMax, numTokensPerExpert, srcToDst, mIndices, dstToSrc, starts, launch, destroy };
}

/** Plans and runs the layout passes for topkIdx [tokens, topk] i32. */
export async function getDispatchLayout(ctx: GpuContext, topkIdx: Tensor, opts: DispatchLayoutOptions): Promise<DispatchLayout> {
  const layout = await planDispatchLayout(ctx, topkIdx, opts);
  layout.launch.submit();
  return layout;
}

export interface Dispatched {
  /** Contiguous: [rows, hidden]; masked: [numExperts, mMax, hidden]. x's dtype, or e4m3 with fp8. */
  x: Tensor;
  /** With fp8: 1x128 scales, [rows, ceil(hidden/128)] or [numExperts, mMax, ceil(hidden/128)] f32. */
  scales?: Tensor;
  launch: Launch;
}

const DispatchParams = d.struct({
  items: d.u32,
  experts: d.u32,
  k: d.u32,
  groups: d.u32,
  pitch_x: d.u32,
  pitch_q_words: d.u32,
  grid_x: d.u32,
});
const DISPATCH_WG = 128;

function checkLayout(where: string, layout: unknown): DispatchLayout {
  const l = layout as DispatchLayout;
  if (!l || typeof l !== 'object' || !(l.launch instanceof Launch) || (l.kind !== 'contiguous' && l.kind !== 'masked')) {
    fail(where, 'layout', 'the result of getDispatchLayout', typeof layout);
  }
  return l;
}

/** Plans x [tokens, hidden] f32/bf16 -> the layout's rows, copied, or cast to FP8 with `{ fp8: true }` (not run). */
export async function planDispatch(ctx: GpuContext, x: Tensor, layoutIn: DispatchLayout, opts: { fp8?: boolean; out?: { x: Tensor; scales?: Tensor } } = {}): Promise<Dispatched> {
  const where = 'dispatch';
  const layout = checkLayout(where, layoutIn);
  expectTensor(where, 'x', x, { dtype: ['f32', 'bf16'], shape: [layout.tokens, null] });
  const hidden = x.shape[1];
  if (hidden < 1) fail(where, 'x.shape[1] (hidden)', 'at least 1', hidden);
  const fp8 = opts.fp8 ?? false;
  const contiguous = layout.kind === 'contiguous';
  const groups = Math.ceil(hidden / 128);
  const out = opts.out?.x ?? createTensor(ctx, [...layout.lead, hidden], fp8 ? 'e4m3' : x.dtype, 'dispatched');
  expectTensor(where, 'out.x', out, { dtype: fp8 ? 'e4m3' : x.dtype, shape: [...layout.lead, hidden] });
  const scales = fp8 ? (opts.out?.scales ?? createTensor(ctx, [...layout.lead, groups], 'f32', 'dispatchedScales')) : undefined;
  if (scales) expectTensor(where, 'out.scales', scales, { dtype: 'f32', shape: [...layout.lead, groups] });
  const subgroups = fp8 && ctx.has('subgroups');
  const sgMin = subgroups ? Math.max(1, ctx.adapterInfo.subgroupMinSize) : 1;
  const consts = {
    WG: DISPATCH_WG,
    SEG: 32,
    SG_MIN: sgMin,
    IN_BF16: x.dtype === 'bf16',
    K: layout.topk,
    CONTIGUOUS: contiguous,
    FP8: fp8,
    EPW: x.dtype === 'bf16' ? 2 : 1,
  };
  const items = contiguous ? layout.rows : layout.tokens * layout.topk;
  const launch = await planKernel(ctx, {
    module: {
      kernel: 'moe.dispatch',
      config: consts,
      template: { file: 'moe/dispatch.wgsl', code: dispatchTemplate },
      helpers: castHelpers(subgroups),
      consts,
      structs: { Params: DispatchParams },
      enables: subgroups ? ['subgroups'] : [],
    },
    params: DispatchParams,
    values: { items, experts: layout.numExperts, k: hidden, groups, pitch_x: x.pitch, pitch_q_words: out.pitch / 4 },
    bindings: [
      x.binding(where, 'x'),
      layout.srcToDst.binding(where, 'srcToDst'),
      layout.dstToSrc.binding(where, 'dstToSrc'),
      out.binding(where, 'out'),
      (scales ?? layout.numTokensPerExpert).binding(where, 'scales'),
      layout.starts.binding(where, 'starts'),
    ],
    workgroups: items,
    bytes: layout.tokens * layout.topk * (x.byteLength / layout.tokens + out.byteLength / layout.rows),
    flops: 0,
  });
  return { x: out, scales, launch };
}

/** x [tokens, hidden] f32/bf16 -> the layout's rows, copied, or cast to FP8 with `{ fp8: true }`; submitted. */
export async function dispatch(ctx: GpuContext, x: Tensor, layout: DispatchLayout, opts: { fp8?: boolean } = {}): Promise<Dispatched> {
  const d = await planDispatch(ctx, x, layout, opts);
  d.launch.submit();
  return d;
}

const CombineParams = d.struct({ tokens: d.u32, hidden: d.u32, pitch_y: d.u32, grid_x: d.u32 });
const COMBINE_WG = 128;

export interface CombineOptions {
  out?: Tensor;
  /** [tokens, hidden] f32 added to the weighted sum (a buffer other than out's). */
  residual?: Tensor;
}

/** Plans y (expert outputs in the layout's rows, f32/bf16) -> out [tokens, hidden] f32 (+ residual), weighted by topkWeights [tokens, topk] (not run). */
export async function planCombine(ctx: GpuContext, y: Tensor, layoutIn: DispatchLayout, topkWeights: Tensor, opts: CombineOptions = {}): Promise<{ out: Tensor; launch: Launch }> {
  const where = 'combine';
  const layout = checkLayout(where, layoutIn);
  expectTensor(where, 'y', y, { dtype: ['f32', 'bf16'], shape: [...layout.lead, null] });
  const hidden = y.shape[y.shape.length - 1];
  expectTensor(where, 'topkWeights', topkWeights, { dtype: 'f32', shape: [layout.tokens, layout.topk] });
  const out = opts.out ?? createTensor(ctx, [layout.tokens, hidden], 'f32', 'combined');
  expectTensor(where, 'out', out, { dtype: 'f32', shape: [layout.tokens, hidden] });
  const residual = opts.residual;
  if (residual !== undefined) {
    expectTensor(where, 'residual', residual, { dtype: 'f32', shape: [layout.tokens, hidden] });
    if (residual.buffer === out.buffer) fail(where, 'residual', "a buffer other than out's (WebGPU forbids a writable binding aliasing another)", 'the same buffer');
  }
  const consts = { WG: COMBINE_WG, K: layout.topk, IN_BF16: y.dtype === 'bf16', RESIDUAL: residual !== undefined };
  const launch = await planKernel(ctx, {
    module: {
      kernel: 'moe.combine',
      config: consts,
      template: { file: 'moe/combine.wgsl', code: combineTemplate },
      helpers: [{ file: 'common/load_x.wgsl', code: loadX }],
      consts,
      structs: { Params: CombineParams },
    },
    params: CombineParams,
    values: { tokens: layout.tokens, hidden, pitch_y: y.pitch },
    bindings: [
      y.binding(where, 'y'),
      layout.srcToDst.binding(where, 'srcToDst'),
      topkWeights.binding(where, 'topkWeights'),
      out.binding(where, 'out'),
      (residual ?? unusedTensor(ctx)).binding(where, 'residual'),
    ],
    workgroups: Math.ceil((layout.tokens * hidden) / COMBINE_WG),
    bytes: layout.tokens * layout.topk * (y.byteLength / layout.rows) + out.byteLength * (residual ? 2 : 1),
    flops: 2 * layout.tokens * layout.topk * hidden,
  });
  return { out, launch };
}

/** y (expert outputs in the layout's rows, f32/bf16) -> out [tokens, hidden] f32, weighted by topkWeights [tokens, topk]; submitted. */
export async function combine(ctx: GpuContext, y: Tensor, layout: DispatchLayout, topkWeights: Tensor, opts: CombineOptions = {}): Promise<{ out: Tensor; launch: Launch }> {
  const r = await planCombine(ctx, y, layout, topkWeights, opts);
  r.launch.submit();
  return r;
}
