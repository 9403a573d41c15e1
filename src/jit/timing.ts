// GPU timing with timestamp queries (one pass per sample), falling back to CPU wall time around
// onSubmittedWorkDone where the feature is absent. The method used is always reported.
import type { GpuContext } from '../gpu/context.ts';
import type { Launch } from './launch.ts';

export interface Timing {
  /** Median time of one launch, milliseconds. */
  medianMs: number;
  samplesMs: number[];
  method: 'timestamp' | 'cpu';
}

export interface TimingOptions {
  warmup?: number;
  iters?: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export async function timeLaunch(ctx: GpuContext, launch: Launch, opts: TimingOptions = {}): Promise<Timing> {
  const warmup = opts.warmup ?? 3;
  const iters = opts.iters ?? 20;
  for (let i = 0; i < warmup; i++) launch.submit();
  await ctx.sync();
  const { device } = ctx;
  if (!ctx.has('timestamp-query')) {
    const samplesMs: number[] = [];
    for (let i = 0; i < iters; i++) {
      const t0 = performance.now();
      await launch.run();
      samplesMs.push(performance.now() - t0);
    }
    return { medianMs: median(samplesMs), samplesMs, method: 'cpu' };
  }
  const querySet = device.createQuerySet({ type: 'timestamp', count: 2 * iters });
  const resolve = device.createBuffer({ size: 16 * iters, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
  const read = device.createBuffer({ size: 16 * iters, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ });
  const enc = device.createCommandEncoder();
  for (let i = 0; i < iters; i++) {
    const pass = enc.beginComputePass({
      timestampWrites: { querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 },
    });
    launch.encode(pass);
    pass.end();
  }
  enc.resolveQuerySet(querySet, 0, 2 * iters, resolve, 0);
  enc.copyBufferToBuffer(resolve, 0, read, 0, 16 * iters);
  device.queue.submit([enc.finish()]);
  await ctx.sync();
  await read.mapAsync(GPUMapMode.READ);
  const ts = new BigInt64Array(read.getMappedRange().slice(0));
  read.destroy();
  resolve.destroy();
  querySet.destroy();
  const samplesMs = Array.from({ length: iters }, (_, i) => Number(ts[2 * i + 1] - ts[2 * i]) / 1e6);
  return { medianMs: median(samplesMs), samplesMs, method: 'timestamp' };
}
