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

export function envFlag(name: string): boolean {
  const v = envVar(name);
  return v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
}
