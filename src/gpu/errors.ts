// Errors that say what was expected and what came.

export class DeepwgslError extends Error {
  override name = 'DeepwgslError';
}

/** A WebGPU validation/out-of-memory/internal error or device loss, with the implementation's message. */
export class GpuError extends DeepwgslError {
  override name = 'GpuError';
}

export function fail(where: string, arg: string, expected: string, got: unknown): never {
  throw new DeepwgslError(`${where}: ${arg} must be ${expected}, got ${formatValue(got)}`);
}

export function formatValue(v: unknown): string {
  if (Array.isArray(v)) return `[${v.join(', ')}]`;
  if (typeof v === 'string') return `'${v}'`;
  return String(v);
}
