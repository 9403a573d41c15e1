// GEMM conformance: fp8/bf16/f16/f32 operands, dense, contiguous and masked layouts, both kernels,
// every output dtype, against the float64 references (exact product of the dequantised operands).
// Shapes are small for software adapters; DEEPWGSL_GEMM_FULL=1 adds upstream-sized shapes (checked
// on sampled rows) for a real GPU.
import type { GpuContext } from '../../src/gpu/context.ts';
import { envFlag } from '../../src/gpu/env.ts';
import { decodeE4M3, encodeE4M3 } from '../../src/formats/fp8.ts';
import { decodeBF16, decodeF16, encodeBF16, encodeF16 } from '../../src/formats/half.ts';
import { createTensor, poisonTensor, readTensor, readTensorBits, uploadTensor, type DType, type Tensor } from '../../src/gpu/tensor.ts';
import {
  autotuneGemm,
  bf16GemmNT,
  denseProblem,
  fp8GemmNT,
  getMkAlignmentForContiguousLayout,
  mGroupedBf16GemmNTContiguous,
  mGroupedBf16GemmNTMasked,
  mGroupedFp8GemmNTContiguous,
  mGroupedFp8GemmNTMasked,
  planGemm,
  type GemmConfig,
  type SmallMConfig,
  type TiledConfig,
} from '../../src/kernels/gemm/gemm.ts';
import { calcDiff, contiguousReference, gemmReference, maskedReference } from '../../src/kernels/gemm/reference.ts';
import { MemoryTuningStore } from '../../src/jit/tuning-cache.ts';
import { rand, relErr, throwsLike, type Check, type CheckResult } from './check.ts';
import { randomSpread } from './random.ts';

type Layout = 'dense' | 'contiguous' | 'masked';

interface Case {
  layout: Layout;
  /** e4m3 operands with scales, or these dtypes for A and B (B e4m3 with A bf16/f16/f32: the FP8 GEMMs without A scales, W8A32). */
  ops: 'e4m3' | [DType, DType];
  /** Rows (dense), rows of each group before padding (contiguous), mMax (masked). */
  m: number;
  n: number;
  k: number;
  out: DType;
  c?: DType;
  groupRows?: number[];
  maskedM?: number[];
  /** Masked: the routed group ids the launch walks; groups not named are expected untouched. */
  routed?: number[];
  /** Masked: A holds `aRowsFrom` token rows, read through this map (groups x mMax slots; -7 marks slots past maskedM, never read). */
  aRows?: number[];
  aRowsFrom?: number;
  expectedM?: number;
  config?: GemmConfig;
}

const ceil = (a: number, b: number) => Math.ceil(a / b);
const SMALL: SmallMConfig = { kernel: 'smallM', mr: 4, g: 4, ks: 1, nc: 2, vec: 1, splits: 1, wide: false };
const WIDE: SmallMConfig = { kernel: 'smallM', mr: 4, g: 4, ks: 2, nc: 4, vec: 2, splits: 3, wide: true };
/** Four lane groups along k on two columns: the in-workgroup k split (a 128-lane tree per column). */
const KSPLIT: SmallMConfig = { kernel: 'smallM', mr: 1, g: 4, ks: 4, nc: 2, vec: 1, splits: 1, wide: true };
const TILED: TiledConfig = { kernel: 'tiled', bm: 32, bn: 32, bk: 16, tm: 4, tn: 4, splits: 1 };

/** Host operand: stored values (as the GPU decodes them) and scales spanning 1e-3..1e3 for FP8. */
function operand(rows: number, k: number, dtype: DType, scaleRows: number): { store: ArrayLike<number>; x: Float64Array; scales?: Float32Array } {
  if (dtype === 'e4m3') {
    // Magnitudes 1e-3..400 cover e4m3 subnormals and the top of the range (448 is the largest finite).
    const codes = Uint8Array.from(randomSpread(rand, rows * k, -3, 2.6), encodeE4M3);
    const scales = Float32Array.from(randomSpread(rand, scaleRows * ceil(k, 128), -3, 3), Math.abs);
    return { store: codes, x: Float64Array.from(codes, decodeE4M3), scales };
  }
  const raw = randomSpread(rand, rows * k, -2, 1);
  const round = dtype === 'bf16' ? (v: number) => decodeBF16(encodeBF16(v)) : dtype === 'f16' ? (v: number) => decodeF16(encodeF16(v)) : Math.fround;
  const x = Float64Array.from(raw, round);
  return { store: x, x };
}

function contiguousIndices(groupRows: number[]): Int32Array {
  const align = getMkAlignmentForContiguousLayout();
  const idx: number[] = [];
  groupRows.forEach((rows, g) => {
    for (let i = 0; i < ceil(rows, align) * align; i++) idx.push(i < rows ? g : -1);
  });
  return Int32Array.from(idx);
}

interface Outcome {
  rel: number;
  diff: number;
  untouched: number;
  out: Tensor;
}

async function runCase(ctx: GpuContext, cs: Case, sampleRows?: number): Promise<Outcome> {
  const [aT, bT] = cs.ops === 'e4m3' ? ['e4m3', 'e4m3'] as DType[] : cs.ops;
  const fp8 = bT === 'e4m3';
  const groups = cs.layout === 'dense' ? 1 : cs.layout === 'contiguous' ? cs.groupRows!.length : cs.maskedM!.length;
  const mIndices = cs.layout === 'contiguous' ? contiguousIndices(cs.groupRows!) : undefined;
  const rowsA = cs.layout === 'contiguous' ? mIndices!.length : cs.layout === 'masked' ? groups * cs.m : cs.m;
  const gathered = cs.aRows !== undefined;
  const { n, k } = cs;
  const kb = ceil(k, 128);
  const nb = ceil(n, 128);
  const A = operand(gathered ? cs.aRowsFrom! : rowsA, k, aT, gathered ? cs.aRowsFrom! : rowsA);
  const B = operand(groups * n, k, bT, groups * nb);
  if (fp8 && cs.out === 'f16') {
    // f16 tops out at 65504: shrink the scales (A's, else B's) so that no sum can overflow (bound: every term at its largest).
    const peak = (xs: ArrayLike<number>) => Array.from(xs).reduce((p, v) => Math.max(p, Math.abs(v)), 0);
    const f = Math.min(1, 6e4 / Math.max(1e-30, peak(A.x) * peak(A.scales ?? [1]) * peak(B.x) * peak(B.scales!) * k));
    if (A.scales) A.scales = A.scales.map((v) => v * f);
    else B.scales = B.scales!.map((v) => v * f);
  }
  const aLead = gathered ? [cs.aRowsFrom!] : cs.layout === 'masked' ? [groups, cs.m] : [rowsA];
  const bLead = cs.layout === 'dense' ? [] : [groups];
  const a = uploadTensor(ctx, A.store, [...aLead, k], aT, 'a');
  const b = uploadTensor(ctx, B.store, [...bLead, n, k], bT, 'b');
  const sa = A.scales ? uploadTensor(ctx, A.scales, [...aLead, kb], 'f32', 'sa') : undefined;
  const sb = fp8 ? uploadTensor(ctx, B.scales!, [...bLead, nb, kb], 'f32', 'sb') : undefined;
  const outShape = [...(gathered ? [groups, cs.m] : aLead), n];
  const out = createTensor(ctx, outShape, cs.out, 'out');
  poisonTensor(out);
  let cHost: Float64Array | undefined;
  let c: Tensor | undefined;
  if (cs.c) {
    const co = operand(rowsA, n, cs.c, 0);
    cHost = co.x;
    c = uploadTensor(ctx, co.store, outShape, cs.c, 'c');
  }
  const opts = { c, config: cs.config, routed: cs.routed, aRows: cs.aRows && uploadTensor(ctx, cs.aRows, [cs.aRows.length], 'i32', 'aRows'), ...(cs.routed && { checkIndices: false }) };
  const lhs = sa ? ([a, sa] as [Tensor, Tensor]) : a;
  if (cs.layout === 'dense') {
    if (fp8) await fp8GemmNT(ctx, lhs, [b, sb!], out, opts);
    else await bf16GemmNT(ctx, a, b, out, opts);
  } else if (cs.layout === 'contiguous') {
    if (fp8) await mGroupedFp8GemmNTContiguous(ctx, lhs, [b, sb!], out, mIndices!, opts);
    else await mGroupedBf16GemmNTContiguous(ctx, a, b, out, mIndices!, opts);
  } else {
    const mt = uploadTensor(ctx, cs.maskedM!, [groups], 'i32', 'maskedM');
    const em = cs.expectedM ?? Math.max(...cs.maskedM!);
    if (fp8) await mGroupedFp8GemmNTMasked(ctx, lhs, [b, sb!], out, mt, em, opts);
    else await mGroupedBf16GemmNTMasked(ctx, a, b, out, mt, em, opts);
  }
  const got = await readTensor(out);
  const bits = await readTensorBits(out);
  // Gathered: the reference reads the slots' rows copied into groups (zeros where never read).
  const gather = (x: ArrayLike<number>, w: number) => Float64Array.from({ length: rowsA * w }, (_, i) => (cs.aRows![Math.floor(i / w)] >= 0 ? x[cs.aRows![Math.floor(i / w)] * w + (i % w)] : 0));
  const refA = gathered ? { x: gather(A.x, k), scales: A.scales && Float32Array.from(gather(A.scales, kb)) } : { x: A.x, scales: A.scales };
  const refB = { x: B.x, scales: B.scales };
  // Rows to compare: all, or a sample (full-size shapes) through the dense reference on those rows.
  let rowsChecked: number[] = Array.from({ length: rowsA }, (_, i) => i);
  let ref: Float64Array;
  if (sampleRows !== undefined && cs.layout === 'dense') {
    rowsChecked = Array.from({ length: Math.min(sampleRows, rowsA) }, () => Math.floor(rand() * rowsA));
    ref = new Float64Array(rowsA * n);
    for (const r of rowsChecked) {
      const one = { x: A.x.subarray(r * k, (r + 1) * k), scales: A.scales?.subarray(r * kb, (r + 1) * kb) };
      ref.set(gemmReference(one, refB, 1, n, k, cHost?.subarray(r * n, (r + 1) * n)), r * n);
    }
  } else if (cs.layout === 'dense') ref = gemmReference(refA, refB, rowsA, n, k, cHost);
  else if (cs.layout === 'contiguous') ref = contiguousReference(refA, refB, mIndices!, n, k);
  else ref = maskedReference(refA, refB, cs.maskedM!.map((v, g) => (!cs.routed || cs.routed.includes(g) ? v : 0)), cs.m, n, k);
  const o: number[] = [];
  const r: number[] = [];
  let untouched = 0;
  const poison = cs.out === 'f32' ? 0xffffffff : 0xffff;
  for (const row of rowsChecked) {
    for (let j = 0; j < n; j++) {
      const i = row * n + j;
      if (Number.isNaN(ref[i])) {
        if (bits[i] !== poison) untouched++;
      } else {
        o.push(got[i]);
        r.push(ref[i]);
      }
    }
  }
  for (const t of [a, b, sa, sb, c, opts.aRows]) t?.destroy();
  return { rel: relErr(o, r), diff: calcDiff(o, r), untouched, out };
}

/** Output rounding bounds the error relative to the largest output. */
const REL_TOL: Record<string, number> = { f32: 1e-5, bf16: 8e-3, f16: 1e-3 };

async function runCases(ctx: GpuContext, cases: Case[], sampleRows?: number): Promise<CheckResult> {
  let worst = 0;
  let worstDiff = 0;
  const notes: string[] = [];
  for (const cs of cases) {
    const o = await runCase(ctx, cs, sampleRows);
    o.out.destroy();
    const label = `${cs.layout} ${JSON.stringify(cs.ops)} m=${cs.m} n=${cs.n} k=${cs.k} ${cs.out}${cs.c ? ` +C ${cs.c}` : ''}${cs.config ? ` ${cs.config.kernel}` : ''}`;
    // calc_diff must stay under DeepGEMM's 1e-3 and the max error within the output's rounding.
    const scaled = o.diff >= 1e-3 || o.untouched ? Infinity : o.rel / REL_TOL[cs.out];
    if (!(scaled <= 1)) notes.push(`${label}: rel ${o.rel.toExponential(2)} calc_diff ${o.diff.toExponential(2)} untouched-violations ${o.untouched}`);
    worst = Math.max(worst, Number.isNaN(scaled) ? Infinity : scaled);
    worstDiff = Math.max(worstDiff, o.diff);
  }
  return { err: worst, tol: 1, note: notes.slice(0, 2).join('; ') || `${cases.length} cases; err = max rel err / output-dtype bound; worst calc_diff ${worstDiff.toExponential(2)}` };
}

const OUTS: DType[] = ['bf16', 'f16', 'f32'];

const smallShapes: [number, number, number][] = [[1, 64, 128], [3, 130, 200], [16, 66, 384], [5, 2, 7]];
const tiledShapes: [number, number, number][] = [[17, 130, 200], [33, 64, 257], [64, 96, 128], [70, 31, 5]];

function dense(shapes: [number, number, number][], config: GemmConfig | undefined, ops: Case['ops'] = 'e4m3'): Case[] {
  return shapes.flatMap(([m, n, k], i) => ({ layout: 'dense' as const, ops, m, n, k, out: OUTS[i % 3], c: i === 1 ? 'f32' as DType : i === 2 ? 'bf16' as DType : undefined, config }));
}

function allCodesCheck(config: GemmConfig, codesIn: 'a' | 'b' = 'a'): Check['run'] {
  // Row i of one operand holds code i, the other is 1.0, all scales 1: out = decode(code) exactly (NaN code included).
  // Codes in B take the 16-byte-load path's NaN check (k = 16: code i at byte i % 16 of its row, the
  // rest zero, A all 1.0), so every byte position of the 16 is checked.
  return async (ctx) => {
    const k = codesIn === 'b' ? 16 : 1;
    const rows = (n: number, at: (row: number, j: number) => number) => Uint8Array.from({ length: n * k }, (_, j) => at(Math.floor(j / k), j % k));
    const one = (shape: number[]) => uploadTensor(ctx, new Float32Array(shape[0] * shape[1]).fill(1), shape, 'f32');
    const codes = uploadTensor(ctx, rows(256, (i, j) => (j === i % k ? i : 0)), [256, k], 'e4m3');
    const unit = uploadTensor(ctx, rows(1, () => encodeE4M3(1)), [1, k], 'e4m3');
    const [a, b] = codesIn === 'a' ? [codes, unit] : [unit, codes];
    const out = createTensor(ctx, [a.shape[0], b.shape[0]], 'f32');
    poisonTensor(out);
    await fp8GemmNT(ctx, [a, one([a.shape[0], 1])], [b, one([Math.ceil(b.shape[0] / 128), 1])], out, { config });
    const got = await readTensor(out);
    let bad = 0;
    got.forEach((v, i) => {
      const want = decodeE4M3(i);
      if (!(Number.isNaN(want) ? Number.isNaN(v) : v === want)) bad++;
    });
    return { err: bad, tol: 0, note: '256 codes' };
  };
}

async function badInputs(ctx: GpuContext): Promise<CheckResult> {
  const t = (shape: number[], dtype: DType) => createTensor(ctx, shape, dtype);
  const a = t([4, 200], 'e4m3');
  const sa = t([4, 2], 'f32');
  const b = t([130, 200], 'e4m3');
  const sb = t([2, 2], 'f32');
  const out = t([4, 130], 'bf16');
  let err = 0;
  err += await throwsLike(() => fp8GemmNT(ctx, [t([4, 200], 'i32'), sa], [b, sb], out), /fp8GemmNT: lhs.dtype must be 'e4m3' or 'bf16' or 'f16' or 'f32', got 'i32'/);
  err += await throwsLike(() => fp8GemmNT(ctx, [a, sa], [t([130, 200], 'bf16'), sb], out), /fp8GemmNT: rhs.dtype must be 'e4m3', got 'bf16'/);
  err += await throwsLike(() => mGroupedFp8GemmNTMasked(ctx, t([2, 8, 200], 'f32'), [t([2, 130, 200], 'e4m3'), t([2, 2, 2], 'f32')], t([2, 8, 130], 'f32'), [1, 1], 1, { config: { ...SMALL, ks: 3 } }), /config must be ks in 1,2,4,8 dividing g/);
  err += await throwsLike(() => fp8GemmNT(ctx, [a, t([4, 1], 'f32')], [b, sb], out), /lhsScales.shape must be \[4, 2\], got \[4, 1\]/);
  err += await throwsLike(() => fp8GemmNT(ctx, [a, sa], [b, t([1, 2], 'f32')], out), /rhsScales.shape must be \[2, 2\], got \[1, 2\]/);
  err += await throwsLike(() => fp8GemmNT(ctx, [a, sa], [t([130, 100], 'e4m3'), sb], out), /rhs.shape must be \[\.\.\., n, 200\]/);
  err += await throwsLike(() => fp8GemmNT(ctx, [a, sa], [b, sb], t([4, 129], 'bf16')), /out.shape must be \[4, 130\], got \[4, 129\]/);
  err += await throwsLike(() => fp8GemmNT(ctx, [a, sa], [b, sb], t([4, 130], 'e4m3')), /out.dtype must be/);
  err += await throwsLike(() => fp8GemmNT(ctx, a, [b, sb], out), /lhsScales must be a Tensor/);
  err += await throwsLike(() => fp8GemmNT(ctx, [a] as never, [b, sb], out), /lhs must be a pair/);
  err += await throwsLike(() => fp8GemmNT(ctx, [a, sa], [b, sb], out, { c: t([4, 131], 'f32') }), /c.shape must be \[4, 130\]/);
  err += await throwsLike(() => bf16GemmNT(ctx, a, t([130, 200], 'bf16'), out), /bf16GemmNT: a.dtype must be 'bf16' or 'f16' or 'f32', got 'e4m3'/);
  err += await throwsLike(() => fp8GemmNT(ctx, [a, sa], [b, sb], out, { config: { kernel: 'tiled', bm: 48, bn: 64, bk: 16, tm: 4, tn: 4, splits: 1 } }), /config must be bm, bn in 32,64,128/);
  // Grouped layouts.
  const gb = t([2, 130, 200], 'e4m3');
  const gsb = t([2, 2, 2], 'f32');
  const ca = t([256, 200], 'e4m3');
  const csa = t([256, 2], 'f32');
  const cout = t([256, 130], 'bf16');
  const idx = (f: (i: number) => number) => Int32Array.from({ length: 256 }, (_, i) => f(i));
  err += await throwsLike(() => mGroupedFp8GemmNTContiguous(ctx, [ca, csa], [gb, gsb], cout, idx((i) => (i < 128 ? 0 : 2))), /mIndices\[128\] must be -1 \(padding\) or a group in 0\.\.1, got 2/);
  err += await throwsLike(() => mGroupedFp8GemmNTContiguous(ctx, [ca, csa], [gb, gsb], cout, idx((i) => (i < 5 ? 0 : i < 10 ? -1 : i < 128 ? 0 : 1))), /mIndices\[10\] must be grouped/);
  err += await throwsLike(() => mGroupedFp8GemmNTContiguous(ctx, [ca, csa], [gb, gsb], cout, idx((i) => (i < 64 ? 0 : i < 128 ? 1 : -1))), /mIndices\[64\] must be grouped/);
  err += await throwsLike(() => mGroupedFp8GemmNTContiguous(ctx, [t([100, 200], 'e4m3'), t([100, 2], 'f32')], [gb, gsb], t([100, 130], 'bf16'), new Int32Array(100)), /mIndices.length must be a multiple of 128/);
  const gpuIdx = uploadTensor(ctx, idx((i) => (i < 128 ? 0 : 5)), [256], 'i32');
  err += await throwsLike(() => mGroupedFp8GemmNTContiguous(ctx, [ca, csa], [gb, gsb], cout, gpuIdx), /mIndices\[128\] must be -1 \(padding\) or a group in 0\.\.1, got 5/);
  const ma = t([2, 8, 200], 'e4m3');
  const msa = t([2, 8, 2], 'f32');
  const mout = t([2, 8, 130], 'f32');
  err += await throwsLike(() => mGroupedFp8GemmNTMasked(ctx, [ma, msa], [gb, gsb], mout, [3, 9], 4), /maskedM\[1\] must be in 0\.\.mMax \(8\), got 9/);
  err += await throwsLike(() => mGroupedFp8GemmNTMasked(ctx, [ma, msa], [gb, gsb], mout, uploadTensor(ctx, [3, 9], [2], 'i32'), 4), /maskedM\[1\] must be in 0\.\.mMax/);
  err += await throwsLike(() => mGroupedFp8GemmNTMasked(ctx, [ma, msa], [gb, gsb], mout, [3], 4), /maskedM.length must be 2, got 1/);
  err += await throwsLike(() => mGroupedFp8GemmNTMasked(ctx, [ma, msa], [gb, gsb], t([2, 8, 129], 'f32'), [3, 3], 4), /out.shape must be \[2, 8, 130\]/);
  err += await throwsLike(() => mGroupedFp8GemmNTMasked(ctx, [ma, msa], [gb, gsb], mout, [3, 3], 4, { config: { ...SMALL, splits: 2 } }), /split-k only in the dense layout/);
  err += await throwsLike(() => mGroupedFp8GemmNTMasked(ctx, [ma, msa], [gb, gsb], mout, [3, 3], 4, { routed: [0, 1], config: TILED }), /routed groups only with the small-m kernel/);
  err += await throwsLike(() => mGroupedFp8GemmNTMasked(ctx, [ma, msa], [gb, gsb], mout, [3, 3], 4, { routed: t([2], 'f32') }), /routed.dtype must be 'i32', got 'f32'/);
  err += await throwsLike(() => mGroupedFp8GemmNTMasked(ctx, [ma, msa], [gb, gsb], mout, [3, 3], 4, { routed: [] }), /routed must be at least one group id, got 0/);
  err += await throwsLike(() => mGroupedFp8GemmNTMasked(ctx, [ma, msa], [gb, gsb], mout, [3, 2], 4, { routed: [0, -1] }), /routed must be ids naming every group with rows, got 'none for group 1 \(maskedM\[1\] = 2\)'/);
  err += await throwsLike(() => fp8GemmNT(ctx, [a, sa], [b, sb], out, { config: WIDE }), /wide only with e4m3 B, k % 16 == 0/);
  err += await throwsLike(() => mGroupedFp8GemmNTMasked(ctx, [a, sa], [gb, gsb], mout, [3, 3], 4, { aRows: [0, 1, 2] }), /aRows must be groups \(2\) x mMax slots, got '3 entries'/);
  err += await throwsLike(() => mGroupedFp8GemmNTMasked(ctx, [a, sa], [gb, gsb], mout, [2, 1], 4, { aRows: [0, 3, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0] }), /aRows\[8\] must be a row of lhs in 0\.\.3 \(slot 0 of group 1\), got 4/);
  err += await throwsLike(() => mGroupedFp8GemmNTMasked(ctx, [a, sa], [gb, gsb], mout, [1, 1], 4, { aRows: new Int32Array(16), config: TILED }), /gathered A rows \(aRows\) only with the small-m kernel/);
  err += await throwsLike(() => mGroupedBf16GemmNTContiguous(ctx, t([256, 200], 'bf16'), t([2, 130, 200], 'bf16'), cout, idx(() => 0), { config: SMALL }), /small-m kernel does not take the contiguous layout/);
  return { err, tol: 0, note: '32 bad calls' };
}

const full = envFlag('DEEPWGSL_GEMM_FULL');

export const gemmChecks: Check[] = [
  { name: 'gemm fp8 e4m3 decode: all 256 codes through the small-m kernel, exact', run: allCodesCheck(SMALL) },
  { name: 'gemm fp8 e4m3 decode: all 256 codes through the tiled kernel, exact', run: allCodesCheck(TILED) },
  { name: 'gemm fp8 e4m3 decode: all 256 codes of B through the 16-byte loads, exact', run: allCodesCheck({ ...KSPLIT, splits: 1 }, 'b') },
  {
    name: 'gemm fp8GemmNT small-m kernel: m 1..16, n/k not multiples of 128, bf16/f16/f32 out, +C, split-k, 16-byte loads',
    run: (ctx) =>
      runCases(ctx, [
        ...dense(smallShapes, SMALL),
        ...dense(smallShapes.slice(1, 3), { ...SMALL, mr: 16, nc: 4, vec: 2, splits: 2 }),
        ...dense([[1, 64, 512], [3, 130, 400]], WIDE),
        ...dense([[8, 66, 400], [13, 64, 512]], { ...WIDE, mr: 8, nc: 2, vec: 1, splits: 2 }),
        ...dense([[16, 64, 256]], { ...WIDE, mr: 16, nc: 1, splits: 1 }),
        ...dense([[1, 66, 400]], KSPLIT),
      ]),
  },
  {
    name: 'gemm fp8GemmNT tiled kernel: odd m, n/k not multiples of 128, bf16/f16/f32 out, +C, split-k',
    run: (ctx) => runCases(ctx, [...dense(tiledShapes, TILED), ...dense(tiledShapes.slice(1, 2), { kernel: 'tiled', bm: 64, bn: 64, bk: 32, tm: 8, tn: 8, splits: 2 })]),
  },
  {
    name: 'gemm fp8GemmNT default configs (heuristic per shape), k = 0 gives C',
    run: (ctx) => runCases(ctx, [...dense([[1, 200, 300], [8, 64, 512], [40, 70, 129]], undefined), { layout: 'dense', ops: 'e4m3', m: 3, n: 4, k: 0, out: 'f32', c: 'f32' }]),
  },
  {
    name: 'gemm bf16GemmNT: bf16, f16, f32 and mixed operands on both kernels',
    run: (ctx) =>
      runCases(ctx, [
        ...dense(smallShapes.slice(0, 2), SMALL, ['bf16', 'bf16']),
        ...dense(tiledShapes.slice(1, 3), TILED, ['f16', 'f16']),
        ...dense([[2, 33, 70], [20, 40, 33]], undefined, ['f32', 'bf16']),
      ]),
  },
  {
    name: 'gemm mGroupedFp8GemmNTContiguous: empty groups, one-row groups, padding rows zero',
    run: (ctx) =>
      runCases(ctx, [
        { layout: 'contiguous', ops: 'e4m3', m: 0, n: 130, k: 200, out: 'bf16', groupRows: [1, 0, 130, 5], config: TILED },
        { layout: 'contiguous', ops: 'e4m3', m: 0, n: 64, k: 128, out: 'f32', groupRows: [0, 128, 1] },
        { layout: 'contiguous', ops: ['bf16', 'bf16'], m: 0, n: 40, k: 72, out: 'f16', groupRows: [3, 0, 2], config: { kernel: 'tiled', bm: 128, bn: 64, bk: 8, tm: 8, tn: 4, splits: 1 } },
      ]),
  },
  {
    name: 'gemm mGroupedFp8GemmNTMasked: maskedM 0, 1, mMax on both kernels; rows past maskedM stay untouched',
    run: (ctx) =>
      runCases(ctx, [
        { layout: 'masked', ops: 'e4m3', m: 8, n: 130, k: 200, out: 'bf16', maskedM: [3, 0, 8, 1], config: SMALL },
        { layout: 'masked', ops: 'e4m3', m: 40, n: 66, k: 160, out: 'f32', maskedM: [0, 40, 17], config: TILED },
        { layout: 'masked', ops: 'e4m3', m: 24, n: 64, k: 130, out: 'f16', maskedM: [20, 5], expectedM: 4 },
        { layout: 'masked', ops: ['f16', 'bf16'], m: 36, n: 32, k: 64, out: 'bf16', maskedM: [36, 2, 0], expectedM: 30 },
      ]),
  },
  {
    // Decode's MoE: grid z over the tokens' topk ids; -1 and ids past the groups launch nothing, and
    // a group with rows that no id names stays untouched (unchecked launches: the MoE layer's). A
    // repeated id is computed once; twice would write the same bits, so only the repeats' presence
    // is checked here. Rows past 8 take the staged-A path, FP8 activations the 16-byte one.
    name: 'gemm masked over routed group ids (small-m): repeats, -1 and out-of-range ids, unnamed groups untouched',
    run: (ctx) =>
      runCases(ctx, [
        { layout: 'masked', ops: 'e4m3', m: 8, n: 130, k: 200, out: 'bf16', maskedM: [3, 0, 8, 1], routed: [2, -1, 0, 2, 3, 7], config: SMALL },
        { layout: 'masked', ops: ['f32', 'e4m3'], m: 8, n: 130, k: 256, out: 'f32', maskedM: [1, 2, 3], routed: [2, 0, 0], expectedM: 1 },
        { layout: 'masked', ops: ['bf16', 'bf16'], m: 4, n: 66, k: 64, out: 'f32', maskedM: [4, 1], routed: [1, 0, 1, 1], config: { ...SMALL, mr: 1 } },
        { layout: 'masked', ops: ['f32', 'e4m3'], m: 16, n: 64, k: 256, out: 'f32', maskedM: [9, 16, 5], routed: [1, 0, 1], config: { ...SMALL, mr: 16 } },
        { layout: 'masked', ops: 'e4m3', m: 4, n: 130, k: 256, out: 'bf16', maskedM: [2, 4, 3], routed: [2, 1, 2], config: { ...WIDE, splits: 1 } },
      ]),
  },
  {
    // Decode's MoE without the dispatch copy: each group's slots read token rows through a map
    // (repeats across groups, slots past maskedM never read), f32 and FP8 A, staged and 16-byte paths.
    name: 'gemm masked with gathered A rows (aRows, small-m): token rows read in place, routed or not',
    run: (ctx) =>
      runCases(ctx, [
        { layout: 'masked', ops: ['f32', 'e4m3'], m: 2, n: 130, k: 256, out: 'f32', maskedM: [1, 0, 2], aRows: [3, -7, -7, -7, 0, 3], aRowsFrom: 4, routed: [2, 0, 0] },
        { layout: 'masked', ops: 'e4m3', m: 3, n: 66, k: 200, out: 'bf16', maskedM: [3, 1], aRows: [4, 1, 2, 0, -7, -7], aRowsFrom: 5, config: SMALL },
        { layout: 'masked', ops: ['bf16', 'bf16'], m: 2, n: 40, k: 64, out: 'f32', maskedM: [2, 2], aRows: [1, 0, 0, 1], aRowsFrom: 2, routed: [1, 0], config: { ...SMALL, mr: 1 } },
        { layout: 'masked', ops: ['f32', 'e4m3'], m: 9, n: 64, k: 256, out: 'f32', maskedM: [9, 4], aRows: [8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 3, 5, 7, -7, -7, -7, -7, -7], aRowsFrom: 9, config: { ...SMALL, mr: 16 } },
        { layout: 'masked', ops: 'e4m3', m: 2, n: 130, k: 256, out: 'bf16', maskedM: [2, 1], aRows: [1, 2, 0, -7], aRowsFrom: 3, config: { ...WIDE, splits: 1 } },
      ]),
  },
  {
    name: 'gemm W8A32: FP8 weights with f32/bf16 activations (no A scales), dense and grouped, both kernels',
    run: (ctx) =>
      runCases(ctx, [
        ...dense([[1, 64, 512], [4, 130, 400]], undefined, ['f32', 'e4m3']),
        ...dense([[3, 130, 200]], SMALL, ['bf16', 'e4m3']),
        ...dense([[2, 66, 256]], undefined, ['bf16', 'e4m3']),
        ...dense([[17, 66, 200]], TILED, ['f32', 'e4m3']),
        { layout: 'masked', ops: ['f32', 'e4m3'], m: 8, n: 130, k: 256, out: 'f32', maskedM: [1, 0, 3], expectedM: 1 },
        { layout: 'masked', ops: ['f32', 'e4m3'], m: 8, n: 130, k: 200, out: 'f32', maskedM: [2, 8, 0], config: SMALL },
        { layout: 'contiguous', ops: ['f32', 'e4m3'], m: 0, n: 64, k: 200, out: 'f32', groupRows: [2, 0, 1] },
      ]),
  },
  {
    name: 'gemm autotune times candidate configs, caches the winner, and launches use it',
    async run(ctx) {
      const store = new MemoryTuningStore();
      const mk = (shape: number[], dtype: DType) => uploadTensor(ctx, randomSpread(rand, shape[0] * shape[1], -1, 1), shape, dtype);
      const p = denseProblem('test', false, { a: mk([40, 64], 'bf16'), b: mk([64, 64], 'bf16') }, createTensor(ctx, [40, 64], 'f32'));
      const first = await autotuneGemm(ctx, p, { store, iters: 2, maxCandidates: 3 });
      const second = await autotuneGemm(ctx, p, { store, maxCandidates: 3 });
      // A launch planned without a config takes the stored winner.
      const planned = await planGemm(ctx, 'test', p, undefined, store);
      const same = (x: object) => (JSON.stringify(x) === JSON.stringify(first.best) ? 0 : 1);
      const err = (first.results.length >= 2 ? 0 : 1) + (second.fromCache ? 0 : 1) + same(second.best) + same(planned.info.config);
      return { err, tol: 0, note: `${first.method}: ${first.results.length} configs, best ${JSON.stringify(first.best)}` };
    },
  },
  { name: 'gemm bad input: dtypes, scale shapes, mIndices, maskedM, output shape, configs refused before dispatch', run: badInputs },
  ...(full
    ? [
        {
          name: 'gemm full shapes (DEEPWGSL_GEMM_FULL): upstream sizes, sampled rows',
          run: (ctx: GpuContext) =>
            runCases(ctx, [
              ...dense([[1, 2112, 7168], [4, 7168, 2048], [128, 576, 7168], [4096, 4096, 7168]], undefined),
              { layout: 'masked', ops: 'e4m3', m: 256, n: 4096, k: 2048, out: 'bf16', maskedM: [20, 0, 26, 14], expectedM: 20 },
              { layout: 'contiguous', ops: 'e4m3', m: 0, n: 512, k: 2048, out: 'bf16', groupRows: [300, 0, 129, 1] },
            ], 8),
        } satisfies Check,
      ]
    : []),
];
