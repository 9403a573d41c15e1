export { rebalanceExperts, planGpuLoads, naiveGpuLoads, imbalance, type EplbPlan } from './eplb.ts';
