// deepwgsl info (and the model commands that follow it): checkpoints in Hugging Face layout.
import { isMoeLayer, type ModelConfig } from '../model/config.ts';
import { openCheckpoint, type Checkpoint } from '../model/checkpoint.ts';
import { formatBytes, planWeights } from '../model/load.ts';
import { dirSource } from '../model/source.ts';
import { out, type Command, type Values } from './command.ts';

function modelDir(values: Values, cmd: string): string {
  if (typeof values.model !== 'string') throw new Error(`deepwgsl ${cmd}: --model DIR is required`);
  return values.model;
}

/** Weights one token reads: everything but the routed experts it does not use. */
function activeParams(ck: Checkpoint): number {
  const c = ck.config;
  let n = 0;
  for (const e of ck.expected) {
    const m = /^model\.layers\.(\d+)\.mlp\.experts\.\d+\./.exec(e.name);
    const size = e.shape.reduce((a, b) => a * b, 1);
    if (e.name === 'model.embed_tokens.weight') n += c.hiddenSize;
    else if (m && c.moe) n += (size * c.moe.numExpertsPerTok) / c.moe.nRoutedExperts;
    else n += size;
  }
  return n;
}

function describeArch(c: ModelConfig): string[] {
  const moeLayers = Array.from({ length: c.numLayers }, (_, i) => i).filter((i) => isMoeLayer(c, i)).length;
  const rope = c.rope.type === 'yarn' ? `YaRN (factor ${c.rope.factor}, original ${c.rope.originalMaxPositionEmbeddings}, attention factor ${c.rope.attentionFactor.toFixed(4)})` : 'plain';
  const lines = [
    `architecture: ${c.modelType}, ${c.numLayers} layers (${c.numLayers - moeLayers} dense, ${moeLayers} MoE), hidden ${c.hiddenSize}, vocab ${c.vocabSize}`,
    `attention: MLA, ${c.numHeads} heads, q ${c.qLoraRank === null ? 'q_proj (no LoRA)' : `LoRA rank ${c.qLoraRank}`}, kv_lora_rank ${c.kvLoraRank}, ` +
      `qk nope/rope ${c.qkNopeHeadDim}/${c.qkRopeHeadDim}, v ${c.vHeadDim}, softmax scale ${c.softmaxScale.toFixed(6)}`,
    `rope: ${rope}, theta ${c.ropeTheta}, ${c.ropeInterleave ? 'interleaved pairs' : 'half-split pairs'}, max positions ${c.maxPositionEmbeddings}`,
    `dense MLP: intermediate ${c.intermediateSize}`,
  ];
  if (c.moe) {
    const m = c.moe;
    lines.push(
      `MoE: ${m.nRoutedExperts} routed experts (${m.numExpertsPerTok} per token) + ${m.nSharedExperts} shared, intermediate ${m.moeIntermediateSize}; ` +
        `${m.scoringFunc} scores, ${m.topkMethod}${m.topkMethod === 'greedy' ? '' : ` (${m.nGroup} groups, top ${m.topkGroup})`}, ` +
        `norm_topk_prob ${m.normTopkProb}, routed_scaling_factor ${m.routedScalingFactor}`,
    );
  }
  return lines;
}

async function info(values: Values): Promise<void> {
  const ck = await openCheckpoint(dirSource(modelDir(values, 'info')));
  const c = ck.config;
  const plan = planWeights(ck);
  const fp8 = planWeights(ck, { quantize: 'fp8' });
  const total = Object.values(plan.paramsByDtype).reduce((a, b) => a + b, 0);
  // The latent cache per token and layer: kv_lora_rank + rope dims, f32.
  const kvPerToken = c.numLayers * (c.kvLoraRank + c.qkRopeHeadDim) * 4;
  const largest = plan.tensors.reduce((a, b) => (b.gpuBytes > a.gpuBytes ? b : a));
  const report = {
    model: ck.source.where,
    files: ck.files,
    config: c,
    parameters: { total, active: Math.round(activeParams(ck)), byDtype: plan.paramsByDtype },
    gpuBytes: { weights: plan.gpuBytes, byDtype: plan.byDtype, weightsQuantizedFp8: fp8.gpuBytes, kvCachePerToken: kvPerToken },
    largestTensor: { name: largest.expected.name, shape: largest.expected.shape, bytes: largest.gpuBytes },
  };
  if (values.json) return out(JSON.stringify(report, null, 1));
  out(`model: ${ck.source.where} (${ck.files.length} file${ck.files.length > 1 ? 's' : ''}${c.fp8BlockSize ? ', block-FP8 weights' : ''})`);
  for (const l of describeArch(c)) out(l);
  out(`parameters: ${(total / 1e6).toFixed(2)} M (${(report.parameters.active / 1e6).toFixed(2)} M active per token); by dtype: ` +
    Object.entries(plan.paramsByDtype).map(([d, n]) => `${d} ${(n / 1e6).toFixed(2)} M`).join(', '));
  out(`GPU memory: weights ${formatBytes(plan.gpuBytes)} (${Object.entries(plan.byDtype).map(([d, n]) => `${d} ${formatBytes(n)}`).join(', ')}); ` +
    `with --quantize fp8 ${formatBytes(fp8.gpuBytes)}; KV cache ${formatBytes(kvPerToken)} per token (f32 latent)`);
  out(`largest tensor: ${largest.expected.name} [${largest.expected.shape.join(', ')}], ${formatBytes(largest.gpuBytes)} (must fit maxStorageBufferBindingSize)`);
}

export const modelCommands: Command[] = [
  {
    name: 'info',
    usage: ['deepwgsl info --model DIR [--json]            architecture, parameters by dtype, GPU memory needed'],
    options: { model: { type: 'string' }, json: { type: 'boolean', default: false } },
    gpu: false,
    run: (values) => info(values),
  },
];
