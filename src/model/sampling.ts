// Choosing the next token from read-back logits on the CPU: greedy, or temperature with top-k and
// top-p (nucleus) filtering, from a seeded generator so a run can be repeated exactly.
import { fail } from '../gpu/errors.ts';
import { argmaxRef } from '../kernels/nn/reference.ts';

export interface SamplingOptions {
  /** 0 (or absent): greedy. */
  temperature?: number;
  /** Keep the k most likely tokens (0 or absent: all). */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p (1 or absent: all). */
  topP?: number;
}

/** A seeded uniform generator in [0, 1) (mulberry32). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function checkSampling(where: string, o: SamplingOptions): void {
  if (o.temperature !== undefined && !(o.temperature >= 0 && Number.isFinite(o.temperature))) fail(where, 'temperature', 'a finite number >= 0', o.temperature);
  if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 0)) fail(where, 'topK', 'an integer >= 0', o.topK);
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1)) fail(where, 'topP', 'a number in (0, 1]', o.topP);
}

/** The next token: argmax when greedy, else a draw from the filtered, tempered distribution. */
export function sampleToken(logits: ArrayLike<number>, o: SamplingOptions, random: () => number): number {
  checkSampling('sampleToken', o);
  if (!o.temperature) return argmaxRef(logits);
  const order = Array.from({ length: logits.length }, (_, i) => i).filter((i) => !Number.isNaN(logits[i]));
  order.sort((a, b) => logits[b] - logits[a] || a - b);
  const kept = o.topK ? order.slice(0, o.topK) : order;
  const top = logits[kept[0]];
  const w = kept.map((i) => Math.exp((logits[i] - top) / o.temperature!));
  const total = w.reduce((a, b) => a + b, 0);
  let n = kept.length;
  if (o.topP !== undefined && o.topP < 1) {
    let acc = 0;
    for (n = 0; n < kept.length; ) {
      acc += w[n++] / total;
      if (acc >= o.topP) break;
    }
  }
  const mass = w.slice(0, n).reduce((a, b) => a + b, 0);
  let r = random() * mass;
  for (let j = 0; j < n; j++) {
    r -= w[j];
    if (r < 0) return kept[j];
  }
  return kept[n - 1];
}
