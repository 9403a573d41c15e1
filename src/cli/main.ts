// deepwgsl command line. The same bundle runs under Node (`npx deepwgsl`) and Deno (`deno run -A dist/cli.js`).
import { parseArgs } from 'node:util';
import { measureCeilings, type Ceiling, type CeilingSize } from '../bench/ceilings.ts';
import { createContext, type GpuContext } from '../gpu/context.ts';
import { readTensor, readTensorBits, uploadTensor } from '../gpu/tensor.ts';
import { perTokenCastToFp8 } from '../formats/casts.ts';
import { autotuneCast, planCast } from '../kernels/cast/cast.ts';
import { timeLaunch } from '../jit/timing.ts';
import { defaultTuningStore } from '../jit/tuning-cache.ts';

const USAGE = `deepwgsl: DeepSeek's inference kernels on WebGPU

usage:
  deepwgsl device                               adapter, features and limits in use
  deepwgsl bench --ceilings [--quick] [--json]  measure streaming read GB/s and f32/f16 FMA TFLOP/s
  deepwgsl cast [--m M] [--k K] [--autotune]    FP8 1x128 cast on the GPU: check against the CPU, time it
  deepwgsl demo                                 the main job on this build (device, ceilings, a tuned cast)

environment: DEEPWGSL_JIT_DEBUG=1 prints generated WGSL; DEEPWGSL_PRINT_CONFIGS=1 prints autotune winners;
DEEPWGSL_JIT_CACHE_DIR sets where tuned configs are kept (default ~/.cache/deepwgsl).`;

function out(line = ''): void {
  console.log(line);
}

function ceilingTable(rows: Ceiling[]): string {
  const lines = ['| ceiling | value | median time | problem | timing |', '|---|---|---|---|---|'];
  for (const c of rows) {
    lines.push(`| ${c.name} | ${c.value.toPrecision(4)} ${c.unit} | ${c.medianMs.toFixed(3)} ms | ${c.problem} | ${c.method} |`);
  }
  return lines.join('\n');
}

async function device(ctx: GpuContext): Promise<void> {
  out(ctx.describe());
  out(`adapter: ${JSON.stringify(ctx.adapterInfo)}`);
  out(`limits: ${JSON.stringify(ctx.limits)}`);
}

async function bench(ctx: GpuContext, args: { quick: boolean; json: boolean; iters: number }): Promise<void> {
  const size: CeilingSize = args.quick ? 'quick' : 'full';
  const rows = await measureCeilings(ctx, size, args.iters);
  if (args.json) out(JSON.stringify({ device: ctx.describe(), adapter: ctx.adapterInfo, date: new Date().toISOString(), ceilings: rows }, null, 1));
  else out(ceilingTable(rows));
}

async function cast(ctx: GpuContext, m: number, k: number, tune: boolean, iters: number): Promise<void> {
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

export async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ceilings: { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      iters: { type: 'string', default: '20' },
      m: { type: 'string', default: '4096' },
      k: { type: 'string', default: '7168' },
      autotune: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const cmd = positionals[0];
  if (values.help || !cmd) return out(USAGE);
  if (!['device', 'bench', 'cast', 'demo'].includes(cmd)) throw new Error(`unknown command '${cmd}'\n\n${USAGE}`);
  if (cmd === 'bench' && !values.ceilings) throw new Error("deepwgsl bench: only --ceilings exists in this build (kernel suites come with their kernels)");
  const ctx = await createContext();
  const iters = Number(values.iters);
  try {
    if (cmd === 'device') await device(ctx);
    if (cmd === 'bench') await bench(ctx, { quick: values.quick, json: values.json, iters });
    if (cmd === 'cast') await cast(ctx, Number(values.m), Number(values.k), values.autotune, iters);
    if (cmd === 'demo') {
      // A software adapter is ~1000x slower: smaller problems and fewer runs keep the demo to seconds.
      const soft = ctx.isSoftware;
      out(`device ceilings (quick${soft ? ', software adapter' : ''}):`);
      await bench(ctx, { quick: true, json: false, iters: soft ? 3 : 20 });
      await cast(ctx, soft ? 64 : 4096, Number(values.k), true, soft ? 3 : 20);
    }
  } finally {
    ctx.destroy();
  }
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (e) => {
    console.error(`deepwgsl: ${(e as Error).message}`);
    process.exit(1);
  },
);
