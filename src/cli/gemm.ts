// deepwgsl gemm: one FP8 GEMM shape, autotuned or with the heuristic config, timed on this device.
import type { GpuContext } from '../gpu/context.ts';
import { createTensor, uploadTensor } from '../gpu/tensor.ts';
import { raiseClocks } from '../bench/ceilings.ts';
import { autotuneGemm, denseProblem, planGemm } from '../kernels/gemm/gemm.ts';
import { MAX_TIMED_ITERS, timeLaunch } from '../jit/timing.ts';
import { defaultTuningStore } from '../jit/tuning-cache.ts';
import { checkBuffers, choice, int, out, type Command, type Values } from './command.ts';

async function gemm(gpu: () => Promise<GpuContext>, v: Values): Promise<void> {
  const [m, n, k] = ['m', 'n', 'k'].map((x) => int(v, x));
  const iters = int(v, 'iters', 1, MAX_TIMED_ITERS);
  // --a f32: W8A32, the decoder's default (f32 activations read as they are, no A scales).
  const a32 = choice(v, 'a', ['e4m3', 'f32']) === 'f32';
  const ctx = await gpu();
  checkBuffers(ctx, `--m ${m} --n ${n} --k ${k}`, { 'A [m, k]': (a32 ? 4 : 1) * m * k, 'B [n, k]': n * k, 'the output [m, n]': (a32 ? 4 : 2) * m * n });
  const bytes = (len: number) => Uint8Array.from({ length: len }, () => (Math.random() * 0x7e) | ((Math.random() < 0.5 ? 0 : 0x80)));
  const scales = (len: number) => Float32Array.from({ length: len }, () => 10 ** (Math.random() * 2 - 1));
  const kb = Math.ceil(k / 128);
  const p = denseProblem(
    'gemm',
    true,
    {
      a: a32 ? uploadTensor(ctx, Float32Array.from({ length: m * k }, () => Math.random() - 0.5), [m, k], 'f32') : uploadTensor(ctx, bytes(m * k), [m, k], 'e4m3'),
      ...(!a32 && { sa: uploadTensor(ctx, scales(m * kb), [m, kb], 'f32') }),
      b: uploadTensor(ctx, bytes(n * k), [n, k], 'e4m3'),
      sb: uploadTensor(ctx, scales(Math.ceil(n / 128) * kb), [Math.ceil(n / 128), kb], 'f32'),
    },
    createTensor(ctx, [m, n], a32 ? 'f32' : 'bf16'),
  );
  let config;
  if (v.autotune) {
    const r = await autotuneGemm(ctx, p, { force: true, iters });
    for (const c of [...r.results].sort((x, y) => x.medianMs - y.medianMs).slice(0, 8)) out(`  ${JSON.stringify(c.config)}: ${c.medianMs.toFixed(4)} ms`);
    out(`autotune (${r.method}, ${r.results.length} configs) picked ${JSON.stringify(r.best)}; saved to ${defaultTuningStore().where}`);
    config = r.best;
  }
  const launch = await planGemm(ctx, 'gemm', p, config);
  await raiseClocks(ctx);
  const t = await timeLaunch(ctx, launch, { iters });
  const s = t.medianMs / 1e3;
  out(`fp8GemmNT${a32 ? ' (W8A32)' : ''} m=${m} n=${n} k=${k} ${JSON.stringify(launch.info.config)}: ${t.medianMs.toFixed(4)} ms, ${(launch.info.bytes / s / 1e9).toPrecision(4)} GB/s, ${(launch.info.flops / s / 1e12).toPrecision(4)} TFLOP/s (${t.method})`);
}

export const gemmCommands: Command[] = [
  {
    name: 'gemm',
    usage: ['deepwgsl gemm [--m M] [--n N] [--k K] [--a e4m3|f32] [--autotune]  one FP8 GEMM (bf16 out; f32 with --a f32): time it, or autotune its configs'],
    options: {
      m: { type: 'string', default: '128' },
      n: { type: 'string', default: '4096' },
      k: { type: 'string', default: '7168' },
      a: { type: 'string', default: 'e4m3' },
      autotune: { type: 'boolean', default: false },
      iters: { type: 'string', default: '20' },
    },
    run: (v, gpu) => gemm(gpu, v),
  },
];
