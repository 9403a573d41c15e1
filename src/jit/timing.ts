// GPU timing with timestamp queries (one pass per sample), falling back to CPU wall time around
// onSubmittedWorkDone where the feature is absent. The method used is always reported.
// PassTimestamps is the one place that writes and reads timestamp queries; timeLaunch and the
// Profiler both use it, and timeLaunch reports its samples to a Profiler attached to the context.
import type { GpuContext } from '../gpu/context.ts';
import { fail } from '../gpu/errors.ts';
import type { Launch, LaunchInfo } from './launch.ts';

export type TimingMethod = 'timestamp' | 'cpu';

export interface Timing {
  /** Median time of one launch, milliseconds. */
  medianMs: number;
  samplesMs: number[];
  method: TimingMethod;
}

export interface TimingOptions {
  warmup?: number;
  iters?: number;
  /**
   * Launches per sample, encoded one after another in the sample's pass, each waiting on the one
   * before as in a decode step; the sample is the pass's time over this count. Default 1: a pass
   * per launch, whose begin/end timestamps add several µs that a step does not pay.
   */
  chain?: number;
}

/** A timed interval: GPU timestamps (ns, the device's clock) or CPU performance.now() (ms). */
export type Interval = { method: 'timestamp'; startNs: bigint; endNs: bigint } | { method: 'cpu'; startMs: number; endMs: number };

/** Where timeLaunch reports every sample it times (a Profiler, through attachProfiler). */
export interface TimingSink {
  readonly method: TimingMethod;
  /** category: the caller's (timeLaunch's `category` option), or undefined to let the sink choose. */
  record(info: LaunchInfo, interval: Interval, category: string | undefined): void;
}

const sinks = new WeakMap<GpuContext, TimingSink>();

/** Makes every timeLaunch on ctx report to sink (and use its method) until the returned function is called. */
export function attachTimingSink(ctx: GpuContext, sink: TimingSink): () => void {
  sinks.set(ctx, sink);
  return () => {
    if (sinks.get(ctx) === sink) sinks.delete(ctx);
  };
}

/** Begin/end timestamps for `passes` compute passes, resolved and read back in one go. */
export class PassTimestamps {
  private readonly querySet: GPUQuerySet;
  private readonly resolveBuf: GPUBuffer;
  private readonly readBuf: GPUBuffer;

  constructor(private readonly ctx: GpuContext, readonly passes: number) {
    const { device } = ctx;
    this.querySet = device.createQuerySet({ type: 'timestamp', count: 2 * passes });
    this.resolveBuf = device.createBuffer({ size: 16 * passes, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    this.readBuf = device.createBuffer({ size: 16 * passes, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ });
  }

  /** The descriptor that makes pass i write its begin and end timestamps. */
  pass(i: number): GPUComputePassDescriptor {
    return { timestampWrites: { querySet: this.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } };
  }

  /** Encodes the resolve; call after the last timed pass, in the same or a later encoder. */
  resolve(enc: GPUCommandEncoder): void {
    enc.resolveQuerySet(this.querySet, 0, 2 * this.passes, this.resolveBuf, 0);
    enc.copyBufferToBuffer(this.resolveBuf, 0, this.readBuf, 0, 16 * this.passes);
  }

  /** Waits for the GPU, reads [start, end] of every pass and frees the queries. */
  async read(): Promise<{ startNs: bigint; endNs: bigint }[]> {
    await this.ctx.sync();
    await this.readBuf.mapAsync(GPUMapMode.READ);
    const ts = new BigInt64Array(this.readBuf.getMappedRange().slice(0));
    this.readBuf.destroy();
    this.resolveBuf.destroy();
    this.querySet.destroy();
    return Array.from({ length: this.passes }, (_, i) => ({ startNs: ts[2 * i], endNs: ts[2 * i + 1] }));
  }
}

export function intervalMs(t: Interval): number {
  return t.method === 'timestamp' ? Number(t.endNs - t.startNs) / 1e6 : t.endMs - t.startMs;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Samples one timing takes at most: a query set holds at most 4096 timestamps, two per sample. */
export const MAX_TIMED_ITERS = 2048;

export async function timeLaunch(ctx: GpuContext, launch: Launch, opts: TimingOptions & { category?: string } = {}): Promise<Timing> {
  const warmup = opts.warmup ?? 3;
  const iters = opts.iters ?? 20;
  const chain = opts.chain ?? 1;
  if (!(Number.isInteger(iters) && iters >= 1 && iters <= MAX_TIMED_ITERS)) fail('timeLaunch', 'iters', `an integer in 1..${MAX_TIMED_ITERS}`, iters);
  if (!(Number.isInteger(warmup) && warmup >= 0)) fail('timeLaunch', 'warmup', 'a non-negative integer', warmup);
  if (!(Number.isInteger(chain) && chain >= 1)) fail('timeLaunch', 'chain', 'a positive integer', chain);
  for (let i = 0; i < warmup; i++) launch.submit();
  await ctx.sync();
  const sink = sinks.get(ctx);
  const method: TimingMethod = ctx.has('timestamp-query') && sink?.method !== 'cpu' ? 'timestamp' : 'cpu';
  const intervals: Interval[] = [];
  if (method === 'cpu') {
    for (let i = 0; i < iters; i++) {
      const startMs = performance.now();
      launch.submit(chain);
      await ctx.sync();
      intervals.push({ method, startMs, endMs: performance.now() });
    }
  } else {
    const stamps = new PassTimestamps(ctx, iters);
    const enc = ctx.device.createCommandEncoder({ label: launch.info.kernel });
    for (let i = 0; i < iters; i++) {
      const pass = enc.beginComputePass(stamps.pass(i));
      for (let k = 0; k < chain; k++) launch.encode(pass);
      pass.end();
    }
    stamps.resolve(enc);
    ctx.device.queue.submit([enc.finish()]);
    for (const t of await stamps.read()) intervals.push({ method, ...t });
  }
  // A chained sample spans `chain` launches: the sink's per-launch events (and their rates) would be wrong.
  if (chain === 1) for (const t of intervals) sink?.record(launch.info, t, opts.category);
  const samplesMs = intervals.map((t) => intervalMs(t) / chain);
  return { medianMs: median(samplesMs), samplesMs, method };
}
