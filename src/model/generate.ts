// The decoding loop: each prompt through one forward (a prefill, s_q = its length), then the
// sequences, of different lengths, decoded together one token per step with sampling (greedy,
// temperature, top-k, top-p with a seed) until a stop token or the token limit. Greedy steps choose
// their tokens on the GPU (Decoder.greedy: no logits read back, the host a step ahead); sampling
// reads the logits back each step. Logits holding NaN or Inf end generation with an error naming the
// step (greedy steps learn it from the GPU's argmax at no cost).
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

/** Forwards of one kind summed: tokens processed, wall time, of it planning (each shape's first forward), and GPU time (timestamps; undefined without them). */
export interface PhaseTiming {
  forwards: number;
  tokens: number;
  wallMs: number;
  planMs: number;
  gpuMs?: number;
}

export interface GenerateResult {
  /** New tokens per prompt. */
  ids: number[][];
  /** Decoder forwards taken (prefills + decode steps), tokens processed (prompt + generated, all sequences), wall time. */
  steps: number;
  tokens: number;
  ms: number;
  /** The prompts' forwards and the decode steps apart: host time is wall minus GPU. */
  prefill: PhaseTiming;
  decode: PhaseTiming;
}

function addTiming(p: PhaseTiming, dec: Decoder): void {
  const t = dec.lastTiming!;
  p.forwards++;
  p.tokens += t.tokens;
  p.wallMs += t.wallMs;
  p.planMs += t.planMs;
  // Timestamps are there for every forward of a device or for none.
  if (t.gpuMs !== undefined) p.gpuMs = (p.gpuMs ?? 0) + t.gpuMs;
}

export async function generate(dec: Decoder, prompts: readonly (readonly number[])[], opts: GenerateOptions): Promise<GenerateResult> {
  if (!prompts.length || prompts.some((p) => p.length === 0)) fail('generate', 'prompts', 'one or more non-empty token lists', prompts.map((p) => p.length));
  if (!Number.isInteger(opts.maxNewTokens) || opts.maxNewTokens < 1) fail('generate', 'maxNewTokens', 'a positive integer', opts.maxNewTokens);
  checkSampling('generate', opts);
  const random = seededRandom(opts.seed ?? 0);
  const stop = new Set(opts.stopTokens ?? []);
  const ids = prompts.map(() => [] as number[]);
  const next = prompts.map(() => -1);
  const done = prompts.map(() => false);
  const prefill: PhaseTiming = { forwards: 0, tokens: 0, wallMs: 0, planMs: 0 };
  const decode: PhaseTiming = { forwards: 0, tokens: 0, wallMs: 0, planMs: 0 };
  // Sequence ids of this call: fresh ones, released at the end.
  const base = 1 << 20;
  const take = (i: number, t: number) => {
    ids[i].push(t);
    opts.onToken?.(i, t);
    if (stop.has(t) || ids[i].length >= opts.maxNewTokens) done[i] = true;
    else next[i] = t;
  };
  const t0 = performance.now();
  try {
    for (let i = 0; i < prompts.length && !opts.shouldStop?.(); i++) {
      const [last] = await dec.prefill(base + i, prompts[i], { logits: 'last' });
      addTiming(prefill, dec);
      checkLogits(last, `generate: prompt ${i}, new token 1 (after its prefill)`);
      take(i, sampleToken(last, opts, random));
    }
    while (done.some((d) => !d) && !opts.shouldStop?.()) {
      const live = prompts.map((_, i) => i).filter((i) => !done[i] && next[i] >= 0);
      if (!live.length) break; // stopped before every prompt went through
      const batch = live.map((i) => ({ seq: base + i, token: next[i] }));
      if (!opts.temperature) {
        // Greedy: the tokens are chosen on the GPU and fed to the next step there, until a
        // sequence ends (the batch changes) or a stop is asked for.
        const steps = Math.min(...live.map((i) => opts.maxNewTokens - ids[i].length));
        await dec.greedy(batch, steps, (tokens) => {
          addTiming(decode, dec);
          live.forEach((i, j) => take(i, tokens[j]));
          return !live.some((i) => done[i]) && !opts.shouldStop?.();
        });
      } else {
        const logits = await dec.step(batch);
        addTiming(decode, dec);
        live.forEach((i, j) => {
          checkLogits(logits[j], `generate: prompt ${i}, new token ${ids[i].length + 1}`);
          take(i, sampleToken(logits[j], opts, random));
        });
      }
    }
  } finally {
    prompts.forEach((_, i) => dec.allocator.length(base + i) && dec.release(base + i));
  }
  return { ids, steps: prefill.forwards + decode.forwards, tokens: prefill.tokens + decode.tokens, ms: performance.now() - t0, prefill, decode };
}

/** Throws where a logits row holds NaN or Inf (no token is right then), naming the step as `where`. */
export function checkLogits(row: ArrayLike<number>, where: string): void {
  for (let j = 0; j < row.length; j++) {
    if (!Number.isFinite(row[j])) throw new DeepwgslError(`${where}: the logits hold ${row[j]} at token id ${j}, so no token can be chosen (the model overflowed)`);
  }
}

/**
 * Token ids written as text, split by `sep`, each decimal digits naming an id in the vocabulary
 * (`Number` would read '' as 0 and take '0x1ff' and '1e1'); `where` starts the error.
 */
export function parseTokenIds(text: string, vocab: number, sep: string | RegExp, where: string): number[] {
  return text.split(sep).map((s, k) => {
    const f = s.trim();
    const t = Number(f);
    if (!/^\d+$/.test(f) || t >= vocab) {
      throw new DeepwgslError(`${where}: ${f ? `'${f}'` : 'an empty field'} (field ${k + 1} of '${text}') is not a token id: expected decimal ids in 0..${vocab - 1}`);
    }
    return t;
  });
}
