// Device acquisition in a browser (navigator.gpu), Deno (navigator.gpu) and Node (the `webgpu`
// package, Dawn). On a machine without a GPU, Node falls back to SwiftShader's Vulkan ICD (Debian's
// chromium ships it) and Deno to Mesa's lavapipe; the adapter line says "software".
import { envFlag, envVar, runtime, setEnvVar, type Runtime } from './env.ts';
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
  /** Let Vulkan's layers and drivers print their own diagnostics, and say how the driver was found (same as DEEPWGSL_VERBOSE=1). */
  verbose?: boolean;
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

// SwiftShader (Debian's chromium ships it) lies outside the Vulkan loader's search path; Mesa's lavapipe is found by the loader itself.
const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

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

type Dawn = { create: (flags: string[]) => GPU; globals: Record<string, unknown> };

/** The `webgpu` package: an optional peer dependency, so a missing one is the user's next step, not a stack trace. */
async function loadDawn(): Promise<Dawn> {
  try {
    return (await import('webgpu')) as Dawn;
  } catch (e) {
    const err = e as { code?: string; message?: string };
    if (err.code === 'ERR_MODULE_NOT_FOUND' && err.message?.includes("'webgpu'")) {
      throw new GpuError("createContext: Node has no WebGPU of its own; it needs the 'webgpu' package (Dawn), which is not installed. Run: npm install webgpu");
    }
    throw e;
  }
}

/**
 * Keeps native chatter off stderr unless `verbose`: without a desktop session (no XDG_RUNTIME_DIR),
 * Mesa's device-select layer probes Wayland to order the GPUs and libwayland prints that it cannot.
 * NODEVICE_SELECT is the layer's own off switch; Dawn and wgpu rank adapters themselves.
 */
function quietVulkanLayers(verbose: boolean): void {
  if (verbose || envVar('XDG_RUNTIME_DIR') || envVar('MESA_VK_DEVICE_SELECT') !== undefined || envVar('NODEVICE_SELECT') !== undefined) return;
  setEnvVar('NODEVICE_SELECT', '1');
}

async function nodeGpu(log: (l: string) => void, verbose: boolean): Promise<GPU> {
  const webgpu = await loadDawn();
  for (const [k, v] of Object.entries(webgpu.globals)) {
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  }
  const create = (): GPU => {
    const gpu = webgpu.create(DAWN_FLAGS);
    instances.push(gpu);
    return gpu;
  };
  const fs = await import('node:fs');
  if (envVar('VK_ICD_FILENAMES') || envVar('VK_DRIVER_FILES') || !fs.existsSync(SWIFTSHADER_ICD)) return create();
  // One instance sees the system's drivers and SwiftShader: Dawn ranks every GPU before a CPU adapter.
  // Lavapipe is hidden where SwiftShader serves: Dawn 0.6 refuses Mesa 22's (and says so on stderr).
  setEnvVar('VK_ADD_DRIVER_FILES', [envVar('VK_ADD_DRIVER_FILES'), SWIFTSHADER_ICD].filter(Boolean).join(':'));
  if (!envVar('VK_LOADER_DRIVERS_SELECT') && !envVar('VK_LOADER_DRIVERS_DISABLE')) setEnvVar('VK_LOADER_DRIVERS_DISABLE', '*lvp_icd*');
  if (verbose) log(`deepwgsl: Vulkan drivers: the system's (lavapipe hidden) and SwiftShader (${SWIFTSHADER_ICD}), which serves only where no GPU does`);
  const gpu = create();
  if (await gpu.requestAdapter()) return gpu;
  // A Vulkan loader that predates VK_ADD_DRIVER_FILES ignores it: SwiftShader alone, as the only driver.
  setEnvVar('VK_ICD_FILENAMES', SWIFTSHADER_ICD);
  if (verbose) log(`deepwgsl: no adapter through the system's Vulkan loader; using the software driver ${SWIFTSHADER_ICD} alone`);
  return create();
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
  const verbose = options.verbose ?? envFlag('DEEPWGSL_VERBOSE');
  const rt = runtime();
  let adapter: GPUAdapter | null = null;
  const req: GPURequestAdapterOptions = options.powerPreference ? { powerPreference: options.powerPreference } : {};
  if (rt !== 'browser') quietVulkanLayers(verbose);
  if (rt === 'node' && !(globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu) {
    adapter = await (await nodeGpu(log, verbose)).requestAdapter(req);
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
