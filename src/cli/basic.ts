// device, bench, cast, demo.
import { BENCH_COLUMNS, CEILING_COLUMNS, SUITES, markdownHeader, markdownRow, runBench } from '../bench/suites.ts';
import type { GpuContext } from '../gpu/context.ts';
import { readTensor, readTensorBits, uploadTensor } from '../gpu/tensor.ts';
import { perTokenCastToFp8 } from '../formats/casts.ts';
import { autotuneCast, planCast } from '../kernels/cast/cast.ts';
import { MAX_TIMED_ITERS, timeLaunch } from '../jit/timing.ts';
import { Profiler } from '../jit/profiler.ts';
import { defaultTuningStore } from '../jit/tuning-cache.ts';
import { checkBuffers, int, out, refuseExisting, writeOutput, type Command, type Values } from './command.ts';

async function bench(gpu: () => Promise<GpuContext>, values: Values): Promise<void> {
  const suites = SUITES.filter((s) => values[s.flag] === true);
  if (!values.ceilings && suites.length === 0) {
    throw new Error(`deepwgsl bench: pick at least one of --ceilings${SUITES.map((s) => ` --${s.flag}`).join('')}`);
  }
  const iters = int(values, 'iters', 1, MAX_TIMED_ITERS);
  const trace = typeof values.trace === 'string' ? values.trace : undefined;
  if (values.force && !trace) throw new Error('--force: only with --trace FILE (the file it may replace)');
  if (trace) await refuseExisting(trace, 'trace', values.force === true);
  const ctx = await gpu();
  const text = !values.json;
  // --trace: every sample timeLaunch takes (ceilings, suites, autotune) becomes a trace event.
  const profiler = trace ? new Profiler(ctx) : undefined;
  const report = await runBench(ctx, {
    quick: values.quick === true,
    iters,
    tune: values.tune === true,
    suites,
    profiler,
    onCeilings: (cs) => text && out([markdownHeader(CEILING_COLUMNS), ...cs.map((c) => markdownRow(CEILING_COLUMNS, c))].join('\n')),
    onSuite: (s) => text && out(`\n## ${s.describe}\n\n${markdownHeader(BENCH_COLUMNS)}`),
    onRow: (r) => text && out(markdownRow(BENCH_COLUMNS, r)),
  });
  if (values.json) out(JSON.stringify(report, null, 1));
  if (profiler) {
    await writeOutput(trace!, JSON.stringify(profiler.toChromeTrace()), 'trace', values.force === true);
    console.error(`deepwgsl bench: wrote ${profiler.events.length} events to ${trace} (${profiler.method} timing; open in ui.perfetto.dev)`);
  }
}

async function cast(gpu: () => Promise<GpuContext>, values: Values): Promise<void> {
  const [m, k] = [int(values, 'm'), int(values, 'k')];
  const iters = int(values, 'iters', 1, MAX_TIMED_ITERS);
  const tune = values.autotune === true;
  const ctx = await gpu();
  // The f32 input is the largest buffer: refused before 4 * m * k bytes of random values are made.
  checkBuffers(ctx, `--m ${m} --k ${k}`, { 'the f32 input [m, k]': 4 * m * k });
  const xs = Float32Array.from({ length: m * k }, () => (Math.random() - 0.5) * 10 ** (Math.random() * 6 - 3));
  const x = uploadTensor(ctx, xs, [m, k], 'f32');
  let config;
  if (tune) {
    const r = await autotuneCast(ctx, 'perToken', x, { force: true, iters });
    for (const c of r.results) out(`  ${JSON.stringify(c.config)}: ${c.medianMs.toFixed(4)} ms`);
    out(`autotune (${r.method}) picked ${JSON.stringify(r.best)}; saved to ${defaultTuningStore().where}`);
    config = r.best;
  }
  const planned = await planCast(ctx, 'perToken', x, { config });
  const t = await timeLaunch(ctx, planned.launch, { iters });
  const ref = perTokenCastToFp8(xs, m, k);
  const q = await readTensorBits(planned.q);
  const s = await readTensor(planned.scales);
  let bad = 0;
  for (let i = 0; i < q.length; i++) if (q[i] !== ref.q[i]) bad++;
  for (let i = 0; i < s.length; i++) if (s[i] !== ref.scales[i]) bad++;
  const gbs = planned.launch.info.bytes / (t.medianMs / 1e3) / 1e9;
  out(`perTokenCastToFp8Gpu [${m}, ${k}] ${JSON.stringify(planned.launch.info.config)}: ${t.medianMs.toFixed(4)} ms, ${gbs.toPrecision(4)} GB/s (${t.method}); ${bad === 0 ? 'bit-identical to the CPU cast' : `${bad} MISMATCHES against the CPU cast`}`);
  if (bad) throw new Error('GPU cast disagrees with the CPU reference');
}

const common = {
  quick: { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
  iters: { type: 'string', default: '20' },
} as const;

export const basicCommands: Command[] = [
  {
    name: 'device',
    usage: ['deepwgsl device                               adapter, features and limits in use'],
    options: {},
    // The adapter's one-line description is createContext's line on stderr.
    async run(_v, gpu) {
      const ctx = await gpu();
      out(`adapter: ${JSON.stringify(ctx.adapterInfo)}`);
      out(`features: ${JSON.stringify([...ctx.features].sort())}`);
      out(`limits: ${JSON.stringify(ctx.limits)}`);
    },
  },
  {
    name: 'bench',
    usage: [
      'deepwgsl bench --ceilings [--quick] [--json]  measure streaming read GB/s, f32/f16 FMA TFLOP/s and µs per dependent dispatch',
      `deepwgsl bench --<suite> [--quick] [--json] [--tune]  kernel suites, each beside the measured ceilings (--tune: re-time configs)`,
      '          [--iters N] [--trace FILE [--force]]  samples per timing; a Chrome trace of every sample (an existing FILE only with --force)',
    ],
    get options() {
      return {
        ...common,
        ceilings: { type: 'boolean', default: false } as const,
        trace: { type: 'string' } as const,
        force: { type: 'boolean', default: false } as const,
        tune: { type: 'boolean', default: false } as const,
        ...Object.fromEntries(SUITES.map((s) => [s.flag, { type: 'boolean', default: false } as const])),
      };
    },
    run: (values, gpu) => bench(gpu, values),
  },
  {
    name: 'cast',
    usage: ['deepwgsl cast [--m M] [--k K] [--iters N] [--autotune]  FP8 1x128 cast on the GPU: check against the CPU, time it'],
    options: { iters: common.iters, m: { type: 'string', default: '4096' }, k: { type: 'string', default: '7168' }, autotune: { type: 'boolean', default: false } },
    run: (v, gpu) => cast(gpu, v),
  },
];
