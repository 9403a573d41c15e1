import { describe, expect, it } from 'vitest';
import { eplbReport, formatReport, parseLoads } from '../src/cli/eplb.ts';
import { imbalance, naiveGpuLoads } from '../src/eplb/eplb.ts';

const readme = [
  [90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86],
  [20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27],
];

describe('deepwgsl eplb', () => {
  it('reads the load counters format and refuses anything else clearly', () => {
    expect(parseLoads('{"layers": [[1, 2], [3, 4]]}')).toEqual([[1, 2], [3, 4]]);
    expect(() => parseLoads('{"layers": [[1, 2], [3, "x"]]}', 'c.json')).toThrow(/c.json: parseExpertLoad: layers\[1\]\[1\] must be a finite non-negative number, got 'x'/);
    expect(() => parseLoads('[[1, 2]]')).toThrow(/layers must be a non-empty array/);
    expect(() => parseLoads('{layers', 'c.json')).toThrow(/c.json: not JSON/);
  });

  it('places experts naively as expert e on GPU floor(e*P/E)', () => {
    expect(naiveGpuLoads([[1, 2, 3, 4, 5, 6]], 4)).toEqual([[1 + 2, 3, 4 + 5, 6]]);
    expect(imbalance([1, 1, 4])).toBe(2);
    expect(imbalance([0, 0])).toBe(1);
  });

  it('reports the plan and per-GPU loads before and after, conserving tokens', () => {
    const r = eplbReport(readme, 16, 4, 2, 8);
    expect(r.policy).toBe('hierarchical');
    expect(r.phy2log[0]).toEqual([5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1]);
    readme.forEach((row, l) => {
      const total = row.reduce((a, b) => a + b, 0);
      expect(r.before[l].reduce((a, b) => a + b, 0)).toBe(total);
      expect(r.after[l].reduce((a, b) => a + b, 0)).toBeCloseTo(total, 9);
      expect(r.imbalanceAfter[l]).toBeLessThan(r.imbalanceBefore[l]);
    });
    // Layer 0 before: GPU 0 holds experts 0 and 1 (90 + 132); GPU 3 holds expert 5 alone (165).
    expect(r.before[0].slice(0, 4)).toEqual([222, 40, 165, 165]);
    const text = formatReport(r);
    expect(text).toContain('layer 1: [7, 10, 6, 8, 6, 11, 8, 9, 2, 4, 5, 1, 5, 0, 3, 1]');
    expect(text).toMatch(/\| 0 \| 1\.851 \| 1\.208 \|/);
    expect(eplbReport(readme, 16, 4, 3, 8).policy).toBe('global');
  });
});
