// The device's own limits, measured through WebGPU: streaming read bandwidth, f32/f16 FMA rate, and
// the cost of one dependent dispatch. Every kernel's benchmark is reported as a percentage of these,
// not of a datasheet; a decode step's floor needs the last one too (hundreds of dependent launches).
import * as d from 'typegpu/data';
import type { GpuContext } from '../gpu/context.ts';
import { createTensor, poisonTensor, readTensor } from '../gpu/tensor.ts';
import { bindGroup, Launch, paramsBuffer } from '../jit/launch.ts';
import { timeLaunch } from '../jit/timing.ts';
import fmaTemplate from '../../shaders/bench/fma.wgsl';
import streamTemplate from '../../shaders/bench/stream_read.wgsl';
import chainTemplate from '../../shaders/bench/dispatch_chain.wgsl';

export type CeilingSize = 'check' | 'quick' | 'full';

export interface PlannedCeiling {
  launch: Launch;
  /** Reads the output back and returns its error against the expected value (0 = exact). */
  verify(): Promise<number>;
  tolerance: number;
  destroy(): void;
}

export interface CeilingKernel {
  name: 'stream-read' | 'fma-f32' | 'fma-f16' | 'dispatch';
  unit: Ceiling['unit'];
  needs?: string[];
  plan(ctx: GpuContext, size: CeilingSize): Promise<PlannedCeiling>;
}

export interface Ceiling {
  name: string;
  /** µs: the time per dispatch of a chain of dependent ones (lower is better). */
  unit: 'GB/s' | 'TFLOP/s' | 'µs';
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

const CHAIN_WG = 64;

const dispatchChain: CeilingKernel = {
  name: 'dispatch',
  unit: 'µs',
  async plan(ctx, size) {
    const n = { check: 50, quick: 500, full: 1000 }[size];
    const x = createTensor(ctx, [CHAIN_WG], 'u32', 'chain-x');
    const start = Uint32Array.from({ length: CHAIN_WG }, (_, i) => (i * 2654435761) >>> 0);
    ctx.device.queue.writeBuffer(x.buffer, x.byteOffset, start);
    const pipeline = await ctx.pipelines.get({
      kernel: 'bench.dispatch_chain',
      config: { wg: CHAIN_WG },
      template: { file: 'bench/dispatch_chain.wgsl', code: chainTemplate },
      consts: { WG: CHAIN_WG },
    });
    const bg = bindGroup(ctx, pipeline, [x.binding('bench', 'x')]);
    const launch = new Launch(ctx, Array.from({ length: n }, () => ({ pipeline, bindGroup: bg, workgroups: [1, 1, 1] as const })), {
      kernel: 'dispatch-chain',
      config: { wg: CHAIN_WG, dispatches: n },
      bytes: 0,
      flops: 0,
    });
    return {
      launch,
      tolerance: 0,
      async verify() {
        // Each run of the launch applies x -> 3x + 1 (mod 2^32) n times to every word; how many runs
        // there were is the caller's, so find the step count from word 0 and check every word with it.
        const got = (await readTensor(x)) as Uint32Array;
        const step = (u: number) => (Math.imul(u, 3) + 1) >>> 0;
        let steps = 0;
        for (let v = start[0]; v !== got[0]; v = step(v)) if (++steps > 1 << 26) return 1;
        if (steps === 0 || steps % n !== 0) return 1;
        return start.every((u, i) => {
          for (let s = 0; s < steps; s++) u = step(u);
          return u === got[i];
        })
          ? 0
          : 1;
      },
      destroy() {
        x.destroy();
      },
    };
  },
};

export const CEILING_KERNELS: CeilingKernel[] = [streamRead, fmaKernel('f32'), fmaKernel('f16'), dispatchChain];

const clockLoad = new WeakMap<GpuContext, Launch>();

/**
 * Brings a hardware GPU to the clock it runs at under load. GPUs clock down when idle, and light
 * work does not bring them back: an H200 sat at 345-675 MHz through seconds of back-to-back
 * microsecond dispatches, while heavy work took it to 1980 MHz within ~0.2 s (and it fell back
 * within ~2 s of idling). A microsecond kernel timed after setup or host work is otherwise timed at
 * a fraction of the clock a decode step runs at (the step's GEMMs keep the clock up). Runs the f32
 * FMA ceiling kernel for `ms`; nothing on software adapters.
 */
export async function raiseClocks(ctx: GpuContext, ms = 200): Promise<void> {
  if (ctx.isSoftware) return;
  let load = clockLoad.get(ctx);
  if (!load) {
    const p = await fmaKernel('f32').plan(ctx, 'quick');
    load = new Launch(ctx, Array.from({ length: 20 }, () => p.launch.dispatches[0]), p.launch.info);
    clockLoad.set(ctx, load);
  }
  const end = performance.now() + ms;
  while (performance.now() < end) await load.run();
}

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
    // At the loaded clock, so that no ceiling is timed during the clock's ramp after setup.
    await raiseClocks(ctx);
    const t = await timeLaunch(ctx, p.launch, { warmup: 3, iters });
    const err = await p.verify();
    if (err > p.tolerance) throw new Error(`ceiling kernel ${k.name} computed a wrong result (error ${err}); its timing would mean nothing`);
    const s = t.medianMs / 1e3;
    const { bytes, flops } = p.launch.info;
    const n = p.launch.dispatches.length;
    out.push({
      name: k.name,
      unit: k.unit,
      value: { 'GB/s': bytes / s / 1e9, 'TFLOP/s': flops / s / 1e12, µs: (t.medianMs * 1e3) / n }[k.unit],
      medianMs: t.medianMs,
      method: t.method,
      problem: { 'GB/s': `${(bytes / 2 ** 20).toFixed(0)} MiB read`, 'TFLOP/s': `${(flops / 1e12).toFixed(3)} TFLOP`, µs: `${n} dependent dispatches` }[k.unit],
    });
    p.destroy();
  }
  return out;
}
