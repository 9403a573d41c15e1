// A strict TypeScript app against the installed package's types (tests/package/run.mjs checks it with
// tsc and deno check). Each @ts-expect-error must stay an error: were the types to degrade to `any`,
// the check would fail on the unused directive.
import { createContext, d, fp8GemmNT, perTokenCastToFp8, planKernel, uploadTensor, type Fp8Cast, type GpuContext, type KernelSpec, type Tensor } from 'deepwgsl';

const ctx: GpuContext = await createContext({ log: () => {} });
// WebGPU's types come with deepwgsl's: no @webgpu/types in this project's own settings.
const device: GPUDevice = ctx.device;
const cast: Fp8Cast = perTokenCastToFp8(new Float32Array(256), 2, 128);
const q: Uint8Array = cast.q;
const a: Tensor = uploadTensor(ctx, q, [2, 128], 'e4m3');
const params = d.struct({ n: d.u32, grid_x: d.u32 });
const spec: Pick<KernelSpec, 'params' | 'values'> = { params, values: { n: 1 } };

// @ts-expect-error m is a number, not a string
perTokenCastToFp8(new Float32Array(256), '2', 128);
// @ts-expect-error fp8GemmNT takes tensors, not host arrays
await fp8GemmNT(ctx, new Float32Array(4), [a, a], a);
// @ts-expect-error 'e4m4' is not a dtype
uploadTensor(ctx, q, [2, 128], 'e4m4');
// @ts-expect-error planKernel needs a KernelSpec, not a WGSL string
await planKernel(ctx, '@compute fn main() {}');

console.log(device.label, spec.values, a.shape);
