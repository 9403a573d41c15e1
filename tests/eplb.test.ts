import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { rebalanceExperts, type EplbPlan } from '../src/eplb/eplb.ts';
import { introsort, torchSortDescendingIndices } from '../src/eplb/torch-sort.ts';
import { mulberry32, runSeed } from './conformance/random.ts';

// Made on the accelerator machine by running upstream eplb.py (torch 2.11, CPU) on random cases:
// integer loads, loads in 0..3 (many ties) and float loads, hierarchical and global policies.
interface UpstreamCase extends EplbPlan {
  name: string;
  weight: number[][];
  replicas: number;
  groups: number;
  nodes: number;
  gpus: number;
}
const upstream = JSON.parse(readFileSync(new URL('./fixtures/eplb/upstream.json', import.meta.url), 'utf8')) as {
  meta: { torch: string; cpu: string; tie_sort_probe: Record<string, number[]> };
  cases: UpstreamCase[];
};

const seed = runSeed();
const rand = mulberry32(seed);

/** The properties every plan has, whatever the loads. */
function expectConsistent(plan: EplbPlan, layers: number, experts: number, replicas: number, gpus: number): void {
  expect(plan.phy2log.length).toBe(layers);
  const maxcnt = Math.max(...plan.logcnt.flat());
  for (let l = 0; l < layers; l++) {
    const p2l = plan.phy2log[l];
    const cnt = plan.logcnt[l];
    expect(p2l.length).toBe(replicas);
    expect(cnt.length).toBe(experts);
    expect(cnt.every((c) => c >= 1)).toBe(true);
    expect(cnt.reduce((a, b) => a + b, 0)).toBe(replicas);
    for (let e = 0; e < experts; e++) {
      expect(p2l.filter((x) => x === e).length).toBe(cnt[e]);
      const slots = plan.log2phy[l][e];
      expect(slots.length).toBe(maxcnt);
      // Replica ranks 0..cnt-1 hold distinct slots of this expert; the rest is -1 padding.
      slots.forEach((s, r) => (r < cnt[e] ? expect(p2l[s]).toBe(e) : expect(s).toBe(-1)));
      expect(new Set(slots.slice(0, cnt[e])).size).toBe(cnt[e]);
    }
  }
  // Equal slot counts per GPU hold by construction (slot s is on GPU s / (replicas/gpus)); check the division.
  expect(replicas % gpus).toBe(0);
}

describe('rebalanceExperts (EPLB port)', () => {
  it('gives the README example its published phy2log (hierarchical: 12 experts, 16 replicas, 4 groups, 2 nodes, 8 GPUs)', () => {
    const weight = [
      [90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86],
      [20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27],
    ];
    const plan = rebalanceExperts(weight, 16, 4, 2, 8);
    expect(plan.phy2log).toEqual([
      [5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1],
      [7, 10, 6, 8, 6, 11, 8, 9, 2, 4, 5, 1, 5, 0, 3, 1],
    ]);
    expectConsistent(plan, 2, 12, 16, 8);
  });

  it(`matches upstream eplb.py exactly on ${upstream.cases.length} recorded cases (torch ${upstream.meta.torch}, ${upstream.meta.cpu})`, () => {
    for (const c of upstream.cases) {
      const plan = rebalanceExperts(c.weight, c.replicas, c.groups, c.nodes, c.gpus);
      expect({ name: c.name, ...plan }).toEqual({ name: c.name, phy2log: c.phy2log, log2phy: c.log2phy, logcnt: c.logcnt });
    }
  });

  it('hand-checked global case: one hot expert gets three replicas, spread over both GPUs', () => {
    // Replicas of expert 0 carry 10/3 each; packing (heaviest first, lightest pack, lowest index on ties):
    // GPU0 <- e0 r0, e0 r2, e3; GPU1 <- e0 r1, e1, e2.
    const plan = rebalanceExperts([[10, 1, 1, 1]], 6, 1, 1, 2);
    expect(plan).toEqual({
      phy2log: [[0, 0, 3, 0, 1, 2]],
      log2phy: [[[0, 3, 1], [4, -1, -1], [5, -1, -1], [2, -1, -1]]],
      logcnt: [[3, 1, 1, 1]],
    });
  });

  it('uses the global policy when numNodes does not divide numGroups (groups are then ignored, as upstream)', () => {
    const weight = [Array.from({ length: 12 }, () => Math.floor(rand() * 100))];
    const global = rebalanceExperts(weight, 16, 1, 1, 8);
    expect(rebalanceExperts(weight, 16, 4, 3, 8)).toEqual(global);
    // 5 groups do not divide 12 experts, and 8 GPUs are not a multiple of 3 nodes: both fine for the global policy.
    expect(rebalanceExperts(weight, 16, 5, 3, 8)).toEqual(global);
  });

  it('keeps every group on one node under the hierarchical policy', () => {
    const experts = 32;
    const groups = 8;
    const weight = [Array.from({ length: experts }, () => Math.floor(rand() * 1000))];
    const plan = rebalanceExperts(weight, 48, groups, 4, 8);
    const perNode = 48 / 4;
    for (let g = 0; g < groups; g++) {
      const nodes = new Set(plan.phy2log[0].flatMap((e, s) => (Math.floor(e / (experts / groups)) === g ? [Math.floor(s / perNode)] : [])));
      expect(nodes.size).toBe(1);
    }
  });

  it(`holds its invariants on random loads (seed ${seed})`, () => {
    for (let t = 0; t < 30; t++) {
      const nodes = 1 + Math.floor(rand() * 4);
      const gpus = nodes * (1 + Math.floor(rand() * 4));
      const groups = nodes * (1 + Math.floor(rand() * 3)) + (rand() < 0.3 ? 1 : 0);
      const experts = groups * (1 + Math.floor(rand() * 6));
      const replicas = gpus * Math.ceil((experts + Math.floor(rand() * experts)) / gpus);
      const layers = 1 + Math.floor(rand() * 3);
      const weight = Array.from({ length: layers }, () => Array.from({ length: experts }, () => (rand() < 0.2 ? 0 : Math.floor(rand() * 500))));
      expectConsistent(rebalanceExperts(weight, replicas, groups, nodes, gpus), layers, experts, replicas, gpus);
    }
  });

  it('gives a hot expert most replicas and spreads its load over the GPUs', () => {
    const weight = [[1000, 10, 10, 10, 10, 10, 10, 10]];
    const plan = rebalanceExperts(weight, 16, 1, 1, 4);
    const loads = [0, 0, 0, 0];
    plan.phy2log[0].forEach((e, s) => (loads[Math.floor(s / 4)] += weight[0][e] / plan.logcnt[0][e]));
    expect(Math.max(...loads)).toBeLessThan(400);
    expect(plan.logcnt[0][0]).toBe(9);
  });

  it('refuses what upstream rejects, and bad loads, with the expected and received value', () => {
    const w = [Array.from({ length: 12 }, (_, i) => i + 1)];
    expect(() => rebalanceExperts(w, 18, 4, 2, 8)).toThrow(/numReplicas must be a multiple of numGpus \(8\), got 18/);
    expect(() => rebalanceExperts(w, 8, 4, 2, 8)).toThrow(/numReplicas must be at least the number of logical experts \(12\), got 8/);
    expect(() => rebalanceExperts(w, 16, 8, 2, 8)).toThrow(/numGroups must be a divisor of the number of logical experts \(12\), got 8/);
    expect(() => rebalanceExperts(w, 18, 4, 2, 6)).not.toThrow();
    expect(() => rebalanceExperts(w, 16, 4, 4, 2)).toThrow(/numGpus must be a multiple of numNodes \(4\), got 2/);
    expect(() => rebalanceExperts(w, 16, 0, 2, 8)).toThrow(/numGroups must be a positive integer, got 0/);
    expect(() => rebalanceExperts(w, 16.5, 4, 2, 8)).toThrow(/numReplicas must be a positive integer, got 16.5/);
    expect(() => rebalanceExperts([], 16, 4, 2, 8)).toThrow(/weight must be a non-empty array of per-layer load arrays/);
    expect(() => rebalanceExperts([[]], 16, 4, 2, 8)).toThrow(/weight\[0\].length \(logical experts\) must be at least 1, got 0/);
    expect(() => rebalanceExperts([w[0], w[0].slice(1)], 16, 4, 2, 8)).toThrow(/weight\[1\].length must be 12 \(the expert count of layer 0\), got 11/);
    expect(() => rebalanceExperts([[...w[0].slice(1), -1]], 16, 4, 2, 8)).toThrow(/weight\[0\]\[11\] must be a finite load >= 0, got -1/);
    expect(() => rebalanceExperts([[NaN, ...w[0].slice(1)]], 16, 4, 2, 8)).toThrow(/weight\[0\]\[0\] must be a finite load >= 0, got NaN/);
    expect(() => rebalanceExperts([[Infinity, ...w[0].slice(1)]], 16, 4, 2, 8)).toThrow(/got Infinity/);
  });
});

describe('torchSortDescendingIndices (libstdc++ introsort, as torch CPU sort)', () => {
  it('orders ties the way torch did on the accelerator machine', () => {
    for (const [n, want] of Object.entries(upstream.meta.tie_sort_probe)) {
      expect(torchSortDescendingIndices(new Array(Number(n)).fill(1))).toEqual(want);
    }
  });

  it('is stable up to 16 items and sorts descending at any size', () => {
    const small = [3, 1, 3, 2, 1, 3];
    expect(torchSortDescendingIndices(small)).toEqual([0, 2, 5, 3, 1, 4]);
    const big = Array.from({ length: 300 }, () => Math.floor(rand() * 20));
    const order = torchSortDescendingIndices(big);
    expect([...order].sort((a, b) => a - b)).toEqual(big.map((_, i) => i));
    for (let i = 1; i < order.length; i++) expect(big[order[i - 1]]).toBeGreaterThanOrEqual(big[order[i]]);
  });

  it('sorts through its heapsort fallback (reached when the depth limit runs out)', () => {
    const xs = Array.from({ length: 100 }, () => Math.floor(rand() * 30));
    const idx = xs.map((_, i) => i);
    introsort(idx, (a, b) => xs[a] > xs[b], 0);
    expect([...idx].sort((a, b) => a - b)).toEqual(xs.map((_, i) => i));
    for (let i = 1; i < idx.length; i++) expect(xs[idx[i - 1]]).toBeGreaterThanOrEqual(xs[idx[i]]);
  });
});
