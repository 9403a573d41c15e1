// The GPU forward pass for decode: one new token for each of several sequences per step, over a
// paged latent KV cache (MLA's absorbed form). Activations are f32, or FP8 into the FP8 GEMMs. Per layer:
//   RMSNorm -> q_proj (or q_a_proj) and kv_a_proj_with_mqa as one GEMM over their stacked weights
//   (-> q_a_layernorm, q_b_proj) -> W_UK absorbed into q, q's rope part rotated on the way
//   kv_a_layernorm + rope on k's rope part + the cache append, in one pass (mlaKvAppend)
//   flashMlaWithKvcache (d = kv_lora_rank + rope, dv = kv_lora_rank) -> W_UV -> o_proj adding the residual
//   RMSNorm, dense MLP (down adding the residual) or moeLayer (onto the residual)
// then the final norm and lm_head. The residual stream alternates between two buffers (a GEMM's
// C and D may not alias), so no add pass remains; at batch 1 every launch is latency, so fewer
// launches is what speeds the step up. A forward of one batch shape (entries x tokens per entry) is
// planned once into Launches over tensors made once (StepPlan) and replayed: each step writes only
// the token ids, positions, cache slots, block table, seqlens and MLA's split schedule.
import type { GpuContext } from '../gpu/context.ts';
import { DeepwgslError, fail } from '../gpu/errors.ts';
import { createTensor, DTYPE_BYTES, Tensor } from '../gpu/tensor.ts';
import { Launch } from '../jit/launch.ts';
import { planCast } from '../kernels/cast/cast.ts';
import { denseProblem, planGemm, type GemmProblem } from '../kernels/gemm/gemm.ts';
import { BlockAllocator, MAX_CACHE_SLOTS } from '../kernels/mla/allocator.ts';
import { getMlaMetadata, mlaCandidates, planFlashMla, type FlashMlaArgs, type MlaConfig, type MlaSchedMeta } from '../kernels/mla/mla.ts';
import { planMoeLayer, type MlpWeights, type MoeLayerPlan, type MoeLayerWeights, type MoeWeight } from '../kernels/moe/layer.ts';
import {
  planArgmax,
  planDequant,
  planEmbedding,
  planMlaAbsorbO,
  planMlaAbsorbQ,
  planMlaKvAppend,
  planRmsNorm,
  planSiluMul,
  planSiluMulFused,
  uploadRopeTable,
  type MlaDims,
  type StoredWeight,
} from '../kernels/nn/nn.ts';
import { isMoeLayer, ropeAttentionFactor, ropeInvFreq, type ModelConfig } from './config.ts';
import type { Checkpoint } from './checkpoint.ts';
import type { ModelWeights } from './load.ts';
import { routeConfigOf } from './reference.ts';

export interface DecoderOptions {
  /** Longest sequence (prompt + generated) the cache and rope table hold. Default 256. */
  maxSeqLen?: number;
  /** Sequences decoded together at most. Default 1. */
  maxBatch?: number;
  /** Cache block size in tokens. Default 64. */
  blockSize?: number;
  /** Latent cache format; f16 by default (the cache kernels store 16-bit or FP8 rows). */
  kvFormat?: 'f16' | 'bf16';
  /**
   * 'f32' (default): activations stay f32, FP8 weights are read as FP8 (W8A32).
   * 'fp8': activations of FP8-weight linears are cast to e4m3 with 1x128 scales for the FP8 GEMMs, as
   * DeepSeek's inference does (routed experts too, where their intermediate size is a multiple of 128).
   */
  activations?: 'f32' | 'fp8';
  /** Submits per step (default 8): the GPU runs the first part of a step while the host encodes the rest. */
  submits?: number;
  /**
   * MLA decode tiles for decode steps (one token per entry). Default: DECODE_MLA where this device
   * and shape allow it, else flashMlaWithKvcache's choice (which `{}` asks for).
   */
  mlaConfig?: Partial<MlaConfig>;
}

/** Options with their defaults filled in (mlaConfig stays optional: absent means the decoder's choice). */
type ResolvedOptions = Required<Omit<DecoderOptions, 'mlaConfig'>> & Pick<DecoderOptions, 'mlaConfig'>;

/**
 * MLA tiles for decode steps: the row kernel, 8 cache rows per round, 8 query rows (32 lanes each)
 * per workgroup where the decoder's sequences stay short (maxSeqLen <= MT8_MAX_SEQ), else 16. A
 * replayed step's schedule cuts sequences into items of 8-16 positions, which the tiled kernel's
 * 128-position tiles mostly leave empty while paying all their staging rounds: on an H200 (V2-Lite,
 * seqlens 17..33) this took 1.10 ms per step against 2.89 ms for the default tiles. On an H100 mt8
 * took the step from 5.30 to 4.98 GPU ms/token at context 16 and 5.38 to 5.11 at 1024, but 5.68 to
 * 6.02 at 4000 (docs/BENCHMARKS.md, 2026-12-06).
 */
const DECODE_MLA: Omit<MlaConfig, 'mt'> = { kernel: 'rows', wg: 256, bn: 8 };
const MT8_MAX_SEQ = 2048;

/** The decode tiles for this call (its replayable schedule's maxSeqlen) where this device and these arguments allow them, else undefined (flashMlaWithKvcache's choice). */
export function decodeMlaConfig(ctx: GpuContext, args: FlashMlaArgs): MlaConfig | undefined {
  const want: MlaConfig = { ...DECODE_MLA, mt: (args.schedMeta.maxSeqlen ?? Infinity) <= MT8_MAX_SEQ ? 8 : 16 };
  const same = (x: MlaConfig) => (Object.keys(want) as (keyof MlaConfig)[]).every((k) => x[k] === want[k]);
  return mlaCandidates(ctx, args).find(same);
}

/** A block of a stored weight: rows r0..r1 and columns c0..c1 (default: all). */
interface Piece {
  w: StoredWeight;
  rows?: [number, number];
  cols?: [number, number];
}

const span = (r: [number, number] | undefined, all: number): [number, number] => r ?? [0, all];

/** Encodes copies of src's rows r0..r1, columns c0..c1 to dst from row dstRow on (whole rows at once where they line up). */
function copyBlock(enc: GPUCommandEncoder, src: Tensor, [r0, r1]: [number, number], [c0, c1]: [number, number], dst: Tensor, dstRow: number): void {
  const bpe = DTYPE_BYTES[src.dtype];
  const [sp, dp] = [src.pitch * bpe, dst.pitch * bpe];
  const at = (t: Tensor, pitch: number, r: number, c: number) => t.byteOffset + r * pitch + c * bpe;
  if (c0 === 0 && c1 === src.shape[1] && sp === dp) enc.copyBufferToBuffer(src.buffer, at(src, sp, r0, 0), dst.buffer, at(dst, dp, dstRow, 0), (r1 - r0) * sp);
  else for (let r = r0; r < r1; r++) enc.copyBufferToBuffer(src.buffer, at(src, sp, r, c0), dst.buffer, at(dst, dp, dstRow + r - r0, 0), (c1 - c0) * bpe);
}

/**
 * A stack of weights [groups, rows, cols]: each group's pieces one after another along rows (gate
 * then up), groups stacked (no leading dimension for one group). `stored`: the values as they are
 * stored (one dtype; FP8 with its 128x128 scales, so FP8 pieces must start and end on 128-row and
 * -column blocks, but for a group's last rows); else f32, dequantized on the GPU.
 */
async function stackPieces(ctx: GpuContext, groups: Piece[][], label: string, stored: boolean): Promise<StoredWeight> {
  const sizes = (p: Piece) => [span(p.rows, p.w.t.shape[0]), span(p.cols, p.w.t.shape[1])];
  const rowsPer = groups[0].reduce((a, p) => a + sizes(p)[0][1] - sizes(p)[0][0], 0);
  const [c0, c1] = sizes(groups[0][0])[1];
  const lead = groups.length > 1 ? [groups.length] : [];
  const dtype = stored ? groups[0][0].w.t.dtype : 'f32';
  const t = createTensor(ctx, [...lead, rowsPer, c1 - c0], dtype, label);
  const scale = dtype === 'e4m3' ? createTensor(ctx, [...lead, Math.ceil(rowsPer / 128), Math.ceil((c1 - c0) / 128)], 'f32', `${label}.scales`) : undefined;
  // f32: each weight dequantized once, however many pieces it gives.
  const f32 = new Map<StoredWeight, Tensor>();
  const enc = ctx.device.createCommandEncoder({ label });
  let row = 0;
  let scaleRow = 0;
  for (const group of groups) {
    for (const p of group) {
      let src = p.w.t;
      if (!stored) {
        if (!f32.has(p.w)) {
          const { launch, out } = await planDequant(ctx, p.w);
          launch.submit();
          f32.set(p.w, out);
        }
        src = f32.get(p.w)!;
      }
      const [rows, cols] = sizes(p);
      copyBlock(enc, src, rows, cols, t, row);
      if (scale) {
        const blocks = ([a, b]: [number, number]): [number, number] => [a / 128, Math.ceil(b / 128)];
        copyBlock(enc, p.w.scale!, blocks(rows), blocks(cols), scale, scaleRow);
        scaleRow += blocks(rows)[1] - blocks(rows)[0];
      }
      row += rows[1] - rows[0];
    }
  }
  ctx.device.queue.submit([enc.finish()]);
  if (f32.size) {
    await ctx.sync();
    for (const x of f32.values()) x.destroy();
  }
  return { t, scale };
}

/** Linears over the same input as one GEMM: their weights stacked by rows, where dtypes, widths and FP8 block rows allow (else undefined). */
async function stackLinears(ctx: GpuContext, ws: StoredWeight[], label: string): Promise<StoredWeight | undefined> {
  const [a] = ws;
  const fits = ws.every((w) => w.t.dtype === a.t.dtype && w.t.shape[1] === a.t.shape[1]) && (a.t.dtype !== 'e4m3' || ws.slice(0, -1).every((w) => w.t.shape[0] % 128 === 0));
  return fits ? stackPieces(ctx, [ws.map((w) => ({ w }))], label, true) : undefined;
}

interface LayerWeights {
  inputNorm: Tensor;
  postNorm: Tensor;
  qA?: StoredWeight;
  qANorm?: Tensor;
  qB?: StoredWeight;
  q?: StoredWeight;
  kvA: StoredWeight;
  /** q_proj (or q_a_proj) and kv_a_proj_with_mqa stacked, where they stack: one GEMM for both. */
  qkvA?: StoredWeight;
  kvANorm: Tensor;
  kvB: StoredWeight;
  o: StoredWeight;
  /** gateUp: gate_proj and up_proj stacked, where they stack. */
  dense?: { gate: StoredWeight; up: StoredWeight; down: StoredWeight; gateUp?: StoredWeight };
  moe?: { weights: MoeLayerWeights; bias?: Tensor };
}

export class Decoder {
  readonly allocator: BlockAllocator;
  readonly kcache: Tensor[];
  readonly ropeTable: Tensor;
  readonly maxSeqLen: number;
  private readonly owned: Tensor[] = [];

  private constructor(
    readonly ctx: GpuContext,
    readonly config: ModelConfig,
    readonly weights: ModelWeights,
    readonly layers: LayerWeights[],
    readonly opts: ResolvedOptions,
    /** Expert stacks by weight-name prefix: FP8 (true) or f32 (false). */
    private readonly stackIsFp8: ReadonlyMap<string, boolean>,
  ) {
    const c = config;
    this.maxSeqLen = opts.maxSeqLen;
    const blocks = Math.ceil(opts.maxSeqLen / opts.blockSize) * opts.maxBatch;
    this.allocator = new BlockAllocator(blocks, opts.blockSize);
    const d = c.kvLoraRank + c.qkRopeHeadDim;
    this.kcache = Array.from({ length: c.numLayers }, (_, l) => createTensor(ctx, [blocks, opts.blockSize, 1, d], opts.kvFormat, `kcache.${l}`));
    this.ropeTable = uploadRopeTable(ctx, ropeInvFreq(c), opts.maxSeqLen, ropeAttentionFactor(c));
    this.owned.push(...this.kcache, this.ropeTable);
  }

  /** Prepares per-layer weights (routed and shared experts stacked for moeLayer: FP8 stays FP8, where the block scales allow; else f32). */
  static async create(ctx: GpuContext, ck: Checkpoint, weights: ModelWeights, opts: DecoderOptions = {}): Promise<Decoder> {
    const c = ck.config;
    const o: ResolvedOptions = { maxSeqLen: 256, maxBatch: 1, blockSize: 64, kvFormat: 'f16', activations: 'f32', submits: 8, ...opts };
    if (o.activations !== 'f32' && o.activations !== 'fp8') fail('Decoder', 'activations', "'f32' or 'fp8'", o.activations);
    for (const k of ['maxSeqLen', 'maxBatch', 'blockSize', 'submits'] as const) if (!Number.isInteger(o[k]) || o[k] < 1) fail('Decoder', k, 'a positive integer', o[k]);
    if (o.maxSeqLen > c.maxPositionEmbeddings) fail('Decoder', 'maxSeqLen', `at most max_position_embeddings (${c.maxPositionEmbeddings})`, o.maxSeqLen);
    // The cache is sized before any weight is stacked: a layer's cache is one buffer of i32 slots.
    const rows = Math.ceil(o.maxSeqLen / o.blockSize) * o.blockSize * o.maxBatch;
    const cacheBytes = rows * (c.kvLoraRank + c.qkRopeHeadDim) * DTYPE_BYTES[o.kvFormat];
    if (rows > MAX_CACHE_SLOTS || cacheBytes > ctx.limits.maxBufferSize) {
      fail('Decoder', 'maxBatch x maxSeqLen', `a cache within one buffer per layer (${ctx.limits.maxBufferSize} bytes, ${MAX_CACHE_SLOTS} rows)`, `${o.maxBatch} x ${o.maxSeqLen}: ${rows} rows, ${cacheBytes} bytes`);
    }
    const w = (n: string) => weights.get(n);
    const f32 = (n: string) => weights.get(n).t;
    const layers: LayerWeights[] = [];
    const stacked: Tensor[] = [];
    const stackIsFp8 = new Map<string, boolean>();
    for (let l = 0; l < c.numLayers; l++) {
      const p = `model.layers.${l}`;
      const a = `${p}.self_attn`;
      const lw: LayerWeights = {
        inputNorm: f32(`${p}.input_layernorm.weight`),
        postNorm: f32(`${p}.post_attention_layernorm.weight`),
        kvA: w(`${a}.kv_a_proj_with_mqa.weight`),
        kvANorm: f32(`${a}.kv_a_layernorm.weight`),
        kvB: w(`${a}.kv_b_proj.weight`),
        o: w(`${a}.o_proj.weight`),
      };
      if (c.qLoraRank === null) lw.q = w(`${a}.q_proj.weight`);
      else Object.assign(lw, { qA: w(`${a}.q_a_proj.weight`), qANorm: f32(`${a}.q_a_layernorm.weight`), qB: w(`${a}.q_b_proj.weight`) });
      lw.qkvA = await stackLinears(ctx, [(lw.q ?? lw.qA)!, lw.kvA], `${a}.q_kv_a`);
      if (isMoeLayer(c, l)) {
        const m = c.moe!;
        const ex = (e: number, proj: string) => w(`${p}.mlp.experts.${e}.${proj}.weight`);
        const all = Array.from({ length: m.nRoutedExperts }, (_, e) => e);
        const sh = (proj: string) => w(`${p}.mlp.shared_experts.${proj}.weight`);
        // The shared experts (n_shared_experts of moe_intermediate_size, concatenated) join the
        // routed ones as their last groups: shared expert s is its gate and up rows and its down
        // columns s * inter .. (s + 1) * inter, taken by every token with weight 1 (moeLayer's
        // sharedInExperts), so the routed experts' GEMMs, SiLU and combine serve them too.
        const inter = ex(0, 'down_proj').t.shape[1];
        const shared = Array.from({ length: m.nSharedExperts }, (_, i) => i);
        const slice = (i: number): [number, number] => [i * inter, (i + 1) * inter];
        const gateUp: Piece[][] = [...all.map((e) => [{ w: ex(e, 'gate_proj') }, { w: ex(e, 'up_proj') }]), ...shared.map((i) => [{ w: sh('gate_proj'), rows: slice(i) }, { w: sh('up_proj'), rows: slice(i) }])];
        const down: Piece[][] = [...all.map((e) => [{ w: ex(e, 'down_proj') }]), ...shared.map((i) => [{ w: sh('down_proj'), cols: slice(i) }])];
        // FP8 stacks keep their block scales only where every piece splits on 128-row and -column blocks.
        const fp8 = [...gateUp.flat(), ...down.flat()].every((x) => x.w.t.dtype === 'e4m3') && inter % 128 === 0;
        const r = [await stackPieces(ctx, gateUp, `${p}.mlp.experts.gateUp`, fp8), await stackPieces(ctx, down, `${p}.mlp.experts.down`, fp8)];
        for (const x of r) stacked.push(x.t, ...(x.scale ? [x.scale] : []));
        const [gu, dn] = r.map((x): MoeWeight => (fp8 ? [x.t, x.scale!] : x.t));
        const experts: MlpWeights = { gateUp: gu, down: dn };
        for (const part of ['experts', 'shared_experts']) stackIsFp8.set(`${p}.mlp.${part}.`, fp8);
        lw.moe = {
          weights: { router: f32(`${p}.mlp.gate.weight`), experts, sharedInExperts: m.nSharedExperts },
          bias: m.topkMethod === 'noaux_tc' ? f32(`${p}.mlp.gate.e_score_correction_bias`) : undefined,
        };
      } else {
        const [gate, up] = [w(`${p}.mlp.gate_proj.weight`), w(`${p}.mlp.up_proj.weight`)];
        lw.dense = { gate, up, down: w(`${p}.mlp.down_proj.weight`), gateUp: await stackLinears(ctx, [gate, up], `${p}.mlp.gate_up`) };
      }
      for (const x of [lw.qkvA, lw.dense?.gateUp]) if (x) stacked.push(x.t, ...(x.scale ? [x.scale] : []));
      layers.push(lw);
    }
    const dec = new Decoder(ctx, c, weights, layers, o, stackIsFp8);
    dec.owned.push(...stacked);
    return dec;
  }

  /**
   * Whether the input of the linear with this weight is cast to FP8 (1x128) before its GEMM: with
   * activations 'fp8', every FP8 weight except experts stacked in f32. A reference that mimics the GPU
   * (RefOptions.fp8Input) asks this.
   */
  fp8Input(weight: string): boolean {
    if (this.opts.activations !== 'fp8') return false;
    for (const [prefix, fp8] of this.stackIsFp8) if (weight.startsWith(prefix)) return fp8;
    return this.weights.get(weight).t.dtype === 'e4m3';
  }

  /** Plans per batch shape (`${entries}x${tokensPerEntry}`), oldest first; freed with the decoder. */
  private readonly plans = new Map<string, StepPlan>();
  /** Host and GPU time of the last forward (see StepTiming). */
  lastTiming?: StepTiming;
  private busy = false;

  /**
   * One token for each entry: appends it to its sequence (position = the sequence's length) and
   * returns the logits [vocab] after it, per entry.
   */
  async step(batch: readonly { seq: number; token: number }[]): Promise<Float32Array[]> {
    if (!Array.isArray(batch)) fail('Decoder.step', 'batch', 'an array of { seq, token }', typeof batch);
    return (await this.forward(batch.map((b) => ({ seq: b.seq, tokens: [b.token] })))).map((r) => r[0]);
  }

  /**
   * A prompt through one forward (s_q = its length), appended to `seq`: logits [vocab] at every
   * position, or with `{ logits: 'last' }` at the last one only (what generation needs: lm_head and
   * the read-back then cost one row instead of the prompt's length).
   */
  async prefill(seq: number, tokens: readonly number[], opts: ForwardOptions = {}): Promise<Float32Array[]> {
    return (await this.forward([{ seq, tokens }], opts))[0];
  }

  /**
   * Several tokens for each entry, the same number for all (one per entry: a decode step; a whole
   * prompt: a prefill): appended to their sequences, logits [vocab] at every new position per entry
   * (at each entry's last position with `{ logits: 'last' }`).
   * The first forward of a batch shape plans it; later ones replay that plan.
   */
  async forward(entries: readonly { seq: number; tokens: readonly number[] }[], opts: ForwardOptions = {}): Promise<Float32Array[][]> {
    if (this.busy) throw new DeepwgslError('Decoder.forward: another step of this decoder is still running; await it first');
    if (![undefined, 'all', 'last'].includes(opts.logits)) fail('Decoder.forward', 'opts.logits', "'all' or 'last'", opts.logits);
    this.busy = true;
    try {
      return await this.forwardNow(entries, opts.logits === 'last');
    } finally {
      this.busy = false;
    }
  }

  private async forwardNow(entries: readonly { seq: number; tokens: readonly number[] }[], lastOnly: boolean): Promise<Float32Array[][]> {
    const t0 = performance.now();
    const T = this.checkEntries('Decoder.forward', entries);
    const { plan, planMs } = await this.prepare(entries, false, lastOnly);
    const submitted = plan.submit();
    const encodeMs = performance.now() - t0;
    const { logits, gpuMs } = await submitted;
    const wallMs = performance.now() - t0;
    const B = entries.length;
    this.lastTiming = { tokens: B * T, wallMs, encodeMs, planMs, gpuMs, plan: plan.key };
    const V = this.config.vocabSize;
    const rows = plan.logitRows;
    return entries.map((_, i) => Array.from({ length: rows }, (_, j) => logits.slice((i * rows + j) * V, (i * rows + j + 1) * V)));
  }

  /** Checks a batch (one entry per sequence, the same number of valid tokens each, room in the cache) and returns its tokens per entry. */
  private checkEntries(where: string, entries: readonly { seq: number; tokens: readonly number[] }[]): number {
    const B = entries.length;
    if (B < 1 || B > this.opts.maxBatch) fail(where, 'batch length', `1..maxBatch (${this.opts.maxBatch})`, B);
    if (new Set(entries.map((b) => b.seq)).size !== B) fail(where, 'batch', 'one entry per sequence', entries.map((b) => b.seq));
    const T = entries[0].tokens.length;
    if (T < 1 || entries.some((e) => e.tokens.length !== T)) fail(where, 'tokens', 'the same non-zero number of tokens for every entry', entries.map((e) => e.tokens.length));
    for (const e of entries) {
      for (const token of e.tokens) if (!Number.isInteger(token) || token < 0 || token >= this.config.vocabSize) fail(where, 'token', `an id in 0..${this.config.vocabSize - 1}`, token);
      this.checkRoom(where, e.seq, T);
    }
    return T;
  }

  private checkRoom(where: string, seq: number, T: number): void {
    const len = this.allocator.length(seq);
    if (len + T > this.maxSeqLen) throw new DeepwgslError(`${where}: sequence ${seq} (length ${len}) cannot take ${T} more tokens: maxSeqLen is ${this.maxSeqLen}`);
  }

  /**
   * Appends the entries' tokens to their sequences and readies the plan of this batch shape (planned
   * on first use) with the step's inputs written: token ids, positions, cache slots, block table,
   * seqlens and MLA's schedule; all but the ids with `idsOnGpu` (a greedy step after the first: the
   * step before wrote them).
   */
  private async prepare(entries: readonly { seq: number; tokens: readonly number[] }[], idsOnGpu: boolean, lastOnly = false): Promise<{ plan: StepPlan; planMs: number }> {
    const { ctx } = this;
    const B = entries.length;
    const T = entries[0].tokens.length;
    const ids = new Int32Array(B * T);
    const positions = new Int32Array(B * T);
    const slots = new Int32Array(B * T);
    entries.forEach((e, i) => {
      const len = this.allocator.length(e.seq);
      for (let j = 0; j < T; j++) positions[i * T + j] = len + j;
      ids.set(e.tokens, i * T);
      slots.set(this.allocator.append(e.seq, T), i * T);
    });
    const table = this.allocator.table(entries.map((e) => e.seq), this.maxBlocks);
    const data: Record<keyof StepInputs, Int32Array<ArrayBuffer>> = {
      ids,
      pos: positions,
      slots,
      blockTable: table.blockTable as Int32Array<ArrayBuffer>,
      seqlens: table.seqlens as Int32Array<ArrayBuffer>,
    };
    const write = (inputs: StepInputs) => {
      for (const k of Object.keys(data) as (keyof StepInputs)[]) if (!(idsOnGpu && k === 'ids')) ctx.device.queue.writeBuffer(inputs[k].buffer, inputs[k].byteOffset, data[k]);
    };
    // One token per entry: the last position is the only one, so both ask for the same plan.
    const last = lastOnly && T > 1;
    const key = planKey(B, T, last);
    let plan = this.plans.get(key);
    let planMs = 0;
    if (!plan) {
      const inputs = {
        ids: createTensor(ctx, [B * T], 'i32', 'ids'),
        pos: createTensor(ctx, [B * T], 'i32', 'positions'),
        slots: createTensor(ctx, [B * T], 'i32', 'slots'),
        blockTable: createTensor(ctx, [B, this.maxBlocks], 'i32', 'blockTable'),
        seqlens: createTensor(ctx, [B], 'i32', 'seqlens'),
      };
      plan = new StepPlan(ctx, key, B, T, last ? 1 : T, inputs, getMlaMetadata({ maxSeqlen: this.maxSeqLen }), this.opts.submits);
      // Planning MLA reads the block table back once (its checks): the inputs go first.
      write(inputs);
      const p0 = performance.now();
      try {
        await this.planForward(plan, table.seqlens);
      } catch (e) {
        plan.destroy();
        throw e;
      }
      this.plans.set(key, plan);
      planMs = performance.now() - p0;
      // Prefill shapes come and go with prompt lengths: keep the few most recent.
      while (this.plans.size > MAX_PLANS) {
        const [oldKey, old] = this.plans.entries().next().value!;
        this.plans.delete(oldKey);
        old.destroy();
      }
    } else {
      // Most recently used last.
      this.plans.delete(key);
      this.plans.set(key, plan);
    }
    write(plan.inputs);
    plan.meta.update(table.seqlens);
    return { plan, planMs };
  }

  /**
   * Greedy decoding with the tokens chosen on the GPU: up to `maxSteps` steps of `batch` (each
   * entry's first token given). Each step's argmax is written into the next step's token ids on the
   * GPU, so step n+1 is submitted before step n's tokens are read back (the ids only: the logits stay
   * on the GPU), and the host's encoding and read-back hide behind the GPU's work.
   * `onStep(tokens)` gets each step's token per entry, in order (lastTiming is that step's);
   * returning false stops. On return each sequence holds exactly the steps reported (a step already
   * submitted past the last one is taken back), so step() or greedy() go on from the last tokens, as
   * after the same steps through step(). Returns the steps taken.
   */
  async greedy(batch: readonly { seq: number; token: number }[], maxSteps: number, onStep: (tokens: Int32Array) => boolean | void): Promise<number> {
    const where = 'Decoder.greedy';
    if (!Array.isArray(batch)) fail(where, 'batch', 'an array of { seq, token }', typeof batch);
    if (!Number.isInteger(maxSteps) || maxSteps < 1) fail(where, 'maxSteps', 'a positive integer', maxSteps);
    if (this.busy) throw new DeepwgslError(`${where}: another step of this decoder is still running; await it first`);
    const entries = batch.map((b) => ({ seq: b.seq, tokens: [b.token] }));
    this.checkEntries(where, entries);
    this.busy = true;
    // Steps the cache has room for: asking for more fails after them, as step() would.
    const room = Math.min(...entries.map((e) => this.maxSeqLen - this.allocator.length(e.seq)));
    const steps = Math.min(maxSteps, room);
    const start = entries.map((e) => this.allocator.length(e.seq));
    const inFlight: { result: Promise<{ ids: Int32Array; gpuMs?: number }>; encodeMs: number; planMs: number; key: string }[] = [];
    let submitted = 0;
    let taken = 0;
    const submit = async () => {
      const t0 = performance.now();
      const { plan, planMs } = await this.prepare(entries, submitted > 0);
      // Two read-back buffers: step n's is free again once step n - 2 was read.
      inFlight.push({ result: plan.submitGreedy(submitted % 2), encodeMs: performance.now() - t0 - planMs, planMs, key: plan.key });
      submitted++;
    };
    try {
      let last = performance.now();
      await submit();
      while (inFlight.length) {
        if (submitted < steps) await submit();
        const s = inFlight.shift()!;
        const { ids, gpuMs } = await s.result;
        // The argmax marks a row holding NaN or Inf with -1.
        const none = ids.findIndex((t) => t < 0);
        if (none >= 0) {
          throw new DeepwgslError(
            `${where}: step ${taken} (sequence ${batch[none].seq}, the token at position ${start[none] + taken}): its logits hold NaN or Inf, so no token can be chosen (the model overflowed)`,
          );
        }
        const now = performance.now();
        this.lastTiming = { tokens: entries.length, wallMs: now - last, encodeMs: s.encodeMs, planMs: s.planMs, gpuMs, plan: s.key };
        last = now;
        taken++;
        if (onStep(ids) === false) break;
      }
    } finally {
      // Steps submitted past the last one taken: once the GPU is done with them, their rows go.
      for (const s of inFlight) {
        await s.result.catch(() => undefined);
        for (const e of entries) this.allocator.truncate(e.seq, this.allocator.length(e.seq) - 1);
      }
      this.busy = false;
    }
    if (taken === steps && steps < maxSteps) for (const e of entries) this.checkRoom(where, e.seq, 1);
    return taken;
  }

  /**
   * The launches of the plan of this batch shape (entries x tokens per entry) with what each does,
   * for a profiler: encoding them again repeats the last forward of that shape (same inputs, same
   * cache rows). Undefined before that shape's first forward.
   */
  launchesOf(entries: number, tokensPerEntry = 1, opts: ForwardOptions = {}): { launches: readonly Launch[]; labels: readonly string[] } | undefined {
    const p = this.plans.get(planKey(entries, tokensPerEntry, opts.logits === 'last' && tokensPerEntry > 1));
    return p && { launches: p.launches, labels: p.labels };
  }

  /** Batch shapes planned so far (`${entries}x${tokensPerEntry}`, `:last` where only the last positions' logits are computed). */
  get plannedShapes(): string[] {
    return [...this.plans.keys()];
  }

  private get maxBlocks(): number {
    return Math.ceil(this.maxSeqLen / this.opts.blockSize);
  }

  /** Records the whole forward of `plan`'s shape over tensors made once (shared by all layers). */
  private async planForward(plan: StepPlan, seqlens: Int32Array): Promise<void> {
    const { ctx, config: c } = this;
    const { entries: B, perEntry: T } = plan;
    const M = B * T;
    const H = c.numHeads;
    const d = c.kvLoraRank + c.qkRopeHeadDim;
    const m: MlaDims = { heads: H, qkNopeHeadDim: c.qkNopeHeadDim, qkRopeHeadDim: c.qkRopeHeadDim, vHeadDim: c.vHeadDim, kvLoraRank: c.kvLoraRank };
    const buf = (name: string, shape: number[], dtype: Tensor['dtype'] = 'f32') => plan.tensor(name, shape, dtype);
    const add = <T extends Launch | { launch: Launch }>(r: T): T => {
      const l: Launch = r instanceof Launch ? r : r.launch;
      plan.push(l, l.info.kernel.replace(/^\w+\./, ''));
      return r;
    };
    const { pos, slots, blockTable, seqlens: seqT } = plan.inputs;
    const rope = { positions: pos, table: this.ropeTable, interleave: c.ropeInterleave };
    const norm = async (x: Tensor, w: Tensor, out: Tensor) => add(await planRmsNorm(ctx, x, w, { eps: c.rmsNormEps, out })).out;
    const linear = (x: Tensor, w: StoredWeight, label: string, residual?: { c: Tensor; out: Tensor }) =>
      this.planLinear(plan, x, w, residual?.out ?? buf(label, [x.shape[0], w.t.shape[0]]), label, residual?.c);

    // The residual stream: x (a layer's input and output) and x2 (after attention).
    const x = add(await planEmbedding(ctx, this.weights.get('model.embed_tokens.weight').t, plan.inputs.ids, { out: buf('x', [M, c.hiddenSize]) })).out;
    const x2 = buf('x2', [M, c.hiddenSize]);
    let firstMoe: MoeLayerPlan | undefined;
    for (let l = 0; l < c.numLayers; l++) {
      const lw = this.layers[l];
      const hn = await norm(x, lw.inputNorm, buf('hn', [M, c.hiddenSize]));
      // q (or q_a) and the compressed kv from one GEMM where the weights stack: kv at column qCols.
      const qCols = (lw.q ?? lw.qA)!.t.shape[0];
      const qkv = lw.qkvA && (await linear(hn, lw.qkvA, 'q_kv_a_proj'));
      const qFirst = qkv ?? (await linear(hn, (lw.q ?? lw.qA)!, lw.q ? 'q_proj' : 'q_a_proj'));
      const [kv, kvOffset] = qkv ? [qkv, qCols] : [await linear(hn, lw.kvA, 'kv_a_proj_with_mqa'), 0];
      const q = lw.q ? qFirst : await linear(await norm(qFirst, lw.qANorm!, buf('q_a_normed', [M, c.qLoraRank!])), lw.qB!, 'q_b_proj');
      add(await planMlaKvAppend(ctx, { kv, kvOffset, norm: lw.kvANorm, eps: c.rmsNormEps, rope, slots, kcache: this.kcache[l] }));
      const qa = add(await planMlaAbsorbQ(ctx, q, lw.kvB, m, { rope, out: buf('q_absorbed', [M, H, d]) })).out;
      const mlaArgs: FlashMlaArgs = {
        q: qa.view([B, T, H, d]),
        kcache: this.kcache[l],
        blockTable,
        cacheSeqlens: seqT,
        hostSeqlens: seqlens,
        headDimV: c.kvLoraRank,
        schedMeta: plan.meta,
        softmaxScale: c.softmaxScale,
        // A prompt's rows attend up to their own position.
        causal: T > 1,
        kvFormat: this.opts.kvFormat,
        out: buf('mla_out', [B, T, H, c.kvLoraRank]),
        lse: buf('mla_lse', [B, H, T]),
      };
      mlaArgs.config = T > 1 ? undefined : (this.opts.mlaConfig ?? decodeMlaConfig(ctx, mlaArgs));
      const mla = add(await planFlashMla(ctx, mlaArgs));
      const ov = add(await planMlaAbsorbO(ctx, mla.out.view([M, H, c.kvLoraRank]), lw.kvB, m, { out: buf('o_values', [M, H * c.vHeadDim]) })).out;
      await linear(ov, lw.o, 'o_proj', { c: x, out: x2 });
      const hn2 = await norm(x2, lw.postNorm, buf('hn', [M, c.hiddenSize]));
      if (lw.dense) {
        const { gate, up, down, gateUp } = lw.dense;
        const inter = down.t.shape[1];
        const act = gateUp
          ? add(await planSiluMulFused(ctx, await linear(hn2, gateUp, 'gate_up_proj'), { out: buf('act', [M, inter]) })).out
          : add(await planSiluMul(ctx, await linear(hn2, gate, 'gate_proj'), await linear(hn2, up, 'up_proj'), { out: buf('act', [M, inter]) })).out;
        await linear(act, down, 'down_proj', { c: x2, out: x });
      } else {
        const moe = await planMoeLayer(ctx, hn2, lw.moe!.weights, {
          route: { ...routeConfigOf(c), eScoreCorrectionBias: lw.moe!.bias },
          layout: T === 1 || M <= MASKED_MAX_TOKENS ? 'masked' : 'contiguous',
          activations: this.opts.activations,
          residual: x2,
          out: x,
          shareWith: firstMoe,
        });
        firstMoe ??= moe;
        plan.moe.push(moe);
        moe.launches.forEach((l, i) => plan.push(l, `moe.${moe.labels[i]}`));
      }
    }
    let xn = await norm(x, this.weights.get('model.norm.weight').t, buf('hn', [M, c.hiddenSize]));
    if (plan.logitRows < T) {
      // Each entry's last row, gathered for lm_head: the rows it picks never change for this shape.
      const lastRows = buf('last_rows', [B], 'i32');
      ctx.device.queue.writeBuffer(lastRows.buffer, lastRows.byteOffset, Int32Array.from({ length: B }, (_, i) => i * T + T - 1));
      xn = add(await planEmbedding(ctx, xn, lastRows, { out: buf('hn_last', [B, c.hiddenSize]) })).out;
    }
    const head = this.weights.get(c.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight');
    await plan.setLogits(await linear(xn, head, 'lm_head'));
  }

  /** out = (c +) x @ W.T for x [m, k] f32: FP8 weights through the FP8 GEMM (weights stay FP8), others through the half GEMM. */
  private async planLinear(plan: StepPlan, x: Tensor, w: StoredWeight, out: Tensor, label: string, c?: Tensor): Promise<Tensor> {
    const [mRows, k] = x.shape;
    const kb = Math.ceil(k / 128);
    let problem: GemmProblem;
    if (w.t.dtype === 'e4m3' && this.opts.activations === 'fp8') {
      const cast = await planCast(this.ctx, 'perToken', x, { out: { q: plan.tensor('cast.q', [mRows, k], 'e4m3'), scales: plan.tensor('cast.scales', [mRows, kb], 'f32') } });
      plan.push(cast.launch, `${label}.cast`);
      problem = denseProblem(label, true, { a: cast.q, sa: cast.scales, b: w.t, sb: w.scale }, out, c);
    } else if (w.t.dtype === 'e4m3') {
      // W8A32: the FP8 GEMM reads f32 activations as they are (no scales: 1.0).
      problem = denseProblem(label, true, { a: x, b: w.t, sb: w.scale }, out, c);
    } else problem = denseProblem(label, false, { a: x, b: w.t }, out, c);
    plan.push(await planGemm(this.ctx, label, problem), label);
    return out;
  }

  release(seq: number): void {
    this.allocator.release(seq);
  }

  /** Drops every planned batch shape: each plans again at its next forward, with the GEMM configs the tuning store holds by then. */
  replan(): void {
    for (const p of this.plans.values()) p.destroy();
    this.plans.clear();
  }

  destroy(): void {
    this.replan();
    for (const t of this.owned) t.destroy();
  }
}

export interface ForwardOptions {
  /** 'all' (default): logits at every new position; 'last': at each entry's last position only. */
  logits?: 'all' | 'last';
}

const planKey = (entries: number, perEntry: number, lastOnly: boolean) => `${entries}x${perEntry}${lastOnly ? ':last' : ''}`;

/**
 * MoE layout: decode steps and forwards of at most this many tokens put each expert's rows in a
 * masked slab, which the small-m kernel (up to 16 rows a group) reads streaming each picked expert's
 * weights once; longer prompts take the contiguous layout's tiles, which compute a whole tile per
 * picked expert however few its rows (3x slower at 16 tokens: docs/BENCHMARKS.md).
 */
const MASKED_MAX_TOKENS = 16;

/** Plans kept per decoder: decode shapes (one per batch size) and the most recent prompt lengths. */
const MAX_PLANS = 8;

/** Time of one forward: wall (call to logits on the host), host side before the submit, GPU (timestamps, where the device has them). */
export interface StepTiming {
  /** Tokens the forward processed (entries x tokens per entry). */
  tokens: number;
  wallMs: number;
  /** Input writes, encoding and submit (the plan is replayed; on a shape's first forward this includes planning). */
  encodeMs: number;
  /** Planning this batch shape (compiling, binding, allocating): a shape's first forward only, else 0. */
  planMs: number;
  /** The step's compute passes on the GPU, begin to end, summed; undefined without 'timestamp-query'. */
  gpuMs?: number;
  /** The batch shape's plan key. */
  plan: string;
}

/** The per-step inputs a plan reads, written with queue.writeBuffer before each replay. */
interface StepInputs {
  ids: Tensor;
  pos: Tensor;
  slots: Tensor;
  blockTable: Tensor;
  seqlens: Tensor;
}

/**
 * A forward recorded for one batch shape: launches (prebuilt bind groups) over tensors made once,
 * replayed each step: a few passes and submits (see submit()), and one read-back of the logits, or
 * for a greedy step of the chosen tokens (with the passes' timestamps where the device has them).
 */
class StepPlan {
  readonly launches: Launch[] = [];
  /** What each launch does ('q_proj', 'rmsNorm', 'moe.experts.gateUp', ...), for profiles. */
  readonly labels: string[] = [];
  readonly moe: MoeLayerPlan[] = [];
  private readonly named = new Map<string, Tensor>();
  private logits?: Tensor;
  private staging?: GPUBuffer;
  /** Decode shapes: the logits' argmax into the token ids (the next step's input), and its two read-back buffers. */
  private argmax?: Launch;
  private readonly greedyStaging: GPUBuffer[] = [];
  private readonly stamps?: { query: GPUQuerySet; resolved: GPUBuffer };

  constructor(
    readonly ctx: GpuContext,
    /** `${entries}x${perEntry}`. */
    readonly key: string,
    readonly entries: number,
    readonly perEntry: number,
    /** Logit rows per entry: perEntry, or 1 where only the last position's are computed. */
    readonly logitRows: number,
    readonly inputs: StepInputs,
    readonly meta: MlaSchedMeta,
    private readonly submits: number,
  ) {
    if (ctx.has('timestamp-query')) {
      this.stamps = {
        query: ctx.device.createQuerySet({ type: 'timestamp', count: 2 * this.submits }),
        resolved: ctx.device.createBuffer({ size: 16 * this.submits, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC }),
      };
    }
  }

  push(l: Launch, label: string): void {
    this.launches.push(l);
    this.labels.push(label);
  }

  /** The plan's tensor `name` of this shape: one per name, shared by every layer (they run one after another). */
  tensor(name: string, shape: number[], dtype: Tensor['dtype']): Tensor {
    const key = `${name}:${shape.join('x')}:${dtype}`;
    let t = this.named.get(key);
    if (!t) this.named.set(key, (t = createTensor(this.ctx, shape, dtype, name)));
    return t;
  }

  async setLogits(logits: Tensor): Promise<void> {
    this.logits = logits;
    this.staging = this.readBuffer(logits.byteLength);
    if (this.perEntry === 1) {
      this.argmax = (await planArgmax(this.ctx, logits, { out: this.inputs.ids, flagNonFinite: true })).launch;
      for (let i = 0; i < 2; i++) this.greedyStaging.push(this.readBuffer(this.inputs.ids.byteLength));
    }
  }

  private readBuffer(bytes: number): GPUBuffer {
    return this.ctx.device.createBuffer({ size: bytes + (this.stamps ? 16 * this.submits : 0), usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ });
  }

  /**
   * Encodes the recorded launches and submits them in `submits` equal passes, so the GPU starts on the
   * first while the host encodes the rest; the last copies the logits out. Encoding a launch costs the
   * host about as long as the GPU takes to run one (~12 us on an H200 through Dawn), so equal passes
   * keep the two in step: passes that double in size measured 2.9 ms of host time per token against
   * 0.74 (the GPU waited for the largest, last one). Resolves with the logits, and the passes' summed
   * GPU time, once the GPU is done.
   */
  async submit(): Promise<{ logits: Float32Array; gpuMs?: number }> {
    const logits = this.logits!;
    const { bytes, gpuMs } = await this.run(this.staging!, logits, this.submits);
    return { logits: new Float32Array(bytes), gpuMs };
  }

  /**
   * A greedy decode step: as submit(), with the argmax of the logits written into the token ids last;
   * resolves with those ids (read back through buffer `slot`, 0 or 1). One pass: the host is a step
   * ahead of the GPU here, so splitting the step would only add pass boundaries.
   */
  async submitGreedy(slot: number): Promise<{ ids: Int32Array; gpuMs?: number }> {
    const { bytes, gpuMs } = await this.run(this.greedyStaging[slot], this.inputs.ids, 1, this.argmax);
    return { ids: new Int32Array(bytes), gpuMs };
  }

  private async run(staging: GPUBuffer, out: Tensor, submits: number, last?: Launch): Promise<{ bytes: ArrayBuffer; gpuMs?: number }> {
    const { device } = this.ctx;
    const per = Math.ceil(this.launches.length / submits);
    for (let i = 0; i < submits; i++) {
      const enc = device.createCommandEncoder({ label: 'decode step' });
      const pass = enc.beginComputePass({
        label: 'decode step',
        ...(this.stamps && { timestampWrites: { querySet: this.stamps.query, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } }),
      });
      for (const l of this.launches.slice(i * per, (i + 1) * per)) l.encode(pass);
      if (i === submits - 1) last?.encode(pass);
      pass.end();
      if (i === submits - 1) {
        enc.copyBufferToBuffer(out.buffer, out.byteOffset, staging, 0, out.byteLength);
        if (this.stamps) {
          enc.resolveQuerySet(this.stamps.query, 0, 2 * submits, this.stamps.resolved, 0);
          enc.copyBufferToBuffer(this.stamps.resolved, 0, staging, out.byteLength, 16 * submits);
        }
      }
      device.queue.submit([enc.finish()]);
    }
    await staging.mapAsync(GPUMapMode.READ);
    try {
      this.ctx.throwIfFailed();
      const mapped = staging.getMappedRange();
      const bytes = mapped.slice(0, out.byteLength);
      if (!this.stamps) return { bytes };
      const ts = new BigInt64Array(mapped.slice(out.byteLength, out.byteLength + 16 * submits));
      let ns = 0n;
      for (let i = 0; i < submits; i++) ns += ts[2 * i + 1] - ts[2 * i];
      return { bytes, gpuMs: Number(ns) / 1e6 };
    } finally {
      staging.unmap();
    }
  }

  destroy(): void {
    for (const m of this.moe) m.destroy();
    for (const l of [...this.launches, ...(this.argmax ? [this.argmax] : [])]) l.destroy();
    for (const t of [...this.named.values(), ...Object.values(this.inputs)]) t.destroy();
    this.meta.destroy();
    for (const b of [this.staging, ...this.greedyStaging]) b?.destroy();
    this.stamps?.query.destroy();
    this.stamps?.resolved.destroy();
  }
}

/** Logits at every position of `tokens` for a fresh sequence `seq`, in one forward (s_q = the prompt's length). */
export async function prefillLogits(dec: Decoder, tokens: readonly number[], seq = 0): Promise<Float32Array[]> {
  return dec.prefill(seq, tokens);
}
