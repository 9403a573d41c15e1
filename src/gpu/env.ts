// Runtime detection and environment variables, the same in Node, Deno and a browser tab.
export type Runtime = 'node' | 'deno' | 'browser';

export function runtime(): Runtime {
  const g = globalThis as { Deno?: unknown; document?: unknown; process?: { versions?: { node?: string } } };
  if (g.Deno !== undefined) return 'deno';
  if (g.process?.versions?.node !== undefined && g.document === undefined) return 'node';
  return 'browser';
}

/** An environment variable in Node/Deno; in a browser, `globalThis[name]` lets a page set the same switches. */
export function envVar(name: string): string | undefined {
  const g = globalThis as { process?: { env?: Record<string, string | undefined> } } & Record<string, unknown>;
  const fromProcess = g.process?.env?.[name];
  if (fromProcess !== undefined) return fromProcess;
  const v = g[name];
  return typeof v === 'string' ? v : undefined;
}

export function setEnvVar(name: string, value: string): void {
  const g = globalThis as { process?: { env?: Record<string, string | undefined> } };
  if (g.process?.env) g.process.env[name] = value;
}

/** A comma-separated list of positive integers (`1,8`), or undefined when unset; `where` names the caller in the error. */
export function envPositiveInts(name: string, where: string): number[] | undefined {
  const v = envVar(name);
  const xs = v?.split(',').map(Number);
  if (xs && !xs.every((x) => Number.isInteger(x) && x >= 1)) throw new Error(`${where}: ${name} must list positive integers, got '${v}'`);
  return xs;
}

export function envFlag(name: string): boolean {
  const v = envVar(name);
  return v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
}
