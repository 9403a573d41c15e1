// Device acquisition in a browser (navigator.gpu), Deno (navigator.gpu) and Node (the `webgpu`
// package, Dawn). On a machine without a GPU, Node falls back to SwiftShader's Vulkan ICD (Debian's
// chromium ships it) and Deno to Mesa's lavapipe, and say so.
import { envVar, runtime, setEnvVar, type Runtime } from './env.ts';
import { GpuError } from './errors.ts';
import { PipelineCache } from '../jit/pipeline-cache.ts';

export interface ContextOptions {
  powerPreference?: GPUPowerPreference;
  /** Features to leave off even when offered (to test fallbacks): e.g. ['shader-f16']. */
  disableFeatures?: GPUFeatureName[];
  /** Where to print which adapter runs; default console.error. Pass () => {} to silence. */
  log?: (line: string) => void;
  /** Print generated WGSL modules (same as DEEPWGSL_JIT_DEBUG=1). */
  jitDebug?: boolean;
}

export interface AdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
  subgroupMinSize: number;
  subgroupMaxSize: number;
}

/** The limits kernels plan with: the adapter's maxima, all requested at device creation. */
export interface DeviceLimits {
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
  maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupSizeX: number;
  maxComputeWorkgroupsPerDimension: number;
  maxStorageBuffersPerShaderStage: number;
  minStorageBufferOffsetAlignment: number;
}

const WANTED_FEATURES: GPUFeatureName[] = ['shader-f16', 'subgroups' as GPUFeatureName, 'timestamp-query'];
const LIMIT_NAMES: (keyof DeviceLimits)[] = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
  'minStorageBufferOffsetAlignment',
];

// Software Vulkan drivers to try, in order, when no hardware adapter is found.
const SOFTWARE_ICDS = [
  '/usr/lib/chromium/vk_swiftshader_icd.json',
  '/usr/share/vulkan/icd.d/lvp_icd.x86_64.json',
  '/usr/share/vulkan/icd.d/lvp_icd.aarch64.json',
];

export class GpuContext {
  readonly pipelines: PipelineCache;
  readonly jitDebug: boolean;
  private firstError: GpuError | undefined;
  private lost: GpuError | undefined;

  constructor(
    readonly device: GPUDevice,
    readonly adapter: GPUAdapter,
    readonly runtime: Runtime,
    readonly adapterInfo: AdapterDescription,
    readonly features: ReadonlySet<string>,
    readonly limits: DeviceLimits,
    options: ContextOptions = {},
  ) {
    this.jitDebug = options.jitDebug ?? false;
    this.pipelines = new PipelineCache(this);
    device.addEventListener('uncapturederror', (ev) => {
      const e = (ev as GPUUncapturedErrorEvent).error;
      this.firstError ??= new GpuError(`WebGPU ${e.constructor.name}: ${e.message}`);
    });
    void device.lost.then((info) => {
      this.lost = new GpuError(`WebGPU device lost (${info.reason}): ${info.message}`);
    });
  }

  has(feature: string): boolean {
    return this.features.has(feature);
  }

  /** A CPU implementation (SwiftShader, lavapipe): benchmarks and demos size themselves down. */
  get isSoftware(): boolean {
    const a = this.adapterInfo;
    return a.isFallbackAdapter || /swiftshader|llvmpipe|lavapipe/i.test(`${a.description} ${a.architecture} ${a.vendor}`);
  }

  /** A short line naming the adapter, runtime and features, for logs and reports. */
  describe(): string {
    const a = this.adapterInfo;
    const name = a.description || [a.vendor, a.architecture, a.device].filter(Boolean).join(' ') || 'unknown adapter';
    const kind = this.isSoftware ? ', software' : '';
    return `${name} (${[a.vendor, a.architecture].filter(Boolean).join(' ') || 'unknown vendor'}${kind}) via ${this.runtime}; features: ${[...this.features].filter((f) => WANTED_FEATURES.includes(f as GPUFeatureName)).join(', ') || 'none of shader-f16/subgroups/timestamp-query'}`;
  }

  /** Throws the first WebGPU error seen since the last check, or the device loss. */
  throwIfFailed(): void {
    if (this.lost) throw this.lost;
    const e = this.firstError;
    if (e) {
      this.firstError = undefined;
      throw e;
    }
  }

  /** Waits for submitted work, then surfaces any error it raised. */
  async sync(): Promise<void> {
    this.throwIfFailed();
    await this.device.queue.onSubmittedWorkDone();
    this.throwIfFailed();
  }

  destroy(): void {
    this.device.destroy();
  }
}

// Dawn instances are never let go: collecting one (even an unused one) aborts dawn.node 0.6.
const instances: GPU[] = [];
// Dawn rounds timestamps to ~33 us by default (a browser privacy measure); benchmarks need them whole.
// DEEPWGSL_DAWN_FLAGS adds Dawn's own (space separated), e.g. enable-dawn-features=dump_shaders.
const DAWN_FLAGS = ['disable-dawn-features=timestamp_quantization', ...(envVar('DEEPWGSL_DAWN_FLAGS') ?? '').split(' ').filter(Boolean)];

async function nodeGpu(log: (l: string) => void): Promise<GPU> {
  const webgpu = (await import('webgpu')) as { create: (flags: string[]) => GPU; globals: Record<string, unknown> };
  for (const [k, v] of Object.entries(webgpu.globals)) {
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  }
  const gpu = webgpu.create(DAWN_FLAGS);
  instances.push(gpu);
  if ((await gpu.requestAdapter()) || envVar('VK_ICD_FILENAMES') || envVar('VK_DRIVER_FILES')) return gpu;
  // Dawn instances read VK_ICD_FILENAMES when created, so a new one sees the software driver.
  const fs = await import('node:fs');
  for (const icd of SOFTWARE_ICDS.filter((p) => fs.existsSync(p))) {
    setEnvVar('VK_ICD_FILENAMES', icd);
    const soft = webgpu.create(DAWN_FLAGS);
    instances.push(soft);
    if (await soft.requestAdapter()) {
      log(`deepwgsl: no hardware WebGPU adapter; using the software Vulkan driver ${icd}`);
      return soft;
    }
  }
  return gpu;
}

function noAdapterMessage(rt: Runtime): string {
  const hints: Record<Runtime, string> = {
    browser:
      'this browser exposes no WebGPU adapter. Use Chrome/Edge 113+ (on Linux start it with --enable-unsafe-webgpu --enable-features=Vulkan), Safari 26+ or Firefox 141+ (Windows).',
    deno: 'Deno found no WebGPU adapter. Install a Vulkan driver (for a software one: apt-get install mesa-vulkan-drivers) or point VK_ICD_FILENAMES at one.',
    node: 'Node found no WebGPU adapter through Dawn. Install a Vulkan driver, or Debian\'s chromium (for SwiftShader), or point VK_ICD_FILENAMES at an ICD json.',
  };
  return `createContext: ${hints[rt]}`;
}

export async function createContext(options: ContextOptions = {}): Promise<GpuContext> {
  const log = options.log ?? ((l: string) => console.error(l));
  const rt = runtime();
  let adapter: GPUAdapter | null = null;
  const req: GPURequestAdapterOptions = options.powerPreference ? { powerPreference: options.powerPreference } : {};
  if (rt === 'node' && !(globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu) {
    adapter = await (await nodeGpu(log)).requestAdapter(req);
  } else {
    const gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
    if (!gpu) throw new GpuError(noAdapterMessage(rt));
    adapter = await gpu.requestAdapter(req);
  }
  if (!adapter) throw new GpuError(noAdapterMessage(rt));

  const disabled = new Set<string>(options.disableFeatures ?? []);
  const requiredFeatures = WANTED_FEATURES.filter((f) => adapter.features.has(f) && !disabled.has(f));
  const requiredLimits: Record<string, number> = {};
  for (const name of LIMIT_NAMES) requiredLimits[name] = adapter.limits[name];
  const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });

  const info = adapter.info ?? ({} as GPUAdapterInfo);
  const extra = info as unknown as { subgroupMinSize?: number; subgroupMaxSize?: number; isFallbackAdapter?: boolean };
  const adapterInfo: AdapterDescription = {
    vendor: info.vendor ?? '',
    architecture: info.architecture ?? '',
    device: info.device ?? '',
    description: info.description ?? '',
    isFallbackAdapter: extra.isFallbackAdapter ?? false,
    subgroupMinSize: extra.subgroupMinSize ?? 0,
    subgroupMaxSize: extra.subgroupMaxSize ?? 0,
  };
  const limits = {} as DeviceLimits;
  for (const name of LIMIT_NAMES) limits[name] = device.limits[name];
  const ctx = new GpuContext(device, adapter, rt, adapterInfo, new Set(device.features), limits, {
    ...options,
    jitDebug: options.jitDebug ?? envVar('DEEPWGSL_JIT_DEBUG') === '1',
  });
  log(`deepwgsl: ${ctx.describe()}`);
  return ctx;
}
