// A checkpoint in words: what `deepwgsl info` prints and the decode page shows.
import type { Checkpoint } from './checkpoint.ts';
import { isMoeLayer, type ModelConfig } from './config.ts';

/**
 * The share of a tensor that one decode step of `batch` tokens reads: one embedding row per token,
 * each routed expert with the chance at least one token picks it (uniform picks), all else whole.
 */
export function activeShare(c: ModelConfig, name: string, batch = 1): number {
  if (name === 'model.embed_tokens.weight') return batch / c.vocabSize;
  if (c.moe && /\.mlp\.experts\.\d+\./.test(name)) return 1 - (1 - c.moe.numExpertsPerTok / c.moe.nRoutedExperts) ** batch;
  return 1;
}

/** Parameters one token reads: everything but the routed experts it does not use. */
export function activeParams(ck: Checkpoint): number {
  return ck.expected.reduce((n, e) => n + activeShare(ck.config, e.name) * e.shape.reduce((a, b) => a * b, 1), 0);
}

export function describeArch(c: ModelConfig): string[] {
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
