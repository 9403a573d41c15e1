// Profiler: times compute passes (each Launch in its own pass) with timestamp queries, or with CPU
// wall time where 'timestamp-query' is absent or timing: 'cpu' is asked for, and says which in the
// trace. Exports Chrome trace JSON (chrome://tracing, ui.perfetto.dev): one "X" event per pass,
// microseconds, with bytes, flops, GB/s and TFLOP/s in args. Attached to a context, it also records
// every sample timeLaunch takes (so `deepwgsl bench --trace` sees the ceilings and every suite).
// It lives in src/jit (not src/gpu) because it speaks in Launches.
import type { GpuContext } from '../gpu/context.ts';
import type { Launch, LaunchInfo } from './launch.ts';
import { attachTimingSink, intervalMs, PassTimestamps, type Interval, type TimingMethod, type TimingSink } from './timing.ts';

export interface ProfileEvent {
  name: string;
  category: string;
  /** Microseconds since the profiler's first event (GPU clock or CPU clock, per `method`). */
  startUs: number;
  durUs: number;
  bytes: number;
  flops: number;
  config: object;
}

/** A compute pass to time: a Launch, or any encoder callback with its own name and cost. */
export interface TimedPass {
  name: string;
  info?: Partial<LaunchInfo>;
  encode(pass: GPUComputePassEncoder): void;
}

export interface ChromeTraceEvent {
  name: string;
  cat?: string;
  ph: 'X' | 'M';
  ts?: number;
  dur?: number;
  pid: number;
  tid: number;
  args: Record<string, unknown>;
}

export interface ChromeTrace {
  traceEvents: ChromeTraceEvent[];
  displayTimeUnit: 'ms' | 'ns';
  otherData: Record<string, string>;
}

const PID = 1;
const MAX_PASSES = 2048;
const TID = 1;

export class Profiler implements TimingSink {
  readonly method: TimingMethod;
  readonly events: ProfileEvent[] = [];
  /** Category of timeLaunch samples that name none (the bench CLI sets it per suite). */
  section = 'timeLaunch';
  /** The clock value of the first event: GPU ns or CPU ms. Every event is placed relative to it. */
  private base: bigint | number | undefined;

  constructor(readonly ctx: GpuContext, opts: { timing?: 'auto' | 'cpu' } = {}) {
    this.method = ctx.has('timestamp-query') && opts.timing !== 'cpu' ? 'timestamp' : 'cpu';
  }

  /** Why this method: for the trace's metadata and the CLI. */
  get timingNote(): string {
    if (this.method === 'timestamp') return 'GPU timestamp queries around each compute pass (timestampWrites)';
    const why = this.ctx.has('timestamp-query') ? 'CPU timing was requested' : "this device has no 'timestamp-query'";
    return `${why}: durations are CPU wall time from submit to onSubmittedWorkDone, one pass per submit, so they include submission overhead`;
  }

  /** Makes every timeLaunch on this context record into this profiler; returns the detach function. */
  attach(): () => void {
    return attachTimingSink(this.ctx, this);
  }

  record(info: LaunchInfo, t: Interval, category = this.section): ProfileEvent {
    const start = t.method === 'timestamp' ? t.startNs : t.startMs;
    this.base ??= start;
    const sinceBase = t.method === 'timestamp' ? Number(t.startNs - (this.base as bigint)) / 1e3 : (t.startMs - (this.base as number)) * 1e3;
    const durUs = intervalMs(t) * 1e3;
    const e = { name: info.kernel, category, startUs: sinceBase, durUs, bytes: info.bytes, flops: info.flops, config: info.config };
    this.events.push(e);
    return e;
  }

  /** Runs the launches in order, each in its own timed compute pass, and records an event for each. */
  profile(launches: Launch | Launch[], category = 'launch'): Promise<ProfileEvent[]> {
    const list = Array.isArray(launches) ? launches : [launches];
    return this.profilePasses(list.map((l) => ({ name: l.info.kernel, info: l.info, encode: (p) => l.encode(p) })), category);
  }

  /** Runs the passes in order, one compute pass each, and records an event for each. */
  async profilePasses(passes: TimedPass[], category = 'pass'): Promise<ProfileEvent[]> {
    const { device } = this.ctx;
    const infoOf = (p: TimedPass): LaunchInfo => ({ kernel: p.name, config: p.info?.config ?? {}, bytes: p.info?.bytes ?? 0, flops: p.info?.flops ?? 0 });
    if (this.method === 'cpu') {
      const out: ProfileEvent[] = [];
      for (const p of passes) {
        const startMs = performance.now();
        const enc = device.createCommandEncoder({ label: p.name });
        const pass = enc.beginComputePass({ label: p.name });
        p.encode(pass);
        pass.end();
        device.queue.submit([enc.finish()]);
        await this.ctx.sync();
        out.push(this.record(infoOf(p), { method: 'cpu', startMs, endMs: performance.now() }, category));
      }
      return out;
    }
    // A query set holds at most 4096 queries (2 per pass): longer lists go in batches.
    if (passes.length > MAX_PASSES) {
      const out: ProfileEvent[] = [];
      for (let i = 0; i < passes.length; i += MAX_PASSES) out.push(...(await this.profilePasses(passes.slice(i, i + MAX_PASSES), category)));
      return out;
    }
    if (passes.length === 0) return [];
    const stamps = new PassTimestamps(this.ctx, passes.length);
    const enc = device.createCommandEncoder({ label: 'profiler' });
    passes.forEach((p, i) => {
      const pass = enc.beginComputePass({ label: p.name, ...stamps.pass(i) });
      p.encode(pass);
      pass.end();
    });
    stamps.resolve(enc);
    device.queue.submit([enc.finish()]);
    const times = await stamps.read();
    return passes.map((p, i) => this.record(infoOf(p), { method: 'timestamp', ...times[i] }, category));
  }

  /** Chrome trace JSON: load in ui.perfetto.dev or chrome://tracing. */
  toChromeTrace(): ChromeTrace {
    const queue = this.method === 'timestamp' ? 'GPU queue (timestamp queries)' : 'GPU queue (CPU wall time: no timestamp queries)';
    const meta = (name: string, tid: number, value: string): ChromeTraceEvent => ({ name, ph: 'M', pid: PID, tid, args: { name: value } });
    const traceEvents: ChromeTraceEvent[] = [meta('process_name', 0, `deepwgsl: ${this.ctx.describe()}`), meta('thread_name', TID, queue)];
    for (const e of this.events) {
      const s = e.durUs / 1e6;
      traceEvents.push({
        name: e.name,
        cat: e.category,
        ph: 'X',
        ts: e.startUs,
        dur: e.durUs,
        pid: PID,
        tid: TID,
        args: {
          bytes: e.bytes,
          flops: e.flops,
          'GB/s': s > 0 ? e.bytes / s / 1e9 : null,
          'TFLOP/s': s > 0 ? e.flops / s / 1e12 : null,
          config: e.config,
          timing: this.method,
        },
      });
    }
    return {
      traceEvents,
      displayTimeUnit: 'ms',
      otherData: { timing: this.method, timingNote: this.timingNote, device: this.ctx.describe(), date: new Date().toISOString() },
    };
  }
}
