// A Launch is a kernel call that has been planned (config chosen, pipeline compiled, bind groups
// built) and can be encoded any number of times: run now, timed by autotune, or recorded once and
// replayed by a decode step.
import type { AnyWgslData } from 'typegpu/data';
import type { GpuContext } from '../gpu/context.ts';
import { DeepwgslError } from '../gpu/errors.ts';
import type { KernelModule } from './compose.ts';

export interface Dispatch {
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  workgroups: readonly [number, number, number];
}

export interface LaunchInfo {
  kernel: string;
  config: object;
  /** Bytes a perfect kernel must move (read + write), for GB/s. */
  bytes: number;
  /** Useful floating-point operations (an FMA is 2), for TFLOP/s. */
  flops: number;
  /** Where the config came from the tuning store or the heuristic: the store's key and the configs autotune would try (a tuner that times them in place, as tuneDecodeGemms does, sets that key). */
  tuning?: { kernel: string; shapeKey: string; candidates: readonly object[] };
}

export class Launch {
  constructor(
    readonly ctx: GpuContext,
    readonly dispatches: readonly Dispatch[],
    readonly info: LaunchInfo,
    /** Buffers made for this launch alone (its uniforms): freed by destroy(). */
    private readonly owned: GPUBuffer[] = [],
  ) {}

  /** Several launches' dispatches as one launch, in order: it owns what they owned, and `owned` besides. */
  static join(ctx: GpuContext, parts: readonly Launch[], info: LaunchInfo, owned: GPUBuffer[] = []): Launch {
    return new Launch(ctx, parts.flatMap((l) => l.dispatches), info, [...parts.flatMap((l) => l.owned), ...owned]);
  }

  /** Frees the buffers this launch owns; the tensors it binds belong to its caller. */
  destroy(): void {
    for (const b of this.owned) b.destroy();
  }

  /** Records the dispatches into a pass; dispatches in one pass see each other's writes in order. */
  encode(pass: GPUComputePassEncoder): void {
    for (const d of this.dispatches) {
      pass.setPipeline(d.pipeline);
      pass.setBindGroup(0, d.bindGroup);
      pass.dispatchWorkgroups(...d.workgroups);
    }
  }

  /** Submits the launch (`times` in a row in one pass, each after the one before). Errors surface at the next ctx.sync() or read-back. */
  submit(times = 1): void {
    const enc = this.ctx.device.createCommandEncoder({ label: this.info.kernel });
    const pass = enc.beginComputePass();
    for (let i = 0; i < times; i++) this.encode(pass);
    pass.end();
    this.ctx.device.queue.submit([enc.finish()]);
  }

  async run(): Promise<void> {
    this.submit();
    await this.ctx.sync();
  }
}

/** Encodes the launches in order into one compute pass and submits it (one submit for a whole step). */
export function encodeLaunches(ctx: GpuContext, launches: readonly Launch[], label: string): void {
  const enc = ctx.device.createCommandEncoder({ label });
  const pass = enc.beginComputePass({ label });
  for (const l of launches) l.encode(pass);
  pass.end();
  ctx.device.queue.submit([enc.finish()]);
}

/** The smallest power of two >= x (1 for x <= 1): workgroup sizes and tuning buckets. */
export const nextPow2 = (x: number): number => 2 ** Math.ceil(Math.log2(Math.max(1, x)));

/** Splits a workgroup count over x and y when it exceeds the per-dimension limit; kernels rebuild the flat id. */
export function grid(ctx: GpuContext, count: number): [number, number, number] {
  const max = ctx.limits.maxComputeWorkgroupsPerDimension;
  if (count <= max) return [Math.max(1, count), 1, 1];
  const y = Math.ceil(count / max);
  if (y > max) throw new DeepwgslError(`grid: ${count} workgroups exceed ${max}x${max} on this device`);
  return [max, y, 1];
}

/** A uniform buffer holding a typegpu struct of 4-byte scalars, written in field order. */
export function paramsBuffer(ctx: GpuContext, schema: AnyWgslData, values: Record<string, number>): GPUBuffer {
  const props = (schema as unknown as { propTypes: Record<string, { type: string }> }).propTypes;
  const names = Object.keys(props);
  const data = new DataView(new ArrayBuffer(Math.ceil((names.length * 4) / 16) * 16));
  names.forEach((name, i) => {
    const v = values[name];
    if (v === undefined) throw new DeepwgslError(`paramsBuffer: no value for field '${name}'`);
    const t = props[name].type;
    if (t === 'u32') data.setUint32(i * 4, v, true);
    else if (t === 'i32') data.setInt32(i * 4, v, true);
    else if (t === 'f32') data.setFloat32(i * 4, v, true);
    else throw new DeepwgslError(`paramsBuffer: field '${name}' is ${t}; only u32/i32/f32 fields are supported`);
  });
  const buf = ctx.device.createBuffer({ size: data.byteLength, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  ctx.device.queue.writeBuffer(buf, 0, data.buffer);
  return buf;
}

export function bindGroup(
  ctx: GpuContext,
  pipeline: GPUComputePipeline,
  /** Resource i goes to binding i; holes (undefined) are bindings the module does not declare. */
  resources: readonly (GPUBufferBinding | GPUBuffer | undefined)[],
): GPUBindGroup {
  const entries: GPUBindGroupEntry[] = [];
  resources.forEach((r, binding) => {
    if (r) entries.push({ binding, resource: 'buffer' in r ? r : { buffer: r } });
  });
  return ctx.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
}

/** One kernel call to plan: its module, uniform struct and values, storage bindings, workgroup count, cost. */
export interface KernelSpec {
  module: KernelModule;
  /** The uniform struct at binding 0; a `grid_x` field gets the grid's x size (kernels rebuild flat ids from it). */
  params: AnyWgslData;
  values: Record<string, number>;
  /** Bindings after the params uniform, in binding order (holes: bindings the module does not declare). */
  bindings: readonly (GPUBufferBinding | undefined)[];
  /** Workgroups in all, split over x and y past the per-dimension limit. */
  workgroups: number;
  bytes: number;
  flops: number;
}

/** Compiles (cached), sizes the grid, writes the uniform and binds: the Launch owns its uniform buffer. */
export async function planKernel(ctx: GpuContext, k: KernelSpec): Promise<Launch> {
  const pipeline = await ctx.pipelines.get(k.module);
  const g = grid(ctx, k.workgroups);
  const params = paramsBuffer(ctx, k.params, { ...k.values, grid_x: g[0] });
  const bg = bindGroup(ctx, pipeline, [params, ...k.bindings]);
  return new Launch(ctx, [{ pipeline, bindGroup: bg, workgroups: g }], { kernel: k.module.kernel, config: k.module.config, bytes: k.bytes, flops: k.flops }, [params]);
}
