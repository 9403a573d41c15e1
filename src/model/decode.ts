// The GPU forward pass for decode: one new token for each of several sequences per step, over a
// paged latent KV cache (MLA's absorbed form). Activations are f32, or FP8 into the FP8 GEMMs. Per layer:
//   RMSNorm -> q (q_a_proj, q_a_layernorm, q_b_proj, or q_proj) -> rope on q's rope part
//   kv_a_proj_with_mqa -> rope on k's rope part, kv_a_layernorm in place -> appendKvcache
//   W_UK absorbed into q -> flashMlaWithKvcache (d = kv_lora_rank + rope, dv = kv_lora_rank) -> W_UV -> o_proj
//   residual add, RMSNorm, dense MLP or moeLayer, residual add
// then the final norm and lm_head. This first version plans each step as it runs (no replay yet).
import type { GpuContext } from '../gpu/context.ts';
import { DeepwgslError, fail } from '../gpu/errors.ts';
import { createTensor, readTensor, Tensor, uploadTensor } from '../gpu/tensor.ts';
import type { Launch } from '../jit/launch.ts';
import { planCast } from '../kernels/cast/cast.ts';
import { denseProblem, planGemm, type GemmProblem } from '../kernels/gemm/gemm.ts';
import { BlockAllocator } from '../kernels/mla/allocator.ts';
import { planAppendKvcache } from '../kernels/mla/append.ts';
import { getMlaMetadata, planFlashMla } from '../kernels/mla/mla.ts';
import { moeLayer, type MlpWeights, type MoeLayerWeights } from '../kernels/moe/layer.ts';
import {
  planAddInto,
  planDequant,
  planEmbedding,
  planMlaAbsorbO,
  planMlaAbsorbQ,
  planRmsNorm,
  planRope,
  planSiluMul,
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
}


/** A stack of same-shape weights [n, rows, cols] in f32, from stored weights dequantized on the GPU. */
async function stackF32(ctx: GpuContext, parts: StoredWeight[][], label: string): Promise<Tensor> {
  // parts[g] are concatenated along rows within group g (gate then up), groups stacked.
  const rowsPer = parts[0].reduce((a, w) => a + w.t.shape[0], 0);
  const cols = parts[0][0].t.shape[1];
  const lead = parts.length > 1 ? [parts.length] : [];
  const out = createTensor(ctx, [...lead, rowsPer, cols], 'f32', label);
  const enc = ctx.device.createCommandEncoder({ label });
  const temps: Tensor[] = [];
  let at = 0;
  for (const group of parts) {
    for (const w of group) {
      const { launch, out: f } = await planDequant(ctx, w);
      launch.submit();
      enc.copyBufferToBuffer(f.buffer, 0, out.buffer, at, f.byteLength);
      at += f.byteLength;
      temps.push(f);
    }
  }
  ctx.device.queue.submit([enc.finish()]);
  await ctx.sync();
  for (const t of temps) t.destroy();
  return out;
}

/** FP8 weights stacked like stackF32, values and 128x128 scales each concatenated (rows must split on 128-row blocks). */
async function stackFp8(ctx: GpuContext, parts: StoredWeight[][], label: string): Promise<[Tensor, Tensor]> {
  const rowsPer = parts[0].reduce((a, w) => a + w.t.shape[0], 0);
  const cols = parts[0][0].t.shape[1];
  const lead = parts.length > 1 ? [parts.length] : [];
  const q = createTensor(ctx, [...lead, rowsPer, cols], 'e4m3', label);
  const scales = createTensor(ctx, [...lead, Math.ceil(rowsPer / 128), Math.ceil(cols / 128)], 'f32', `${label}.scales`);
  const enc = ctx.device.createCommandEncoder({ label });
  let atQ = 0;
  let atS = 0;
  for (const w of parts.flat()) {
    enc.copyBufferToBuffer(w.t.buffer, w.t.byteOffset, q.buffer, atQ, w.t.byteLength);
    enc.copyBufferToBuffer(w.scale!.buffer, w.scale!.byteOffset, scales.buffer, atS, w.scale!.byteLength);
    atQ += w.t.byteLength;
    atS += w.scale!.byteLength;
  }
  ctx.device.queue.submit([enc.finish()]);
  return [q, scales];
}

interface LayerWeights {
  inputNorm: Tensor;
  postNorm: Tensor;
  qA?: StoredWeight;
  qANorm?: Tensor;
  qB?: StoredWeight;
  q?: StoredWeight;
  kvA: StoredWeight;
  kvANorm: Tensor;
  kvB: StoredWeight;
  o: StoredWeight;
  dense?: { gate: StoredWeight; up: StoredWeight; down: StoredWeight };
  moe?: { weights: MoeLayerWeights; bias?: Tensor };
}

export class Decoder {
  readonly allocator: BlockAllocator;
  readonly kcache: Tensor[];
  readonly ropeTable: Tensor;
  readonly maxSeqLen: number;
  private readonly ones = new Map<string, Tensor>();
  private readonly owned: Tensor[] = [];

  private constructor(
    readonly ctx: GpuContext,
    readonly config: ModelConfig,
    readonly weights: ModelWeights,
    readonly layers: LayerWeights[],
    readonly opts: Required<DecoderOptions>,
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
    const o: Required<DecoderOptions> = { maxSeqLen: 256, maxBatch: 1, blockSize: 64, kvFormat: 'f16', activations: 'f32', ...opts };
    if (o.activations !== 'f32' && o.activations !== 'fp8') fail('Decoder', 'activations', "'f32' or 'fp8'", o.activations);
    for (const k of ['maxSeqLen', 'maxBatch', 'blockSize'] as const) if (!Number.isInteger(o[k]) || o[k] < 1) fail('Decoder', k, 'a positive integer', o[k]);
    if (o.maxSeqLen > c.maxPositionEmbeddings) fail('Decoder', 'maxSeqLen', `at most max_position_embeddings (${c.maxPositionEmbeddings})`, o.maxSeqLen);
    const w = (n: string) => weights.get(n);
    const f32 = (n: string) => weights.get(n).t;
    const layers: LayerWeights[] = [];
    const stacked: Tensor[] = [];
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
      if (isMoeLayer(c, l)) {
        const m = c.moe!;
        const ex = (e: number, proj: string) => w(`${p}.mlp.experts.${e}.${proj}.weight`);
        const all = Array.from({ length: m.nRoutedExperts }, (_, e) => e);
        const sh = (proj: string) => w(`${p}.mlp.shared_experts.${proj}.weight`);
        const mlpWeights = async (gateUp: StoredWeight[][], down: StoredWeight[][], label: string): Promise<MlpWeights> => {
          // FP8 stacks keep their block scales only where gate and up split on a 128-row boundary.
          const fp8 = [...gateUp.flat(), ...down.flat()].every((x) => x.t.dtype === 'e4m3') && gateUp[0][0].t.shape[0] % 128 === 0;
          const r = fp8
            ? { gateUp: await stackFp8(ctx, gateUp, `${label}.gateUp`), down: await stackFp8(ctx, down, `${label}.down`) }
            : { gateUp: await stackF32(ctx, gateUp, `${label}.gateUp`), down: await stackF32(ctx, down, `${label}.down`) };
          for (const t of [r.gateUp, r.down].flat()) stacked.push(t);
          return r;
        };
        const experts = await mlpWeights(all.map((e) => [ex(e, 'gate_proj'), ex(e, 'up_proj')]), all.map((e) => [ex(e, 'down_proj')]), `${p}.experts`);
        const shared = m.nSharedExperts > 0 ? await mlpWeights([[sh('gate_proj'), sh('up_proj')]], [[sh('down_proj')]], `${p}.shared`) : undefined;
        lw.moe = {
          weights: { router: f32(`${p}.mlp.gate.weight`), experts, shared },
          bias: m.topkMethod === 'noaux_tc' ? f32(`${p}.mlp.gate.e_score_correction_bias`) : undefined,
        };
      } else lw.dense = { gate: w(`${p}.mlp.gate_proj.weight`), up: w(`${p}.mlp.up_proj.weight`), down: w(`${p}.mlp.down_proj.weight`) };
      layers.push(lw);
    }
    const dec = new Decoder(ctx, c, weights, layers, o);
    dec.owned.push(...stacked);
    return dec;
  }

  // Launches of the step so far, encoded into one compute pass at the next flush (one submit, not one per kernel).
  private pending: Launch[] = [];

  private flush(): void {
    if (!this.pending.length) return;
    const enc = this.ctx.device.createCommandEncoder({ label: 'decode step' });
    const pass = enc.beginComputePass();
    for (const l of this.pending) l.encode(pass);
    pass.end();
    this.ctx.device.queue.submit([enc.finish()]);
    this.pending = [];
  }

  /** y = x @ W.T for x [m, k] f32: FP8 weights through the FP8 GEMM with unit activation scales (weights stay FP8), others through the half GEMM. */
  private async linear(x: Tensor, w: StoredWeight, temps: Tensor[], label: string): Promise<Tensor> {
    const [m, k] = x.shape;
    const n = w.t.shape[0];
    const out = createTensor(this.ctx, [m, n], 'f32', label);
    temps.push(out);
    let launch: Launch;
    if (w.t.dtype === 'e4m3' && this.opts.activations === 'fp8') {
      const cast = await planCast(this.ctx, 'perToken', x);
      this.pending.push(cast.launch);
      temps.push(cast.q, cast.scales);
      launch = await planGemm(this.ctx, label, denseProblem(label, true, { a: cast.q, sa: cast.scales, b: w.t, sb: w.scale }, out));
    } else if (w.t.dtype === 'e4m3') {
      const kb = Math.ceil(k / 128);
      const key = `${m}x${kb}`;
      let ones = this.ones.get(key);
      if (!ones) this.ones.set(key, (ones = uploadTensor(this.ctx, new Float32Array(m * kb).fill(1), [m, kb], 'f32', 'unit scales')));
      // An FP8 GEMM whose A is f32: the kernels decode A by its dtype, and 1.0 scales leave it exact.
      const p: GemmProblem = { layout: 'dense', fp8: true, a: x, sa: ones, b: w.t, sb: w.scale, out, m, n, k, groups: 1, regions: 1, expectedM: m };
      if (w.t.shape[1] !== k) fail('linear', `${label} weight`, `[${n}, ${k}]`, w.t.shape);
      launch = await planGemm(this.ctx, label, p);
    } else launch = await planGemm(this.ctx, label, denseProblem(label, false, { a: x, b: w.t }, out));
    this.pending.push(launch);
    return out;
  }

  private async norm(x: Tensor, w: Tensor, temps: Tensor[]): Promise<Tensor> {
    const { launch, out } = await planRmsNorm(this.ctx, x, w, { eps: this.config.rmsNormEps });
    this.pending.push(launch);
    temps.push(out);
    return out;
  }

  /**
   * One token for each entry: appends it to its sequence (position = the sequence's length) and
   * returns the logits [vocab] after it, per entry.
   */
  async step(batch: readonly { seq: number; token: number }[]): Promise<Float32Array[]> {
    if (this.busy) throw new DeepwgslError('Decoder.step: another step of this decoder is still running; await it first');
    this.busy = true;
    try {
      return await this.stepNow(batch);
    } finally {
      this.busy = false;
    }
  }

  private busy = false;

  private async stepNow(batch: readonly { seq: number; token: number }[]): Promise<Float32Array[]> {
    const { ctx, config: c } = this;
    const B = batch.length;
    if (B < 1 || B > this.opts.maxBatch) fail('Decoder.step', 'batch length', `1..maxBatch (${this.opts.maxBatch})`, B);
    if (new Set(batch.map((b) => b.seq)).size !== B) fail('Decoder.step', 'batch', 'one entry per sequence', batch.map((b) => b.seq));
    for (const { token } of batch) if (!Number.isInteger(token) || token < 0 || token >= c.vocabSize) fail('Decoder.step', 'token', `an id in 0..${c.vocabSize - 1}`, token);
    const positions = Int32Array.from(batch, (b) => this.allocator.length(b.seq));
    const full = batch.findIndex((_, i) => positions[i] >= this.maxSeqLen);
    if (full >= 0) throw new DeepwgslError(`Decoder.step: sequence ${batch[full].seq} is at maxSeqLen (${this.maxSeqLen})`);
    const slots = new Int32Array(B);
    batch.forEach((b, i) => slots.set(this.allocator.append(b.seq, 1), i));
    const table = this.allocator.table(batch.map((b) => b.seq), Math.ceil(this.maxSeqLen / this.opts.blockSize));
    const temps: Tensor[] = [];
    const up = (data: Int32Array, shape: number[], label: string) => {
      const t = uploadTensor(ctx, data, shape, 'i32', label);
      temps.push(t);
      return t;
    };
    const ids = up(Int32Array.from(batch, (b) => b.token), [B], 'ids');
    const pos = up(positions, [B], 'positions');
    const blockTable = up(table.blockTable, [B, table.maxBlocks], 'blockTable');
    const seqlens = up(table.seqlens, [B], 'seqlens');
    const schedMeta = getMlaMetadata();
    const m: MlaDims = { heads: c.numHeads, qkNopeHeadDim: c.qkNopeHeadDim, qkRopeHeadDim: c.qkRopeHeadDim, vHeadDim: c.vHeadDim, kvLoraRank: c.kvLoraRank };
    const dq = c.qkNopeHeadDim + c.qkRopeHeadDim;
    const d = c.kvLoraRank + c.qkRopeHeadDim;
    const run = async <T extends Launch | { launch: Launch }>(p: Promise<T>): Promise<T> => {
      const r = await p;
      this.pending.push('launch' in r ? r.launch : r);
      return r;
    };
    const emb = await run(planEmbedding(ctx, this.weights.get('model.embed_tokens.weight').t, ids));
    const x = emb.out;
    temps.push(x);
    try {
      for (let l = 0; l < c.numLayers; l++) {
        const lw = this.layers[l];
        const hn = await this.norm(x, lw.inputNorm, temps);
        const q = lw.q ? await this.linear(hn, lw.q, temps, 'q_proj') : await this.linear(await this.norm(await this.linear(hn, lw.qA!, temps, 'q_a_proj'), lw.qANorm!, temps), lw.qB!, temps, 'q_b_proj');
        const q3 = q.view([B, c.numHeads, dq]);
        await run(planRope(ctx, q3, pos, this.ropeTable, { ropeOffset: c.qkNopeHeadDim, interleave: c.ropeInterleave }));
        const kv = await this.linear(hn, lw.kvA, temps, 'kv_a_proj_with_mqa');
        const kv3 = kv.view([B, 1, d]);
        await run(planRope(ctx, kv3, pos, this.ropeTable, { ropeOffset: c.kvLoraRank, interleave: c.ropeInterleave }));
        await run(planRmsNorm(ctx, kv, lw.kvANorm, { eps: c.rmsNormEps, inPlace: true }));
        await run(planAppendKvcache(ctx, { kcache: this.kcache[l], kv: kv3, slots, kvFormat: this.opts.kvFormat }));
        const qa = await run(planMlaAbsorbQ(ctx, q3, lw.kvB, m));
        temps.push(qa.out);
        const mla = await run(planFlashMla(ctx, {
          q: qa.out.view([B, 1, c.numHeads, d]),
          kcache: this.kcache[l],
          blockTable,
          cacheSeqlens: seqlens,
          hostSeqlens: table.seqlens,
          headDimV: c.kvLoraRank,
          schedMeta,
          softmaxScale: c.softmaxScale,
          kvFormat: this.opts.kvFormat,
        }));
        temps.push(mla.out, mla.lse);
        const ov = await run(planMlaAbsorbO(ctx, mla.out.view([B, c.numHeads, c.kvLoraRank]), lw.kvB, m));
        temps.push(ov.out);
        await run(planAddInto(ctx, x, await this.linear(ov.out, lw.o, temps, 'o_proj')));
        const hn2 = await this.norm(x, lw.postNorm, temps);
        let mlpOut: Tensor;
        if (lw.dense) {
          const g = await this.linear(hn2, lw.dense.gate, temps, 'gate_proj');
          const u = await this.linear(hn2, lw.dense.up, temps, 'up_proj');
          const s = await run(planSiluMul(ctx, g, u));
          temps.push(s.out);
          mlpOut = await this.linear(s.out, lw.dense.down, temps, 'down_proj');
        } else {
          // moeLayer submits its own work: what came before goes first.
          this.flush();
          const r = await moeLayer(ctx, hn2, lw.moe!.weights, {
            route: { ...routeConfigOf(c), eScoreCorrectionBias: lw.moe!.bias },
            layout: 'masked',
            activations: this.opts.activations,
            temps,
          });
          temps.push(r.out, r.topkIdx, r.topkWeights);
          mlpOut = r.out;
        }
        await run(planAddInto(ctx, x, mlpOut));
      }
      const xn = await this.norm(x, this.weights.get('model.norm.weight').t, temps);
      const head = this.weights.get(c.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight');
      const logits = await this.linear(xn, head, temps, 'lm_head');
      this.flush();
      const all = (await readTensor(logits)) as Float32Array;
      return batch.map((_, i) => all.slice(i * c.vocabSize, (i + 1) * c.vocabSize));
    } finally {
      this.pending = [];
      schedMeta.destroy();
      await ctx.sync().catch(() => undefined);
      for (const t of temps) t.destroy();
    }
  }

  release(seq: number): void {
    this.allocator.release(seq);
  }

  destroy(): void {
    for (const t of [...this.owned, ...this.ones.values()]) t.destroy();
  }
}

/** Logits at every position of `tokens` for a fresh sequence `seq`, feeding one token per step. */
export async function prefillLogits(dec: Decoder, tokens: readonly number[], seq = 0): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const token of tokens) out.push((await dec.step([{ seq, token }]))[0]);
  return out;
}
