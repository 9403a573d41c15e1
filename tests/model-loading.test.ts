// Config parsing, safetensors headers, checkpoint validation and sampling: the CPU side of the model runtime.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseModelConfig, ropeAttentionFactor, ropeInvFreq, yarnMscale } from '../src/model/config.ts';
import { expectedTensors, openCheckpoint } from '../src/model/checkpoint.ts';
import { planWeights } from '../src/model/load.ts';
import { readSafetensorsHeader, writeSafetensors } from '../src/model/safetensors.ts';
import { sampleToken, seededRandom } from '../src/model/sampling.ts';
import type { ByteFile, ModelSource } from '../src/model/source.ts';

const FIX = 'tests/fixtures/tiny-v3-a';
const v3 = JSON.parse(readFileSync(`${FIX}/config.json`, 'utf8')) as Record<string, unknown>;

/** An in-memory source: file name -> bytes. */
function memSource(files: Record<string, Uint8Array | string>): ModelSource {
  const bytes = (n: string) => (typeof files[n] === 'string' ? new TextEncoder().encode(files[n] as string) : (files[n] as Uint8Array));
  const open = (name: string): ByteFile => ({
    name,
    size: async () => bytes(name).byteLength,
    read: async (o, l) => bytes(name).slice(o, o + l),
  });
  return { where: 'mem', has: async (n) => n in files, list: async () => Object.keys(files), open };
}

describe('model config', () => {
  it('hub style V3: YaRN, sigmoid noaux_tc routing, FP8 blocks, softmax scale with mscale^2', () => {
    const c = parseModelConfig(v3);
    expect(c.rope).toMatchObject({ type: 'yarn', factor: 4, originalMaxPositionEmbeddings: 1024, attentionFactor: 1 });
    expect(c.moe).toMatchObject({ scoringFunc: 'sigmoid', topkMethod: 'noaux_tc', nGroup: 4, topkGroup: 2, normTopkProb: true, routedScalingFactor: 2.5, firstKDenseReplace: 1 });
    expect(c.fp8BlockSize).toEqual([128, 128]);
    expect(c.softmaxScale).toBeCloseTo(48 ** -0.5 * yarnMscale(4, 1) ** 2, 12);
  });

  it('newer rope_parameters style reads the same rope', () => {
    const { rope_scaling: rs, rope_theta: theta, ...rest } = v3 as { rope_scaling: Record<string, unknown>; rope_theta: number };
    const c = parseModelConfig({ ...rest, rope_parameters: { rope_type: 'yarn', rope_theta: theta, ...rs } });
    const ref = parseModelConfig(v3);
    expect(c.rope).toEqual(ref.rope);
    expect(Array.from(ropeInvFreq(c))).toEqual(Array.from(ropeInvFreq(ref)));
  });

  it('V2 style: softmax greedy routing, no q LoRA, plain rope, attention factor from mscales', () => {
    const { rope_scaling: _r, scoring_func: _s, topk_method: _t, n_group: _g, topk_group: _tg, norm_topk_prob: _n, ...rest } = v3;
    const c = parseModelConfig({ ...rest, model_type: 'deepseek_v2', q_lora_rank: null, quantization_config: null });
    expect(c.qLoraRank).toBeNull();
    expect(c.rope).toEqual({ type: 'default' });
    expect(c.moe).toMatchObject({ scoringFunc: 'softmax', topkMethod: 'greedy', nGroup: 1, topkGroup: 1, normTopkProb: false });
    expect(ropeAttentionFactor(c)).toBe(1);
    expect(c.softmaxScale).toBeCloseTo(48 ** -0.5, 12);
    const y = parseModelConfig({ ...v3, rope_scaling: { type: 'yarn', factor: 40, original_max_position_embeddings: 4096, mscale: 0.707, mscale_all_dim: 0.707 } });
    expect(ropeAttentionFactor(y)).toBe(1);
    const z = parseModelConfig({ ...v3, rope_scaling: { type: 'yarn', factor: 40, original_max_position_embeddings: 4096 } });
    expect(ropeAttentionFactor(z)).toBeCloseTo(0.1 * Math.log(40) + 1, 12);
  });

  it('YaRN inverse frequencies blend interpolation and extrapolation', () => {
    const c = parseModelConfig(v3);
    const f = ropeInvFreq(c);
    // d = 16, theta 1e4, original 1024: low = floor(2.53) = 2, high = ceil(5.8) = 6.
    expect(f[0]).toBe(1);
    expect(f[1]).toBe(Math.fround(1 / Math.fround(10000 ** Math.fround(2 / 16))));
    expect(f[7]).toBeCloseTo(1 / (4 * 10000 ** (14 / 16)), 9);
    expect(f[4]).toBeGreaterThan(1 / (4 * 10000 ** (8 / 16)));
    expect(f[4]).toBeLessThan(1 / 10000 ** (8 / 16));
  });

  it('refuses what it would get wrong, naming the file and field', () => {
    expect(() => parseModelConfig({ ...v3, hidden_act: 'gelu' }, 'x/config.json')).toThrow(/x\/config.json: hidden_act must be 'silu', got "gelu"/);
    expect(() => parseModelConfig({ ...v3, scoring_func: 'sqrtsoftplus' })).toThrow(/scoring_func must be 'softmax' or 'sigmoid'/);
    expect(() => parseModelConfig({ ...v3, topk_method: 'auxfree' })).toThrow(/topk_method must be/);
    expect(() => parseModelConfig({ ...v3, rope_scaling: { type: 'longrope', factor: 2 } })).toThrow(/rope_scaling.rope_type must be 'default' or 'yarn', got "longrope"/);
    expect(() => parseModelConfig({ ...v3, n_group: 3 })).toThrow(/n_group must be a divisor of n_routed_experts \(16\)/);
    expect(() => parseModelConfig({ ...v3, quantization_config: { quant_method: 'gptq' } })).toThrow(/quant_method must be 'fp8'/);
    expect(() => parseModelConfig({ ...v3, quantization_config: { quant_method: 'fp8', weight_block_size: [64, 64] } })).toThrow(/weight_block_size must be \[128, 128\]/);
    expect(() => parseModelConfig({ ...v3, attention_bias: true })).toThrow(/attention_bias must be false/);
    expect(() => parseModelConfig({ ...v3, model_type: 'llama' })).toThrow(/model_type must be 'deepseek_v3' or 'deepseek_v2'/);
    expect(() => parseModelConfig({ ...v3, qk_rope_head_dim: 15 })).toThrow(/qk_rope_head_dim must be even/);
    expect(() => parseModelConfig('{"hidden_size": ')).toThrow(/config.json: not valid JSON/);
    expect(() => parseModelConfig({ ...v3, num_experts_per_tok: 9 })).toThrow(/num_experts_per_tok must be at most the 8 experts/);
  });
});

describe('safetensors and checkpoints', () => {
  const f32 = (vals: number[]) => new Uint8Array(Float32Array.from(vals).buffer);
  const file = (bytes: Uint8Array): ByteFile => ({ name: 'w.safetensors', size: async () => bytes.byteLength, read: async (o, l) => bytes.slice(o, o + l) });

  it('parses what it writes; offsets are absolute', async () => {
    const b = writeSafetensors([{ name: 'a', dtype: 'F32', shape: [2], data: f32([1, 2]) }, { name: 'b', dtype: 'BF16', shape: [1, 2], data: new Uint8Array(4) }]);
    const h = await readSafetensorsHeader(file(b));
    expect(h.get('b')).toMatchObject({ dtype: 'BF16', shape: [1, 2], byteLength: 4 });
    expect(new Float32Array(b.slice(h.get('a')!.offset, h.get('a')!.offset + 8).buffer)[1]).toBe(2);
  });

  it('truncated, corrupt and inconsistent headers name the file and tensor', async () => {
    const good = writeSafetensors([{ name: 'w', dtype: 'F32', shape: [4], data: f32([1, 2, 3, 4]) }]);
    await expect(readSafetensorsHeader(file(good.slice(0, 5)))).rejects.toThrow(/w.safetensors: 5 bytes, too short/);
    await expect(readSafetensorsHeader(file(good.slice(0, 20)))).rejects.toThrow(/header length \d+ runs past the end .*truncated/);
    await expect(readSafetensorsHeader(file(good.slice(0, good.length - 4)))).rejects.toThrow(/tensor 'w': data_offsets end 16 is past the 12 data bytes .*truncated/);
    const huge = good.slice();
    new DataView(huge.buffer).setBigUint64(0, 2n ** 40n, true);
    await expect(readSafetensorsHeader(file(huge))).rejects.toThrow(/over the format's limit/);
    const corrupt = good.slice();
    corrupt[9] = 0x7b;
    corrupt[10] = 0x7b;
    await expect(readSafetensorsHeader(file(corrupt))).rejects.toThrow(/header is not valid UTF-8 JSON .*corrupt/);
    const mk = (entry: object) => {
      const h = new TextEncoder().encode(JSON.stringify({ w: entry }));
      const out = new Uint8Array(8 + h.length + 16);
      new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
      out.set(h, 8);
      return file(out);
    };
    await expect(readSafetensorsHeader(mk({ dtype: 'F64', shape: [2], data_offsets: [0, 16] }))).rejects.toThrow(/tensor 'w': dtype "F64" is not supported/);
    await expect(readSafetensorsHeader(mk({ dtype: 'F32', shape: [3], data_offsets: [0, 16] }))).rejects.toThrow(/tensor 'w': data_offsets \[0, 16\] hold 16 bytes, but F32 \[3\] needs 12/);
    await expect(readSafetensorsHeader(mk({ dtype: 'F32', shape: [-1], data_offsets: [0, 16] }))).rejects.toThrow(/shape \[-1\] is not a list/);
    await expect(readSafetensorsHeader(mk({ dtype: 'F32', shape: [4], data_offsets: [8, 4] }))).rejects.toThrow(/data_offsets \[8,4\] is not \[begin, end\]/);
  });

  const fixtureFiles = () => ({ 'config.json': readFileSync(`${FIX}/config.json`, 'utf8'), 'model.safetensors': new Uint8Array(readFileSync(`${FIX}/model.safetensors`)) });

  it('opens the fixture and plans its GPU bytes; FP8 stays FP8', async () => {
    const ck = await openCheckpoint(memSource(fixtureFiles()));
    expect(ck.expected.length).toBe(expectedTensors(ck.config).length);
    const plan = planWeights(ck);
    expect(plan.paramsByDtype.F8_E4M3).toBeGreaterThan(3e6);
    expect(plan.tensors.find((t) => t.expected.name === 'model.layers.0.mlp.gate_proj.weight')!.dtype).toBe('e4m3');
  });

  it('missing tensors, wrong shapes, missing scales and stray shards are named', async () => {
    const files = fixtureFiles();
    const cfg = JSON.parse(files['config.json']);
    await expect(openCheckpoint(memSource({ ...files, 'config.json': JSON.stringify({ ...cfg, num_hidden_layers: 4 }) }))).rejects.toThrow(/lacks tensors the config needs: model.layers.3.input_layernorm.weight, /);
    await expect(openCheckpoint(memSource({ ...files, 'config.json': JSON.stringify({ ...cfg, kv_lora_rank: 32 }) }))).rejects.toThrow(
      /model.safetensors: tensor 'model.layers.0.self_attn.kv_a_proj_with_mqa.weight' has shape \[80, 256\], the config implies \[48, 256\]/,
    );
    await expect(openCheckpoint(memSource({ ...files, 'config.json': JSON.stringify({ ...cfg, quantization_config: null }) }))).rejects.toThrow(/is F8_E4M3 but config.json has no quantization_config/);
    const w = writeSafetensors([{ name: 'model.norm.weight', dtype: 'F32', shape: [256], data: new Uint8Array(1024) }]);
    await expect(openCheckpoint(memSource({ ...files, 'model.safetensors.index.json': JSON.stringify({ weight_map: { 'model.norm.weight': 'b.safetensors', x: 'c.safetensors' } }), 'b.safetensors': w }))).rejects.toThrow(
      /lists shard 'c.safetensors', which is missing/,
    );
    await expect(openCheckpoint(memSource({ 'model.safetensors': files['model.safetensors'] }))).rejects.toThrow(/mem: no config.json/);
  });
});

describe('sampling', () => {
  const logits = [0.1, 3, 2.9, -1, 2, NaN];
  it('greedy is the first maximum; top-k 1 and tiny top-p are greedy too', () => {
    const r = seededRandom(1);
    expect(sampleToken(logits, {}, r)).toBe(1);
    expect(sampleToken(logits, { temperature: 5, topK: 1 }, r)).toBe(1);
    expect(sampleToken(logits, { temperature: 1, topP: 0.01 }, r)).toBe(1);
  });
  it('a seed repeats the draws; top-k keeps draws among the k best; frequencies follow softmax', () => {
    const draw = (seed: number) => Array.from({ length: 20 }, ((r) => () => sampleToken(logits, { temperature: 1 }, r))(seededRandom(seed)));
    expect(draw(7)).toEqual(draw(7));
    const r = seededRandom(3);
    const counts = new Array(6).fill(0);
    for (let i = 0; i < 20000; i++) counts[sampleToken(logits, { temperature: 1, topK: 3 }, r)]++;
    expect(counts[0] + counts[3] + counts[5]).toBe(0);
    const p1 = Math.exp(3) / (Math.exp(3) + Math.exp(2.9) + Math.exp(2));
    expect(Math.abs(counts[1] / 20000 - p1)).toBeLessThan(0.02);
  });
  it('bad options are refused', () => {
    expect(() => sampleToken(logits, { temperature: -1 }, Math.random)).toThrow(/temperature must be a finite number >= 0/);
    expect(() => sampleToken(logits, { temperature: 1, topP: 0 }, Math.random)).toThrow(/topP must be a number in \(0, 1\]/);
  });
});
