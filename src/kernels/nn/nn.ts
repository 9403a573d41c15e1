// The small kernels of a decode step: embedding gather, RMSNorm, rope, SiLU(gate) * up, residual
// add, argmax, and MLA's absorbed projections and cache append. Each plan* validates, compiles (cached) and binds once, returning a Launch that a
// decode step records and replays; the plain functions plan and submit.
import * as d from 'typegpu/data';
import type { AnyWgslData } from 'typegpu/data';
import type { GpuContext } from '../../gpu/context.ts';
import { fail } from '../../gpu/errors.ts';
import { createTensor, expectTensor, unusedTensor, uploadTensor, type Tensor } from '../../gpu/tensor.ts';
import type { WgslConst, WgslSource } from '../../jit/compose.ts';
import { Launch, nextPow2, planKernel } from '../../jit/launch.ts';
import loadX from '../../../shaders/common/load_x.wgsl';
import wgArgmax from '../../../shaders/common/wg_argmax.wgsl';
import wgReduce from '../../../shaders/common/wg_reduce.wgsl';
import addTemplate from '../../../shaders/nn/add.wgsl';
import argmaxTemplate from '../../../shaders/nn/argmax.wgsl';
import embeddingTemplate from '../../../shaders/nn/embedding.wgsl';
import rmsNormTemplate from '../../../shaders/nn/rms_norm.wgsl';
import rmsStoreInplace from '../../../shaders/nn/rms_store_inplace.wgsl';
import rmsStoreOut from '../../../shaders/nn/rms_store_out.wgsl';
import fp8Wgsl from '../../../shaders/common/fp8.wgsl';
import weightAt from '../../../shaders/nn/weight_at.wgsl';
import absorbQTemplate from '../../../shaders/nn/mla_absorb_q.wgsl';
import absorbOTemplate from '../../../shaders/nn/mla_absorb_o.wgsl';
import dequantTemplate from '../../../shaders/nn/dequant.wgsl';
import ropeTemplate from '../../../shaders/nn/rope.wgsl';
import ropePair from '../../../shaders/nn/rope_pair.wgsl';
import kvAppendTemplate from '../../../shaders/nn/mla_kv_append.wgsl';
import packWgsl from '../../../shaders/mla/pack.wgsl';
import siluMulTemplate from '../../../shaders/nn/silu_mul.wgsl';

const ELEMENTWISE_WG = 256;
const ROW_WG = 128;

/**
 * Invocations for a row kernel that holds a row of n values in registers, about 8 each: a decode
 * step's rows are single tokens, so one workgroup is the whole launch and its latency (serial
 * loads) is what counts, not bytes.
 */
function rowWorkgroup(n: number): number {
  return Math.min(256, Math.max(32, nextPow2(Math.ceil(n / 8))));
}

interface NnKernel {
  name: string;
  file: string;
  code: string;
  helpers?: WgslSource[];
  consts: Record<string, WgslConst>;
  params: AnyWgslData;
  values: Record<string, number>;
  /** Bindings after the params uniform, in binding order. */
  bindings: GPUBufferBinding[];
  /** Workgroups in all; split over x and y past the per-dimension limit (params.grid_x). */
  workgroups: number;
  bytes: number;
  flops: number;
}

function planNn(ctx: GpuContext, k: NnKernel): Promise<Launch> {
  return planKernel(ctx, {
    module: { kernel: `nn.${k.name}`, config: k.consts, template: { file: `nn/${k.file}`, code: k.code }, helpers: k.helpers, consts: k.consts, structs: { Params: k.params } },
    params: k.params,
    values: k.values,
    bindings: k.bindings,
    workgroups: k.workgroups,
    bytes: k.bytes,
    flops: k.flops,
  });
}

function rows2(where: string, arg: string, t: unknown, dtype: Tensor['dtype'] | Tensor['dtype'][]): Tensor {
  const x = expectTensor(where, arg, t, { dtype });
  if (x.shape.length !== 2) fail(where, `${arg}.shape`, 'rank 2 [rows, n]', x.shape);
  return x;
}

function outTensor(ctx: GpuContext, where: string, shape: number[], out: Tensor | undefined, label: string, dtype: Tensor['dtype'] = 'f32'): Tensor {
  if (!out) return createTensor(ctx, shape, dtype, label);
  return expectTensor(where, 'out', out, { dtype, shape });
}

// ---- embedding ----

const EmbeddingParams = d.struct({ tokens: d.u32, hidden: d.u32, vocab: d.u32, pitch: d.u32, grid_x: d.u32 });

/** table [vocab, hidden] f32/bf16, ids [tokens] i32 -> out [tokens, hidden] f32. */
export async function planEmbedding(ctx: GpuContext, table: Tensor, ids: Tensor, opts: { out?: Tensor } = {}): Promise<{ launch: Launch; out: Tensor }> {
  const where = 'embedding';
  const tb = rows2(where, 'table', table, ['f32', 'bf16']);
  const id = expectTensor(where, 'ids', ids, { dtype: 'i32' });
  if (id.shape.length !== 1) fail(where, 'ids.shape', 'rank 1 [tokens]', id.shape);
  const [vocab, hidden] = tb.shape;
  const tokens = id.shape[0];
  const out = outTensor(ctx, where, [tokens, hidden], opts.out, 'embedded');
  const launch = await planNn(ctx, {
    name: 'embedding',
    file: 'embedding.wgsl',
    code: embeddingTemplate,
    helpers: [{ file: 'common/load_x.wgsl', code: loadX }],
    consts: { WG: ELEMENTWISE_WG, IN_BF16: tb.dtype === 'bf16' },
    params: EmbeddingParams,
    values: { tokens, hidden, vocab, pitch: tb.pitch },
    bindings: [tb.binding(where, 'table'), id.binding(where, 'ids'), out.binding(where, 'out')],
    workgroups: Math.ceil((tokens * hidden) / ELEMENTWISE_WG),
    bytes: (tb.byteLength / vocab) * tokens + out.byteLength,
    flops: 0,
  });
  return { launch, out };
}

export async function embedding(ctx: GpuContext, table: Tensor, ids: Tensor, opts: { out?: Tensor } = {}): Promise<Tensor> {
  const { launch, out } = await planEmbedding(ctx, table, ids, opts);
  launch.submit();
  return out;
}

// ---- RMSNorm ----

const RmsNormParams = d.struct({ rows: d.u32, n: d.u32, pitch_x: d.u32, x_off: d.u32, eps: d.f32, grid_x: d.u32 });

export interface RmsNormOptions {
  eps: number;
  out?: Tensor;
  /** Normalise columns colOffset .. colOffset + w.length of each row of x (default: the whole row). */
  colOffset?: number;
  /** Write the result over that window of x instead of into a dense out. */
  inPlace?: boolean;
}

/** x [rows, >= n] f32, w [n] f32 -> out [rows, n] f32 (or x itself, normalised in place). */
export async function planRmsNorm(ctx: GpuContext, x: Tensor, w: Tensor, opts: RmsNormOptions): Promise<{ launch: Launch; out: Tensor }> {
  const where = 'rmsNorm';
  const xt = rows2(where, 'x', x, 'f32');
  const wt = expectTensor(where, 'w', w, { dtype: 'f32' });
  if (wt.shape.length !== 1) fail(where, 'w.shape', 'rank 1 [n]', wt.shape);
  const n = wt.shape[0];
  const off = opts.colOffset ?? 0;
  if (!Number.isInteger(off) || off < 0 || off + n > xt.shape[1]) fail(where, 'colOffset', `an integer in 0..${xt.shape[1] - n} (x has ${xt.shape[1]} columns, w ${n})`, off);
  if (!(opts.eps >= 0)) fail(where, 'eps', 'a non-negative number', opts.eps);
  const rows = xt.shape[0];
  if (opts.inPlace && opts.out) fail(where, 'out', 'absent when inPlace (the result replaces x)', 'a Tensor');
  const out = opts.inPlace ? xt : outTensor(ctx, where, [rows, n], opts.out, 'normed');
  if (out.buffer === wt.buffer || (!opts.inPlace && out.buffer === xt.buffer)) fail(where, 'out', 'a buffer of its own (use inPlace to overwrite x)', 'a buffer shared with x or w');
  const wg = rowWorkgroup(n);
  const launch = await planNn(ctx, {
    name: 'rmsNorm',
    file: 'rms_norm.wgsl',
    code: rmsNormTemplate,
    helpers: [
      { file: 'common/wg_reduce.wgsl', code: wgReduce },
      opts.inPlace ? { file: 'nn/rms_store_inplace.wgsl', code: rmsStoreInplace } : { file: 'nn/rms_store_out.wgsl', code: rmsStoreOut },
    ],
    consts: { WG: wg, PER: Math.ceil(n / wg), IN_PLACE: opts.inPlace === true },
    params: RmsNormParams,
    values: { rows, n, pitch_x: xt.shape[1], x_off: off, eps: opts.eps },
    bindings: [xt.binding(where, 'x'), wt.binding(where, 'w'), ...(opts.inPlace ? [] : [out.binding(where, 'out')])],
    workgroups: rows,
    bytes: rows * n * 8 + n * 4,
    flops: 3 * rows * n,
  });
  return { launch, out };
}

export async function rmsNorm(ctx: GpuContext, x: Tensor, w: Tensor, opts: RmsNormOptions): Promise<Tensor> {
  const { launch, out } = await planRmsNorm(ctx, x, w, opts);
  launch.submit();
  return out;
}

// ---- rope ----

const RopeParams = d.struct({
  tokens: d.u32,
  heads: d.u32,
  head_dim: d.u32,
  rope_off: d.u32,
  d: d.u32,
  pitch_t: d.u32,
  max_pos: d.u32,
  grid_x: d.u32,
});

/** cos/sin table [positions, d/2, 2] f32: angle = f32(invFreq[i] * pos) as transformers, times `factor` (YaRN's attention factor). */
export function ropeTableData(invFreq: Float32Array, positions: number, factor: number): Float32Array {
  const half = invFreq.length;
  const t = new Float32Array(positions * half * 2);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < half; i++) {
      const a = Math.fround(invFreq[i] * p);
      t[(p * half + i) * 2] = Math.cos(a) * factor;
      t[(p * half + i) * 2 + 1] = Math.sin(a) * factor;
    }
  }
  return t;
}

export function uploadRopeTable(ctx: GpuContext, invFreq: Float32Array, positions: number, factor: number): Tensor {
  return uploadTensor(ctx, ropeTableData(invFreq, positions, factor), [positions, invFreq.length, 2], 'f32', 'rope table');
}

const ropeHelper: WgslSource = { file: 'nn/rope_pair.wgsl', code: ropePair };

/** The rope table's rotated dims (d/2 * 2), checked as [positions, d/2, 2] f32. */
function ropeDims(where: string, table: Tensor): number {
  const tb = expectTensor(where, 'table', table, { dtype: 'f32' });
  if (tb.shape.length !== 3 || tb.shape[2] !== 2) fail(where, 'table.shape', '[positions, d/2, 2]', tb.shape);
  return tb.shape[1] * 2;
}

export interface RopeOptions {
  /** Dims rotated per head: the table's d/2 * 2. */
  ropeOffset: number;
  interleave: boolean;
}

/** In place: x [tokens, heads, headDim] f32, positions [tokens] i32, table [maxPos, d/2, 2] f32. */
export async function planRope(ctx: GpuContext, x: Tensor, positions: Tensor, table: Tensor, opts: RopeOptions): Promise<Launch> {
  const where = 'rope';
  const xt = expectTensor(where, 'x', x, { dtype: 'f32' });
  if (xt.shape.length !== 3) fail(where, 'x.shape', 'rank 3 [tokens, heads, headDim]', xt.shape);
  const [tokens, heads, headDim] = xt.shape;
  expectTensor(where, 'positions', positions, { dtype: 'i32', shape: [tokens] });
  const dRope = ropeDims(where, table);
  const off = opts.ropeOffset;
  if (!Number.isInteger(off) || off < 0 || off + dRope > headDim) fail(where, 'ropeOffset', `an integer in 0..${headDim - dRope} (headDim ${headDim}, rope dims ${dRope})`, off);
  return planNn(ctx, {
    name: 'rope',
    file: 'rope.wgsl',
    code: ropeTemplate,
    helpers: [ropeHelper],
    consts: { WG: ELEMENTWISE_WG, INTERLEAVE: opts.interleave },
    params: RopeParams,
    values: { tokens, heads, head_dim: headDim, rope_off: off, d: dRope, pitch_t: heads * headDim, max_pos: table.shape[0] },
    bindings: [xt.binding(where, 'x'), positions.binding(where, 'positions'), table.binding(where, 'table')],
    workgroups: Math.ceil((tokens * heads * dRope) / 2 / ELEMENTWISE_WG),
    bytes: tokens * heads * dRope * 8 + tokens * dRope * 4,
    flops: tokens * heads * dRope * 3,
  });
}

export async function rope(ctx: GpuContext, x: Tensor, positions: Tensor, table: Tensor, opts: RopeOptions): Promise<void> {
  (await planRope(ctx, x, positions, table, opts)).submit();
}

// ---- SiLU(gate) * up, residual add ----

const ElementwiseParams = d.struct({ n: d.u32, grid_x: d.u32 });

function sameShape(where: string, a: Tensor, arg: string, b: unknown): Tensor {
  return expectTensor(where, arg, b, { dtype: 'f32', shape: a.shape });
}

const SiluParams = d.struct({ rows: d.u32, inter: d.u32, ld: d.u32, up_off: d.u32, grid_x: d.u32 });

async function planSilu(ctx: GpuContext, where: string, gate: Tensor, up: Tensor, rows: number, inter: number, ld: number, upOff: number, out: Tensor): Promise<Launch> {
  return planNn(ctx, {
    name: 'siluMul',
    file: 'silu_mul.wgsl',
    code: siluMulTemplate,
    consts: { WG: ELEMENTWISE_WG },
    params: SiluParams,
    values: { rows, inter, ld, up_off: upOff },
    bindings: [gate.binding(where, 'gate'), up.binding(where, 'up'), out.binding(where, 'out')],
    workgroups: Math.ceil((rows * inter) / ELEMENTWISE_WG),
    bytes: 12 * rows * inter,
    flops: 4 * rows * inter,
  });
}

/** gate, up [rows, n] f32 -> out = silu(gate) * up [rows, n] f32. */
export async function planSiluMul(ctx: GpuContext, gate: Tensor, up: Tensor, opts: { out?: Tensor } = {}): Promise<{ launch: Launch; out: Tensor }> {
  const where = 'siluMul';
  const g = expectTensor(where, 'gate', gate, { dtype: 'f32' });
  sameShape(where, g, 'up', up);
  const out = outTensor(ctx, where, [...g.shape], opts.out, 'silu_mul');
  const n = g.shape[g.shape.length - 1];
  return { launch: await planSilu(ctx, where, g, up, g.numel / n, n, n, 0, out), out };
}

/** A fused gate/up GEMM's output h [..., 2 * inter] f32 (gate columns, then up) -> silu(gate) * up [..., inter]. */
export async function planSiluMulFused(ctx: GpuContext, h: Tensor, opts: { out?: Tensor } = {}): Promise<{ launch: Launch; out: Tensor }> {
  const where = 'siluMulFused';
  const x = expectTensor(where, 'h', h, { dtype: 'f32' });
  const ld = x.shape[x.shape.length - 1];
  if (ld % 2 !== 0) fail(where, 'h.shape', 'an even last dimension [..., 2 * inter]', x.shape);
  const out = outTensor(ctx, where, [...x.shape.slice(0, -1), ld / 2], opts.out, 'silu_mul');
  return { launch: await planSilu(ctx, where, x, x, x.rows, ld / 2, ld, ld / 2, out), out };
}

export async function siluMul(ctx: GpuContext, gate: Tensor, up: Tensor, opts: { out?: Tensor } = {}): Promise<Tensor> {
  const { launch, out } = await planSiluMul(ctx, gate, up, opts);
  launch.submit();
  return out;
}

/** acc += b, both f32 of one shape (acc and b must be different buffers). */
export async function planAddInto(ctx: GpuContext, acc: Tensor, b: Tensor): Promise<Launch> {
  const where = 'addInto';
  const a = expectTensor(where, 'acc', acc, { dtype: 'f32' });
  const bt = sameShape(where, a, 'b', b);
  if (a.buffer === bt.buffer) fail(where, 'b', 'a different buffer from acc (WebGPU forbids a writable binding aliasing another)', 'the same buffer');
  return planNn(ctx, {
    name: 'addInto',
    file: 'add.wgsl',
    code: addTemplate,
    consts: { WG: ELEMENTWISE_WG },
    params: ElementwiseParams,
    values: { n: a.numel },
    bindings: [a.binding(where, 'acc'), bt.binding(where, 'b')],
    workgroups: Math.ceil(a.numel / ELEMENTWISE_WG),
    bytes: 12 * a.numel,
    flops: a.numel,
  });
}

export async function addInto(ctx: GpuContext, acc: Tensor, b: Tensor): Promise<void> {
  (await planAddInto(ctx, acc, b)).submit();
}

// ---- argmax ----

const ArgmaxParams = d.struct({ rows: d.u32, n: d.u32, grid_x: d.u32 });
/** Values per lane above which a row is cut into parts (one workgroup each) and the parts reduced by a second dispatch. */
const ARGMAX_PER_LANE = 8;

export interface ArgmaxOptions {
  out?: Tensor;
  /** -1 for a row holding any NaN or Inf (else NaN is ignored and Inf may win): a greedy step's tokens, checked at no cost. */
  flagNonFinite?: boolean;
}

/** x [rows, n] f32 -> out [rows] i32: first index of the maximum (NaN ignored; -1 if a row is all NaN, or with flagNonFinite holds any NaN or Inf). */
export async function planArgmax(ctx: GpuContext, x: Tensor, opts: ArgmaxOptions = {}): Promise<{ launch: Launch; out: Tensor }> {
  const where = 'argmax';
  const xt = rows2(where, 'x', x, 'f32');
  const [rows, n] = xt.shape;
  const out = outTensor(ctx, where, [rows], opts.out, 'argmax', 'i32');
  // At most one part per lane of the reducing workgroup.
  const parts = Math.min(ROW_WG, Math.ceil(n / (ROW_WG * ARGMAX_PER_LANE)));
  const ws = parts > 1 ? createTensor(ctx, [rows * parts * 2], 'u32', 'argmax.parts') : undefined;
  const pass = (src: Tensor, dst: Tensor, p: number, len: number) =>
    planNn(ctx, {
      name: 'argmax',
      file: 'argmax.wgsl',
      code: argmaxTemplate,
      helpers: [{ file: 'common/wg_argmax.wgsl', code: wgArgmax }],
      consts: { WG: ROW_WG, PARTS: p, FROM_PARTS: src === ws, TO_PARTS: dst === ws, FLAG_NONFINITE: opts.flagNonFinite === true },
      params: ArgmaxParams,
      values: { rows, n: len },
      bindings: [src.binding(where, src === ws ? 'parts' : 'x'), dst.binding(where, dst === ws ? 'parts' : 'out')],
      workgroups: rows * p,
      bytes: xt.byteLength + out.byteLength,
      flops: 0,
    });
  const passes = ws ? [await pass(xt, ws, parts, n), await pass(ws, out, 1, parts)] : [await pass(xt, out, 1, n)];
  const launch = Launch.join(ctx, passes, { ...passes[0].info, config: { parts } }, ws ? [ws.buffer] : []);
  return { launch, out };
}

export async function argmax(ctx: GpuContext, x: Tensor, opts: ArgmaxOptions = {}): Promise<Tensor> {
  const { launch, out } = await planArgmax(ctx, x, opts);
  launch.submit();
  return out;
}

// ---- weights as stored (MLA absorption, dequantisation) ----

/** A weight as a checkpoint stores it: f32/bf16/f16, or e4m3 with f32 128x128 block scales. */
export interface StoredWeight {
  t: Tensor;
  scale?: Tensor;
}

const W_KIND: Partial<Record<Tensor['dtype'], number>> = { f32: 0, bf16: 1, f16: 2, e4m3: 3 };

function storedWeight(ctx: GpuContext, where: string, arg: string, w: StoredWeight, shape?: [number, number]): { kind: number; bindings: GPUBufferBinding[]; pitch: number; kb: number } {
  const t = expectTensor(where, `${arg}.t`, w?.t, { dtype: ['f32', 'bf16', 'f16', 'e4m3'], shape });
  if (t.shape.length !== 2) fail(where, `${arg}.t.shape`, 'rank 2 [rows, cols]', t.shape);
  const kb = Math.ceil(t.shape[1] / 128);
  let scale: Tensor;
  if (t.dtype === 'e4m3') scale = expectTensor(where, `${arg}.scale`, w.scale, { dtype: 'f32', shape: [Math.ceil(t.shape[0] / 128), kb] });
  else {
    if (w.scale !== undefined) fail(where, `${arg}.scale`, `absent for a ${t.dtype} weight`, 'a Tensor');
    // Bound but never read: the layout wants every binding.
    scale = unusedTensor(ctx);
  }
  return { kind: W_KIND[t.dtype]!, bindings: [t.binding(where, `${arg}.t`), scale.binding(where, `${arg}.scale`)], pitch: t.pitch, kb };
}

const weightHelpers: WgslSource[] = [
  { file: 'common/fp8.wgsl', code: fp8Wgsl },
  { file: 'nn/weight_at.wgsl', code: weightAt },
];

export interface MlaDims {
  heads: number;
  qkNopeHeadDim: number;
  qkRopeHeadDim: number;
  vHeadDim: number;
  kvLoraRank: number;
}

const AbsorbParams = d.struct({ rows: d.u32, heads: d.u32, w_pitch: d.u32, w_kb: d.u32, grid_x: d.u32 });
const AbsorbQParams = d.struct({ rows: d.u32, heads: d.u32, q_pitch: d.u32, max_pos: d.u32, w_pitch: d.u32, w_kb: d.u32, grid_x: d.u32 });

function checkKvB(ctx: GpuContext, where: string, kvB: StoredWeight, m: MlaDims) {
  return storedWeight(ctx, where, 'kvB', kvB, [m.heads * (m.qkNopeHeadDim + m.vHeadDim), m.kvLoraRank]);
}

/** Rope of MLA's rope dims: the tokens' positions [tokens] i32 and the cos/sin table [positions, d/2, 2] f32. */
export interface MlaRope {
  positions: Tensor;
  table: Tensor;
  interleave: boolean;
}

/** Checks MLA's rope inputs for `tokens` tokens; returns the rotated dims. */
function checkMlaRope(where: string, r: MlaRope, tokens: number): number {
  expectTensor(where, 'rope.positions', r.positions, { dtype: 'i32', shape: [tokens] });
  return ropeDims(`${where} rope`, r.table);
}

// W_UK: a workgroup per ABSORB_Q_QUADS column quads of a (token, head), up to ABSORB_Q_GROUPS lane groups splitting its rows.
const ABSORB_Q_QUADS = 16;
const ABSORB_Q_GROUPS = 16;

/**
 * Absorbed MLA query: q [tokens, heads, nope + rope] f32 (or [tokens, >= heads * (nope + rope)], the
 * heads first: a fused projection's output) and kv_b_proj's weight (as stored) -> out [tokens,
 * heads, kvLoraRank + rope] f32 = [W_UK^T q_nope, q_rope], the query flashMlaWithKvcache takes over
 * the latent cache; with `rope`, q_rope is rotated on the way (no rope pass over q before).
 */
export async function planMlaAbsorbQ(ctx: GpuContext, q: Tensor, kvB: StoredWeight, m: MlaDims, opts: { out?: Tensor; rope?: MlaRope } = {}): Promise<{ launch: Launch; out: Tensor }> {
  const where = 'mlaAbsorbQ';
  const dq = m.qkNopeHeadDim + m.qkRopeHeadDim;
  const qt = expectTensor(where, 'q', q, { dtype: 'f32' });
  if (qt.shape.length === 3) expectTensor(where, 'q', q, { dtype: 'f32', shape: [null, m.heads, dq] });
  else if (qt.shape.length !== 2 || qt.shape[1] < m.heads * dq) fail(where, 'q.shape', `[tokens, ${m.heads}, ${dq}] or [tokens, >= ${m.heads * dq}]`, qt.shape);
  const w = checkKvB(ctx, where, kvB, m);
  const tokens = qt.shape[0];
  const dRope = opts.rope ? checkMlaRope(where, opts.rope, tokens) : m.qkRopeHeadDim;
  if (dRope !== m.qkRopeHeadDim) fail(where, 'rope.table.shape[1]', `qkRopeHeadDim / 2 (${m.qkRopeHeadDim / 2})`, dRope / 2);
  const d = m.kvLoraRank + m.qkRopeHeadDim;
  const out = outTensor(ctx, where, [tokens, m.heads, d], opts.out, 'q_absorbed');
  // Lane groups: the largest power of two up to ABSORB_Q_GROUPS dividing the rows (no tail to guard).
  let jg = ABSORB_Q_GROUPS;
  while (m.qkNopeHeadDim % jg !== 0) jg /= 2;
  const unused = unusedTensor(ctx);
  const launch = await planNn(ctx, {
    name: 'mlaAbsorbQ',
    file: 'mla_absorb_q.wgsl',
    code: absorbQTemplate,
    helpers: [...weightHelpers, ropeHelper],
    consts: {
      WG: ABSORB_Q_QUADS * jg,
      CQ: ABSORB_Q_QUADS,
      JG: jg,
      JN: m.qkNopeHeadDim / jg,
      DN: m.qkNopeHeadDim,
      DV: m.vHeadDim,
      DR: m.qkRopeHeadDim,
      KVR: m.kvLoraRank,
      W_KIND: w.kind,
      ROPE: opts.rope !== undefined,
      INTERLEAVE: opts.rope?.interleave ?? false,
    },
    params: AbsorbQParams,
    values: { rows: tokens * m.heads, heads: m.heads, q_pitch: qt.shape.length === 3 ? m.heads * dq : qt.pitch, max_pos: opts.rope?.table.shape[0] ?? 1, w_pitch: w.pitch, w_kb: w.kb },
    bindings: [
      qt.binding(where, 'q'),
      ...w.bindings,
      out.binding(where, 'out'),
      (opts.rope?.positions ?? unused).binding(where, 'rope.positions'),
      (opts.rope?.table ?? unused).binding(where, 'rope.table'),
    ],
    workgroups: tokens * m.heads * Math.ceil(m.kvLoraRank / (4 * ABSORB_Q_QUADS)),
    bytes: kvB.t.byteLength / 2 + tokens * m.heads * dq * 4 + out.byteLength,
    flops: 2 * tokens * m.heads * m.qkNopeHeadDim * m.kvLoraRank,
  });
  return { launch, out };
}

// W_UV: ABSORB_O_LANES lanes per output row split its latent channels in quads, ABSORB_O_ROWS rows per workgroup.
const ABSORB_O_LANES = 32;
const ABSORB_O_ROWS = 8;

/** o [tokens, heads, kvLoraRank] f32 (attention over the latent cache) -> out [tokens, heads * vHeadDim] f32 through W_UV. */
export async function planMlaAbsorbO(ctx: GpuContext, o: Tensor, kvB: StoredWeight, m: MlaDims, opts: { out?: Tensor } = {}): Promise<{ launch: Launch; out: Tensor }> {
  const where = 'mlaAbsorbO';
  const ot = expectTensor(where, 'o', o, { dtype: 'f32', shape: [null, m.heads, m.kvLoraRank] });
  const w = checkKvB(ctx, where, kvB, m);
  const tokens = ot.shape[0];
  const out = outTensor(ctx, where, [tokens, m.heads * m.vHeadDim], opts.out, 'o_values');
  const launch = await planNn(ctx, {
    name: 'mlaAbsorbO',
    file: 'mla_absorb_o.wgsl',
    code: absorbOTemplate,
    helpers: weightHelpers,
    consts: {
      WG: ABSORB_O_LANES * ABSORB_O_ROWS,
      RPW: ABSORB_O_ROWS,
      LANES: ABSORB_O_LANES,
      CQ: Math.ceil(m.kvLoraRank / (4 * ABSORB_O_LANES)),
      DN: m.qkNopeHeadDim,
      DV: m.vHeadDim,
      KVR: m.kvLoraRank,
      W_KIND: w.kind,
    },
    params: AbsorbParams,
    values: { rows: tokens * m.heads, heads: m.heads, w_pitch: w.pitch, w_kb: w.kb },
    bindings: [ot.binding(where, 'o'), ...w.bindings, out.binding(where, 'out')],
    workgroups: tokens * m.heads * Math.ceil(m.vHeadDim / ABSORB_O_ROWS),
    bytes: kvB.t.byteLength / 2 + ot.byteLength + out.byteLength,
    flops: 2 * tokens * m.heads * m.vHeadDim * m.kvLoraRank,
  });
  return { launch, out };
}

const KvAppendParams = d.struct({ tokens: d.u32, pitch_x: d.u32, kv_off: d.u32, num_rows: d.u32, max_pos: d.u32, eps: d.f32, grid_x: d.u32 });
const KV_APPEND_WG = 128;

export interface MlaKvAppendArgs {
  /** kv_a_proj_with_mqa's output [tokens, >= kvOffset + kvLoraRank + rope] f32: the latent, then k_pe, from column kvOffset. */
  kv: Tensor;
  kvOffset?: number;
  /** kv_a_layernorm's weight [kvLoraRank] f32. */
  norm: Tensor;
  eps: number;
  rope: MlaRope;
  /** [tokens] i32 cache slots (block * blockSize + offset); slots outside the cache are skipped. */
  slots: Tensor;
  /** [numBlocks, blockSize, 1, kvLoraRank + rope] bf16 or f16 (appendKvcache's 16-bit layouts). */
  kcache: Tensor;
}

/**
 * MLA's new latent cache rows in one pass: kv_a_layernorm over the latent, rope over k_pe (the
 * tokens' positions), written into the cache at the slots as appendKvcache writes bf16/f16 rows.
 */
export async function planMlaKvAppend(ctx: GpuContext, a: MlaKvAppendArgs): Promise<Launch> {
  const where = 'mlaKvAppend';
  const x = rows2(where, 'kv', a.kv, 'f32');
  const nw = expectTensor(where, 'norm', a.norm, { dtype: 'f32' });
  if (nw.shape.length !== 1 || nw.shape[0] % 2 !== 0) fail(where, 'norm.shape', 'rank 1 [kvLoraRank], kvLoraRank even (the cache packs channel pairs)', nw.shape);
  const kvr = nw.shape[0];
  const tokens = x.shape[0];
  const dRope = checkMlaRope(where, a.rope, tokens);
  const d = kvr + dRope;
  const off = a.kvOffset ?? 0;
  if (!Number.isInteger(off) || off < 0 || off + d > x.shape[1]) fail(where, 'kvOffset', `an integer in 0..${x.shape[1] - d} (kv has ${x.shape[1]} columns, a row ${d})`, off);
  if (!(a.eps >= 0)) fail(where, 'eps', 'a non-negative number', a.eps);
  expectTensor(where, 'slots', a.slots, { dtype: 'i32', shape: [tokens] });
  const k = expectTensor(where, 'kcache', a.kcache, { dtype: ['bf16', 'f16'], shape: [null, null, 1, d] });
  const words = d / 2;
  return planNn(ctx, {
    name: 'mlaKvAppend',
    file: 'mla_kv_append.wgsl',
    code: kvAppendTemplate,
    helpers: [
      { file: 'common/wg_reduce.wgsl', code: wgReduce },
      { file: 'mla/pack.wgsl', code: packWgsl },
      ropeHelper,
    ],
    consts: { WG: KV_APPEND_WG, PER: Math.ceil(words / KV_APPEND_WG), KVR: kvr, DR: dRope, PACK_KIND: k.dtype === 'bf16' ? 1 : 2, K_PITCH_WORDS: k.pitch / 2, INTERLEAVE: a.rope.interleave },
    params: KvAppendParams,
    values: { tokens, pitch_x: x.pitch, kv_off: off, num_rows: k.shape[0] * k.shape[1], max_pos: a.rope.table.shape[0], eps: a.eps },
    bindings: [
      x.binding(where, 'kv'),
      nw.binding(where, 'norm'),
      a.rope.positions.binding(where, 'rope.positions'),
      a.slots.binding(where, 'slots'),
      a.rope.table.binding(where, 'rope.table'),
      k.binding(where, 'kcache'),
    ],
    workgroups: tokens,
    bytes: tokens * (d * 4 + d * 2) + kvr * 4,
    flops: tokens * d * 4,
  });
}

const DequantParams = d.struct({ rows: d.u32, cols: d.u32, w_pitch: d.u32, w_kb: d.u32, grid_x: d.u32 });

/** A stored weight [rows, cols] (e4m3 times its block scales, or bf16/f16/f32) -> f32 [rows, cols]. */
export async function planDequant(ctx: GpuContext, wIn: StoredWeight, opts: { out?: Tensor } = {}): Promise<{ launch: Launch; out: Tensor }> {
  const where = 'dequant';
  const w = storedWeight(ctx, where, 'w', wIn);
  const [rows, cols] = wIn.t.shape;
  const out = outTensor(ctx, where, [rows, cols], opts.out, 'dequantized');
  const launch = await planNn(ctx, {
    name: 'dequant',
    file: 'dequant.wgsl',
    code: dequantTemplate,
    helpers: weightHelpers,
    consts: { WG: ELEMENTWISE_WG, W_KIND: w.kind },
    params: DequantParams,
    values: { rows, cols, w_pitch: w.pitch, w_kb: w.kb },
    bindings: [...w.bindings, out.binding(where, 'out')],
    workgroups: Math.ceil((rows * cols) / ELEMENTWISE_WG),
    bytes: wIn.t.byteLength + out.byteLength,
    flops: rows * cols,
  });
  return { launch, out };
}
