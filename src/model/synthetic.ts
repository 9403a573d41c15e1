// Synthetic checkpoints: a real Hugging Face layout (config.json, sharded *.safetensors,
// model.safetensors.index.json) with random weights, for models whose shapes matter and whose
// values do not (decode benchmarks at DeepSeek-V2-Lite's size, loader tests). Weights are drawn
// like a trained model's: linear layers ~N(0, initializer_range) after dequantization, norms near 1,
// so activations neither blow up nor vanish over the layers. FP8 weights are e4m3 codes with one
// f32 weight_scale_inv per 128x128 block, the layout DeepSeek's FP8 checkpoints use.
// Files are written a chunk at a time: a 16 GB checkpoint never sits in memory.
import { encodeE4M3, E4M3_MAX } from '../formats/fp8.ts';
import { encodeBF16 } from '../formats/half.ts';
import { DeepwgslError } from '../gpu/errors.ts';
import { blockScaleShape, expectedTensors, scaleName } from './checkpoint.ts';
import { parseModelConfig, type ModelConfig } from './config.ts';
import type { LoadProgress } from './load.ts';
import { seededRandom } from './sampling.ts';
import { encodeSafetensorsHeader, ST_DTYPE_BYTES, type StEntry } from './safetensors.ts';

type Json = Record<string, unknown>;

// DeepSeek-V2-Lite's config.json (deepseek-ai/DeepSeek-V2-Lite), hub style.
const V2_LITE: Json = {
  architectures: ['DeepseekV2ForCausalLM'],
  model_type: 'deepseek_v2',
  vocab_size: 102400,
  hidden_size: 2048,
  intermediate_size: 10944,
  moe_intermediate_size: 1408,
  num_hidden_layers: 27,
  num_attention_heads: 16,
  num_key_value_heads: 16,
  n_shared_experts: 2,
  n_routed_experts: 64,
  num_experts_per_tok: 6,
  ep_size: 1,
  routed_scaling_factor: 1.0,
  kv_lora_rank: 512,
  q_lora_rank: null,
  qk_rope_head_dim: 64,
  v_head_dim: 128,
  qk_nope_head_dim: 128,
  topk_method: 'greedy',
  n_group: 1,
  topk_group: 1,
  scoring_func: 'softmax',
  norm_topk_prob: false,
  aux_loss_alpha: 0.001,
  seq_aux: true,
  moe_layer_freq: 1,
  first_k_dense_replace: 1,
  hidden_act: 'silu',
  max_position_embeddings: 163840,
  initializer_range: 0.02,
  rms_norm_eps: 1e-6,
  use_cache: true,
  bos_token_id: 100000,
  eos_token_id: 100001,
  pretraining_tp: 1,
  tie_word_embeddings: false,
  rope_theta: 10000,
  rope_scaling: { type: 'yarn', factor: 40, original_max_position_embeddings: 4096, beta_fast: 32, beta_slow: 1, mscale: 0.707, mscale_all_dim: 0.707 },
  attention_bias: false,
  attention_dropout: 0.0,
  torch_dtype: 'bfloat16',
};

// A small DeepSeek-V3-style model: q LoRA, sigmoid scores with noaux_tc group routing, YaRN, and
// dims that leave partial 128-blocks (q_lora_rank 192, moe_intermediate 192).
const V3_TINY: Json = {
  architectures: ['DeepseekV3ForCausalLM'],
  model_type: 'deepseek_v3',
  vocab_size: 2048,
  hidden_size: 256,
  intermediate_size: 512,
  moe_intermediate_size: 192,
  num_hidden_layers: 3,
  num_attention_heads: 4,
  num_key_value_heads: 4,
  n_shared_experts: 1,
  n_routed_experts: 16,
  num_experts_per_tok: 4,
  routed_scaling_factor: 2.5,
  kv_lora_rank: 128,
  q_lora_rank: 192,
  qk_rope_head_dim: 32,
  v_head_dim: 64,
  qk_nope_head_dim: 64,
  topk_method: 'noaux_tc',
  n_group: 4,
  topk_group: 2,
  scoring_func: 'sigmoid',
  norm_topk_prob: true,
  moe_layer_freq: 1,
  first_k_dense_replace: 1,
  hidden_act: 'silu',
  max_position_embeddings: 4096,
  initializer_range: 0.02,
  rms_norm_eps: 1e-6,
  bos_token_id: 0,
  eos_token_id: 1,
  tie_word_embeddings: false,
  rope_theta: 10000,
  rope_scaling: { type: 'yarn', factor: 4, original_max_position_embeddings: 1024, beta_fast: 32, beta_slow: 1, mscale: 1, mscale_all_dim: 1 },
  attention_bias: false,
  torch_dtype: 'bfloat16',
};

/** V2-Lite's architecture at a size a unit test writes in milliseconds. */
const V2_TINY: Json = {
  ...V2_LITE,
  vocab_size: 1024,
  hidden_size: 256,
  intermediate_size: 512,
  moe_intermediate_size: 128,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 4,
  n_routed_experts: 8,
  num_experts_per_tok: 2,
  n_shared_experts: 1,
  kv_lora_rank: 128,
  qk_rope_head_dim: 32,
  v_head_dim: 64,
  qk_nope_head_dim: 64,
  max_position_embeddings: 4096,
  bos_token_id: 0,
  eos_token_id: 1,
};

export const SYNTH_PRESETS: Record<string, Json> = { 'v2-lite': V2_LITE, 'v3-tiny': V3_TINY, 'v2-tiny': V2_TINY };

export interface SynthOptions {
  preset: string;
  /** Overrides num_hidden_layers (a shrunken model with the preset's layer shapes). */
  layers?: number;
  /** Overrides vocab_size. */
  vocab?: number;
  /** Overrides n_routed_experts. */
  experts?: number;
  /** 'fp8': linear weights e4m3 + 128x128 block scales (default); 'bf16': all bf16. */
  dtype?: 'fp8' | 'bf16';
  seed?: number;
  /** Largest shard in bytes (default 4 GiB); one shard is written as model.safetensors. */
  shardBytes?: number;
  /** Replace a checkpoint already in the directory (its config, index and *.safetensors); else that is refused. */
  force?: boolean;
  onProgress?: (p: LoadProgress) => void;
}

export class SynthError extends DeepwgslError {
  override name = 'SynthError';
}

/** The config.json a synthetic checkpoint gets: the preset with the overrides, validated. */
export function synthConfig(opts: SynthOptions): { json: Json; config: ModelConfig } {
  const base = SYNTH_PRESETS[opts.preset];
  if (!base) throw new SynthError(`synth: unknown preset '${opts.preset}' (presets: ${Object.keys(SYNTH_PRESETS).join(', ')})`);
  const json: Json = { ...base };
  const override = (field: string, v: number | undefined, what: string) => {
    if (v === undefined) return;
    if (!Number.isInteger(v) || v < 1) throw new SynthError(`synth: ${what} must be a positive integer, got ${v}`);
    json[field] = v;
  };
  override('num_hidden_layers', opts.layers, 'layers');
  override('vocab_size', opts.vocab, 'vocab');
  // A shrunken vocabulary takes its special tokens from its first ids.
  if (opts.vocab !== undefined && [json.bos_token_id, json.eos_token_id].some((id) => (id as number) >= opts.vocab!)) Object.assign(json, { bos_token_id: 0, eos_token_id: 1 });
  override('n_routed_experts', opts.experts, 'experts');
  const dtype = opts.dtype ?? 'fp8';
  if (dtype === 'fp8') json.quantization_config = { activation_scheme: 'dynamic', fmt: 'e4m3', quant_method: 'fp8', weight_block_size: [128, 128] };
  else if (dtype !== 'bf16') throw new SynthError(`synth: dtype must be 'fp8' or 'bf16', got '${dtype}'`);
  return { json, config: parseModelConfig(json, `preset '${opts.preset}'`) };
}

/** One tensor of the file plan: how its values are drawn. */
interface SynthTensor extends StEntry {
  /** Values ~ N(mean, std) (before FP8 block scaling for e4m3 tensors). */
  mean: number;
  std: number;
}

/** The tensors in write order (each FP8 weight followed by its scales), with dtypes and distributions. */
export function synthTensors(config: ModelConfig, json: Json): SynthTensor[] {
  const std = typeof json.initializer_range === 'number' ? json.initializer_range : 0.02;
  const fp8 = config.fp8BlockSize !== null;
  const out: SynthTensor[] = [];
  for (const e of expectedTensors(config)) {
    const shape = [...e.shape];
    if (e.role === 'linear' && fp8) {
      out.push({ name: e.name, dtype: 'F8_E4M3', shape, mean: 0, std });
      out.push({ name: scaleName(e.name), dtype: 'F32', shape: blockScaleShape(shape[0], shape[1]), mean: 0, std });
    } else if (e.role === 'norm') out.push({ name: e.name, dtype: 'BF16', shape, mean: 1, std: 0.05 });
    // DeepSeek keeps the noaux_tc correction bias in f32; it shifts sigmoid scores in (0, 1).
    else if (e.role === 'bias') out.push({ name: e.name, dtype: 'F32', shape, mean: 0, std: 0.01 });
    else out.push({ name: e.name, dtype: 'BF16', shape, mean: 0, std });
  }
  return out;
}

const bytesOf = (t: StEntry) => t.shape.reduce((a, b) => a * b, 1) * ST_DTYPE_BYTES[t.dtype];

/** 32 random bits per call (as a number), from the samplers' seeded generator. */
function prng(seed: number): () => number {
  const u = seededRandom(seed);
  return () => u() * 2 ** 32;
}

function normalFrom(next: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log((next() + 1) / 2 ** 32)) * Math.cos((2 * Math.PI * next()) / 2 ** 32);
}

// E4M3 codes of a unit normal scaled so ~4.3 sigma (about a 128x128 block's largest of 16384
// draws) lands at E4M3_MAX, as per-block quantization of a trained weight places it.
const FP8_PER_SIGMA = E4M3_MAX / 4.3;

// Large tensors are windows of a pool of random codes at random offsets: drawing 16 GB one value at
// a time in JS takes minutes, copying windows runs at disk speed. Windows start at independent
// random offsets, so no two tensors (or experts) share their values.
const CHUNK = 16 << 20;
const POOL = 2 * CHUNK;
const pools = new Map<string, Uint8Array>();
function pool(t: SynthTensor): Uint8Array {
  const key = `${t.dtype}/${t.mean}/${t.std}`;
  let p = pools.get(key);
  if (p) return p;
  // 65536 codes of the distribution, then the pool as lookups by 16 random bits (cheap per byte).
  const z = normalFrom(prng(0x5eed));
  const next = prng(0x9001);
  p = new Uint8Array(POOL);
  if (t.dtype === 'F8_E4M3') {
    const codes = Uint8Array.from({ length: 65536 }, () => encodeE4M3(Math.max(-E4M3_MAX, Math.min(E4M3_MAX, z() * FP8_PER_SIGMA))));
    for (let i = 0; i < POOL; i += 2) {
      const r = next();
      p[i] = codes[r & 0xffff];
      p[i + 1] = codes[r >>> 16];
    }
  } else {
    const codes = Uint16Array.from({ length: 65536 }, () => encodeBF16(t.mean + t.std * z()));
    const u16 = new Uint16Array(p.buffer);
    for (let i = 0; i < u16.length; i += 2) {
      const r = next();
      u16[i] = codes[r & 0xffff];
      u16[i + 1] = codes[r >>> 16];
    }
  }
  pools.set(key, p);
  return p;
}

/** The next `length` bytes of tensor `t` (a whole number of elements, at most CHUNK). */
function draw(t: SynthTensor, next: () => number, length: number): Uint8Array {
  if (t.dtype !== 'F32') {
    const off = (next() % (POOL - CHUNK)) & ~3;
    return pool(t).subarray(off, off + length);
  }
  const f32 = new Float32Array(length / 4);
  const z = normalFrom(next);
  // Block scales: std / FP8_PER_SIGMA, varied per block (x0.8..x1.25) so a misplaced scale shows.
  if (t.name.endsWith('.weight_scale_inv')) for (let i = 0; i < f32.length; i++) f32[i] = (t.std / FP8_PER_SIGMA) * Math.exp(0.1 * z());
  else for (let i = 0; i < f32.length; i++) f32[i] = t.mean + t.std * z();
  return new Uint8Array(f32.buffer);
}

export interface SynthResult {
  dir: string;
  files: string[];
  /** Bytes of all safetensors files. */
  bytes: number;
  config: ModelConfig;
}

/** Files of a checkpoint the loader reads: a directory holding any of them holds a checkpoint. */
const isCheckpointFile = (name: string) => name === 'config.json' || name === 'model.safetensors.index.json' || name.endsWith('.safetensors');

/**
 * Writes the checkpoint into `dir` (created). A directory already holding checkpoint files is
 * refused unless `force`, which replaces them all (no stray shard or index of the old one stays).
 * Files are written under temporary names and renamed into place, config.json last: a directory
 * with one is complete.
 */
export async function writeSyntheticCheckpoint(dir: string, opts: SynthOptions): Promise<SynthResult> {
  const fs = await import('node:fs/promises');
  const { json, config } = synthConfig(opts);
  const tensors = synthTensors(config, json);
  const shardBytes = opts.shardBytes ?? 4 * 2 ** 30;
  if (!(shardBytes > 0)) throw new SynthError(`synth: shardBytes must be positive, got ${shardBytes}`);
  const path = (name: string) => `${dir.replace(/\/+$/, '')}/${name}`;
  await fs.mkdir(dir, { recursive: true });
  const old = (await fs.readdir(dir)).filter(isCheckpointFile);
  if (old.length && !opts.force) {
    throw new SynthError(`synth: ${dir} already holds a checkpoint (${old.slice(0, 4).join(', ')}${old.length > 4 ? ', ...' : ''}); pick an empty directory, or force (--force) to replace it`);
  }
  const partial = (name: string) => path(`${name}.partial`);
  const written: string[] = [];

  // Shards: consecutive tensors up to shardBytes, an FP8 weight and its scales kept together.
  const shards: SynthTensor[][] = [[]];
  let size = 0;
  for (let i = 0; i < tensors.length; i++) {
    const unit = tensors[i + 1]?.name === scaleName(tensors[i].name) ? [tensors[i], tensors[++i]] : [tensors[i]];
    const b = unit.reduce((a, t) => a + bytesOf(t), 0);
    if (size > 0 && size + b > shardBytes) {
      shards.push([]);
      size = 0;
    }
    shards[shards.length - 1].push(...unit);
    size += b;
  }
  const n = shards.length;
  const files = n === 1 ? ['model.safetensors'] : shards.map((_, i) => `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`);
  const total = tensors.reduce((a, t) => a + bytesOf(t), 0);
  let done = 0;
  const seed = opts.seed ?? 0;
  let index = 0;
  const weightMap: Record<string, string> = {};
  try {
    for (let s = 0; s < n; s++) {
      written.push(files[s]);
      const fh = await fs.open(partial(files[s]), 'w');
      try {
        await fh.write(encodeSafetensorsHeader(shards[s]).header);
        for (const t of shards[s]) {
          weightMap[t.name] = files[s];
          // One stream per tensor: its values do not depend on how the tensors are sharded.
          const next = prng(Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(++index, 0x85ebca6b));
          for (let left = bytesOf(t); left > 0; ) {
            const chunk = draw(t, next, Math.min(CHUNK, left));
            await fh.write(chunk);
            left -= chunk.length;
            done += chunk.length;
            opts.onProgress?.({ bytesDone: done, bytesTotal: total, tensor: t.name });
          }
        }
      } finally {
        await fh.close();
      }
    }
    const text: [string, string][] = [['config.json', JSON.stringify(json, null, 2)]];
    if (n > 1) text.unshift(['model.safetensors.index.json', JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2)]);
    for (const [name, data] of text) {
      written.push(name);
      await fs.writeFile(partial(name), data);
    }
    // The old checkpoint goes, config.json first (the directory is incomplete until the new one lands).
    for (const f of [...old].sort((a, b) => Number(b === 'config.json') - Number(a === 'config.json'))) await fs.rm(path(f));
    for (const f of written) await fs.rename(partial(f), path(f));
  } catch (e) {
    await Promise.all(written.map((f) => fs.rm(partial(f), { force: true })));
    throw e;
  }
  return { dir, files, bytes: total, config };
}
