// `deepwgsl bench --<suite>`: each kernel family registers a suite here; the CLI and the bench page run them.
import type { GpuContext } from '../gpu/context.ts';
import type { Profiler } from '../jit/profiler.ts';
import { measureCeilings, type Ceiling } from './ceilings.ts';
import { decodeSuite } from './decode.ts';
import { gemmSuite } from './gemm.ts';
import { mlaSuite } from './mla.ts';
import { moeSuite } from './moe.ts';

export interface BenchOptions {
  quick: boolean;
  iters: number;
  /** Re-time every kernel config instead of using remembered winners. */
  tune?: boolean;
  /** The measured ceilings, so each row can be shown as a percentage of its own. */
  ceilings: Ceiling[];
}

export interface BenchRow {
  suite: string;
  name: string;
  ms: number;
  gbs?: number;
  tflops?: number;
  /** Percent of the ceiling that bounds this case, and which ceiling. */
  pct?: number;
  ceiling?: string;
  note?: string;
}

export interface BenchSuite {
  flag: string;
  describe: string;
  run(ctx: GpuContext, opts: BenchOptions, emit: (row: BenchRow) => void): Promise<void>;
}

export const SUITES: BenchSuite[] = [mlaSuite, gemmSuite, moeSuite, decodeSuite];

export const BENCH_HEADER = '| case | time | GB/s | TFLOP/s | % of ceiling | note |\n|---|---|---|---|---|---|';

export function benchRowLine(r: BenchRow): string {
  const f = (v: number | undefined) => (v === undefined ? '' : v.toPrecision(4));
  const pct = r.pct === undefined ? '' : `${r.pct.toFixed(1)}% of ${r.ceiling}`;
  return `| ${r.name} | ${r.ms.toFixed(4)} ms | ${f(r.gbs)} | ${f(r.tflops)} | ${pct} | ${r.note ?? ''} |`;
}

export interface BenchReport {
  device: string;
  adapter: GpuContext['adapterInfo'];
  features: string[];
  date: string;
  quick: boolean;
  ceilings: Ceiling[];
  rows: BenchRow[];
}

export interface BenchRun {
  quick: boolean;
  iters: number;
  /** Re-time every kernel config instead of using remembered winners. */
  tune?: boolean;
  suites: BenchSuite[];
  onCeilings?(ceilings: Ceiling[]): void;
  onSuite?(suite: BenchSuite): void;
  onRow?(row: BenchRow): void;
  /** Records every timed sample (ceilings, then each suite under its flag) for a Chrome trace. */
  profiler?: Profiler;
}

/** Ceilings first, then each suite; the CLI and the bench page both run this. */
export async function runBench(ctx: GpuContext, run: BenchRun): Promise<BenchReport> {
  const { profiler } = run;
  if (profiler) profiler.section = 'ceilings';
  const detach = profiler?.attach();
  const rows: BenchRow[] = [];
  let ceilings: Ceiling[];
  try {
    ceilings = await measureCeilings(ctx, run.quick ? 'quick' : 'full', run.iters);
    run.onCeilings?.(ceilings);
    for (const suite of run.suites) {
      if (profiler) profiler.section = suite.flag;
      run.onSuite?.(suite);
      await suite.run(ctx, { quick: run.quick, iters: run.iters, tune: run.tune, ceilings }, (row) => {
        rows.push(row);
        run.onRow?.(row);
      });
    }
  } finally {
    detach?.();
  }
  return { device: ctx.describe(), adapter: ctx.adapterInfo, features: [...ctx.features], date: new Date().toISOString(), quick: run.quick, ceilings, rows };
}
