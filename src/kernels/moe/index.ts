export { routeTopk, planRouteTopk, routeConfigFromHf, type RouteOptions, type RouteOutputs } from './route.ts';
export {
  getDispatchLayout,
  dispatch,
  combine,
  contiguousRowsBound,
  CONTIGUOUS_LAYOUT_ALIGNMENT,
  type DispatchLayout,
  type DispatchLayoutOptions,
  type Dispatched,
} from './dispatch.ts';
export { ExpertLoadCounters, parseExpertLoad, type ExpertLoadJson } from './counters.ts';
export {
  routeTopkRef,
  dispatchLayoutRef,
  combineRef,
  checkRouteConfig,
  MAX_GROUPS,
  type RouteConfig,
  type RouteResult,
  type ScoringFunc,
  type TopkMethod,
  type DispatchLayoutKind,
  type DispatchLayoutRef,
} from './reference.ts';
