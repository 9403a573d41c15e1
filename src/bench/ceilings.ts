// The device's own limits, measured through WebGPU: streaming read bandwidth and f32/f16 FMA rate.
// Every kernel's benchmark is reported as a percentage of these, not of a datasheet.
import * as d from 'typegpu/data';
import type { GpuContext } from '../gpu/context.ts';
import { createTensor, poisonTensor, readTensor } from '../gpu/tensor.ts';
import { bindGroup, Launch, paramsBuffer } from '../jit/launch.ts';
import { timeLaunch } from '../jit/timing.ts';
import fmaTemplate from '../../shaders/bench/fma.wgsl';
import streamTemplate from '../../shaders/bench/stream_read.wgsl';

export type CeilingSize = 'check' | 'quick' | 'full';

export interface PlannedCeiling {
  launch: Launch;
  /** Reads the output back and returns its error against the expected value (0 = exact). */
  verify(): Promise<number>;
  tolerance: number;
  destroy(): void;
}

export interface CeilingKernel {
  name: 'stream-read' | 'fma-f32' | 'fma-f16';
  unit: 'GB/s' | 'TFLOP/s';
  needs?: string[];
  plan(ctx: GpuContext, size: CeilingSize): Promise<PlannedCeiling>;
}

export interface Ceiling {
  name: string;
  unit: 'GB/s' | 'TFLOP/s';
  value: number;
  medianMs: number;
  method: 'timestamp' | 'cpu';
  problem: string;
}

const StreamParams = d.struct({ n: d.u32, threads: d.u32 });
const FmaParams = d.struct({ iters: d.u32, a: d.f32, b: d.f32 });
const WG = 256;

const streamRead: CeilingKernel = {
  name: 'stream-read',
  unit: 'GB/s',
  async plan(ctx, size) {
    // Large enough to defeat caches (H100's L2 is 50 MB) and within this device's binding limit.
    const want = { check: 1 << 20, quick: 64 << 20, full: 1 << 30 }[size];
    const bytes = Math.min(want, ctx.limits.maxStorageBufferBindingSize, ctx.limits.maxBufferSize) & ~0xffff;
    const n = bytes / 16;
    const src = createTensor(ctx, [bytes / 4], 'u32', 'stream-src');
    const words = new Uint32Array(bytes / 4);
    if (size === 'check') for (let i = 0; i < words.length; i++) words[i] = (i * 2654435761) >>> 0;
    else words.fill(1);
    ctx.device.queue.writeBuffer(src.buffer, 0, words);
    const workgroups = Math.min(size === 'check' ? 64 : 4096, Math.ceil(n / WG));
    const threads = workgroups * WG;
    const dst = createTensor(ctx, [threads], 'u32', 'stream-dst');
    poisonTensor(dst);
    const pipeline = await ctx.pipelines.get({
      kernel: 'bench.stream_read',
      config: { wg: WG },
      template: { file: 'bench/stream_read.wgsl', code: streamTemplate },
      consts: { WG },
      structs: { Params: StreamParams },
    });
    const params = paramsBuffer(ctx, StreamParams, { n, threads });
    const bg = bindGroup(ctx, pipeline, [params, src.binding('bench', 'src'), dst.binding('bench', 'dst')]);
    const launch = new Launch(ctx, [{ pipeline, bindGroup: bg, workgroups: [workgroups, 1, 1] }], {
      kernel: 'stream-read',
      config: { wg: WG, workgroups },
      bytes,
      flops: 0,
    });
    return {
      launch,
      tolerance: 0,
      async verify() {
        const out = (await readTensor(dst)) as Uint32Array;
        let got = 0;
        let want = 0;
        for (const v of out) got = (got + v) >>> 0;
        for (const v of words) want = (want + v) >>> 0;
        return got === want ? 0 : 1;
      },
      destroy() {
        src.destroy();
        dst.destroy();
      },
    };
  },
};

function fmaKernel(t: 'f32' | 'f16'): CeilingKernel {
  return {
    name: `fma-${t}`,
    unit: 'TFLOP/s',
    needs: t === 'f16' ? ['shader-f16'] : undefined,
    async plan(ctx, size) {
      const workgroups = { check: 16, quick: 512, full: 8192 }[size];
      const iters = { check: 64, quick: 512, full: 4096 }[size];
      const threads = workgroups * WG;
      const dst = createTensor(ctx, [threads], 'f32', `fma-${t}-dst`);
      poisonTensor(dst);
      const pipeline = await ctx.pipelines.get({
        kernel: `bench.fma_${t}`,
        config: { wg: WG, t },
        template: { file: 'bench/fma.wgsl', code: fmaTemplate },
        consts: { WG },
        aliases: { T: t },
        structs: { Params: FmaParams },
        enables: t === 'f16' ? ['f16'] : [],
      });
      const params = paramsBuffer(ctx, FmaParams, { iters, a: 0.5, b: 0.5 });
      const bg = bindGroup(ctx, pipeline, [params, dst.binding('bench', 'dst')]);
      const launch = new Launch(ctx, [{ pipeline, bindGroup: bg, workgroups: [workgroups, 1, 1] }], {
        kernel: `fma-${t}`,
        config: { wg: WG, workgroups, iters },
        bytes: threads * 4,
        flops: threads * iters * 32 * 2,
      });
      return {
        launch,
        tolerance: t === 'f16' ? 0.05 : 1e-4,
        async verify() {
          const out = await readTensor(dst);
          let err = 0;
          for (const v of out) err = Math.max(err, Number.isNaN(v) ? Infinity : Math.abs(v - 32) / 32);
          return err;
        },
        destroy() {
          dst.destroy();
        },
      };
    },
  };
}

export const CEILING_KERNELS: CeilingKernel[] = [streamRead, fmaKernel('f32'), fmaKernel('f16')];

/** Conformance: the ceiling kernels compute what they claim, so their timings mean something. */
export async function runCeilingCheck(ctx: GpuContext, k: CeilingKernel): Promise<{ err: number; tol: number }> {
  const p = await k.plan(ctx, 'check');
  await p.launch.run();
  const err = await p.verify();
  p.destroy();
  return { err, tol: p.tolerance };
}

export async function measureCeilings(ctx: GpuContext, size: CeilingSize = 'full', iters = 20): Promise<Ceiling[]> {
  const out: Ceiling[] = [];
  for (const k of CEILING_KERNELS) {
    if (k.needs?.some((f) => !ctx.has(f))) continue;
    const p = await k.plan(ctx, size);
    const t = await timeLaunch(ctx, p.launch, { warmup: 3, iters });
    const err = await p.verify();
    if (err > p.tolerance) throw new Error(`ceiling kernel ${k.name} computed a wrong result (error ${err}); its timing would mean nothing`);
    const s = t.medianMs / 1e3;
    const { bytes, flops } = p.launch.info;
    out.push({
      name: k.name,
      unit: k.unit,
      value: k.unit === 'GB/s' ? bytes / s / 1e9 : flops / s / 1e12,
      medianMs: t.medianMs,
      method: t.method,
      problem: k.unit === 'GB/s' ? `${(bytes / 2 ** 20).toFixed(0)} MiB read` : `${(flops / 1e12).toFixed(3)} TFLOP`,
    });
    p.destroy();
  }
  return out;
}
