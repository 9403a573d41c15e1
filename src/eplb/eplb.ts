// Expert-parallelism load balancer: a TypeScript port of DeepSeek's eplb.py (github.com/deepseek-ai/EPLB).
// Same plans as upstream, bit for bit: loads are rounded to f32 first (`weight.float()`), every sum
// and quotient upstream does in f32 is rounded the same way here (Math.fround after each op: one
// f64 op then a round to f32 is correctly rounded for + and /), argmax takes the first maximum
// (torch's CPU max), the packing takes the lowest-numbered lightest pack (Python's min), and items
// are packed in the order of torch's unstable CPU sort (see torch-sort.ts).
import { fail } from '../gpu/errors.ts';
import { torchSortDescendingIndices } from './torch-sort.ts';

export interface EplbPlan {
  /** [layers][numReplicas]: the logical expert each physical slot holds. Slot s lives on GPU floor(s / (numReplicas / numGpus)). */
  phy2log: number[][];
  /** [layers][logicalExperts][maxReplicas]: the physical slots of each logical expert, by replica rank, padded with -1. */
  log2phy: number[][][];
  /** [layers][logicalExperts]: how many replicas each logical expert has. */
  logcnt: number[][];
}

interface Packing {
  pack: number[];
  rank: number[];
}

/** Packs items into `numPacks` packs of equal item count, heaviest item first into the lightest pack with room. */
function balancedPacking(weight: number[], numPacks: number): Packing {
  const n = weight.length;
  const perPack = n / numPacks;
  if (perPack === 1) return { pack: weight.map((_, i) => i), rank: weight.map(() => 0) };
  const pack = new Array<number>(n).fill(-1);
  const rank = new Array<number>(n).fill(-1);
  const packWeight = new Array<number>(numPacks).fill(0);
  const packItems = new Array<number>(numPacks).fill(0);
  for (const item of torchSortDescendingIndices(weight)) {
    let best = -1;
    for (let p = 0; p < numPacks; p++) {
      if (packItems[p] < perPack && (best < 0 || packWeight[p] < packWeight[best])) best = p;
    }
    pack[item] = best;
    rank[item] = packItems[best];
    packWeight[best] = Math.fround(packWeight[best] + weight[item]);
    packItems[best]++;
  }
  return { pack, rank };
}

interface Replication {
  phy2log: number[];
  rank: number[];
  logcnt: number[];
}

/** Adds replicas one at a time, each to the expert with the highest load per replica. */
function replicateExperts(weight: number[], numPhy: number): Replication {
  const numLog = weight.length;
  const phy2log = weight.map((_, i) => i);
  const rank = weight.map(() => 0);
  const logcnt = weight.map(() => 1);
  for (let i = numLog; i < numPhy; i++) {
    let best = 0;
    let bestLoad = Math.fround(weight[0] / logcnt[0]);
    for (let e = 1; e < numLog; e++) {
      const load = Math.fround(weight[e] / logcnt[e]);
      if (load > bestLoad) {
        best = e;
        bestLoad = load;
      }
    }
    phy2log.push(best);
    rank.push(logcnt[best]);
    logcnt[best]++;
  }
  return { phy2log, rank, logcnt };
}

function inverse(perm: number[]): number[] {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => (inv[p] = i));
  return inv;
}

interface LayerPlan {
  phy2log: number[];
  phyrank: number[];
  logcnt: number[];
}

/** One layer: pack groups to nodes, replicate within each node, pack replicas to the node's GPUs. */
function rebalanceLayer(w: number[], numPhy: number, numGroups: number, numNodes: number, numGpus: number): LayerPlan {
  const numLog = w.length;
  const groupSize = numLog / numGroups;
  const groupsPerNode = numGroups / numNodes;
  const logPerNode = numLog / numNodes;
  const phyPerNode = numPhy / numNodes;
  const phyPerGpu = numPhy / numGpus;

  // Step 1: groups to nodes. "mlog" numbers logical experts node by node in packing order.
  const groupTokens = Array.from({ length: numGroups }, (_, g) => {
    let s = 0;
    for (let j = 0; j < groupSize; j++) s = Math.fround(s + w[g * groupSize + j]);
    return s;
  });
  const groups = balancedPacking(groupTokens, numNodes);
  const log2mlog = w.map((_, e) => {
    const g = Math.floor(e / groupSize);
    return (groups.pack[g] * groupsPerNode + groups.rank[g]) * groupSize + (e % groupSize);
  });
  const mlog2log = inverse(log2mlog);

  const phy2log = new Array<number>(numPhy);
  const phyrank = new Array<number>(numPhy);
  const mlogcnt = new Array<number>(numLog);
  for (let node = 0; node < numNodes; node++) {
    // Step 2: replicas within the node.
    const tokens = Array.from({ length: logPerNode }, (_, k) => w[mlog2log[node * logPerNode + k]]);
    const rep = replicateExperts(tokens, phyPerNode);
    rep.logcnt.forEach((c, k) => (mlogcnt[node * logPerNode + k] = c));
    // Step 3: replicas to the node's GPUs, each replica carrying its share of the expert's load.
    const perReplica = rep.phy2log.map((m) => Math.fround(tokens[m] / rep.logcnt[m]));
    const gpus = balancedPacking(perReplica, numGpus / numNodes);
    const pphy2phy = inverse(gpus.pack.map((p, i) => p * phyPerGpu + gpus.rank[i]));
    pphy2phy.forEach((phy, slot) => {
      phy2log[node * phyPerNode + slot] = mlog2log[node * logPerNode + rep.phy2log[phy]];
      phyrank[node * phyPerNode + slot] = rep.rank[phy];
    });
  }
  return { phy2log, phyrank, logcnt: log2mlog.map((m) => mlogcnt[m]) };
}

const WHERE = 'rebalanceExperts';

function checkCount(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) fail(WHERE, name, 'a positive integer', v);
}

/**
 * DeepSeek's EPLB `rebalance_experts`: replicates heavy experts and places the replicas on GPUs.
 * Hierarchical policy (groups packed to nodes, then replicas within nodes) when numNodes divides
 * numGroups; otherwise the global policy (numGroups and numNodes ignored, as upstream).
 * @param weight [layers][logicalExperts] load of each expert (e.g. tokens routed to it), >= 0.
 */
/** As upstream: hierarchical balancing where expert groups divide evenly over nodes, global otherwise. */
export function eplbPolicy(numGroups: number, numNodes: number): 'hierarchical' | 'global' {
  return numGroups % numNodes === 0 ? 'hierarchical' : 'global';
}

export function rebalanceExperts(weight: number[][], numReplicas: number, numGroups: number, numNodes: number, numGpus: number): EplbPlan {
  checkCount('numReplicas', numReplicas);
  checkCount('numGroups', numGroups);
  checkCount('numNodes', numNodes);
  checkCount('numGpus', numGpus);
  if (!Array.isArray(weight) || weight.length === 0 || !weight.every(Array.isArray)) {
    fail(WHERE, 'weight', 'a non-empty array of per-layer load arrays [layers][experts]', Array.isArray(weight) ? `${weight.length} layers` : typeof weight);
  }
  const numLog = weight[0].length;
  if (numLog === 0) fail(WHERE, 'weight[0].length (logical experts)', 'at least 1', 0);
  weight.forEach((row, l) => {
    if (row.length !== numLog) fail(WHERE, `weight[${l}].length`, `${numLog} (the expert count of layer 0)`, row.length);
    row.forEach((v, e) => {
      if (typeof v !== 'number' || !(v >= 0) || v === Infinity) fail(WHERE, `weight[${l}][${e}]`, 'a finite load >= 0', v);
    });
  });
  if (numReplicas % numGpus) fail(WHERE, 'numReplicas', `a multiple of numGpus (${numGpus})`, numReplicas);
  if (numReplicas < numLog) fail(WHERE, 'numReplicas', `at least the number of logical experts (${numLog})`, numReplicas);
  const hierarchical = eplbPolicy(numGroups, numNodes) === 'hierarchical';
  if (hierarchical) {
    if (numLog % numGroups) fail(WHERE, 'numGroups', `a divisor of the number of logical experts (${numLog})`, numGroups);
    if (numGpus % numNodes) fail(WHERE, 'numGpus', `a multiple of numNodes (${numNodes})`, numGpus);
  }
  const [groups, nodes] = hierarchical ? [numGroups, numNodes] : [1, 1];
  const layers = weight.map((row) => rebalanceLayer(row.map(Math.fround), numReplicas, groups, nodes, numGpus));

  const maxcnt = Math.max(...layers.map((p) => Math.max(...p.logcnt)));
  const log2phy = layers.map((p) => {
    const table = Array.from({ length: numLog }, () => new Array<number>(maxcnt).fill(-1));
    p.phy2log.forEach((e, slot) => (table[e][p.phyrank[slot]] = slot));
    return table;
  });
  return { phy2log: layers.map((p) => p.phy2log), log2phy, logcnt: layers.map((p) => p.logcnt) };
}

/** Load of each GPU [layers][numGpus] under a plan, each expert's load split evenly over its replicas. */
export function planGpuLoads(weight: number[][], plan: EplbPlan, numGpus: number): number[][] {
  return plan.phy2log.map((slots, l) => {
    const perGpu = slots.length / numGpus;
    const loads = new Array<number>(numGpus).fill(0);
    slots.forEach((e, s) => (loads[Math.floor(s / perGpu)] += weight[l][e] / plan.logcnt[l][e]));
    return loads;
  });
}

/** Load of each GPU [layers][numGpus] with no replication: expert e on GPU floor(e * numGpus / experts). */
export function naiveGpuLoads(weight: number[][], numGpus: number): number[][] {
  return weight.map((row) => {
    const loads = new Array<number>(numGpus).fill(0);
    row.forEach((w, e) => (loads[Math.floor((e * numGpus) / row.length)] += w));
    return loads;
  });
}

/** max / mean of per-GPU loads (1 = perfectly balanced; 1 too when nothing was routed). */
export function imbalance(loads: number[]): number {
  const mean = loads.reduce((a, b) => a + b, 0) / loads.length;
  return mean === 0 ? 1 : Math.max(...loads) / mean;
}
