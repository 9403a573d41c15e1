// `deepwgsl bench --decode`: decode tokens/s of a DeepSeek-V2-Lite-shaped model (synthetic FP8
// checkpoint, or DEEPWGSL_DECODE_MODEL=DIR) at batch 1 and 8, each beside its floor: the weight
// bytes one step must read (everything but unused routed experts, at their GPU dtypes) over the
// measured stream-read bandwidth. Node and Deno only (the checkpoint is written to disk): in a
// browser it reports that and returns.
import type { GpuContext } from '../gpu/context.ts';
import { openCheckpoint, type Checkpoint } from '../model/checkpoint.ts';
import { Decoder } from '../model/decode.ts';
import { formatBytes, loadWeights, planWeights } from '../model/load.ts';
import { dirSource } from '../model/source.ts';
import { activeShare } from '../model/describe.ts';
import { writeSyntheticCheckpoint, type SynthOptions } from '../model/synthetic.ts';
import { envVar, runtime } from '../gpu/env.ts';
import type { BenchRow, BenchSuite } from './suites.ts';

const BATCHES = [1, 8];
const PROMPT = 16;

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
    const dec = await Decoder.create(ctx, ck, weights, { maxSeqLen: PROMPT + steps + 2, maxBatch: Math.max(...BATCHES) });
    try {
      for (const batch of BATCHES) {
        const seqs = Array.from({ length: batch }, (_, i) => i);
        const tok = (s: number, t: number) => (s * 7919 + t * 104729) % c.vocabSize;
        // The prompt, then one untimed step (pipelines compiled), then the timed steps.
        for (let t = 0; t <= PROMPT; t++) await dec.step(seqs.map((seq) => ({ seq, token: tok(seq, t) })));
        const times: number[] = [];
        let logits: Float32Array[] = [];
        for (let t = 0; t < steps; t++) {
          const s0 = performance.now();
          logits = await dec.step(seqs.map((seq) => ({ seq, token: tok(seq, PROMPT + 1 + t) })));
          times.push(performance.now() - s0);
        }
        // Random weights drawn like a trained model's keep logits finite and of order 1 over all layers.
        const rms = Math.sqrt(logits[0].reduce((a, v) => a + v * v, 0) / logits[0].length);
        if (!Number.isFinite(rms)) throw new Error(`bench --decode: ${name} gave non-finite logits`);
        for (const seq of seqs) dec.release(seq);
        times.sort((a, b) => a - b);
        const ms = times[times.length >> 1];
        const bytes = activeWeightBytes(ck, batch);
        const floorMs = bw ? (bytes / (bw * 1e9)) * 1e3 : undefined;
        const row: BenchRow = {
          suite: 'decode',
          name: `${name} decode, batch ${batch}`,
          ms,
          gbs: bytes / (ms / 1e3) / 1e9,
          pct: floorMs === undefined ? undefined : (100 * floorMs) / ms,
          ceiling: 'stream-read',
          note:
            `${((batch * 1e3) / ms).toFixed(1)} tokens/s` +
            (floorMs === undefined ? '' : `; floor ${((batch * 1e3) / floorMs).toFixed(0)} tokens/s (${formatBytes(bytes)} of weights per step at ${bw!.toPrecision(4)} GB/s)`) +
            `; median of ${steps} steps, wall time with logits read back; logit RMS ${rms.toFixed(2)}; weights loaded in ${loadS.toFixed(1)} s`,
        };
        emit(row);
      }
    } finally {
      dec.destroy();
      weights.destroy();
    }
  },
};
