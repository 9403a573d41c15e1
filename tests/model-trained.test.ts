// models/tiny-kjv, the bundled trained model (scripts/train/train_tiny.py): its FP8 weights are this
// project's block cast of the training master weights, bit for bit; its checkpoint opens with the MTP
// layer's tensors beside the main model's; and the training code's float64 logits (reference.json)
// agree with this project's own float64 reference model, an independent implementation of the architecture.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { perBlockCastToFp8 } from '../src/formats/casts.ts';
import { encodeE4M3 } from '../src/formats/fp8.ts';
import { argmaxRef } from '../src/kernels/nn/reference.ts';
import { openCheckpoint, readStBytes, scaleName } from '../src/model/checkpoint.ts';
import { readAllWeightsF64, ReferenceModel, referenceGenerate } from '../src/model/reference.ts';
import { readSafetensorsHeader } from '../src/model/safetensors.ts';
import { dirSource } from '../src/model/source.ts';
import { loadTokenizer } from '../src/model/tokenizer.ts';

const DIR = 'models/tiny-kjv';
const ref = JSON.parse(readFileSync(`${DIR}/reference.json`, 'utf8')) as { prompt: string; prompt_ids: number[]; logits: number[][]; greedy_ids: number[] };

async function fp8Fixture() {
  const tensors = await readSafetensorsHeader(dirSource('tests/fixtures').open('tiny-kjv-fp8.safetensors'));
  const bytes = async (name: string) => readStBytes(tensors.get(name)!);
  return { tensors, bytes };
}

const f32 = (b: Uint8Array) => new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
const u32 = (b: Uint8Array) => new Uint32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));

describe('models/tiny-kjv', () => {
  it("the training script's hand-written e4m3 encoder agrees with encodeE4M3 on every value, tie and rounding edge", async () => {
    const { bytes } = await fp8Fixture();
    const x = f32(await bytes('e4m3.x'));
    const q = await bytes('e4m3.q');
    expect(x.length).toBeGreaterThan(20_000);
    const wrong = x.reduce<string[]>((w, v, i) => (encodeE4M3(v) === q[i] ? w : [...w, `${v}: the script's code ${q[i]}, encodeE4M3 ${encodeE4M3(v)}`]), []);
    expect(wrong.slice(0, 5)).toEqual([]);
  });

  it('the shipped FP8 weights and scales are perBlockCastToFp8 of the float32 master weights, bit for bit', async () => {
    const { tensors, bytes } = await fp8Fixture();
    const ck = await openCheckpoint(dirSource(DIR));
    const masters = [...tensors.keys()].filter((n) => n.startsWith('model.'));
    // Full 128x128 blocks and a partial row of blocks (144 rows); an MTP layer expert's partial columns (48).
    expect(masters.sort()).toEqual(['model.layers.1.self_attn.kv_a_proj_with_mqa.weight', 'model.layers.3.mlp.experts.0.down_proj.weight']);
    for (const name of masters) {
      const [n, k] = tensors.get(name)!.shape;
      const cast = perBlockCastToFp8(f32(await bytes(name)), n, k);
      expect(await readStBytes(ck.tensors.get(name)!)).toEqual(cast.q);
      expect(u32(await readStBytes(ck.tensors.get(scaleName(name))!))).toEqual(new Uint32Array(cast.scales.buffer));
    }
  });

  it('opens as a DeepSeek-V3 FP8 checkpoint; the MTP layer is stored as layer 3 under DeepSeek-V3 names; the reference prompt is its text encoded', async () => {
    const src = dirSource(DIR);
    const ck = await openCheckpoint(src);
    const c = ck.config;
    expect(c).toMatchObject({ numLayers: 3, vocabSize: 1024, qLoraRank: 128, rope: { type: 'yarn' }, fp8BlockSize: [128, 128] });
    expect(c.moe).toMatchObject({ topkMethod: 'noaux_tc', scoringFunc: 'sigmoid', nSharedExperts: 1, firstKDenseReplace: 1 });
    const mtp = [...ck.tensors.keys()].filter((n) => n.startsWith('model.layers.3.'));
    for (const n of ['enorm', 'hnorm', 'eh_proj', 'embed_tokens', 'shared_head.norm', 'shared_head.head', 'self_attn.q_a_proj', 'mlp.gate', 'mlp.experts.15.down_proj']) {
      expect(mtp).toContain(`model.layers.3.${n}.weight`);
    }
    expect(mtp).toContain('model.layers.3.mlp.gate.e_score_correction_bias');
    // The shared embedding and head are stored twice, as DeepSeek-V3 stores them.
    expect(await readStBytes(ck.tensors.get('model.layers.3.shared_head.head.weight')!)).toEqual(await readStBytes(ck.tensors.get('lm_head.weight')!));
    expect(ck.expected.some((e) => e.name.startsWith('model.layers.3.'))).toBe(false);
    const tok = await loadTokenizer(src);
    expect(tok.encode(ref.prompt)).toEqual(ref.prompt_ids);
    expect(ref.prompt_ids[0]).toBe(c.bosTokenId);
  });

  it('the float64 reference model over the shipped weights reproduces reference.json: logits to 1e-12 of their range, the same greedy tokens', async () => {
    const ck = await openCheckpoint(dirSource(DIR));
    const model = new ReferenceModel(ck.config, await readAllWeightsF64(ck));
    const out = referenceGenerate(model, ref.prompt_ids, ref.greedy_ids.length);
    const range = Math.max(...ref.logits.flat().map(Math.abs));
    const err = Math.max(...out.logits.map((row, t) => Math.max(...row.map((v, i) => Math.abs(v - ref.logits[t][i])))));
    expect(err / range).toBeLessThan(1e-12);
    expect(out.ids).toEqual(ref.greedy_ids);
    // The weights are trained: the prompt's own next tokens are mostly the model's first choices.
    const right = ref.prompt_ids.slice(1).filter((t, i) => argmaxRef(out.logits[i]) === t).length;
    expect(right / (ref.prompt_ids.length - 1)).toBeGreaterThan(0.3);
  });
});
