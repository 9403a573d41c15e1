// deepwgsl in a web page, bundled by Vite: the 128x128 FP8 weight cast on the GPU, checked against
// the library's CPU cast. window.__deepwgsl holds the outcome for scripts (the consumer test reads it).
import { createContext, perBlockCastToFp8, perBlockCastToFp8Gpu, readTensor, readTensorBits, uploadTensor } from 'deepwgsl';

const show = (line) => (document.querySelector('#out').textContent = line);
try {
  const ctx = await createContext({ log: show });
  const [n, k] = [256, 384];
  const w = Float32Array.from({ length: n * k }, () => (Math.random() - 0.5) * 10 ** (Math.random() * 4 - 2));
  const gpu = await perBlockCastToFp8Gpu(ctx, uploadTensor(ctx, w, [n, k], 'f32'));
  const cpu = perBlockCastToFp8(w, n, k);
  const [q, scales] = [await readTensorBits(gpu.q), await readTensor(gpu.scales)];
  const mismatches = cpu.q.filter((v, i) => v !== q[i]).length + cpu.scales.filter((v, i) => v !== scales[i]).length;
  show(`perBlockCastToFp8Gpu [${n}, ${k}] on ${ctx.describe()}: ${mismatches} mismatches against perBlockCastToFp8`);
  window.__deepwgsl = { mismatches, adapter: ctx.describe() };
} catch (e) {
  show(`deepwgsl failed: ${e.message}`);
  window.__deepwgsl = { error: e.message };
}
