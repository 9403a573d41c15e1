// The unfused MLA baseline that `bench --mla` times beside the fused kernel, to show what fusion buys:
// a gather of each sequence's cache rows (shaders/mla/unfused_gather.wgsl), per sequence a QK^T GEMM
// (bf16GemmNT's kernels, f32 scores), one softmax pass over all rows (shaders/mla/unfused_softmax.wgsl)
// and per sequence a P.V GEMM; all in one pass. Dense, non-causal, bf16 cache with one kv head,
// every seqlen >= 1 (what the bench runs); per-sequence operands are bound at offsets, so q rows
// of one sequence (s_q * h_q * d bf16) must be a multiple of the storage offset alignment.
import * as d from 'typegpu/data';
import type { GpuContext } from '../../gpu/context.ts';
import { fail } from '../../gpu/errors.ts';
import { createTensor, DTYPE_BYTES, expectTensor, Tensor, uploadTensor } from '../../gpu/tensor.ts';
import { Launch, planKernel } from '../../jit/launch.ts';
import { denseProblem, planGemm } from '../gemm/gemm.ts';
import wgReduceWgsl from '../../../shaders/common/wg_reduce.wgsl';
import gatherWgsl from '../../../shaders/mla/unfused_gather.wgsl';
import softmaxWgsl from '../../../shaders/mla/unfused_softmax.wgsl';

const WHERE = 'unfusedMla';
const PAD = 64;
const WG = 256;
const GatherParams = d.struct({ pairs: d.u32, k_pitch_words: d.u32, grid_x: d.u32 });
const SoftmaxParams = d.struct({ m: d.u32, h_q: d.u32, s_q: d.u32, scale: d.f32, grid_x: d.u32 });

export interface UnfusedMlaArgs {
  /** [b, s_q, h_q, d] bf16. */
  q: Tensor;
  /** [numBlocks, blockSize, 1, d] bf16. */
  kcache: Tensor;
  /** Host copies of the block table [b, maxBlocks] and the seqlens [b]. */
  blockTable: Int32Array;
  seqlens: Int32Array;
  headDimV: number;
  softmaxScale?: number;
}

export interface UnfusedMla {
  launch: Launch;
  /** [b, s_q, h_q, dv] f32 and [b, h_q, s_q] f32. */
  out: Tensor;
  lse: Tensor;
  destroy(): void;
}

const sub = (t: Tensor, shape: number[], elemOffset: number) => new Tensor(t.ctx, t.buffer, shape, t.dtype, t.byteOffset + elemOffset * DTYPE_BYTES[t.dtype]);

export async function planUnfusedMla(ctx: GpuContext, a: UnfusedMlaArgs): Promise<UnfusedMla> {
  const q = expectTensor(WHERE, 'q', a.q, { dtype: 'bf16' });
  const [b, sQ, hQ, dim] = q.shape;
  const k = expectTensor(WHERE, 'kcache', a.kcache, { dtype: 'bf16', shape: [null, null, 1, dim] });
  const [numBlocks, bs] = k.shape;
  const dv = a.headDimV;
  const m = sQ * hQ;
  const align = ctx.limits.minStorageBufferOffsetAlignment;
  if ((m * dim * 2) % align !== 0 || dim % 2 !== 0 || dv % 2 !== 0) fail(WHERE, 'q', `rows of one sequence (s_q*h_q*d*2 bytes) a multiple of ${align}, d and dv even`, `s_q*h_q=${m}, d=${dim}, dv=${dv}`);
  if (a.seqlens.length !== b || a.seqlens.some((n) => n < 1)) fail(WHERE, 'seqlens', `${b} lengths >= 1`, Array.from(a.seqlens));
  const maxBlocks = a.blockTable.length / b;
  const padded = Array.from(a.seqlens, (n) => Math.ceil(n / PAD) * PAD);
  const starts = padded.map((_, i) => padded.slice(0, i).reduce((x, y) => x + y, 0));
  const total = starts[b - 1] + padded[b - 1];
  const rows = new Int32Array(total).fill(-1);
  const seg = new Uint32Array((2 * total) / PAD);
  a.seqlens.forEach((n, i) => {
    for (let j = 0; j < n; j++) {
      const blk = a.blockTable[i * maxBlocks + Math.floor(j / bs)];
      if (!(blk >= 0 && blk < numBlocks)) fail(WHERE, `blockTable[${i}, ${Math.floor(j / bs)}]`, `a block id in 0..${numBlocks - 1}`, blk);
      rows[starts[i] + j] = blk * bs + (j % bs);
    }
    for (let s = starts[i] / PAD; s < (starts[i] + padded[i]) / PAD; s++) seg.set([starts[i], padded[i]], 2 * s);
  });
  const owned: Tensor[] = [
    uploadTensor(ctx, rows, [total], 'i32', 'unfused-rows'),
    uploadTensor(ctx, seg, [seg.length], 'u32', 'unfused-seg'),
    uploadTensor(ctx, Uint32Array.from(Array.from(a.seqlens).flatMap((n, i) => [starts[i], padded[i], n, 0])), [b, 4], 'u32', 'unfused-seqs'),
    createTensor(ctx, [total, dim], 'bf16', 'unfused-k'),
    createTensor(ctx, [dv * total], 'bf16', 'unfused-vt'),
    createTensor(ctx, [m * total], 'f32', 'unfused-s'),
  ];
  const [rowsT, segT, seqsT, kc, vt, s] = owned;
  const out = createTensor(ctx, [b, sQ, hQ, dv], 'f32', 'unfused-out');
  const lse = createTensor(ctx, [b, hQ, sQ], 'f32', 'unfused-lse');
  const launches: Launch[] = [];
  launches.push(
    await planKernel(ctx, {
      module: { kernel: 'mla.unfused_gather', config: { dim, dv }, template: { file: 'mla/unfused_gather.wgsl', code: gatherWgsl }, consts: { WG, DW: dim / 2, DV: dv }, structs: { Params: GatherParams } },
      params: GatherParams,
      values: { pairs: total / 2, k_pitch_words: dim / 2 },
      bindings: [k.binding(WHERE, 'kcache'), rowsT.binding(WHERE, 'rows'), segT.binding(WHERE, 'seg'), kc.binding(WHERE, 'k'), vt.binding(WHERE, 'vt')],
      workgroups: Math.ceil(((total / 2) * (dim / 2)) / WG),
      bytes: total * dim * 6,
      flops: 0,
    }),
  );
  const gemm = async (x: Tensor, y: Tensor, o: Tensor) => planGemm(ctx, 'bf16GemmNT', denseProblem('bf16GemmNT', false, { a: x, b: y }, o));
  const qi = (i: number) => sub(q, [m, dim], i * m * dim);
  const si = (i: number) => sub(s, [m, padded[i]], m * starts[i]);
  for (let i = 0; i < b; i++) launches.push(await gemm(qi(i), sub(kc, [padded[i], dim], starts[i] * dim), si(i)));
  launches.push(
    await planKernel(ctx, {
      module: {
        kernel: 'mla.unfused_softmax',
        config: {},
        template: { file: 'mla/unfused_softmax.wgsl', code: softmaxWgsl },
        helpers: [{ file: 'common/wg_reduce.wgsl', code: wgReduceWgsl }],
        consts: { WG },
        structs: { Params: SoftmaxParams },
      },
      params: SoftmaxParams,
      values: { m, h_q: hQ, s_q: sQ, scale: a.softmaxScale ?? 1 / Math.sqrt(dim) },
      bindings: [s.binding(WHERE, 's'), seqsT.binding(WHERE, 'seqs'), lse.binding(WHERE, 'lse')],
      workgroups: b * m,
      bytes: m * total * 12,
      flops: 0,
    }),
  );
  for (let i = 0; i < b; i++) launches.push(await gemm(si(i), sub(vt, [dv, padded[i]], dv * starts[i]), sub(out, [m, dv], i * m * dv)));
  const flops = launches.reduce((x, l) => x + l.info.flops, 0);
  const bytes = launches.reduce((x, l) => x + l.info.bytes, 0);
  const launch = new Launch(ctx, launches.flatMap((l) => l.dispatches), { kernel: 'mla.unfused', config: { gemms: 2 * b }, bytes, flops });
  return {
    launch,
    out,
    lse,
    destroy() {
      for (const l of launches) l.destroy();
      for (const t of [...owned, out, lse]) t.destroy();
    },
  };
}
