// nn conformance: embedding, RMSNorm, rope, SiLU*up, residual add, argmax against float64 references.
import type { GpuContext } from '../../src/gpu/context.ts';
import { bitsToF32 } from '../../src/formats/fp8.ts';
import { encodeBF16 } from '../../src/formats/half.ts';
import { createTensor, poisonTensor, readTensor, readTensorBits, uploadTensor } from '../../src/gpu/tensor.ts';
import { perBlockCastToFp8 } from '../../src/formats/casts.ts';
import { decodeE4M3 } from '../../src/formats/fp8.ts';
import {
  planAddInto,
  planDequant,
  planMlaAbsorbO,
  planMlaAbsorbQ,
  planMlaKvAppend,
  type MlaDims,
  type StoredWeight,
  planArgmax,
  planEmbedding,
  planRmsNorm,
  planRope,
  planSiluMul,
  ropeTableData,
  uploadRopeTable,
} from '../../src/kernels/nn/nn.ts';
import { argmaxRef, embeddingRef, mlaAbsorbORef, mlaAbsorbQRef, rmsNormRef, ropeRef, siluMulRef } from '../../src/kernels/nn/reference.ts';
import { mismatches, rand, relErr, throwsLike, type Check, type CheckResult } from './check.ts';
import { randomSpread } from './random.ts';

/** cos and sin of each pair at position pos, from ropeTableData's table of d/2 pairs. */
function ropeAt(table: Float32Array, pos: number, d: number): { cos: Float32Array; sin: Float32Array } {
  const cs = table.subarray(pos * d, (pos + 1) * d);
  return { cos: cs.filter((_, i) => i % 2 === 0), sin: cs.filter((_, i) => i % 2 === 1) };
}

/** A rope table of d dims for maxPos positions (a random YaRN-like factor) and random positions for tokens. */
function ropeSetup(d: number, maxPos: number, tokens: number) {
  const invFreq = Float32Array.from({ length: d / 2 }, (_, i) => Math.fround(1 / 10000 ** ((2 * i) / d)));
  const factor = 1 + rand() * 0.2;
  return { invFreq, factor, table: ropeTableData(invFreq, maxPos, factor), pos: Int32Array.from({ length: tokens }, () => randInt(maxPos)) };
}

const gauss = (n: number, s = 1) => Float32Array.from({ length: n }, () => s * (rand() + rand() + rand() - 1.5) * 2);
const randInt = (n: number) => Math.floor(rand() * n);

async function embeddingCheck(ctx: GpuContext, dtype: 'f32' | 'bf16'): Promise<CheckResult> {
  let err = 0;
  for (const [vocab, hidden, tokens] of [[50, 37, 5], [300, 256, 17]]) {
    const raw = gauss(vocab * hidden);
    const table = dtype === 'bf16' ? raw.map((v) => bitsToF32(encodeBF16(v) << 16)) : raw;
    const ids = Int32Array.from({ length: tokens }, () => randInt(vocab));
    const tt = uploadTensor(ctx, table, [vocab, hidden], dtype);
    const it = uploadTensor(ctx, ids, [tokens], 'i32');
    const p = await planEmbedding(ctx, tt, it);
    poisonTensor(p.out);
    await p.launch.run();
    err = Math.max(err, relErr(await readTensor(p.out), embeddingRef(table, hidden, ids)));
  }
  return { err, tol: 0 };
}

async function rmsNormCheck(ctx: GpuContext): Promise<CheckResult> {
  let err = 0;
  // [rows, columns of x, columns normalised, offset]: whole rows, and a window of a wider row.
  for (const [rows, cols, n, off] of [[3, 256, 256, 0], [5, 100, 100, 0], [4, 80, 64, 0], [2, 600, 512, 17]]) {
    const x = randomSpread(rand, rows * cols, -2, 1);
    const w = Float32Array.from({ length: n }, () => 1 + 0.3 * (rand() - 0.5));
    const xt = uploadTensor(ctx, x, [rows, cols], 'f32');
    const p = await planRmsNorm(ctx, xt, uploadTensor(ctx, w, [n], 'f32'), { eps: 1e-6, colOffset: off });
    poisonTensor(p.out);
    await p.launch.run();
    const ref = new Float64Array(rows * n);
    for (let r = 0; r < rows; r++) ref.set(rmsNormRef(x.subarray(r * cols + off, r * cols + off + n), w, 1e-6), r * n);
    err = Math.max(err, relErr(await readTensor(p.out), ref));
  }
  return { err, tol: 1e-5 };
}

async function rmsNormInPlaceCheck(ctx: GpuContext): Promise<CheckResult> {
  // MLA's kv_a output [tokens, latent + rope]: the latent window is normalised where it lies, the rest untouched.
  const [rows, cols, n] = [3, 80, 64];
  const x = randomSpread(rand, rows * cols, -2, 1);
  const w = Float32Array.from({ length: n }, () => 1 + 0.3 * (rand() - 0.5));
  const xt = uploadTensor(ctx, x, [rows, cols], 'f32');
  const p = await planRmsNorm(ctx, xt, uploadTensor(ctx, w, [n], 'f32'), { eps: 1e-6, inPlace: true });
  await p.launch.run();
  const ref = Float64Array.from(x);
  for (let r = 0; r < rows; r++) ref.set(rmsNormRef(x.subarray(r * cols, r * cols + n), w, 1e-6), r * cols);
  return { err: relErr(await readTensor(xt), ref), tol: 1e-5 };
}

/** A random weight [rows, cols] stored as e4m3 + 128x128 scales, bf16 or f32, and its float64 values. */
function storedWeight(ctx: GpuContext, rows: number, cols: number, dtype: 'e4m3' | 'bf16' | 'f32'): { w: StoredWeight; values: Float64Array } {
  const raw = gauss(rows * cols, 0.1);
  if (dtype === 'e4m3') {
    const { q, scales } = perBlockCastToFp8(raw, rows, cols);
    const kb = Math.ceil(cols / 128);
    const values = Float64Array.from(q, (b, i) => decodeE4M3(b) * scales[Math.floor(Math.floor(i / cols) / 128) * kb + Math.floor((i % cols) / 128)]);
    return { w: { t: uploadTensor(ctx, q, [rows, cols], 'e4m3'), scale: uploadTensor(ctx, scales, [Math.ceil(rows / 128), kb], 'f32') }, values };
  }
  const vals = dtype === 'bf16' ? raw.map((v) => bitsToF32(encodeBF16(v) << 16)) : raw;
  return { w: { t: uploadTensor(ctx, vals, [rows, cols], dtype) }, values: Float64Array.from(vals) };
}

async function absorbCheck(ctx: GpuContext, dtype: 'e4m3' | 'bf16' | 'f32'): Promise<CheckResult> {
  let err = 0;
  // DeepSeek-like proportions, small; the second has rows of kv_b spanning 128-row scale blocks unevenly.
  const dims: MlaDims[] = [
    { heads: 4, qkNopeHeadDim: 32, qkRopeHeadDim: 16, vHeadDim: 32, kvLoraRank: 64 },
    { heads: 3, qkNopeHeadDim: 24, qkRopeHeadDim: 8, vHeadDim: 20, kvLoraRank: 150 },
  ];
  for (const m of dims) {
    const tokens = 3;
    const dq = m.qkNopeHeadDim + m.qkRopeHeadDim;
    const { w, values } = storedWeight(ctx, m.heads * (m.qkNopeHeadDim + m.vHeadDim), m.kvLoraRank, dtype);
    const q = gauss(tokens * m.heads * dq);
    const pq = await planMlaAbsorbQ(ctx, uploadTensor(ctx, q, [tokens, m.heads, dq], 'f32'), w, m);
    poisonTensor(pq.out);
    await pq.launch.run();
    const refQ = mlaAbsorbQRef(q, values, m);
    err = Math.max(err, relErr(await readTensor(pq.out), refQ));
    // q as the first columns of wider rows (a fused q + kv_a projection's output), its rope part rotated on the way.
    const extra = 7;
    const wide = gauss(tokens * (m.heads * dq + extra));
    for (let t = 0; t < tokens; t++) wide.set(q.subarray(t * m.heads * dq, (t + 1) * m.heads * dq), t * (m.heads * dq + extra));
    const r = ropeSetup(m.qkRopeHeadDim, 300, tokens);
    for (const interleave of [true, false]) {
      const rope = { positions: uploadTensor(ctx, r.pos, [tokens], 'i32'), table: uploadRopeTable(ctx, r.invFreq, 300, r.factor), interleave };
      const pr = await planMlaAbsorbQ(ctx, uploadTensor(ctx, wide, [tokens, m.heads * dq + extra], 'f32'), w, m, { rope });
      poisonTensor(pr.out);
      await pr.launch.run();
      const ref = Float64Array.from(refQ);
      const d = m.kvLoraRank + m.qkRopeHeadDim;
      for (let th = 0; th < tokens * m.heads; th++) {
        const { cos, sin } = ropeAt(r.table, r.pos[Math.floor(th / m.heads)], m.qkRopeHeadDim);
        ropeRef(ref, th * d + m.kvLoraRank, cos, sin, interleave);
      }
      err = Math.max(err, relErr(await readTensor(pr.out), ref));
    }
    const o = gauss(tokens * m.heads * m.kvLoraRank);
    const po = await planMlaAbsorbO(ctx, uploadTensor(ctx, o, [tokens, m.heads, m.kvLoraRank], 'f32'), w, m);
    poisonTensor(po.out);
    await po.launch.run();
    err = Math.max(err, relErr(await readTensor(po.out), mlaAbsorbORef(o, values, m)));
    const pd = await planDequant(ctx, w);
    poisonTensor(pd.out);
    await pd.launch.run();
    err = Math.max(err, relErr(await readTensor(pd.out), values));
  }
  return { err, tol: 1e-5 };
}

/** mlaKvAppend against the float64 chain (RMSNorm of the latent, rope of k_pe, rounding to the cache's 16 bits); other rows stay poisoned. */
async function kvAppendCheck(ctx: GpuContext, format: 'bf16' | 'f16'): Promise<CheckResult> {
  let err = 0;
  let bad = 0;
  // [tokens, latent, rope, columns before the kv, columns after]: DeepSeek-like and odd proportions.
  for (const [tokens, kvr, dr, off, after, interleave] of [[3, 64, 16, 5, 3, true], [4, 150, 8, 0, 0, false], [2, 512, 64, 24, 0, true]] as const) {
    const d = kvr + dr;
    const cols = off + d + after;
    const [blocks, blockSize] = [3, 4];
    const x = gauss(tokens * cols, 2);
    const w = Float32Array.from({ length: kvr }, () => 1 + 0.3 * (rand() - 0.5));
    const r = ropeSetup(dr, 200, tokens);
    // Distinct slots; the last token's is outside the cache (skipped).
    const order = Array.from({ length: blocks * blockSize }, (_, i) => i).sort(() => rand() - 0.5);
    const slots = Int32Array.from({ length: tokens }, (_, t) => (t === tokens - 1 ? blocks * blockSize + 2 : order[t]));
    const kcache = createTensor(ctx, [blocks, blockSize, 1, d], format);
    poisonTensor(kcache);
    const launch = await planMlaKvAppend(ctx, {
      kv: uploadTensor(ctx, x, [tokens, cols], 'f32'),
      kvOffset: off,
      norm: uploadTensor(ctx, w, [kvr], 'f32'),
      eps: 1e-6,
      rope: { positions: uploadTensor(ctx, r.pos, [tokens], 'i32'), table: uploadRopeTable(ctx, r.invFreq, 200, r.factor), interleave },
      slots: uploadTensor(ctx, slots, [tokens], 'i32'),
      kcache,
    });
    await launch.run();
    const got = await readTensor(kcache);
    const bits = await readTensorBits(kcache);
    const written = new Set(slots);
    for (let s = 0; s < blocks * blockSize; s++) if (!written.has(s)) bad += bits.subarray(s * d, (s + 1) * d).filter((b) => b !== 0xffff).length;
    for (let t = 0; t < tokens - 1; t++) {
      const row = x.subarray(t * cols + off, t * cols + off + d);
      const ref = new Float64Array(d);
      ref.set(rmsNormRef(row.subarray(0, kvr), w, 1e-6));
      ref.set(row.subarray(kvr), kvr);
      const { cos, sin } = ropeAt(r.table, r.pos[t], dr);
      ropeRef(ref, kvr, cos, sin, interleave);
      err = Math.max(err, relErr(got.subarray(slots[t] * d, (slots[t] + 1) * d), ref));
    }
  }
  // One 16-bit rounding of each value (half an ulp: 2^-8 relative in bf16, 2^-11 in f16), with room for f32's own.
  return { err: bad ? Infinity : err, tol: format === 'bf16' ? 2 ** -7 : 2 ** -10, note: bad ? `${bad} cache values outside the slots were written` : undefined };
}

async function ropeCheck(ctx: GpuContext, interleave: boolean): Promise<CheckResult> {
  let err = 0;
  // [tokens, heads, headDim, ropeOffset, d]: MLA's q (rope after nope) and k_pe (one head).
  for (const [tokens, heads, headDim, off, d] of [[3, 4, 48, 32, 16], [5, 1, 80, 64, 16], [2, 3, 64, 0, 64]]) {
    const maxPos = 4000;
    const r = ropeSetup(d, maxPos, tokens);
    const x = gauss(tokens * heads * headDim);
    const xt = uploadTensor(ctx, x, [tokens, heads, headDim], 'f32');
    const launch = await planRope(ctx, xt, uploadTensor(ctx, r.pos, [tokens], 'i32'), uploadRopeTable(ctx, r.invFreq, maxPos, r.factor), { ropeOffset: off, interleave });
    await launch.run();
    const ref = Float64Array.from(x);
    for (let t = 0; t < tokens; t++) {
      const { cos, sin } = ropeAt(r.table, r.pos[t], d);
      for (let h = 0; h < heads; h++) ropeRef(ref, (t * heads + h) * headDim + off, cos, sin, interleave);
    }
    err = Math.max(err, relErr(await readTensor(xt), ref));
  }
  return { err, tol: 1e-6 };
}

export const nnChecks: Check[] = [
  { name: 'nn.embedding f32 table gather', run: (ctx) => embeddingCheck(ctx, 'f32') },
  { name: 'nn.embedding bf16 table gather', run: (ctx) => embeddingCheck(ctx, 'bf16') },
  { name: 'nn.rmsNorm rows and column windows', run: rmsNormCheck },
  { name: 'nn.rmsNorm in place over a column window', run: rmsNormInPlaceCheck },
  { name: 'nn.mlaAbsorbQ (plain, and wide rows with rope) / mlaAbsorbO / dequant, e4m3 kv_b with 128x128 scales', run: (ctx) => absorbCheck(ctx, 'e4m3') },
  { name: 'nn.mlaAbsorbQ / mlaAbsorbO / dequant, bf16 and f32 kv_b', run: async (ctx) => { const a = await absorbCheck(ctx, 'bf16'); const b = await absorbCheck(ctx, 'f32'); return { err: Math.max(a.err, b.err), tol: 1e-5 }; } },
  { name: 'nn.mlaKvAppend: latent RMSNorm + k_pe rope + bf16 cache rows at their slots', run: (ctx) => kvAppendCheck(ctx, 'bf16') },
  { name: 'nn.mlaKvAppend: f16 cache rows', run: (ctx) => kvAppendCheck(ctx, 'f16') },
  { name: 'nn.rope interleaved pairs (DeepSeek layout)', run: (ctx) => ropeCheck(ctx, true) },
  { name: 'nn.rope half-split pairs', run: (ctx) => ropeCheck(ctx, false) },
  {
    name: 'nn.siluMul and addInto',
    async run(ctx) {
      const n = 3 * 333;
      const g = gauss(n, 3);
      const u = gauss(n);
      const gt = uploadTensor(ctx, g, [3, 333], 'f32');
      const p = await planSiluMul(ctx, gt, uploadTensor(ctx, u, [3, 333], 'f32'));
      poisonTensor(p.out);
      await p.launch.run();
      const e1 = relErr(await readTensor(p.out), siluMulRef(g, u));
      const b = gauss(n);
      await (await planAddInto(ctx, gt, uploadTensor(ctx, b, [3, 333], 'f32'))).run();
      const e2 = relErr(await readTensor(gt), Float64Array.from(g, (v, i) => v + b[i]));
      return { err: Math.max(e1, e2), tol: 1e-6 };
    },
  },
  {
    name: 'nn.argmax first maximum, ties, NaN and Inf (flagged as -1 with flagNonFinite); rows of one part and rows cut into parts (a logits row)',
    async run(ctx) {
      let bad = 0;
      const notes: string[] = [];
      // n = 1000 is one workgroup's scan; n = 20011 is cut into parts reduced by a second dispatch.
      for (const n of [1000, 20011]) {
        const rows = 9;
        const x = gauss(rows * n);
        // Row 1: a tie between two maxima far apart (the lower index wins, across parts too); row 2:
        // NaNs around; row 3: all equal; row 4: all NaN (-1); row 5: the maximum at the last index;
        // rows 7 and 8: one +Inf (it wins) and one -Inf in the last part.
        x[n + 10] = 50;
        x[n + n - 100] = 50;
        x[2 * n + 5] = NaN;
        x[2 * n + 7] = 40;
        x[2 * n + n - 1] = NaN;
        x.fill(1, 3 * n, 4 * n);
        x.fill(NaN, 4 * n, 5 * n);
        x[6 * n - 1] = 60;
        x[8 * n - 3] = Infinity;
        x[9 * n - 3] = -Infinity;
        const xt = uploadTensor(ctx, x, [rows, n], 'f32');
        const row = (r: number) => x.subarray(r * n, (r + 1) * n);
        for (const flagNonFinite of [false, true]) {
          const p = await planArgmax(ctx, xt, { flagNonFinite });
          poisonTensor(p.out);
          await p.launch.run();
          const ref = Array.from({ length: rows }, (_, r) => (flagNonFinite && row(r).some((v) => !Number.isFinite(v)) ? -1 : argmaxRef(row(r))));
          bad += mismatches(await readTensor(p.out), ref) + (p.launch.dispatches.length === (n > 1000 ? 2 : 1) ? 0 : 1);
          if (!flagNonFinite) notes.push(`n=${n}: ${p.launch.dispatches.length} dispatches`);
          p.launch.destroy();
          p.out.destroy();
        }
        xt.destroy();
      }
      return { err: bad, tol: 0, note: notes.join(', ') };
    },
  },
  {
    name: 'nn errors: shapes, dtypes, offsets and aliasing are refused before dispatch',
    async run(ctx) {
      let err = 0;
      const x = createTensor(ctx, [2, 8], 'f32');
      const w = createTensor(ctx, [8], 'f32');
      err += await throwsLike(() => planEmbedding(ctx, createTensor(ctx, [4, 8], 'f16'), createTensor(ctx, [2], 'i32')), /embedding: table.dtype must be 'f32' or 'bf16', got 'f16'/);
      err += await throwsLike(() => planEmbedding(ctx, x, createTensor(ctx, [2], 'f32')), /ids.dtype must be 'i32'/);
      err += await throwsLike(() => planRmsNorm(ctx, x, createTensor(ctx, [6], 'f32'), { eps: 1e-6, colOffset: 3 }), /rmsNorm: colOffset must be an integer in 0..2/);
      err += await throwsLike(() => planRmsNorm(ctx, x, w, { eps: -1 }), /eps must be a non-negative number/);
      err += await throwsLike(
        () => planRope(ctx, createTensor(ctx, [2, 1, 8], 'f32'), createTensor(ctx, [2], 'i32'), createTensor(ctx, [10, 4, 2], 'f32'), { ropeOffset: 2, interleave: true }),
        /rope: ropeOffset must be an integer in 0..0/,
      );
      err += await throwsLike(() => planRope(ctx, createTensor(ctx, [2, 1, 8], 'f32'), createTensor(ctx, [3], 'i32'), createTensor(ctx, [10, 4, 2], 'f32'), { ropeOffset: 0, interleave: true }), /positions.shape must be \[2\]/);
      err += await throwsLike(() => planSiluMul(ctx, x, createTensor(ctx, [2, 7], 'f32')), /siluMul: up.shape must be \[2, 8\]/);
      err += await throwsLike(() => planAddInto(ctx, x, x), /addInto: b must be a different buffer/);
      err += await throwsLike(() => planArgmax(ctx, w), /argmax: x.shape must be rank 2/);
      err += await throwsLike(() => planRmsNorm(ctx, x, w, { eps: 1e-6, inPlace: true, out: createTensor(ctx, [2, 8], 'f32') }), /rmsNorm: out must be absent when inPlace/);
      const m: MlaDims = { heads: 2, qkNopeHeadDim: 4, qkRopeHeadDim: 4, vHeadDim: 4, kvLoraRank: 8 };
      const q = createTensor(ctx, [1, 2, 8], 'f32');
      err += await throwsLike(() => planMlaAbsorbQ(ctx, q, { t: createTensor(ctx, [15, 8], 'f32') }, m), /mlaAbsorbQ: kvB.t.shape must be \[16, 8\]/);
      err += await throwsLike(() => planMlaAbsorbQ(ctx, q, { t: createTensor(ctx, [16, 8], 'e4m3') }, m), /mlaAbsorbQ: kvB.scale must be a Tensor/);
      err += await throwsLike(() => planMlaAbsorbO(ctx, createTensor(ctx, [1, 2, 7], 'f32'), { t: createTensor(ctx, [16, 8], 'f32') }, m), /mlaAbsorbO: o.shape must be \[\*, 2, 8\]/);
      const kvB = { t: createTensor(ctx, [16, 8], 'f32') };
      err += await throwsLike(() => planMlaAbsorbQ(ctx, createTensor(ctx, [1, 15], 'f32'), kvB, m), /mlaAbsorbQ: q.shape must be \[tokens, 2, 8\] or \[tokens, >= 16\], got \[1, 15\]/);
      const rope = { positions: createTensor(ctx, [1], 'i32'), table: createTensor(ctx, [10, 4, 2], 'f32'), interleave: true };
      err += await throwsLike(() => planMlaAbsorbQ(ctx, q, kvB, m, { rope }), /mlaAbsorbQ: rope.table.shape\[1\] must be qkRopeHeadDim \/ 2 \(2\), got 4/);
      const kv = { kv: createTensor(ctx, [1, 12], 'f32'), norm: createTensor(ctx, [8], 'f32'), eps: 1e-6, rope: { ...rope, table: createTensor(ctx, [10, 2, 2], 'f32') }, slots: createTensor(ctx, [1], 'i32') };
      const kc = createTensor(ctx, [2, 4, 1, 12], 'f16');
      err += await throwsLike(() => planMlaKvAppend(ctx, { ...kv, kvOffset: 1, kcache: kc }), /mlaKvAppend: kvOffset must be an integer in 0..0 \(kv has 12 columns, a row 12\), got 1/);
      err += await throwsLike(() => planMlaKvAppend(ctx, { ...kv, norm: createTensor(ctx, [7], 'f32'), kcache: kc }), /mlaKvAppend: norm.shape must be rank 1 \[kvLoraRank\], kvLoraRank even/);
      err += await throwsLike(() => planMlaKvAppend(ctx, { ...kv, kcache: createTensor(ctx, [2, 4, 1, 12], 'f32') }), /mlaKvAppend: kcache.dtype must be 'bf16' or 'f16', got 'f32'/);
      return { err, tol: 0 };
    },
  },
];
