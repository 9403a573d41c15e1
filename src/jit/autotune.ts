// DeepGEMM-style autotuning on WebGPU: time every candidate config on the real shapes with
// timestamp queries, keep the fastest, and remember it per (GPU, kernel, shape class).
import type { GpuContext } from '../gpu/context.ts';
import { envFlag } from '../gpu/env.ts';
import type { Launch } from './launch.ts';
import { timeLaunch, type TimingOptions } from './timing.ts';
import { raiseClocks } from '../bench/ceilings.ts';
import { defaultTuningStore, gpuKey, type TuningStore } from './tuning-cache.ts';

export interface AutotuneRequest<C> extends TimingOptions {
  kernel: string;
  /** The shape class the winner is remembered for (e.g. 'k=7168'). */
  shapeKey: string;
  candidates: readonly C[];
  plan: (config: C) => Promise<Launch>;
  store?: TuningStore;
  /** Time the candidates even when the store has a winner. */
  force?: boolean;
}

export interface AutotuneResult<C> {
  best: C;
  fromCache: boolean;
  results: { config: C; medianMs: number }[];
  method: 'timestamp' | 'cpu' | 'cache';
}

/** The winner autotune stored for this (GPU, kernel, shape class), if it is still one of the candidates. */
export async function tunedConfig<C>(
  ctx: GpuContext,
  req: { kernel: string; shapeKey: string; candidates: readonly C[]; store?: TuningStore },
): Promise<C | undefined> {
  const store = req.store ?? defaultTuningStore();
  // Whatever the store holds (a hand-edited file may hold anything) is only a winner if it names a candidate.
  const cached = (await store.get(`${gpuKey(ctx)}|${req.kernel}|${req.shapeKey}`)) as { config?: unknown } | null | undefined;
  const stored = JSON.stringify(cached?.config);
  return stored === undefined ? undefined : req.candidates.find((c) => JSON.stringify(c) === stored);
}

export async function autotune<C>(ctx: GpuContext, req: AutotuneRequest<C>): Promise<AutotuneResult<C>> {
  if (req.candidates.length === 0) throw new Error(`autotune(${req.kernel}): no candidate configs`);
  const store = req.store ?? defaultTuningStore();
  const key = `${gpuKey(ctx)}|${req.kernel}|${req.shapeKey}`;
  if (!req.force) {
    const known = await tunedConfig(ctx, { ...req, store });
    if (known) return { best: known, fromCache: true, results: [], method: 'cache' };
  }
  const results: { config: C; medianMs: number }[] = [];
  let method: 'timestamp' | 'cpu' = 'timestamp';
  let raised = -Infinity;
  for (const config of req.candidates) {
    const launch = await req.plan(config);
    // Compiles and host work let the clock fall within ~2 s: every candidate is timed at the loaded clock.
    if (performance.now() - raised > 500) {
      await raiseClocks(ctx);
      raised = performance.now();
    }
    const t = await timeLaunch(ctx, launch, req);
    method = t.method;
    results.push({ config, medianMs: t.medianMs });
  }
  const best = results.reduce((a, b) => (b.medianMs < a.medianMs ? b : a));
  await store.set(key, { config: best.config, medianMs: best.medianMs, method, date: new Date().toISOString() });
  if (envFlag('DEEPWGSL_PRINT_CONFIGS')) {
    console.error(`deepwgsl autotune ${req.kernel} ${req.shapeKey}: best ${JSON.stringify(best.config)} ${best.medianMs.toFixed(4)} ms (${method})`);
  }
  return { best: best.config, fromCache: false, results, method };
}
