// A CLI command: its usage lines, its own options, and what it runs. main.ts only dispatches.
// Every flag is parsed strictly here (decimal digits for integers, the flag's name in each error),
// before a GPU is opened or a file read.
import type { ParseArgsConfig } from 'node:util';
import type { GpuContext } from '../gpu/context.ts';

export type Values = Record<string, string | boolean | undefined>;

export interface Command {
  name: string;
  /** Usage lines, printed by `deepwgsl --help`. */
  usage: string[];
  options: NonNullable<ParseArgsConfig['options']>;
  /** `gpu()` opens the device on first call: a command checks its flags first, and one that needs no GPU never opens it. */
  run(values: Values, gpu: () => Promise<GpuContext>): Promise<void>;
}

export function out(line = ''): void {
  console.log(line);
}

/** Integers the CLI takes are at most this (sizes, counts and seeds go to i32/u32 on the GPU or in the samplers). */
const MAX_FLAG_INT = 2 ** 32 - 1;

const flagText = (values: Values, name: string): string => {
  const v = values[name];
  if (typeof v !== 'string') throw new Error(`--${name}: expected a value`);
  return v;
};

/** An integer flag in min..max, written in decimal digits: `--iters abc`, '0x10', '1e1' and '' are errors, not NaN or a surprise. */
export function int(values: Values, name: string, min = 1, max = MAX_FLAG_INT): number {
  const v = flagText(values, name);
  const n = Number(v);
  if (!/^-?\d+$/.test(v) || n < min || n > max) throw new Error(`--${name}: expected an integer in ${min}..${max}, got '${v}'`);
  return n;
}

/** A finite number flag written in decimal (a fraction and exponent allowed), in [min, max] (above `min` when `open`; max may be Infinity). */
export function float(values: Values, name: string, min: number, max: number, open = false): number {
  const v = flagText(values, name);
  const n = Number(v);
  if (!/^-?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(v) || !Number.isFinite(n) || !(open ? n > min : n >= min) || !(n <= max)) {
    const range = max === Infinity ? `a finite number ${open ? '>' : '>='} ${min}` : `a number in ${open ? '(' : '['}${min}, ${max}]`;
    throw new Error(`--${name}: expected ${range}, got '${v}'`);
  }
  return n;
}

/** A flag that takes one of `choices`: an unknown value is an error, never ignored. */
export function choice<T extends string>(values: Values, name: string, choices: readonly T[]): T {
  const v = values[name];
  if (!choices.includes(v as T)) throw new Error(`--${name}: expected ${choices.map((c) => `'${c}'`).join(' or ')}, got ${v === undefined ? 'nothing' : `'${v}'`}`);
  return v as T;
}

/** Files the CLI reads whole (load counters, --compare logits) are at most this: JSON.parse holds a few times it in memory. */
export const MAX_INPUT_BYTES = 256 * 2 ** 20;

/** A file's text, read in chunks and refused past `max` bytes (`/dev/zero` or a stray log does not fill memory). */
export async function readInput(path: string, flag: string, max = MAX_INPUT_BYTES): Promise<string> {
  const fs = await import('node:fs/promises');
  let fh;
  try {
    fh = await fs.open(path, 'r');
  } catch (e) {
    throw new Error(`--${flag} ${path}: cannot open (${(e as Error).message})`);
  }
  try {
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const buf = new Uint8Array(Math.min(2 ** 20, max + 1 - total));
      const { bytesRead } = await fh.read(buf, 0, buf.length, null).catch((e: Error) => {
        throw new Error(`--${flag} ${path}: cannot read (${e.message})`);
      });
      if (bytesRead === 0) break;
      chunks.push(buf.subarray(0, bytesRead));
      total += bytesRead;
      if (total > max) throw new Error(`--${flag} ${path}: over ${max} bytes; not the file this flag takes`);
    }
    const all = new Uint8Array(total);
    chunks.reduce((at, c) => (all.set(c, at), at + c.byteLength), 0);
    return new TextDecoder().decode(all);
  } finally {
    await fh.close();
  }
}

/** Throws where `path` exists and `force` is off (checked again at the write: a long run refuses before it starts). */
export async function refuseExisting(path: string, flag: string, force: boolean): Promise<void> {
  const fs = await import('node:fs/promises');
  if (!force && (await fs.lstat(path).then(() => true, () => false))) throw new Error(`--${flag} ${path}: the file exists; pass --force to replace it`);
}

/**
 * Writes an output file the user named: never over an existing one unless `force`, and through a
 * temporary name renamed into place, so a reader never sees half a file and a failed write leaves
 * the old one.
 */
export async function writeOutput(path: string, data: string, flag: string, force: boolean): Promise<void> {
  const fs = await import('node:fs/promises');
  await refuseExisting(path, flag, force);
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    await fs.writeFile(tmp, data, { flag: 'wx' });
    await fs.rename(tmp, path);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw new Error(`--${flag} ${path}: cannot write (${(e as Error).message})`);
  }
}

/** Refuses, naming the flags, buffers over the device's limits, before their data is made on the host. */
export function checkBuffers(ctx: GpuContext, flags: string, buffers: Record<string, number>): void {
  const limit = Math.min(ctx.limits.maxBufferSize, ctx.limits.maxStorageBufferBindingSize);
  for (const [what, bytes] of Object.entries(buffers)) {
    if (bytes > limit) throw new Error(`${flags}: ${what} needs ${bytes} bytes in one buffer, over this device's limit of ${limit} (maxBufferSize, maxStorageBufferBindingSize)`);
  }
}
