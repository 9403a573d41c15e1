// `deepwgsl bench --moe`: routing, layout, dispatch (bf16 -> FP8, fused cast) and combine at
// DeepSeek-V3's MoE shape (256 experts, 8 per token, n_group 8, topk_group 4, hidden 7168), for a
// decode batch (128 tokens, masked layout) and a prefill chunk (4096 tokens, contiguous layout).
// Every case is memory-bound: rows are % of the streaming-read ceiling.
import type { BenchOptions, BenchRow, BenchSuite } from './suites.ts';
import { raiseClocks } from './ceilings.ts';
import type { GpuContext } from '../gpu/context.ts';
import { createTensor, uploadTensor } from '../gpu/tensor.ts';
import type { Launch } from '../jit/launch.ts';
import { timeLaunch } from '../jit/timing.ts';
import { combine, dispatch, getDispatchLayout } from '../kernels/moe/dispatch.ts';
import type { DispatchLayoutKind, RouteConfig } from '../kernels/moe/reference.ts';
import { planRouteTopk } from '../kernels/moe/route.ts';

const V3: RouteConfig = { numExperts: 256, topk: 8, scoringFunc: 'sigmoid', topkMethod: 'noaux_tc', nGroup: 8, topkGroup: 4, normTopkProb: true, routedScalingFactor: 2.5 };

/** Deterministic pseudo-random values in [-1, 1) (no test helpers in library code). */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

async function runMoeBench(ctx: GpuContext, opts: BenchOptions, emit: (row: BenchRow) => void): Promise<void> {
  const soft = ctx.isSoftware;
  const hidden = soft ? 512 : 7168;
  const stream = opts.ceilings.find((c) => c.name === 'stream-read');
  const row = async (name: string, launch: Launch, note: string) => {
    await raiseClocks(ctx);
    const t = await timeLaunch(ctx, launch, { iters: opts.iters });
    const gbs = launch.info.bytes / t.medianMs / 1e6;
    emit({ suite: 'moe', name, ms: t.medianMs, gbs, pct: stream ? (100 * gbs) / stream.value : undefined, ceiling: stream?.name, note: `${note}; ${t.method}` });
  };
  const cases: [number, DispatchLayoutKind][] = [[soft ? 16 : 128, 'masked'], [soft ? 64 : 4096, 'contiguous']];
  for (const [tokens, kind] of cases) {
    const logits = uploadTensor(ctx, values(tokens * V3.numExperts, 1), [tokens, V3.numExperts], 'f32');
    const bias = uploadTensor(ctx, values(V3.numExperts, 2).map((v) => v * 0.1), [V3.numExperts], 'f32');
    const route = await planRouteTopk(ctx, logits, { ...V3, eScoreCorrectionBias: bias });
    await row(`routeTopk V3 tokens=${tokens}`, route.launch, 'E 256, k 8, 8 groups keep 4');
    const layout = await getDispatchLayout(ctx, route.topkIdx, { numExperts: V3.numExperts, layout: kind });
    await row(`getDispatchLayout ${kind} tokens=${tokens}`, layout.launch, `${layout.rows} rows`);
    const x = uploadTensor(ctx, values(tokens * hidden, 3), [tokens, hidden], 'bf16');
    const d = await dispatch(ctx, x, layout, { fp8: true });
    await row(`dispatch ${kind} bf16->fp8 [${tokens}, ${hidden}]`, d.launch, 'fused 1x128 cast');
    // Expert outputs: their values do not change the time (and the tensor is large), so left zero.
    const y = createTensor(ctx, kind === 'contiguous' ? [layout.rows, hidden] : [V3.numExperts, layout.mMax, hidden], 'bf16');
    const c = await combine(ctx, y, layout, route.topkWeights);
    await row(`combine ${kind} bf16 [${tokens}, ${hidden}]`, c.launch, 'f32 out');
    for (const t of [logits, bias, x, y, d.x, d.scales!, c.out, route.topkIdx, route.topkWeights]) t.destroy();
  }
}

export const moeSuite: BenchSuite = { flag: 'moe', describe: 'MoE routing, dispatch layout, FP8 dispatch, combine (DeepSeek-V3 shapes)', run: runMoeBench };
