// Node driver: vitest + the `webgpu` package (Dawn), on SwiftShader when there is no GPU.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createContext, type GpuContext } from '../src/gpu/context.ts';
import { checks, seed } from './conformance/checks.ts';
import { missingFeatures, runCheck } from './conformance/runner.ts';

let ctx: GpuContext;
const tally = { passed: 0, failed: 0, skipped: 0 };

beforeAll(async () => {
  ctx = await createContext({ log: (l) => console.log(l) });
  console.log(`node: ${ctx.describe()}; seed ${seed}`);
});

afterAll(() => {
  console.log(`node: ${tally.passed} passed, ${tally.failed} failed, ${tally.skipped} skipped`);
  ctx?.destroy();
});

describe('conformance (node, Dawn)', () => {
  for (const check of checks) {
    it(check.name, async (t) => {
      const missing = missingFeatures(ctx, check);
      if (missing.length) {
        tally.skipped++;
        t.skip(`adapter lacks ${missing.join(', ')}`);
      }
      const o = await runCheck(ctx, check);
      tally[o.status === 'pass' ? 'passed' : 'failed']++;
      expect(o.status, o.detail).toBe('pass');
    });
  }
});
