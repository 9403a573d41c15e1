// `deepwgsl bench --gemm`: DeepGEMM's shape lists (tests/generators.py) for the dense, contiguous and
// masked FP8 GEMMs, plus the bf16 kernels on the dense shapes. FLOPs and bytes are counted as
// upstream does (2*m*n*k over valid rows; every operand's bytes, masked rows scaled to the valid
// fraction). Each row is given as a percentage of its roofline: max(bytes/stream-read,
// flops/f32-FMA), both measured on this device.
import type { GpuContext } from '../gpu/context.ts';
import { envPositiveInts, envVar } from '../gpu/env.ts';
import { createTensor, DTYPE_BYTES, rowPitch, type DType, type Tensor } from '../gpu/tensor.ts';
import {
  autotuneGemm,
  contiguousProblem,
  denseProblem,
  getMkAlignmentForContiguousLayout,
  maskedProblem,
  planGemm,
  type GemmConfig,
  type GemmProblem,
} from '../kernels/gemm/gemm.ts';
import { Launch } from '../jit/launch.ts';
import { timeLaunch } from '../jit/timing.ts';
import type { BenchOptions, BenchRow, BenchSuite } from './suites.ts';
import { raiseClocks } from './ceilings.ts';

const DENSE_NK: [number, number][] = [[2112, 7168], [576, 7168], [24576, 1536], [32768, 512], [7168, 16384], [4096, 7168], [7168, 2048]];
const GROUPED_NK: [number, number][] = [[6144, 7168], [7168, 3072], [4096, 4096], [4096, 2048]];
const CONTIGUOUS: [number, number][] = [[4, 8192], [8, 4096]];
const MASKED: [number, number][] = [[32, 192], [6, 1024], [32, 20], [6, 20]];

/** A tensor filled with a repeated pseudo-random pattern (timing does not depend on the values). */
function filled(ctx: GpuContext, shape: number[], dtype: DType): Tensor {
  const t = createTensor(ctx, shape, dtype, 'bench');
  const chunk = new Uint32Array(1 << 20);
  let s = 0x9e3779b9;
  for (let i = 0; i < chunk.length; i++) {
    s = (s ^ (s << 13)) >>> 0;
    s = (s ^ (s >>> 17)) >>> 0;
    s = (s ^ (s << 5)) >>> 0;
    // e4m3: exponents <= 7 keep NaN codes out; f32 scales and 16-bit values: small positive floats.
    chunk[i] = dtype === 'e4m3' ? s & 0x3f3f3f3f : dtype === 'f32' ? 0x3c000000 | (s & 0x7fffff) : 0x3c003c00 | (s & 0x03ff03ff);
  }
  for (let off = 0; off < t.byteLength; off += chunk.byteLength) {
    ctx.device.queue.writeBuffer(t.buffer, off, chunk, 0, Math.min(chunk.length, (t.byteLength - off) / 4));
  }
  return t;
}

interface Made {
  p: GemmProblem;
  flops: number;
  bytes: number;
  tensors: Tensor[];
}

const kb = (k: number) => Math.ceil(k / 128);
const bytesOf = (rows: number, cols: number, dtype: DType) => rows * rowPitch(cols, dtype) * DTYPE_BYTES[dtype];

function fits(ctx: GpuContext, ...sizes: number[]): boolean {
  return sizes.every((s) => s <= Math.min(ctx.limits.maxStorageBufferBindingSize, ctx.limits.maxBufferSize));
}

/** `act` 'f32': FP8 weights with f32 activations (W8A32, what the decoder runs by default). */
function dense(ctx: GpuContext, m: number, n: number, k: number, out: DType, fp8: boolean, act: 'e4m3' | 'f32' = 'e4m3'): Made | string {
  const op: DType = fp8 ? 'e4m3' : 'bf16';
  if (!fits(ctx, bytesOf(n, k, op), bytesOf(m, n, out))) return 'over this device binding limit';
  const a = filled(ctx, [m, k], fp8 ? act : op);
  const b = filled(ctx, [n, k], op);
  const o = createTensor(ctx, [m, n], out);
  const sa = fp8 && act === 'e4m3' ? filled(ctx, [m, kb(k)], 'f32') : undefined;
  const sb = fp8 ? filled(ctx, [Math.ceil(n / 128), kb(k)], 'f32') : undefined;
  const p = denseProblem('bench', fp8, { a, sa, b, sb }, o);
  const tensors = [a, b, o, sa, sb].filter((t): t is Tensor => !!t);
  return { p, flops: 2 * m * n * k, bytes: tensors.reduce((s, t) => s + t.byteLength, 0), tensors };
}

async function contiguous(ctx: GpuContext, g: number, mPer: number, n: number, k: number): Promise<Made> {
  const align = getMkAlignmentForContiguousLayout();
  const rows = Math.ceil(mPer / align) * align;
  const m = g * rows;
  const idx = Int32Array.from({ length: m }, (_, i) => Math.floor(i / rows));
  const a = filled(ctx, [m, k], 'e4m3');
  const sa = filled(ctx, [m, kb(k)], 'f32');
  const b = filled(ctx, [g, n, k], 'e4m3');
  const sb = filled(ctx, [g, Math.ceil(n / 128), kb(k)], 'f32');
  const o = createTensor(ctx, [m, n], 'bf16');
  const p = await contiguousProblem(ctx, 'bench', true, { a, sa, b, sb }, o, idx, true);
  const tensors = [a, sa, b, sb, o, p.aux!];
  return { p, flops: 2 * m * n * k, bytes: [a, sa, b, sb, o].reduce((s, t) => s + t.byteLength, 0), tensors };
}

async function masked(ctx: GpuContext, g: number, expected: number, n: number, k: number): Promise<Made> {
  // Upstream draws maskedM from expected * U(0.7, 1.3); a fixed spread over the same range here.
  const maskedM = Int32Array.from({ length: g }, (_, i) => Math.floor(expected * (0.7 + (0.6 * i) / Math.max(1, g - 1))));
  const mMax = Math.ceil(Math.max(...maskedM) / 128) * 128;
  const a = filled(ctx, [g, mMax, k], 'e4m3');
  const sa = filled(ctx, [g, mMax, kb(k)], 'f32');
  const b = filled(ctx, [g, n, k], 'e4m3');
  const sb = filled(ctx, [g, Math.ceil(n / 128), kb(k)], 'f32');
  const o = createTensor(ctx, [g, mMax, n], 'bf16');
  const p = await maskedProblem(ctx, 'bench', true, { a, sa, b, sb }, o, maskedM, Math.round(expected * 1.2), true);
  const valid = maskedM.reduce((s, v) => s + v, 0);
  const frac = valid / (g * mMax);
  const bytes = (a.byteLength + sa.byteLength + o.byteLength) * frac + b.byteLength + sb.byteLength;
  return { p, flops: 2 * valid * n * k, bytes, tensors: [a, sa, b, sb, o, p.aux!] };
}

/**
 * Decode's masked experts: `active` of `g` groups hold `rows` rows each, f32 activations (W8A32).
 * Bytes: the active groups' weights and scales, their rows of A and out (the kernel reads nothing
 * of an empty group).
 */
async function decodeMasked(ctx: GpuContext, g: number, active: number, rows: number, n: number, k: number): Promise<Made> {
  const maskedM = Int32Array.from({ length: g }, (_, i) => (i % Math.floor(g / active) === 0 && i / Math.floor(g / active) < active ? rows : 0));
  const mMax = 16;
  const a = filled(ctx, [g, mMax, k], 'f32');
  const b = filled(ctx, [g, n, k], 'e4m3');
  const sb = filled(ctx, [g, Math.ceil(n / 128), kb(k)], 'f32');
  const o = createTensor(ctx, [g, mMax, n], 'f32');
  // As the decoder launches it: grid z over the active groups' ids only.
  const routed = Int32Array.from(Array.from(maskedM).flatMap((v, i) => (v > 0 ? [i] : [])));
  const p = await maskedProblem(ctx, 'bench', true, { a, b, sb }, o, maskedM, rows, true, routed);
  const frac = active / g;
  const bytes = (b.byteLength + sb.byteLength) * frac + active * rows * 4 * (k + n);
  return { p, flops: 2 * active * rows * n * k, bytes, tensors: [a, b, sb, o, p.aux!, p.routed!] };
}

/** The GEMMs of one V2-Lite-sized decode step (hidden 2048): projections, experts (6 of 64 active), lm_head. */
const V2_LITE_DENSE: [string, number, number][] = [['q_proj', 3072, 2048], ['kv_a', 576, 2048], ['o_proj', 2048, 2048], ['lm_head', 102400, 2048]];
const V2_LITE_EXPERTS: [string, number, number][] = [['experts gate/up', 2816, 2048], ['experts down', 2048, 1408]];

/** Weights the back-to-back timing rotates through: past the L2 (50 MB on an H100), as a decode step's are. */
const ROTATE_BYTES = 128 << 20;

/**
 * Decode-sized cases (the small-m kernel): the time per launch back to back in one pass, as a decode
 * step runs its kernels, over copies of B that together exceed the L2 (no launch finds its weights
 * cached). A launch alone in its pass also pays the pass's fixed cost (~7-10 us on the H100 through
 * wgpu), which a step pays once.
 */
async function backToBack(ctx: GpuContext, made: Made, launch: Launch, iters: number): Promise<{ ms: number; launches: number }> {
  const copies = Math.max(1, Math.min(16, Math.ceil(ROTATE_BYTES / made.bytes)));
  const launches = [launch];
  const extra: Tensor[] = [];
  for (let i = 1; i < copies; i++) {
    const b = filled(ctx, [...made.p.b.shape], made.p.b.dtype);
    const sb = made.p.sb && filled(ctx, [...made.p.sb.shape], 'f32');
    extra.push(b, ...(sb ? [sb] : []));
    launches.push(await planGemm(ctx, 'bench', { ...made.p, b, sb }, launch.info.config as GemmConfig));
  }
  const reps = Math.ceil(16 / copies);
  const all = new Launch(ctx, Array.from({ length: reps }, () => launches.flatMap((l) => l.dispatches)).flat(), launch.info);
  await raiseClocks(ctx);
  const t = await timeLaunch(ctx, all, { iters: Math.max(3, iters >> 2) });
  for (const x of extra) x.destroy();
  return { ms: t.medianMs / (reps * copies), launches: reps * copies };
}

async function measure(ctx: GpuContext, name: string, made: Made | string, opts: BenchOptions, emit: (r: BenchRow) => void): Promise<void> {
  if (typeof made === 'string') return emit({ suite: 'gemm', name, ms: NaN, note: `skipped: ${made}` });
  const bw = opts.ceilings.find((c) => c.name === 'stream-read')?.value ?? NaN;
  const fma = opts.ceilings.find((c) => c.name === 'fma-f32')?.value ?? NaN;
  // --tune: time every candidate on this case first (and remember the winner), else stored winner or heuristic.
  const tuned = opts.tune ? await autotuneGemm(ctx, made.p, { force: true, iters: Math.max(3, opts.iters >> 1) }) : undefined;
  const launch = await planGemm(ctx, 'bench', made.p, tuned?.best);
  await raiseClocks(ctx);
  const alone = await timeLaunch(ctx, launch, { iters: opts.iters });
  const b2b = launch.info.kernel === 'gemm.smallM' ? await backToBack(ctx, made, launch, opts.iters) : undefined;
  const t = { medianMs: b2b?.ms ?? alone.medianMs, method: alone.method };
  const s = t.medianMs / 1e3;
  const memMs = (made.bytes / (bw * 1e9)) * 1e3;
  const fmaMs = (made.flops / (fma * 1e12)) * 1e3;
  const memBound = memMs >= fmaMs;
  emit({
    suite: 'gemm',
    name,
    ms: t.medianMs,
    gbs: made.bytes / s / 1e9,
    tflops: made.flops / s / 1e12,
    pct: (100 * Math.max(memMs, fmaMs)) / t.medianMs,
    ceiling: memBound ? 'stream-read' : 'f32 FMA',
    note: `${b2b ? `back to back (${b2b.launches} in a pass; alone ${alone.medianMs.toFixed(4)} ms) ` : ''}${JSON.stringify(launch.info.config)}${tuned ? ` (tuned over ${tuned.results.length})` : ''}${t.method === 'cpu' ? ' (cpu timing)' : ''}`,
  });
  for (const x of made.tensors) x.destroy();
}

/** The slice of tfjs-core the baseline uses. */
interface Tfjs {
  setBackend(name: string): Promise<boolean>;
  ready(): Promise<void>;
  randomUniform(shape: number[]): { dispose(): void };
  matMul(a: unknown, b: unknown, transposeA: boolean, transposeB: boolean): { dispose(): void };
  time(f: () => void): Promise<{ kernelMs: number | { error: string }; wallMs: number }>;
}

/**
 * Baseline: tfjs-backend-webgpu's matMul on f32 operands of the same shapes. tfjs is not a dependency
 * of deepwgsl: DEEPWGSL_TFJS names an ES module bundle exporting `tf` (tfjs-core with the webgpu
 * backend registered; scripts/tfjs-entry.mjs), imported at run time. It runs on its own GPUDevice.
 */
async function loadTfjs(): Promise<Tfjs | undefined> {
  const path = envVar('DEEPWGSL_TFJS');
  if (!path) return undefined;
  const url = path.startsWith('/') ? `file://${path}` : path;
  const tf = ((await import(/* @vite-ignore */ url)) as { tf: Tfjs }).tf;
  if (!(await tf.setBackend('webgpu'))) throw new Error('DEEPWGSL_TFJS: the tfjs webgpu backend did not start');
  await tf.ready();
  return tf;
}

async function tfjsRow(tf: Tfjs, m: number, n: number, k: number, opts: BenchOptions, ours: number | undefined, emit: (r: BenchRow) => void): Promise<void> {
  const fma = opts.ceilings.find((c) => c.name === 'fma-f32')?.value ?? NaN;
  const bw = opts.ceilings.find((c) => c.name === 'stream-read')?.value ?? NaN;
  const a = tf.randomUniform([m, k]);
  const b = tf.randomUniform([n, k]);
  const samples: number[] = [];
  for (let i = 0; i < opts.iters + 2; i++) {
    const t = await tf.time(() => tf.matMul(a, b, false, true).dispose());
    if (typeof t.kernelMs !== 'number') throw new Error(`tfjs timing: ${t.kernelMs.error}`);
    if (i >= 2) samples.push(t.kernelMs);
  }
  a.dispose();
  b.dispose();
  const ms = samples.sort((x, y) => x - y)[samples.length >> 1];
  const flops = 2 * m * n * k;
  const bytes = 4 * (m * k + n * k + m * n);
  const floor = Math.max(bytes / (bw * 1e9), flops / (fma * 1e12)) * 1e3;
  emit({
    suite: 'gemm',
    name: `tfjs matMul f32 m=${m} n=${n} k=${k}`,
    ms,
    gbs: bytes / (ms / 1e3) / 1e9,
    tflops: flops / (ms / 1e3) / 1e12,
    pct: (100 * floor) / ms,
    ceiling: bytes / (bw * 1e9) >= flops / (fma * 1e12) ? 'stream-read' : 'f32 FMA',
    note: `tfjs kernelMs${ours ? `; deepwgsl fp8 is ${(ms / ours).toFixed(1)}x faster` : ''}`,
  });
}

async function run(ctx: GpuContext, opts: BenchOptions, emit: (r: BenchRow) => void): Promise<void> {
  const soft = ctx.isSoftware;
  // DEEPWGSL_GEMM_M=1,4: only the dense, lm_head and V2-Lite rows, at these m (a decode-sized pass).
  const onlyM = envPositiveInts('DEEPWGSL_GEMM_M', 'bench --gemm');
  const ms = onlyM ?? (soft ? [1, 128] : opts.quick ? [1, 4, 128] : [1, 4, 128, 4096]);
  const nk = soft ? [[256, 512] as [number, number]] : opts.quick ? DENSE_NK.slice(0, 2) : DENSE_NK;
  const ours = new Map<string, number>();
  const keep = (r: BenchRow) => {
    ours.set(r.name.replace(/^fp8 dense (.*) bf16$/, '$1'), r.ms);
    emit(r);
  };
  for (const m of ms) {
    for (const [n, k] of nk) await measure(ctx, `fp8 dense m=${m} n=${n} k=${k} bf16`, dense(ctx, m, n, k, 'bf16', true), opts, keep);
  }
  if (!soft) {
    for (const m of opts.quick && !onlyM ? [1] : ms) await measure(ctx, `fp8 lm_head m=${m} n=129280 k=7168 f32`, dense(ctx, m, 129280, 7168, 'f32', true), opts, emit);
  }
  for (const m of ms) {
    for (const [n, k] of nk) await measure(ctx, `bf16 dense m=${m} n=${n} k=${k} bf16`, dense(ctx, m, n, k, 'bf16', false), opts, emit);
  }
  const tf = await loadTfjs();
  if (tf) {
    for (const m of ms) {
      for (const [n, k] of nk) await tfjsRow(tf, m, n, k, opts, ours.get(`m=${m} n=${n} k=${k}`), emit);
    }
  }
  // V2-Lite decode (W8A32 as the decoder runs it): m = 1 and 4 tokens; the experts masked, 6 of 64 groups active.
  if (!soft) {
    for (const m of (onlyM ?? [1, 4]).filter((m) => m <= 16)) {
      for (const [what, n, k] of V2_LITE_DENSE) await measure(ctx, `v2-lite ${what} w8a32 m=${m} n=${n} k=${k} f32`, dense(ctx, m, n, k, 'f32', true, 'f32'), opts, emit);
      for (const [what, n, k] of V2_LITE_EXPERTS) await measure(ctx, `v2-lite ${what} w8a32 masked 6/64 routed m=${m} n=${n} k=${k}`, await decodeMasked(ctx, 64, 6, m, n, k), opts, emit);
    }
  }
  if (onlyM) return;
  const gnk = soft ? [[256, 256] as [number, number]] : opts.quick ? GROUPED_NK.slice(0, 1) : GROUPED_NK;
  for (const [g, mPer] of soft ? [[2, 128] as [number, number]] : opts.quick ? CONTIGUOUS.slice(1) : CONTIGUOUS) {
    for (const [n, k] of gnk) await measure(ctx, `fp8 contiguous g=${g} m/g=${mPer} n=${n} k=${k}`, await contiguous(ctx, g, mPer, n, k), opts, emit);
  }
  for (const [g, m] of soft ? [[2, 20] as [number, number]] : opts.quick ? MASKED.slice(2, 3) : MASKED) {
    for (const [n, k] of gnk) await measure(ctx, `fp8 masked g=${g} m=${m} n=${n} k=${k}`, await masked(ctx, g, m, n, k), opts, emit);
  }
}

export const gemmSuite: BenchSuite = { flag: 'gemm', describe: 'FP8 and bf16 GEMMs (DeepGEMM shapes): dense, lm_head, contiguous, masked', run };
