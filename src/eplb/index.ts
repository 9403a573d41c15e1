export { rebalanceExperts, type EplbPlan } from './eplb.ts';
