// CPU checks of the GEMM references, calc_diff, mIndices validation and the WGSL loop unroller.
import { describe, expect, it } from 'vitest';
import { calcDiff, contiguousReference, gemmReference, maskedReference } from '../src/kernels/gemm/reference.ts';
import { checkMIndices } from '../src/kernels/gemm/gemm.ts';
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
