// A kernel of your own through deepwgsl's JIT: a WGSL template with holes, filled from a config and
// a typegpu struct, planned into a Launch, checked against the CPU, timed, and two configs autotuned.
import { autotune, composeWgsl, createContext, createTensor, d, MemoryTuningStore, planKernel, readTensor, timeLaunch, uploadTensor } from 'deepwgsl';

// out = alpha * x + y. Holes: WG (a const from the config) and Params (the uniform struct).
const code = `
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * params.grid_x) * WG + lid;
  if (i < params.n) { out[i] = params.alpha * x[i] + y[i]; }
}`;
// grid_x: planKernel fills it in, for grids split over x and y past the per-dimension limit.
const Params = d.struct({ n: d.u32, alpha: d.f32, grid_x: d.u32 });
const axpyModule = (config) => ({ kernel: 'example.axpy', config, template: { file: 'axpy.wgsl', code }, consts: { WG: config.wg }, structs: { Params } });

const ctx = await createContext();
const [n, alpha] = [1 << 18, 0.75];
const random = () => Float32Array.from({ length: n }, () => Math.random() * 2 - 1);
const [xs, ys] = [random(), random()];
const [x, y, out] = [uploadTensor(ctx, xs, [n], 'f32'), uploadTensor(ctx, ys, [n], 'f32'), createTensor(ctx, [n], 'f32')];
const plan = (config) =>
  planKernel(ctx, {
    module: axpyModule(config),
    params: Params,
    values: { n, alpha },
    bindings: [x.binding('axpy', 'x'), y.binding('axpy', 'y'), out.binding('axpy', 'out')],
    workgroups: Math.ceil(n / config.wg),
    bytes: 12 * n,
    flops: 2 * n,
  });

console.log(composeWgsl(axpyModule({ wg: 64 }))); // the generated module: prelude, struct, template
const launch = await plan({ wg: 64 });
await launch.run();
const got = await readTensor(out);
const err = xs.reduce((worst, v, i) => Math.max(worst, Math.abs(got[i] - (alpha * v + ys[i]))), 0);
const t = await timeLaunch(ctx, launch);
console.log(`axpy n=${n}: max error ${err.toExponential(2)}; ${t.medianMs.toFixed(4)} ms, ${(launch.info.bytes / t.medianMs / 1e6).toFixed(1)} GB/s (${t.method})`);

// Autotune times each candidate through the same plan and remembers the winner per GPU and shape.
const tuned = await autotune(ctx, { kernel: 'example.axpy', shapeKey: `n=${n}`, candidates: [{ wg: 64 }, { wg: 256 }], plan, store: new MemoryTuningStore() });
for (const r of tuned.results) console.log(`  ${JSON.stringify(r.config)}: ${r.medianMs.toFixed(4)} ms`);
console.log(`autotune picked ${JSON.stringify(tuned.best)} (${tuned.method})`);
ctx.destroy();
if (!(err < 1e-6)) throw new Error(`axpy: max error ${err} against the CPU`);
