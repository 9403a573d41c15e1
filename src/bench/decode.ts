// `deepwgsl bench --decode`: decode tokens/s of a DeepSeek-V2-Lite-shaped model (synthetic FP8
// checkpoint, or DEEPWGSL_DECODE_MODEL=DIR) at batch 1 and 8, each beside its floor: the weight
// bytes one step must read (everything but unused routed experts, at their GPU dtypes) over the
// measured stream-read bandwidth. Steps are replayed plans; each row splits the wall time into GPU
// (the step pass's timestamps) and host, a greedy row times the same steps with the tokens chosen on the GPU (Decoder.greedy), and the top kernels of an in-step profile (one timed pass per launch) follow it. Node and Deno only (the checkpoint is written to disk): in a
// browser it reports that and returns. DEEPWGSL_DECODE_BATCHES=1,8 picks the batch sizes;
// DEEPWGSL_DECODE_MLA='[{"dk":32,"bnv":8}, ...]' also times batch 1 with each MLA tile config
// (the Decoder's mlaConfig; other tiles, same weights), for choosing one on a GPU.
// DEEPWGSL_DECODE_CONTEXT=N: each sequence's prompt length before the timed steps (default 16): the
// attention's share of a step grows with it. --tune first tunes the step's largest GEMMs in the step (tuneStep).
// Then prefill rows: one prompt of each of DEEPWGSL_PREFILL_LENGTHS tokens (default 16,256,1024) through
// one forward that computes the last position's logits only: time to first token, cold (the prompt
// length's first forward, planning included) and replayed, beside the floor of its FLOPs and bytes.
import type { GpuContext } from '../gpu/context.ts';
import { openCheckpoint, type Checkpoint } from '../model/checkpoint.ts';
import { Decoder, type DecoderOptions, type StepTiming } from '../model/decode.ts';
import { Profiler } from '../jit/profiler.ts';
import { formatBytes, loadWeights, planWeights, type ModelWeights } from '../model/load.ts';
import { dirSource } from '../model/source.ts';
import { activeParams, activeShare } from '../model/describe.ts';
import { writeSyntheticCheckpoint, type SynthOptions } from '../model/synthetic.ts';
import { envPositiveInts, envVar, runtime } from '../gpu/env.ts';
import type { BenchOptions, BenchRow, BenchSuite } from './suites.ts';
import type { Launch, LaunchInfo } from '../jit/launch.ts';
import { defaultTuningStore, gpuKey } from '../jit/tuning-cache.ts';
import { raiseClocks } from './ceilings.ts';

const BATCHES = [1, 8];
/** Rows of the per-kernel breakdown per batch size. */
const TOP_KERNELS = 20;
const PROMPT = 16;
const PREFILL_LENGTHS = [16, 256, 1024];
/** Replayed prefills per length (each a whole prompt: seconds at 1024 tokens on a laptop GPU). */
const PREFILL_REPEATS = 3;
/** Rows of the per-kernel breakdown of the longest prefill. */
const TOP_PREFILL_KERNELS = 8;

/** Bytes a decode step of `batch` tokens reads: routed experts by the expected number of distinct ones picked. */
export function activeWeightBytes(ck: Checkpoint, batch: number): number {
  return planWeights(ck).tensors.reduce((bytes, p) => bytes + activeShare(ck.config, p.expected.name, batch) * p.gpuBytes, 0);
}

/** A synthetic checkpoint in the temp directory, written once and reused (config.json is written last). */
async function syntheticDir(opts: SynthOptions): Promise<string> {
  const { tmpdir } = await import('node:os');
  const { stat } = await import('node:fs/promises');
  const dir = `${tmpdir()}/deepwgsl-synth-${opts.preset}-l${opts.layers ?? 'all'}-${opts.dtype}`;
  if (!(await stat(`${dir}/config.json`).then(() => true, () => false))) {
    const { rm } = await import('node:fs/promises');
    await rm(dir, { recursive: true, force: true });
    const t0 = performance.now();
    const r = await writeSyntheticCheckpoint(dir, opts);
    console.error(`bench --decode: wrote ${formatBytes(r.bytes)} synthetic ${opts.preset} to ${dir} in ${((performance.now() - t0) / 1e3).toFixed(1)} s`);
  }
  return dir;
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[xs.length >> 1];

/** A token id for sequence s at position t (any tokens do: the weights are random). */
const tokenOf = (vocab: number) => (s: number, t: number) => (s * 7919 + t * 104729) % vocab;

/** Each sequence's prompt in one forward, one untimed step (the batch shape planned), then `steps` timed replayed steps. */
async function replaySteps(ctx: GpuContext, dec: Decoder, seqs: number[], prompt: number, steps: number): Promise<{ timings: StepTiming[]; logits: Float32Array[] }> {
  const tok = tokenOf(dec.config.vocabSize);
  for (const seq of seqs) await dec.prefill(seq, Array.from({ length: prompt }, (_, t) => tok(seq, t)));
  await dec.step(seqs.map((seq) => ({ seq, token: tok(seq, prompt) })));
  // Steps keep the clock up once it is up; planning and uploads let it fall.
  await raiseClocks(ctx);
  const timings: StepTiming[] = [];
  let logits: Float32Array[] = [];
  for (let t = 0; t < steps; t++) {
    logits = await dec.step(seqs.map((seq) => ({ seq, token: tok(seq, prompt + 1 + t) })));
    timings.push(dec.lastTiming!);
  }
  return { timings, logits };
}

interface ProfileRow {
  label: string;
  /** What the label's launches add to the step: each one's end minus the previous launch's end. */
  us: number;
  /** Their own passes' time. */
  ownUs: number;
  bytes: number;
  flops: number;
  n: number;
}

/**
 * Per kernel, in the step: each launch once, in step order, in its own timed pass of one submit, so
 * every launch follows the one it follows in the step. A launch's cost is what it adds to the step:
 * its end minus the previous launch's end (its own pass time beside it). An 8x-repeat profile did
 * not add up to the step (its repeats find weights in the L2 and hide each launch's fixed cost).
 * Rows by label, most time first.
 */
async function inStepProfile(ctx: GpuContext, planned: { launches: readonly Launch[]; labels: readonly string[] }, title: string): Promise<{ rows: ProfileRow[]; totalUs: number; launches: number }> {
  await raiseClocks(ctx);
  const events = await new Profiler(ctx).profilePasses(
    planned.launches.map((l) => ({ name: l.info.kernel, info: l.info, encode: (p) => l.encode(p) })),
    title,
  );
  const byLabel = new Map<string, ProfileRow>();
  events.forEach((e, i) => {
    const label = planned.labels[i];
    const prevEnd = i === 0 ? e.startUs : events[i - 1].startUs + events[i - 1].durUs;
    const x = byLabel.get(label) ?? { label, us: 0, ownUs: 0, bytes: 0, flops: 0, n: 0 };
    byLabel.set(label, { label, us: x.us + e.startUs + e.durUs - prevEnd, ownUs: x.ownUs + e.durUs, bytes: x.bytes + e.bytes, flops: x.flops + e.flops, n: x.n + 1 });
  });
  const last = events[events.length - 1];
  return { rows: [...byLabel.values()].sort((x, y) => y.us - x.us), totalUs: last.startUs + last.durUs - events[0].startUs, launches: events.length };
}

/** A profile row as a bench row (`what`: the step it belongs to). */
function profileRow(what: string, r: ProfileRow, profile: { totalUs: number; launches: number }, bw: number | undefined): BenchRow {
  const gbs = r.bytes / r.us / 1e3;
  return {
    suite: 'decode',
    name: `${what}: ${r.label} (x${r.n})`,
    ms: r.us / 1e3,
    gbs: r.bytes ? gbs : undefined,
    tflops: r.flops ? r.flops / r.us / 1e6 : undefined,
    pct: r.bytes && bw ? (100 * gbs) / bw : undefined,
    ceiling: 'stream-read',
    note: `${((100 * r.us) / profile.totalUs).toFixed(1)}% of ${(profile.totalUs / 1e3).toFixed(2)} ms (in-step: end minus the previous launch's end, one pass per launch, ${profile.launches} launches); own passes ${(r.ownUs / 1e3).toFixed(3)} ms`,
  };
}

/**
 * FLOPs of a prompt of `tokens` through one forward with the last position's logits only: two per
 * parameter each token reads (lm_head's once) and causal attention in MLA's absorbed form (each
 * position against itself and every earlier one, d = kv_lora_rank + rope for the scores, kv_lora_rank for the values).
 */
function prefillFlops(ck: Checkpoint, tokens: number): number {
  const c = ck.config;
  const head = c.tieWordEmbeddings ? 0 : c.vocabSize * c.hiddenSize;
  const attention = c.numLayers * 2 * c.numHeads * (2 * c.kvLoraRank + c.qkRopeHeadDim) * ((tokens * (tokens + 1)) / 2);
  return 2 * tokens * (activeParams(ck) - head) + 2 * head + attention;
}

/**
 * Prefill rows: one prompt of each length through one forward, the last position's logits read back
 * (what generation's first token needs). The cold row is the length's first forward, planning
 * (compiles, binding, buffers) included, as a user's first prompt of that length pays it; the
 * replayed row the median of PREFILL_REPEATS more. Floor: the FLOPs at the f32 FMA rate (W8A32: the
 * FP8 weights are read and multiplied in f32) or the weight bytes at the stream-read rate, whichever is longer.
 */
async function prefillRows(ctx: GpuContext, ck: Checkpoint, weights: ModelWeights, name: string, lengths: number[], opts: BenchOptions, emit: (row: BenchRow) => void): Promise<void> {
  const bw = opts.ceilings.find((x) => x.name === 'stream-read')?.value;
  const fma = opts.ceilings.find((x) => x.name === 'fma-f32')?.value;
  const tok = tokenOf(ck.config.vocabSize);
  const dec = await Decoder.create(ctx, ck, weights, { maxSeqLen: Math.max(...lengths) });
  try {
    for (const P of lengths) {
      const tokens = Array.from({ length: P }, (_, t) => tok(0, t));
      const prefill = async () => {
        const [logits] = await dec.prefill(0, tokens, { logits: 'last' });
        dec.release(0);
        if (!logits.every(Number.isFinite)) throw new Error(`bench --decode: the prefill of ${P} tokens gave non-finite logits`);
        return dec.lastTiming!;
      };
      const cold = await prefill();
      await raiseClocks(ctx);
      const timings: StepTiming[] = [];
      for (let r = 0; r < PREFILL_REPEATS; r++) timings.push(await prefill());
      const ms = median(timings.map((t) => t.wallMs));
      const gpuMs = timings.every((t) => t.gpuMs !== undefined) ? median(timings.map((t) => t.gpuMs!)) : undefined;
      const flops = prefillFlops(ck, P);
      const bytes = activeWeightBytes(ck, P);
      const floors = { 'fma-f32': fma && (flops / (fma * 1e12)) * 1e3, 'stream-read': bw && (bytes / (bw * 1e9)) * 1e3 };
      const [bound, floorMs] = Object.entries(floors).reduce((a, b) => ((b[1] ?? 0) > (a[1] ?? 0) ? b : a));
      emit({
        suite: 'decode',
        name: `${name} prefill, ${P} tokens: time to first token`,
        ms,
        tflops: flops / (ms / 1e3) / 1e12,
        gbs: bytes / (ms / 1e3) / 1e9,
        pct: floorMs ? (100 * floorMs) / ms : undefined,
        ceiling: `floor (${bound})`,
        note:
          `${((P * 1e3) / ms).toFixed(0)} prompt tokens/s; ` +
          (gpuMs === undefined ? 'no timestamps: GPU time unknown' : `GPU ${gpuMs.toFixed(2)} ms (${floorMs ? ((100 * floorMs) / gpuMs).toFixed(0) : '?'}% of floor), host ${(ms - gpuMs).toFixed(2)} ms`) +
          `; first prompt of this length ${cold.wallMs.toFixed(0)} ms wall, of it planning ${cold.planMs.toFixed(0)} ms; ` +
          `floor ${floorMs?.toFixed(2)} ms (${(flops / 1e12).toFixed(3)} TFLOP at ${fma?.toPrecision(3)} TFLOP/s, ${formatBytes(bytes)} of weights at ${bw?.toPrecision(4)} GB/s); ` +
          `median of ${PREFILL_REPEATS} replayed prefills, wall time from the call to the last position's logits on the host`,
      });
    }
    // Where the longest prompt's forward goes.
    const P = lengths[lengths.length - 1];
    await dec.prefill(0, Array.from({ length: P }, (_, t) => tok(0, t)), { logits: 'last' });
    const profile = await inStepProfile(ctx, dec.launchesOf(1, P, { logits: 'last' })!, `prefill ${P}`);
    dec.release(0);
    for (const r of profile.rows.slice(0, TOP_PREFILL_KERNELS)) emit(profileRow(`prefill ${P}`, r, profile, bw));
  } finally {
    dec.destroy();
  }
}

/** GEMM shapes of a step tuned by --tune, most weight bytes per step first, and rounds of moving to a faster neighbouring config. */
const TUNE_SHAPES = 5;
const TUNE_ROUNDS = 2;

/** Fields in which two configs differ. */
const fieldsApart = (a: object, b: object) => {
  const [x, y] = [a as Record<string, unknown>, b as Record<string, unknown>];
  return [...new Set([...Object.keys(x), ...Object.keys(y)])].filter((k) => JSON.stringify(x[k]) !== JSON.stringify(y[k])).length;
};

/**
 * --tune: a GEMM launch's cost inside the decode step (after other kernels, its weights cold) is not
 * what autotune's repeated launches of it alone measure (docs/BENCHMARKS.md: the gemv kernel won
 * alone and lost in the step), so here each of the step's GEMM shapes (the TUNE_SHAPES that read the
 * most weight bytes per step) tries every config one field away from its current one with the
 * whole step timed, moving to the fastest where it gains more than 1% twice over (timed again beside
 * the current one), for up to TUNE_ROUNDS rounds; the tuning store (what the decoder plans from:
 * DEEPWGSL_JIT_CACHE_DIR) keeps the result.
 */
async function tuneStep(ctx: GpuContext, dec: Decoder, batch: number, steps: number, emit: (row: BenchRow) => void): Promise<void> {
  const store = defaultTuningStore();
  const seqs = Array.from({ length: batch }, (_, i) => i);
  // One-token prompts: the prefill plans the decode shape itself (every try plans the step again).
  const measure = async () => {
    const { timings } = await replaySteps(ctx, dec, seqs, 1, steps);
    for (const seq of seqs) dec.release(seq);
    return median(timings.map((t) => t.gpuMs ?? t.wallMs));
  };
  let best = await measure();
  const planned = dec.launchesOf(batch)!;
  const shapes = new Map<string, { tuning: NonNullable<LaunchInfo['tuning']>; config: object; labels: Set<string>; bytes: number }>();
  planned.launches.forEach((l, i) => {
    const t = l.info.tuning;
    if (!t) return;
    const key = `${t.kernel}|${t.shapeKey}`;
    const x = shapes.get(key) ?? { tuning: t, config: l.info.config, labels: new Set<string>(), bytes: 0 };
    x.labels.add(planned.labels[i]);
    x.bytes += l.info.bytes;
    shapes.set(key, x);
  });
  for (const [key, x] of [...shapes].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, TUNE_SHAPES)) {
    const storeKey = `${gpuKey(ctx)}|${key}`;
    const time = async (c: object) => {
      await store.set(storeKey, { config: c });
      dec.replan();
      return measure();
    };
    const base = best;
    let cur = x.config;
    const tried = new Map<string, number>([[JSON.stringify(cur), best]]);
    // Up to two rounds of moving to the fastest neighbour.
    for (let round = 0; round < TUNE_ROUNDS; round++) {
      let win: object | undefined;
      let winMs = Infinity;
      for (const c of x.tuning.candidates.filter((c) => fieldsApart(c, cur) === 1 && !tried.has(JSON.stringify(c)))) {
        const ms = await time(c);
        tried.set(JSON.stringify(c), ms);
        if (ms < winMs) [win, winMs] = [c, ms];
      }
      if (!win || winMs > 0.99 * best) break;
      // Both timed again: one lucky run does not change a config.
      const [again, curAgain] = [await time(win), await time(cur)];
      if (again > 0.99 * curAgain) break;
      [cur, best] = [win, again];
    }
    await store.set(storeKey, { config: cur, medianMs: best, method: 'decode step', date: new Date().toISOString() });
    dec.replan();
    emit({
      suite: 'decode',
      name: `tune batch ${batch}: ${[...x.labels].join(', ')}`,
      ms: best / batch,
      note:
        `${cur === x.config ? 'kept' : 'now'} ${JSON.stringify(cur)}: step ${base.toFixed(3)} -> ${best.toFixed(3)} GPU ms; from ${JSON.stringify(x.config)}, ${tried.size - 1} configs tried (${[...tried.values()].slice(1).map((ms) => ms.toFixed(3)).join(', ')} ms); ` +
        `stored in ${store.where} (${x.tuning.shapeKey})`,
    });
  }
}

export const decodeSuite: BenchSuite = {
  flag: 'decode',
  describe: 'model decode (DeepSeek-V2-Lite shapes, synthetic FP8 weights): tokens/s at batch 1 and 8 beside the weight-read floor',
  async run(ctx: GpuContext, opts, emit) {
    if (runtime() === 'browser') {
      emit({ suite: 'decode', name: 'V2-Lite decode', ms: NaN, note: 'needs Node or Deno (writes a synthetic checkpoint to disk): run `deepwgsl bench --decode`' });
      return;
    }
    const given = envVar('DEEPWGSL_DECODE_MODEL');
    // Software adapters get V2-Lite's architecture at toy size; --quick a 4-layer V2-Lite.
    const synth: SynthOptions = ctx.isSoftware ? { preset: 'v2-tiny', dtype: 'fp8' } : { preset: 'v2-lite', dtype: 'fp8', layers: opts.quick ? 4 : undefined };
    const dir = given ?? (await syntheticDir(synth));
    const ck = await openCheckpoint(dirSource(dir));
    const c = ck.config;
    const name = `${given ? dir : synth.preset}${c.numLayers !== 27 ? ` (${c.numLayers} layers)` : ''}`;
    const bw = opts.ceilings.find((x) => x.name === 'stream-read')?.value;
    const t0 = performance.now();
    const weights = await loadWeights(ctx, ck);
    const loadS = (performance.now() - t0) / 1e3;
    const steps = Math.max(3, Math.min(opts.iters, 32));
    // DEEPWGSL_DECODE_SUBMITS: submits per step (the Decoder's default overlaps encoding with the GPU).
    const submits = envVar('DEEPWGSL_DECODE_SUBMITS');
    const batches = envPositiveInts('DEEPWGSL_DECODE_BATCHES', 'bench --decode') ?? BATCHES;
    const contexts = envPositiveInts('DEEPWGSL_DECODE_CONTEXT', 'bench --decode');
    if (contexts && contexts.length !== 1) throw new Error(`bench --decode: DEEPWGSL_DECODE_CONTEXT must be one prompt length, got '${contexts.join(',')}'`);
    const prompt = contexts?.[0] ?? PROMPT;
    const mlaVariants = JSON.parse(envVar('DEEPWGSL_DECODE_MLA') ?? '[]') as DecoderOptions['mlaConfig'][];
    // The prompt, the planning step, the timed steps, the greedy steps and the one greedy takes back.
    const base: DecoderOptions = { maxSeqLen: prompt + 2 * steps + 3, maxBatch: Math.max(...batches), ...(submits && { submits: Number(submits) }) };
    try {
      if (opts.tune) {
        const dec = await Decoder.create(ctx, ck, weights, base);
        try {
          for (const batch of batches) await tuneStep(ctx, dec, batch, Math.min(steps, 8), emit);
        } finally {
          dec.destroy();
        }
      }
      for (const [v, mlaConfig] of [undefined, ...mlaVariants].entries()) {
        const dec = await Decoder.create(ctx, ck, weights, { ...base, mlaConfig });
        const tag = mlaConfig ? ` (mla ${JSON.stringify(mlaConfig)})` : '';
        try {
          await dec.prefill(0, [0]);
          dec.release(0);
        } catch (e) {
          // A variant's tiles may not fit this device or shape: say so and go on with the next.
          if (v === 0) throw e;
          emit({ suite: 'decode', name: `batch 1${tag}`, ms: NaN, note: `not run: ${(e as Error).message}` });
          dec.destroy();
          continue;
        }
        try {
          for (const batch of v === 0 ? batches : [1]) {
            const seqs = Array.from({ length: batch }, (_, i) => i);
            const tok = tokenOf(c.vocabSize);
            const { timings, logits } = await replaySteps(ctx, dec, seqs, prompt, steps);
            // Random weights drawn like a trained model's keep logits finite and of order 1 over all layers.
            const rms = Math.sqrt(logits[0].reduce((a, v) => a + v * v, 0) / logits[0].length);
            if (!Number.isFinite(rms)) throw new Error(`bench --decode: ${name} gave non-finite logits`);
            const ms = median(timings.map((t) => t.wallMs));
            const gpuMs = timings.every((t) => t.gpuMs !== undefined) ? median(timings.map((t) => t.gpuMs!)) : undefined;
            const encodeMs = median(timings.map((t) => t.encodeMs));
            const bytes = activeWeightBytes(ck, batch);
            const floorMs = bw ? (bytes / (bw * 1e9)) * 1e3 : undefined;
            const perTok = (x: number) => `${(x / batch).toFixed(3)} ms/token`;
            const planned = dec.launchesOf(batch)!;
            const dispatches = planned.launches.reduce((a, l) => a + l.dispatches.length, 0);
            const mlaTiles = planned.launches.find((l) => l.info.kernel === 'mla.decode')?.info.config;
            emit({
              suite: 'decode',
              name: `${name} decode, batch ${batch}${prompt !== PROMPT ? `, context ${prompt}` : ''}${tag}`,
              ms,
              gbs: bytes / (ms / 1e3) / 1e9,
              pct: floorMs === undefined ? undefined : (100 * floorMs) / ms,
              ceiling: 'stream-read',
              note:
                `${((batch * 1e3) / ms).toFixed(1)} tokens/s` +
                (floorMs === undefined ? '' : `; floor ${((batch * 1e3) / floorMs).toFixed(0)} tokens/s (${formatBytes(bytes)} of weights per step at ${bw!.toPrecision(4)} GB/s)`) +
                (gpuMs === undefined ? '; no timestamps: GPU time unknown' : `; GPU ${perTok(gpuMs)} (${((100 * (floorMs ?? NaN)) / gpuMs).toFixed(0)}% of floor), host ${perTok(ms - gpuMs)}`) +
                `; encode+submit ${encodeMs.toFixed(2)} ms/step (${dec.opts.submits} submits, ${planned.launches.length} launches, ${dispatches} dispatches); MLA tiles ${JSON.stringify(mlaTiles)}; median of ${steps} replayed steps (wall time, logits read back); logit RMS ${rms.toFixed(2)}; weights loaded in ${loadS.toFixed(1)} s`,
            });
            // The same steps as a user's greedy decode takes them (generate without sampling): the
            // tokens chosen on the GPU and fed to the next step there, the host a step ahead.
            const greedy: StepTiming[] = [];
            await dec.greedy(seqs.map((seq) => ({ seq, token: tok(seq, prompt + 1 + steps) })), steps, () => void greedy.push(dec.lastTiming!));
            const gMs = median(greedy.map((t) => t.wallMs));
            const gGpu = greedy.every((t) => t.gpuMs !== undefined) ? median(greedy.map((t) => t.gpuMs!)) : undefined;
            emit({
              suite: 'decode',
              name: `${name} decode, batch ${batch}${prompt !== PROMPT ? `, context ${prompt}` : ''}${tag}, greedy on the GPU`,
              ms: gMs,
              gbs: bytes / (gMs / 1e3) / 1e9,
              pct: floorMs === undefined ? undefined : (100 * floorMs) / gMs,
              ceiling: 'stream-read',
              note:
                `${((batch * 1e3) / gMs).toFixed(1)} tokens/s` +
                (gGpu === undefined ? '' : `; GPU ${perTok(gGpu)} (${((100 * (floorMs ?? NaN)) / gGpu).toFixed(0)}% of floor)`) +
                `; median of ${steps} steps, wall time between one step's tokens and the next's (argmax on the GPU, the next step submitted before its tokens are read back)`,
            });
            // Per kernel, in the step: each launch once, in step order, in its own timed pass of one
            // submit, so every launch follows the one it follows in the step. A launch's cost is
            // what it adds to the step: its end minus the previous launch's end (its own pass time
            // beside it). The 8x-repeat profile this replaced did not add up to the step (its
            // repeats find weights in the L2 and hide each launch's fixed cost).
            const profile = await inStepProfile(ctx, planned, `decode batch ${batch}`);
            // Variants: only the MLA rows differ.
            const top = profile.rows.filter((r) => v === 0 || r.label === 'decode').slice(0, v === 0 ? TOP_KERNELS : 1);
            for (const r of top) emit(profileRow(`batch ${batch}${tag}`, r, profile, bw));
            for (const seq of seqs) dec.release(seq);
          }
        } finally {
          dec.destroy();
        }
      }
      const lengths = envPositiveInts('DEEPWGSL_PREFILL_LENGTHS', 'bench --decode') ?? (ctx.isSoftware ? [8] : PREFILL_LENGTHS);
      await prefillRows(ctx, ck, weights, name, [...lengths].sort((a, b) => a - b), opts, emit);
    } finally {
      weights.destroy();
    }
  },
};
