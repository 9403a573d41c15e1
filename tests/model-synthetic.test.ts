// Synthetic checkpoints: written in the real layout, opened and validated by our own loader, values
// drawn as documented (dequantized FP8 ~N(0, 0.02), norms near 1), deterministic per seed.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { openCheckpoint, readStBytes, readWeightF64 } from '../src/model/checkpoint.ts';
import { readAllWeightsF64, ReferenceModel } from '../src/model/reference.ts';
import { dirSource } from '../src/model/source.ts';
import { synthConfig, writeSyntheticCheckpoint } from '../src/model/synthetic.ts';

const root = mkdtempSync(`${tmpdir()}/deepwgsl-synth-`);
afterAll(() => rmSync(root, { recursive: true, force: true }));

function stats(v: ArrayLike<number>): { mean: number; std: number } {
  let s = 0;
  let s2 = 0;
  for (let i = 0; i < v.length; i++) {
    s += v[i];
    s2 += v[i] * v[i];
  }
  const mean = s / v.length;
  return { mean, std: Math.sqrt(s2 / v.length - mean * mean) };
}

describe('synthetic model checkpoints', () => {
  it('v3-tiny FP8, sharded: index, block scales, every expected tensor, plausible values', async () => {
    const dir = `${root}/v3`;
    const progress: number[] = [];
    const r = await writeSyntheticCheckpoint(dir, { preset: 'v3-tiny', seed: 7, shardBytes: 2 << 20, onProgress: (p) => progress.push(p.bytesDone / p.bytesTotal) });
    expect(r.files.length).toBeGreaterThan(1);
    expect(progress.at(-1)).toBe(1);
    const index = JSON.parse(readFileSync(`${dir}/model.safetensors.index.json`, 'utf8')) as { metadata: { total_size: number }; weight_map: Record<string, string> };
    expect(index.metadata.total_size).toBe(r.bytes);
    const ck = await openCheckpoint(dirSource(dir));
    expect(ck.files).toEqual(r.files);
    expect(ck.config.fp8BlockSize).toEqual([128, 128]);
    expect(ck.config.moe).toMatchObject({ scoringFunc: 'sigmoid', topkMethod: 'noaux_tc', nGroup: 4 });
    for (const [name, file] of Object.entries(index.weight_map)) expect(ck.tensors.get(name)!.file.name).toBe(`${dir}/${file}`);
    // q_b_proj [4 * 96, 192]: partial 128-blocks along k.
    const qb = 'model.layers.1.self_attn.q_b_proj.weight';
    expect(ck.tensors.get(qb)).toMatchObject({ dtype: 'F8_E4M3', shape: [384, 192] });
    expect(ck.tensors.get(qb.replace('.weight', '.weight_scale_inv'))).toMatchObject({ dtype: 'F32', shape: [3, 2] });
    const w = stats(await readWeightF64(ck, 'model.layers.2.mlp.experts.5.gate_proj.weight'));
    expect(Math.abs(w.mean)).toBeLessThan(0.002);
    expect(w.std).toBeGreaterThan(0.018);
    expect(w.std).toBeLessThan(0.022);
    const n = stats(await readWeightF64(ck, 'model.layers.0.input_layernorm.weight'));
    expect(n.mean).toBeGreaterThan(0.98);
    expect(n.mean).toBeLessThan(1.02);
    expect(ck.tensors.get('model.layers.1.mlp.gate.e_score_correction_bias')!.dtype).toBe('F32');
    // Two experts of one layer hold different values.
    const a = await readStBytes(ck.tensors.get('model.layers.1.mlp.experts.0.up_proj.weight')!);
    const b = await readStBytes(ck.tensors.get('model.layers.1.mlp.experts.1.up_proj.weight')!);
    expect(a).not.toEqual(b);
  });

  it('v2-tiny BF16: one model.safetensors, no quantization_config; the float64 reference gives finite, moderate logits', async () => {
    const dir = `${root}/v2`;
    const r = await writeSyntheticCheckpoint(dir, { preset: 'v2-tiny', dtype: 'bf16', layers: 4 });
    expect(r.files).toEqual(['model.safetensors']);
    const ck = await openCheckpoint(dirSource(dir));
    expect(ck.config).toMatchObject({ modelType: 'deepseek_v2', qLoraRank: null, fp8BlockSize: null, numLayers: 4 });
    expect([...ck.tensors.values()].every((t) => t.dtype === 'BF16')).toBe(true);
    const model = new ReferenceModel(ck.config, await readAllWeightsF64(ck), { absorbed: true });
    for (const token of [3, 500]) {
      const l = model.step(token);
      const { std } = stats(l);
      expect(l.every(Number.isFinite)).toBe(true);
      // lm_head ~N(0, 0.02) over a unit-RMS hidden of 256: logits ~0.02 * sqrt(256) = 0.32.
      expect(std).toBeGreaterThan(0.15);
      expect(std).toBeLessThan(0.7);
    }
  });

  it('the same seed writes the same bytes, another seed others', async () => {
    const read = async (dir: string) => readStBytes((await openCheckpoint(dirSource(dir))).tensors.get('model.layers.1.self_attn.kv_b_proj.weight')!);
    await writeSyntheticCheckpoint(`${root}/s1`, { preset: 'v2-tiny', seed: 1 });
    await writeSyntheticCheckpoint(`${root}/s1b`, { preset: 'v2-tiny', seed: 1, shardBytes: 1 << 20 });
    await writeSyntheticCheckpoint(`${root}/s2`, { preset: 'v2-tiny', seed: 2 });
    expect(await read(`${root}/s1b`)).toEqual(await read(`${root}/s1`));
    expect(await read(`${root}/s2`)).not.toEqual(await read(`${root}/s1`));
  });

  it('V2-Lite preset carries the real config', () => {
    const { config } = synthConfig({ preset: 'v2-lite' });
    expect(config).toMatchObject({ numLayers: 27, hiddenSize: 2048, vocabSize: 102400, intermediateSize: 10944, kvLoraRank: 512, qLoraRank: null, numHeads: 16 });
    expect(config.moe).toMatchObject({ nRoutedExperts: 64, numExpertsPerTok: 6, nSharedExperts: 2, moeIntermediateSize: 1408, firstKDenseReplace: 1, scoringFunc: 'softmax', topkMethod: 'greedy' });
    expect(config.rope).toMatchObject({ type: 'yarn', factor: 40, originalMaxPositionEmbeddings: 4096 });
  });

  it('bad options are refused clearly', async () => {
    expect(() => synthConfig({ preset: 'v9' })).toThrow(/unknown preset 'v9' \(presets: v2-lite, v3-tiny, v2-tiny\)/);
    expect(() => synthConfig({ preset: 'v2-tiny', layers: 0 })).toThrow(/layers must be a positive integer, got 0/);
    expect(() => synthConfig({ preset: 'v2-tiny', dtype: 'f16' as 'bf16' })).toThrow(/dtype must be 'fp8' or 'bf16'/);
    expect(() => synthConfig({ preset: 'v2-tiny', experts: 1 })).toThrow(/num_experts_per_tok must be at most/);
    await writeSyntheticCheckpoint(`${root}/dup`, { preset: 'v2-tiny' });
    await expect(writeSyntheticCheckpoint(`${root}/dup`, { preset: 'v2-tiny' })).rejects.toThrow(/already holds a checkpoint/);
  });
});
