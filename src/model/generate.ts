// The decoding loop: several sequences of different lengths in one batch, prompts fed token by
// token, then sampling (greedy, temperature, top-k, top-p with a seed) until a stop token or the
// token limit.
import { DeepwgslError, fail } from '../gpu/errors.ts';
import type { Decoder } from './decode.ts';
import { checkSampling, sampleToken, seededRandom, type SamplingOptions } from './sampling.ts';

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens: number;
  seed?: number;
  /** Generation of a sequence ends after it produces one of these (it is kept in the output). */
  stopTokens?: readonly number[];
  /** Called with each new token as it is sampled (prompt index, token): for streaming UIs. */
  onToken?(prompt: number, token: number): void;
  /** Checked before each step: true ends generation early (a stop button). */
  shouldStop?(): boolean;
}

export interface GenerateResult {
  /** New tokens per prompt. */
  ids: number[][];
  /** Decoder steps taken, tokens processed (prompt + generated, all sequences), wall time. */
  steps: number;
  tokens: number;
  ms: number;
}

export async function generate(dec: Decoder, prompts: readonly (readonly number[])[], opts: GenerateOptions): Promise<GenerateResult> {
  if (!prompts.length || prompts.some((p) => p.length === 0)) fail('generate', 'prompts', 'one or more non-empty token lists', prompts.map((p) => p.length));
  if (!Number.isInteger(opts.maxNewTokens) || opts.maxNewTokens < 1) fail('generate', 'maxNewTokens', 'a positive integer', opts.maxNewTokens);
  checkSampling('generate', opts);
  const random = seededRandom(opts.seed ?? 0);
  const stop = new Set(opts.stopTokens ?? []);
  const queue = prompts.map((p) => [...p]);
  const ids = prompts.map(() => [] as number[]);
  const done = prompts.map(() => false);
  // Sequence ids of this call: fresh ones, released at the end.
  const base = 1 << 20;
  let steps = 0;
  let tokens = 0;
  const t0 = performance.now();
  try {
    while (done.some((d) => !d) && !opts.shouldStop?.()) {
      const live = prompts.map((_, i) => i).filter((i) => !done[i]);
      const logits = await dec.step(live.map((i) => ({ seq: base + i, token: queue[i].shift()! })));
      steps++;
      tokens += live.length;
      live.forEach((i, j) => {
        if (queue[i].length) return; // still feeding the prompt
        const t = sampleToken(logits[j], opts, random);
        ids[i].push(t);
        opts.onToken?.(i, t);
        if (stop.has(t) || ids[i].length >= opts.maxNewTokens) done[i] = true;
        else queue[i].push(t);
      });
    }
  } finally {
    prompts.forEach((_, i) => dec.allocator.length(base + i) && dec.release(base + i));
  }
  return { ids, steps, tokens, ms: performance.now() - t0 };
}

/** Token ids written as text, split by `sep`, each checked against the vocabulary (`where` starts the error). */
export function parseTokenIds(text: string, vocab: number, sep: string | RegExp, where: string): number[] {
  return text.split(sep).map((s) => {
    const t = Number(s.trim());
    if (!Number.isInteger(t) || t < 0 || t >= vocab) throw new DeepwgslError(`${where}: '${s}' is not a token id in 0..${vocab - 1}`);
    return t;
  });
}
