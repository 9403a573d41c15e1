// deepwgsl from npm in Node (and unchanged in Deno): an FP8 cast and an FP8 GEMM on the GPU, each
// checked against the library's CPU reference.
import {
  createContext,
  createTensor,
  decodeE4M3,
  fp8GemmNT,
  gemmReference,
  perBlockCastToFp8,
  perTokenCastToFp8,
  perTokenCastToFp8Gpu,
  readTensor,
  readTensorBits,
  uploadTensor,
} from 'deepwgsl';

const ctx = await createContext(); // prints one line naming the adapter
const [m, n, k] = [16, 256, 512];
const random = (length) => Float32Array.from({ length }, () => (Math.random() - 0.5) * 10 ** (Math.random() * 4 - 2));
const x = random(m * k); // activations [m, k]
const w = random(n * k); // weights [n, k]

// Activations to e4m3 with one scale per 1x128 group, on the GPU: the same bits as the CPU cast.
const a = await perTokenCastToFp8Gpu(ctx, uploadTensor(ctx, x, [m, k], 'f32'));
const cpu = perTokenCastToFp8(x, m, k);
const [aq, as] = [await readTensorBits(a.q), await readTensor(a.scales)];
const castMismatches = cpu.q.filter((v, i) => v !== aq[i]).length + cpu.scales.filter((v, i) => v !== as[i]).length;

// Weights cast on the CPU (one scale per 128x128 block), then out [m, n] = A @ B.T on the GPU.
const wq = perBlockCastToFp8(w, n, k);
const b = uploadTensor(ctx, wq.q, [n, k], 'e4m3');
const bScales = uploadTensor(ctx, wq.scales, [Math.ceil(n / 128), Math.ceil(k / 128)], 'f32');
const out = createTensor(ctx, [m, n], 'f32');
await fp8GemmNT(ctx, [a.q, a.scales], [b, bScales], out);
const got = await readTensor(out);
const ref = gemmReference({ x: Array.from(cpu.q, decodeE4M3), scales: cpu.scales }, { x: Array.from(wq.q, decodeE4M3), scales: wq.scales }, m, n, k);
const maxAbs = (xs) => xs.reduce((acc, v) => Math.max(acc, Math.abs(v)), 0);
const gemmErr = maxAbs(ref.map((r, i) => got[i] - r)) / maxAbs(ref);

console.log(`perTokenCastToFp8Gpu [${m}, ${k}]: ${castMismatches} mismatches against perTokenCastToFp8`);
console.log(`fp8GemmNT [${m}, ${n}, ${k}]: max|out - ref| / max|ref| = ${gemmErr.toExponential(2)}`);
ctx.destroy();
if (castMismatches > 0 || !(gemmErr < 1e-5)) throw new Error('deepwgsl disagrees with its CPU reference');
