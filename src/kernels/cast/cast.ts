// GPU versions of DeepGEMM's FP8 operand casts, bit-identical to src/formats/casts.ts.
import * as d from 'typegpu/data';
import type { GpuContext } from '../../gpu/context.ts';
import { fail } from '../../gpu/errors.ts';
import { createTensor, expectTensor, type Tensor } from '../../gpu/tensor.ts';
import { autotune, type AutotuneResult } from '../../jit/autotune.ts';
import type { KernelModule, WgslSource } from '../../jit/compose.ts';
import { bindGroup, grid, Launch, nextPow2, paramsBuffer } from '../../jit/launch.ts';
import type { TuningStore } from '../../jit/tuning-cache.ts';
import divRn from '../../../shaders/common/div_rn.wgsl';
import fp8 from '../../../shaders/common/fp8.wgsl';
import fp8Group from '../../../shaders/common/fp8_group.wgsl';
import loadX from '../../../shaders/common/load_x.wgsl';
import loadX4Vec from '../../../shaders/common/load_x4_vec.wgsl';
import segmentMax from '../../../shaders/common/segment_max.wgsl';
import shuffleNone from '../../../shaders/common/shuffle_none.wgsl';
import shuffleSubgroup from '../../../shaders/common/shuffle_subgroup.wgsl';
import perBlockTemplate from '../../../shaders/cast/per_block_cast.wgsl';
import perTokenTemplate from '../../../shaders/cast/per_token_cast.wgsl';
import storeQWord from '../../../shaders/cast/store_q_word.wgsl';
import storeQVec4 from '../../../shaders/cast/store_q_vec4.wgsl';

export type CastKind = 'perToken' | 'perBlock';

export interface CastConfig {
  /** Workgroup size: a multiple of 32. */
  wg: number;
  /** Reduce with subgroup shuffles below the adapter's minimum subgroup size. */
  subgroups: boolean;
  /** perToken: invocations per 1x128 group (8, 16 or 32; each converts 32 / lanes words). perBlock ignores it. */
  lanes?: number;
  /** perToken, f32 input with k a multiple of 4: x read as 16-byte vec4<u32> words instead of four 4-byte loads. */
  vecIn?: boolean;
  /** perToken, 8 lanes, k a multiple of 16: each lane converts 16 consecutive columns and stores them as one 16-byte word. */
  vecOut?: boolean;
}

export interface Fp8Tensors {
  q: Tensor;
  scales: Tensor;
}

const CastParams = d.struct({
  m: d.u32,
  k: d.u32,
  groups: d.u32,
  blocks_n: d.u32,
  pitch_x: d.u32,
  pitch_q_words: d.u32,
  grid_x: d.u32,
});

const TEMPLATES: Record<CastKind, { file: string; code: string }> = {
  perToken: { file: 'cast/per_token_cast.wgsl', code: perTokenTemplate },
  perBlock: { file: 'cast/per_block_cast.wgsl', code: perBlockTemplate },
};

/** The WGSL helpers of a 1x128 FP8 cast (the casts here and MoE's dispatch share them); `vecIn`: x bound as vec4<u32> words. */
export function castHelpers(subgroups: boolean, vecIn = false): WgslSource[] {
  return [
    { file: 'common/fp8.wgsl', code: fp8 },
    { file: 'common/div_rn.wgsl', code: divRn },
    { file: 'common/fp8_group.wgsl', code: fp8Group },
    subgroups ? { file: 'common/shuffle_subgroup.wgsl', code: shuffleSubgroup } : { file: 'common/shuffle_none.wgsl', code: shuffleNone },
    { file: 'common/segment_max.wgsl', code: segmentMax },
    vecIn ? { file: 'common/load_x4_vec.wgsl', code: loadX4Vec } : { file: 'common/load_x.wgsl', code: loadX },
  ];
}

export function castModule(ctx: GpuContext, kind: CastKind, inDtype: 'f32' | 'bf16', config: CastConfig): KernelModule {
  const sgMin = config.subgroups ? Math.max(1, ctx.adapterInfo.subgroupMinSize) : 1;
  const seg = kind === 'perToken' ? (config.lanes ?? 32) : config.wg;
  const [vecIn, vecOut] = [config.vecIn === true, config.vecOut === true];
  const word = (vec: boolean) => (vec ? 'vec4<u32>' : 'u32');
  const perToken = {
    helpers: [vecOut ? { file: 'cast/store_q_vec4.wgsl', code: storeQVec4 } : { file: 'cast/store_q_word.wgsl', code: storeQWord }],
    consts: { WPL: 32 / seg, LANE_STRIDE: vecOut ? 16 : 4, WORD_STRIDE: vecOut ? 4 : 4 * seg },
    aliases: { XWord: word(vecIn), QWord: word(vecOut) },
  };
  return {
    kernel: `cast.${kind}`,
    config: { ...config, in: inDtype, sgMin },
    template: TEMPLATES[kind],
    helpers: [...castHelpers(config.subgroups, vecIn), ...(kind === 'perToken' ? perToken.helpers : [])],
    consts: { WG: config.wg, SEG: seg, SG_MIN: sgMin, IN_BF16: inDtype === 'bf16', ...(kind === 'perToken' ? perToken.consts : {}) },
    aliases: kind === 'perToken' ? perToken.aliases : {},
    structs: { Params: CastParams },
    enables: config.subgroups ? ['subgroups'] : [],
  };
}

/** 16-byte x loads need f32 rows of whole vec4s; 16-byte q stores 16 columns a lane (8 lanes) and q rows of whole vec4s. */
const vecInFits = (kind: CastKind, input: { dtype: string; k: number }) => kind === 'perToken' && input.dtype === 'f32' && input.k % 4 === 0;
const vecOutFits = (kind: CastKind, lanes: number | undefined, k: number) => kind === 'perToken' && lanes === 8 && k % 16 === 0;

/** Every config this device can run (on this input's dtype and k, where given), for autotune. */
export function castCandidates(ctx: GpuContext, kind: CastKind, input?: { dtype: string; k: number }): CastConfig[] {
  const sizes = (kind === 'perToken' ? [64, 256] : [64, 128, 256]).filter((wg) => wg <= ctx.limits.maxComputeInvocationsPerWorkgroup);
  const sg = ctx.has('subgroups') ? [false, true] : [false];
  const lanes = kind === 'perToken' ? [8, 16, 32] : [undefined];
  const base: CastConfig[] = sizes.flatMap((wg) => sg.flatMap((subgroups) => lanes.map((l) => (l === undefined ? { wg, subgroups } : { wg, subgroups, lanes: l }))));
  // The 16-byte variants at 8 lanes (4 words a lane), where the input allows them.
  const wide = !input || kind !== 'perToken' ? [] : base.filter((c) => c.lanes === 8).flatMap((c) => [{ ...c, vecIn: true }, { ...c, vecOut: true }, { ...c, vecIn: true, vecOut: true }]);
  return [...base, ...wide.filter((c) => (!c.vecIn || vecInFits(kind, input!)) && (!c.vecOut || vecOutFits(kind, c.lanes, input!.k)))];
}

/** The heuristic pick: big workgroups, shuffles where subgroups exist, 8 lanes per 1x128 group (4 words each). */
export function defaultCastConfig(ctx: GpuContext, kind: CastKind): CastConfig {
  const c = castCandidates(ctx, kind).filter((x) => x.lanes === undefined || x.lanes === 8);
  return c[c.length - 1];
}

function checkInput(where: string, x: unknown): { x: Tensor; rows: number; k: number } {
  const t = expectTensor(where, 'x', x, { dtype: ['f32', 'bf16'] });
  if (t.shape.length !== 2) fail(where, 'x.shape', 'rank 2 [rows, k]', t.shape);
  return { x: t, rows: t.shape[0], k: t.shape[1] };
}

function outputs(ctx: GpuContext, where: string, rows: number, k: number, scaleShape: number[], out?: Fp8Tensors): Fp8Tensors {
  if (!out) return { q: createTensor(ctx, [rows, k], 'e4m3', 'q'), scales: createTensor(ctx, scaleShape, 'f32', 'scales') };
  expectTensor(where, 'out.q', out.q, { dtype: 'e4m3', shape: [rows, k] });
  expectTensor(where, 'out.scales', out.scales, { dtype: 'f32', shape: scaleShape });
  return out;
}

/** Plans a cast: validates, compiles (cached) and binds. `launch.run()` executes it. */
export async function planCast(
  ctx: GpuContext,
  kind: CastKind,
  xIn: Tensor,
  opts: { out?: Fp8Tensors; config?: CastConfig } = {},
): Promise<{ launch: Launch } & Fp8Tensors> {
  const where = kind === 'perToken' ? 'perTokenCastToFp8Gpu' : 'perBlockCastToFp8Gpu';
  const { x, rows, k } = checkInput(where, xIn);
  const groups = Math.ceil(k / 128);
  const blocksN = Math.ceil(rows / 128);
  const out = outputs(ctx, where, rows, k, kind === 'perToken' ? [rows, groups] : [blocksN, groups], opts.out);
  const config = opts.config ?? defaultCastConfig(ctx, kind);
  if (config.wg % 32 !== 0 || config.wg > ctx.limits.maxComputeInvocationsPerWorkgroup) {
    fail(where, 'config.wg', `a multiple of 32 up to ${ctx.limits.maxComputeInvocationsPerWorkgroup}`, config.wg);
  }
  if (kind === 'perToken' && ![undefined, 8, 16, 32].includes(config.lanes)) fail(where, 'config.lanes', '8, 16 or 32', config.lanes);
  if (config.subgroups && !ctx.has('subgroups')) fail(where, 'config.subgroups', "false on a device without 'subgroups'", true);
  if (config.vecIn && !vecInFits(kind, { dtype: x.dtype, k })) fail(where, 'config.vecIn', 'false unless the cast is perToken of f32 x with k a multiple of 4', `true (${kind}, x ${x.dtype}, k = ${k})`);
  if (config.vecOut && !vecOutFits(kind, config.lanes, k)) fail(where, 'config.vecOut', 'false unless the cast is perToken with lanes 8 and k a multiple of 16', `true (${kind}, lanes ${config.lanes}, k = ${k})`);
  const pipeline = await ctx.pipelines.get(castModule(ctx, kind, x.dtype as 'f32' | 'bf16', config));
  const workgroups = kind === 'perToken' ? Math.ceil((rows * groups) / (config.wg / (config.lanes ?? 32))) : blocksN * groups;
  const g = grid(ctx, workgroups);
  const params = paramsBuffer(ctx, CastParams, {
    m: rows,
    k,
    groups,
    blocks_n: blocksN,
    pitch_x: x.pitch,
    pitch_q_words: out.q.pitch / 4,
    grid_x: g[0],
  });
  const bg = bindGroup(ctx, pipeline, [params, x.binding(where, 'x'), out.q.binding(where, 'q'), out.scales.binding(where, 'scales')]);
  const bytes = x.byteLength + out.q.byteLength + out.scales.byteLength;
  const launch = new Launch(ctx, [{ pipeline, bindGroup: bg, workgroups: g }], { kernel: `cast.${kind}`, config, bytes, flops: 0 });
  return { launch, ...out };
}

/** x [m, k] f32/bf16 -> e4m3 q [m, k] and 1x128 scales [m, ceil(k/128)] on the GPU. */
export async function perTokenCastToFp8Gpu(ctx: GpuContext, x: Tensor, opts?: { out?: Fp8Tensors; config?: CastConfig }): Promise<Fp8Tensors> {
  const { launch, q, scales } = await planCast(ctx, 'perToken', x, opts);
  launch.submit();
  return { q, scales };
}

/** w [n, k] f32/bf16 -> e4m3 q [n, k] and 128x128 scales [ceil(n/128), ceil(k/128)] on the GPU. */
export async function perBlockCastToFp8Gpu(ctx: GpuContext, w: Tensor, opts?: { out?: Fp8Tensors; config?: CastConfig }): Promise<Fp8Tensors> {
  const { launch, q, scales } = await planCast(ctx, 'perBlock', w, opts);
  launch.submit();
  return { q, scales };
}

/** Times every cast config on this input and remembers the fastest for its shape class. */
export async function autotuneCast(
  ctx: GpuContext,
  kind: CastKind,
  x: Tensor,
  opts: { store?: TuningStore; force?: boolean; iters?: number } = {},
): Promise<AutotuneResult<CastConfig>> {
  const out = await planCast(ctx, kind, x);
  return autotune(ctx, {
    kernel: `cast.${kind}`,
    shapeKey: `${x.dtype}|k=${x.shape[1]}|rows=${nextPow2(x.shape[0])}`,
    candidates: castCandidates(ctx, kind, { dtype: x.dtype, k: x.shape[1] }),
    plan: async (config) => (await planCast(ctx, kind, x, { out, config })).launch,
    ...opts,
  });
}
