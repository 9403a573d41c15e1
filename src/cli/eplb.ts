// `deepwgsl eplb`: an expert placement plan from saved load counters. Pure CPU, no GPU needed.
import { eplbPolicy, imbalance, naiveGpuLoads, planGpuLoads, rebalanceExperts } from '../eplb/eplb.ts';
import { parseExpertLoad } from '../kernels/moe/counters.ts';
import { int, out, readInput, type Command, type Values } from './command.ts';

/** Parses the load counters file (`{ "layers": [[tokens per logical expert], ...] }`, as ExpertLoadCounters writes it). */
export function parseLoads(text: string, where = 'load file'): number[][] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new Error(`${where}: not JSON (${(e as Error).message})`);
  }
  try {
    return parseExpertLoad(data).layers;
  } catch (e) {
    throw new Error(`${where}: ${(e as Error).message}`);
  }
}

export interface EplbReport {
  replicas: number;
  groups: number;
  nodes: number;
  gpus: number;
  policy: 'hierarchical' | 'global';
  phy2log: number[][];
  log2phy: number[][][];
  logcnt: number[][];
  /** [layers][gpus] loads before (expert e on GPU floor(e*P/E), no replicas) and after the plan. */
  before: number[][];
  after: number[][];
  imbalanceBefore: number[];
  imbalanceAfter: number[];
}

export function eplbReport(weight: number[][], replicas: number, groups: number, nodes: number, gpus: number): EplbReport {
  const plan = rebalanceExperts(weight, replicas, groups, nodes, gpus);
  const before = naiveGpuLoads(weight, gpus);
  const after = planGpuLoads(weight, plan, gpus);
  return {
    replicas, groups, nodes, gpus,
    policy: eplbPolicy(groups, nodes),
    ...plan,
    before,
    after,
    imbalanceBefore: before.map(imbalance),
    imbalanceAfter: after.map(imbalance),
  };
}

const sumLayers = (loads: number[][]): number[] => loads[0].map((_, g) => loads.reduce((a, l) => a + l[g], 0));
const fmt = (v: number): string => (Number.isInteger(v) ? String(v) : v.toFixed(1));

export function formatReport(r: EplbReport): string {
  const lines = [
    `EPLB plan: ${r.phy2log.length} layers, ${r.logcnt[0].length} logical experts -> ${r.replicas} replicas on ${r.gpus} GPUs in ${r.nodes} nodes, ${r.groups} groups (${r.policy} policy)`,
    '',
    'phy2log (slot s is on GPU floor(s / ' + r.replicas / r.gpus + ')):',
    ...r.phy2log.map((p, l) => `  layer ${l}: [${p.join(', ')}]`),
    '',
    '| layer | imbalance before (max/mean) | after |',
    '|---|---|---|',
    ...r.imbalanceBefore.map((b, l) => `| ${l} | ${b.toFixed(3)} | ${r.imbalanceAfter[l].toFixed(3)} |`),
    '',
    'per-GPU load, summed over layers (tokens; a replicated expert\'s tokens split evenly over its replicas):',
    '| GPU | before | after |',
    '|---|---|---|',
  ];
  const [b, a] = [sumLayers(r.before), sumLayers(r.after)];
  b.forEach((v, g) => lines.push(`| ${g} | ${fmt(v)} | ${fmt(a[g])} |`));
  lines.push(`| max/mean | ${imbalance(b).toFixed(3)} | ${imbalance(a).toFixed(3)} |`);
  return lines.join('\n');
}

async function run(values: Values): Promise<void> {
  if (typeof values.load !== 'string') throw new Error('deepwgsl eplb: --load counts.json is required');
  for (const k of ['replicas', 'groups', 'nodes', 'gpus']) {
    if (values[k] === undefined) throw new Error(`deepwgsl eplb: --${k} is required`);
  }
  const [replicas, groups, nodes, gpus] = ['replicas', 'groups', 'nodes', 'gpus'].map((k) => int(values, k));
  const weight = parseLoads(await readInput(values.load, 'load'), values.load);
  const r = eplbReport(weight, replicas, groups, nodes, gpus);
  out(values.json ? JSON.stringify(r) : formatReport(r));
}

export const eplbCommands: Command[] = [
  {
    name: 'eplb',
    usage: ['deepwgsl eplb --load counts.json --replicas R --groups G --nodes N --gpus P [--json]   expert placement (EPLB) from load counters'],
    options: {
      load: { type: 'string' },
      replicas: { type: 'string' },
      groups: { type: 'string' },
      nodes: { type: 'string' },
      gpus: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    run: (values) => run(values),
  },
];
