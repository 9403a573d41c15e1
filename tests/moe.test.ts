// CPU tests of the MoE float64 references (hand-checked cases) and of their clear errors.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseExpertLoad } from '../src/kernels/moe/counters.ts';
import { contiguousRowsBound } from '../src/kernels/moe/dispatch.ts';
import { combineRef, dispatchLayoutRef, routeTopkRef, type RouteConfig } from '../src/kernels/moe/reference.ts';
import { routeConfigFromHf } from '../src/kernels/moe/route.ts';

const sig = (x: number) => 1 / (1 + Math.exp(-x));
const V3: RouteConfig = { numExperts: 8, topk: 2, scoringFunc: 'sigmoid', topkMethod: 'noaux_tc', nGroup: 4, topkGroup: 2, normTopkProb: true, routedScalingFactor: 2.5 };
// Groups {0,1} {2,3} {4,5} {6,7}; the best two experts overall (7, 2) sit in the two weakest groups.
const LOGITS = [0, 1, 3, -1, 2, 2, -3, 4];

describe('routeTopkRef', () => {
  it('keeps the topk_group groups with the best top-2 sums, then picks inside them; ties to the lower index', () => {
    const r = routeTopkRef(LOGITS, 1, V3);
    expect(Array.from(r.ids)).toEqual([4, 5]);
    expect(Array.from(r.weights)).toEqual([1.25, 1.25]);
    // The exact tie (4, 5) does not count; the closest decision left is group {0,1} over {2,3}.
    expect(r.margin[0]).toBeCloseTo(sig(0) + sig(1) - sig(3) - sig(-1), 14);
  });

  it('uses the correction bias for selection only: weights come from the unbiased scores', () => {
    const r = routeTopkRef(LOGITS, 1, V3, [0, 0, 0, 0, 0, 0, 0, 1]);
    expect(Array.from(r.ids)).toEqual([7, 4]);
    const w = [sig(4), sig(2)];
    expect(r.weights[0]).toBeCloseTo((2.5 * w[0]) / (w[0] + w[1] + 1e-20), 14);
    expect(r.weights[1]).toBeCloseTo((2.5 * w[1]) / (w[0] + w[1] + 1e-20), 14);
  });

  it('excludes experts of dropped groups even when every kept choice score is negative', () => {
    const cfg: RouteConfig = { ...V3, numExperts: 4, nGroup: 2, topkGroup: 1 };
    const r = routeTopkRef([3, 2, -1, -2], 1, cfg, [-2, -2, -2, -2]);
    expect(Array.from(r.ids)).toEqual([0, 1]);
  });

  it('V2 greedy softmax: the top-k softmax probabilities, scaled, not normalised', () => {
    const r = routeTopkRef([1, 3, 2, 0], 1, { numExperts: 4, topk: 2, scoringFunc: 'softmax', topkMethod: 'greedy', normTopkProb: false, routedScalingFactor: 16 });
    const z = Math.exp(1) + Math.exp(3) + Math.exp(2) + Math.exp(0);
    expect(Array.from(r.ids)).toEqual([1, 2]);
    expect(r.weights[0]).toBeCloseTo((16 * Math.exp(3)) / z, 13);
    expect(r.weights[1]).toBeCloseTo((16 * Math.exp(2)) / z, 13);
  });

  it('V2 group_limited_greedy scores a group by its best expert', () => {
    // Group {0,1} has the best single expert; group {2,3} the best pair.
    const r = routeTopkRef([3, -5, 2.5, 2.5], 1, { numExperts: 4, topk: 1, scoringFunc: 'softmax', topkMethod: 'group_limited_greedy', nGroup: 2, topkGroup: 1, normTopkProb: false, routedScalingFactor: 1 });
    expect(Array.from(r.ids)).toEqual([0]);
    const v3 = routeTopkRef([3, -5, 2.5, 2.5], 1, { ...V3, numExperts: 4, topk: 1, nGroup: 2, topkGroup: 1, scoringFunc: 'softmax' });
    expect(Array.from(v3.ids)).toEqual([2]);
  });

  it('equal logits: the lowest indices, in order', () => {
    const r = routeTopkRef(new Array(8).fill(0.3), 1, { ...V3, topk: 3 });
    expect(Array.from(r.ids)).toEqual([0, 1, 2]);
  });

  it('refuses bad configs with the expected and received value', () => {
    expect(() => routeTopkRef(LOGITS, 1, { ...V3, nGroup: 3 })).toThrow(/nGroup must be a divisor of numExperts \(8\), got 3/);
    expect(() => routeTopkRef(LOGITS, 1, { ...V3, topk: 5 })).toThrow(/topk must be an integer in 1\.\.4 \(the experts left in topkGroup=2 groups of 2\), got 5/);
    expect(() => routeTopkRef(LOGITS, 1, { ...V3, nGroup: 8, topkGroup: 4 })).toThrow(/'noaux_tc' scores a group by its top-2 experts/);
    expect(() => routeTopkRef(LOGITS, 1, { ...V3, topkGroup: 0 })).toThrow(/topkGroup must be an integer in 1\.\.nGroup \(4\), got 0/);
    expect(() => routeTopkRef(LOGITS, 1, { ...V3, scoringFunc: 'relu' as 'sigmoid' })).toThrow(/scoringFunc must be 'softmax' or 'sigmoid', got 'relu'/);
    expect(() => routeTopkRef(LOGITS, 2, V3)).toThrow(/logits length must be tokens \* numExperts = 16, got 8/);
    expect(() => routeTopkRef(LOGITS, 1, V3, [0, 0])).toThrow(/eScoreCorrectionBias length must be numExperts = 8, got 2/);
    expect(() => routeTopkRef(LOGITS, 1, { ...V3, topkMethod: 'greedy', topk: 9 })).toThrow(/topk must be an integer in 1\.\.8/);
  });

  it('reads a hub config.json', () => {
    const cfg = JSON.parse(readFileSync(new URL('./fixtures/tiny-v3-a/config.json', import.meta.url), 'utf8'));
    expect(routeConfigFromHf(cfg)).toEqual({
      numExperts: 16,
      topk: 4,
      scoringFunc: 'sigmoid',
      topkMethod: 'noaux_tc',
      nGroup: 4,
      topkGroup: 2,
      normTopkProb: true,
      routedScalingFactor: 2.5,
    });
  });
});

describe('dispatchLayoutRef and combineRef', () => {
  // Tokens 0..2 with two slots each; token 1's second slot routes nowhere.
  const ids = [0, 2, 2, -1, 1, 2];

  it('contiguous: expert groups padded to the alignment, -1 on padding', () => {
    const r = dispatchLayoutRef(ids, 3, 'contiguous', { alignment: 2 });
    expect(Array.from(r.numTokensPerExpert)).toEqual([1, 1, 3]);
    expect(Array.from(r.srcToDst)).toEqual([0, 4, 5, -1, 2, 6]);
    expect(Array.from(r.mIndices!)).toEqual([0, -1, 1, -1, 2, 2, 2, -1]);
    expect(r.rowsUsed).toBe(8);
    expect(contiguousRowsBound(6, 3, 2)).toBeGreaterThanOrEqual(8);
  });

  it('masked: expert e at rows e * mMax', () => {
    const r = dispatchLayoutRef(ids, 3, 'masked', { mMax: 3 });
    expect(Array.from(r.srcToDst)).toEqual([0, 6, 7, -1, 3, 8]);
  });

  it('combine sums the weighted rows of each token', () => {
    const y = [1, 10, 2, 20, 3, 30];
    expect(Array.from(combineRef(y, 2, [2, 0, -1, 1], [0.5, 2, 1, 1], 2, 2))).toEqual([3.5, 35, 2, 20]);
  });
});

describe('parseExpertLoad', () => {
  it('accepts { layers: number[][] } and refuses counts of the wrong length', () => {
    expect(parseExpertLoad({ layers: [[1, 2], [3, 0]] })).toEqual({ layers: [[1, 2], [3, 0]] });
    expect(() => parseExpertLoad({ layers: [[1, 2], [3]] })).toThrow(/layers\[1\] length must be 2 \(one count per expert\), got 1/);
    expect(() => parseExpertLoad({ layers: [[1, 2]] }, 3)).toThrow(/layers\[0\] length must be 3/);
    expect(() => parseExpertLoad({ layers: [[1, -2]] })).toThrow(/layers\[0\]\[1\] must be a finite non-negative number, got -2/);
    expect(() => parseExpertLoad({ counts: [] })).toThrow(/layers must be a non-empty array/);
  });
});
