// config.json of a DeepSeek-V3/V2-architecture checkpoint -> one normalised, typed ModelConfig.
// Reads the hub style (rope_scaling, scoring_func, topk_method), the newer rope_parameters style
// and DeepSeek-V2 configs (softmax routing, q_lora_rank null, no group limit, plain or YaRN rope).
// Anything the runtime would silently get wrong is refused with the field, the value and the file.
import type { ScoringFunc, TopkMethod } from '../kernels/moe/reference.ts';
import { DeepwgslError } from '../gpu/errors.ts';

export type RopeScaling =
  | { type: 'default' }
  | {
      type: 'yarn';
      factor: number;
      originalMaxPositionEmbeddings: number;
      betaFast: number;
      betaSlow: number;
      mscale: number;
      mscaleAllDim: number;
      /** Multiplies cos and sin; transformers' attention_factor (from the mscales when absent). */
      attentionFactor: number;
      truncate: boolean;
    };

export interface MoeConfig {
  nRoutedExperts: number;
  nSharedExperts: number;
  numExpertsPerTok: number;
  moeIntermediateSize: number;
  scoringFunc: ScoringFunc;
  topkMethod: TopkMethod;
  nGroup: number;
  topkGroup: number;
  normTopkProb: boolean;
  routedScalingFactor: number;
  /** Layer i is MoE when i >= firstKDenseReplace and i % moeLayerFreq == 0. */
  firstKDenseReplace: number;
  moeLayerFreq: number;
}

export interface ModelConfig {
  /** 'deepseek_v3' or 'deepseek_v2' (model_type). */
  modelType: string;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  /** Multi-token-prediction layers (num_nextn_predict_layers) stored after the decoder layers; not used. */
  nextnLayers: number;
  numHeads: number;
  /** null: queries come from one q_proj (V2-Lite); else q_a_proj -> q_a_layernorm -> q_b_proj. */
  qLoraRank: number | null;
  kvLoraRank: number;
  qkNopeHeadDim: number;
  qkRopeHeadDim: number;
  vHeadDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  rope: RopeScaling;
  /** Rope pairs are (2i, 2i+1) (DeepSeek's checkpoints) or (i, i + d/2). */
  ropeInterleave: boolean;
  /** Attention scale: qk_head_dim^-0.5, times mscale(factor, mscale_all_dim)^2 under YaRN. */
  softmaxScale: number;
  maxPositionEmbeddings: number;
  moe: MoeConfig | null;
  tieWordEmbeddings: boolean;
  bosTokenId: number | null;
  eosTokenIds: number[];
  /** Block-FP8 checkpoint: linear weights e4m3 with weight_scale_inv per block. */
  fp8BlockSize: [number, number] | null;
}

export class ConfigError extends DeepwgslError {
  override name = 'ConfigError';
}

type Json = Record<string, unknown>;

// Fields that change the math and that this runtime does not implement.
const REFUSED: [string, (v: unknown) => boolean, string][] = [
  ['hidden_act', (v) => v !== undefined && v !== 'silu', "'silu'"],
  ['attention_bias', (v) => v === true, 'false (no projection biases)'],
  ['mlp_bias', (v) => v === true, 'false (no MLP biases)'],
  ['use_sliding_window', (v) => v === true, 'false'],
];

/** Sizes, ids and positions are i32 (or u32) on the GPU. */
const MAX_INT = 2 ** 31 - 1;

/** Tensors a config may imply: the list is built before any tensor is read, and DeepSeek-V3 implies 45,395 (without its scales). */
export const MAX_TENSORS = 2 ** 20;

/** The tensors expectedTensors lists for `c`, counted without building the list (so it is bounded before it is built). */
export function tensorCount(c: Pick<ModelConfig, 'numLayers' | 'qLoraRank' | 'moe' | 'tieWordEmbeddings'>): number {
  const m = c.moe;
  // MoE layers: i in [firstKDenseReplace, numLayers) with i % moeLayerFreq == 0.
  const moeLayers = !m || c.numLayers <= m.firstKDenseReplace ? 0 : Math.floor((c.numLayers - 1) / m.moeLayerFreq) - Math.floor((m.firstKDenseReplace - 1) / m.moeLayerFreq);
  const moeMlp = m ? 1 + (m.topkMethod === 'noaux_tc' ? 1 : 0) + 3 * m.nRoutedExperts + (m.nSharedExperts > 0 ? 3 : 0) : 0;
  // Per layer: two norms, kv_a, its norm, kv_b, o, and q_proj or q_a, its norm, q_b; a dense MLP is 3.
  const attn = 6 + (c.qLoraRank === null ? 1 : 3);
  return 2 + (c.tieWordEmbeddings ? 0 : 1) + c.numLayers * attn + (c.numLayers - moeLayers) * 3 + moeLayers * moeMlp;
}

export function yarnMscale(scale: number, mscale = 1): number {
  return scale <= 1 ? 1 : 0.1 * mscale * Math.log(scale) + 1;
}

/** Parses config.json's text (or object); `file` names it in errors. */
export function parseModelConfig(src: string | Json, file = 'config.json'): ModelConfig {
  let j: Json;
  try {
    j = typeof src === 'string' ? (JSON.parse(src) as Json) : src;
  } catch (e) {
    throw new ConfigError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (j === null || typeof j !== 'object' || Array.isArray(j)) throw new ConfigError(`${file}: expected a JSON object`);
  const bad = (field: string, expected: string, got: unknown): never => {
    // JSON.stringify writes 1e999 (Infinity) as null.
    throw new ConfigError(`${file}: ${field} must be ${expected}, got ${typeof got === 'number' ? String(got) : JSON.stringify(got)}`);
  };
  const int = (field: string, min = 1, fallback?: number): number => {
    const v = j[field] ?? fallback;
    if (!Number.isInteger(v) || (v as number) < min || (v as number) > MAX_INT) bad(field, `an integer in ${min}..${MAX_INT}`, v);
    return v as number;
  };
  /** A finite number > min (>= min where `orEqual`). */
  const numf = (field: string, fallback: number, min: number, orEqual = false): number => {
    const v = j[field] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || (!orEqual && v === min)) bad(field, `a finite number ${orEqual ? '>=' : '>'} ${min}`, v);
    return v as number;
  };
  const bool = (field: string, fallback: boolean): boolean => {
    const v = j[field] ?? fallback;
    if (typeof v !== 'boolean') bad(field, 'true or false', v);
    return v as boolean;
  };

  const modelType = (j.model_type ?? 'deepseek_v3') as string;
  if (modelType !== 'deepseek_v3' && modelType !== 'deepseek_v2') bad('model_type', "'deepseek_v3' or 'deepseek_v2'", j.model_type);
  const v2 = modelType === 'deepseek_v2';
  for (const [field, refused, expected] of REFUSED) if (refused(j[field])) bad(field, expected, j[field]);

  const numHeads = int('num_attention_heads');
  const qLoraRank = j.q_lora_rank === null || j.q_lora_rank === undefined ? null : int('q_lora_rank');
  const qkNopeHeadDim = int('qk_nope_head_dim');
  const qkRopeHeadDim = int('qk_rope_head_dim', 2);
  if (qkRopeHeadDim % 2) bad('qk_rope_head_dim', 'even (rope rotates pairs)', qkRopeHeadDim);

  const rope = parseRope(j, bad, int('max_position_embeddings', 1, 4096));
  const ropeTheta = (() => {
    const rp = j.rope_parameters as Json | undefined;
    const v = rp?.rope_theta ?? j.rope_theta ?? 10000;
    // YaRN divides by log(theta).
    if (typeof v !== 'number' || !Number.isFinite(v) || !(v > 1)) bad('rope_theta', 'a finite number > 1', v);
    return v as number;
  })();
  let softmaxScale = (qkNopeHeadDim + qkRopeHeadDim) ** -0.5;
  if (rope.type === 'yarn' && rope.mscaleAllDim) softmaxScale *= yarnMscale(rope.factor, rope.mscaleAllDim) ** 2;

  const nRouted = j.n_routed_experts === null || j.n_routed_experts === undefined ? 0 : int('n_routed_experts', 0);
  let moe: MoeConfig | null = null;
  if (nRouted > 0) {
    const scoringFunc = (j.scoring_func ?? (v2 ? 'softmax' : 'sigmoid')) as ScoringFunc;
    if (scoringFunc !== 'softmax' && scoringFunc !== 'sigmoid') bad('scoring_func', "'softmax' or 'sigmoid'", j.scoring_func);
    const topkMethod = (j.topk_method ?? (v2 ? 'greedy' : 'noaux_tc')) as TopkMethod;
    if (!['greedy', 'group_limited_greedy', 'noaux_tc'].includes(topkMethod)) {
      bad('topk_method', "'greedy', 'group_limited_greedy' or 'noaux_tc'", j.topk_method);
    }
    const grouped = topkMethod !== 'greedy';
    const nGroup = grouped ? int('n_group') : 1;
    const topkGroup = grouped ? int('topk_group') : 1;
    if (nRouted % nGroup) bad('n_group', `a divisor of n_routed_experts (${nRouted})`, nGroup);
    if (topkGroup > nGroup) bad('topk_group', `at most n_group (${nGroup})`, topkGroup);
    const topk = int('num_experts_per_tok');
    if (topk > (nRouted / nGroup) * topkGroup) bad('num_experts_per_tok', `at most the ${(nRouted / nGroup) * topkGroup} experts of topk_group groups`, topk);
    moe = {
      nRoutedExperts: nRouted,
      nSharedExperts: int('n_shared_experts', 0, 0),
      numExpertsPerTok: topk,
      moeIntermediateSize: int('moe_intermediate_size'),
      scoringFunc,
      topkMethod,
      nGroup,
      topkGroup,
      normTopkProb: bool('norm_topk_prob', !v2),
      routedScalingFactor: numf('routed_scaling_factor', 1, 0),
      firstKDenseReplace: int('first_k_dense_replace', 0, 0),
      moeLayerFreq: int('moe_layer_freq', 1, 1),
    };
  }

  const q = j.quantization_config as Json | undefined;
  let fp8BlockSize: [number, number] | null = null;
  if (q !== undefined && q !== null) {
    if (q.quant_method !== 'fp8') bad('quantization_config.quant_method', "'fp8' (block-FP8 checkpoints)", q.quant_method);
    if (q.fmt !== undefined && q.fmt !== 'e4m3') bad('quantization_config.fmt', "'e4m3'", q.fmt);
    const bs = q.weight_block_size;
    if (!Array.isArray(bs) || bs.length !== 2 || bs[0] !== 128 || bs[1] !== 128) bad('quantization_config.weight_block_size', '[128, 128]', bs);
    fp8BlockSize = [128, 128];
  }
  const vocabSize = int('vocab_size');
  const eos = j.eos_token_id;
  const eosTokenIds = eos === null || eos === undefined ? [] : Array.isArray(eos) ? (eos as number[]) : [eos as number];
  if (!eosTokenIds.every((e) => Number.isInteger(e) && e >= 0 && e < vocabSize)) bad('eos_token_id', `a token id in 0..${vocabSize - 1} or a list of them`, eos);
  const bos = j.bos_token_id;
  if (bos !== undefined && bos !== null && !(Number.isInteger(bos) && (bos as number) >= 0 && (bos as number) < vocabSize)) bad('bos_token_id', `a token id in 0..${vocabSize - 1} or null`, bos);

  const numLayers = int('num_hidden_layers');
  const tieWordEmbeddings = bool('tie_word_embeddings', false);
  const tensors = tensorCount({ numLayers, qLoraRank, moe, tieWordEmbeddings });
  if (tensors > MAX_TENSORS) {
    const experts = moe ? ` and n_routed_experts ${moe.nRoutedExperts}` : '';
    throw new ConfigError(`${file}: num_hidden_layers ${numLayers}${experts} imply ${tensors} tensors, over the ${MAX_TENSORS} a checkpoint may hold here (DeepSeek-V3 has 45,395)`);
  }

  return {
    modelType,
    vocabSize,
    hiddenSize: int('hidden_size'),
    intermediateSize: int('intermediate_size'),
    numLayers,
    nextnLayers: int('num_nextn_predict_layers', 0, 0),
    numHeads,
    qLoraRank,
    kvLoraRank: int('kv_lora_rank'),
    qkNopeHeadDim,
    qkRopeHeadDim,
    vHeadDim: int('v_head_dim'),
    rmsNormEps: numf('rms_norm_eps', 1e-6, 0, true),
    ropeTheta,
    rope,
    // V2 checkpoints rotate interleaved pairs too (transformers' V2 code views them as complex numbers).
    ropeInterleave: bool('rope_interleave', true),
    softmaxScale,
    maxPositionEmbeddings: int('max_position_embeddings', 1, 4096),
    moe,
    tieWordEmbeddings,
    bosTokenId: Number.isInteger(bos) ? (bos as number) : null,
    eosTokenIds,
    fp8BlockSize,
  };
}

function parseRope(j: Json, bad: (f: string, e: string, g: unknown) => never, maxPos: number): RopeScaling {
  // Newer files: rope_parameters {rope_type, rope_theta, factor, ...}; hub files: rope_scaling {type|rope_type, ...}.
  const [field, r] = j.rope_parameters !== undefined && j.rope_parameters !== null
    ? ['rope_parameters', j.rope_parameters as Json]
    : ['rope_scaling', j.rope_scaling as Json | null | undefined];
  if (r === null || r === undefined) return { type: 'default' };
  if (typeof r !== 'object' || Array.isArray(r)) bad(field, 'an object', r);
  const type = r.rope_type ?? r.type ?? 'default';
  if (type === 'default') return { type: 'default' };
  if (type !== 'yarn') bad(`${field}.rope_type`, "'default' or 'yarn'", type);
  const origMax = r.original_max_position_embeddings;
  if (!Number.isInteger(origMax) || (origMax as number) < 1 || (origMax as number) > MAX_INT) bad(`${field}.original_max_position_embeddings`, `an integer in 1..${MAX_INT}`, origMax);
  const factor = r.factor ?? maxPos / (origMax as number);
  if (typeof factor !== 'number' || !Number.isFinite(factor) || !(factor > 0)) bad(`${field}.factor`, 'a finite number > 0', factor);
  const num = (k: string, fallback: number): number => {
    const v = r[k];
    if (v === undefined || v === null || v === 0) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) bad(`${field}.${k}`, 'a finite number', v);
    return v as number;
  };
  const mscale = num('mscale', 0);
  const mscaleAllDim = num('mscale_all_dim', 0);
  const f = factor as number;
  const attentionFactor =
    r.attention_factor !== undefined && r.attention_factor !== null
      ? num('attention_factor', 1)
      : mscale && mscaleAllDim ? yarnMscale(f, mscale) / yarnMscale(f, mscaleAllDim) : yarnMscale(f);
  const truncate = r.truncate ?? true;
  if (typeof truncate !== 'boolean') bad(`${field}.truncate`, 'true or false', truncate);
  return {
    type: 'yarn',
    factor: f,
    originalMaxPositionEmbeddings: origMax as number,
    betaFast: num('beta_fast', 32),
    betaSlow: num('beta_slow', 1),
    mscale,
    mscaleAllDim,
    attentionFactor,
    truncate: truncate as boolean,
  };
}

/** Layer i's MLP kind. */
export function isMoeLayer(c: ModelConfig, layer: number): boolean {
  return c.moe !== null && layer >= c.moe.firstKDenseReplace && layer % c.moe.moeLayerFreq === 0;
}

/**
 * Rope inverse frequencies, float32 as transformers computes them (base^(2i/d) in f32), with
 * YaRN's blend of interpolated and extrapolated frequencies.
 */
export function ropeInvFreq(c: ModelConfig): Float32Array {
  const d = c.qkRopeHeadDim;
  const half = d / 2;
  const f = Math.fround;
  const pos = Array.from({ length: half }, (_, i) => f(c.ropeTheta ** f((2 * i) / d)));
  const r = c.rope;
  if (r.type === 'default') return Float32Array.from(pos, (p) => f(1 / p));
  const corr = (rot: number) => (d * Math.log(r.originalMaxPositionEmbeddings / (rot * 2 * Math.PI))) / (2 * Math.log(c.ropeTheta));
  let low = corr(r.betaFast);
  let high = corr(r.betaSlow);
  if (r.truncate) {
    low = Math.floor(low);
    high = Math.ceil(high);
  }
  low = Math.max(low, 0);
  high = Math.min(high, d - 1);
  if (low === high) high += 0.001;
  return Float32Array.from(pos, (p, i) => {
    const ramp = Math.min(1, Math.max(0, f(f(i - low) / f(high - low))));
    const extrap = f(1 - ramp);
    const inter = f(1 / f(r.factor * p));
    const ext = f(1 / p);
    return f(f(inter * f(1 - extrap)) + f(ext * extrap));
  });
}

/** Multiplier on cos and sin (YaRN's attention_factor; 1 for plain rope). */
export function ropeAttentionFactor(c: ModelConfig): number {
  return c.rope.type === 'yarn' ? c.rope.attentionFactor : 1;
}
