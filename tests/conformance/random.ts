// Seeded random inputs: fresh each run (seed printed), reproducible with DEEPWGSL_SEED.
import { envVar } from '../../src/gpu/env.ts';

export function runSeed(): number {
  const s = envVar('DEEPWGSL_SEED');
  return s !== undefined ? Number(s) : (Date.now() ^ (Math.random() * 2 ** 31)) >>> 0;
}

// The generator the samplers use (mulberry32).
export { seededRandom as mulberry32 } from '../../src/model/sampling.ts';

/** Values spread over magnitudes 10^lo..10^hi with random signs (never all zeros). */
export function randomSpread(rand: () => number, n: number, lo = -3, hi = 3): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (rand() < 0.5 ? -1 : 1) * 10 ** (lo + (hi - lo) * rand());
  return out;
}
