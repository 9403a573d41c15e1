// The GPU conformance list: every driver (Node/Dawn, Deno/wgpu, Chromium) runs exactly these.
// A check returns its error and tolerance; errors are max|out-ref|/max|ref| or mismatch counts.
import type { GpuContext } from '../../src/gpu/context.ts';
import { envVar } from '../../src/gpu/env.ts';
import { GpuError } from '../../src/gpu/errors.ts';
import { DTYPES, Tensor, createTensor, poisonTensor, readTensor, readTensorBits, uploadTensor, type DType } from '../../src/gpu/tensor.ts';
import { decodeE4M3, encodeE4M3, encodeE5M2, f32ToBits, bitsToF32 } from '../../src/formats/fp8.ts';
import { encodeBF16, encodeF16 } from '../../src/formats/half.ts';
import { perBlockCastToFp8, perTokenCastToFp8 } from '../../src/formats/casts.ts';
import { autotuneCast, castCandidates, planCast, type CastKind } from '../../src/kernels/cast/cast.ts';
import { MemoryTuningStore } from '../../src/jit/tuning-cache.ts';
import { WgslCompileError } from '../../src/jit/pipeline-cache.ts';
import { bindGroup, Launch } from '../../src/jit/launch.ts';
import { CEILING_KERNELS, runCeilingCheck } from '../../src/bench/ceilings.ts';
import fp8Wgsl from '../../shaders/common/fp8.wgsl';
import divRnWgsl from '../../shaders/common/div_rn.wgsl';
import probeWgsl from './fp8_probe.wgsl';
import { randomSpread } from './random.ts';
import { gemmChecks } from './gemm.ts';
import { mlaChecks } from './mla.ts';
import { profilerChecks } from './profiler.ts';

import { mismatches, rand, throwsLike, type Check, type CheckResult } from './check.ts';
import { moeChecks } from './moe.ts';
import { nnChecks } from './nn.ts';
import { modelChecks } from './model.ts';

export { seed, type Check, type CheckResult } from './check.ts';

async function probe(ctx: GpuContext, op: number, input: Uint32Array, outLen: number): Promise<Uint32Array> {
  const pipeline = await ctx.pipelines.get({
    kernel: 'test.fp8_probe',
    config: { op },
    template: { file: 'tests/conformance/fp8_probe.wgsl', code: probeWgsl },
    helpers: [
      { file: 'common/fp8.wgsl', code: fp8Wgsl },
      { file: 'common/div_rn.wgsl', code: divRnWgsl },
    ],
    consts: { OP: op },
  });
  const inp = uploadTensor(ctx, input, [input.length], 'u32');
  const out = createTensor(ctx, [outLen], 'u32');
  poisonTensor(out);
  const bg = bindGroup(ctx, pipeline, [inp.binding('probe', 'in'), out.binding('probe', 'out')]);
  await new Launch(ctx, [{ pipeline, bindGroup: bg, workgroups: [Math.ceil(outLen / 64), 1, 1] }], { kernel: 'probe', config: {}, bytes: 0, flops: 0 }).run();
  const r = (await readTensorBits(out)) as Uint32Array;
  inp.destroy();
  out.destroy();
  return r;
}

/** f32 bit patterns that stress e4m3 rounding: every code's value, the midpoints (ties), their neighbours. */
function e4m3EdgeBits(): Uint32Array {
  const vals: number[] = [];
  const pos = Array.from({ length: 127 }, (_, c) => decodeE4M3(c)).filter((v) => !Number.isNaN(v));
  for (let i = 0; i < pos.length; i++) {
    const next = i + 1 < pos.length ? pos[i + 1] : 480;
    const mid = Math.fround((pos[i] + next) / 2);
    for (const v of [pos[i], mid]) {
      const b = f32ToBits(v);
      vals.push(b, b + 1, Math.max(0, b - 1));
    }
  }
  for (const v of [464, 479.99, 480, 1e6, Infinity, NaN, 2 ** -10, 2 ** -11, 1e-40, 3 * 2 ** -11]) vals.push(f32ToBits(v));
  for (let i = 0; i < 4096; i++) vals.push((rand() * 2 ** 32) >>> 0 & 0x7fffffff);
  return Uint32Array.from([...vals, ...vals.map((b) => (b | 0x80000000) >>> 0)]);
}

function castShapes(kind: CastKind): [number, number][] {
  return kind === 'perToken'
    ? [[1, 128], [5, 200], [3, 7], [17, 384], [2, 1], [3, 260], [2, 144]]
    : [[130, 260], [128, 128], [1, 5], [257, 131]];
}

async function castCheck(ctx: GpuContext, kind: CastKind, inDtype: 'f32' | 'bf16'): Promise<CheckResult> {
  let bad = 0;
  const notes: string[] = [];
  for (const [rows, k] of castShapes(kind)) {
    const raw = randomSpread(rand, rows * k, -3, 3);
    // The CPU reference sees exactly what the GPU sees: bf16 inputs are rounded first.
    const xs = inDtype === 'bf16' ? raw.map((v) => bitsToF32(encodeBF16(v) << 16)) : raw;
    const ref = kind === 'perToken' ? perTokenCastToFp8(xs, rows, k) : perBlockCastToFp8(xs, rows, k);
    const x = uploadTensor(ctx, xs, [rows, k], inDtype);
    for (const config of castCandidates(ctx, kind, { dtype: inDtype, k })) {
      const planned = await planCast(ctx, kind, x, { config });
      poisonTensor(planned.q);
      poisonTensor(planned.scales);
      await planned.launch.run();
      const q = await readTensorBits(planned.q);
      const s = await readTensor(planned.scales);
      const m = mismatches(q, ref.q) + mismatches(Array.from(s, f32ToBits), Array.from(ref.scales, f32ToBits));
      if (m) notes.push(`[${rows},${k}] ${JSON.stringify(config)}: ${m} mismatches`);
      bad += m;
      planned.q.destroy();
      planned.scales.destroy();
    }
    x.destroy();
  }
  const configs = castShapes(kind).map(([, k]) => castCandidates(ctx, kind, { dtype: inDtype, k }).length);
  return { err: bad, tol: 0, note: notes.slice(0, 3).join('; ') || `bit-identical over ${configs.join('/')} configs per shape` };
}

const roundTrip = (dtype: DType): Check => ({
  name: `tensor upload/download ${dtype} (odd row length)`,
  async run(ctx) {
    const shape = [3, 5];
    const n = 15;
    const vals =
      dtype === 'i32' ? Array.from({ length: n }, () => Math.floor((rand() - 0.5) * 2 ** 31)) :
      dtype === 'u32' ? Array.from({ length: n }, () => Math.floor(rand() * 2 ** 32)) :
      Array.from(randomSpread(rand, n, -2, 2));
    const t = uploadTensor(ctx, vals, shape, dtype);
    const back = await readTensor(t);
    // The expected value is the host encoding of each input.
    const enc: Partial<Record<DType, (x: number) => number>> = { f16: encodeF16, bf16: encodeBF16, e4m3: encodeE4M3, e5m2: encodeE5M2 };
    const bits = await readTensorBits(t);
    let err = 0;
    if (enc[dtype]) err = mismatches(bits, vals.map(enc[dtype]!));
    else if (dtype === 'f32') err = mismatches(back, Float32Array.from(vals));
    else err = mismatches(back, vals);
    t.destroy();
    return { err, tol: 0 };
  },
});

const coreChecks: Check[] = [
  {
    name: 'context: adapter limits requested in full',
    async run(ctx) {
      const a = ctx.adapter.limits;
      const bad = (['maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupStorageSize'] as const).filter(
        (k) => ctx.limits[k] !== a[k],
      );
      return { err: bad.length, tol: 0, note: bad.join(', ') || `binding ${ctx.limits.maxStorageBufferBindingSize} B` };
    },
  },
  ...DTYPES.map(roundTrip),
  {
    name: 'tensor: bad shapes, dtypes and binding sizes are refused with the expected and received value',
    async run(ctx) {
      let err = 0;
      err += await throwsLike(() => createTensor(ctx, [2, -1], 'f32'), /shape must be .*got \[2, -1\]/);
      err += await throwsLike(() => createTensor(ctx, [2], 'f64' as DType), /dtype must be one of .*got 'f64'/);
      err += await throwsLike(() => uploadTensor(ctx, [1, 2, 3], [2, 2], 'f32'), /data length must be 4 .*got 3/);
      const huge = new Tensor(ctx, createTensor(ctx, [1], 'f32').buffer, [ctx.limits.maxStorageBufferBindingSize / 4 + 1], 'f32');
      err += await throwsLike(() => huge.binding('test', 'x'), /x .* over this device's maxStorageBufferBindingSize/);
      err += await throwsLike(() => createTensor(ctx, [ctx.limits.maxBufferSize + 4], 'u32'), /over this device's maxBufferSize/);
      const x = uploadTensor(ctx, [1, 2, 3, 4], [2, 2], 'f16');
      err += await throwsLike(() => planCast(ctx, 'perToken', x), /x.dtype must be 'f32' or 'bf16', got 'f16'/);
      return { err, tol: 0 };
    },
  },
  {
    name: 'fp8 WGSL: e4m3 encode bit-identical to the CPU (ties, subnormals, overflow, random)',
    async run(ctx) {
      const bits = e4m3EdgeBits();
      const gpu = await probe(ctx, 0, bits, bits.length);
      return { err: mismatches(gpu, Array.from(bits, (b) => encodeE4M3(bitsToF32(b)))), tol: 0, note: `${bits.length} values` };
    },
  },
  {
    name: 'fp8 WGSL: e4m3 decode of all 256 codes',
    async run(ctx) {
      const codes = Uint32Array.from({ length: 256 }, (_, i) => i);
      const gpu = await probe(ctx, 1, codes, 256);
      const ref = Array.from(codes, (c) => decodeE4M3(c));
      let err = 0;
      gpu.forEach((b, i) => {
        const v = bitsToF32(b);
        if (!(Number.isNaN(ref[i]) ? Number.isNaN(v) : v === ref[i] && Object.is(v, ref[i]))) err++;
      });
      return { err, tol: 0 };
    },
  },
  {
    name: 'div_rn WGSL: correctly rounded f32 division (the casts rely on it)',
    async run(ctx) {
      const n = 4096;
      const pairs = new Uint32Array(2 * n);
      for (let i = 0; i < n; i++) {
        const a = i % 2 ? 448 : Math.fround(1e-4 + rand() * 10 ** (rand() * 8 - 4));
        const b = i % 2 ? Math.fround(1e-4 + rand() * 10 ** (rand() * 8 - 4)) : 448;
        pairs[2 * i] = f32ToBits(a);
        pairs[2 * i + 1] = f32ToBits(b);
      }
      const gpu = await probe(ctx, 2, pairs, n);
      const ref = Array.from({ length: n }, (_, i) => f32ToBits(Math.fround(bitsToF32(pairs[2 * i]) / bitsToF32(pairs[2 * i + 1]))));
      return { err: mismatches(gpu, ref), tol: 0 };
    },
  },
  { name: 'cast.perToken f32 -> e4m3 + 1x128 scales, every config, bit-identical', run: (ctx) => castCheck(ctx, 'perToken', 'f32') },
  { name: 'cast.perToken bf16 -> e4m3, every config, bit-identical', run: (ctx) => castCheck(ctx, 'perToken', 'bf16') },
  { name: 'cast.perBlock f32 -> e4m3 + 128x128 scales, every config, bit-identical', run: (ctx) => castCheck(ctx, 'perBlock', 'f32') },
  {
    name: 'cast: a 16-byte config the input cannot take is refused, naming the option',
    async run(ctx) {
      const f32 = uploadTensor(ctx, randomSpread(rand, 2 * 200), [2, 200], 'f32');
      const bf16 = uploadTensor(ctx, randomSpread(rand, 2 * 128), [2, 128], 'bf16');
      try {
        let err = await throwsLike(() => planCast(ctx, 'perToken', bf16, { config: { wg: 64, subgroups: false, lanes: 8, vecIn: true } }), /config.vecIn must be false unless the cast is perToken of f32 x with k a multiple of 4, got 'true \(perToken, x bf16, k = 128\)'/);
        err += await throwsLike(() => planCast(ctx, 'perToken', f32, { config: { wg: 64, subgroups: false, lanes: 8, vecOut: true } }), /config.vecOut must be false unless .* k a multiple of 16, got 'true \(perToken, lanes 8, k = 200\)'/);
        err += await throwsLike(() => planCast(ctx, 'perBlock', f32, { config: { wg: 64, subgroups: false, vecIn: true } }), /config.vecIn must be false unless the cast is perToken/);
        return { err, tol: 0 };
      } finally {
        f32.destroy();
        bf16.destroy();
      }
    },
  },
  {
    name: 'cast.perToken subgroup-shuffle reduction path',
    needs: ['subgroups'],
    async run(ctx) {
      const r = await castCheck(ctx, 'perToken', 'f32');
      return { ...r, note: `subgroupMinSize ${ctx.adapterInfo.subgroupMinSize}; ${r.note}` };
    },
  },
  {
    name: 'jit: pipeline cache keyed by (kernel, config, features)',
    async run(ctx) {
      const x = uploadTensor(ctx, randomSpread(rand, 256), [2, 128], 'f32');
      const [c1, c2] = castCandidates(ctx, 'perToken');
      const a = (await planCast(ctx, 'perToken', x, { config: c1 })).launch.dispatches[0].pipeline;
      const b = (await planCast(ctx, 'perToken', x, { config: c1 })).launch.dispatches[0].pipeline;
      const c = (await planCast(ctx, 'perToken', x, { config: c2 })).launch.dispatches[0].pipeline;
      return { err: (a === b ? 0 : 1) + (a !== c ? 0 : 1), tol: 0 };
    },
  },
  {
    name: 'jit: compile errors name the .wgsl file and line',
    async run(ctx) {
      try {
        await ctx.pipelines.get({
          kernel: 'test.broken',
          config: {},
          template: { file: 'test/broken.wgsl', code: '@compute @workgroup_size(1)\nfn main() {\n  let x: u32 = undefined_thing;\n}' },
          consts: { WG: 1 },
        });
      } catch (e) {
        const ok = e instanceof WgslCompileError && /test\/broken\.wgsl:3/.test(e.message) && />>\s*\d+ \|\s+let x/.test(e.message);
        return { err: ok ? 0 : 1, tol: 0, note: ok ? undefined : (e as Error).message.slice(0, 300) };
      }
      return { err: 1, tol: 0, note: 'no error thrown' };
    },
  },
  {
    name: 'jit: autotune times >= 2 cast configs and caches the winner',
    async run(ctx) {
      const store = new MemoryTuningStore();
      const x = uploadTensor(ctx, randomSpread(rand, 64 * 512), [64, 512], 'f32');
      const first = await autotuneCast(ctx, 'perToken', x, { store, iters: 3 });
      const second = await autotuneCast(ctx, 'perToken', x, { store });
      const err = (first.results.length >= 2 ? 0 : 1) + (second.fromCache ? 0 : 1) + (JSON.stringify(second.best) === JSON.stringify(first.best) ? 0 : 1);
      return { err, tol: 0, note: `${first.method}: ${first.results.map((r) => `${JSON.stringify(r.config)} ${r.medianMs.toFixed(3)}ms`).join(', ')}` };
    },
  },
  {
    name: 'errors: a WebGPU validation error surfaces as a thrown GpuError',
    async run(ctx) {
      const buf = ctx.device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM });
      const pipeline = (await planCast(ctx, 'perToken', uploadTensor(ctx, [1, 2, 3, 4], [1, 4], 'f32'))).launch.dispatches[0].pipeline;
      try {
        bindGroup(ctx, pipeline, [buf, buf, buf, buf]);
        await ctx.sync();
      } catch (e) {
        return { err: e instanceof GpuError ? 0 : 1, tol: 0, note: (e as Error).message.split('\n')[0].slice(0, 120) };
      }
      return { err: 1, tol: 0, note: 'no error surfaced' };
    },
  },
  ...CEILING_KERNELS.map(
    (k): Check => ({ name: `bench kernel ${k.name} computes what it claims`, needs: k.needs, run: (ctx) => runCeilingCheck(ctx, k) }),
  ),
];

// Each kernel family keeps its checks in a file beside this one and adds them here.
const allChecks: Check[] = [...coreChecks, ...profilerChecks, ...gemmChecks, ...moeChecks, ...mlaChecks, ...nnChecks, ...modelChecks];

// DEEPWGSL_CHECKS=mla,gemm runs only the checks whose names contain one of those words (while developing).
const only = envVar('DEEPWGSL_CHECKS')?.split(',').filter(Boolean);
export const checks = only ? allChecks.filter((c) => only.some((w) => c.name.includes(w))) : allChecks;
