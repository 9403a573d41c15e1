// A CLI command: its usage lines, its own options, and what it runs. main.ts only dispatches.
import type { ParseArgsConfig } from 'node:util';
import type { GpuContext } from '../gpu/context.ts';

export type Values = Record<string, string | boolean | undefined>;

export interface Command {
  name: string;
  /** Usage lines, printed by `deepwgsl --help`. */
  usage: string[];
  options: NonNullable<ParseArgsConfig['options']>;
  /** Commands that need no GPU (eplb, info) get no context. */
  gpu: boolean;
  run(values: Values, ctx: GpuContext | undefined): Promise<void>;
}

export function out(line = ''): void {
  console.log(line);
}

/** A numeric option, checked: `--iters abc` is an error, not NaN. */
export function num(values: Values, name: string): number {
  const v = Number(values[name]);
  if (!Number.isFinite(v)) throw new Error(`--${name}: expected a number, got '${values[name]}'`);
  return v;
}
