// CPU checks of the GEMM references, calc_diff, mIndices validation and the WGSL loop unroller.
import { describe, expect, it } from 'vitest';
import { calcDiff, contiguousReference, gemmReference, maskedReference } from '../src/kernels/gemm/reference.ts';
import { checkMIndices, defaultGemmConfig, denseProblem, gemmCandidates } from '../src/kernels/gemm/gemm.ts';
import type { GpuContext } from '../src/gpu/context.ts';
import { Tensor, type DType } from '../src/gpu/tensor.ts';
import { unrollLoops } from '../src/jit/unroll.ts';

describe('gemm references', () => {
  it('dense: hand-checked 2x2 with C', () => {
    // A = [[1,2],[3,4]], B = [[5,6],[7,8]] -> A @ B.T = [[17,23],[39,53]]; + C.
    const d = gemmReference({ x: [1, 2, 3, 4] }, { x: [5, 6, 7, 8] }, 2, 2, 2, [1, 0, 0, -1]);
    expect(Array.from(d)).toEqual([18, 23, 39, 52]);
  });

  it('fp8 scales: 1x128 on A rows, 128x128 on B blocks, per k slice', () => {
    const k = 130; // two slices: 128 + 2
    const a = { x: new Array(k).fill(1), scales: [2, 10] };
    const b = { x: new Array(2 * k).fill(1), scales: [3, 5] }; // one 128-row block, 2 slices
    const d = gemmReference(a, b, 1, 2, k);
    expect(Array.from(d)).toEqual([128 * 2 * 3 + 2 * 10 * 5, 128 * 2 * 3 + 2 * 10 * 5]);
  });

  it('contiguous: padding rows are zero, each row uses its group', () => {
    const d = contiguousReference({ x: [1, 2, 3] }, { x: [10, 20] }, [1, -1, 0], 1, 1);
    expect(Array.from(d)).toEqual([20, 0, 30]);
  });

  it('masked: rows past maskedM are NaN (untouched)', () => {
    const d = maskedReference({ x: [1, 2, 3, 4] }, { x: [10, 20] }, [1, 2], 2, 1, 1);
    expect(Array.from(d)).toEqual([10, NaN, 60, 80]);
  });

  it('calcDiff is DeepGEMM\'s measure', () => {
    expect(calcDiff([1, 2], [1, 2])).toBeCloseTo(0, 15);
    expect(calcDiff([0, 0], [0, 0])).toBe(0);
    expect(calcDiff([1, 0], [0, 1])).toBe(1);
    expect(calcDiff([1], [-1])).toBe(2);
  });
});

describe('mIndices validation', () => {
  const block = (f: (i: number) => number) => Int32Array.from({ length: 128 }, (_, i) => f(i));
  it('accepts group rows then -1 padding per aligned block, empty groups and one-row groups', () => {
    expect(() => checkMIndices('t', Int32Array.from([...block(() => 0), ...block((i) => (i < 1 ? 2 : -1))]), 3)).not.toThrow();
  });
  it('refuses mixed groups, rows after padding, out-of-range groups and bad lengths', () => {
    expect(() => checkMIndices('t', block((i) => (i < 64 ? 0 : 1)), 2)).toThrow(/mIndices\[64\] must be grouped/);
    expect(() => checkMIndices('t', block((i) => (i === 3 ? -1 : 0)), 1)).toThrow(/mIndices\[4\] must be grouped/);
    expect(() => checkMIndices('t', block(() => 2), 2)).toThrow(/must be -1 \(padding\) or a group in 0\.\.1, got 2/);
    expect(() => checkMIndices('t', new Int32Array(5), 1)).toThrow(/multiple of 128/);
  });
});

describe('unrollLoops', () => {
  it('replaces marked loops (nested, const bounds) with literal-index blocks', () => {
    const src = 'fn f() {\n  // @unroll\n  for (var i = 0u; i < N; i++) {\n    // @unroll\n    for (var j = 0u; j < 2; j++) {\n      x[i * 2u + j] = 1.0;\n    }\n  }\n}';
    const out = unrollLoops(src, { N: 2 });
    expect(out).not.toMatch(/for|@unroll/);
    for (const idx of ['0u * 2u + 0u', '0u * 2u + 1u', '1u * 2u + 0u', '1u * 2u + 1u']) expect(out).toContain(`x[${idx}]`);
  });
  it('leaves unmarked loops and refuses unknown bounds', () => {
    expect(unrollLoops('for (var i = 0u; i < N; i++) { }', { N: 2 })).toContain('for (var i');
    expect(() => unrollLoops('// @unroll\nfor (var i = 0u; i < M; i++) {\n}\n', {})).toThrow(/bound 'M'/);
  });
});

describe('small-m heuristic (decode shapes; what bench --decode --tune picked in the step on an H100)', () => {
  // Only the limits are read: an H100's through Dawn.
  const ctx = { limits: { maxStorageBuffersPerShaderStage: 10, maxComputeInvocationsPerWorkgroup: 1024, maxComputeWorkgroupStorageSize: 49152 } } as unknown as GpuContext;
  const t = (shape: number[], dtype: DType) => new Tensor(ctx, {} as GPUBuffer, shape, dtype);
  // W8A32 m = 1: f32 activations, e4m3 weights with 128x128 scales, f32 out.
  const problem = (n: number, k: number, m = 1) =>
    denseProblem('test', true, { a: t([m, k], 'f32'), b: t([n, k], 'e4m3'), sb: t([Math.ceil(n / 128), Math.ceil(k / 128)], 'f32') }, t([m, n], 'f32'));
  const pick = (n: number, k: number) => defaultGemmConfig(ctx, problem(n, k));

  it('few columns: one per lane, one 16-byte load per step (V2-Lite q_kv_a, o_proj)', () => {
    for (const n of [3648, 2048]) expect(pick(n, 2048)).toMatchObject({ kernel: 'smallM', ks: 2, nc: 1, vec: 1, splits: 1, wide: true });
  });

  it('short k: one load per step; long k keeps two (lm_head 129280 x 7168, 7168 x 16384 split in two)', () => {
    expect(pick(24576, 1536)).toMatchObject({ nc: 2, vec: 1, wide: true });
    expect(pick(129280, 7168)).toMatchObject({ ks: 1, nc: 2, vec: 2, splits: 1 });
    expect(pick(7168, 16384)).toMatchObject({ ks: 2, nc: 2, vec: 2, splits: 2 });
  });

  it('8 rows: staged A by default; the tuner also tries 16-byte loads reading the 8 rows directly', () => {
    const p = problem(3648, 2048, 8);
    expect(defaultGemmConfig(ctx, p)).toMatchObject({ kernel: 'smallM', mr: 8, wide: false });
    expect(gemmCandidates(ctx, p).filter((c) => c.kernel === 'smallM' && c.mr === 8 && c.wide).length).toBeGreaterThan(0);
  });
});
