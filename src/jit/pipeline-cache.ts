// Compiled pipelines cached per device by (kernel, config, device features). Compile errors come
// back with the generated source, numbered, and the .wgsl file and line each message points at.
import type { GpuContext } from '../gpu/context.ts';
import { DeepwgslError } from '../gpu/errors.ts';
import { composeWgsl, numberLines, sourceLocation, type KernelModule } from './compose.ts';

export class WgslCompileError extends DeepwgslError {
  override name = 'WgslCompileError';
  constructor(
    readonly kernel: string,
    readonly messages: { line: number; column: number; message: string; where: string }[],
    readonly code: string,
  ) {
    super(
      `WGSL compile error in ${kernel}:\n` +
        messages.map((m) => `  line ${m.line}:${m.column} (${m.where}): ${m.message}`).join('\n') +
        `\n--- generated source ---\n${numberLines(code, new Set(messages.map((m) => m.line)))}`,
    );
  }
}

export class PipelineCache {
  private readonly pipelines = new Map<string, Promise<GPUComputePipeline>>();
  constructor(private readonly ctx: GpuContext) {}

  get size(): number {
    return this.pipelines.size;
  }

  keyOf(m: KernelModule): string {
    return `${m.kernel}|${JSON.stringify(m.config)}|${[...this.ctx.features].sort().join(',')}`;
  }

  /** Generated source per cache key, and the key each kernel used last. */
  private readonly sources = new Map<string, string>();
  private readonly lastKey = new Map<string, string>();
  private readonly overrides = new Map<string, string>();

  /** The module last generated for a kernel (what the playground shows). */
  sourceOf(kernel: string): string | undefined {
    const key = this.lastKey.get(kernel);
    return key === undefined ? undefined : this.sources.get(key);
  }

  /** Replaces a kernel's generated WGSL with hand-edited source until cleared (the playground's edits). */
  override(kernel: string, code: string | undefined): void {
    if (code === undefined) this.overrides.delete(kernel);
    else this.overrides.set(kernel, code);
  }

  /** The pipeline for this module, compiled once. */
  get(m: KernelModule): Promise<GPUComputePipeline> {
    const edited = this.overrides.get(m.kernel);
    const key = edited === undefined ? this.keyOf(m) : `${m.kernel}|edited|${edited}`;
    this.lastKey.set(m.kernel, key);
    let p = this.pipelines.get(key);
    if (!p) {
      const code = edited ?? composeWgsl(m);
      this.sources.set(key, code);
      p = this.compile(m.kernel, code);
      this.pipelines.set(key, p);
      p.catch(() => this.pipelines.delete(key));
    }
    return p;
  }

  /** Compiles WGSL source as it is (the playground's edited modules come through here). */
  async compile(kernel: string, code: string): Promise<GPUComputePipeline> {
    const { device } = this.ctx;
    if (this.ctx.jitDebug) console.error(`// ===== deepwgsl JIT: ${kernel}\n${numberLines(code)}`);
    const fail = (message: string, where: string) => new WgslCompileError(kernel, [{ line: 0, column: 0, message, where }], code);
    device.pushErrorScope('validation');
    const module = device.createShaderModule({ code, label: kernel });
    const info = await module.getCompilationInfo();
    const scopeError = await device.popErrorScope();
    const errors = info.messages.filter((m) => m.type === 'error');
    if (errors.length) {
      throw new WgslCompileError(
        kernel,
        errors.map((m) => ({ line: m.lineNum, column: m.linePos, message: m.message, where: sourceLocation(code, m.lineNum) })),
        code,
      );
    }
    if (scopeError) throw fail(scopeError.message, 'module');
    const desc: GPUComputePipelineDescriptor = { label: kernel, layout: 'auto', compute: { module, entryPoint: 'main' } };
    try {
      return await device.createComputePipelineAsync(desc);
    } catch (e) {
      throw fail((e as Error).message, 'pipeline');
    }
  }
}
