// Float64 CPU reference of the whole DeepSeek-V3/V2 forward pass, token by token over a latent KV
// cache (what MLA caches: the normalised compressed kv and the roped key part). Attention runs in
// the non-absorbed form (keys and values decompressed through kv_b_proj, as transformers does) or
// the absorbed form (W_UK folded into the query, W_UV applied after attention, as the GPU decode
// does); both must give the same logits. It pins every architectural detail the GPU path copies:
// rope pairing and YaRN frequencies/mscale, the softmax scale, routing, shared experts.
import { perTokenCastToFp8 } from '../formats/casts.ts';
import { decodeE4M3 } from '../formats/fp8.ts';
import { routeTopkRef, type RouteConfig } from '../kernels/moe/reference.ts';
import { argmaxRef, rmsNormRef } from '../kernels/nn/reference.ts';
import { isMoeLayer, ropeAttentionFactor, ropeInvFreq, type ModelConfig } from './config.ts';
import { readWeightF64, type Checkpoint } from './checkpoint.ts';

export type Weights = Map<string, Float64Array>;

export async function readAllWeightsF64(ck: Checkpoint): Promise<Weights> {
  const w: Weights = new Map();
  for (const e of ck.expected) w.set(e.name, await readWeightF64(ck, e.name));
  return w;
}

/** y[n] = W[n, k] x[k] (nn.Linear without bias). */
export function linear(w: ArrayLike<number>, x: ArrayLike<number>, n: number, k: number, xOff = 0): Float64Array {
  const y = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    let s = 0;
    for (let c = 0; c < k; c++) s += w[r * k + c] * x[xOff + c];
    y[r] = s;
  }
  return y;
}

/** cos/sin of one position: angle = f32(invFreq[i] * pos) as transformers, times the attention factor. */
export function ropeCosSin(invFreq: Float32Array, pos: number, factor: number): { cos: Float64Array; sin: Float64Array } {
  const ang = Array.from(invFreq, (f) => Math.fround(f * pos));
  return { cos: Float64Array.from(ang, (a) => Math.cos(a) * factor), sin: Float64Array.from(ang, (a) => Math.sin(a) * factor) };
}

/**
 * Rotates x[off .. off+d) as transformers does: interleaved pairs (2i, 2i+1) are first gathered to
 * halves (apply_rotary_pos_emb_interleave), then rotated as (i, i + d/2); the result is in halves order.
 */
export function ropeTransformers(x: Float64Array, off: number, d: number, cs: { cos: Float64Array; sin: Float64Array }, interleave: boolean): void {
  const h = d / 2;
  const a = new Float64Array(h);
  const b = new Float64Array(h);
  for (let i = 0; i < h; i++) {
    a[i] = interleave ? x[off + 2 * i] : x[off + i];
    b[i] = interleave ? x[off + 2 * i + 1] : x[off + h + i];
  }
  for (let i = 0; i < h; i++) {
    x[off + i] = a[i] * cs.cos[i] - b[i] * cs.sin[i];
    x[off + h + i] = b[i] * cs.cos[i] + a[i] * cs.sin[i];
  }
}

export function routeConfigOf(c: ModelConfig): RouteConfig {
  const m = c.moe!;
  return {
    numExperts: m.nRoutedExperts,
    topk: m.numExpertsPerTok,
    scoringFunc: m.scoringFunc,
    topkMethod: m.topkMethod,
    nGroup: m.nGroup,
    topkGroup: m.topkGroup,
    normTopkProb: m.normTopkProb,
    routedScalingFactor: m.routedScalingFactor,
  };
}

export interface RefOptions {
  /** Absorbed MLA (the decode form) instead of decompressing keys and values. */
  absorbed?: boolean;
  /**
   * FP8 activations: the input of each linear whose weight name this accepts goes through the 1x128
   * e4m3 cast first (perTokenCastToFp8, then dequantised), as the GPU's `activations: 'fp8'` does.
   */
  fp8Input?: (weight: string) => boolean;
}

/** x as the FP8 GEMMs see it after the 1x128 cast: e4m3(x / scale) * scale per group of 128. */
export function fp8RoundTrip(x: ArrayLike<number>): Float64Array {
  const { q, scales } = perTokenCastToFp8(Float32Array.from(x), 1, x.length);
  return Float64Array.from(q, (b, i) => decodeE4M3(b) * scales[i >> 7]);
}

/** One sequence's state: per layer the cached latent kv [t, kvLora] and roped key part [t, rope]. */
export class ReferenceModel {
  readonly invFreq: Float32Array;
  readonly ropeFactor: number;
  private ckv: number[][][];
  private kpe: number[][][];

  constructor(
    readonly config: ModelConfig,
    readonly weights: Weights,
    readonly opts: RefOptions = {},
  ) {
    this.invFreq = ropeInvFreq(config);
    this.ropeFactor = ropeAttentionFactor(config);
    this.ckv = Array.from({ length: config.numLayers }, () => []);
    this.kpe = Array.from({ length: config.numLayers }, () => []);
  }

  get length(): number {
    return this.ckv[0].length;
  }

  /** y = W x for the weight `name` [n, k], with the FP8 input cast where opts.fp8Input asks for it. */
  private linear(name: string, x: Float64Array, n: number, k: number): Float64Array {
    return linear(this.w(name), this.opts.fp8Input?.(name) ? fp8RoundTrip(x) : x, n, k);
  }

  private w(name: string): Float64Array {
    const v = this.weights.get(name);
    if (!v) throw new Error(`ReferenceModel: no weight '${name}'`);
    return v;
  }

  /** Appends one token at the next position; returns its logits [vocab]. */
  step(token: number): Float64Array {
    const c = this.config;
    const H = c.hiddenSize;
    const pos = this.length;
    let x = this.w('model.embed_tokens.weight').slice(token * H, (token + 1) * H);
    const cs = ropeCosSin(this.invFreq, pos, this.ropeFactor);
    for (let l = 0; l < c.numLayers; l++) {
      const p = `model.layers.${l}`;
      const a = this.attention(l, rmsNormRef(x, this.w(`${p}.input_layernorm.weight`), c.rmsNormEps), cs);
      x = x.map((v, i) => v + a[i]);
      const hn = rmsNormRef(x, this.w(`${p}.post_attention_layernorm.weight`), c.rmsNormEps);
      const m = isMoeLayer(c, l) ? this.moe(p, hn) : this.mlp(`${p}.mlp`, hn, c.intermediateSize);
      x = x.map((v, i) => v + m[i]);
    }
    const xn = rmsNormRef(x, this.w('model.norm.weight'), c.rmsNormEps);
    return this.linear(c.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight', xn, c.vocabSize, H);
  }

  private mlp(p: string, x: Float64Array, inter: number): Float64Array {
    const H = this.config.hiddenSize;
    const g = this.linear(`${p}.gate_proj.weight`, x, inter, H);
    const u = this.linear(`${p}.up_proj.weight`, x, inter, H);
    return this.linear(`${p}.down_proj.weight`, g.map((v, i) => (v / (1 + Math.exp(-v))) * u[i]), H, inter);
  }

  private moe(p: string, x: Float64Array): Float64Array {
    const m = this.config.moe!;
    const logits = linear(this.w(`${p}.mlp.gate.weight`), x, m.nRoutedExperts, this.config.hiddenSize);
    const bias = m.topkMethod === 'noaux_tc' ? this.w(`${p}.mlp.gate.e_score_correction_bias`) : undefined;
    const r = routeTopkRef(logits, 1, routeConfigOf(this.config), bias);
    const out = m.nSharedExperts > 0 ? this.mlp(`${p}.mlp.shared_experts`, x, m.moeIntermediateSize * m.nSharedExperts) : new Float64Array(x.length);
    for (let j = 0; j < m.numExpertsPerTok; j++) {
      const y = this.mlp(`${p}.mlp.experts.${r.ids[j]}`, x, m.moeIntermediateSize);
      for (let i = 0; i < out.length; i++) out[i] += r.weights[j] * y[i];
    }
    return out;
  }

  private attention(l: number, x: Float64Array, cs: { cos: Float64Array; sin: Float64Array }): Float64Array {
    const c = this.config;
    const p = `model.layers.${l}.self_attn`;
    const [nh, dn, dr, dv, kvr, H] = [c.numHeads, c.qkNopeHeadDim, c.qkRopeHeadDim, c.vHeadDim, c.kvLoraRank, c.hiddenSize];
    const dq = dn + dr;
    const q =
      c.qLoraRank === null
        ? this.linear(`${p}.q_proj.weight`, x, nh * dq, H)
        : this.linear(`${p}.q_b_proj.weight`, rmsNormRef(this.linear(`${p}.q_a_proj.weight`, x, c.qLoraRank, H), this.w(`${p}.q_a_layernorm.weight`), c.rmsNormEps), nh * dq, c.qLoraRank);
    for (let h = 0; h < nh; h++) ropeTransformers(q, h * dq + dn, dr, cs, c.ropeInterleave);
    const kv = this.linear(`${p}.kv_a_proj_with_mqa.weight`, x, kvr + dr, H);
    ropeTransformers(kv, kvr, dr, cs, c.ropeInterleave);
    this.ckv[l].push(Array.from(rmsNormRef(kv.subarray(0, kvr), this.w(`${p}.kv_a_layernorm.weight`), c.rmsNormEps)));
    this.kpe[l].push(Array.from(kv.subarray(kvr)));
    const T = this.ckv[l].length;
    const wkvb = this.w(`${p}.kv_b_proj.weight`); // [nh * (dn + dv), kvr]: per head W_UK [dn, kvr] then W_UV [dv, kvr]
    const o = new Float64Array(nh * dv);
    for (let h = 0; h < nh; h++) {
      const uk = wkvb.subarray(h * (dn + dv) * kvr, (h * (dn + dv) + dn) * kvr);
      const uv = wkvb.subarray((h * (dn + dv) + dn) * kvr, (h + 1) * (dn + dv) * kvr);
      const qn = q.subarray(h * dq, h * dq + dn);
      const qr = q.subarray(h * dq + dn, (h + 1) * dq);
      // Absorbed: q_lat = W_UK^T q_nope, so q_nope . (W_UK ckv) = q_lat . ckv.
      const qLat = this.opts.absorbed ? Float64Array.from({ length: kvr }, (_, j) => qn.reduce((s, v, i) => s + v * uk[i * kvr + j], 0)) : undefined;
      const scores = new Float64Array(T);
      for (let t = 0; t < T; t++) {
        const ckv = this.ckv[l][t];
        let s = 0;
        if (qLat) for (let j = 0; j < kvr; j++) s += qLat[j] * ckv[j];
        else {
          const kn = linear(uk, ckv, dn, kvr);
          for (let i = 0; i < dn; i++) s += qn[i] * kn[i];
        }
        for (let i = 0; i < dr; i++) s += qr[i] * this.kpe[l][t][i];
        scores[t] = s * c.softmaxScale;
      }
      const mx = Math.max(...scores);
      const e = scores.map((s) => Math.exp(s - mx));
      const sum = e.reduce((a, b) => a + b, 0);
      if (this.opts.absorbed) {
        const oLat = new Float64Array(kvr);
        for (let t = 0; t < T; t++) for (let j = 0; j < kvr; j++) oLat[j] += (e[t] / sum) * this.ckv[l][t][j];
        o.set(linear(uv, oLat, dv, kvr), h * dv);
      } else {
        for (let t = 0; t < T; t++) {
          const v = linear(uv, this.ckv[l][t], dv, kvr);
          for (let i = 0; i < dv; i++) o[h * dv + i] += (e[t] / sum) * v[i];
        }
      }
    }
    return this.linear(`${p}.o_proj.weight`, o, H, nh * dv);
  }
}

/** Logits for each prompt position, then `maxNew` greedy tokens (argmax, first maximum). */
export function referenceGenerate(model: ReferenceModel, prompt: number[], maxNew: number): { logits: Float64Array[]; ids: number[] } {
  const logits = prompt.map((t) => model.step(t));
  const ids: number[] = [];
  let last = logits[logits.length - 1];
  for (let i = 0; i < maxNew; i++) {
    const best = argmaxRef(last);
    ids.push(best);
    if (i + 1 < maxNew) last = model.step(best);
  }
  return { logits, ids };
}
