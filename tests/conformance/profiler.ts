// Profiler checks: trace structure from real launches, in every runtime, with timestamp queries
// where the device has them and with the CPU fallback forced.
import type { GpuContext } from '../../src/gpu/context.ts';
import { CEILING_KERNELS, type PlannedCeiling } from '../../src/bench/ceilings.ts';
import { Profiler, type ChromeTrace } from '../../src/jit/profiler.ts';
import { timeLaunch } from '../../src/jit/timing.ts';
import { Launch } from '../../src/jit/launch.ts';
import { createTensor, readTensor, writeTensor } from '../../src/gpu/tensor.ts';
import type { Check, CheckResult } from './check.ts';

/** Two known launches: the stream-read and f32 FMA ceiling kernels at their small 'check' size. */
async function twoLaunches(ctx: GpuContext): Promise<PlannedCeiling[]> {
  const kernels = CEILING_KERNELS.filter((k) => k.name === 'stream-read' || k.name === 'fma-f32');
  return Promise.all(kernels.map((k) => k.plan(ctx, 'check')));
}

/** Counts what is wrong with a trace of `planned` launches profiled `rounds` times, in order. */
function traceProblems(trace: ChromeTrace, planned: PlannedCeiling[], rounds: number, method: string): string[] {
  const bad: string[] = [];
  const parsed = JSON.parse(JSON.stringify(trace)) as ChromeTrace;
  const xs = parsed.traceEvents.filter((e) => e.ph === 'X');
  const want = Array.from({ length: rounds }, () => planned.map((p) => p.launch.info)).flat();
  if (xs.length !== want.length) bad.push(`${xs.length} X events, want ${want.length}`);
  if (parsed.otherData.timing !== method) bad.push(`otherData.timing ${parsed.otherData.timing}`);
  const thread = parsed.traceEvents.find((e) => e.ph === 'M' && e.name === 'thread_name');
  if (!thread || !String(thread.args.name).includes(method === 'cpu' ? 'CPU wall time' : 'timestamp')) bad.push('thread_name does not say how it was timed');
  xs.forEach((e, i) => {
    const info = want[i];
    if (!info) return;
    if (e.name !== info.kernel) bad.push(`event ${i} is ${e.name}, want ${info.kernel}`);
    if (!(Number.isFinite(e.ts) && Number.isFinite(e.dur) && e.ts! >= 0 && e.dur! >= 0)) bad.push(`event ${i}: ts ${e.ts} dur ${e.dur}`);
    if (!Number.isInteger(e.pid) || !Number.isInteger(e.tid) || e.tid !== xs[0].tid) bad.push(`event ${i}: pid/tid`);
    if (e.args.bytes !== info.bytes || e.args.flops !== info.flops) bad.push(`event ${i}: bytes/flops args`);
    const gbs = e.args['GB/s'] as number | null;
    if (e.dur! > 0 && Math.abs(gbs! - info.bytes / (e.dur! * 1e-6) / 1e9) > 1e-9 * gbs!) bad.push(`event ${i}: GB/s ${gbs}`);
    if (e.dur! > 0 && info.flops > 0 && !((e.args['TFLOP/s'] as number) > 0)) bad.push(`event ${i}: TFLOP/s`);
    // One queue: passes run in submission order, so each starts after the previous one ended.
    const prev = xs[i - 1];
    if (prev && e.ts! < prev.ts! + prev.dur!) bad.push(`event ${i} starts at ${e.ts} before event ${i - 1} ends at ${prev.ts! + prev.dur!}`);
  });
  return bad;
}

async function profileCheck(ctx: GpuContext, timing: 'auto' | 'cpu'): Promise<CheckResult> {
  const planned = await twoLaunches(ctx);
  const profiler = new Profiler(ctx, { timing });
  const rounds = 2;
  for (let r = 0; r < rounds; r++) await profiler.profile(planned.map((p) => p.launch));
  const bad = traceProblems(profiler.toChromeTrace(), planned, rounds, profiler.method);
  // The profiled launches still computed what they claim.
  for (const p of planned) if ((await p.verify()) > p.tolerance) bad.push(`${p.launch.info.kernel} computed a wrong result under the profiler`);
  if (timing === 'cpu' && profiler.method !== 'cpu') bad.push('forced CPU timing was not used');
  planned.forEach((p) => p.destroy());
  const durs = profiler.events.map((e) => `${e.durUs.toFixed(1)}us`).join(' ');
  return { err: bad.length, tol: 0, note: bad.slice(0, 3).join('; ') || `${profiler.method}: ${durs}` };
}

export const profilerChecks: Check[] = [
  { name: 'profiler: two launches give a Chrome trace (ordered X events, bytes/flops args, GB/s)', run: (ctx) => profileCheck(ctx, 'auto') },
  { name: 'profiler: forced CPU-timing fallback, and the trace says so', run: (ctx) => profileCheck(ctx, 'cpu') },
  {
    name: 'profiler: more passes than one query set holds (4096 queries) are timed in batches',
    async run(ctx) {
      const profiler = new Profiler(ctx);
      const n = 2050;
      const events = await profiler.profilePasses(Array.from({ length: n }, (_, i) => ({ name: `empty${i}`, encode: () => {} })));
      const bad = events.length !== n || events.some((e, i) => e.name !== `empty${i}` || !(e.durUs >= 0) || (i > 0 && e.startUs < events[i - 1].startUs));
      return { err: bad ? 1 : 0, tol: 0, note: `${events.length} events (${profiler.method})` };
    },
  },
  {
    name: 'profiler: attached to a context it records every timeLaunch sample, detached none',
    async run(ctx) {
      const [p] = await twoLaunches(ctx);
      const bad: string[] = [];
      for (const timing of ['auto', 'cpu'] as const) {
        const profiler = new Profiler(ctx, { timing });
        const detach = profiler.attach();
        const t = await timeLaunch(ctx, p.launch, { warmup: 1, iters: 3, category: 'test' });
        detach();
        await timeLaunch(ctx, p.launch, { warmup: 0, iters: 2 });
        if (profiler.events.length !== 3) bad.push(`${timing}: ${profiler.events.length} events, want 3`);
        if (t.method !== profiler.method) bad.push(`${timing}: timeLaunch used ${t.method}, profiler ${profiler.method}`);
        if (profiler.events.some((e, i) => e.category !== 'test' || Math.abs(e.durUs / 1e3 - t.samplesMs[i]) > 1e-9)) bad.push(`${timing}: events differ from the samples`);
      }
      p.destroy();
      return { err: bad.length, tol: 0, note: bad.join('; ') || undefined };
    },
  },
  {
    name: 'profiler: timeLaunch with chain: every sample encodes the launch `chain` times (a counting kernel), and the sink records no chained samples',
    async run(ctx) {
      const count = createTensor(ctx, [1], 'u32', 'count');
      const module = ctx.device.createShaderModule({
        code: '@group(0) @binding(0) var<storage, read_write> n: array<atomic<u32>>;\n@compute @workgroup_size(1) fn main() { atomicAdd(&n[0], 1u); }',
      });
      const pipeline = ctx.device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
      const bindGroup = ctx.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: count.binding('test', 'count') }] });
      const launch = new Launch(ctx, [{ pipeline, bindGroup, workgroups: [1, 1, 1] }], { kernel: 'count', config: {}, bytes: 0, flops: 0 });
      const bad: string[] = [];
      for (const timing of ['auto', 'cpu'] as const) {
        writeTensor(count, new Uint32Array([0]));
        const profiler = new Profiler(ctx, { timing });
        const detach = profiler.attach();
        const t = await timeLaunch(ctx, launch, { warmup: 2, iters: 3, chain: 5 });
        detach();
        const n = (await readTensor(count))[0];
        if (n !== 2 + 3 * 5) bad.push(`${timing}: the kernel ran ${n} times, want 17 (2 warm-up + 3 samples x 5)`);
        if (t.samplesMs.length !== 3 || !t.samplesMs.every((x) => x >= 0)) bad.push(`${timing}: samples ${t.samplesMs}`);
        if (profiler.events.length !== 0) bad.push(`${timing}: ${profiler.events.length} chained samples recorded`);
      }
      count.destroy();
      return { err: bad.length, tol: 0, note: bad.join('; ') || undefined };
    },
  },
];
