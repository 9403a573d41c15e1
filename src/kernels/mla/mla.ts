// flashMlaWithKvcache: MLA decode over a paged KV cache (FlashMLA's interface on WebGPU). A split-KV
// decode pass (shaders/mla/decode.wgsl) and, where a sequence was split, a combine pass through lse
// (shaders/mla/combine.wgsl). q and out are bf16 as upstream, or f16/f32 (the model runtime keeps
// activations in f32); out has q's dtype, lse is f32 [b, h_q, s_q].
import * as d from 'typegpu/data';
import type { GpuContext } from '../../gpu/context.ts';
import { DeepwgslError, fail } from '../../gpu/errors.ts';
import { createTensor, expectTensor, readTensor, unusedTensor, uploadTensor, type Tensor } from '../../gpu/tensor.ts';
import type { KernelModule } from '../../jit/compose.ts';
import { autotune, type AutotuneResult } from '../../jit/autotune.ts';
import { bindGroup, grid, Launch, nextPow2, paramsBuffer, type Dispatch } from '../../jit/launch.ts';
import type { TuningStore } from '../../jit/tuning-cache.ts';
import fp8Wgsl from '../../../shaders/common/fp8.wgsl';
import packWgsl from '../../../shaders/mla/pack.wgsl';
import loadWgsl from '../../../shaders/mla/load.wgsl';
import storeWgsl from '../../../shaders/mla/store_out.wgsl';
import decodeWgsl from '../../../shaders/mla/decode.wgsl';
import decodeTiledWgsl from '../../../shaders/mla/decode_tiled.wgsl';
import rowsWgsl from '../../../shaders/mla/rows.wgsl';
import kcacheOneWgsl from '../../../shaders/mla/kcache_one.wgsl';
import kcacheSplitWgsl from '../../../shaders/mla/kcache_split.wgsl';
import combineWgsl from '../../../shaders/mla/combine.wgsl';
import { FP8_TILE, kvLayout, type KvFormat, type KvLayout } from './kvformat.ts';
import { maxScheduleItems, scheduleSplits, type MlaSchedule } from './schedule.ts';

const WHERE = 'flashMlaWithKvcache';
export type MlaActDtype = 'bf16' | 'f16' | 'f32';
const KIND: Record<MlaActDtype, number> = { f32: 0, bf16: 1, f16: 2 };
const K_KIND: Record<KvFormat, number> = { bf16: 0, f16: 1, fp8: 2 };

/** Tiles of the decode kernels. */
export interface MlaConfig {
  /**
   * 'tiled': the GEMM-shaped kernel (decode_tiled.wgsl), q and K staged `dk` channels at a time, V
   * `bnv` rows at a time, register tiles per invocation. 'rows': the row kernel (decode.wgsl), one
   * query row per invocation, which fits any device and shape.
   */
  kernel: 'rows' | 'tiled';
  /** Invocations per workgroup. */
  wg: number;
  /** Query rows (token, head pairs of one kv head) per workgroup: a power of two. */
  mt: number;
  /** Cache rows per tile in workgroup memory. */
  bn: number;
  dk?: number;
  bnv?: number;
  /**
   * Bytes per storage binding of the cache: a cache over one binding is bound as up to 4 windows of
   * this size. Default: the device's maxStorageBufferBindingSize (rounded down to the offset alignment).
   */
  cacheWindow?: number;
}

/** What a schedule was made for: a later call with other values is refused (upstream's rule). */
interface SchedKey {
  b: number;
  sQ: number;
  hQ: number;
  blockSize: number;
  hKv: number;
  causal: boolean;
  kvFormat: KvFormat;
  topk: number | null;
  sink: boolean;
}

/**
 * A replayable schedule's split unit (positions): `fine` while the batch's work at that unit is at
 * most `fineItems` items (one round of 8 cache rows per workgroup, twice the workgroups: on an H100 a
 * V2-Lite call at 40 positions took 13.5 us against 17.9), else `coarse` (past ~1024 positions at
 * b=1 the combine's partials cost more than the rounds they save). docs/BENCHMARKS.md, 2026-12-06.
 */
const REPLAY_UNIT = { fine: 8, coarse: 16, fineItems: 128 };

/**
 * Scheduling state, filled on the first flashMlaWithKvcache call that uses it (reading cacheSeqlens
 * and blockTable back once, to schedule and to check them), then reused while the shapes and
 * seqlens stay the same. Sequences that change length need a new one (or pass `hostSeqlens`): the
 * GPU's seqlens are not read again, so reusing a schedule after they changed is the caller's error
 * (FlashMlaArgs.verify finds it).
 *
 * Replayable form (`getMlaMetadata({ maxSeqlen })`, what a recorded decode step uses): the buffers
 * are sized for any seqlens up to maxSeqlen (a fixed number of work items and partial-output slots,
 * the grid covering them all, items past the schedule's marked empty so their workgroups exit), and
 * `update(seqlens)` reschedules on the CPU and rewrites the item list and splits with writeBuffer.
 * Launches planned with it stay valid across updates.
 */
export class MlaSchedMeta {
  key?: SchedKey;
  seqlens?: Int32Array;
  schedule?: MlaSchedule;
  /** Workgroup parts the work is cut into (from the device unless given). */
  parts?: number;
  /** Replayable only: the longest seqlen update() accepts. */
  readonly maxSeqlen?: number;
  /** Work items the decode grid covers and partial-output slots the scratch holds (replayable: upper bounds). */
  itemCap = 0;
  slotCap = 0;
  work?: Tensor;
  splits?: Tensor;
  scratch?: Tensor;
  private combineAll = false;
  constructor(opts: { parts?: number; maxSeqlen?: number } = {}) {
    if (opts.parts !== undefined && !(Number.isInteger(opts.parts) && opts.parts >= 1)) fail('getMlaMetadata', 'parts', 'a positive integer', opts.parts);
    if (opts.maxSeqlen !== undefined && !(Number.isInteger(opts.maxSeqlen) && opts.maxSeqlen >= 0)) fail('getMlaMetadata', 'maxSeqlen', 'a non-negative integer', opts.maxSeqlen);
    this.parts = opts.parts;
    this.maxSeqlen = opts.maxSeqlen;
  }
  get initialized(): boolean {
    return this.key !== undefined;
  }
  get replayable(): boolean {
    return this.maxSeqlen !== undefined;
  }

  /** Sizes the buffers (first use): replayable for any seqlens up to maxSeqlen, else for this schedule. */
  init(ctx: GpuContext, key: SchedKey, seqlens: Int32Array, parts: number, rowsPerBatch: number, dv: number, combineAll: boolean): void {
    const b = seqlens.length;
    const unit = this.splitUnit(key, seqlens);
    const fixed = (p: number) => (this.replayable ? replayItemCap(b, this.maxSeqlen!, key.blockSize, p) : undefined);
    let schedule = scheduleSplits(seqlens, unit, parts, { combineAll });
    let slots = fixed(parts) ?? schedule.numSlots;
    // Fewer parts where the partial outputs would not fit one binding.
    const scratchBytes = (n: number) => 4 * n * rowsPerBatch * (dv + 1);
    while (scratchBytes(slots) > ctx.limits.maxStorageBufferBindingSize && parts > 1) {
      parts = Math.ceil(parts / 2);
      schedule = scheduleSplits(seqlens, unit, parts, { combineAll });
      slots = fixed(parts) ?? schedule.numSlots;
    }
    if (scratchBytes(slots) > ctx.limits.maxStorageBufferBindingSize) {
      throw new DeepwgslError(`${WHERE}: the combine scratch for b=${b}, s_q*h_q=${rowsPerBatch}, dv=${dv} exceeds maxStorageBufferBindingSize; split the batch`);
    }
    this.destroy();
    this.key = key;
    this.parts = parts;
    this.combineAll = combineAll;
    this.itemCap = fixed(parts) ?? schedule.items.length;
    this.slotCap = slots;
    this.work = createTensor(ctx, [this.itemCap, 4], 'i32', 'mla-work');
    this.splits = createTensor(ctx, [b, 2], 'i32', 'mla-splits');
    this.scratch = createTensor(ctx, [Math.max(1, slots * rowsPerBatch * (dv + 1))], 'f32', 'mla-scratch');
    this.write(seqlens, schedule);
  }

  /** Replayable: schedules these seqlens (the batch's, [b]) and rewrites the item list and splits for the next launches. */
  update(seqlens: ArrayLike<number>): void {
    const where = 'MlaSchedMeta.update';
    if (!this.replayable) throw new DeepwgslError(`${where}: only a replayable schedMeta (getMlaMetadata({ maxSeqlen })) is updated; this one is reused only for the seqlens it was made for`);
    if (!this.initialized) throw new DeepwgslError(`${where}: plan a flashMlaWithKvcache call with this schedMeta first (it sizes the buffers)`);
    if (seqlens.length !== this.key!.b) fail(where, 'seqlens.length', `b (${this.key!.b})`, seqlens.length);
    const lens = Int32Array.from(seqlens);
    const bad = lens.findIndex((v) => !(v >= 0 && v <= this.maxSeqlen!));
    if (bad >= 0) fail(where, `seqlens[${bad}]`, `in 0..${this.maxSeqlen} (the maxSeqlen this schedule was planned for)`, lens[bad]);
    this.write(lens, scheduleSplits(lens, this.splitUnit(this.key!, lens), this.parts!, { combineAll: this.combineAll }));
  }

  /**
   * Positions per unit of split work: cache blocks, as upstream; a replayable schedule (a decoder's,
   * short sequences at small batch) splits replayUnits' fine or coarse unit apart (by the batch's
   * work), so a sequence shorter than a block still spreads over several workgroups.
   */
  private splitUnit(key: SchedKey, seqlens: Int32Array): number {
    if (!this.replayable) return key.blockSize;
    const { fine, coarse } = replayUnits(key.blockSize);
    const items = seqlens.reduce((a, n) => a + Math.ceil(Math.max(0, n) / fine), 0);
    return items <= REPLAY_UNIT.fineItems ? fine : coarse;
  }

  private write(seqlens: Int32Array, schedule: MlaSchedule): void {
    // Items past the schedule's have batch -1: their workgroups exit at once.
    const work = new Int32Array(4 * this.itemCap).fill(-1);
    schedule.items.forEach((w, i) => work.set([w.batch, w.start, w.end, w.slot], 4 * i));
    const queue = this.work!.ctx.device.queue;
    queue.writeBuffer(this.work!.buffer, this.work!.byteOffset, work);
    queue.writeBuffer(this.splits!.buffer, this.splits!.byteOffset, Int32Array.from(schedule.splits.flatMap((x) => [x.first, x.count])));
    this.seqlens = seqlens;
    this.schedule = schedule;
  }

  destroy(): void {
    for (const t of [this.work, this.splits, this.scratch]) t?.destroy();
  }
}

/** A replayable schedule's two split units for this block size (items need not align to blocks, but stay inside them). */
function replayUnits(blockSize: number): { fine: number; coarse: number } {
  return { fine: Math.min(blockSize, REPLAY_UNIT.fine), coarse: Math.min(blockSize, REPLAY_UNIT.coarse) };
}

/** The most items a replayable schedule makes for b sequences of at most maxLen positions, at either of its units. */
function replayItemCap(b: number, maxLen: number, blockSize: number, parts: number): number {
  const { fine, coarse } = replayUnits(blockSize);
  // At the fine unit the sequences hold at most fineItems units, one more piece each where one is empty.
  return Math.max(maxScheduleItems(b, maxLen, coarse, parts), Math.min(maxScheduleItems(b, maxLen, fine, parts), REPLAY_UNIT.fineItems + b));
}

/**
 * An empty scheduling object; the schedule is made on first use (upstream's current behaviour).
 * With `maxSeqlen`, a replayable one: see MlaSchedMeta.
 */
export function getMlaMetadata(opts: { parts?: number; maxSeqlen?: number } = {}): MlaSchedMeta {
  return new MlaSchedMeta(opts);
}

export interface FlashMlaArgs {
  /** [b, s_q, h_q, d] bf16 (upstream), f16 or f32. */
  q: Tensor;
  /** [numBlocks, blockSize, h_kv, d] (bf16/f16), or [numBlocks, blockSize, h_kv, bytesPerToken] e4m3 for 'fp8'. */
  kcache: Tensor;
  /** [b, maxBlocksPerSeq] i32 (dense). */
  blockTable?: Tensor;
  /** [b] i32 (dense). */
  cacheSeqlens?: Tensor;
  headDimV: number;
  schedMeta: MlaSchedMeta;
  softmaxScale?: number;
  causal?: boolean;
  kvFormat?: KvFormat;
  /** [b, s_q, topk] i32, block * blockSize + offset, -1 (or any id outside the cache) skipped: sparse attention. */
  indices?: Tensor;
  /** [b] i32: only the first topkLength[b] indices count. */
  topkLength?: Tensor;
  /** [h_q] f32: out *= exp(lse) / (exp(lse) + exp(sink)); lse unchanged. */
  attnSink?: Tensor;
  /**
   * Host copy of cacheSeqlens: spares the read-back when the schedule is made, and is checked on
   * reuse. It must equal cacheSeqlens on the GPU (the caller's contract: `verify` checks it).
   */
  hostSeqlens?: Int32Array;
  /**
   * Debug (tests turn it on): read cacheSeqlens and blockTable back on every call and check them
   * against hostSeqlens, against the seqlens a reused schedMeta was made (or updated) for, and the
   * block ids they use against the cache. Without it those are the caller's contract, as upstream's:
   * the GPU's seqlens are not read again after the schedule is made.
   */
  verify?: boolean;
  out?: Tensor;
  lse?: Tensor;
  config?: Partial<MlaConfig>;
}

interface Shapes {
  b: number;
  sQ: number;
  hQ: number;
  d: number;
  dv: number;
  hKv: number;
  numBlocks: number;
  blockSize: number;
  maxBlocks: number;
  topk: number | null;
  layout: KvLayout;
  qDtype: MlaActDtype;
}

function validate(a: FlashMlaArgs): Shapes {
  const q = expectTensor(WHERE, 'q', a.q, { dtype: ['bf16', 'f16', 'f32'] });
  if (q.shape.length !== 4) fail(WHERE, 'q.shape', 'rank 4 [b, s_q, h_q, d]', q.shape);
  const [b, sQ, hQ, dim] = q.shape;
  if (b < 1 || sQ < 1 || hQ < 1 || dim < 1) fail(WHERE, 'q.shape', 'all dimensions >= 1', q.shape);
  const dv = a.headDimV;
  if (!Number.isInteger(dv) || dv < 1 || dv > dim) fail(WHERE, 'headDimV', `an integer in 1..d (${dim})`, dv);
  const layout = kvLayout(WHERE, a.kvFormat ?? 'bf16', dim, dv);
  const k = expectTensor(WHERE, 'kcache', a.kcache, { dtype: layout.dtype });
  if (k.shape.length !== 4 || k.shape[3] !== layout.rowElems) {
    fail(WHERE, 'kcache.shape', `[numBlocks, blockSize, h_kv, ${layout.rowElems}] for kvFormat '${layout.format}' and d=${dim}`, k.shape);
  }
  const [numBlocks, blockSize, hKv] = k.shape;
  if (numBlocks < 1 || blockSize < 1 || hKv < 1) fail(WHERE, 'kcache.shape', 'numBlocks, blockSize, h_kv >= 1', k.shape);
  if (hQ % hKv !== 0) fail(WHERE, 'q heads', `a multiple of kcache's h_kv (${hKv})`, hQ);
  if (a.softmaxScale !== undefined && !Number.isFinite(a.softmaxScale)) fail(WHERE, 'softmaxScale', 'a finite number', a.softmaxScale);
  if (a.attnSink !== undefined) expectTensor(WHERE, 'attnSink', a.attnSink, { dtype: 'f32', shape: [hQ] });
  let topk: number | null = null;
  let maxBlocks = 0;
  if (a.indices !== undefined) {
    if (a.causal) fail(WHERE, 'causal', 'false when indices are given (sparse attention has no causal mask)', true);
    const ind = expectTensor(WHERE, 'indices', a.indices, { dtype: 'i32', shape: [b, sQ, null] });
    topk = ind.shape[2];
    if (topk < 1) fail(WHERE, 'indices.shape[2] (topk)', '>= 1', topk);
    if (a.topkLength !== undefined) expectTensor(WHERE, 'topkLength', a.topkLength, { dtype: 'i32', shape: [b] });
  } else {
    if (a.topkLength !== undefined) fail(WHERE, 'topkLength', 'absent without indices', 'a Tensor');
    const bt = expectTensor(WHERE, 'blockTable', a.blockTable, { dtype: 'i32', shape: [b, null] });
    maxBlocks = bt.shape[1];
    expectTensor(WHERE, 'cacheSeqlens', a.cacheSeqlens, { dtype: 'i32', shape: [b] });
  }
  if (a.hostSeqlens !== undefined && a.hostSeqlens.length !== b) fail(WHERE, 'hostSeqlens.length', `b (${b})`, a.hostSeqlens.length);
  return { b, sQ, hQ, d: dim, dv, hKv, numBlocks, blockSize, maxBlocks, topk, layout, qDtype: q.dtype as MlaActDtype };
}

/** Dense inputs are checked once, when the schedule is made: seqlens within the blocks given, used block ids inside the cache. */
async function checkDense(a: FlashMlaArgs, s: Shapes, seqlens: Int32Array): Promise<void> {
  const table = (await readTensor(a.blockTable!)) as Int32Array;
  for (let i = 0; i < s.b; i++) {
    const len = seqlens[i];
    if (len < 0 || len > s.maxBlocks * s.blockSize) {
      fail(WHERE, `cacheSeqlens[${i}]`, `in 0..${s.maxBlocks * s.blockSize} (blockTable holds ${s.maxBlocks} blocks of ${s.blockSize})`, len);
    }
    for (let j = 0; j < Math.ceil(len / s.blockSize); j++) {
      const id = table[i * s.maxBlocks + j];
      if (id < 0 || id >= s.numBlocks) fail(WHERE, `blockTable[${i}, ${j}]`, `a block id in 0..${s.numBlocks - 1} (used by cacheSeqlens[${i}] = ${len})`, id);
    }
  }
}

/** verify: cacheSeqlens on the GPU are those hostSeqlens and the schedule say, and the block ids they use are inside the cache. */
async function verifyDense(a: FlashMlaArgs, s: Shapes, meta: MlaSchedMeta): Promise<void> {
  const gpu = (await readTensor(a.cacheSeqlens!)) as Int32Array;
  const show = (x: ArrayLike<number>) => `[${Array.from(x).join(', ')}]`;
  const differs = (x: ArrayLike<number>) => gpu.some((v, i) => v !== x[i]);
  if (a.hostSeqlens && differs(a.hostSeqlens)) {
    throw new DeepwgslError(`${WHERE}: hostSeqlens ${show(a.hostSeqlens)} differ from cacheSeqlens on the GPU ${show(gpu)}; hostSeqlens must be a copy of cacheSeqlens`);
  }
  if (differs(meta.seqlens!)) {
    throw new DeepwgslError(
      `${WHERE}: cacheSeqlens on the GPU ${show(gpu)} differ from the ${show(meta.seqlens!)} schedMeta was made for; ` +
        'after seqlens change call getMlaMetadata() for a new schedule (or update() a replayable one)',
    );
  }
  await checkDense(a, s, gpu);
}

function keyOf(a: FlashMlaArgs, s: Shapes): SchedKey {
  return { b: s.b, sQ: s.sQ, hQ: s.hQ, blockSize: s.blockSize, hKv: s.hKv, causal: a.causal ?? false, kvFormat: s.layout.format, topk: s.topk, sink: a.attnSink !== undefined };
}

function checkKey(meta: MlaSchedMeta, key: SchedKey): void {
  for (const [k, v] of Object.entries(key) as [keyof SchedKey, unknown][]) {
    if (meta.key![k] !== v) {
      throw new DeepwgslError(
        `${WHERE}: schedMeta was made for ${k} = ${String(meta.key![k])}, this call has ${String(v)}; ` +
          'reuse a schedMeta only while shapes, flags and seqlens stay the same (call getMlaMetadata() for a new one)',
      );
    }
  }
}

/** Query rows one workgroup serves: all (token, head) pairs of a kv head (dense) or the heads of one token (sparse). */
function rowsPerGroup(s: Shapes): number {
  return (s.topk === null ? s.sQ : 1) * (s.hQ / s.hKv);
}

/**
 * The heuristic tiles. `shortItems`: the schedule's work items hold few positions (a replayable
 * schedule splits 8-16 positions apart: a decode step), so latency counts, i.e. the rounds per tile.
 */
export function defaultMlaConfig(ctx: GpuContext, s: { d: number; dv: number; mRows: number; shortItems?: boolean }): MlaConfig {
  const mt = Math.min(32, nextPow2(s.mRows));
  // The tiled kernel: enough score columns (wg / (mt / 4)) that 4 vec4 output columns each cover dv.
  const mq = Math.max(1, mt / 4);
  const cols = Math.max(nextPow2(Math.ceil(Math.ceil(s.dv / 4) / 4)), 32 / Math.min(4, mq));
  const wg = Math.min(ctx.limits.maxComputeInvocationsPerWorkgroup, Math.max(32, mq * cols));
  // Staging per round (dk channels, bnv V rows), measured on an H200 (v3, two staging buffers): mt=32
  // best at 16/2, fewer rows at 8/2 (every bigger round slower: more staged registers); short items
  // take 16/2 (half the rounds of 8/2: each round waits on a global load). Software adapters take
  // the smallest: their compilers take minutes over the unrolled copies.
  const staging = [[16, 2], [8, 2], [4, 1]];
  const order = ctx.isSoftware ? staging.reverse() : mt < 32 && !s.shortItems ? staging.slice(1) : staging;
  for (const [dk, bnv] of order) {
    const c: MlaConfig = { kernel: 'tiled', wg, mt, bn: (16 * wg) / mt, dk, bnv };
    const shape = tiledShape(s, c);
    if (typeof shape !== 'string' && shape.bytes <= ctx.limits.maxComputeWorkgroupStorageSize) return c;
  }
  // The row kernel (fewer than 4 query rows, or little workgroup memory), tiles measured best on an H100.
  const rmt = Math.min(16, mt);
  const rwg = Math.min(256, 16 * rmt, ctx.limits.maxComputeInvocationsPerWorkgroup);
  return { kernel: 'rows', wg: rwg, mt: Math.min(rmt, rwg), bn: Math.min(8, maxBn(ctx, s.d, rwg, Math.min(rmt, rwg))) };
}

function maxBn(ctx: GpuContext, dim: number, wg: number, mt: number): number {
  // Per cache row of a tile: its K words, WG + 1 partial sums, MT scores, its row id.
  const perRow = 4 * (Math.ceil(dim / 2) + wg + 1 + mt + 1);
  return Math.max(0, Math.min(16, Math.floor((ctx.limits.maxComputeWorkgroupStorageSize - 16) / perRow)));
}

/** Work-item target: WebGPU exposes no SM count, so a fixed budget of workgroups in flight, small on CPU adapters. */
export function defaultMlaParts(ctx: GpuContext, groupsPerItem: number): number {
  const target = ctx.isSoftware ? 8 : 1024;
  return Math.max(1, Math.ceil(target / groupsPerItem));
}

const DecodeParams = d.struct({
  s_q: d.u32,
  h_q: d.u32,
  h_kv: d.u32,
  hpk: d.u32,
  m_rows: d.u32,
  mtiles: d.u32,
  topk: d.u32,
  has_topk_len: d.u32,
  num_rows: d.u32,
  num_blocks: d.u32,
  max_blocks: d.u32,
  block_size: d.u32,
  causal: d.u32,
  num_slots: d.u32,
  inf_bits: d.u32,
  scale: d.f32,
});

const CombineParams = d.struct({ b: d.u32, s_q: d.u32, h_q: d.u32, num_slots: d.u32, chunks: d.u32, grid_x: d.u32, inf_bits: d.u32 });

function ioConsts(s: Shapes, out: Tensor): Record<string, number> {
  return { DV: s.dv, DVW: Math.ceil(s.dv / 2), OUT_KIND: KIND[s.qDtype], OUT_PITCH: out.pitch };
}

/** The derived tile shape of the GEMM-shaped kernel, or why this config cannot run it. */
function tiledShape(s: { dv: number }, c: MlaConfig): Record<string, number> | string {
  const { wg, mt, bn } = c;
  const dk = c.dk ?? 32;
  const bnv = c.bnv ?? 8;
  // 4 x 4 register tiles of scores over an mt x bn tile, then 4 rows x vc vec4 columns of the output.
  if (mt < 4 || mt % 4 !== 0 || wg % mt !== 0 || wg % 32 !== 0) return 'mt a multiple of 4 dividing wg, wg a multiple of 32';
  if (bn !== (16 * wg) / mt) return `bn = 16 * wg / mt (${(16 * wg) / mt})`;
  const mq = mt / 4;
  const gaN = bn / 4;
  // Lanes of each 32 invocations: LM rows x LN columns.
  const lm = Math.min(4, mq);
  const ln = 32 / lm;
  if (gaN % ln !== 0) return `wg / (mt / 4) a multiple of ${ln}`;
  if (dk % 4 !== 0 || dk < 4 || bn % bnv !== 0) return 'dk a multiple of 4 and bnv dividing bn';
  const dv4 = Math.ceil(s.dv / 4);
  // Output vec4 columns per invocation: as few as cover dv with gaN invocations per row.
  const vc = Math.ceil(dv4 / gaN);
  if (vc > 4) return `4 * (wg / (mt / 4)) >= ceil(dv / 4) output vec4s (dv=${s.dv}: more wg or fewer mt)`;
  const ks4 = dk / 4 + 1;
  const vs = vc * gaN;
  const qpt = Math.ceil((mt * dk) / 4 / wg);
  const kpt = Math.ceil((bn * dk) / 4 / wg);
  const vpt = Math.ceil((bnv * vs) / wg);
  // Staged vec4s per invocation are unrolled register copies: more would spill (and bloat the code).
  if (Math.max(qpt, kpt, vpt) > 8) return `at most 8 staged vec4s per invocation (dk * 4 / mt and bnv * 16 / mt <= 8; this one: ${Math.max(kpt, vpt)})`;
  const stage4 = Math.max(bn * ks4, bnv * vs);
  return {
    MQ: mq,
    GA_N: gaN,
    LM: lm,
    LN: ln,
    TPR: wg / mt,
    CPT: bn / (wg / mt),
    VS: vs,
    VC: vc,
    DV4: dv4,
    KS4: ks4,
    STAGE4: stage4,
    QPT: qpt,
    KPT: kpt,
    VPT: vpt,
    DK: dk,
    BNV: bnv,
    // q and the stage twice (two buffers used in turn).
    bytes: 32 * mt * ks4 + 32 * stage4 + 4 * bn * mt + 4 * wg + 12 * mt + 4 * bn + 16,
  };
}

/** The cache in one binding (split: 0), or in `split` windows of `bytes` (bindings 2, 9, 10, 11). */
interface CacheWindows {
  bytes: number;
  split: number;
}

const MAX_WINDOWS = 4;
const WINDOW_BINDINGS = [2, 9, 10, 11];

function cacheWindows(ctx: GpuContext, k: Tensor, given?: number): CacheWindows {
  const align = ctx.limits.minStorageBufferOffsetAlignment;
  const max = ctx.limits.maxStorageBufferBindingSize;
  const bytes = given ?? Math.floor(max / align) * align;
  if (!Number.isInteger(bytes) || bytes < align || bytes % align !== 0 || bytes > max) fail(WHERE, 'config.cacheWindow', `a multiple of ${align} in ${align}..${max}`, bytes);
  if (given === undefined && k.byteLength <= max) return { bytes, split: 0 };
  const split = Math.ceil(k.byteLength / bytes);
  if (split > MAX_WINDOWS) fail(WHERE, 'kcache', `at most ${MAX_WINDOWS} storage bindings of ${bytes} bytes (maxStorageBufferBindingSize ${max})`, `${k.byteLength} bytes`);
  // The decode kernels' other storage buffers: q, rows_a, rows_b, work, out, lse, scratch.
  const need = 7 + MAX_WINDOWS;
  if (ctx.limits.maxStorageBuffersPerShaderStage < need) {
    fail(WHERE, 'kcache', `within one storage binding (${max} bytes): a split cache needs ${need} storage buffers per stage, this device allows ${ctx.limits.maxStorageBuffersPerShaderStage}`, `${k.byteLength} bytes`);
  }
  if (k.byteOffset % align !== 0) fail(WHERE, 'kcache byte offset', `a multiple of ${align} (minStorageBufferOffsetAlignment) for a split cache`, k.byteOffset);
  return { bytes, split };
}

/** The cache's bindings: index = binding number (holes undefined). */
function cacheBindings(k: Tensor, w: CacheWindows): (GPUBufferBinding | GPUBuffer | undefined)[] {
  const res: (GPUBufferBinding | GPUBuffer | undefined)[] = [];
  if (w.split === 0) {
    res[2] = k.binding(WHERE, 'kcache');
    return res;
  }
  WINDOW_BINDINGS.forEach((binding, i) => {
    const off = i * w.bytes;
    res[binding] = off < k.byteLength ? { buffer: k.buffer, offset: k.byteOffset + off, size: Math.min(w.bytes, k.byteLength - off) } : { buffer: k.buffer, offset: k.byteOffset, size: 4 };
  });
  return res;
}

function decodeModule(s: Shapes, c: MlaConfig, q: Tensor, k: Tensor, out: Tensor, win: CacheWindows): KernelModule {
  const P = c.wg / c.mt;
  const DW = Math.ceil(s.d / 2);
  const consts = {
    WG: c.wg,
    MT: c.mt,
    P,
    BN: c.bn,
    D: s.d,
    DW,
    QN: Math.ceil(DW / P),
    ON: Math.ceil(Math.ceil(s.dv / 2) / P),
    Q_KIND: KIND[s.qDtype],
    Q_PITCH: q.pitch,
    K_KIND: K_KIND[s.layout.format],
    K_TILE_KIND: s.layout.format === 'f16' ? 2 : 1,
    K_PITCH_WORDS: (k.pitch * (s.layout.format === 'fp8' ? 1 : 2)) / 4,
    D_NOPE: s.layout.dNope,
    FP8_TILE,
    FP8_TILES: s.layout.tiles,
    SPARSE: s.topk !== null,
    KWIN: win.split ? win.bytes / 4 : 0,
    ...ioConsts(s, out),
  };
  const tiled = c.kernel === 'tiled' ? (tiledShape(s, c) as Record<string, number>) : undefined;
  if (tiled) delete tiled.bytes;
  const all = tiled ? { ...consts, ...tiled, NK: Math.ceil(s.d / tiled.DK) } : consts;
  return {
    kernel: tiled ? 'mla.decode_tiled' : 'mla.decode',
    config: all,
    template: tiled ? { file: 'mla/decode_tiled.wgsl', code: decodeTiledWgsl } : { file: 'mla/decode.wgsl', code: decodeWgsl },
    helpers: [
      { file: 'common/fp8.wgsl', code: fp8Wgsl },
      { file: 'mla/pack.wgsl', code: packWgsl },
      win.split ? { file: 'mla/kcache_split.wgsl', code: kcacheSplitWgsl } : { file: 'mla/kcache_one.wgsl', code: kcacheOneWgsl },
      { file: 'mla/load.wgsl', code: loadWgsl },
      { file: 'mla/store_out.wgsl', code: storeWgsl },
      { file: 'mla/rows.wgsl', code: rowsWgsl },
    ],
    consts: all,
    structs: { Params: DecodeParams },
  };
}

/** The combine's lanes: WW output words of a row, each summed over SG interleaved shares of the partials, U loads in flight per lane. */
function combineShape(dv: number): { WG: number; WW: number; SG: number; U: number } {
  const ww = Math.min(64, nextPow2(Math.ceil(dv / 2)));
  return { WG: 4 * ww, WW: ww, SG: 4, U: 4 };
}

function combineModule(s: Shapes, out: Tensor, hasSink: boolean): KernelModule {
  const consts = { ...combineShape(s.dv), HAS_SINK: hasSink, ...ioConsts(s, out) };
  return {
    kernel: 'mla.combine',
    config: consts,
    template: { file: 'mla/combine.wgsl', code: combineWgsl },
    helpers: [
      { file: 'mla/pack.wgsl', code: packWgsl },
      { file: 'mla/store_out.wgsl', code: storeWgsl },
    ],
    consts,
    structs: { Params: CombineParams },
  };
}

function resolveConfig(ctx: GpuContext, s: Shapes, given?: Partial<MlaConfig>, shortItems = false): MlaConfig {
  const base = defaultMlaConfig(ctx, { d: s.d, dv: s.dv, mRows: rowsPerGroup(s), shortItems });
  const c: MlaConfig = given?.kernel !== undefined && given.kernel !== base.kernel ? ({ ...given } as MlaConfig) : { ...base, ...given };
  const { wg, mt, bn } = c;
  if (c.kernel !== 'rows' && c.kernel !== 'tiled') fail(WHERE, 'config.kernel', "'rows' or 'tiled'", c.kernel);
  if (!Number.isInteger(wg) || wg < 1 || wg > ctx.limits.maxComputeInvocationsPerWorkgroup) {
    fail(WHERE, 'config.wg', `an integer in 1..${ctx.limits.maxComputeInvocationsPerWorkgroup}`, wg);
  }
  if (!Number.isInteger(mt) || mt < 1 || wg % mt !== 0 || (mt & (mt - 1)) !== 0) fail(WHERE, 'config.mt', `a power of two dividing wg (${wg})`, mt);
  if (c.kernel === 'tiled') {
    const shape = tiledShape(s, c);
    if (typeof shape === 'string') fail(WHERE, 'config', `a tiled config with ${shape}`, JSON.stringify(c));
    if (shape.bytes > ctx.limits.maxComputeWorkgroupStorageSize) {
      fail(WHERE, 'config', `a tiled config within maxComputeWorkgroupStorageSize (${ctx.limits.maxComputeWorkgroupStorageSize} bytes; this one needs ${shape.bytes})`, JSON.stringify(c));
    }
  } else if (!Number.isInteger(bn) || bn < 1 || bn > maxBn(ctx, s.d, wg, mt)) {
    fail(WHERE, 'config.bn', `an integer in 1..${maxBn(ctx, s.d, wg, mt)} (maxComputeWorkgroupStorageSize ${ctx.limits.maxComputeWorkgroupStorageSize} bytes, d=${s.d})`, bn);
  }
  return c;
}

export interface PlannedMla {
  launch: Launch;
  out: Tensor;
  lse: Tensor;
  config: MlaConfig;
}

/** Validates, schedules (first use of schedMeta), compiles (cached) and binds; `launch.run()` executes. */
export async function planFlashMla(ctx: GpuContext, a: FlashMlaArgs): Promise<PlannedMla> {
  const s = validate(a);
  if (!(a.schedMeta instanceof MlaSchedMeta)) fail(WHERE, 'schedMeta', 'the object getMlaMetadata() returns', typeof a.schedMeta);
  const meta = a.schedMeta;
  const config = resolveConfig(ctx, s, a.config, meta.replayable);
  const win = cacheWindows(ctx, a.kcache, config.cacheWindow);
  const mRows = rowsPerGroup(s);
  const mtiles = Math.ceil(mRows / config.mt);
  const groupsPerItem = s.hKv * mtiles * (s.topk === null ? 1 : s.sQ);
  const key = keyOf(a, s);
  const rowsPerBatch = s.sQ * s.hQ;
  const outShape = [s.b, s.sQ, s.hQ, s.dv];
  const lseShape = [s.b, s.hQ, s.sQ];
  if (a.out !== undefined) expectTensor(WHERE, 'out', a.out, { dtype: s.qDtype, shape: outShape });
  if (a.lse !== undefined) expectTensor(WHERE, 'lse', a.lse, { dtype: 'f32', shape: lseShape });

  if (meta.initialized) {
    checkKey(meta, key);
    if (!meta.replayable && a.hostSeqlens && !a.hostSeqlens.every((v, i) => v === meta.seqlens![i])) {
      throw new DeepwgslError(`${WHERE}: hostSeqlens differ from those schedMeta was made for; call getMlaMetadata() for a new schedule`);
    }
  } else {
    if (meta.replayable && s.topk !== null) fail(WHERE, 'schedMeta', 'a plain getMlaMetadata() with indices (a replayable one schedules dense seqlens)', 'a replayable schedMeta');
    const seqlens =
      s.topk !== null ? new Int32Array(s.b).fill(s.topk) : (a.hostSeqlens ?? ((await readTensor(a.cacheSeqlens!)) as Int32Array));
    if (s.topk === null) await checkDense(a, s, seqlens);
    const over = meta.replayable ? seqlens.findIndex((v) => v > meta.maxSeqlen!) : -1;
    if (over >= 0) fail(WHERE, `cacheSeqlens[${over}]`, `at most the schedMeta's maxSeqlen (${meta.maxSeqlen})`, seqlens[over]);
    if (meta.replayable && meta.maxSeqlen! > s.maxBlocks * s.blockSize) {
      fail(WHERE, 'schedMeta.maxSeqlen', `at most what blockTable holds (${s.maxBlocks} blocks of ${s.blockSize})`, meta.maxSeqlen);
    }
    meta.init(ctx, key, seqlens, meta.parts ?? defaultMlaParts(ctx, groupsPerItem), rowsPerBatch, s.dv, a.attnSink !== undefined);
  }
  if (a.verify && s.topk === null) await verifyDense(a, s, meta);
  if (meta.itemCap > ctx.limits.maxComputeWorkgroupsPerDimension || groupsPerItem > ctx.limits.maxComputeWorkgroupsPerDimension) {
    throw new DeepwgslError(`${WHERE}: ${meta.itemCap} work items x ${groupsPerItem} head groups exceed maxComputeWorkgroupsPerDimension; split the batch`);
  }
  const out = a.out ?? createTensor(ctx, outShape, s.qDtype, 'mla-out');
  const lse = a.lse ?? createTensor(ctx, lseShape, 'f32', 'mla-lse');
  const dummy = (n: number) => uploadTensor(ctx, new Int32Array(Math.max(1, n)), [Math.max(1, n)], 'i32', 'mla-unused');
  const rowsA = s.topk !== null ? a.indices! : a.blockTable!;
  const rowsB = s.topk !== null ? (a.topkLength ?? dummy(s.b)) : a.cacheSeqlens!;

  const decode = await ctx.pipelines.get(decodeModule(s, config, a.q, a.kcache, out, win));
  const params = paramsBuffer(ctx, DecodeParams, {
    s_q: s.sQ,
    h_q: s.hQ,
    h_kv: s.hKv,
    hpk: s.hQ / s.hKv,
    m_rows: mRows,
    mtiles,
    topk: s.topk ?? 0,
    has_topk_len: a.topkLength !== undefined ? 1 : 0,
    num_rows: s.numBlocks * s.blockSize,
    num_blocks: s.numBlocks,
    max_blocks: s.maxBlocks,
    block_size: s.blockSize,
    causal: a.causal ? 1 : 0,
    num_slots: meta.slotCap,
    inf_bits: 0x7f800000,
    scale: a.softmaxScale ?? 1 / Math.sqrt(s.d),
  });
  const bind = (t: Tensor, name: string) => t.binding(WHERE, name);
  const resources = cacheBindings(a.kcache, win);
  [
    params,
    bind(a.q, 'q'),
    resources[2],
    bind(rowsA, s.topk !== null ? 'indices' : 'blockTable'),
    bind(rowsB, s.topk !== null ? 'topkLength' : 'cacheSeqlens'),
    bind(meta.work!, 'work'),
    bind(out, 'out'),
    bind(lse, 'lse'),
    bind(meta.scratch!, 'scratch'),
  ].forEach((r, i) => (resources[i] = r));
  const dispatches: Dispatch[] = [
    {
      pipeline: decode,
      bindGroup: bindGroup(ctx, decode, resources),
      // x: an item's head groups and query-row tiles, adjacent in launch order, so that they run
      // together and find each cache row in L2 (1-2% at h_q=128 on an H200: docs/BENCHMARKS.md).
      workgroups: [groupsPerItem, meta.itemCap, 1],
    },
  ];
  if (meta.slotCap > 0) {
    const combine = await ctx.pipelines.get(combineModule(s, out, a.attnSink !== undefined));
    const chunks = Math.ceil(Math.ceil(s.dv / 2) / combineShape(s.dv).WW);
    const g = grid(ctx, s.b * rowsPerBatch * chunks);
    const cparams = paramsBuffer(ctx, CombineParams, { b: s.b, s_q: s.sQ, h_q: s.hQ, num_slots: meta.slotCap, chunks, grid_x: g[0], inf_bits: 0x7f800000 });
    // Without a sink the combine never reads binding 3.
    const sink = a.attnSink ?? unusedTensor(ctx);
    dispatches.push({
      pipeline: combine,
      bindGroup: bindGroup(ctx, combine, [cparams, bind(meta.scratch!, 'scratch'), bind(meta.splits!, 'splits'), bind(sink, 'attnSink'), bind(out, 'out'), bind(lse, 'lse')]),
      workgroups: g,
    });
  }
  // Upstream's counts: flops over the mean attended length; bytes = q + the cache rows read + out.
  const lens = meta.seqlens!;
  const mean = lens.reduce((x, v) => x + v, 0) / s.b;
  const rowBytes = s.layout.format === 'fp8' ? s.layout.rowElems : 2 * s.d;
  const actBytes = s.qDtype === 'f32' ? 4 : 2;
  const bytes = s.b * (rowsPerBatch * s.d * actBytes + mean * s.hKv * rowBytes + rowsPerBatch * s.dv * actBytes);
  const flops = s.b * s.hQ * s.sQ * mean * 2 * (s.d + s.dv);
  const launch = new Launch(ctx, dispatches, { kernel: 'mla.decode', config: { ...config, parts: meta.parts, items: meta.itemCap }, bytes, flops });
  return { launch, out, lse, config };
}

/** out [b, s_q, h_q, headDimV] (q's dtype) and lse [b, h_q, s_q] f32; the work is submitted, not awaited. */
export async function flashMlaWithKvcache(ctx: GpuContext, a: FlashMlaArgs): Promise<{ out: Tensor; lse: Tensor }> {
  const { launch, out, lse } = await planFlashMla(ctx, a);
  launch.submit();
  return { out, lse };
}

/** Every tile config worth timing for these arguments (those the device's limits allow). */
// Staging per round (dk, bnv) that autotune tries; software adapters list the light ones first, as
// defaultMlaConfig picks them there (their compilers take minutes, or lose the device, on big rounds).
const STAGINGS = [[32, 8], [16, 8], [32, 4], [16, 4], [8, 2], [4, 1]];

export function mlaCandidates(ctx: GpuContext, a: FlashMlaArgs): MlaConfig[] {
  const s = validate(a);
  const rows = nextPow2(rowsPerGroup(s));
  const out: MlaConfig[] = [];
  for (const mt of [4, 8, 16, 32].filter((m) => m <= Math.max(4, rows))) {
    for (const wg of [32, 64, 128, 256, 512].filter((w) => w <= ctx.limits.maxComputeInvocationsPerWorkgroup && w % mt === 0)) {
      for (const bn of [(16 * wg) / mt]) {
        for (const [dk, bnv] of ctx.isSoftware ? [...STAGINGS].reverse() : STAGINGS) {
          const c: MlaConfig = { kernel: 'tiled', wg, mt, bn, dk, bnv };
          const shape = tiledShape(s, c);
          if (typeof shape !== 'string' && shape.bytes <= ctx.limits.maxComputeWorkgroupStorageSize) out.push(c);
        }
      }
      if (wg / mt <= 32) for (const bn of [4, 8].filter((x) => x <= maxBn(ctx, s.d, wg, mt))) out.push({ kernel: 'rows', wg, mt, bn });
    }
  }
  return out.length ? out : [resolveConfig(ctx, s)];
}

/** Times every candidate tile config on these arguments and remembers the fastest per shape class. */
export async function autotuneMla(
  ctx: GpuContext,
  a: FlashMlaArgs,
  opts: { store?: TuningStore; force?: boolean; iters?: number } = {},
): Promise<AutotuneResult<MlaConfig>> {
  const s = validate(a);
  const first = await planFlashMla(ctx, a);
  return autotune(ctx, {
    kernel: 'mla.decode',
    shapeKey: `${s.qDtype}|${s.layout.format}|d=${s.d}|dv=${s.dv}|rows=${rowsPerGroup(s)}|${s.topk === null ? 'dense' : 'sparse'}`,
    candidates: mlaCandidates(ctx, a),
    plan: async (config) => (await planFlashMla(ctx, { ...a, out: first.out, lse: first.lse, config })).launch,
    ...opts,
  });
}
