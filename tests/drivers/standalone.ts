// Conformance driver outside vitest: Deno (wgpu; lavapipe without a GPU) in `npm test`, and Deno
// or Node on a real GPU (the accelerator machine runs this bundle). Exits non-zero on a failure.
import { createContext } from '../../src/gpu/context.ts';
import { runtime } from '../../src/gpu/env.ts';
import { runAll } from '../conformance/runner.ts';

const ctx = await createContext({ log: (l) => console.log(l) });
const { failed } = await runAll(ctx, runtime(), (l) => console.log(l));
ctx.destroy();
process.exit(failed ? 1 : 0);
