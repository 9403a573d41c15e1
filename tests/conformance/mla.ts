// MLA decode conformance: flashMlaWithKvcache against the float64 reference with upstream's test
// habits (unused cache rows NaN, block-table entries past the used blocks invalid, shuffled tables,
// zero-length sequences), appendKvcache bit-exact against the host encoding, and bad-input errors.
import type { GpuContext } from '../../src/gpu/context.ts';
import { envVar } from '../../src/gpu/env.ts';
import { poisonTensor, readTensor, readTensorBits, uploadTensor, type Tensor } from '../../src/gpu/tensor.ts';
import { decodeBF16, decodeF16, encodeBF16, encodeF16 } from '../../src/formats/half.ts';
import { BlockAllocator, INVALID_BLOCK } from '../../src/kernels/mla/allocator.ts';
import { planAppendKvcache } from '../../src/kernels/mla/append.ts';
import { decodeKvRow, encodeKvRow, kvLayout, type KvFormat, type KvLayout } from '../../src/kernels/mla/kvformat.ts';
import { getMlaMetadata, planFlashMla, type FlashMlaArgs, type MlaActDtype, type MlaConfig, type MlaSchedMeta } from '../../src/kernels/mla/mla.ts';
import { mlaReference } from '../../src/kernels/mla/reference.ts';
import { planUnfusedMla } from '../../src/kernels/mla/unfused.ts';
import { mismatches, rand, relErr, throwsLike, type Check, type CheckResult } from './check.ts';

export interface MlaCase {
  b: number;
  sQ: number;
  hQ: number;
  hKv?: number;
  d: number;
  dv: number;
  blockSize?: number;
  /** Sequence lengths (dense) or the cache filled for sparse. */
  seqlens: number[];
  causal?: boolean;
  kvFormat?: KvFormat;
  qDtype?: MlaActDtype;
  sparse?: { topk: number; withLength?: boolean };
  sink?: boolean;
  parts?: number;
  config?: Partial<MlaConfig>;
  /** fp8: each tile's scale times a random factor, so e4m3 x scale needs the bf16 rounding (the encoder's powers of two never do). */
  oddScales?: boolean;
}

function oddenScales(layout: KvLayout, enc: number[]): number[] {
  const bytes = Uint8Array.from(enc);
  const view = new DataView(bytes.buffer);
  for (let t = 0; t < layout.tiles; t++) view.setFloat32(layout.dNope + 4 * t, view.getFloat32(layout.dNope + 4 * t, true) * (1 + rand()), true);
  return Array.from(bytes);
}

const uniform = (n: number) => Array.from({ length: n }, () => rand() * 2 - 1);
const roundTo = (dtype: MlaActDtype, v: number) => (dtype === 'bf16' ? decodeBF16(encodeBF16(v)) : dtype === 'f16' ? decodeF16(encodeF16(v)) : Math.fround(v));
const NAN_BITS: Record<KvFormat, number> = { bf16: 0x7fc0, f16: 0x7e00, fp8: 0xff };

/** Max relative error of lse over its finite entries; an +inf (nothing attended) must match exactly. */
function lseErr(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  const fin: number[] = [];
  const finRef: number[] = [];
  for (let i = 0; i < ref.length; i++) {
    if (ref[i] === Infinity) {
      if (got[i] !== Infinity) return Infinity;
    } else {
      fin.push(got[i]);
      finRef.push(ref[i]);
    }
  }
  return relErr(fin, finRef);
}

export interface BuiltCase {
  args: FlashMlaArgs;
  ref: { out: Float64Array; lse: Float64Array };
  /** The reference over the same cache with other (shorter) dense seqlens. */
  refFor(seqlens: number[]): { out: Float64Array; lse: Float64Array };
  destroy(): void;
}

export function buildMlaCase(ctx: GpuContext, c: MlaCase, meta: MlaSchedMeta = getMlaMetadata({ parts: c.parts })): BuiltCase {
  const hKv = c.hKv ?? 1;
  const bs = c.blockSize ?? 64;
  const format = c.kvFormat ?? 'bf16';
  const qDtype = c.qDtype ?? 'bf16';
  const layout = kvLayout('test', format, c.d, c.dv);
  const used = c.seqlens.map((n) => Math.ceil(n / bs));
  const maxBlocks = Math.max(1, ...used) + 1;
  const numBlocks = used.reduce((a, n) => a + n, 0) + 3;
  // Shuffled block ids; entries past each sequence's blocks hold an invalid id.
  const ids = Array.from({ length: numBlocks }, (_, i) => i);
  for (let i = ids.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [ids[i], ids[j]] = [ids[j], ids[i]];
  }
  const table = new Int32Array(c.b * maxBlocks).fill(INVALID_BLOCK);
  let next = 0;
  c.seqlens.forEach((_, b) => {
    for (let j = 0; j < used[b]; j++) table[b * maxBlocks + j] = ids[next++];
  });
  const numRows = numBlocks * bs;
  const rowLen = layout.rowElems;
  const stored = (format === 'fp8' ? new Uint8Array(numRows * hKv * rowLen) : new Uint16Array(numRows * hKv * rowLen)).fill(NAN_BITS[format]);
  const kRows = new Map<number, Float64Array>();
  c.seqlens.forEach((len, b) => {
    for (let n = 0; n < len; n++) {
      const row = table[b * maxBlocks + Math.floor(n / bs)] * bs + (n % bs);
      for (let g = 0; g < hKv; g++) {
        const plain = encodeKvRow(layout, uniform(c.d));
        const enc = c.oddScales ? oddenScales(layout, plain) : plain;
        stored.set(enc, (row * hKv + g) * rowLen);
        kRows.set(row * hKv + g, decodeKvRow(layout, enc));
      }
    }
  });
  const qv = uniform(c.b * c.sQ * c.hQ * c.d).map((v) => roundTo(qDtype, v));
  const kcache = uploadTensor(ctx, stored, [numBlocks, bs, hKv, rowLen], layout.dtype, 'kcache');
  const q = uploadTensor(ctx, qv, [c.b, c.sQ, c.hQ, c.d], qDtype, 'q');
  const tensors: Tensor[] = [kcache, q];
  const up = (data: ArrayLike<number>, shape: number[], dtype: 'i32' | 'f32') => {
    const t = uploadTensor(ctx, data, shape, dtype);
    tensors.push(t);
    return t;
  };
  // Every check runs with the caller's contract verified (hostSeqlens, reused schedules, block ids on the GPU).
  const args: FlashMlaArgs = { q, kcache, headDimV: c.dv, schedMeta: meta, causal: c.causal, kvFormat: format, config: c.config, verify: true };
  const refIn: Parameters<typeof mlaReference>[0] = {
    q: qv,
    b: c.b,
    sQ: c.sQ,
    hQ: c.hQ,
    d: c.d,
    dv: c.dv,
    hKv,
    blockSize: bs,
    numRows,
    k: (row, g) => kRows.get(row * hKv + g)!,
    causal: c.causal,
  };
  if (c.sparse) {
    const { topk } = c.sparse;
    // Batch 0 attends to nothing (out 0, lse +inf); the others to 1..topk entries.
    const lens = c.sparse.withLength ? c.seqlens.map((_, b) => (b === 0 ? 0 : 1 + Math.floor(rand() * topk))) : undefined;
    const nanRow = ids[numBlocks - 1] * bs; // an unused block: all NaN
    const indices = new Int32Array(c.b * c.sQ * topk);
    for (let b = 0; b < c.b; b++) {
      for (let t = 0; t < c.sQ; t++) {
        for (let i = 0; i < topk; i++) {
          const at = (b * c.sQ + t) * topk + i;
          const len = c.seqlens[b];
          const r = rand();
          // Past topkLength: a NaN row, which must never be read. Else a row of the sequence, -1, or an id outside the cache.
          if (lens && i >= lens[b]) indices[at] = nanRow;
          else if (len === 0 || r < 0.1) indices[at] = r < 0.05 ? -1 : numRows + 7;
          else {
            const n = Math.floor(rand() * len);
            indices[at] = table[b * maxBlocks + Math.floor(n / bs)] * bs + (n % bs);
          }
        }
      }
    }
    args.indices = up(indices, [c.b, c.sQ, topk], 'i32');
    if (lens) args.topkLength = up(lens, [c.b], 'i32');
    Object.assign(refIn, { indices, topk, topkLength: lens });
  } else {
    args.blockTable = up(table, [c.b, maxBlocks], 'i32');
    args.cacheSeqlens = up(c.seqlens, [c.b], 'i32');
    Object.assign(refIn, { blockTable: table, maxBlocks, cacheSeqlens: c.seqlens });
  }
  if (c.sink) {
    // Finite sinks, and +inf (output 0) and -inf (no effect) on two heads, as upstream allows.
    const sink = uniform(c.hQ).map((v) => v * 3);
    if (c.hQ > 2) [sink[0], sink[1]] = [Infinity, -Infinity];
    args.attnSink = up(sink, [c.hQ], 'f32');
    refIn.attnSink = sink;
  }
  return { args, ref: mlaReference(refIn), refFor: (seqlens) => mlaReference({ ...refIn, cacheSeqlens: seqlens }), destroy: () => tensors.forEach((t) => t.destroy()) };
}

/** Output bound: the rounding of out to its dtype (unit roundoff: bf16 2^-8, f16 2^-11) plus f32 accumulation (1e-5). */
export function mlaOutTol(qDtype: MlaActDtype): number {
  return qDtype === 'bf16' ? 2 ** -8 + 1e-5 : qDtype === 'f16' ? 2 ** -11 + 1e-5 : 1e-5;
}
/** lse bound: upstream's relative 8/65536. */
export const MLA_LSE_TOL = 8 / 65536;

export async function runMlaCase(ctx: GpuContext, c: MlaCase, built = buildMlaCase(ctx, c)): Promise<CheckResult & { slots: number }> {
  const planned = await planFlashMla(ctx, built.args);
  poisonTensor(planned.out);
  poisonTensor(planned.lse);
  await planned.launch.run();
  const out = await readTensor(planned.out);
  const lse = await readTensor(planned.lse);
  const eo = relErr(out, built.ref.out);
  const el = lseErr(lse, built.ref.lse);
  const tolO = mlaOutTol(c.qDtype ?? 'bf16');
  built.destroy();
  planned.out.destroy();
  planned.lse.destroy();
  const slots = built.args.schedMeta.schedule!.numSlots;
  // One error against one tolerance: both measures scaled to their own bound.
  return { err: Math.max(eo / tolO, el / MLA_LSE_TOL), tol: 1, slots, note: `out ${eo.toExponential(2)} (tol ${tolO.toExponential(1)}), lse ${el.toExponential(2)} (tol ${MLA_LSE_TOL.toExponential(1)}), ${slots} split slots, config ${JSON.stringify(planned.config)}` };
}

const caseCheck = (name: string, c: MlaCase, needs?: string[]): Check => ({ name: `mla ${name}`, needs, run: (ctx) => runMlaCase(ctx, c) });

/** A split-cache case; where the device has too few storage buffers per stage (Chromium: 10), its clear error instead. */
const splitCheck = (name: string, c: MlaCase): Check => ({
  name: `mla ${name}`,
  async run(ctx) {
    if (ctx.limits.maxStorageBuffersPerShaderStage >= 11) return runMlaCase(ctx, c);
    const built = buildMlaCase(ctx, c);
    const err = await throwsLike(() => planFlashMla(ctx, built.args), /a split cache needs 11 storage buffers per stage, this device allows \d+/);
    built.destroy();
    return { err, tol: 0, note: `${ctx.limits.maxStorageBuffersPerShaderStage} storage buffers per stage: the clear error checked instead` };
  },
});

/**
 * Upstream's correctness sweep shape: b, s_q, seqlen, h_q, h_kv, causal. Small by default;
 * DEEPWGSL_SWEEP=full runs all of it (486 cases), DEEPWGSL_SWEEP=full:i/n every n-th case from the i-th,
 * so n processes share it (compiling each case's pipelines is what takes the time).
 */
function sweepCases(full: boolean): MlaCase[] {
  const cases: MlaCase[] = [];
  const bs = full ? [1, 2, 6] : [2];
  const sqs = full ? [1, 2, 4] : [1, 2];
  const sks = full ? [20, 140, 1000] : [20, 140];
  const hqs = full ? [1, 3, 9, 64, 128] : [3, 64];
  const hkvs = full ? [1, 2, 8] : [1];
  for (const b of bs) for (const sQ of sqs) for (const sk of sks) for (const hQ of hqs) for (const hKv of hkvs) for (const causal of [false, true]) {
    if (hQ % hKv !== 0) continue;
    const seqlens = Array.from({ length: b }, () => Math.max(sQ, Math.round(sk + (rand() - 0.5) * sk)));
    cases.push({ b, sQ, hQ, hKv, d: full ? 576 : 80, dv: full ? 512 : 64, seqlens, causal, parts: 4 });
  }
  return cases;
}

const sweep = ((v = envVar('DEEPWGSL_SWEEP') ?? '') => {
  const m = /^full(?::(\d+)\/(\d+))?$/.exec(v);
  if (v && !m) throw new Error(`DEEPWGSL_SWEEP: expected full or full:i/n, got ${v}`);
  return { full: !!m, part: m?.[1] ? +m[1] : 0, parts: m?.[2] ? +m[2] : 1 };
})();

const tiny = { d: 80, dv: 64 };
const deepseek = { d: 576, dv: 512 };

export const mlaChecks: Check[] = [
  caseCheck('dense tiny fixture d=80 dv=64, varlen with a zero-length sequence, block 16', { b: 4, sQ: 1, hQ: 4, ...tiny, blockSize: 16, seqlens: [37, 0, 5, 70] }),
  caseCheck('dense DeepSeek d=576 dv=512, h_q=16, block 64', { b: 2, sQ: 1, hQ: 16, ...deepseek, seqlens: [100, 65] }),
  caseCheck('split-KV + combine (forced 16 parts), DeepSeek shape, s_q=2 causal', { b: 2, sQ: 2, hQ: 8, ...deepseek, seqlens: [300, 3], causal: true, parts: 16 }),
  caseCheck('combine over 520 partials (past one chunk of its lanes), block 8', { b: 2, sQ: 1, hQ: 2, ...tiny, blockSize: 8, seqlens: [4160, 50], parts: 600 }),
  caseCheck('causal s_q=3, GQA h_q=6 h_kv=2, f32 q/out (model runtime), block 8', { b: 3, sQ: 3, hQ: 6, hKv: 2, ...tiny, blockSize: 8, seqlens: [3, 19, 40], causal: true, qDtype: 'f32', parts: 6 }),
  caseCheck('f16 cache, f16 q, odd d=81 dv=63, h_kv=3', { b: 2, sQ: 2, hQ: 3, hKv: 3, d: 81, dv: 63, blockSize: 16, seqlens: [50, 17], kvFormat: 'f16', qDtype: 'f16' }),
  caseCheck('fp8 cache (656-byte rows) DeepSeek shape', { b: 2, sQ: 1, hQ: 8, ...deepseek, seqlens: [90, 64], kvFormat: 'fp8', parts: 8 }),
  caseCheck('fp8 cache with scales off the powers of two (bf16 rounding of e4m3 x scale), f32 q/out, DeepSeek shape', { b: 2, sQ: 1, hQ: 8, ...deepseek, seqlens: [70, 33], kvFormat: 'fp8', qDtype: 'f32', oddScales: true }),
  caseCheck('fp8 cache tiny fixture (100-byte rows), causal s_q=2', { b: 3, sQ: 2, hQ: 4, ...tiny, blockSize: 16, seqlens: [33, 0, 7], kvFormat: 'fp8', causal: true }),
  caseCheck('sparse indices + topkLength + attnSink, fp8 cache DeepSeek shape', { b: 2, sQ: 2, hQ: 8, ...deepseek, seqlens: [120, 80], kvFormat: 'fp8', sparse: { topk: 48, withLength: true }, sink: true }),
  caseCheck('sparse indices (invalid ids skipped), bf16 cache, h_kv=2, split', { b: 2, sQ: 2, hQ: 4, hKv: 2, ...tiny, blockSize: 16, seqlens: [60, 30], sparse: { topk: 40 }, parts: 8 }),
  caseCheck('attnSink dense (+inf and -inf sinks), split and combined', { b: 3, sQ: 1, hQ: 5, ...tiny, blockSize: 16, seqlens: [64, 0, 9], sink: true, parts: 6 }),
  caseCheck('row kernel: wg=32 mt=4 bn=3, causal', { b: 2, sQ: 2, hQ: 6, ...tiny, blockSize: 16, seqlens: [45, 12], causal: true, config: { kernel: 'rows', wg: 32, mt: 4, bn: 3 } }),
  caseCheck('row kernel: wg=4 mt=2 bn=6 (more cache rows per round than lanes), sparse, split', { b: 2, sQ: 2, hQ: 4, ...tiny, blockSize: 16, seqlens: [45, 20], sparse: { topk: 30 }, parts: 3, config: { kernel: 'rows', wg: 4, mt: 2, bn: 6 } }),
  caseCheck('row kernel: DeepSeek shape, fp8 cache, sparse + attnSink, split', { b: 2, sQ: 2, hQ: 8, ...deepseek, seqlens: [100, 40], kvFormat: 'fp8', sparse: { topk: 40, withLength: true }, sink: true, parts: 6, config: { kernel: 'rows', wg: 128, mt: 8, bn: 8 } }),
  caseCheck('row kernel: 32 lanes per query row (wg=256 mt=8), DeepSeek shape, f32 q, h_q=16 (2 row tiles), split', { b: 2, sQ: 1, hQ: 16, ...deepseek, blockSize: 16, seqlens: [70, 33], qDtype: 'f32', parts: 6, config: { kernel: 'rows', wg: 256, mt: 8, bn: 8 } }),
  caseCheck('row kernel: odd d=81 dv=63, f32 q, h_kv=3, split', { b: 2, sQ: 2, hQ: 6, hKv: 3, d: 81, dv: 63, blockSize: 16, seqlens: [50, 17], qDtype: 'f32', parts: 5, config: { kernel: 'rows', wg: 64, mt: 4, bn: 8 } }),
  caseCheck('tiled kernel variants: wg=64 mt=8 bn=128 dk=16 bnv=4, causal, odd d=81 dv=63', { b: 2, sQ: 2, hQ: 6, d: 81, dv: 63, blockSize: 16, seqlens: [75, 12], causal: true, config: { kernel: 'tiled', wg: 64, mt: 8, bn: 128, dk: 16, bnv: 4 } }),
  caseCheck('tiled kernel variants: wg=128 mt=32 bn=64, h_q=20 (a partial row tile)', { b: 2, sQ: 1, hQ: 20, ...tiny, blockSize: 16, seqlens: [130, 3], config: { kernel: 'tiled', wg: 128, mt: 32, bn: 64, dk: 16, bnv: 8 } }),
  caseCheck('tiled kernel variants: 2 output vec4 columns per invocation, d=576 dv=256, short split items', { b: 2, sQ: 1, hQ: 16, d: 576, dv: 256, seqlens: [300, 21], parts: 6, config: { kernel: 'tiled', wg: 128, mt: 16, bn: 128, dk: 8, bnv: 2 } }),
  caseCheck('tiled kernel variants: wg=32 mt=16 bn=32 (3 output vec4 columns), d=96 dv=80, causal s_q=2', { b: 2, sQ: 2, hQ: 8, d: 96, dv: 80, blockSize: 16, seqlens: [70, 9], causal: true, config: { kernel: 'tiled', wg: 32, mt: 16, bn: 32, dk: 8, bnv: 4 } }),
  splitCheck('cache split over 3 storage windows (rows straddle them), tiled, causal', { b: 2, sQ: 2, hQ: 8, ...tiny, blockSize: 16, seqlens: [100, 60], causal: true, config: { cacheWindow: 12288 } }),
  splitCheck('cache split over 4 storage windows, row kernel, fp8 DeepSeek shape, split', { b: 2, sQ: 1, hQ: 4, ...deepseek, seqlens: [90, 64], kvFormat: 'fp8', parts: 4, config: { kernel: 'rows', wg: 64, mt: 4, bn: 8, cacheWindow: 65536 } }),
  {
    name: `mla sweep shaped like upstream's (${sweep.full ? `full, part ${sweep.part}/${sweep.parts}` : 'small; DEEPWGSL_SWEEP=full for all'})`,
    async run(ctx) {
      const cases = sweepCases(sweep.full).filter((_, i) => i % sweep.parts === sweep.part);
      let worst = 0;
      let note = '';
      for (const c of cases) {
        const r = await runMlaCase(ctx, c);
        if (!(r.err <= worst)) {
          worst = r.err;
          note = `worst b=${c.b} s_q=${c.sQ} h_q=${c.hQ} h_kv=${c.hKv} seqlens=[${c.seqlens}] causal=${c.causal}: ${r.note}`;
        }
      }
      return { err: worst, tol: 1, note: `${cases.length} cases; ${note}` };
    },
  },
  {
    name: 'mla unfused baseline (gather, QK^T GEMM, softmax, P.V GEMM; what bench --mla compares against)',
    async run(ctx) {
      const c: MlaCase = { b: 3, sQ: 1, hQ: 16, ...deepseek, seqlens: [70, 1, 130] };
      const built = buildMlaCase(ctx, c);
      const blockTable = (await readTensor(built.args.blockTable!)) as Int32Array;
      const u = await planUnfusedMla(ctx, { q: built.args.q, kcache: built.args.kcache, blockTable, seqlens: Int32Array.from(c.seqlens), headDimV: c.dv });
      poisonTensor(u.out);
      poisonTensor(u.lse);
      await u.launch.run();
      const eo = relErr(await readTensor(u.out), built.ref.out);
      const el = lseErr(await readTensor(u.lse), built.ref.lse);
      u.destroy();
      built.destroy();
      const tolO = mlaOutTol('f32');
      return { err: Math.max(eo / tolO, el / MLA_LSE_TOL), tol: 1, note: `out ${eo.toExponential(2)} (tol ${tolO.toExponential(1)}), lse ${el.toExponential(2)}` };
    },
  },
  {
    name: 'mla schedMeta: reused while shapes stay, refused when they change',
    async run(ctx) {
      const c: MlaCase = { b: 2, sQ: 1, hQ: 4, ...tiny, blockSize: 16, seqlens: [40, 20], parts: 4 };
      const built = buildMlaCase(ctx, c);
      const first = await runMlaCase(ctx, c, built);
      const meta = built.args.schedMeta;
      const again = await runMlaCase(ctx, c, buildMlaCase(ctx, c, meta));
      let err = Math.max(first.err, again.err) > 1 ? 1 : 0;
      err += await throwsLike(() => planFlashMla(ctx, { ...buildMlaCase(ctx, { ...c, causal: true }, meta).args }), /schedMeta was made for causal = false, this call has true/);
      err += await throwsLike(
        () => planFlashMla(ctx, { ...buildMlaCase(ctx, c, meta).args, hostSeqlens: Int32Array.from([41, 20]) }),
        /hostSeqlens differ/,
      );
      return { err, tol: 0 };
    },
  },
  {
    name: 'mla verify: hostSeqlens that differ from the GPU\'s, a schedule reused after the GPU\'s seqlens changed, and a bad block id on the GPU are caught (the caller\'s contract otherwise)',
    async run(ctx) {
      const c: MlaCase = { b: 2, sQ: 1, hQ: 4, ...tiny, blockSize: 16, seqlens: [20, 10] };
      const built = buildMlaCase(ctx, c);
      const a = built.args;
      const table = (await readTensor(a.blockTable!)) as Int32Array;
      const write = (t: Tensor, v: ArrayLike<number>) => ctx.device.queue.writeBuffer(t.buffer, t.byteOffset, Int32Array.from(v));
      let err = 0;
      try {
        // Sequence 1 grows to 30 on the GPU, its second block is id 99 of a 6-block cache, and hostSeqlens still say 10.
        write(a.blockTable!, table.map((v, i) => (i === 4 ? 99 : v)));
        write(a.cacheSeqlens!, [20, 30]);
        const lying = { ...a, schedMeta: getMlaMetadata(), hostSeqlens: Int32Array.of(20, 10) };
        // Unverified, the host cannot know: the call runs (block 99 is never read, the rows past 10 are not attended).
        const unverified = await planFlashMla(ctx, { ...lying, verify: false });
        for (const x of [unverified.launch, unverified.out, unverified.lse]) x.destroy();
        err += await throwsLike(() => planFlashMla(ctx, { ...lying, schedMeta: getMlaMetadata() }), /hostSeqlens \[20, 10\] differ from cacheSeqlens on the GPU \[20, 30\]/);
        err += await throwsLike(() => planFlashMla(ctx, { ...a, schedMeta: getMlaMetadata() }), /blockTable\[1, 1\] must be a block id in 0\.\.5 \(used by cacheSeqlens\[1\] = 30\), got 99/);
        // A schedule made for [20, 10], reused after the GPU's seqlens moved to [20, 12].
        write(a.blockTable!, table);
        write(a.cacheSeqlens!, [20, 10]);
        const meta = getMlaMetadata();
        const first = await planFlashMla(ctx, { ...a, schedMeta: meta });
        for (const x of [first.launch, first.out, first.lse]) x.destroy();
        write(a.cacheSeqlens!, [20, 12]);
        err += await throwsLike(() => planFlashMla(ctx, { ...a, schedMeta: meta }), /cacheSeqlens on the GPU \[20, 12\] differ from the \[20, 10\] schedMeta was made for/);
        meta.destroy();
      } finally {
        built.destroy();
      }
      return { err, tol: 0 };
    },
  },
  {
    name: 'mla replayable schedMeta: one plan, seqlens updated between runs (splits change), each run vs the reference; update errors',
    async run(ctx) {
      // Blocks of 32: a replayable schedule splits 8 or 16 positions apart (by the batch's length), inside blocks.
      const c: MlaCase = { b: 2, sQ: 1, hQ: 4, ...tiny, blockSize: 32, seqlens: [640, 560] };
      const meta = getMlaMetadata({ maxSeqlen: 640, parts: 8 });
      const built = buildMlaCase(ctx, c, meta);
      const lens = built.args.cacheSeqlens!;
      let worst = 0;
      const notes: string[] = [];
      let planned: Awaited<ReturnType<typeof planFlashMla>> | undefined;
      try {
        const units = new Set<number>();
        for (const step of [[20, 5], [45, 17], [0, 33], [600, 540], [60, 33]]) {
          ctx.device.queue.writeBuffer(lens.buffer, lens.byteOffset, Int32Array.from(step));
          if (!planned) planned = await planFlashMla(ctx, { ...built.args, hostSeqlens: Int32Array.from(step) });
          else meta.update(step);
          poisonTensor(planned.out);
          poisonTensor(planned.lse);
          await planned.launch.run();
          const ref = built.refFor(step);
          const e = Math.max(relErr(await readTensor(planned.out), ref.out) / mlaOutTol('bf16'), lseErr(await readTensor(planned.lse), ref.lse) / MLA_LSE_TOL);
          worst = Math.max(worst, e);
          units.add(meta.schedule!.unit);
          notes.push(`[${step}]: ${meta.schedule!.items.length}/${meta.itemCap} items of ${meta.schedule!.unit}-position units, ${meta.schedule!.numSlots} slots`);
        }
        let errors = await throwsLike(() => meta.update([641, 1]), /MlaSchedMeta.update: seqlens\[0\] must be in 0..640 \(the maxSeqlen this schedule was planned for\), got 641/);
        errors += await throwsLike(() => meta.update([1]), /MlaSchedMeta.update: seqlens.length must be b \(2\), got 1/);
        errors += await throwsLike(() => getMlaMetadata().update([1, 1]), /only a replayable schedMeta/);
        errors += await throwsLike(() => getMlaMetadata({ maxSeqlen: 8 }).update([1, 1]), /plan a flashMlaWithKvcache call with this schedMeta first/);
        errors += await throwsLike(() => planFlashMla(ctx, { ...built.args, schedMeta: getMlaMetadata({ maxSeqlen: 1000 }) }), /schedMeta.maxSeqlen must be at most what blockTable holds \(21 blocks of 32\), got 1000/);
        // The splits must have changed between runs, or this check would not test the rewrite.
        // ... and both split units must have been used.
        const varied = new Set(notes.map((n) => n.split(': ')[1])).size > 1 && units.size === 2;
        return { err: errors || !varied ? Infinity : worst, tol: 1, note: notes.join('; ') };
      } finally {
        built.destroy();
        planned?.out.destroy();
        planned?.lse.destroy();
        meta.destroy();
      }
    },
  },
  ...(['bf16', 'f16', 'fp8'] as KvFormat[]).flatMap((format) =>
    (['f32', 'bf16'] as const).map(
      (inDtype): Check => ({
        name: `mla appendKvcache ${format} from ${inDtype}: bit-identical to the host encoding, slots from the block allocator`,
        async run(ctx) {
          const [dim, dv, hKv, bs] = format === 'fp8' ? [576, 512, 1, 16] : [81, 64, 2, 8];
          const layout = kvLayout('test', format, dim, dv);
          const alloc = new BlockAllocator(6, bs);
          alloc.append(7, 5);
          const slots = Int32Array.from([...alloc.append(3, 9), ...alloc.append(7, 12)]);
          const n = slots.length;
          // Wide magnitudes so scales and subnormals are exercised; bf16 inputs rounded first.
          const vals = Array.from({ length: n * hKv * dim }, () => (rand() - 0.5) * 10 ** (rand() * 4 - 2)).map((v) => roundTo(inDtype, v));
          const kv = uploadTensor(ctx, vals, [n, hKv, dim], inDtype);
          const kcache = uploadTensor(ctx, new Array(6 * bs * hKv * layout.rowElems).fill(0), [6, bs, hKv, layout.rowElems], layout.dtype);
          poisonTensor(kcache);
          await (await planAppendKvcache(ctx, { kcache, kv, slots, headDimV: dv, kvFormat: format })).run();
          const bits = await readTensorBits(kcache);
          let bad = 0;
          for (let i = 0; i < n; i++) {
            for (let g = 0; g < hKv; g++) {
              const want = encodeKvRow(layout, vals.slice((i * hKv + g) * dim, (i * hKv + g + 1) * dim));
              const at = (slots[i] * hKv + g) * layout.rowElems;
              const got = Array.from(bits.subarray(at, at + layout.rowElems));
              // WGSL's pack2x16float may round either way: f16 is held to one ulp, the rest bit for bit.
              bad += format === 'f16' ? got.filter((v, j) => Math.abs(v - want[j]) > 1).length : mismatches(got, want);
            }
          }
          kv.destroy();
          kcache.destroy();
          return { err: bad, tol: 0, note: `${n} tokens x ${hKv} heads` };
        },
      }),
    ),
  ),
  {
    name: 'mla bad inputs: clear errors before any dispatch',
    async run(ctx) {
      const c: MlaCase = { b: 2, sQ: 2, hQ: 4, ...tiny, blockSize: 16, seqlens: [20, 10] };
      const base = buildMlaCase(ctx, c).args;
      const fresh = () => ({ ...base, schedMeta: getMlaMetadata() });
      const i32 = (vals: number[], shape: number[]) => uploadTensor(ctx, vals, shape, 'i32');
      const failed: number[] = [];
      let nth = 0;
      const expectErr = async (f: () => unknown, re: RegExp) => {
        nth++;
        if (await throwsLike(f, re)) failed.push(nth);
      };
      await expectErr(() => planFlashMla(ctx, { ...fresh(), headDimV: 81 }), /headDimV must be an integer in 1\.\.d \(80\), got 81/);
      await expectErr(() => planFlashMla(ctx, { ...fresh(), q: uploadTensor(ctx, new Array(2 * 2 * 4 * 79).fill(0), [2, 2, 4, 79], 'bf16') }), /kcache\.shape must be \[numBlocks, blockSize, h_kv, 79\]/);
      await expectErr(() => planFlashMla(ctx, { ...fresh(), q: uploadTensor(ctx, new Array(2 * 2 * 4 * 80).fill(0), [2, 2, 4, 80], 'e4m3') }), /q\.dtype must be 'bf16' or 'f16' or 'f32', got 'e4m3'/);
      await expectErr(() => planFlashMla(ctx, { ...fresh(), kvFormat: 'fp8' }), /kcache\.dtype must be 'e4m3', got 'bf16'/);
      await expectErr(() => planFlashMla(ctx, { ...fresh(), kvFormat: 'int4' as KvFormat }), /kvFormat must be 'bf16', 'f16' or 'fp8', got 'int4'/);
      await expectErr(() => planFlashMla(ctx, { ...fresh(), cacheSeqlens: i32([20, 10, 5], [3]) }), /cacheSeqlens\.shape must be \[2\]/);
      await expectErr(() => planFlashMla(ctx, { ...fresh(), cacheSeqlens: i32([20, 1000], [2]) }), /cacheSeqlens\[1\] must be in 0\.\.\d+ \(blockTable holds/);
      const badTable = i32(Array.from((await readTensor(base.blockTable!)) as Int32Array, (v, i) => (i === 0 ? 999 : v)), base.blockTable!.shape as number[]);
      await expectErr(() => planFlashMla(ctx, { ...fresh(), blockTable: badTable }), /blockTable\[0, 0\] must be a block id in 0\.\.\d+ .*got 999/);
      await expectErr(() => planFlashMla(ctx, { ...fresh(), indices: i32(new Array(2 * 2 * 3).fill(0), [2, 2, 3]), causal: true }), /causal must be false when indices are given/);
      await expectErr(() => planFlashMla(ctx, { ...fresh(), attnSink: uploadTensor(ctx, [0, 0, 0], [3], 'f32') }), /attnSink\.shape must be \[4\]/);
      await expectErr(() => planFlashMla(ctx, { ...fresh(), blockTable: undefined }), /blockTable must be a Tensor, got 'undefined'/);
      await expectErr(() => planFlashMla(ctx, { ...fresh(), schedMeta: {} as MlaSchedMeta }), /schedMeta must be the object getMlaMetadata\(\) returns/);
      await expectErr(() => planFlashMla(ctx, { ...fresh(), config: { mt: 3 } }), /config\.mt must be a power of two/);
      await expectErr(() => planFlashMla(ctx, { ...fresh(), config: { kernel: 'tiled', wg: 64, mt: 4, bn: 6 } }), /config must be a tiled config with bn = 16 \* wg \/ mt \(256\)/);
      await expectErr(() => planFlashMla(ctx, { ...fresh(), config: { kernel: 'rows', wg: 64, mt: 4, bn: 100000 } }), /config\.bn must be an integer in 1\.\.\d+ \(maxComputeWorkgroupStorageSize/);
      await expectErr(() => planFlashMla(ctx, { ...fresh(), config: { cacheWindow: 256 } }), /kcache must be at most 4 storage bindings of 256 bytes/);
      await expectErr(() => planFlashMla(ctx, { ...fresh(), config: { cacheWindow: 1000 } }), /config\.cacheWindow must be a multiple of \d+ in/);
      const kv = uploadTensor(ctx, new Array(2 * 1 * 80).fill(0.5), [2, 1, 80], 'f32');
      await expectErr(() => planAppendKvcache(ctx, { kcache: base.kcache, kv, slots: Int32Array.from([0, 10 ** 6]) }), /slots\[1\] must be a cache slot in 0\.\.\d+, got 1000000/);
      await expectErr(() => planAppendKvcache(ctx, { kcache: base.kcache, kv, slots: Int32Array.from([0, 1]), kvFormat: 'fp8' }), /headDimV must be given for kvFormat 'fp8'/);
      await expectErr(() => planAppendKvcache(ctx, { kcache: base.kcache, kv: uploadTensor(ctx, new Array(2 * 2 * 80).fill(0), [2, 2, 80], 'f32'), slots: Int32Array.from([0, 1]) }), /kcache\.shape must be \[\*, \*, 2, 80\]/);
      return { err: failed.length, tol: 0, note: failed.length ? `expectations ${failed.join(', ')} not met` : `${nth} errors` };
    },
  },
];
