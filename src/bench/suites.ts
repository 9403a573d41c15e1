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

// The two tables a bench run shows, as columns and cells: the CLI prints them as markdown, the page as HTML.
export interface TableColumn<T> {
  title: string;
  /** Numbers are right-aligned on the page. */
  numeric?: boolean;
  cell(r: T): string;
}

const num4 = (v: number | undefined) => (v === undefined ? '' : v.toPrecision(4));

export const CEILING_COLUMNS: TableColumn<Ceiling>[] = [
  { title: 'ceiling', cell: (c) => c.name },
  { title: 'value', numeric: true, cell: (c) => `${c.value.toPrecision(4)} ${c.unit}` },
  { title: 'median time', numeric: true, cell: (c) => `${c.medianMs.toFixed(3)} ms` },
  { title: 'problem', cell: (c) => c.problem },
  { title: 'timing', cell: (c) => c.method },
];

export const BENCH_COLUMNS: TableColumn<BenchRow>[] = [
  { title: 'case', cell: (r) => r.name },
  { title: 'time', numeric: true, cell: (r) => `${r.ms.toFixed(4)} ms` },
  { title: 'GB/s', numeric: true, cell: (r) => num4(r.gbs) },
  { title: 'TFLOP/s', numeric: true, cell: (r) => num4(r.tflops) },
  { title: '% of ceiling', cell: (r) => (r.pct === undefined ? '' : `${r.pct.toFixed(1)}% of ${r.ceiling}`) },
  { title: 'note', cell: (r) => r.note ?? '' },
];

export const markdownHeader = <T>(cols: TableColumn<T>[]): string => `| ${cols.map((c) => c.title).join(' | ')} |\n|${cols.map(() => '---|').join('')}`;
export const markdownRow = <T>(cols: TableColumn<T>[], r: T): string => `| ${cols.map((c) => c.cell(r)).join(' | ')} |`;

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
