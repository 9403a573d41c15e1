// DeepGEMM's GEMMs on WebGPU: D = C + A @ B.T with A [m, k] and B [n, k] both K-major ("NT").
// FP8 (e4m3 with 1x128 scales on A and 128x128 scales on B) and bf16/f16/f32 operands; dense,
// m-grouped contiguous (MoE prefill) and m-grouped masked (MoE decode) layouts. Two kernels:
// small_m.wgsl (m <= 16 per group, memory-bound, optional split-k) and tiled.wgsl.
import * as d from 'typegpu/data';
import type { GpuContext } from '../../gpu/context.ts';
import { envFlag } from '../../gpu/env.ts';
import { DeepwgslError, fail } from '../../gpu/errors.ts';
import { createTensor, DTYPE_BYTES, expectTensor, readTensor, uploadTensor, type DType, Tensor } from '../../gpu/tensor.ts';
import { autotune, tunedConfig, type AutotuneResult } from '../../jit/autotune.ts';
import type { KernelModule, WgslSource } from '../../jit/compose.ts';
import { bindGroup, grid, Launch, nextPow2, paramsBuffer, type Dispatch } from '../../jit/launch.ts';
import type { TuningStore } from '../../jit/tuning-cache.ts';
import fp8Wgsl from '../../../shaders/common/fp8.wgsl';
import halfWgsl from '../../../shaders/common/half.wgsl';
import cLoadWgsl from '../../../shaders/gemm/c_load.wgsl';
import cNoneWgsl from '../../../shaders/gemm/c_none.wgsl';
import epilogueWgsl from '../../../shaders/gemm/epilogue.wgsl';
import loadAbWgsl from '../../../shaders/gemm/load_ab.wgsl';
import operandsWgsl from '../../../shaders/gemm/operands.wgsl';
import rowsContiguousWgsl from '../../../shaders/gemm/rows_contiguous.wgsl';
import rowsDenseWgsl from '../../../shaders/gemm/rows_dense.wgsl';
import rowsMaskedWgsl from '../../../shaders/gemm/rows_masked.wgsl';
import scaleAWgsl from '../../../shaders/gemm/scale_a.wgsl';
import scaleAUnitWgsl from '../../../shaders/gemm/scale_a_unit.wgsl';
import scaleBWgsl from '../../../shaders/gemm/scale_b.wgsl';
import scaleBUnitWgsl from '../../../shaders/gemm/scale_b_unit.wgsl';
import smallMWgsl from '../../../shaders/gemm/small_m.wgsl';
import splitkWgsl from '../../../shaders/gemm/splitk_reduce.wgsl';
import tiledWgsl from '../../../shaders/gemm/tiled.wgsl';
import wideWgsl from '../../../shaders/gemm/wide.wgsl';
import wideNoneWgsl from '../../../shaders/gemm/wide_none.wgsl';
import aRowsGatherWgsl from '../../../shaders/gemm/a_rows_gather.wgsl';
import aRowsPlainWgsl from '../../../shaders/gemm/a_rows_plain.wgsl';
import zPlainWgsl from '../../../shaders/gemm/z_plain.wgsl';
import zRoutedWgsl from '../../../shaders/gemm/z_routed.wgsl';

export type GemmLayout = 'dense' | 'contiguous' | 'masked';

/**
 * Small-m kernel: G groups of 32 lanes, KS of them side by side along k on the same NC columns
 * (so (g / ks) * nc columns per workgroup), MR rows per pass, VEC loads of B per lane per step (one
 * u32 word each, or with `wide` a vec4<u32> of 16 e4m3 values), k split over `splits` workgroups.
 */
export interface SmallMConfig {
  kernel: 'smallM';
  mr: number;
  g: number;
  ks: number;
  nc: number;
  vec: number;
  splits: number;
  wide: boolean;
}

/** Tiled kernel: BM x BN tile per workgroup, BK-deep slabs, TM x TN per invocation, k split over `splits` workgroups (dense only). */
export interface TiledConfig {
  kernel: 'tiled';
  bm: number;
  bn: number;
  bk: number;
  tm: number;
  tn: number;
  splits: number;
}

export type GemmConfig = SmallMConfig | TiledConfig;

/** Rows of each group in the contiguous layout are padded to a multiple of this (as DeepGEMM's default, 128). */
export function getMkAlignmentForContiguousLayout(): number {
  return 128;
}

const KIND: Record<string, number> = { f32: 0, bf16: 1, f16: 2, e4m3: 3 };
const WORDS: Record<string, number> = { f32: 4, bf16: 2, f16: 2, e4m3: 1 };
const OUT_DTYPES: DType[] = ['bf16', 'f16', 'f32'];
const HALF_DTYPES: DType[] = ['bf16', 'f16', 'f32'];

const GemmParams = d.struct({
  m: d.u32,
  n: d.u32,
  k: d.u32,
  kb: d.u32,
  nb: d.u32,
  groups: d.u32,
  a_pitch_words: d.u32,
  b_pitch_words: d.u32,
  out_pitch: d.u32,
  c_pitch: d.u32,
  k_chunks: d.u32,
  split_slices: d.u32,
  out_row0: d.u32,
  splits: d.u32,
  a_rows: d.u32,
  grid_x: d.u32,
});

/** A validated problem: operands, layout and sizes. `m` is the rows of one region (mMax when masked). */
export interface GemmProblem {
  layout: GemmLayout;
  fp8: boolean;
  a: Tensor;
  sa?: Tensor;
  b: Tensor;
  sb?: Tensor;
  out: Tensor;
  c?: Tensor;
  /** mIndices (contiguous) or maskedM (masked), i32 on the GPU. */
  aux?: Tensor;
  m: number;
  n: number;
  k: number;
  groups: number;
  /** Regions along grid z: the group count when masked, else 1. */
  regions: number;
  /** Masked, small-m kernel: grid z walks these group ids (the tokens' topk ids) instead of every group. */
  routed?: Tensor;
  /** Masked, small-m kernel: [groups * m] i32, the row of A (then [rows, k]) each group's slot reads. */
  aRows?: Tensor;
  /** Rows per group the launch should expect (masked: expectedM; otherwise m). */
  expectedM: number;
}

export interface GemmOptions {
  /** D = C + A @ B.T; C has D's shape, dtype f32, bf16 or f16. */
  c?: Tensor;
  config?: GemmConfig;
}

export interface GroupedOptions extends GemmOptions {
  /** Read mIndices/maskedM back and validate them before dispatch (default true; a GPU sync). */
  checkIndices?: boolean;
  /**
   * Masked layout, small-m kernel: i32 group ids (decode: the tokens' topk ids, -1 for none) naming
   * every group that holds rows; the launch covers these groups only, not all of them (a few tokens
   * over hundreds of experts). A group with rows that is not named is not computed.
   */
  routed?: Tensor | Int32Array | number[];
  /**
   * Masked layout, small-m kernel: lhs is [rows, k] (the tokens, not copied into groups) and slot r
   * of group g reads its row aRows[g * mMax + r] (i32, groups * mMax of them; a dispatch layout's
   * dstToSrc): the dispatch copy left out. Values outside 0..rows-1 are clamped.
   */
  aRows?: Tensor | Int32Array | number[];
}

const ceilDiv = (a: number, b: number) => Math.ceil(a / b);

function operandPair(where: string, name: string, x: unknown): [unknown, unknown] {
  if (!Array.isArray(x) || x.length !== 2) fail(where, name, `a pair [${name}, ${name}Scales]`, Array.isArray(x) ? `an array of ${x.length}` : typeof x);
  return [x[0], x[1]];
}

/** lhs of the FP8 GEMMs: [e4m3, scales], or unquantised bf16/f16/f32 activations alone (W8A16/W8A32). */
function lhsOperand(where: string, x: unknown): [unknown, unknown] {
  return Array.isArray(x) ? operandPair(where, 'lhs', x) : [x, undefined];
}

function checkOut(where: string, out: unknown, shape: number[], c: unknown): { out: Tensor; c?: Tensor } {
  const o = expectTensor(where, 'out', out, { dtype: OUT_DTYPES });
  const big = o.shape.length === shape.length && o.shape.every((v, i) => v >= shape[i]);
  if (!big || o.shape.some((v, i) => v !== shape[i])) {
    fail(where, 'out.shape', `[${shape.join(', ')}]${big ? ' exactly (a larger output would be laid out differently)' : ''}`, o.shape as number[]);
  }
  if (c === undefined) return { out: o };
  const ct = expectTensor(where, 'c', c, { dtype: HALF_DTYPES, shape });
  if (ct.buffer === o.buffer) fail(where, 'c', 'a different buffer from out (read and written in one pass)', 'the same buffer');
  return { out: o, c: ct };
}

interface RawOperands {
  a: unknown;
  sa?: unknown;
  b: unknown;
  sb?: unknown;
}

/** Checks operand dtypes and shapes for every layout; A is [rows..., k] and B [groups..., n, k]. */
function checkOperands(where: string, fp8: boolean, raw: RawOperands, aLead: number[], bGroups: number | undefined) {
  const opDtypes: DType[] = fp8 ? ['e4m3'] : HALF_DTYPES;
  const aRank = aLead.length + 1;
  // FP8 weights also take unquantised activations (scales optional then, 1.0 when left out).
  const a = expectTensor(where, fp8 ? 'lhs' : 'a', raw.a, { dtype: fp8 ? ['e4m3', ...HALF_DTYPES] : opDtypes });
  if (a.shape.length !== aRank) fail(where, `${fp8 ? 'lhs' : 'a'}.shape`, `rank ${aRank}`, a.shape as number[]);
  const k = a.shape[aRank - 1];
  const bRank = bGroups === undefined ? 2 : 3;
  const b = expectTensor(where, fp8 ? 'rhs' : 'b', raw.b, { dtype: opDtypes });
  if (b.shape.length !== bRank) fail(where, `${fp8 ? 'rhs' : 'b'}.shape`, bRank === 2 ? 'rank 2 [n, k]' : 'rank 3 [groups, n, k]', b.shape as number[]);
  const n = b.shape[bRank - 2];
  if (b.shape[bRank - 1] !== k) fail(where, 'rhs.shape', `[..., n, ${k}] (k of lhs)`, b.shape as number[]);
  const groups = bGroups === undefined ? 1 : b.shape[0];
  const kb = ceilDiv(k, 128);
  let sa: Tensor | undefined;
  let sb: Tensor | undefined;
  if (fp8) {
    const lead = a.shape.slice(0, -1) as number[];
    if (a.dtype === 'e4m3' || raw.sa !== undefined) sa = expectTensor(where, 'lhsScales', raw.sa, { dtype: 'f32', shape: [...lead, kb] });
    const bLead = bGroups === undefined ? [] : [groups];
    sb = expectTensor(where, 'rhsScales', raw.sb, { dtype: 'f32', shape: [...bLead, ceilDiv(n, 128), kb] });
  }
  return { a, sa, b, sb, k, n, groups };
}

async function hostInts(t: Tensor | Int32Array | number[]): Promise<Int32Array> {
  if (t instanceof Int32Array) return t;
  if (Array.isArray(t)) return Int32Array.from(t);
  return (await readTensor(t)) as Int32Array;
}

/** The rules the contiguous kernel relies on: each aligned block of rows is one group's rows, then -1 padding. */
export function checkMIndices(where: string, idx: Int32Array, groups: number): void {
  const align = getMkAlignmentForContiguousLayout();
  if (idx.length % align !== 0) fail(where, 'mIndices.length', `a multiple of ${align} (getMkAlignmentForContiguousLayout())`, idx.length);
  for (let i = 0; i < idx.length; i++) {
    const v = idx[i];
    if (v < -1 || v >= groups) fail(where, `mIndices[${i}]`, `-1 (padding) or a group in 0..${groups - 1}`, v);
    const first = idx[i - (i % align)];
    const prev = i % align === 0 ? undefined : idx[i - 1];
    if (prev !== undefined && v !== -1 && (v !== first || prev === -1)) {
      fail(where, `mIndices[${i}]`, `grouped: rows ${i - (i % align)}..${i - (i % align) + align - 1} hold one group's rows, then -1 padding; expected ${prev === -1 ? -1 : first}`, v);
    }
  }
}

async function indexTensor(ctx: GpuContext, where: string, name: string, x: unknown, len: number): Promise<{ t: Tensor; host?: Int32Array }> {
  if (x instanceof Int32Array || Array.isArray(x)) {
    const host = Int32Array.from(x as ArrayLike<number>);
    if (host.length !== len) fail(where, `${name}.length`, String(len), host.length);
    return { t: uploadTensor(ctx, host, [len], 'i32', name), host };
  }
  return { t: expectTensor(where, name, x, { dtype: 'i32', shape: [len] }) };
}

/** How many ids `x` holds: host ids, or an i32 tensor of any shape (checked). */
function idCount(where: string, name: string, x: unknown): number {
  return x instanceof Int32Array || Array.isArray(x) ? x.length : expectTensor(where, name, x, { dtype: 'i32' }).numel;
}

/** n ids, flat: an i32 tensor of any shape seen as [n], or host ids, uploaded. */
function flatIds(ctx: GpuContext, where: string, name: string, x: unknown, n: number): Promise<{ t: Tensor; host?: Int32Array }> {
  return indexTensor(ctx, where, name, x instanceof Tensor ? x.view([n]) : x, n);
}

/** The masked layout's routed group ids, flat (an i32 tensor of any shape, e.g. topk ids [tokens, k], or host ids, uploaded). */
async function routedIds(ctx: GpuContext, where: string, x: unknown): Promise<{ t: Tensor; host?: Int32Array }> {
  const n = idCount(where, 'routed', x);
  if (n < 1) fail(where, 'routed', 'at least one group id', n);
  const max = ctx.limits.maxComputeWorkgroupsPerDimension;
  if (n > max) fail(where, 'routed.length', `at most ${max} (one grid row each on this device)`, n);
  return flatIds(ctx, where, 'routed', x, n);
}

// ---- problem builders (validation happens here, before anything is dispatched) ----

export function denseProblem(where: string, fp8: boolean, raw: RawOperands, out: unknown, c?: unknown): GemmProblem {
  const ops = checkOperands(where, fp8, raw, [0], undefined);
  const m = ops.a.shape[0];
  const o = checkOut(where, out, [m, ops.n], c);
  return { layout: 'dense', fp8, ...ops, ...o, m, regions: 1, expectedM: m };
}

export async function contiguousProblem(
  ctx: GpuContext, where: string, fp8: boolean, raw: RawOperands, out: unknown, mIndices: unknown, check: boolean,
): Promise<GemmProblem> {
  const ops = checkOperands(where, fp8, raw, [0], 0);
  const m = ops.a.shape[0];
  const o = checkOut(where, out, [m, ops.n], undefined);
  const { t, host } = await indexTensor(ctx, where, 'mIndices', mIndices, m);
  if (check || host) checkMIndices(where, host ?? (await hostInts(t)), ops.groups);
  return { layout: 'contiguous', fp8, ...ops, ...o, aux: t, m, regions: 1, expectedM: m };
}

export async function maskedProblem(
  ctx: GpuContext, where: string, fp8: boolean, raw: RawOperands, out: unknown, maskedM: unknown, expectedM: number, check: boolean, routed?: unknown, aRows?: unknown,
): Promise<GemmProblem> {
  const ops = checkOperands(where, fp8, raw, aRows === undefined ? [0, 0] : [0], 0);
  let [g, mMax] = ops.a.shape;
  let map: { t: Tensor; host?: Int32Array } | undefined;
  if (aRows !== undefined) {
    const n = idCount(where, 'aRows', aRows);
    [g, mMax] = [ops.groups, n / ops.groups];
    if (!Number.isInteger(mMax) || mMax < 1) fail(where, 'aRows', `groups (${ops.groups}) x mMax slots`, `${n} entries`);
    map = await flatIds(ctx, where, 'aRows', aRows, n);
  }
  if (g !== ops.groups) fail(where, 'lhs.shape[0]', `the group count of rhs (${ops.groups})`, g);
  if (!Number.isInteger(expectedM) || expectedM < 0) fail(where, 'expectedM', 'a non-negative integer', expectedM);
  const o = checkOut(where, out, [g, mMax, ops.n], undefined);
  const { t, host } = await indexTensor(ctx, where, 'maskedM', maskedM, g);
  const r = routed === undefined ? undefined : await routedIds(ctx, where, routed);
  if (check || host) {
    const v = host ?? (await hostInts(t));
    v.forEach((x, i) => {
      if (x < 0 || x > mMax) fail(where, `maskedM[${i}]`, `in 0..mMax (${mMax})`, x);
    });
    // A group with rows that routed does not name would be left as it was: refuse it.
    if (r) {
      const named = new Set(r.host ?? (await hostInts(r.t)));
      const missed = v.findIndex((x, i) => x > 0 && !named.has(i));
      if (missed >= 0) fail(where, 'routed', 'ids naming every group with rows', `none for group ${missed} (maskedM[${missed}] = ${v[missed]})`);
    }
    if (map) {
      const rowsA = ops.a.rows;
      const rowsOf = map.host ?? (await hostInts(map.t));
      v.forEach((x, gi) => {
        for (let r = 0; r < x; r++) {
          const row = rowsOf[gi * mMax + r];
          if (!(row >= 0 && row < rowsA)) fail(where, `aRows[${gi * mMax + r}]`, `a row of lhs in 0..${rowsA - 1} (slot ${r} of group ${gi})`, row);
        }
      });
    }
  }
  return { layout: 'masked', fp8, ...ops, ...o, aux: t, m: mMax, regions: g, expectedM: Math.min(expectedM, mMax), routed: r?.t, aRows: map?.t };
}

// ---- configs ----

/** 8 or 16 rows with 4-byte loads stage A in workgroup memory; 16-byte loads read A's rows directly. */
function stagesA(c: SmallMConfig): boolean {
  return c.mr >= 8 && !c.wide;
}

/** Chunks (4 k values) a column's lanes take per iteration: the shader's STEP. */
function stepChunks(c: SmallMConfig): number {
  return (c.wide ? 128 : 32) * c.ks * c.vec;
}

function smallMShared(c: SmallMConfig): number {
  const step = stepChunks(c);
  const staged = stagesA(c) ? 16 * c.mr * step + 4 * c.mr * (step / 32) : 0;
  return staged + 4 * 32 * c.g * c.nc + 4 * c.mr * (c.g / c.ks) * c.nc + 16;
}

function tiledShared(c: TiledConfig): number {
  return 4 * c.bk * (c.bm + c.bn) + 16;
}

/** Why a config cannot run this problem on this device, or undefined when it can. */
export function configProblem(ctx: GpuContext, p: GemmProblem, c: GemmConfig): string | undefined {
  const lim = ctx.limits;
  if (c.kernel === 'smallM') {
    if (p.layout === 'contiguous') return 'the small-m kernel does not take the contiguous layout (groups are >= 128 rows)';
    if (![1, 2, 4, 8, 16].includes(c.mr) || ![1, 2, 4].includes(c.nc) || ![1, 2, 4].includes(c.vec)) return 'mr in 1,2,4,8,16; nc and vec in 1,2,4';
    if (c.g < 2 || 32 * c.g > lim.maxComputeInvocationsPerWorkgroup) return `g from 2 to ${lim.maxComputeInvocationsPerWorkgroup / 32}`;
    if (![1, 2, 4, 8].includes(c.ks) || c.g % c.ks !== 0 || ((c.g / c.ks) * c.nc) % 2 !== 0) return 'ks in 1,2,4,8 dividing g, and an even column count (g / ks) * nc';
    if (!Number.isInteger(c.splits) || c.splits < 1) return 'splits a positive integer';
    if (c.splits > 1 && p.layout !== 'dense') return 'split-k only in the dense layout';
    const buffers = storageBindings(p, c);
    if (buffers > lim.maxStorageBuffersPerShaderStage) return `${buffers} storage buffers over this device's ${lim.maxStorageBuffersPerShaderStage} per stage`;
    if (c.wide && !wideOk(ctx, p)) return 'wide only with e4m3 B, k % 16 == 0, 16-byte aligned operands and two storage buffers to spare';
    if (smallMShared(c) > lim.maxComputeWorkgroupStorageSize) return `workgroup memory ${smallMShared(c)} B over ${lim.maxComputeWorkgroupStorageSize}`;
    return undefined;
  }
  if (!Number.isInteger(c.splits) || c.splits < 1) return 'splits a positive integer';
  if (c.splits > 1 && p.layout !== 'dense') return 'split-k only in the dense layout';
  if (p.routed) return 'routed groups only with the small-m kernel';
  if (p.aRows) return 'gathered A rows (aRows) only with the small-m kernel';
  if (![32, 64, 128].includes(c.bm) || ![32, 64, 128].includes(c.bn) || ![8, 16, 32].includes(c.bk)) return 'bm, bn in 32,64,128; bk in 8,16,32';
  if (![4, 8].includes(c.tm) || ![4, 8].includes(c.tn)) return 'tm, tn in 4, 8';
  const wg = (c.bm / c.tm) * (c.bn / c.tn);
  if (wg > lim.maxComputeInvocationsPerWorkgroup || wg < 1) return `workgroup of ${wg} invocations`;
  if (tiledShared(c) > lim.maxComputeWorkgroupStorageSize) return `workgroup memory ${tiledShared(c)} B over ${lim.maxComputeWorkgroupStorageSize}`;
  return undefined;
}

/** Storage buffers a small-m launch binds: A, B, out, their scales, C, the row map, the 16-byte views, routed ids, A's row map. */
function storageBindings(p: GemmProblem, c: Pick<SmallMConfig, 'wide'>): number {
  return 3 + [p.sa, p.sb, p.c, p.aux, p.routed, p.aRows].filter(Boolean).length + (c.wide ? 2 : 0);
}

/**
 * 16-byte loads of A and B need 16-byte rows and bindings (k % 16 == 0) and room for their two
 * extra bindings (WebGPU guarantees only 8 storage buffers per stage).
 */
function wideOk(ctx: GpuContext, p: GemmProblem): boolean {
  return (
    p.b.dtype === 'e4m3' && p.k > 0 && p.k % 16 === 0 && p.b.byteOffset % 16 === 0 && p.a.byteOffset % 16 === 0 &&
    storageBindings(p, { wide: true }) <= ctx.limits.maxStorageBuffersPerShaderStage
  );
}

/** Enough workgroups to fill a large GPU; WebGPU does not tell how many cores there are. */
const TARGET_WORKGROUPS = 528;
/** Lanes the small-m kernel wants in flight: an H100 or H200 holds ~270K (132 cores x 2048). */
const TARGET_LANES = 1 << 18;

/** Split k (dense only, whole 128-wide slices, >= 2 per split) until the grid has `target` workgroups. */
function splitsFor(p: GemmProblem, workgroups: number, target = TARGET_WORKGROUPS): number {
  if (p.layout !== 'dense') return 1;
  return Math.max(1, Math.min(ceilDiv(target, workgroups), Math.floor(ceilDiv(p.k, 128) / 2)));
}

/** Groups counted as holding rows: how many do is not known when planning a masked GEMM, so all of them (or every routed id). */
function groupsWithRows(p: GemmProblem): number {
  return Math.min(p.regions, p.routed?.numel ?? p.regions);
}

/**
 * The small-m kernel streams: it wants every core full of lanes with loads in flight. Few columns
 * (n = 576..7168) get more lanes per column inside the workgroup first (ks: one pass), then split-k
 * (dense, a second pass) only while each lane still has >= 2 iterations of work.
 */
function smallMConfig(p: GemmProblem, mr: number, g: number, nc: number, vec: number, wide: boolean, ksMax = 8): SmallMConfig {
  const cols = p.n * groupsWithRows(p);
  const chunksPerLane = (wide ? 4 : 1) * vec;
  const maxLanesPerCol = Math.max(32, Math.floor(ceilDiv(p.k, 4) / chunksPerLane));
  const wantPerCol = Math.min(maxLanesPerCol, Math.max(32, (TARGET_LANES * nc) / cols));
  let ks = 1;
  while (ks * 2 <= Math.min(ksMax, g) && 32 * ks * 2 <= wantPerCol) ks *= 2;
  if (((g / ks) * nc) % 2 !== 0) ks = Math.max(1, ks >> 1);
  const lanes = (cols / nc) * 32 * ks;
  const splits = lanes >= TARGET_LANES || 32 * ks * 2 > maxLanesPerCol ? 1 : splitsFor(p, 1, Math.min(ceilDiv(TARGET_LANES, lanes), Math.floor(maxLanesPerCol / (32 * ks))));
  return { kernel: 'smallM', mr, g, ks, nc, vec, splits, wide };
}

/** With 16-byte loads a lane takes two per step (vec 2) only where it still takes this many steps along k; else one. */
const MIN_STEPS = 4;

/**
 * The small-m heuristic's config (8 groups of 32 lanes). m = 1: two columns per lane share A's loads
 * (nc 2) only where that still fills TARGET_WORKGROUPS; more rows: one column per lane (H100, Deno:
 * nc 1 ran m = 4 3.5x faster than nc 2 or 4, whose unrolled rows x columns bodies are larger). With
 * 16-byte loads, two per lane per step (vec 2) only where a lane still takes MIN_STEPS steps (ks and
 * splits as chosen for vec 2). In a V2-Lite decode step on an H100 (bench --decode --tune,
 * 2026-12-07) nc 1 won for q_kv_a and o_proj (n = 3648, 2048) and vec 1 for them and the experts
 * (k = 2048, 1408): 4.86 -> 4.18 GPU ms per token.
 */
function smallMDefault(p: GemmProblem, mr: number, wide: boolean): SmallMConfig {
  const vec = wide ? 2 : mr >= 8 ? 1 : 4;
  let c = smallMConfig(p, mr, 8, mr <= 1 ? 2 : 1, vec, wide);
  if (c.nc === 2 && smallMWorkgroups(p, c) < TARGET_WORKGROUPS) c = smallMConfig(p, mr, 8, 1, vec, wide);
  const steps = ceilDiv(ceilDiv(p.k, 4), c.splits * stepChunks(c));
  return wide && c.vec === 2 && steps < MIN_STEPS ? { ...c, vec: 1 } : c;
}

/** The small-m kernel's workgroups for this config. */
function smallMWorkgroups(p: GemmProblem, c: SmallMConfig): number {
  return ceilDiv(p.n, (c.g / c.ks) * c.nc) * c.splits * groupsWithRows(p);
}

function tiled(p: GemmProblem, bm: number, bn: number, bk: number, tm: number, tn: number): TiledConfig {
  return { kernel: 'tiled', bm, bn, bk, tm, tn, splits: splitsFor(p, ceilDiv(p.m, bm) * ceilDiv(p.n, bn) * p.regions) };
}

/** Rows per group the configs are chosen for; gathered A rows take the small-m kernel whatever the rows (the only one that reads them). */
function configRows(p: GemmProblem): number {
  return p.aRows ? Math.min(16, p.expectedM) : p.expectedM;
}

/** The heuristic: small-m kernel up to 16 rows per group, tiles sized to the rows and the tile count otherwise. */
export function defaultGemmConfig(ctx: GpuContext, p: GemmProblem): GemmConfig {
  const rows = configRows(p);
  if (rows <= 16 && p.layout !== 'contiguous') {
    const mr = nextPow2(rows);
    // 8 or 16 rows keep staged A until 16-byte loads there are measured (the tuner tries them).
    const wide = mr <= 4 && wideOk(ctx, p);
    const c = smallMDefault(p, mr, wide);
    if (!configProblem(ctx, p, c)) return c;
    // Small devices: a quarter of the staging and lanes.
    const fallback = smallMConfig(p, mr, 4, c.nc, 1, wide, 1);
    if (!configProblem(ctx, p, fallback)) return fallback;
  }
  const tiles = ceilDiv(rows, 128) * ceilDiv(p.n, 128) * p.regions;
  // 128x64 (8x4) beat 128x128 (8x8) by 5% at 4096^2 x 7168 on an H100 and an H200 (autotune, Deno).
  let c = tiled(p, 128, 64, 16, 8, 4);
  if (rows <= 32) c = tiled(p, 32, 128, 16, 4, 8);
  else if (rows <= 64 || tiles < TARGET_WORKGROUPS / 2) c = tiled(p, 64, 64, 16, 4, 4);
  return configProblem(ctx, p, c) ? tiled(p, 32, 32, 8, 4, 4) : c;
}

/** Configs autotune tries for this problem (all valid on this device). */
export function gemmCandidates(ctx: GpuContext, p: GemmProblem): GemmConfig[] {
  const out: GemmConfig[] = [];
  const rows = configRows(p);
  if (rows <= 16 && p.layout !== 'contiguous') {
    for (const mr of new Set([nextPow2(rows), 1])) {
      for (const wide of wideOk(ctx, p) ? [true, false] : [false]) {
        for (const nc of [1, 2, 4]) {
          for (const vec of [1, 2, 4]) {
            for (const ksMax of [1, 2, 4, 8]) {
              const h = smallMConfig(p, mr, 8, nc, vec, wide, ksMax);
              out.push(h);
              if (h.splits > 1) out.push({ ...h, splits: 1 });
            }
          }
        }
      }
    }
  } else {
    for (const [bm, bn, tm, tn] of [[128, 128, 8, 8], [64, 128, 4, 8], [128, 64, 8, 4], [64, 64, 4, 4], [32, 128, 4, 8], [32, 64, 4, 4]]) {
      for (const bk of [8, 16, 32]) {
        const c = tiled(p, bm, bn, bk, tm, tn);
        out.push(c);
        if (c.splits > 1) out.push({ ...c, splits: 1 });
      }
    }
  }
  const seen = new Set<string>();
  return out.filter((c) => !configProblem(ctx, p, c) && !seen.has(JSON.stringify(c)) && seen.add(JSON.stringify(c)));
}

// ---- modules and launch planning ----

function moduleFor(p: GemmProblem, c: GemmConfig, split: boolean): KernelModule {
  const rows: Record<GemmLayout, WgslSource> = {
    dense: { file: 'gemm/rows_dense.wgsl', code: rowsDenseWgsl },
    contiguous: { file: 'gemm/rows_contiguous.wgsl', code: rowsContiguousWgsl },
    masked: { file: 'gemm/rows_masked.wgsl', code: rowsMaskedWgsl },
  };
  const withC = p.c !== undefined && !split;
  const helpers: WgslSource[] = [
    { file: 'common/fp8.wgsl', code: fp8Wgsl },
    { file: 'common/half.wgsl', code: halfWgsl },
    { file: 'gemm/operands.wgsl', code: operandsWgsl },
    { file: 'gemm/load_ab.wgsl', code: loadAbWgsl },
    p.sa ? { file: 'gemm/scale_a.wgsl', code: scaleAWgsl } : { file: 'gemm/scale_a_unit.wgsl', code: scaleAUnitWgsl },
    p.fp8 ? { file: 'gemm/scale_b.wgsl', code: scaleBWgsl } : { file: 'gemm/scale_b_unit.wgsl', code: scaleBUnitWgsl },
    withC ? { file: 'gemm/c_load.wgsl', code: cLoadWgsl } : { file: 'gemm/c_none.wgsl', code: cNoneWgsl },
    rows[p.layout],
    { file: 'gemm/epilogue.wgsl', code: epilogueWgsl },
  ];
  const dtypes = { a: p.a.dtype, sa: !!p.sa, b: p.b.dtype, out: split ? 'f32' : p.out.dtype, c: withC ? p.c!.dtype : 'none', layout: p.layout, routed: !!p.routed, aRows: !!p.aRows };
  const consts = {
    A_KIND: KIND[p.a.dtype],
    B_KIND: KIND[p.b.dtype],
    A_WORDS: WORDS[p.a.dtype],
    B_WORDS: WORDS[p.b.dtype],
    OUT_KIND: split ? 0 : KIND[p.out.dtype],
    C_KIND: withC ? KIND[p.c!.dtype] : 0,
    FP8: p.fp8,
    E4M3_PAIRED: p.a.dtype === 'e4m3' && p.b.dtype === 'e4m3',
    A_SCALE: { f32: p.a.dtype === 'e4m3' ? 256 : 1 },
    B_SCALE: { f32: p.b.dtype === 'e4m3' ? 256 : 1 },
  };
  if (c.kernel === 'smallM') {
    return {
      kernel: 'gemm.smallM',
      config: { ...c, ...dtypes },
      template: { file: 'gemm/small_m.wgsl', code: smallMWgsl },
      helpers: [
        ...helpers,
        c.wide ? { file: 'gemm/wide.wgsl', code: wideWgsl } : { file: 'gemm/wide_none.wgsl', code: wideNoneWgsl },
        p.routed ? { file: 'gemm/z_routed.wgsl', code: zRoutedWgsl } : { file: 'gemm/z_plain.wgsl', code: zPlainWgsl },
        p.aRows ? { file: 'gemm/a_rows_gather.wgsl', code: aRowsGatherWgsl } : { file: 'gemm/a_rows_plain.wgsl', code: aRowsPlainWgsl },
      ],
      consts: { ...consts, WG: 32 * c.g, G: c.g, KS: c.ks, NC: c.nc, MR: c.mr, VEC: c.vec, STAGE_A: stagesA(c), WIDE: c.wide },
      structs: { Params: GemmParams },
    };
  }
  return {
    kernel: 'gemm.tiled',
    config: { ...c, ...dtypes },
    template: { file: 'gemm/tiled.wgsl', code: tiledWgsl },
    helpers,
    consts: { ...consts, WG: (c.bm / c.tm) * (c.bn / c.tn), BM: c.bm, BN: c.bn, BK: c.bk, TM: c.tm, TN: c.tn, TM4: c.tm / 4, TN4: c.tn / 4, TN2: c.tn / 2 },
    structs: { Params: GemmParams },
  };
}

function reduceModule(p: GemmProblem): KernelModule {
  const withC = p.c !== undefined;
  return {
    kernel: 'gemm.splitkReduce',
    config: { out: p.out.dtype, c: withC ? p.c!.dtype : 'none' },
    template: { file: 'gemm/splitk_reduce.wgsl', code: splitkWgsl },
    helpers: [
      { file: 'common/half.wgsl', code: halfWgsl },
      withC ? { file: 'gemm/c_load.wgsl', code: cLoadWgsl } : { file: 'gemm/c_none.wgsl', code: cNoneWgsl },
      { file: 'gemm/epilogue.wgsl', code: epilogueWgsl },
    ],
    consts: { WG: 256, OUT_KIND: KIND[p.out.dtype], C_KIND: withC ? KIND[p.c!.dtype] : 0 },
    structs: { Params: GemmParams },
  };
}

function checkGrid(ctx: GpuContext, where: string, dims: number[]): [number, number, number] {
  const max = ctx.limits.maxComputeWorkgroupsPerDimension;
  dims.forEach((v, i) => {
    if (v > max) throw new DeepwgslError(`${where}: ${v} workgroups along ${'xyz'[i]} exceed this device's ${max}; use a config with larger tiles or split the problem`);
  });
  return [dims[0], dims[1], dims[2]];
}

/**
 * Upstream's counts: 2*m*n*k FLOPs and the bytes of every operand; with routed ids, of at most as
 * many groups as there are ids (the groups a launch can touch).
 */
function launchInfo(p: GemmProblem, c: GemmConfig): { kernel: string; config: object; bytes: number; flops: number } {
  const share = p.routed ? Math.min(1, p.routed.numel / p.regions) : 1;
  const bytes = share * [p.a, p.sa, p.b, p.sb, p.out, p.c].reduce((s, t) => s + (t ? t.byteLength : 0), 0);
  return { kernel: `gemm.${c.kernel}`, config: c, bytes, flops: share * 2 * p.m * p.regions * p.n * p.k };
}

/** Compiles (cached) and binds a GEMM; `launch.run()` or `launch.encode(pass)` executes it. */
export async function planGemm(ctx: GpuContext, where: string, p: GemmProblem, config?: GemmConfig, store?: TuningStore): Promise<Launch> {
  // An explicit config, else what autotuneGemm stored for this GPU and shape class, else the heuristic.
  const tuning = config ? undefined : { ...tuningKey(p), candidates: gemmCandidates(ctx, p) };
  const tuned = tuning && (await tunedConfig(ctx, { ...tuning, store }));
  const c = config ?? tuned ?? defaultGemmConfig(ctx, p);
  const bad = configProblem(ctx, p, c);
  if (bad) fail(where, 'config', bad, JSON.stringify(c));
  if (envFlag('DEEPWGSL_PRINT_CONFIGS') && !config) {
    console.error(`deepwgsl ${where}: m=${p.m} n=${p.n} k=${p.k} regions=${p.regions} -> ${JSON.stringify(c)} (${tuned ? 'tuned' : 'heuristic'})`);
  }
  const info = { ...launchInfo(p, c), tuning };
  if (p.m * p.regions === 0 || p.n === 0) return new Launch(ctx, [], info);
  const kb = ceilDiv(p.k, 128);
  const splits = Math.min(c.splits, Math.max(1, kb));
  const split = splits > 1;
  const splitSlices = ceilDiv(Math.max(1, kb), splits);
  const nSplits = ceilDiv(Math.max(1, kb), splitSlices);
  const ws = split ? createTensor(ctx, [nSplits, p.m, p.n], 'f32', 'gemm.splitk') : undefined;
  const target = ws ?? p.out;
  const values = {
    m: p.m,
    n: p.n,
    k: p.k,
    kb,
    nb: ceilDiv(p.n, 128),
    groups: p.groups,
    a_pitch_words: (p.a.pitch * DTYPE_BYTES[p.a.dtype]) / 4,
    b_pitch_words: (p.b.pitch * DTYPE_BYTES[p.b.dtype]) / 4,
    out_pitch: target.pitch,
    c_pitch: p.c ? p.c.pitch : 0,
    k_chunks: ceilDiv(p.k, 4),
    split_slices: splitSlices,
    out_row0: split ? p.m : 0,
    splits: nSplits,
    a_rows: p.a.rows,
    grid_x: 0,
  };
  const pipeline = await ctx.pipelines.get(moduleFor(p, c, split));
  const wide = c.kernel === 'smallM' && c.wide;
  const dims =
    c.kernel === 'smallM'
      ? [ceilDiv(p.n, (c.g / c.ks) * c.nc), nSplits, p.routed?.shape[0] ?? p.regions]
      : [ceilDiv(p.n, c.bn), ceilDiv(p.m, c.bm), p.regions * nSplits];
  const res = [
    paramsBuffer(ctx, GemmParams, values),
    p.a.binding(where, 'lhs'),
    p.b.binding(where, 'rhs'),
    target.binding(where, 'out'),
    p.sa?.binding(where, 'lhsScales'),
    p.sb?.binding(where, 'rhsScales'),
    split ? undefined : p.c?.binding(where, 'c'),
    p.aux?.binding(where, p.layout === 'masked' ? 'maskedM' : 'mIndices'),
    wide ? p.b.binding(where, 'rhs') : undefined,
    wide ? p.a.binding(where, 'lhs') : undefined,
    p.routed?.binding(where, 'routed'),
    p.aRows?.binding(where, 'aRows'),
  ];
  const dispatches: Dispatch[] = [{ pipeline, bindGroup: bindGroup(ctx, pipeline, res), workgroups: checkGrid(ctx, where, dims) }];
  if (ws) {
    const rp = await ctx.pipelines.get(reduceModule(p));
    const g = grid(ctx, ceilDiv(p.m * ceilDiv(p.n, 2), 256));
    const params = paramsBuffer(ctx, GemmParams, { ...values, out_pitch: p.out.pitch, grid_x: g[0] });
    const bg = bindGroup(ctx, rp, [params, ws.binding(where, 'workspace'), undefined, p.out.binding(where, 'out'), undefined, undefined, p.c?.binding(where, 'c')]);
    dispatches.push({ pipeline: rp, bindGroup: bg, workgroups: g });
  }
  return new Launch(ctx, dispatches, info);
}

// ---- public API (names follow DeepGEMM, camelCase) ----

/**
 * lhs of the FP8 GEMMs: [e4m3 [..., k], f32 scales [..., ceil(k/128)]], or bf16/f16/f32 activations
 * alone (FP8 weights with unquantised activations: W8A16/W8A32; each 128-slice is scaled by sb only).
 */
export type FP8Lhs = [Tensor, Tensor] | Tensor;

/** D = C + A @ B.T with FP8 weights: lhs [m, k] e4m3 + [m, ceil(k/128)] f32 (or unquantised, see FP8Lhs), rhs [n, k] e4m3 + [ceil(n/128), ceil(k/128)] f32; out [m, n] bf16/f16/f32. */
export async function fp8GemmNT(ctx: GpuContext, lhs: FP8Lhs, rhs: [Tensor, Tensor], out: Tensor, opts: GemmOptions = {}): Promise<Launch> {
  const where = 'fp8GemmNT';
  const [a, sa] = lhsOperand(where, lhs);
  const [b, sb] = operandPair(where, 'rhs', rhs);
  const launch = await planGemm(ctx, where, denseProblem(where, true, { a, sa, b, sb }, out, opts.c), opts.config);
  launch.submit();
  return launch;
}

/**
 * MoE prefill: lhs [mSum, k] rows grouped by expert, each group padded to getMkAlignmentForContiguousLayout() rows;
 * mIndices [mSum] i32 (Tensor or host array) gives each row's group or -1 for padding; rhs [groups, n, k]. Padding rows of out are written as zeros.
 */
export async function mGroupedFp8GemmNTContiguous(
  ctx: GpuContext, lhs: FP8Lhs, rhs: [Tensor, Tensor], out: Tensor, mIndices: Tensor | Int32Array | number[], opts: GroupedOptions = {},
): Promise<Launch> {
  const where = 'mGroupedFp8GemmNTContiguous';
  const [a, sa] = lhsOperand(where, lhs);
  const [b, sb] = operandPair(where, 'rhs', rhs);
  const p = await contiguousProblem(ctx, where, true, { a, sa, b, sb }, out, mIndices, opts.checkIndices ?? true);
  const launch = await planGemm(ctx, where, p, opts.config);
  launch.submit();
  return launch;
}

/** MoE decode: lhs [groups, mMax, k]; maskedM [groups] i32 valid rows per group (rows past it are left untouched); expectedM tunes the launch. */
export async function mGroupedFp8GemmNTMasked(
  ctx: GpuContext, lhs: FP8Lhs, rhs: [Tensor, Tensor], out: Tensor, maskedM: Tensor | Int32Array | number[], expectedM: number, opts: GroupedOptions = {},
): Promise<Launch> {
  const where = 'mGroupedFp8GemmNTMasked';
  const [a, sa] = lhsOperand(where, lhs);
  const [b, sb] = operandPair(where, 'rhs', rhs);
  const p = await maskedProblem(ctx, where, true, { a, sa, b, sb }, out, maskedM, expectedM, opts.checkIndices ?? true, opts.routed, opts.aRows);
  const launch = await planGemm(ctx, where, p, opts.config);
  launch.submit();
  return launch;
}

/** D = C + A @ B.T with bf16, f16 or f32 operands (mixed allowed): a [m, k], b [n, k]; f32 accumulation. */
export async function bf16GemmNT(ctx: GpuContext, a: Tensor, b: Tensor, out: Tensor, opts: GemmOptions = {}): Promise<Launch> {
  const launch = await planGemm(ctx, 'bf16GemmNT', denseProblem('bf16GemmNT', false, { a, b }, out, opts.c), opts.config);
  launch.submit();
  return launch;
}

export async function mGroupedBf16GemmNTContiguous(
  ctx: GpuContext, a: Tensor, b: Tensor, out: Tensor, mIndices: Tensor | Int32Array | number[], opts: GroupedOptions = {},
): Promise<Launch> {
  const where = 'mGroupedBf16GemmNTContiguous';
  const launch = await planGemm(ctx, where, await contiguousProblem(ctx, where, false, { a, b }, out, mIndices, opts.checkIndices ?? true), opts.config);
  launch.submit();
  return launch;
}

export async function mGroupedBf16GemmNTMasked(
  ctx: GpuContext, a: Tensor, b: Tensor, out: Tensor, maskedM: Tensor | Int32Array | number[], expectedM: number, opts: GroupedOptions = {},
): Promise<Launch> {
  const where = 'mGroupedBf16GemmNTMasked';
  const launch = await planGemm(ctx, where, await maskedProblem(ctx, where, false, { a, b }, out, maskedM, expectedM, opts.checkIndices ?? true, opts.routed, opts.aRows), opts.config);
  launch.submit();
  return launch;
}

/** The same kernels take f16 (and f32) operands: these names exist for symmetry with the bf16 ones. */
export const f16GemmNT = bf16GemmNT;
export const mGroupedF16GemmNTContiguous = mGroupedBf16GemmNTContiguous;
export const mGroupedF16GemmNTMasked = mGroupedBf16GemmNTMasked;

/** The shape class autotune winners are stored under. */
function tuningKey(p: GemmProblem): { kernel: string; shapeKey: string } {
  const bucket = p.layout === 'masked' ? `expectedM=${nextPow2(p.expectedM)}` : `m=${nextPow2(p.m)}`;
  return {
    kernel: `gemm.${p.fp8 ? 'fp8' : 'half'}.${p.layout}`,
    shapeKey: `${p.a.dtype}x${p.b.dtype}->${p.out.dtype}${p.c ? `+c:${p.c.dtype}` : ''}|${bucket}|n=${p.n}|k=${p.k}|g=${p.groups}${p.routed ? `|routed=${p.routed.numel}` : ''}${p.aRows ? '|gathered' : ''}`,
  };
}

/** Times every candidate config on this problem and remembers the fastest per (GPU, kernel, shape class). */
export async function autotuneGemm(
  ctx: GpuContext, p: GemmProblem, opts: { store?: TuningStore; force?: boolean; iters?: number; maxCandidates?: number } = {},
): Promise<AutotuneResult<GemmConfig>> {
  const { maxCandidates, ...rest } = opts;
  return autotune(ctx, {
    ...tuningKey(p),
    candidates: gemmCandidates(ctx, p).slice(0, maxCandidates),
    plan: (config) => planGemm(ctx, 'autotuneGemm', p, config),
    ...rest,
  });
}
