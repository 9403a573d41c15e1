// What a conformance check is, and the helpers every check file shares.
import type { GpuContext } from '../../src/gpu/context.ts';
import { mulberry32, runSeed } from './random.ts';

export interface CheckResult {
  err: number;
  tol: number;
  note?: string;
}

export interface Check {
  name: string;
  /** Device features the check exercises; where absent it is reported as skipped. */
  needs?: string[];
  run(ctx: GpuContext): Promise<CheckResult>;
}

export const seed = runSeed();
export const rand = mulberry32(seed);

export function mismatches(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let n = a.length === b.length ? 0 : Infinity;
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) n++;
  return n;
}

/** Max |out - ref| / max |ref|: the error measure every kernel check reports. */
export function relErr(out: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (out.length !== ref.length) return Infinity;
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(out[i] - ref[i]);
    num = Number.isNaN(d) ? Infinity : Math.max(num, d);
    den = Math.max(den, Math.abs(ref[i]));
  }
  return den === 0 ? num : num / den;
}

/** 1 if f throws an error whose message matches re, else 0 (so a missing error fails the check). */
export async function throwsLike(f: () => unknown, re: RegExp): Promise<number> {
  try {
    await f();
  } catch (e) {
    return re.test((e as Error).message) ? 0 : 1;
  }
  return 1;
}
