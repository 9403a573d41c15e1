// Runs the conformance list on one context and prints a closing `N passed, N failed` line.
import type { GpuContext } from '../../src/gpu/context.ts';
import { checks, seed, type Check } from './checks.ts';

export interface Outcome {
  name: string;
  status: 'pass' | 'fail' | 'skip';
  detail: string;
}

export function missingFeatures(ctx: GpuContext, check: Check): string[] {
  return (check.needs ?? []).filter((f) => !ctx.has(f));
}

export async function runCheck(ctx: GpuContext, check: Check): Promise<Outcome> {
  const missing = missingFeatures(ctx, check);
  if (missing.length) return { name: check.name, status: 'skip', detail: `adapter lacks ${missing.join(', ')}` };
  try {
    const r = await check.run(ctx);
    const ok = Number.isFinite(r.err) && r.err <= r.tol;
    return { name: check.name, status: ok ? 'pass' : 'fail', detail: `err ${r.err.toExponential(2)} tol ${r.tol.toExponential(1)}${r.note ? ` (${r.note})` : ''}` };
  } catch (e) {
    return { name: check.name, status: 'fail', detail: `threw ${(e as Error).stack ?? e}` };
  }
}

/** Runs every check; `label` (the runtime) starts the summary line. */
export async function runAll(ctx: GpuContext, label: string, log: (line: string) => void): Promise<{ passed: number; failed: number; skipped: number }> {
  log(`${label}: seed ${seed} (DEEPWGSL_SEED=${seed} repeats this run)`);
  const tally = { passed: 0, failed: 0, skipped: 0 };
  for (const check of checks) {
    const o = await runCheck(ctx, check);
    tally[o.status === 'pass' ? 'passed' : o.status === 'fail' ? 'failed' : 'skipped']++;
    log(`  ${o.status === 'pass' ? 'ok  ' : o.status === 'fail' ? 'FAIL' : 'skip'} ${o.name}: ${o.detail}`);
  }
  log(`${label}: ${tally.passed} passed, ${tally.failed} failed, ${tally.skipped} skipped`);
  return tally;
}
