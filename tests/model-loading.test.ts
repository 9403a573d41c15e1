// Config parsing, safetensors headers, checkpoint validation and sampling: the CPU side of the model
// runtime, with hostile inputs (configs out of range, shard names outside the folder, oversized
// files, servers without Range) refused before they cost memory or time.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { MAX_TENSORS, parseModelConfig, ropeAttentionFactor, ropeInvFreq, tensorCount, yarnMscale } from '../src/model/config.ts';
import { expectedTensors, openCheckpoint } from '../src/model/checkpoint.ts';
import { planWeights } from '../src/model/load.ts';
import { firstNonFinite, readSafetensorsHeader, writeSafetensors } from '../src/model/safetensors.ts';
import { checkLogits, parseTokenIds } from '../src/model/generate.ts';
import { sampleToken, seededRandom } from '../src/model/sampling.ts';
import { dirSource, filesSource, MAX_JSON_BYTES, readText, urlSource, type ByteFile, type ModelSource } from '../src/model/source.ts';

const FIX = 'tests/fixtures/tiny-v3-a';
const v3 = JSON.parse(readFileSync(`${FIX}/config.json`, 'utf8')) as Record<string, unknown>;
const fixtureFiles = () => ({ 'config.json': readFileSync(`${FIX}/config.json`, 'utf8'), 'model.safetensors': new Uint8Array(readFileSync(`${FIX}/model.safetensors`)) });

/** An in-memory source: file name -> bytes; `opened` lists the names read. */
function memSource(files: Record<string, Uint8Array | string>, opened: string[] = []): ModelSource {
  const bytes = (n: string) => (typeof files[n] === 'string' ? new TextEncoder().encode(files[n] as string) : (files[n] as Uint8Array));
  const open = (name: string): ByteFile => ({
    name,
    size: async () => bytes(name).byteLength,
    read: async (o, l) => {
      opened.push(name);
      return bytes(name).slice(o, o + l);
    },
  });
  return { where: 'mem', has: async (n) => n in files, list: async () => Object.keys(files), open };
}

const root = mkdtempSync(`${tmpdir()}/deepwgsl-loading-`);
afterAll(() => rmSync(root, { recursive: true, force: true }));

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

  it('firstNonFinite finds NaN and Inf in every dtype (FP8 NaN codes too), at any offset, and nothing in finite extremes', () => {
    const u16 = (vals: number[]) => new Uint8Array(Uint16Array.from(vals).buffer);
    const f32b = (vals: number[]) => new Uint8Array(Float32Array.from(vals).buffer);
    // Finite extremes: e4m3 448 (0x7e, 0xfe), bf16 and f16 max, f32 max and a subnormal.
    expect(firstNonFinite(Uint8Array.from([0x7e, 0xfe, 0, 0x80, 1, 0x7e, 0x7e]), 'F8_E4M3')).toBe(-1);
    expect(firstNonFinite(u16([0x7f7f, 0xff7f, 0, 1, 0x8000]), 'BF16')).toBe(-1);
    expect(firstNonFinite(u16([0x7bff, 0xfbff, 0x3c00]), 'F16')).toBe(-1);
    expect(firstNonFinite(f32b([3.4e38, -3.4e38, 1e-45]), 'F32')).toBe(-1);
    for (let at = 0; at < 9; at++) {
      const e4 = new Uint8Array(9).fill(0x38);
      e4[at] = at % 2 ? 0xff : 0x7f;
      expect(firstNonFinite(e4, 'F8_E4M3')).toBe(at);
      // An unaligned view (a tensor's bytes inside a larger read) is scanned the same.
      const wide = new Uint8Array(12);
      wide.set(e4, 3);
      expect(firstNonFinite(wide.subarray(3, 12), 'F8_E4M3')).toBe(at);
    }
    for (let at = 0; at < 5; at++) {
      const bf = [0x3f80, 0x3f80, 0x3f80, 0x3f80, 0x3f80];
      bf[at] = [0x7fc0, 0x7f80, 0xff80, 0xffc1, 0x7f81][at];
      expect(firstNonFinite(u16(bf), 'BF16')).toBe(at);
      const h = [0x3c00, 0x3c00, 0x3c00, 0x3c00, 0x3c00];
      h[at] = [0x7c00, 0xfc00, 0x7e00, 0xfe01, 0x7c01][at];
      expect(firstNonFinite(u16(h), 'F16')).toBe(at);
      const f = [1, 2, 3, 4, 5];
      f[at] = [NaN, Infinity, -Infinity, NaN, Infinity][at];
      expect(firstNonFinite(f32b(f), 'F32')).toBe(at);
    }
  });

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

describe('token ids and logits', () => {
  it('token ids are decimal digits inside the vocabulary: empty fields, hex, exponents and signs are refused', () => {
    expect(parseTokenIds(' 1, 2 ,007', 512, ',', '--tokens')).toEqual([1, 2, 7]);
    expect(() => parseTokenIds('1,,2', 512, ',', '--tokens')).toThrow("--tokens: an empty field (field 2 of '1,,2') is not a token id: expected decimal ids in 0..511");
    for (const bad of ['0x1ff', '1e1', '-1', '+1', '1.0', '512', 'Infinity', '1_0']) {
      expect(() => parseTokenIds(`3,${bad}`, 512, ',', '--tokens')).toThrow(`--tokens: '${bad}' (field 2 of '3,${bad}') is not a token id`);
    }
    expect(() => parseTokenIds('', 512, /[\s,]+/, 'prompt')).toThrow(/prompt: an empty field/);
  });

  it('logits holding NaN or Inf name the step and the token id', () => {
    expect(() => checkLogits([0, 1, 2], 'step 3')).not.toThrow();
    expect(() => checkLogits([0, Infinity, NaN], 'generate: prompt 0, new token 4')).toThrow('generate: prompt 0, new token 4: the logits hold Infinity at token id 1, so no token can be chosen');
    expect(() => checkLogits(Float32Array.of(0, -Infinity), 'x')).toThrow(/hold -Infinity at token id 1/);
  });
});

describe('hostile configs: refused before anything is built', () => {
  it('a config implying millions of tensors is refused in milliseconds, naming the fields', async () => {
    const t0 = performance.now();
    expect(() => parseModelConfig({ ...v3, num_hidden_layers: 2_000_000 })).toThrow(/num_hidden_layers 2000000 and n_routed_experts 16 imply \d+ tensors, over the 1048576/);
    expect(() => parseModelConfig({ ...v3, n_routed_experts: 100_000_000 })).toThrow(/n_routed_experts 100000000 imply \d+ tensors/);
    // The same through the loader (info and the decode page open checkpoints this way).
    const files = fixtureFiles();
    await expect(openCheckpoint(memSource({ ...files, 'config.json': JSON.stringify({ ...v3, num_hidden_layers: 2_000_000 }) }))).rejects.toThrow(/imply \d+ tensors, over/);
    expect(performance.now() - t0).toBeLessThan(200);
  });

  it('values out of range or not finite name the field and the value as written', () => {
    expect(() => parseModelConfig('{"rope_theta": 1e999}'.replace('{', `${JSON.stringify(v3).slice(0, -1)},`))).toThrow(/rope_theta must be a finite number > 1, got Infinity/);
    expect(() => parseModelConfig({ ...v3, rope_theta: 1 })).toThrow(/rope_theta must be a finite number > 1, got 1/);
    expect(() => parseModelConfig({ ...v3, rope_scaling: { ...(v3.rope_scaling as object), factor: Infinity } })).toThrow(/rope_scaling.factor must be a finite number > 0, got Infinity/);
    expect(() => parseModelConfig({ ...v3, rms_norm_eps: -1e-6 })).toThrow(/rms_norm_eps must be a finite number >= 0, got -0.000001/);
    expect(() => parseModelConfig({ ...v3, routed_scaling_factor: 0 })).toThrow(/routed_scaling_factor must be a finite number > 0, got 0/);
    expect(() => parseModelConfig({ ...v3, max_position_embeddings: 2 ** 31 })).toThrow(/max_position_embeddings must be an integer in 1\.\.2147483647, got 2147483648/);
    expect(() => parseModelConfig({ ...v3, hidden_size: 1.5 })).toThrow(/hidden_size must be an integer in 1\.\.2147483647, got 1.5/);
    expect(() => parseModelConfig({ ...v3, eos_token_id: 512 })).toThrow(/eos_token_id must be a token id in 0\.\.511 or a list of them, got 512/);
    expect(() => parseModelConfig({ ...v3, bos_token_id: 'x' })).toThrow(/bos_token_id must be a token id in 0\.\.511 or null, got "x"/);
    expect(() => parseModelConfig({ ...v3, num_nextn_predict_layers: -1 })).toThrow(/num_nextn_predict_layers must be an integer in 0\.\./);
    expect(() => parseModelConfig('null')).toThrow(/config.json: expected a JSON object/);
  });

  it('tensorCount counts what expectedTensors lists, for every layout', () => {
    const variants = [
      v3,
      { ...v3, q_lora_rank: null, tie_word_embeddings: true },
      { ...v3, moe_layer_freq: 2, first_k_dense_replace: 1, num_hidden_layers: 6, n_shared_experts: 0 },
      { ...v3, moe_layer_freq: 3, first_k_dense_replace: 0, num_hidden_layers: 7, topk_method: 'group_limited_greedy' },
      { ...v3, first_k_dense_replace: 9 },
      { ...v3, n_routed_experts: null },
    ];
    for (const j of variants) {
      const c = parseModelConfig(j);
      expect(tensorCount(c)).toBe(expectedTensors(c).length);
    }
    expect(MAX_TENSORS).toBe(2 ** 20);
  });
});

describe('hostile checkpoints: config against tensors, shard names, sizes', () => {
  const files = fixtureFiles();
  const cfg = JSON.parse(files['config.json']);
  const fixtureNames = async () => [...(await readSafetensorsHeader(memSource(files).open('model.safetensors'))).keys()];

  it('a config with more layers than the checkpoint holds is refused before its tensor list is built, naming both', async () => {
    await expect(openCheckpoint(memSource({ ...files, 'config.json': JSON.stringify({ ...cfg, num_hidden_layers: 500 }) }))).rejects.toThrow(
      /mem\/config.json implies \d+ tensors \(num_hidden_layers 500, n_routed_experts 16\), but the checkpoint's 1 file\(s\) hold 259: the config does not describe this checkpoint/,
    );
  });

  it('a config with fewer layers or experts than the checkpoint is refused (MTP layers, which hold eh_proj, are allowed)', async () => {
    await expect(openCheckpoint(memSource({ ...files, 'config.json': JSON.stringify({ ...cfg, num_hidden_layers: 2 }) }))).rejects.toThrow(
      /model.safetensors: tensor 'model.layers.2.\S+' and \d+ more not used by config.json \(num_hidden_layers 2, num_nextn_predict_layers 1, n_routed_experts 16\)/,
    );
    await expect(openCheckpoint(memSource({ ...files, 'config.json': JSON.stringify({ ...cfg, n_routed_experts: 8, n_group: 4, topk_group: 2 }) }))).rejects.toThrow(/shape \[16, 256\], the config implies \[8, 256\]/);
    // An MTP layer after the 3 decoder layers, in a shard of its own.
    const mtp = writeSafetensors(['eh_proj.weight', 'enorm.weight', 'input_layernorm.weight'].map((n) => ({ name: `model.layers.3.${n}`, dtype: 'F32' as const, shape: [2], data: new Uint8Array(8) })));
    const names = await fixtureNames();
    const index = (nextn: number) => ({
      ...files,
      'config.json': JSON.stringify({ ...cfg, num_nextn_predict_layers: nextn }),
      'mtp.safetensors': mtp,
      'model.safetensors.index.json': JSON.stringify({ weight_map: Object.fromEntries([...names.map((n) => [n, 'model.safetensors']), ['model.layers.3.eh_proj.weight', 'mtp.safetensors'], ['model.layers.3.enorm.weight', 'mtp.safetensors'], ['model.layers.3.input_layernorm.weight', 'mtp.safetensors']]) }),
    });
    expect((await openCheckpoint(memSource(index(1)))).config.nextnLayers).toBe(1);
    await expect(openCheckpoint(memSource(index(0)))).rejects.toThrow(/mtp.safetensors: tensor 'model.layers.3.eh_proj.weight' and 2 more not used by config.json \(num_hidden_layers 3, num_nextn_predict_layers 0/);
  });

  it('shard names outside the folder are refused without opening them', async () => {
    const names = await fixtureNames();
    for (const shard of ['../../../../etc/passwd', '/etc/passwd', 'http://example.com/x.safetensors', '//example.com/x', 'sub/../../x', '%2e%2e/x', '.hidden', 'a\\\\b', 'C:x', 42]) {
      const opened: string[] = [];
      const weightMap = Object.fromEntries(names.map((n, i) => [n, i === 0 ? shard : 'model.safetensors']));
      await expect(openCheckpoint(memSource({ ...files, 'model.safetensors.index.json': JSON.stringify({ weight_map: weightMap }) }, opened))).rejects.toThrow(
        new RegExp(`mem/model.safetensors.index.json: weight_map\\['${names[0]}'\\] names the shard .*, which is not a file inside mem`),
      );
      expect(opened.filter((n) => n !== 'config.json' && n !== 'model.safetensors.index.json')).toEqual([]);
    }
    for (const index of ['null', '{"weight_map": null}', '{"weight_map": [1]}', '[]']) {
      await expect(openCheckpoint(memSource({ ...files, 'model.safetensors.index.json': index }))).rejects.toThrow(/index.json: expected a JSON object with a "weight_map" object/);
    }
  });

  it('a directory source never leaves its folder, and names the file it cannot read', async () => {
    const dir = `${root}/model`;
    mkdirSync(`${dir}/model.safetensors`, { recursive: true });
    writeFileSync(`${root}/secret.safetensors`, 'not for the loader');
    writeFileSync(`${dir}/config.json`, files['config.json']);
    // A directory named model.safetensors is not a file: the folder has no weights.
    await expect(openCheckpoint(dirSource(dir))).rejects.toThrow(new RegExp(`${dir}: no model.safetensors, model.safetensors.index.json or \\*.safetensors`));
    await expect(dirSource(dir).open('model.safetensors').read(0, 8)).rejects.toThrow(new RegExp(`${dir}/model.safetensors: cannot read \\(EISDIR`));
    for (const name of ['../secret.safetensors', `${root}/secret.safetensors`, 'a/../../secret.safetensors']) {
      expect(() => dirSource(dir).open(name)).toThrow(/a file name must be a relative name inside the model folder/);
      await expect(dirSource(dir).has(name)).rejects.toThrow(/a file name must be a relative name inside the model folder/);
    }
    writeFileSync(`${dir}/model.safetensors.index.json`, JSON.stringify({ weight_map: { 'model.norm.weight': '../secret.safetensors' } }));
    await expect(openCheckpoint(dirSource(dir))).rejects.toThrow(/names the shard "..\/secret.safetensors", which is not a file inside/);
  });

  it('a file over the size cap is refused before a byte is read', async () => {
    const opened: string[] = [];
    const src = memSource({ 'config.json': '{}' }, opened);
    const huge: ModelSource = { ...src, open: (name) => ({ ...src.open(name), size: async () => 500_000_000 }) };
    await expect(readText(huge, 'config.json')).rejects.toThrow(`config.json: 500000000 bytes, over the ${MAX_JSON_BYTES}-byte limit for a file read whole`);
    await expect(openCheckpoint(huge)).rejects.toThrow(/over the 67108864-byte limit/);
    expect(opened).toEqual([]);
  });

  it('picked files are keyed by their path in the picked folder: a file in a subfolder does not stand in for the top one', async () => {
    const picked = (path: string, text: string) => Object.defineProperty(new File([text], path.split('/').pop()!), 'webkitRelativePath', { value: path });
    const src = filesSource([picked('ckpt/sub/config.json', 'inner'), picked('ckpt/config.json', 'top'), picked('ckpt/sub/model.safetensors', 'x')]);
    expect(await readText(src, 'config.json')).toBe('top');
    expect(await readText(src, 'sub/config.json')).toBe('inner');
    expect(await src.has('model.safetensors')).toBe(false);
    expect(() => src.open('../config.json')).toThrow(/a file name must be a relative name/);
    expect(() => filesSource([new File(['a'], 'config.json'), new File(['b'], 'config.json')])).toThrow(/two picked files are both 'config.json'/);
  });
});

describe('URL sources: Range required, names kept under the prefix', () => {
  const fixture = new Uint8Array(readFileSync(`${FIX}/model.safetensors`));
  /** Serves the fixture under /m/, honouring Range unless `ignoreRange`; counts requests and body bytes sent. */
  async function server(ignoreRange: boolean, big = 0): Promise<{ url: string; paths: string[]; sent: () => number; close: () => void }> {
    const paths: string[] = [];
    let sent = 0;
    const body = (name: string): Uint8Array | undefined =>
      name === '/m/config.json' ? new TextEncoder().encode(readFileSync(`${FIX}/config.json`, 'utf8')) : name === '/m/model.safetensors' ? fixture : undefined;
    const s: Server = createServer((req, res) => {
      paths.push(req.url!);
      const b = body(req.url!);
      const size = big || b?.byteLength;
      if (size === undefined) return res.writeHead(404).end();
      const range = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? '');
      if (req.method === 'HEAD') return res.writeHead(200, { 'content-length': size }).end();
      if (range && !ignoreRange) {
        const [from, to] = [Number(range[1]), Math.min(Number(range[2]), size - 1)];
        res.writeHead(206, { 'content-range': `bytes ${from}-${to}/${size}`, 'content-length': to - from + 1 });
        sent += to - from + 1;
        return res.end(b!.subarray(from, to + 1));
      }
      // The whole file, streamed a MiB at a time while the client reads.
      res.writeHead(200, { 'content-length': size });
      const chunk = new Uint8Array(2 ** 20);
      const pump = () => {
        while (sent < size) {
          sent += chunk.byteLength;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      res.on('close', () => res.removeAllListeners('drain'));
      pump();
    });
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as { port: number }).port;
    return { url: `http://127.0.0.1:${port}/m/`, paths, sent: () => sent, close: () => s.close() };
  }

  it('opens a checkpoint over HTTP with byte ranges', async () => {
    const srv = await server(false);
    try {
      const ck = await openCheckpoint(urlSource(srv.url));
      expect(ck.tensors.size).toBe(259);
    } finally {
      srv.close();
    }
  });

  it('a server that ignores Range is refused at the first read, its 404 MiB reply cancelled, not downloaded', async () => {
    const srv = await server(true, 404 * 2 ** 20);
    try {
      await expect(urlSource(srv.url).open('model.safetensors').read(0, 8)).rejects.toThrow(/model.safetensors: the server ignored the Range request for bytes 0..7 \(HTTP 200, not 206 Partial Content\)/);
      expect(srv.sent()).toBeLessThan(64 * 2 ** 20);
    } finally {
      srv.close();
    }
  });

  it('names outside the prefix (absolute, protocol-relative, other origins, ..) are refused without a request', async () => {
    const srv = await server(false);
    try {
      const src = urlSource(srv.url);
      for (const name of ['/etc/passwd', '//example.com/x', 'http://example.com/x', '../x', 'a/../../x', '%2e%2e/x', '?x', '#x']) {
        expect(() => src.open(name)).toThrow(/a file name must be a relative name inside the model folder/);
        await expect(src.has(name)).rejects.toThrow(/a file name must be a relative name/);
      }
      expect(srv.paths).toEqual([]);
    } finally {
      srv.close();
    }
  });
});
